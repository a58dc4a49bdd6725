"""The compiled-code cache (kernels/jit.py): keyed on every kernel source,
so that editing a callee in another file recompiles its callers; corrupt
files are compiled again without a traceback; old keys are bounded.  The
tiers: small work without compiled kernels runs them as plain Python, with
the same results.

The end-to-end tests run in a scratch copy of the packages, in fresh
processes, with a private $XDG_CACHE_HOME, as a user who edits or upgrades
the package would."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernels import jit
from testpaths import ROOT


pytestmark = pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc")

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
    for package in ("kernels", "corpus", "auditor"):
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


def _okay_means_disabled(root):
    """Edit status_okay() in the scratch copy's dt.py: "okay" now disables."""
    f = root / "kernels" / "dt.py"
    text, n = re.subn(r'(def status_okay\(data, off, n\):\n    """.*?"""\n)',
                      r'\1    return False  # the test edit\n', f.read_text(), flags=re.S)
    assert n == 1, "status_okay() not found in kernels/dt.py"
    f.write_text(text)


def test_editing_a_callee_in_another_file_recompiles_its_callers(scratch):
    root, numba_cache, run = scratch
    assert run() == ("available", "")
    assert run() == ("available", "")          # loaded from the cache, same answer
    _okay_means_disabled(root)
    assert run()[0] == "disabled"
    assert len(list(numba_cache.iterdir())) == 2   # the edit made a new key


def test_corrupt_cache_files_are_compiled_again(scratch):
    """Half the compiled files truncated, the other half with bytes changed
    at the same length: each is one warning and compiled again."""
    root, numba_cache, run = scratch
    assert run() == ("available", "")
    # (numba's own cache, in kernels/__pycache__, is looked at too: there a
    # damaged file is a traceback)
    files = [f for f in [*numba_cache.glob("*/*"), *root.glob("kernels/__pycache__/*")]
             if f.suffix in (".nbi", ".nbc")]
    assert any(f.suffix == ".nbc" for f in files)
    for k, f in enumerate(sorted(files)):
        b = bytearray(f.read_bytes())
        if k % 2:
            b = b[:len(b) // 2]
        else:
            for i in range(len(b) // 2, min(len(b), len(b) // 2 + 64)):
                b[i] ^= 0x5A
        f.write_bytes(bytes(b))
    verdict, stderr = run()
    assert verdict == "available"
    lines = stderr.splitlines()
    assert lines and all(
        re.fullmatch(r"\S+\.nb[ic]: warning: compiled kernel cache file truncated or corrupt; "
                     r"compiling it again", line) for line in lines), stderr
    assert run() == ("available", "")           # compiled again and written back


def test_the_key_covers_numba_settings_that_change_machine_code():
    code = "from kernels import jit; jit.install(); print(jit.kernels_key())"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_BOUNDSCHECK"}
    keys = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           text=True, check=True, env=dict(env, **extra)).stdout.strip()
            for extra in ({}, {"NUMBA_BOUNDSCHECK": "1"})]
    assert len(keys[0]) == 16 and keys[0] != keys[1]


def test_old_keys_are_bounded(tmp_path):
    now = time.time()
    for k in range(6):
        (tmp_path / f"old{k}").mkdir()
        (tmp_path / f"old{k}" / jit._USED).touch()
        os.utime(tmp_path / f"old{k}" / jit._USED, (now - 1000 * (k + 1),) * 2)
    (tmp_path / "current").mkdir()
    jit._prune(tmp_path, "current")
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["current"] + [f"old{k}" for k in range(jit.KEEP_OTHER_KEYS)]
    assert (tmp_path / "current" / jit._USED).stat().st_mtime > now - 60   # marked used


SOC = """/dts-v1/;
/ {
    compatible = "vendor,board", "vendor,soc";
    #address-cells = <1>;
    #size-cells = <1>;
    smmu: iommu@5000000 {
        compatible = "arm,mmu-500";
        reg = <0x5000000 0x800000>;
        #global-interrupts = <1>;
        #iommu-cells = <1>;
    };
    dev@1000 { compatible = "vendor,dev"; reg = <0x1000 0x100>; iommus = <&smmu 0x10>; };
    dma@2000 { compatible = "vendor,dma"; reg = <0x2000 0x100>; iommus = <&smmu 0x11>; dma-coherent; };
    off@3000 { compatible = "vendor,dev"; reg = <0x3000 0x100>; iommus = <&smmu 0x12>; status = "disabled"; };
    pcie@4000000 {
        compatible = "pci-host-ecam-generic";
        device_type = "pci";
        reg = <0x4000000 0x100000>;
        #address-cells = <3>;
        #size-cells = <2>;
        bus-range = <0x0 0xff>;
        iommu-map = <0x0 &smmu 0x0 0x10000>;
        dma-coherent;
    };
};
"""

TIER = """
import json, sys
from kernels import jit
tier = jit.choose_tier(int(sys.argv[3]))
from corpus.flat import flatten
from kernels import fdt
from kernels.evaluate import evaluate
from kernels.target import TargetKernel
flat = flatten([sys.argv[1]], sys.argv[2], cache=False)
ev = evaluate(flat, TargetKernel.parse("6.12"))
print(json.dumps({"tier": tier, "parser": type(fdt.walk_dtbs).__name__,
                  "nodes": flat.node_parent.tolist(), "names": flat.prop_names,
                  "links": ev.links.tolist(), "verdicts": ev.verdict.tolist()}))
"""


def _tier_run(tmp_path, work_bytes, xdg):
    import json
    dtb = tmp_path / "soc.dtb"
    if not dtb.exists():
        subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtb), "-"],
                       input=SOC.encode(), check=True)
    env = dict(os.environ, XDG_CACHE_HOME=str(xdg))
    env.pop("NUMBA_DISABLE_JIT", None)
    p = subprocess.run([sys.executable, "-c", TIER, str(dtb), str(tmp_path), str(work_bytes)],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    assert p.returncode == 0 and not p.stderr, p.stderr
    return json.loads(p.stdout)


def test_small_work_without_compiled_kernels_runs_them_as_plain_python(tmp_path):
    xdg = tmp_path / "xdg"
    python = _tier_run(tmp_path, 1000, xdg)
    assert (python["tier"], python["parser"]) == ("python", "function")
    assert not list(xdg.glob("dtb-audit/numba/*/*.nbc"))       # nothing compiled
    # The same answers as the compiled kernels (those of the user's cache).
    compiled = _tier_run(tmp_path, jit.SMALL_WORK_BYTES, os.environ.get(
        "XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")))
    assert (compiled["tier"], compiled["parser"]) == ("compiled", "CPUDispatcher")
    assert len(python["links"]) == 4 and len(set(python["verdicts"])) >= 3, python["verdicts"]
    assert python == dict(compiled, tier="python", parser="function")


def test_compile_ahead_then_small_work_uses_the_compiled_kernels(tmp_path):
    """Small work on a machine that never compiled runs plain Python and
    compiles nothing; `python -m kernels.jit` (setup.sh) compiles every
    kernel and marks the key complete only when nothing is left to compile;
    small work then takes the compiled kernels."""
    import json
    xdg = tmp_path / "xdg"
    assert _tier_run(tmp_path, 1000, xdg)["tier"] == "python"
    assert not (xdg / "dtb-audit" / "numba" / jit.kernels_key()).exists()
    code = ("import json; from kernels import jit; lazy = jit.compile_all(); "
            "print(json.dumps([lazy, str(jit.cache_path())]))")
    env = dict(os.environ, XDG_CACHE_HOME=str(xdg))
    env.pop("NUMBA_DISABLE_JIT", None)
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True, check=True)
    lazy, folder = json.loads(p.stdout)
    assert Path(folder).parent == xdg / "dtb-audit" / "numba"
    assert list(Path(folder).glob("fdt.walk_dtbs-*.nbc"))      # the parser has its signatures
    assert not any(name.startswith("kernels.fdt.") for name in lazy)
    assert (Path(folder) / jit._COMPLETE).exists() == (not lazy)
    assert _tier_run(tmp_path, 1000, xdg)["tier"] == ("python" if lazy else "compiled")
