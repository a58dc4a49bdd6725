#!/usr/bin/env bash
# Set up a fresh Debian or Ubuntu machine for dtb-audit: the tools the corpus
# build runs (cpp; gcc, flex and bison to compile the kernel tree's own dtc;
# device-tree-compiler for fdtoverlay and fdtget; xz-utils to read kernel
# tarballs on all cores; git for history --git and patches; perl for the
# tree's get_maintainer.pl, which addresses the patches; chromium for the
# site's browser tests, driven by Playwright), then the Python
# package with its test extras and its bytecode, then the numba kernels
# compiled ahead (the project still runs without: small work as plain
# Python, the rest compiles).
set -euo pipefail
cd "$(dirname "$0")"

packages=(cpp gcc libc6-dev flex bison device-tree-compiler xz-utils ca-certificates git perl
          chromium)
sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# `update` also gives apt the package lists that `--debian linux-source-X` needs.
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${packages[@]}"

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null; then
    $sudo apt-get install -y -q --no-install-recommends python3 python3-pip python3-venv
fi
# Debian's own python3 refuses pip installs (PEP 668): use a virtual environment there.
if "$python" -c 'import os, sys, sysconfig
managed = os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
sys.exit(0 if managed and sys.prefix == sys.base_prefix else 1)'; then
    $sudo apt-get install -y -q --no-install-recommends python3-venv python3-pip
    "$python" -m venv .venv
    python=.venv/bin/python
    echo "setup.sh: installed into .venv; run '. .venv/bin/activate' before the README's commands"
fi
"$python" -m pip install -q -e ".[test,bench]"
# Bytecode ahead, as a non-editable install has it (an editable one gets none
# where PYTHONDONTWRITEBYTECODE is set, and compiles every module on every run).
"$python" -m compileall -q auditor corpus kernels store bench >/dev/null
"$python" -m kernels.jit >/dev/null
