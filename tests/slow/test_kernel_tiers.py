"""The kernels' tiers (kernels/jit.py): small work without compiled
kernels runs them as plain Python, with the same results; compiled ahead,
small work takes the compiled kernels."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kernels import jit
from testpaths import ROOT

pytestmark = pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc")


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
