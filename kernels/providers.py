"""Which driver binds a node, and whether an IOMMU provider probes.

The compatible tables are those of the drivers' of_match tables
(drivers/iommu/, and the buses that read an `iommu-map`), each entry with
the first version that has it; matching is case-insensitive on any entry
of the node's `compatible`, as of_match_node() does.
"""
import numpy as np
from numba import njit, types

from .codes import (ARM_SMMU, ARM_SMMU_V3, BAD_IOMMU_CELLS, CDX, FSL_MC,
                    GPCDMA, HOST1X, MISMATCHED_BINDING, NO_CAPABLE, NO_GLOBAL_INTERRUPTS,
                    NOT_A_PROVIDER, PROBED, PROVIDER_DISABLED, QCOM_IOMMU)
from .config import INNER, NJIT
from .dt import (B, B_RO, COMPATIBLE, DATA, DEVICE_TYPE, GLOBAL_INTERRUPTS, I8, I8_RO, I16,
                 I16_RO, I32_RO, I64_RO, IOMMU_CELLS, MMU_MASTERS, PROPS, b1, bytes_equal, i64,
                 props, read_u32)
from .target import QCOM_MSM_IOMMU_V2

__all__ = ["COMPATIBLES", "compatible_table", "roles", "is_pci", "probe"]

# Versions as TargetKernel.version tuples.  `since` is the first of the
# sources read for the model (Debian's 5.10.223, 6.1.192, 6.12.117, 7.2.13)
# whose table has the entry, unless a named change says better; None: all.
_6_1, _6_12, _7_2 = (6, 1, 0), (6, 12, 0), (7, 2, 0)

# (role, driver, compatibles, since): the match tables.  A driver may have
# several rows (entries added later); it is one driver, by name.
COMPATIBLES = [
    (ARM_SMMU, "arm-smmu", ["arm,smmu-v1", "arm,smmu-v2", "arm,mmu-400", "arm,mmu-401",
                            "arm,mmu-500", "cavium,smmu-v2", "nvidia,smmu-500", "qcom,smmu-v2"],
     None),
    (ARM_SMMU_V3, "arm-smmu-v3", ["arm,smmu-v3"], None),
    (QCOM_IOMMU, "qcom-iommu", ["qcom,msm-iommu-v1"], None),
    (QCOM_IOMMU, "qcom-iommu", ["qcom,msm-iommu-v2"], QCOM_MSM_IOMMU_V2),
    # IOMMU drivers without a .capable op: VFIO (from v5.19) never binds behind them.
    (NO_CAPABLE, "exynos-sysmmu", ["samsung,exynos-sysmmu"], None),
    (NO_CAPABLE, "apple-dart", ["apple,t8103-dart", "apple,t6000-dart"], _6_1),
    (NO_CAPABLE, "apple-dart", ["apple,t8103-usb4-dart", "apple,t8110-dart"], _6_12),
    (NO_CAPABLE, "mtk-iommu-v1", ["mediatek,mt2701-m4u"], None),
    (NO_CAPABLE, "mtk-iommu", ["mediatek,mt2712-m4u", "mediatek,mt6779-m4u", "mediatek,mt8167-m4u",
                               "mediatek,mt8173-m4u", "mediatek,mt8183-m4u"], None),
    (NO_CAPABLE, "mtk-iommu", ["mediatek,mt6795-m4u", "mediatek,mt8186-iommu-mm",
                               "mediatek,mt8192-m4u", "mediatek,mt8195-iommu-infra",
                               "mediatek,mt8195-iommu-vdo", "mediatek,mt8195-iommu-vpp"], _6_1),
    (NO_CAPABLE, "mtk-iommu", ["mediatek,mt8188-iommu-infra", "mediatek,mt8188-iommu-vdo",
                               "mediatek,mt8188-iommu-vpp", "mediatek,mt8365-m4u"], _6_12),
    (NO_CAPABLE, "mtk-iommu", ["mediatek,mt6893-iommu-mm", "mediatek,mt8189-iommu-apu",
                               "mediatek,mt8189-iommu-infra", "mediatek,mt8189-iommu-mm"], _7_2),
    (NO_CAPABLE, "rockchip-iommu", ["rockchip,iommu"], None),
    (NO_CAPABLE, "rockchip-iommu", ["rockchip,rk3568-iommu"], _6_1),
    (NO_CAPABLE, "sun50i-iommu", ["allwinner,sun50i-h6-iommu"], None),
    (NO_CAPABLE, "sun50i-iommu", ["allwinner,sun50i-h616-iommu"], _6_12),
    (NO_CAPABLE, "sprd-iommu", ["sprd,iommu-v1"], _6_1),
    (NO_CAPABLE, "ipmmu-vmsa", [
        "renesas,ipmmu-vmsa", "renesas,ipmmu-r8a774a1", "renesas,ipmmu-r8a774b1",
        "renesas,ipmmu-r8a774c0", "renesas,ipmmu-r8a774e1", "renesas,ipmmu-r8a7795",
        "renesas,ipmmu-r8a7796", "renesas,ipmmu-r8a77961", "renesas,ipmmu-r8a77965",
        "renesas,ipmmu-r8a77970", "renesas,ipmmu-r8a77990", "renesas,ipmmu-r8a77995"], None),
    (NO_CAPABLE, "ipmmu-vmsa", ["renesas,ipmmu-r8a77980", "renesas,ipmmu-r8a779a0",
                                "renesas,rcar-gen4-ipmmu-vmsa"], _6_1),
    (NO_CAPABLE, "vsi-iommu", ["verisilicon,iommu-1.2"], _7_2),
    # tegra-smmu is part of the memory controller on Tegra30..Tegra210.
    (NO_CAPABLE, "tegra-smmu", ["nvidia,tegra30-mc", "nvidia,tegra114-mc", "nvidia,tegra124-mc",
                                "nvidia,tegra132-mc", "nvidia,tegra210-mc"], None),
    (NO_CAPABLE, "msm-iommu", ["qcom,apq8064-iommu"], None),
    # The buses whose code reads an iommu-map (of_dma_configure_id): fsl-mc-bus.c,
    # host1x/context.c, cdx/cdx.c, dma/tegra186-gpc-dma.c.
    (FSL_MC, "fsl-mc", ["fsl,qoriq-mc"], None),
    (HOST1X, "host1x", ["nvidia,tegra20-host1x", "nvidia,tegra30-host1x",
                        "nvidia,tegra114-host1x", "nvidia,tegra124-host1x",
                        "nvidia,tegra210-host1x", "nvidia,tegra186-host1x",
                        "nvidia,tegra194-host1x", "nvidia,tegra234-host1x"], _6_1),
    (CDX, "cdx", ["xlnx,versal-net-cdx"], _6_12),
    (GPCDMA, "tegra186-gpc-dma", ["nvidia,tegra186-gpcdma", "nvidia,tegra194-gpcdma",
                                  "nvidia,tegra234-gpcdma", "nvidia,tegra264-gpcdma"], _7_2),
]

_TABLES = {}


def compatible_table(target):
    """(bytes, offsets, roles, drivers, by_length) arrays of the entries of
    COMPATIBLES that the target kernel (a kernels.target.TargetKernel) has,
    for `roles()`, names in small letters (roles() folds the node's
    strings to them); drivers are numbered from 1 by name.  Entries are sorted
    by length, stably (so the first of equal names still wins), and the
    entries of length n are [by_length[n], by_length[n + 1]): a string is
    compared only with names of its own length."""
    key = tuple(target.binds(since) for _, _, _, since in COMPATIBLES)
    if key in _TABLES:
        return _TABLES[key]
    entries = []
    number = {}
    for (role, driver, compatibles, _), present in zip(COMPATIBLES, key):
        if not present:
            continue
        for c in compatibles:
            entries.append((c.lower().encode(), role, number.setdefault(driver, len(number) + 1)))
    entries.sort(key=lambda e: len(e[0]))
    names = [name for name, _, _ in entries]
    lengths = np.array([len(n) for n in names], dtype=np.int64)
    off = np.zeros(len(names) + 1, dtype=np.int64)
    off[1:] = np.cumsum(lengths)
    by_length = np.searchsorted(lengths, np.arange(lengths.max(initial=0) + 2)).astype(np.int64)
    table = (np.frombuffer(b"".join(names), dtype=np.uint8).copy(), off,
             np.array([r for _, r, _ in entries], dtype=np.int8),
             np.array([d for _, _, d in entries], dtype=np.int16), by_length)
    _TABLES[key] = table
    return table


@njit(types.none(DATA, I32_RO, I64_RO, I32_RO, DATA, I64_RO, I8_RO, I16_RO, I64_RO, I8, I16),
      **NJIT)
def _roles(data, compatible, val_off, val_len, table, table_off, table_role, table_driver,
           by_length, role, driver):
    longest = by_length.shape[0] - 2
    for i in range(compatible.shape[0]):
        p = compatible[i]
        if p < 0:
            continue
        start = val_off[p]
        end = start + val_len[p]
        found = False
        for k in range(start, end):
            if data[k] != 0:
                continue
            n = k - start
            if n <= longest:
                for e in range(by_length[n], by_length[n + 1]):
                    if bytes_equal(data, start, n, table, table_off[e], n, True):
                        role[i] = table_role[e]
                        driver[i] = table_driver[e]
                        found = True
                        break
            if found:
                break
            start = k + 1


def roles(t, target):
    """The role and driver of every node: the first `compatible` entry
    found in the target kernel's tables (0 for none; always for the root)."""
    n = t.node_parent.shape[0]
    role = np.zeros(n, dtype=np.int8)
    driver = np.zeros(n, dtype=np.int16)
    _roles(t.data, t.pidx[COMPATIBLE], t.prop_val_off, t.prop_val_len,
           *compatible_table(target), role, driver)
    # of_platform_populate() makes devices of the root's children, never of
    # the root: no driver binds it, whatever its compatible.
    roots = t.node_parent < 0
    role[roots] = 0
    driver[roots] = 0
    return role, driver


@njit(b1(*PROPS, i64), **INNER)
def is_pci(data, pidx, val_off, val_len, node):
    """device_type = "pci"."""
    p = pidx[DEVICE_TYPE, node]
    if p < 0 or val_len[p] < 4:
        return False
    o = val_off[p]
    return data[o] == 112 and data[o + 1] == 99 and data[o + 2] == 105 and data[o + 3] == 0


@njit(types.none(*PROPS, I64_RO, I8_RO, B_RO, I8, B), **NJIT)
def _probe(data, pidx, val_off, val_len, dtb_node_start, role, available, state, legacy):
    for d in range(dtb_node_start.shape[0] - 1):
        generic_seen = False
        legacy_seen = False
        for i in range(dtb_node_start[d], dtb_node_start[d + 1]):
            r = role[i]
            if r < ARM_SMMU or r > NO_CAPABLE:
                continue
            if not available[i]:
                state[i] = PROVIDER_DISABLED
            elif r == ARM_SMMU:
                if read_u32(data, pidx, val_off, val_len, i, GLOBAL_INTERRUPTS, -1) < 0:
                    state[i] = NO_GLOBAL_INTERRUPTS
                    continue
                uses_legacy = pidx[MMU_MASTERS, i] >= 0
                if uses_legacy and not generic_seen:
                    legacy_seen = True
                    state[i] = PROBED
                elif not uses_legacy and not legacy_seen:
                    generic_seen = True
                    state[i] = PROBED
                else:
                    state[i] = MISMATCHED_BINDING
            elif r == ARM_SMMU_V3 and read_u32(data, pidx, val_off, val_len, i, IOMMU_CELLS,
                                               -1) != 1:
                state[i] = BAD_IOMMU_CELLS
            else:
                state[i] = PROBED
        legacy[d] = legacy_seen


def probe(t, role, available):
    """Probe outcome of every IOMMU provider, and per DTB whether the
    arm-smmu driver runs with the legacy `mmu-masters` binding (the first
    arm-smmu that probes fixes the style for the whole system)."""
    state = np.full(t.node_parent.shape[0], NOT_A_PROVIDER, dtype=np.int8)
    legacy = np.zeros(t.dtb_node_start.shape[0] - 1, dtype=np.bool_)
    _probe(*props(t), t.dtb_node_start, role, available, state, legacy)
    return state, legacy
