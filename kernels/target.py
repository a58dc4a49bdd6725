"""The target kernel: which kernel's decisions a sweep reproduces.

A DT is judged by the kernel that boots it (SPEC section 1.1).  Each
version-dependent decision of the rule is a property of TargetKernel,
named after what changed and grounded in the commit that changed it;
the kernels receive them as plain integers (`facts()`).

Plain Python: the CLI parses --target-kernel without loading numba.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .codes import LEGACY_TRUE, NO_CHECK, RULE_NAMES, WALK_ONLY, WALK_OR_DEVICE

# The oldest and newest versions whose decisions are modelled.
OLDEST = (5, 10, 0)
NEWEST = (7, 2, 0)

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+~.].*)?$")


class TargetError(ValueError):
    """A --target-kernel that is not a version modelled here; str() says why."""


@dataclass(frozen=True, order=True)
class TargetKernel:
    version: tuple          # (major, minor, sublevel); sublevel 0 for "6.1"
    given: str = ""         # as written ("6.12.117", "7.2"), for the reports
    assumed: bool = False   # nothing told us: the newest version modelled

    @classmethod
    def parse(cls, text: str, assumed: bool = False) -> "TargetKernel":
        """"6.12", "6.12.117", "v7.2", "6.1.0-28-arm64" -> TargetKernel."""
        m = _VERSION.match(text.strip())
        if not m:
            raise TargetError(f"{text!r} is not a kernel version (as 6.1, 6.12.117 or 7.2)")
        version = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
        if not OLDEST <= version < (NEWEST[0], NEWEST[1] + 1, 0):
            raise TargetError(f"{text}: only kernels from {version_text(OLDEST)} to {version_text(NEWEST)} "
                              f"are modelled")
        given = f"{version[0]}.{version[1]}" + (f".{version[2]}" if m.group(3) else "")
        return cls(version, given, assumed)

    @classmethod
    def newest(cls) -> "TargetKernel":
        return cls(NEWEST, version_text(NEWEST), assumed=True)

    def __str__(self) -> str:
        return self.given or version_text(self.version)

    # -- the decisions (SPEC section 1.1) ---------------------------------------

    @property
    def vfio_checks_coherency(self) -> bool:
        """e8ae0e140c05 "vfio: Require that devices support DMA cache coherence"
        (v5.19): 6.1 drivers/vfio/vfio_main.c:513 refuses the device; 5.10
        vfio_iommu_type1.c:2222 only sets IOMMU_CACHE when the IOMMU has it."""
        return self.version >= (5, 19, 0)

    @property
    def rule(self) -> str:
        """arm-smmu's capable(IOMMU_CAP_CACHE_COHERENCY) in this kernel."""
        if not self.vfio_checks_coherency:
            return RULE_NAMES[NO_CHECK]
        if self.version < (6, 1, 0):
            return RULE_NAMES[LEGACY_TRUE]
        if self.version >= WALK_OR_DEVICE_6_1:
            return RULE_NAMES[WALK_OR_DEVICE]
        return RULE_NAMES[WALK_ONLY]

    @property
    def qcom_binds_msm_iommu_v2(self) -> bool:
        """qcom_iommu's match table gains "qcom,msm-iommu-v2" (6.12
        drivers/iommu/arm/arm-smmu/qcom_iommu.c:931; not in 6.1.192's, :900)."""
        return self.version >= QCOM_MSM_IOMMU_V2

    @property
    def pci_disabled_function_unbound(self) -> bool:
        """drivers/pci/bus.c: match_driver = !dn || of_device_is_available(dn)
        (6.12 bus.c:351, 7.2 bus.c:370); 6.1 bus.c:344 and 5.10 bus.c:323 set
        it true, so a disabled function node still gets a driver."""
        return self.version >= PCI_MATCH_DRIVER_AVAILABLE

    @property
    def map_reads_target_cells(self) -> bool:
        """of_map_id() reads out-specifiers of the target's #iommu-cells
        ("of: Respect #{iommu,msi}-cells in maps", 7.2 drivers/of/base.c:2186).
        Before, fixed 4-cell entries, and `id_base + id_len` summed in u32
        (6.12 base.c:2049, 6.1 :2183, 5.10 :2288): a range running past 0xffffffff matches nothing;
        7.2 compares `masked_id - id_base` with the length (base.c:2282),
        which does not wrap."""
        return self.version >= MAP_TARGET_CELLS

    @property
    def dma_noncoherent_honoured(self) -> bool:
        """of_dma_is_coherent() stops at `dma-noncoherent` (6.1
        drivers/of/address.c:1110); 5.10's looks for `dma-coherent` only."""
        return self.version >= OF_DMA_NONCOHERENT

    def binds(self, since) -> bool:
        """Whether a driver (or match-table entry) first seen in `since`
        (None: in every version modelled) is in this kernel."""
        return since is None or self.version >= since


# First versions of each change; see the properties above for the sources.
# 6.1.y stable took ac9c5e92dd15 ("iommu/arm-smmu: Report
# IOMMU_CAP_CACHE_COHERENCY even betterer", mainline v6.2-rc4) in 6.1.7:
# Debian's 6.1 changelog lists it, its title wrapped over two lines, under
# ChangeLog-6.1.7 (linux 6.1.7-1).
WALK_OR_DEVICE_6_1 = (6, 1, 7)
# Not in 6.1.192, in 6.12.117; "about v6.5" (SPEC 1.1): not checked against
# a source between the two.
QCOM_MSM_IOMMU_V2 = (6, 5, 0)
# In 6.12.117, not in 6.1.192; 6.12 drivers/pci/of.c:25 still documents an
# earlier variant, so the change is somewhere in (6.1, 6.12].
PCI_MATCH_DRIVER_AVAILABLE = (6, 12, 0)
MAP_TARGET_CELLS = (7, 2, 0)
# In 6.1.192, not in 5.10.223; before 6.1 no verdict depends on coherency.
OF_DMA_NONCOHERENT = (6, 1, 0)


def version_text(version: tuple) -> str:
    """(7, 2, 0) -> "7.2", (6, 12, 117) -> "6.12.117"."""
    return ".".join(map(str, version[:2])) + (f".{version[2]}" if version[2] else "")
