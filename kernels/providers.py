"""Which driver binds a node, and whether an IOMMU provider probes.

The compatible tables are those of the drivers' of_match tables (Linux
6.12, drivers/iommu/); matching is case-insensitive on any entry of the
node's `compatible`, as of_match_node() does.
"""
import numpy as np
from numba import njit

from .config import NJIT
from .dt import (COMPATIBLE, DEVICE_TYPE, GLOBAL_INTERRUPTS, IOMMU_CELLS,
                 MMU_MASTERS, bytes_equal, find_prop, read_u32)

# Roles.  1-4 are IOMMU drivers, 10-13 the buses whose nodes carry an
# `iommu-map` that kernel code reads (besides PCI host bridges).
NONE, ARM_SMMU, ARM_SMMU_V3, QCOM_IOMMU, NO_CAPABLE = 0, 1, 2, 3, 4
FSL_MC, HOST1X, CDX, GPCDMA = 10, 11, 12, 13
UNKNOWN = 5   # referenced as an IOMMU, but no driver we know binds it

DRIVER_NAMES = {ARM_SMMU: "arm-smmu", ARM_SMMU_V3: "arm-smmu-v3", QCOM_IOMMU: "qcom-iommu",
                NO_CAPABLE: "no-capable", UNKNOWN: "unknown", NONE: "unknown"}

# (role, driver, compatibles): each driver's of_match table.
COMPATIBLES = [
    (ARM_SMMU, "arm-smmu", ["arm,smmu-v1", "arm,smmu-v2", "arm,mmu-400", "arm,mmu-401",
                            "arm,mmu-500", "cavium,smmu-v2", "nvidia,smmu-500", "qcom,smmu-v2"]),
    (ARM_SMMU_V3, "arm-smmu-v3", ["arm,smmu-v3"]),
    (QCOM_IOMMU, "qcom-iommu", ["qcom,msm-iommu-v1", "qcom,msm-iommu-v2"]),
    # IOMMU drivers without a .capable op: VFIO never binds behind them.
    (NO_CAPABLE, "exynos-sysmmu", ["samsung,exynos-sysmmu"]),
    (NO_CAPABLE, "apple-dart", ["apple,t8103-dart", "apple,t8103-usb4-dart", "apple,t8110-dart",
                                "apple,t6000-dart"]),
    (NO_CAPABLE, "mtk-iommu-v1", ["mediatek,mt2701-m4u"]),
    (NO_CAPABLE, "mtk-iommu", [
        "mediatek,mt2712-m4u", "mediatek,mt6779-m4u", "mediatek,mt6795-m4u",
        "mediatek,mt8167-m4u", "mediatek,mt8173-m4u", "mediatek,mt8183-m4u",
        "mediatek,mt8186-iommu-mm", "mediatek,mt8188-iommu-infra", "mediatek,mt8188-iommu-vdo",
        "mediatek,mt8188-iommu-vpp", "mediatek,mt8192-m4u", "mediatek,mt8195-iommu-infra",
        "mediatek,mt8195-iommu-vdo", "mediatek,mt8195-iommu-vpp", "mediatek,mt8365-m4u"]),
    (NO_CAPABLE, "rockchip-iommu", ["rockchip,iommu", "rockchip,rk3568-iommu"]),
    (NO_CAPABLE, "sun50i-iommu", ["allwinner,sun50i-h6-iommu", "allwinner,sun50i-h616-iommu"]),
    (NO_CAPABLE, "sprd-iommu", ["sprd,iommu-v1"]),
    (NO_CAPABLE, "ipmmu-vmsa", [
        "renesas,ipmmu-vmsa", "renesas,ipmmu-r8a774a1", "renesas,ipmmu-r8a774b1",
        "renesas,ipmmu-r8a774c0", "renesas,ipmmu-r8a774e1", "renesas,ipmmu-r8a7795",
        "renesas,ipmmu-r8a7796", "renesas,ipmmu-r8a77961", "renesas,ipmmu-r8a77965",
        "renesas,ipmmu-r8a77970", "renesas,ipmmu-r8a77980", "renesas,ipmmu-r8a77990",
        "renesas,ipmmu-r8a77995", "renesas,ipmmu-r8a779a0", "renesas,rcar-gen4-ipmmu-vmsa"]),
    # tegra-smmu is part of the memory controller on Tegra30..Tegra210.
    (NO_CAPABLE, "tegra-smmu", ["nvidia,tegra30-mc", "nvidia,tegra114-mc", "nvidia,tegra124-mc",
                                "nvidia,tegra132-mc", "nvidia,tegra210-mc"]),
    (NO_CAPABLE, "msm-iommu", ["qcom,apq8064-iommu"]),
    (FSL_MC, "fsl-mc", ["fsl,qoriq-mc"]),
    (HOST1X, "host1x", ["nvidia,tegra20-host1x", "nvidia,tegra30-host1x",
                        "nvidia,tegra114-host1x", "nvidia,tegra124-host1x",
                        "nvidia,tegra210-host1x", "nvidia,tegra186-host1x",
                        "nvidia,tegra194-host1x", "nvidia,tegra234-host1x"]),
    (CDX, "cdx", ["xlnx,versal-net-cdx"]),
    (GPCDMA, "tegra186-gpc-dma", ["nvidia,tegra186-gpcdma", "nvidia,tegra194-gpcdma",
                                  "nvidia,tegra234-gpcdma"]),
]


def compatible_table():
    """(bytes, offsets, roles, drivers) arrays of the tables above, for
    `roles()`; drivers number the entries of COMPATIBLES from 1."""
    names, roles, drivers = [], [], []
    for driver, (role, _, compatibles) in enumerate(COMPATIBLES, start=1):
        for c in compatibles:
            names.append(c.lower().encode())
            roles.append(role)
            drivers.append(driver)
    off = np.zeros(len(names) + 1, dtype=np.int64)
    off[1:] = np.cumsum([len(n) for n in names])
    return (np.frombuffer(b"".join(names), dtype=np.uint8).copy(), off,
            np.array(roles, dtype=np.int8), np.array(drivers, dtype=np.int16))


@njit(**NJIT)
def roles(t, table, table_off, table_role, table_driver):
    """The role and driver of every node: the first `compatible` entry
    found in a table (0 for none)."""
    n = t.node_parent.shape[0]
    role = np.zeros(n, dtype=np.int8)
    driver = np.zeros(n, dtype=np.int16)
    for i in range(n):
        p = find_prop(t, i, COMPATIBLE)
        if p < 0:
            continue
        start = t.prop_val_off[p]
        end = start + t.prop_val_len[p]
        found = False
        for k in range(start, end):
            if t.data[k] != 0:
                continue
            for e in range(table_role.shape[0]):
                if bytes_equal(t.data, start, k - start, table, table_off[e],
                               table_off[e + 1] - table_off[e], True):
                    role[i] = table_role[e]
                    driver[i] = table_driver[e]
                    found = True
                    break
            if found:
                break
            start = k + 1
    return role, driver


@njit(**NJIT)
def is_pci(t, node):
    """device_type = "pci"."""
    p = find_prop(t, node, DEVICE_TYPE)
    if p < 0 or t.prop_val_len[p] < 4:
        return False
    o = t.prop_val_off[p]
    return t.data[o] == 112 and t.data[o + 1] == 99 and t.data[o + 2] == 105 and t.data[o + 3] == 0


# Probe outcome of a provider (probe_state).
PROBED = 0
NOT_A_PROVIDER = 1
PROVIDER_DISABLED = 2     # it or an ancestor has status != okay: no device
NO_GLOBAL_INTERRUPTS = 3  # arm-smmu: "missing #global-interrupts property"
BAD_IOMMU_CELLS = 4       # arm-smmu-v3: #iommu-cells missing or not 1
MISMATCHED_BINDING = 5    # arm-smmu: "not probing due to mismatched DT properties"


@njit(**NJIT)
def probe(t, role, available):
    """Probe outcome of every IOMMU provider, and per DTB whether the
    arm-smmu driver runs with the legacy `mmu-masters` binding (the first
    arm-smmu that probes fixes the style for the whole system)."""
    n = t.node_parent.shape[0]
    n_dtb = t.dtb_node_start.shape[0] - 1
    state = np.full(n, NOT_A_PROVIDER, dtype=np.int8)
    legacy = np.zeros(n_dtb, dtype=np.bool_)
    for d in range(n_dtb):
        generic_seen = False
        legacy_seen = False
        for i in range(t.dtb_node_start[d], t.dtb_node_start[d + 1]):
            r = role[i]
            if r < ARM_SMMU or r > NO_CAPABLE:
                continue
            if not available[i]:
                state[i] = PROVIDER_DISABLED
            elif r == ARM_SMMU:
                if read_u32(t, i, GLOBAL_INTERRUPTS, -1) < 0:
                    state[i] = NO_GLOBAL_INTERRUPTS
                    continue
                uses_legacy = find_prop(t, i, MMU_MASTERS) >= 0
                if uses_legacy and not generic_seen:
                    legacy_seen = True
                    state[i] = PROBED
                elif not uses_legacy and not legacy_seen:
                    generic_seen = True
                    state[i] = PROBED
                else:
                    state[i] = MISMATCHED_BINDING
            elif r == ARM_SMMU_V3 and read_u32(t, i, IOMMU_CELLS, -1) != 1:
                state[i] = BAD_IOMMU_CELLS
            else:
                state[i] = PROBED
        legacy[d] = legacy_seen
    return state, legacy
