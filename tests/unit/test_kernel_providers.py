"""Which driver binds a node (kernels/providers.py), with the verdict read
from the kernel's C source (Debian's linux-source-6.12 6.12.118; file,
function and line named in each section), not from kernels/.

of_match_node() matches a node against a driver's of_match table through
__of_device_is_compatible() (drivers/of/base.c :321): each string of the
node's `compatible` is compared with of_compat_cmp(), which is
strcasecmp() (include/linux/of.h): whole strings, case-insensitive.
Snippets are judged through kernels.evaluate (snippets.sweep_dts); the
master is a non-coherent device behind the node, so a master behind a
non-coherent arm-smmu is "broken", and one behind an IOMMU whose driver
has no .capable op (or that no driver binds) "unsupported-iommu".
"""
import pytest

from snippets import by_master, device, smmu, soc, sweep_dts

DEV = "/soc/dev@1"
PLAIN_DEV = device("dev@1", "dma-noncoherent;")


def verdict_behind(tmp_path, compatible, target="6.12"):
    (r,) = by_master(sweep_dts(tmp_path, soc(smmu(compatible), PLAIN_DEV), target=target))[DEV]
    return r["driver"], r["verdict"]


@pytest.mark.parametrize("compatible, expected", [
    # the longest name of the tables: ipmmu_of_ids (ipmmu-vmsa.c 6.12 :999),
    # whose iommu_ops (:880) have no .capable
    ('"renesas,rcar-gen4-ipmmu-vmsa"', ("no-capable", "unsupported-iommu")),
    ('"RENESAS,RCAR-GEN4-IPMMU-VMSA"', ("no-capable", "unsupported-iommu")),
    ('"ARM,MMU-500"', ("arm-smmu", "broken")),
    ('"Arm,Smmu-V2"', ("arm-smmu", "broken")),
    # longer than any name, a name with one more letter: no driver
    ('"renesas,rcar-gen4-ipmmu-vmsa2"', ("unknown", "unsupported-iommu")),
    ('"renesas,rcar-gen4-ipmmu-vmsa22"', ("unknown", "unsupported-iommu")),
    ('"renesas,rcar-gen4-ipmmu-vmsa-xyzw"', ("unknown", "unsupported-iommu")),
    ('"arm,mmu-5000"', ("unknown", "unsupported-iommu")),
    # a name cut short, or two names run together: no driver
    ('"arm,mmu-50"', ("unknown", "unsupported-iommu")),
    ('"renesas,rcar-gen4-ipmmu-vms"', ("unknown", "unsupported-iommu")),
    ('"arm,smmu-v1arm,smmu-v2"', ("unknown", "unsupported-iommu")),
    # any string of the list may match
    ('"vendor,soc-smmu", "arm,mmu-500"', ("arm-smmu", "broken")),
])
def test_compatible_is_compared_whole_and_case_blind(tmp_path, compatible, expected):
    assert verdict_behind(tmp_path, compatible) == expected


@pytest.mark.parametrize("target, driver", [
    # the longest name of 5.10's tables is shorter: the 28-letter one is not there
    ("5.10", "unknown"), ("6.1", "no-capable"), ("7.2", "no-capable"),
])
def test_longest_name_per_target(tmp_path, target, driver):
    """ipmmu_of_ids has "renesas,rcar-gen4-ipmmu-vmsa" from 6.1 on (not in
    5.10's :1000-1030); "allwinner,sun50i-h6-iommu" is there in all."""
    assert verdict_behind(tmp_path, '"renesas,rcar-gen4-ipmmu-vmsa"', target)[0] == driver
    assert verdict_behind(tmp_path, '"allwinner,sun50i-h6-iommu"', target)[0] == "no-capable"


def test_evaluation_arrays_have_their_documented_types(tmp_path):
    """The arrays of an Evaluation have the types kernels/evaluate.py
    documents, which the compiled kernels' signatures take (kernels/dt.py)
    and the results cache keeps; with NUMBA_DISABLE_JIT=1 nothing else
    checks them."""
    import numpy as np
    ev = sweep_dts(tmp_path, soc(smmu(), PLAIN_DEV))["ev"]
    got = {name: getattr(ev, name).dtype for name in
           ("role", "driver", "probe_state", "dtb_links", "own_ok", "available")}
    assert got == {"role": np.int8, "driver": np.int16, "probe_state": np.int8,
                   "dtb_links": np.int64, "own_ok": np.bool_, "available": np.bool_}
