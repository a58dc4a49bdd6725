"""The target kernel: which kernel's decisions a sweep reproduces.

A DT is judged by the kernel that boots it (docs/target-kernel.md).  Each
version-dependent decision of the rule is a property of TargetKernel,
named after what changed and grounded in the commit that changed it;
the kernels receive them as plain integers (`facts()`).

Plain Python: the CLI parses --target-kernel without loading numba.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .codes import Rule

# The oldest and newest versions whose decisions are read from sources.
# Older targets are certain (VFIO asks nothing before v5.19); newer ones get
# the newest decisions, with a warning (newer_warning).
OLDEST = (5, 10, 0)
NEWEST = (7, 2, 0)
# No version string names a kernel whose major is more than this beyond the
# newest modelled: a major lasts three to four years (3.0 2011, 4.0 2015,
# 5.0 2019, 6.0 2022, 7.0 2026), so NEWEST's major + 2 covers the years any
# model of today's decisions is worth using, and "99.9" is a typo.
MAJORS_AHEAD = 2
# No major has had more minors than 4.0 to 4.20 (21): "6.99" is no kernel.
MAX_MINOR = 30

# How every version string is read, the one grammar (docs/target-kernel.md):
#   [v]MAJOR.MINOR[.SUBLEVEL]   numbers without leading zeros, at most 2, 3, 4 digits
#   [-rcN | ~rcN]               a release candidate (Debian writes 6.1~rc8)
#   [-next-YYYYMMDD]            linux-next of that day
#   [SUFFIX]                    a distribution's or builder's: -27-arm64, -1~bpo12+1, +, -test
_VERSION = re.compile(r"v?(?P<major>0|[1-9]\d?)\.(?P<minor>0|[1-9]\d{0,2})"
                      r"(?:\.(?P<sublevel>0|[1-9]\d{0,3}))?"
                      r"(?:[-~]rc(?P<rc>[1-9]\d?))?"
                      r"(?:-next-(?P<next>\d{8}))?"
                      r"(?P<suffix>(?:[-~][A-Za-z0-9]|\+)[A-Za-z0-9.+~_-]*)?")


class TargetError(ValueError):
    """A version string that names no kernel; str() says why, in one line."""


@dataclass(frozen=True, order=True)
class TargetKernel:
    version: tuple          # (major, minor, sublevel); sublevel 0 for "6.1" and "7.3-rc1"
    given: str = ""         # as written, distribution suffix dropped ("6.12.117", "7.3-rc1")
    assumed: bool = False   # nothing told us: the newest version modelled
    rc: int = 0             # N of -rcN: a candidate of `version`; 0 for a release

    @classmethod
    def parse(cls, text: str, assumed: bool = False, where: str | None = None) -> "TargetKernel":
        """"6.12", "6.12.117", "v7.2", "6.1.0-28-arm64", "7.3.0-rc1-next-20261201"
        -> TargetKernel; TargetError for anything else, its message prefixed
        with `where` ("--target-kernel"). The one place a version string is
        read: the command line, a tree's Makefile, saved documents, history."""
        def refuse(why):
            raise TargetError(f"{where}: {why}" if where else why)
        m = _VERSION.fullmatch(text) if isinstance(text, str) else None
        if not m:
            refuse(f"{text!r} is not a kernel version (as 6.1, 6.12.117, 7.3-rc1 or "
                   f"6.1.0-28-arm64)")
        major, minor = int(m["major"]), int(m["minor"])
        version = (major, minor, int(m["sublevel"] or 0))
        if major > NEWEST[0] + MAJORS_AHEAD or minor > MAX_MINOR:
            refuse(f"{text}: no kernel has this version (majors up to "
                   f"{NEWEST[0] + MAJORS_AHEAD}, minors up to {MAX_MINOR}; the newest "
                   f"modelled is {version_text(NEWEST)})")
        given = f"{major}.{minor}" + (f".{m['sublevel']}" if m["sublevel"] else "") \
            + (f"-rc{m['rc']}" if m["rc"] else "") + (f"-next-{m['next']}" if m["next"] else "")
        return cls(version, given, assumed, int(m["rc"] or 0))

    @classmethod
    def newest(cls) -> "TargetKernel":
        return cls(NEWEST, version_text(NEWEST), assumed=True)

    def __str__(self) -> str:
        return self.given or version_text(self.version)

    @property
    def newer_than_modelled(self) -> bool:
        """A release after the newest modelled (7.3-rc1, 8.0; not 7.2.13)."""
        return self.version[:2] > NEWEST[:2]

    def _since(self, boundary: tuple, rc: int = 0) -> bool:
        """Whether this kernel has a change first released in `boundary`
        (merged in its -rc`rc`; 0: in the merge window, so in every -rcN)."""
        if self.version != boundary or not self.rc or not rc:
            return self.version >= boundary
        return self.rc >= rc

    # -- the decisions (docs/target-kernel.md) ---------------------------------

    @property
    def vfio_checks_coherency(self) -> bool:
        """e8ae0e140c05 "vfio: Require that devices support DMA cache coherence"
        (v5.19): 6.1 drivers/vfio/vfio_main.c:513 refuses the device; 5.10
        vfio_iommu_type1.c:2222 only sets IOMMU_CACHE when the IOMMU has it."""
        return self.version >= (5, 19, 0)

    @property
    def rule(self) -> Rule:
        """arm-smmu's capable(IOMMU_CAP_CACHE_COHERENCY) in this kernel."""
        if not self.vfio_checks_coherency:
            return Rule.NO_CHECK
        if self.version < (6, 1, 0):
            return Rule.LEGACY_TRUE
        if (WALK_OR_DEVICE_6_1 <= self.version < (6, 2, 0)
                or self._since(WALK_OR_DEVICE_MAINLINE, WALK_OR_DEVICE_MAINLINE_RC)):
            return Rule.WALK_OR_DEVICE
        return Rule.WALK_ONLY

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


# First versions of each change; see the properties above for the sources,
# and docs/target-kernel.md for how each boundary was found. A release
# candidate has what its release has, except a fix merged later, named
# with its rc (ac9c5e92dd15: v6.2-rc4, and 6.1.7 in 6.1.y).
WALK_OR_DEVICE_6_1 = (6, 1, 7)
WALK_OR_DEVICE_MAINLINE, WALK_OR_DEVICE_MAINLINE_RC = (6, 2, 0), 4
# qcom_iommu's match table gains "qcom,msm-iommu-v2" (kernels/providers.py
# binds it from here): 6.12 drivers/iommu/arm/arm-smmu/qcom_iommu.c:931, not
# in 6.1.192's (:900); about v6.5, not checked against a source between.
QCOM_MSM_IOMMU_V2 = (6, 5, 0)
# In 6.12.117, not in 6.1.192; 6.12 drivers/pci/of.c:25 still documents an
# earlier variant, so the change is somewhere in (6.1, 6.12].
PCI_MATCH_DRIVER_AVAILABLE = (6, 12, 0)
MAP_TARGET_CELLS = (7, 2, 0)
# In 6.1.192, not in 5.10.223; before 6.1 no verdict depends on coherency.
OF_DMA_NONCOHERENT = (6, 1, 0)


def newer_warning(targets) -> str | None:
    """The one warning for the targets newer than the newest modelled (each
    named once, in order), None when there are none."""
    newer = list(dict.fromkeys(str(t) for t in targets if t.newer_than_modelled))
    if not newer:
        return None
    newest = version_text(NEWEST)
    return (f"target kernel{'s' if len(newer) > 1 else ''} {', '.join(newer)} "
            f"{'are' if len(newer) > 1 else 'is'} newer than the newest modelled ({newest}): "
            f"judged with {newest}'s decisions")


def version_text(version: tuple) -> str:
    """(7, 2, 0) -> "7.2", (6, 12, 117) -> "6.12.117"."""
    return ".".join(map(str, version[:2])) + (f".{version[2]}" if version[2] else "")
