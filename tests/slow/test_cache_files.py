"""Cache files that are not the regular files written there (issue 22).

A FIFO (opening or reading it waits for a writer, forever) or a link to
/dev/zero (read without end) put in place of any file a cache keeps is one
warning line saying what is there; the entry is made again and the answer
is the right one.  Every run here is guarded: an alarm stops a hang, a
memory limit an endless read, so that a regression fails instead of
stopping the suite or eating the machine."""
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minikernel import make_minikernel

from auditor.cli import main
from corpus import debian
from corpus.dtc import tree_tools
from testpaths import ROOT

pytestmark = pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc")



def fifo(path):
    path.unlink()
    os.mkfifo(path)


def endless(path):
    path.unlink()
    path.symlink_to("/dev/zero")


KINDS = {"fifo": (fifo, "a FIFO"), "endless": (endless, "a symbolic link")}


@contextlib.contextmanager
def guarded(seconds=20):
    """Fail, rather than hang or eat the machine, when a cache file is
    opened (a FIFO) or read without end (/dev/zero)."""
    def ring(*_):
        raise TimeoutError("hung on a cache file")
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    resource.setrlimit(resource.RLIMIT_AS, (vm + (3 << 30), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def warnings(err):
    return [line for line in err.splitlines() if ": warning: " in line]


# -- every cache a sweep of a kernel tree reads ------------------------------------------

def _one(paths):
    (path,) = paths
    return path


# name -> (where the file is under $XDG_CACHE_HOME/dtb-audit, what the warning says)
SWEEP_CACHES = {
    "judgement": (lambda c: sorted(c.glob("judged/*/*.json"))[0],
                  "kept judgement unusable ({name} is {what}, not a regular file); "
                  "judging again"),
    "digests": (lambda c: _one(c.glob("digests/*.json")),
                "file digests unusable ({name} is {what}, not a regular file); hashing again"),
    "manifest": (lambda c: _one(c.glob("dtbs/*/dtb-audit-corpus.json")),
                 "unusable manifest (dtb-audit-corpus.json is {what}, not a regular file); "
                 "building everything again"),
    "makefile-rules": (lambda c: _one(c.glob("targets/*.json")),
                       "the Makefiles' rules kept there are unusable ({name} is {what}, not a "
                       "regular file); reading the Makefiles again"),
    "source-positions": (lambda c: _one(c.glob("dtbs/*/.positions/acme/a100-evk.dtb.json")),
                         "source positions cache unusable (a100-evk.dtb.json is {what}, not a "
                         "regular file); computing them again"),
    "output": (lambda c: _one(c.glob("dtbs/*/acme/a100-evk.dtb")), None),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cache", SWEEP_CACHES)
def test_a_sweep_over_a_cache_file_that_is_not_a_file(tmp_path, capsys, cache, kind):
    tree = make_minikernel(tmp_path / "linux")
    argv = ["sweep", "--kernel", str(tree), "--format", "json", "-o"]
    assert main(argv + [str(tmp_path / "first.json")]) == 0
    where, message = SWEEP_CACHES[cache]
    damage, what = KINDS[kind]
    path = where(Path(os.environ["XDG_CACHE_HOME"]) / "dtb-audit")
    damage(path)
    capsys.readouterr()
    started = time.monotonic()
    with guarded():
        assert main(argv + [str(tmp_path / "again.json")]) == 0
    assert time.monotonic() - started < 10
    (line,) = warnings(capsys.readouterr().err)
    if message is None:         # an output is compared by size first: never opened
        assert line.startswith(f"{path}: warning: ") and line.endswith("; building it again")
    else:
        assert line == f"{path}: warning: " + message.format(what=what, name=path.name)
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "first.json").read_bytes()
    # Made again: the next sweep says nothing.
    assert main(argv + [str(tmp_path / "third.json")]) == 0
    assert warnings(capsys.readouterr().err) == []
    assert path.is_file() and not path.is_symlink()


# -- apt's answers and the packages downloaded ---------------------------------------------

@pytest.fixture
def fake_apt(tmp_path, monkeypatch):
    """A private suite "sid" whose lists are fresh; apt-cache answers a
    candidate, apt-get download writes a package in its folder."""
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "dtb-audit"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apt-cache").write_text(
        "#!/bin/sh\nprintf 'linux-source-7.2:\\n  Installed: (none)\\n  Candidate: 7.2.13-1\\n'\n")
    (bin_dir / "apt-get").write_text(
        "#!/bin/sh\ncase \" $* \" in *' download '*)\n"
        "  printf '!<arch>\\n' > linux-source-7.2_7.2.13-1_all.deb;; esac\n")
    for tool in ("apt-cache", "apt-get"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(debian, "suite_sources", lambda suite: [
        f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        f"http://deb.example/debian {suite} main"])
    apt_dir = cache / "apt" / "sid"
    (apt_dir / "lists").mkdir(parents=True)
    (apt_dir / "updated").write_bytes(b"")          # fetched just now: no apt-get update
    deb = debian.fetch_debian("sid/linux-source-7.2")
    assert deb == cache / "debian" / "sid" / "linux-source-7.2_7.2.13-1_all.deb"
    return cache, deb


APT_CACHES = {
    "answer": (lambda cache, deb: _one(deb.parent.glob(".*.candidate.json")),
               "apt's answer kept there is unusable ({name} is {what}, not a regular file); "
               "asking apt again"),
    "package": (lambda cache, deb: deb,
                "not a downloaded package ({name} is {what}, not a regular file); removing it"),
    "sources": (lambda cache, deb: cache / "apt" / "sid" / "sources.list", None),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cache", APT_CACHES)
def test_apt_over_a_cache_file_that_is_not_a_file(fake_apt, capsys, cache, kind):
    where, message = APT_CACHES[cache]
    damage, what = KINDS[kind]
    path = where(*fake_apt)
    damage(path)
    capsys.readouterr()
    with guarded():
        assert debian.fetch_debian("sid/linux-source-7.2") == fake_apt[1]
    lines = warnings(capsys.readouterr().err)
    if message is None:         # our own configuration: compared, and written again
        assert lines == []
    else:
        assert lines == [f"{path}: warning: " + message.format(name=path.name, what=what)]
    assert path.is_file() and not path.is_symlink()
    assert fake_apt[1].read_bytes() == b"!<arch>\n"


# -- the tree's own dtc, compiled into the cache -------------------------------------------

# A scripts/dtc that builds as the kernel's does (flex, bison, the Makefile's object
# lists), its programs printing a version: what tree_tools compiles into the cache.
STAND_IN_DTC = {
    "Makefile": "dtc-objs := dtc.o dtc-lexer.lex.o dtc-parser.tab.o\n"
                "fdtoverlay-objs := fdtoverlay.o\n",
    "dtc-lexer.l": "%option noyywrap\n%%\n.|\\n ;\n%%\n",
    "dtc-parser.y": "%{\nint yylex(void);\nvoid yyerror(const char *s);\n%}\n%%\nall: ;\n%%\n",
    "dtc.c": "#include <stdio.h>\nint yyparse(void);\nvoid yyerror(const char *s) { (void)s; }\n"
             "int main(void) { puts(\"Version: DTC 0.0-stand-in\"); return yyparse(); }\n",
    "fdtoverlay.c": "#include <stdio.h>\nint main(void) { puts(\"fdtoverlay\"); return 0; }\n",
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["checksums.json", "dtc"])
def test_compiled_tools_that_are_not_files(tmp_path, capsys, name, kind):
    """The tree's dtc compiled into the cache, then one of the kept files made
    something else than a regular file: the tools are set aside and compiled again."""
    tree = tmp_path / "linux"
    (tree / "scripts" / "dtc").mkdir(parents=True)
    for file, text in STAND_IN_DTC.items():
        (tree / "scripts" / "dtc" / file).write_text(text)
    cache = tmp_path / "cache"
    first = tree_tools(tree, cache, set())
    (dest,) = (cache / "tools").glob("dtc-*")
    assert first.dtc == str(dest / "dtc") and first.dtc_version == "DTC 0.0-stand-in (built from the tree's scripts/dtc)"
    damage, what = KINDS[kind]
    damage(dest / name)
    capsys.readouterr()
    with guarded():
        tools = tree_tools(tree, cache, set())
    assert tools.dtc == str(dest / "dtc") and Path(tools.dtc).is_file()
    assert warnings(capsys.readouterr().err) == [
        f"{dest}: warning: unreadable tools ({name} is {what}, not a regular file); "
        f"compiling them again"]


# -- compiled kernels ----------------------------------------------------------------------

TINY = """\
from numba import njit

from kernels import config


@njit(**config.NJIT)
def add_one(x):
    return x + 1
"""


def test_compiled_kernel_files_that_are_not_files(tmp_path):
    """numba's index (.nbi) a FIFO, a compiled function (.nbc) a link to
    /dev/zero: one warning each, compiled again, the right answer."""
    src = tmp_path / "src"
    for package in ("kernels", "corpus", "store"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    (src / "kernels" / "tiny_kernel.py").write_text(TINY)
    env = dict(os.environ, PYTHONPATH=str(src), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    for var in ("NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT"):
        env.pop(var, None)

    def run():
        proc = subprocess.run(
            [sys.executable, "-c", "from kernels import tiny_kernel; print(tiny_kernel.add_one(41))"],
            cwd=src, env=env, capture_output=True, text=True, timeout=120,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)))
        assert proc.returncode == 0 and proc.stdout == "42\n", proc.stderr
        return proc.stderr

    assert run() == ""
    numba = tmp_path / "xdg" / "dtb-audit" / "numba"
    index = _one(numba.glob("*/tiny_kernel.add_one-*.nbi"))
    data = _one(numba.glob("*/tiny_kernel.add_one-*.nbc"))
    endless(data)
    assert warnings(run()) == [f"{data}: warning: compiled kernel cache file unusable "
                               f"({data.name} is a symbolic link, not a regular file); "
                               f"compiling it again"]
    fifo(index)
    assert warnings(run()) == [f"{index}: warning: compiled kernel cache file unusable "
                               f"({index.name} is a FIFO, not a regular file); compiling it again"]
    assert run() == ""


# -- lock files ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_a_build_lock_that_is_not_a_file(tmp_path, capsys, kind):
    """The lock a build of a folder takes (opening a FIFO to write waits for a reader)."""
    tree = make_minikernel(tmp_path / "linux")
    out = tmp_path / "out"
    argv = ["corpus", "build", "--kernel", str(tree), "--out", str(out)]
    assert main(argv) == 0
    lock = out / ".dtb-audit-corpus.lock"
    damage, _ = KINDS[kind]
    damage(lock)
    capsys.readouterr()
    with guarded():
        assert main(argv) == 0
    (line,) = warnings(capsys.readouterr().err)
    assert line.startswith(f"{lock}: warning: not a lock file (") and line.endswith("); made again")
    assert lock.is_file() and not lock.is_symlink()
