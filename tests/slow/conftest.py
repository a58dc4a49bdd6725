"""The compiled-code cache's scratch: a copy of the packages, a DTB, and a
runner of a snippet that calls the availability kernel in a fresh process
(tests/slow/test_kernel_cache*.py)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testpaths import ROOT

BOARD = """/dts-v1/;
/ {
    compatible = "vendor,board";
    #address-cells = <1>;
    #size-cells = <1>;
    dev@1000 { compatible = "vendor,dev"; reg = <0x1000 0x100>; status = "okay"; };
};
"""

# availability() (coherency.py) inlines status_okay() (dt.py): the compiled
# availability is what goes stale when only dt.py changes.
SNIPPET = """
import sys
import kernels
from corpus.flat import flatten
from kernels import coherency, dt
flat = flatten([sys.argv[1]], sys.argv[2], cache=False)
own, tree = coherency.availability(dt.tree_of(flat))
dev = [i for i in range(flat.node_parent.size) if flat.node_name(i) == "dev@1000"][0]
print(kernels.__file__)
print("available" if own[dev] else "disabled")
"""


@pytest.fixture
def scratch(tmp_path):
    """A copy of the packages, a DTB, and a runner of SNIPPET in a fresh process."""
    root = tmp_path / "src"
    for package in ("kernels", "corpus", "auditor", "store"):
        shutil.copytree(ROOT / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    dtb = tmp_path / "board.dtb"
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtb), "-"],
                   input=BOARD.encode(), check=True)
    env = dict(os.environ, PYTHONPATH=str(root), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    for var in ("NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT", "NUMBA_BOUNDSCHECK"):
        env.pop(var, None)

    def run():
        p = subprocess.run([sys.executable, "-c", SNIPPET, str(dtb), str(tmp_path)],
                           cwd=root, env=env, capture_output=True, text=True)
        assert "Traceback" not in p.stderr, p.stderr
        assert p.returncode == 0, p.stderr
        where, verdict = p.stdout.split()
        assert Path(where).resolve().parent == (root / "kernels").resolve()
        return verdict, p.stderr

    return root, tmp_path / "xdg" / "dtb-audit" / "numba", run
