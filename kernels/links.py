"""Masters and the providers they end up attached to: every (provider,
master) link of every DTB, with why a link leads to no IOMMU.

Three ways a master names its IOMMU (docs/links.md), each in its module:
`iommus` on the device (kernels/iommus.py), `iommu-map` on a bus node
(kernels/iommu_map.py: PCI host bridges, fsl-mc, host1x, CDX, GPC DMA),
and the legacy `mmu-masters` on an arm-smmu node (kernels/mmu_masters.py).
What depends on the target kernel comes
in as plain flags: `map_cells` (of_map_id of 7.2: out-specifiers of the
target's #iommu-cells, no 32-bit wraparound) and `unbind_disabled` (6.12:
no driver for a PCI function whose node is disabled).

Work and memory are linear in links, and bounded: a DTB with more than
MAX_LINKS_PER_DTB links keeps none (find_links counts them per DTB, for the
report) instead of exhausting memory.
"""
import numpy as np
from numba import njit

from .codes import (A_LEGACY_SYSTEM, A_NOT_PROBED, A_PROVIDER_DISABLED, A_XLATE_CELLS, ARM_SMMU,
                    ATTACHED, CDX, CDX_DEVICE, FSL_MC, FSL_MC_OBJECT, GPCDMA, GPCDMA_CHANNEL,
                    HOST1X, HOST1X_CONTEXT, MAX_LINKS_PER_DTB, NO_CAPABLE, PCI_DISCOVERED,
                    PROBED, QCOM_IOMMU)
from .config import INNER, NJIT
from .dt import (B, B_RO, DEVICE_TYPE, I8, I8_RO, I16_RO, I32_RO, I64, I64_RO, IOMMU_CELLS,
                 IOMMU_MAP, IOMMUS, MMU_MASTERS, PHANDLES, PROPS, b1, i64, phandles, props,
                 read_u32)
from .iommu_map import map_links
from .iommus import iommus_link
from .link_rows import LINKS
from .mmu_masters import legacy_links
from .providers import is_pci
from .table import LINK_DTYPE

__all__ = ["MAX_LINKS_PER_DTB", "find_links"]


@njit(i64(I8_RO, I8_RO, B_RO, b1, i64), **INNER)
def _attach(role, state, available_own, legacy_system, target):
    """of_iommu_xlate() of one target: ATTACHED or why not."""
    if not available_own[target]:
        return A_PROVIDER_DISABLED
    r = role[target]
    if r < ARM_SMMU or r > NO_CAPABLE:
        return ATTACHED            # unknown driver: judged unsupported-iommu
    if state[target] != PROBED:
        return A_NOT_PROBED
    if r == ARM_SMMU and legacy_system:
        return A_LEGACY_SYSTEM
    return ATTACHED


@njit(i64(*PROPS, *PHANDLES, I32_RO, I32_RO, I64_RO, I32_RO, I8_RO, I16_RO, I8_RO, B_RO, B_RO,
          B_RO, b1, b1, b1, i64, I8, I8, B, LINKS, I64), **NJIT)
def _find_links(data, pidx, val_off, val_len, node_dtb, node_phandle, phandle_sorted,
                dtb_node_start, node_parent, node_depth, node_name_off, node_name_len, role,
                driver, state, own_ok, tree_ok, legacy, legacy_bindings, map_cells,
                unbind_disabled, limit, xlate, xlate_iommus, seen, out, dtb_links):
    # Plain arrays in the per-node loop: the few nodes that carry one of
    # these properties are read further.
    device_type = pidx[DEVICE_TYPE]
    iommu_map = pidx[IOMMU_MAP]
    iommus = pidx[IOMMUS]
    mmu_masters = pidx[MMU_MASTERS]
    k = 0
    for d in range(dtb_node_start.shape[0] - 1):
        start, end = dtb_node_start[d], dtb_node_start[d + 1]
        for i in range(start, end):
            xlate[i] = _attach(role, state, own_ok, legacy[d], i)
            # An iommus entry's specifier has the target's #iommu-cells, and
            # qcom_iommu_of_xlate() takes exactly one.
            xlate_iommus[i] = xlate[i]
            if xlate[i] == ATTACHED and role[i] == QCOM_IOMMU and \
                    read_u32(data, pidx, val_off, val_len, i, IOMMU_CELLS, -1) != 1:
                xlate_iommus[i] = A_XLATE_CELLS
        k_start = k
        pci_depth = -1          # depth of the PCI host bridge we are below, if any
        legacy_masters = False
        # The root is never a device (of_platform_populate() starts at its
        # children): neither a master nor a host bridge.
        for i in range(start + 1, end):
            if pci_depth >= 0 and node_depth[i] <= pci_depth:
                pci_depth = -1
            if pci_depth >= 0:
                continue
            has_map = iommu_map[i] >= 0
            par = node_parent[i]
            legacy_masters = legacy_masters or mmu_masters[i] >= 0
            if device_type[i] >= 0 and is_pci(data, pidx, val_off, val_len, i) and \
                    (device_type[par] < 0 or not is_pci(data, pidx, val_off, val_len, par)):
                # A host bridge: its subtree holds PCI functions, not platform devices.
                pci_depth = node_depth[i]
                if has_map:
                    k = map_links(data, pidx, val_off, val_len, node_dtb, node_phandle,
                                   phandle_sorted, dtb_node_start, node_parent, node_depth,
                                   node_name_off, node_name_len, d, i, PCI_DISCOVERED, own_ok,
                                   tree_ok, xlate, seen, map_cells, unbind_disabled, out, k)
            # The other buses whose iommu-map kernel code reads.
            r = role[i]
            kind = -1
            if r == FSL_MC:
                kind = FSL_MC_OBJECT
            elif r == HOST1X:
                kind = HOST1X_CONTEXT
            elif r == CDX:
                kind = CDX_DEVICE
            elif r == GPCDMA:
                kind = GPCDMA_CHANNEL
            if has_map and kind >= 0:
                k = map_links(data, pidx, val_off, val_len, node_dtb, node_phandle,
                               phandle_sorted, dtb_node_start, node_parent, node_depth,
                               node_name_off, node_name_len, d, i, kind, own_ok, tree_ok, xlate,
                               seen, map_cells, unbind_disabled, out, k)
            if iommus[i] >= 0:   # a platform device (a host bridge's controller too)
                k = iommus_link(data, pidx, val_off, val_len, node_dtb, node_phandle,
                                 phandle_sorted, dtb_node_start, d, i, driver, tree_ok,
                                 xlate_iommus, out, k)
        if legacy_masters:
            k = legacy_links(data, pidx, val_off, val_len, node_dtb, node_phandle,
                              phandle_sorted, dtb_node_start, node_parent, node_depth,
                              node_name_off, node_name_len, d, role, state, own_ok, tree_ok,
                              seen, legacy_bindings, unbind_disabled, out, k)
        dtb_links[d] = k - k_start
        if k - k_start > limit:
            k = k_start         # a link explosion: reported by the caller, not kept
    return k


def find_links(t, role, driver, state, own_ok, tree_ok, legacy, legacy_bindings, map_cells,
               unbind_disabled, limit=MAX_LINKS_PER_DTB):
    """Every link of every DTB: (links, dtb_links), links a table of
    kernels.table.LINK_DTYPE, one row a link; dtb_links[d] the number of
    links of DTB d, a DTB with more than `limit` keeping none of them."""
    n_nodes = t.node_parent.shape[0]
    n_dtb = t.dtb_node_start.shape[0] - 1
    dtb_links = np.zeros(n_dtb, dtype=np.int64)
    xlate = np.empty(n_nodes, dtype=np.int8)
    xlate_iommus = np.empty(n_nodes, dtype=np.int8)
    seen = np.zeros(int(np.diff(t.dtb_node_start).max(initial=0)), dtype=np.bool_)
    out = np.empty(max(1024, n_nodes // 4), dtype=LINK_DTYPE)
    while True:
        n = _find_links(*props(t), *phandles(t), t.node_parent, t.node_depth, t.node_name_off,
                        t.node_name_len, role, driver, state, own_ok, tree_ok, legacy,
                        bool(legacy_bindings), bool(map_cells), bool(unbind_disabled), limit,
                        xlate, xlate_iommus, seen, out, dtb_links)
        if n <= out.shape[0]:
            return out[:n], dtb_links
        # More links than rows: counted, not stored; again with room for all.
        out = np.empty(n, dtype=LINK_DTYPE)
