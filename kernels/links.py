"""Masters and the providers they end up attached to: every (provider,
master) link of every DTB, with why a link leads to no IOMMU.

Three ways a master names its IOMMU (../shared/SPEC.md section 3):
`iommus` on the device (of_iommu_configure_dev), `iommu-map` on a bus node
(of_map_id: PCI host bridges, fsl-mc, host1x, CDX, GPC DMA), and the legacy
`mmu-masters` on an arm-smmu node.  What depends on the target kernel comes
in as plain flags: `map_cells` (of_map_id of 7.2: out-specifiers of the
target's #iommu-cells, no 32-bit wraparound) and `unbind_disabled` (6.12:
no driver for a PCI function whose node is disabled).

Work and memory are linear in links, and bounded: a DTB with more than
MAX_LINKS_PER_DTB links keeps none (find_links counts them per DTB, for the
report) instead of exhausting memory.

The kernels take the arrays they read (kernels/dt.py: PROPS, PHANDLES, and
`xlate`, what of_iommu_xlate() answers for each node named as an IOMMU).
"""
import numpy as np
from numba import njit, types

from .codes import (LINK_COLUMNS, L_ATTACH, L_BRIDGE, L_BRIDGE_FUNCTION, L_DIAG, L_DIAG_ARG,
                    L_DIAG_ARG2, L_DIAG_NODE, L_DTB, L_ENABLED, L_KIND, L_MASTER, L_NOTE,
                    L_PROVIDER, L_RID, L_VIA, MAX_LINKS_PER_DTB, A_BAD_ENTRY, A_BAD_MAP, A_LEGACY_SYSTEM, A_LEGACY_UNSUPPORTED,
                    A_NO_TARGET, A_NOT_A_PROVIDER, A_NOT_PROBED, A_OTHER_DRIVER,
                    A_PROVIDER_DISABLED, A_UNCOVERED_ID, A_XLATE_CELLS, ARM_SMMU, ATTACHED,
                    CDX,
                    CDX_DEVICE, D_EMPTY_ENTRY, D_MAP_CELLS_MAX, D_MAP_LENGTH, D_MAP_MASK,
                    D_MAP_MISREAD, D_MAP_NEEDS_FOUR_CELLS, D_MAP_NEEDS_TARGET_CELLS,
                    D_MAP_TRUNCATED, D_MAP_WIDE_RANGE, D_MIXED_DRIVERS, D_NO_IOMMU_CELLS,
                    D_NONE, D_PHANDLE_NOWHERE, D_SHORT_LIST, FSL_MC, FSL_MC_OBJECT, GPCDMA,
                    GPCDMA_CHANNEL, HOST1X, HOST1X_CONTEXT, N_GUESS_UNMATCHED, N_GUESSED_BUS,
                    N_NONE, N_PLACEHOLDER, N_TRUNCATED, NO_CAPABLE, PCI_DISCOVERED,
                    PCI_DT_CHILD, PLATFORM, PROBED, QCOM_IOMMU, VIA_IOMMU_MAP, VIA_IOMMUS,
                    VIA_MMU_MASTERS)
from .config import INNER, NJIT
from .dt import (B, B_RO, BUS_RANGE, DATA, DEVICE_TYPE, I8, I8_RO, I16_RO, I32_RO,
                 I64, I64_2D, I64_2D_RO, I64_RO, IOMMU_CELLS, IOMMU_MAP, IOMMU_MAP_MASK, IOMMUS,
                 MMU_MASTERS, PH_END, PH_NO_CELLS, PH_NO_NODE, PH_OK, PH_OVERRUN, PHANDLES,
                 PROPS, REG, STREAM_ID_CELLS, b1, cell, i64, phandle_entry, phandles, props,
                 read_u32)
from .fdt import resolve_phandle
from .providers import is_pci

# The parsed entries of an iommu-map (map_entries), one row an entry.
E_BASE, E_TARGET, E_PHANDLE, E_LENGTH, E_CELLS = range(5)
# Most cells an out-specifier may have (MAX_PHANDLE_ARGS).
MAX_PHANDLE_ARGS = 16
# Where the walk of an iommu-map fails: (attach, diag, arg, arg2, node), or
# (ATTACHED, D_NONE, 0, 0, -1).
ERROR = types.UniTuple(i64, 5)


@njit(i64(i64), **INNER)
def _ph_diag(code):
    if code == PH_NO_NODE:
        return D_PHANDLE_NOWHERE
    if code == PH_NO_CELLS:
        return D_NO_IOMMU_CELLS
    if code == PH_OVERRUN:
        return D_SHORT_LIST
    return D_NONE


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


# -- iommu-map: of_map_id() ----------------------------------------------------------

@njit(b1(DATA, I64_RO, i64, i64), **INNER)
def _one_cell_map(data, val_off, p, n_cells):
    """of_check_bad_map() (7.2): 4-cell entries, all of one phandle and of
    length 1, aimed at a 2-cell IOMMU, are read as 1-cell."""
    if n_cells % 4:
        return False
    ph = cell(data, val_off, p, 1)
    for i in range(0, n_cells, 4):
        if cell(data, val_off, p, i + 1) != ph or cell(data, val_off, p, i + 3) != 1:
            return False
    return True


@njit(types.Tuple((I64_2D, ERROR))(*PROPS, *PHANDLES, i64, i64, b1), **INNER)
def map_entries(data, pidx, val_off, val_len, node_dtb, node_phandle, phandle_sorted,
                dtb_node_start, d, p, map_cells):
    """The entries of iommu-map p of DTB d, as of_map_id() walks them:
    (entries int64[n, 5] with columns E_*, error), error being ERROR of the
    entry where the walk fails, or ATTACHED.  Entries before a failure still
    translate the IDs they cover.

    map_cells False (up to 7.1): fixed 4-cell entries, the length checked
    first; a phandle is resolved only when its entry matches (E_TARGET -1
    when it points nowhere).  True (7.2): 3 + #iommu-cells of the entry's
    target (1 when absent), read entry by entry, so a phandle to nowhere, a
    cell count above MAX_PHANDLE_ARGS or a short tail fails there."""
    n_bytes = np.int64(val_len[p])
    n_cells = n_bytes // 4
    entries = np.empty((max(n_cells // 3, 1), 5), dtype=np.int64)
    if not map_cells:
        if n_bytes == 0 or n_bytes % 16 != 0:
            return entries[:0], (A_BAD_MAP, D_MAP_LENGTH, n_bytes, 0, -1)
        for e in range(n_cells // 4):
            ph = cell(data, val_off, p, 4 * e + 1)
            entries[e, E_BASE] = cell(data, val_off, p, 4 * e)
            entries[e, E_TARGET] = resolve_phandle(node_dtb, node_phandle, phandle_sorted,
                                                   dtb_node_start, d, ph)
            entries[e, E_PHANDLE] = ph
            entries[e, E_LENGTH] = cell(data, val_off, p, 4 * e + 3)
            entries[e, E_CELLS] = 1
        return entries[:n_cells // 4], (ATTACHED, D_NONE, 0, 0, -1)
    if n_bytes % 4 != 0:
        return entries[:0], (A_BAD_MAP, D_MAP_TRUNCATED, n_bytes, 0, -1)
    offset = 0
    n = 0
    one_cell = False
    while offset < n_cells:
        if n_cells - offset < 2:
            return entries[:n], (A_BAD_MAP, D_MAP_TRUNCATED, n_bytes, 0, -1)
        ph = cell(data, val_off, p, offset + 1)
        target = resolve_phandle(node_dtb, node_phandle, phandle_sorted, dtb_node_start, d, ph)
        if target < 0:
            return entries[:n], (A_NO_TARGET, D_PHANDLE_NOWHERE, ph, 0, -1)
        cells = 1 if one_cell else read_u32(data, pidx, val_off, val_len, target, IOMMU_CELLS, 1)
        if cells > MAX_PHANDLE_ARGS:
            return entries[:n], (A_BAD_MAP, D_MAP_CELLS_MAX, 0, cells, target)
        if offset == 0 and cells == 2:
            one_cell = _one_cell_map(data, val_off, p, n_cells)
            if one_cell:
                cells = 1
        if n_cells - offset < 3 + cells:
            return entries[:n], (A_BAD_MAP, D_MAP_TRUNCATED, n_bytes, 0, -1)
        entries[n, E_BASE] = cell(data, val_off, p, offset)
        entries[n, E_TARGET] = target
        entries[n, E_PHANDLE] = ph
        entries[n, E_CELLS] = cells
        offset += 3 + cells
        entries[n, E_LENGTH] = cell(data, val_off, p, offset - 1)
        n += 1
    return entries[:n], (ATTACHED, D_NONE, 0, 0, -1)


@njit(types.UniTuple(i64, 6)(I64_2D_RO, ERROR, i64, i64, b1), **INNER)
def map_lookup(entries, error, mask, rid, map_cells):
    """of_map_id() of one ID over map_entries(): (attach, target, diag,
    arg, arg2, node)."""
    masked = rid & mask
    for e in range(entries.shape[0]):
        base = entries[e, E_BASE]
        length = entries[e, E_LENGTH]
        if base & ~mask & 0xffffffff:
            return A_BAD_MAP, -1, D_MAP_MASK, base, 0, -1
        if masked < base:
            continue
        if map_cells:
            if masked - base >= length:          # u32 id_off: no wraparound
                continue
        elif masked >= (base + length) & 0xffffffff:   # u32 id_base + id_len wraps
            continue
        target = entries[e, E_TARGET]
        if target < 0:
            return A_NO_TARGET, -1, D_PHANDLE_NOWHERE, entries[e, E_PHANDLE], 0, -1
        if map_cells and length > 1 and entries[e, E_CELLS] > 1:
            return A_BAD_MAP, -1, D_MAP_WIDE_RANGE, length, entries[e, E_CELLS], target
        return ATTACHED, target, D_NONE, 0, 0, -1
    attach, diag, arg, arg2, node = error
    if attach != ATTACHED:
        return attach, -1, diag, arg, arg2, node
    return A_UNCOVERED_ID, -1, D_NONE, 0, 0, -1


@njit(types.UniTuple(i64, 3)(*PROPS, I64_2D_RO, ERROR, b1, i64), **INNER)
def map_era(data, pidx, val_off, val_len, other, other_error, map_cells, attach):
    """A map written for the other of_map_id() than the target's:
    (diag, arg2, node), or D_NONE.  `other`, `other_error`: the map as the
    other reads it (map_entries with `not map_cells`); `attach`: the
    target's reading's error[0].  Before 7.2: the map reads cleanly with
    7.2's out-specifiers and some entry's differ from 1 cell (4-cell reading
    fails on its length, or misreads it).  From 7.2: the map fails there but
    is a clean 4-cell map of known targets."""
    if other_error[0] != ATTACHED:
        return D_NONE, 0, -1
    if not map_cells:
        for e in range(other.shape[0]):
            if other[e, E_CELLS] != 1:
                diag = D_MAP_NEEDS_TARGET_CELLS if attach != ATTACHED else D_MAP_MISREAD
                return diag, other[e, E_CELLS], other[e, E_TARGET]
        return D_NONE, 0, -1
    for e in range(other.shape[0]):
        if other[e, E_TARGET] < 0:
            return D_NONE, 0, -1
    if attach == ATTACHED or other.shape[0] == 0:
        return D_NONE, 0, -1
    target = other[0, E_TARGET]
    return D_MAP_NEEDS_FOUR_CELLS, read_u32(data, pidx, val_off, val_len, target, IOMMU_CELLS,
                                            1), target


@njit(types.Tuple((I64, b1))(I64_2D_RO, B, i64), **INNER)
def map_providers(entries, seen, start):
    """The distinct targets of a map's entries, in entry order, and whether
    it is a placeholder (every entry of length 0, filled in by firmware).
    `seen` is scratch, one flag per node of the DTB (from node `start`),
    all False before and after: linear in entries, whatever the map."""
    n = entries.shape[0]
    placeholder = n > 0
    targets = np.empty(n, dtype=np.int64)
    k = 0
    for e in range(n):
        if entries[e, E_LENGTH] != 0:
            placeholder = False
        target = entries[e, E_TARGET]
        if target >= 0 and not seen[target - start]:
            seen[target - start] = True
            targets[k] = target
            k += 1
    for q in range(k):
        seen[targets[q] - start] = False
    return targets[:k], placeholder


@njit(types.Tuple((b1, i64, i64))(I64_2D_RO, i64), **INNER)
def _all_wide(entries, target):
    """7.2: every entry of this target that covers IDs maps more than one ID
    to a specifier of more than one cell (of_map_id refuses each)."""
    length = np.int64(0)
    cells = np.int64(0)
    for e in range(entries.shape[0]):
        if entries[e, E_TARGET] != target or entries[e, E_LENGTH] == 0:
            continue
        if entries[e, E_LENGTH] == 1 or entries[e, E_CELLS] <= 1:
            return False, np.int64(0), np.int64(0)
        length, cells = entries[e, E_LENGTH], entries[e, E_CELLS]
    return length > 0, length, cells


# -- PCI functions -------------------------------------------------------------------

MULTIFUNC = np.frombuffer(b"multifunc-device", dtype=np.uint8)


@njit(b1(DATA, I64_RO, I32_RO, i64), **INNER)
def _is_multifunc(data, node_name_off, node_name_len, node):
    """of_node_name_eq(node, "multifunc-device"): the name before any '@'."""
    n = node_name_len[node]
    o = node_name_off[node]
    m = MULTIFUNC.shape[0]
    if n < m or (n > m and data[o + m] != 64):
        return False
    for k in range(m):
        if data[o + k] != MULTIFUNC[k]:
            return False
    return True


@njit(I64_2D(*PROPS, I32_RO, I32_RO, I64_RO, I32_RO, i64, i64), **INNER)
def pci_functions(data, pidx, val_off, val_len, node_parent, node_depth, node_name_off,
                  node_name_len, bridge, dtb_end):
    """The PCI function nodes below a host bridge (of a DTB whose nodes end
    at dtb_end), as (node, bus, devfn, guessed, is_bridge) rows.  On each
    bus (the host bridge, or a PCI-PCI bridge function) the function nodes
    are its children and its `multifunc-device` grandchildren with a 5-cell
    `reg` (of_pci_get_devfn), the first of a devfn winning
    (of_pci_find_child_device).  Root-bus functions sit on bus-range's
    first bus; below a root port the bus is assigned at enumeration: reg's
    bus field is the guess."""
    # Nodes are depth-first: the bridge's subtree is [bridge + 1, end).
    end = bridge + 1
    while end < dtb_end and node_depth[end] > node_depth[bridge]:
        end += 1
    size = end - bridge
    rows = np.empty((size, 5), dtype=np.int64)
    k = 0
    bus0 = read_u32(data, pidx, val_off, val_len, bridge, BUS_RANGE, 0)
    # Each bus node (the bridge, or a matched function) gets a 256-bit set of
    # the devfns taken on it (8 words of 32 bits) when it first needs one:
    # memory linear in nodes.  bus_slot[j - bridge]: node j's set, row_of[j -
    # bridge]: its row.
    bus_slot = np.empty(size, dtype=np.int64)
    row_of = np.empty(size, dtype=np.int64)
    for j in range(size):
        bus_slot[j] = -1
        row_of[j] = -1
    taken = np.empty((size, 8), dtype=np.int64)
    n_slots = 0
    for j in range(bridge + 1, end):
        reg = pidx[REG, j]
        if reg < 0 or val_len[reg] < 20:
            continue                # not a function node
        bus_node = node_parent[j]
        if bus_node > bridge and _is_multifunc(data, node_name_off, node_name_len, bus_node):
            bus_node = node_parent[bus_node]
        if row_of[bus_node - bridge] < 0 and bus_node != bridge:
            continue                # not a bus: below something that is no function
        reg0 = cell(data, val_off, reg, 0)
        devfn = (reg0 >> 8) & 0xff
        slot = bus_slot[bus_node - bridge]
        if slot < 0:
            slot = bus_slot[bus_node - bridge] = n_slots
            n_slots += 1
            for w in range(8):
                taken[slot, w] = 0
        bit = 1 << (devfn & 31)
        if taken[slot, devfn >> 5] & bit:
            continue
        taken[slot, devfn >> 5] |= bit
        row_of[j - bridge] = k
        if bus_node != bridge:
            rows[row_of[bus_node - bridge], 4] = 1    # its parent function is a bridge
        rows[k, 0] = j
        rows[k, 1] = bus0 if bus_node == bridge else (reg0 >> 16) & 0xff
        rows[k, 2] = devfn
        rows[k, 3] = 0 if bus_node == bridge else 1
        rows[k, 4] = 1 if is_pci(data, pidx, val_off, val_len, j) else 0
        k += 1
    return rows[:k]


# -- links -------------------------------------------------------------------------

@njit(i64(I64_2D, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64,
          i64), **INNER)
def _row(out, k, d, provider, master, via, kind, bridge, bridge_function, enabled,
         attach, note, diag, diag_arg, rid, diag_arg2, diag_node):
    if k >= out.shape[0]:
        return k + 1           # counted, not stored: the caller grows `out`
    r = out[k]
    r[L_DTB] = d
    r[L_PROVIDER] = provider
    r[L_MASTER] = master
    r[L_VIA] = via
    r[L_KIND] = kind
    r[L_BRIDGE] = bridge
    r[L_BRIDGE_FUNCTION] = bridge_function
    r[L_ENABLED] = enabled
    r[L_ATTACH] = attach
    r[L_NOTE] = note
    r[L_DIAG] = diag
    r[L_DIAG_ARG] = diag_arg
    r[L_RID] = rid
    r[L_DIAG_ARG2] = diag_arg2
    r[L_DIAG_NODE] = diag_node
    return k + 1


@njit(i64(*PROPS, *PHANDLES, I32_RO, I32_RO, I64_RO, I32_RO, i64, i64, i64, B_RO, B_RO, I8_RO, B,
          b1, b1, I64_2D, i64), **INNER)
def _map_links(data, pidx, val_off, val_len, node_dtb, node_phandle, phandle_sorted,
               dtb_node_start, node_parent, node_depth, node_name_off, node_name_len, d, node,
               kind, own_ok, tree_ok, xlate, seen, map_cells, unbind_disabled, out, k):
    """The links of a bus node's iommu-map.  A PCI host bridge's (kind
    PCI_DISCOVERED): its DT function nodes, then the devices discovered on
    the bus; any bus's devices found at run time: one link per (bus node,
    provider of the map)."""
    p = pidx[IOMMU_MAP, node]
    entries, error = map_entries(data, pidx, val_off, val_len, node_dtb, node_phandle,
                                 phandle_sorted, dtb_node_start, d, p, map_cells)
    other, other_error = map_entries(data, pidx, val_off, val_len, node_dtb, node_phandle,
                                     phandle_sorted, dtb_node_start, d, p, not map_cells)
    era, era_cells, era_node = map_era(data, pidx, val_off, val_len, other, other_error,
                                       map_cells, error[0])
    targets, placeholder = map_providers(entries, seen, dtb_node_start[d])
    if kind == PCI_DISCOVERED:
        # The host bridge's DT function nodes, each by its requester ID.
        mask = read_u32(data, pidx, val_off, val_len, node, IOMMU_MAP_MASK, 0xffffffff)
        readable = error[0] == ATTACHED
        functions = pci_functions(data, pidx, val_off, val_len, node_parent, node_depth,
                                  node_name_off, node_name_len, node, dtb_node_start[d + 1])
        for f in range(functions.shape[0]):
            function, bus, devfn = functions[f, 0], functions[f, 1], functions[f, 2]
            guessed, bridge_fn = functions[f, 3], functions[f, 4]
            rid = (bus << 8) | devfn
            # drivers/pci/bus.c from 6.12: a function whose node is disabled is
            # enumerated but no driver (vfio-pci included) matches it.
            enabled = tree_ok[node] and (own_ok[function] or not unbind_disabled)
            attach, target, diag, arg, arg2, diag_node = map_lookup(entries, error, mask, rid,
                                                                    map_cells)
            if era != D_NONE:
                diag, arg, arg2, diag_node = era, val_len[p], era_cells, era_node
            note = N_GUESSED_BUS if guessed else N_NONE
            if readable and (placeholder or (attach == A_UNCOVERED_ID and guessed)):
                note = N_PLACEHOLDER if placeholder else N_GUESS_UNMATCHED
                for target in targets:
                    k = _row(out, k, d, target, function, VIA_IOMMU_MAP, PCI_DT_CHILD, node,
                             bridge_fn, enabled, xlate[target], note, diag, arg, rid, arg2,
                             diag_node)
                continue
            if attach == ATTACHED:
                attach = xlate[target]
            k = _row(out, k, d, target, function, VIA_IOMMU_MAP, PCI_DT_CHILD, node, bridge_fn,
                     enabled, attach, note, diag, arg, rid, arg2, diag_node)
    # The devices found at run time.
    enabled = tree_ok[node]
    attach, diag, arg, arg2, diag_node = error
    if era != D_NONE:
        diag, arg, arg2, diag_node = era, val_len[p], era_cells, era_node
    if attach != ATTACHED and entries.shape[0] == 0:
        return _row(out, k, d, -1, node, VIA_IOMMU_MAP, kind, node, 0, enabled,
                    attach, N_NONE, diag, arg, -1, arg2, diag_node)
    note = N_PLACEHOLDER if placeholder and attach == ATTACHED else N_NONE
    if attach == ATTACHED:
        # 4-cell maps resolve a phandle only when its entry matches: one that
        # points nowhere fails the IDs it covers.
        for e in range(entries.shape[0]):
            if entries[e, E_TARGET] < 0:
                attach, diag, arg = A_NO_TARGET, D_PHANDLE_NOWHERE, entries[e, E_PHANDLE]
                if era != D_NONE:
                    diag, arg = era, val_len[p]
                break
    if attach != ATTACHED:
        k = _row(out, k, d, -1, node, VIA_IOMMU_MAP, kind, node, 0, enabled,
                 attach, note, diag, arg, -1, arg2, diag_node)
    for target in targets:
        a = xlate[target]
        g, g_arg, g_arg2, g_node = (era, val_len[p], era_cells, era_node) \
            if era != D_NONE else (D_NONE, 0, 0, -1)
        if map_cells:
            wide, length, cells = _all_wide(entries, target)
            if wide:
                a, g, g_arg, g_arg2, g_node = A_BAD_MAP, D_MAP_WIDE_RANGE, length, cells, target
        k = _row(out, k, d, target, node, VIA_IOMMU_MAP, kind, node, 0, enabled,
                 a, note, g, g_arg, -1, g_arg2, g_node)
    return k


@njit(i64(*PROPS, *PHANDLES, i64, i64, I16_RO, B_RO, I8_RO, I64_2D, i64), **INNER)
def _iommus_link(data, pidx, val_off, val_len, node_dtb, node_phandle, phandle_sorted,
                 dtb_node_start, d, node, driver, tree_ok, xlate, out, k):
    """of_iommu_configure_dev(): every entry is translated; the device is
    attached to the first entry's IOMMU, an entry of another driver is
    refused (-EINVAL) and any failure leaves it with none.  Parsing stops
    quietly at the first entry that does not parse."""
    p = pidx[IOMMUS, node]
    cur = 0
    first = -1
    attach = ATTACHED
    note = N_NONE
    diag = D_NONE
    arg = 0
    idx = 0
    while True:
        code, target, nxt = phandle_entry(data, pidx, val_off, val_len, node_dtb, node_phandle,
                                          phandle_sorted, dtb_node_start, d, p, cur,
                                          IOMMU_CELLS)
        if code == PH_OK and target < 0:
            diag = D_EMPTY_ENTRY
            code = PH_END
        if code != PH_OK:
            if code != PH_END:
                diag = _ph_diag(code)
                arg = cell(data, val_off, p, cur) if code == PH_NO_NODE else target
            if idx == 0:
                attach = A_BAD_ENTRY
                if code == PH_NO_CELLS:
                    first = target
            elif code != PH_END or diag != D_NONE:
                note = N_TRUNCATED
            break
        if idx == 0:
            first = target
            attach = xlate[target]
        else:
            a = xlate[target]
            if a != ATTACHED:
                attach = a
            elif driver[target] != driver[first]:
                attach = A_OTHER_DRIVER
                diag = D_MIXED_DRIVERS
                arg = target
        if attach != ATTACHED:
            break
        idx += 1
        cur = nxt
    if first >= 0 and attach == A_BAD_ENTRY and diag == D_NO_IOMMU_CELLS:
        attach = A_NOT_A_PROVIDER
    return _row(out, k, d, first, node, VIA_IOMMUS, PLATFORM, -1, 0, tree_ok[node],
                attach, note, diag, arg, -1, 0, -1)


@njit(i64(*PROPS, *PHANDLES, I32_RO, I32_RO, I64_RO, I32_RO, i64, I8_RO, I8_RO, B_RO, B_RO,
          B, b1, b1, I64_2D, i64), **INNER)
def _legacy_links(data, pidx, val_off, val_len, node_dtb, node_phandle, phandle_sorted,
                  dtb_node_start, node_parent, node_depth, node_name_off, node_name_len, d,
                  role, state, own_ok, tree_ok, seen, legacy_bindings, unbind_disabled, out, k):
    """`mmu-masters` on arm-smmu nodes: a master belongs to the first probed
    SMMU that lists it (driver_for_each_device).  `seen` (scratch, as for
    map_providers) holds the masters claimed so far."""
    start, end = dtb_node_start[d], dtb_node_start[d + 1]
    claimed = seen
    for probed_pass in (True, False):
        for s in range(start, end):
            if role[s] != ARM_SMMU or (state[s] == PROBED) != probed_pass:
                continue
            p = pidx[MMU_MASTERS, s]
            if p < 0:
                continue
            cur = 0
            while True:
                code, m, nxt = phandle_entry(data, pidx, val_off, val_len, node_dtb,
                                             node_phandle, phandle_sorted, dtb_node_start, d, p,
                                             cur, STREAM_ID_CELLS)
                if code != PH_OK or m < 0:
                    if code != PH_END:
                        k = _row(out, k, d, s, -1 if m < 0 else m, VIA_MMU_MASTERS, PLATFORM,
                                 -1, 0, False, A_BAD_ENTRY, N_NONE, _ph_diag(code),
                                 cell(data, val_off, p, cur) if code == PH_NO_NODE else m,
                                 -1, 0, -1)
                    break
                cur = nxt
                if claimed[m - start]:
                    continue
                claimed[m - start] = True
                if not own_ok[s]:
                    attach = A_PROVIDER_DISABLED
                elif state[s] != PROBED:
                    attach = A_NOT_PROBED
                elif not legacy_bindings:
                    attach = A_LEGACY_UNSUPPORTED
                else:
                    attach = ATTACHED
                par = node_parent[m]
                if is_pci(data, pidx, val_off, val_len, m) and \
                        (par < 0 or not is_pci(data, pidx, val_off, val_len, par)):
                    functions = pci_functions(data, pidx, val_off, val_len, node_parent,
                                              node_depth, node_name_off, node_name_len, m, end)
                    for f in range(functions.shape[0]):
                        node = functions[f, 0]
                        k = _row(out, k, d, s, node, VIA_MMU_MASTERS, PCI_DT_CHILD, m,
                                 functions[f, 4],
                                 tree_ok[m] and (own_ok[node] or not unbind_disabled),
                                 attach, N_NONE, D_NONE, 0,
                                 (functions[f, 1] << 8) | functions[f, 2], 0, -1)
                    k = _row(out, k, d, s, m, VIA_MMU_MASTERS, PCI_DISCOVERED, m, 0,
                             tree_ok[m], attach, N_NONE, D_NONE, 0, -1, 0, -1)
                else:
                    k = _row(out, k, d, s, m, VIA_MMU_MASTERS, PLATFORM, -1, 0,
                             tree_ok[m], attach, N_NONE, D_NONE, 0, -1, 0, -1)
    for j in range(end - start):
        claimed[j] = False
    return k


@njit(i64(*PROPS, *PHANDLES, I32_RO, I32_RO, I64_RO, I32_RO, I8_RO, I16_RO, I8_RO, B_RO, B_RO,
          B_RO, b1, b1, b1, i64, I8, I8, B, I64_2D, I64), **NJIT)
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
        for i in range(start, end):
            if pci_depth >= 0 and node_depth[i] <= pci_depth:
                pci_depth = -1
            if pci_depth >= 0:
                continue
            has_map = iommu_map[i] >= 0
            par = node_parent[i]
            legacy_masters = legacy_masters or mmu_masters[i] >= 0
            if device_type[i] >= 0 and is_pci(data, pidx, val_off, val_len, i) and \
                    (par < 0 or device_type[par] < 0 or
                     not is_pci(data, pidx, val_off, val_len, par)):
                # A host bridge: its subtree holds PCI functions, not platform devices.
                pci_depth = node_depth[i]
                if has_map:
                    k = _map_links(data, pidx, val_off, val_len, node_dtb, node_phandle,
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
                k = _map_links(data, pidx, val_off, val_len, node_dtb, node_phandle,
                               phandle_sorted, dtb_node_start, node_parent, node_depth,
                               node_name_off, node_name_len, d, i, kind, own_ok, tree_ok, xlate,
                               seen, map_cells, unbind_disabled, out, k)
            if iommus[i] >= 0:   # a platform device (a host bridge's controller too)
                k = _iommus_link(data, pidx, val_off, val_len, node_dtb, node_phandle,
                                 phandle_sorted, dtb_node_start, d, i, driver, tree_ok,
                                 xlate_iommus, out, k)
        if legacy_masters:
            k = _legacy_links(data, pidx, val_off, val_len, node_dtb, node_phandle,
                              phandle_sorted, dtb_node_start, node_parent, node_depth,
                              node_name_off, node_name_len, d, role, state, own_ok, tree_ok,
                              seen, legacy_bindings, unbind_disabled, out, k)
        dtb_links[d] = k - k_start
        if k - k_start > limit:
            k = k_start         # a link explosion: reported by the caller, not kept
    return k


def find_links(t, role, driver, state, own_ok, tree_ok, legacy, legacy_bindings, map_cells,
               unbind_disabled, limit=MAX_LINKS_PER_DTB):
    """Every link of every DTB: (links, dtb_links), links an int64[n,
    len(LINK_COLUMNS)] table, one row a link; dtb_links[d] the number of links of
    DTB d, a DTB with more than `limit` keeping none of them."""
    n_nodes = t.node_parent.shape[0]
    n_dtb = t.dtb_node_start.shape[0] - 1
    dtb_links = np.zeros(n_dtb, dtype=np.int64)
    xlate = np.empty(n_nodes, dtype=np.int8)
    xlate_iommus = np.empty(n_nodes, dtype=np.int8)
    seen = np.zeros(int(np.diff(t.dtb_node_start).max(initial=0)), dtype=np.bool_)
    out = np.empty((max(1024, n_nodes // 4), len(LINK_COLUMNS)), dtype=np.int64)
    while True:
        n = _find_links(*props(t), *phandles(t), t.node_parent, t.node_depth, t.node_name_off,
                        t.node_name_len, role, driver, state, own_ok, tree_ok, legacy,
                        bool(legacy_bindings), bool(map_cells), bool(unbind_disabled), limit,
                        xlate, xlate_iommus, seen, out, dtb_links)
        if n <= out.shape[0]:
            return out[:n], dtb_links
        # More links than rows: counted, not stored; again with room for all.
        out = np.empty((n, len(LINK_COLUMNS)), dtype=np.int64)
