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
"""
import numpy as np
from numba import njit

from .codes import (A_BAD_ENTRY, A_BAD_MAP, A_LEGACY_SYSTEM, A_LEGACY_UNSUPPORTED,
                    A_NO_TARGET, A_NOT_A_PROVIDER, A_NOT_PROBED, A_OTHER_DRIVER,
                    A_PROVIDER_DISABLED, A_UNCOVERED_ID, ARM_SMMU, ATTACHED, CDX,
                    CDX_DEVICE, D_EMPTY_ENTRY, D_MAP_CELLS_MAX, D_MAP_LENGTH, D_MAP_MASK,
                    D_MAP_MISREAD, D_MAP_NEEDS_FOUR_CELLS, D_MAP_NEEDS_TARGET_CELLS,
                    D_MAP_TRUNCATED, D_MAP_WIDE_RANGE, D_MIXED_DRIVERS, D_NO_IOMMU_CELLS,
                    D_NONE, D_PHANDLE_NOWHERE, D_SHORT_LIST, FSL_MC, FSL_MC_OBJECT, GPCDMA,
                    GPCDMA_CHANNEL, HOST1X, HOST1X_CONTEXT, N_GUESS_UNMATCHED, N_GUESSED_BUS,
                    N_NONE, N_PLACEHOLDER, N_TRUNCATED, NO_CAPABLE, PCI_DISCOVERED,
                    PCI_DT_CHILD, PLATFORM, PROBED, VIA_IOMMU_MAP, VIA_IOMMUS,
                    VIA_MMU_MASTERS)
from .config import NJIT
from .dt import (BUS_RANGE, DEVICE_TYPE, IOMMU_CELLS, IOMMU_MAP, IOMMU_MAP_MASK, IOMMUS,
                 MMU_MASTERS, PH_END, PH_NO_CELLS, PH_NO_NODE, PH_OK, PH_OVERRUN,
                 REG, STREAM_ID_CELLS, cell, find_prop, phandle_entry, read_u32)
from .fdt import resolve_phandle
from .providers import is_pci

# Above this many links in one DTB, its links are left out and reported.
# Real boards have far fewer (at most 43 on 6.12, 70 on 7.2).
MAX_LINKS_PER_DTB = 100_000

# The columns of the int64 table that find_links() returns, one row a link.
# diag_arg2 and diag_node: the second argument and the node of the diagnostic
# (codes.DIAGNOSTICS: {arg2}, {node}).
FIELDS = ("dtb", "provider", "master", "via", "kind", "bridge", "bridge_function",
          "enabled", "attach", "note", "diag", "diag_arg", "rid", "diag_arg2", "diag_node")
(L_DTB, L_PROVIDER, L_MASTER, L_VIA, L_KIND, L_BRIDGE, L_BRIDGE_FUNCTION,
 L_ENABLED, L_ATTACH, L_NOTE, L_DIAG, L_DIAG_ARG, L_RID, L_DIAG_ARG2,
 L_DIAG_NODE) = range(len(FIELDS))

# The parsed entries of an iommu-map (map_entries), one row an entry.
E_BASE, E_TARGET, E_PHANDLE, E_LENGTH, E_CELLS = range(5)
# Most cells an out-specifier may have (MAX_PHANDLE_ARGS).
MAX_PHANDLE_ARGS = 16


@njit(**NJIT)
def _ph_diag(code):
    if code == PH_NO_NODE:
        return D_PHANDLE_NOWHERE
    if code == PH_NO_CELLS:
        return D_NO_IOMMU_CELLS
    if code == PH_OVERRUN:
        return D_SHORT_LIST
    return D_NONE


@njit(**NJIT)
def _attach(t, role, state, available_own, target, legacy_system):
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

@njit(**NJIT)
def _resolve(t, d, ph):
    return resolve_phandle(t.node_dtb, t.node_phandle, t.phandle_sorted, t.dtb_node_start, d, ph)


@njit(**NJIT)
def _one_cell_map(t, p, n_cells):
    """of_check_bad_map() (7.2): 4-cell entries, all of one phandle and of
    length 1, aimed at a 2-cell IOMMU, are read as 1-cell."""
    if n_cells % 4:
        return False
    ph = cell(t, p, 1)
    for i in range(0, n_cells, 4):
        if cell(t, p, i + 1) != ph or cell(t, p, i + 3) != 1:
            return False
    return True


@njit(**NJIT)
def map_entries(t, d, p, map_cells):
    """The entries of iommu-map p of DTB d, as of_map_id() walks them:
    (entries int64[n, 5] with columns E_*, n, error), error being
    (attach, diag, arg, arg2, node) of the entry where the walk fails, or
    ATTACHED.  Entries before a failure still translate the IDs they cover.

    map_cells False (up to 7.1): fixed 4-cell entries, the length checked
    first; a phandle is resolved only when its entry matches (E_TARGET -1
    when it points nowhere).  True (7.2): 3 + #iommu-cells of the entry's
    target (1 when absent), read entry by entry, so a phandle to nowhere, a
    cell count above MAX_PHANDLE_ARGS or a short tail fails there."""
    n_bytes = t.prop_val_len[p]
    n_cells = n_bytes // 4
    entries = np.empty((max(n_cells // 3, 1), 5), dtype=np.int64)
    if not map_cells:
        if n_bytes == 0 or n_bytes % 16 != 0:
            return entries[:0], 0, (A_BAD_MAP, D_MAP_LENGTH, n_bytes, 0, -1)
        for e in range(n_cells // 4):
            ph = cell(t, p, 4 * e + 1)
            entries[e, E_BASE] = cell(t, p, 4 * e)
            entries[e, E_TARGET] = _resolve(t, d, ph)
            entries[e, E_PHANDLE] = ph
            entries[e, E_LENGTH] = cell(t, p, 4 * e + 3)
            entries[e, E_CELLS] = 1
        return entries[:n_cells // 4], n_cells // 4, (ATTACHED, D_NONE, 0, 0, -1)
    if n_bytes % 4 != 0:
        return entries[:0], 0, (A_BAD_MAP, D_MAP_TRUNCATED, n_bytes, 0, -1)
    offset = 0
    n = 0
    one_cell = False
    while offset < n_cells:
        if n_cells - offset < 2:
            return entries[:n], n, (A_BAD_MAP, D_MAP_TRUNCATED, n_bytes, 0, -1)
        ph = cell(t, p, offset + 1)
        target = _resolve(t, d, ph)
        if target < 0:
            return entries[:n], n, (A_NO_TARGET, D_PHANDLE_NOWHERE, ph, 0, -1)
        cells = 1 if one_cell else read_u32(t, target, IOMMU_CELLS, 1)
        if cells > MAX_PHANDLE_ARGS:
            return entries[:n], n, (A_BAD_MAP, D_MAP_CELLS_MAX, 0, cells, target)
        if offset == 0 and cells == 2:
            one_cell = _one_cell_map(t, p, n_cells)
            if one_cell:
                cells = 1
        if n_cells - offset < 3 + cells:
            return entries[:n], n, (A_BAD_MAP, D_MAP_TRUNCATED, n_bytes, 0, -1)
        entries[n, E_BASE] = cell(t, p, offset)
        entries[n, E_TARGET] = target
        entries[n, E_PHANDLE] = ph
        entries[n, E_CELLS] = cells
        offset += 3 + cells
        entries[n, E_LENGTH] = cell(t, p, offset - 1)
        n += 1
    return entries[:n], n, (ATTACHED, D_NONE, 0, 0, -1)


@njit(**NJIT)
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


@njit(**NJIT)
def map_era(t, d, p, map_cells):
    """A map written for the other of_map_id() than the target's:
    (diag, arg2, node), or D_NONE.  Before 7.2: the map reads cleanly with
    7.2's out-specifiers and some entry's differ from 1 cell (4-cell reading
    fails on its length, or misreads it).  From 7.2: the map fails there but
    is a clean 4-cell map of known targets."""
    other, n_other, other_error = map_entries(t, d, p, not map_cells)
    if other_error[0] != ATTACHED:
        return D_NONE, 0, -1
    if not map_cells:
        for e in range(n_other):
            if other[e, E_CELLS] != 1:
                own_error = map_entries(t, d, p, False)[2]
                diag = D_MAP_NEEDS_TARGET_CELLS if own_error[0] != ATTACHED else D_MAP_MISREAD
                return diag, other[e, E_CELLS], other[e, E_TARGET]
        return D_NONE, 0, -1
    for e in range(n_other):
        if other[e, E_TARGET] < 0:
            return D_NONE, 0, -1
    own_error = map_entries(t, d, p, True)[2]
    if own_error[0] == ATTACHED or n_other == 0:
        return D_NONE, 0, -1
    target = other[0, E_TARGET]
    return D_MAP_NEEDS_FOUR_CELLS, read_u32(t, target, IOMMU_CELLS, 1), target


@njit(**NJIT)
def map_providers(entries):
    """The distinct targets of a map's entries, in entry order, and whether
    it is a placeholder (every entry of length 0, filled in by firmware)."""
    n = entries.shape[0]
    placeholder = n > 0
    for e in range(n):
        if entries[e, E_LENGTH] != 0:
            placeholder = False
    # First occurrences by a stable sort: n log n, whatever the map.
    order = np.argsort(entries[:, E_TARGET], kind="mergesort")
    first = np.zeros(n, dtype=np.bool_)
    for q in range(n):
        e = order[q]
        if entries[e, E_TARGET] >= 0 and (q == 0 or entries[order[q - 1], E_TARGET]
                                           != entries[e, E_TARGET]):
            first[e] = True
    targets = np.empty(n, dtype=np.int64)
    k = 0
    for e in range(n):
        if first[e]:
            targets[k] = entries[e, E_TARGET]
            k += 1
    return targets[:k], placeholder


@njit(**NJIT)
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

@njit(**NJIT)
def _function_node(t, node):
    """A PCI function node: a `reg` of at least 5 cells (of_pci_get_devfn)."""
    p = find_prop(t, node, REG)
    return p >= 0 and t.prop_val_len[p] >= 20


@njit(**NJIT)
def _subtree_end(t, node):
    """Nodes are depth-first: node's subtree is [node + 1, _subtree_end)."""
    end = t.dtb_node_start[t.node_dtb[node] + 1]
    j = node + 1
    while j < end and t.node_depth[j] > t.node_depth[node]:
        j += 1
    return j


MULTIFUNC = np.frombuffer(b"multifunc-device", dtype=np.uint8)


@njit(**NJIT)
def _is_multifunc(t, node):
    """of_node_name_eq(node, "multifunc-device"): the name before any '@'."""
    n = t.node_name_len[node]
    o = t.node_name_off[node]
    m = MULTIFUNC.shape[0]
    if n < m or (n > m and t.data[o + m] != 64):
        return False
    for k in range(m):
        if t.data[o + k] != MULTIFUNC[k]:
            return False
    return True


@njit(**NJIT)
def pci_functions(t, bridge):
    """The PCI function nodes below a host bridge, as (node, bus, devfn,
    guessed, is_bridge) rows.  On each bus (the host bridge, or a PCI-PCI
    bridge function) the function nodes are its children and its
    `multifunc-device` grandchildren with a 5-cell `reg`, the first of a
    devfn winning (of_pci_find_child_device).  Root-bus functions sit on
    bus-range's first bus; below a root port the bus is assigned at
    enumeration: reg's bus field is the guess."""
    end = _subtree_end(t, bridge)
    size = end - bridge
    rows = np.empty((size, 5), dtype=np.int64)
    k = 0
    bus0 = read_u32(t, bridge, BUS_RANGE, 0)
    # Each bus node (the bridge, or a matched function) gets a 256-bit set of
    # the devfns taken on it when it first needs one: memory linear in nodes.
    bus_slot = np.full(size, -1, dtype=np.int64)
    bus_slot[0] = 0
    taken = np.zeros((size, 4), dtype=np.uint64)
    n_slots = 1
    row_of = np.full(size, -1, dtype=np.int64)
    for j in range(bridge + 1, end):
        if not _function_node(t, j):
            continue
        bus_node = t.node_parent[j]
        if _is_multifunc(t, bus_node) and bus_node > bridge:
            bus_node = t.node_parent[bus_node]
        if row_of[bus_node - bridge] < 0 and bus_node != bridge:
            continue                # not a bus: below something that is no function
        reg0 = cell(t, find_prop(t, j, REG), 0)
        devfn = (reg0 >> 8) & 0xff
        slot = bus_slot[bus_node - bridge]
        if slot < 0:
            slot = bus_slot[bus_node - bridge] = n_slots
            n_slots += 1
        bit = np.uint64(1) << np.uint64(devfn & 63)
        if taken[slot, devfn >> 6] & bit:
            continue
        taken[slot, devfn >> 6] |= bit
        row_of[j - bridge] = k
        if bus_node != bridge:
            rows[row_of[bus_node - bridge], 4] = 1    # its parent function is a bridge
        rows[k, 0] = j
        rows[k, 1] = bus0 if bus_node == bridge else (reg0 >> 16) & 0xff
        rows[k, 2] = devfn
        rows[k, 3] = 0 if bus_node == bridge else 1
        rows[k, 4] = 1 if is_pci(t, j) else 0
        k += 1
    return rows[:k]


# -- links -------------------------------------------------------------------------

@njit(**NJIT)
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


@njit(**NJIT)
def _map_links(t, d, node, kind, role, state, own_ok, tree_ok, legacy, map_cells, out, k):
    """Links of a bus node's iommu-map for the devices found at run time:
    one per (bus node, provider of the map)."""
    p = find_prop(t, node, IOMMU_MAP)
    enabled = tree_ok[node]
    entries, n, error = map_entries(t, d, p, map_cells)
    era, era_cells, era_node = map_era(t, d, p, map_cells)
    attach, diag, arg, arg2, diag_node = error
    if era != D_NONE:
        diag, arg, arg2, diag_node = era, t.prop_val_len[p], era_cells, era_node
    if attach != ATTACHED and n == 0:
        return _row(out, k, d, -1, node, VIA_IOMMU_MAP, kind, node, 0, enabled,
                    attach, N_NONE, diag, arg, -1, arg2, diag_node)
    targets, placeholder = map_providers(entries)
    note = N_PLACEHOLDER if placeholder and attach == ATTACHED else N_NONE
    if attach == ATTACHED:
        # 4-cell maps resolve a phandle only when its entry matches: one that
        # points nowhere fails the IDs it covers.
        for e in range(n):
            if entries[e, E_TARGET] < 0:
                attach, diag, arg = A_NO_TARGET, D_PHANDLE_NOWHERE, entries[e, E_PHANDLE]
                if era != D_NONE:
                    diag, arg = era, t.prop_val_len[p]
                break
    if attach != ATTACHED:
        k = _row(out, k, d, -1, node, VIA_IOMMU_MAP, kind, node, 0, enabled,
                 attach, note, diag, arg, -1, arg2, diag_node)
    for target in targets:
        a = _attach(t, role, state, own_ok, target, legacy[d])
        g, g_arg, g_arg2, g_node = (era, t.prop_val_len[p], era_cells, era_node) \
            if era != D_NONE else (D_NONE, 0, 0, -1)
        if map_cells:
            wide, length, cells = _all_wide(entries, target)
            if wide:
                a, g, g_arg, g_arg2, g_node = A_BAD_MAP, D_MAP_WIDE_RANGE, length, cells, target
        k = _row(out, k, d, target, node, VIA_IOMMU_MAP, kind, node, 0, enabled,
                 a, note, g, g_arg, -1, g_arg2, g_node)
    return k


@njit(**NJIT)
def _pci_links(t, d, bridge, role, state, own_ok, tree_ok, legacy, map_cells,
               unbind_disabled, out, k):
    """A PCI host bridge's iommu-map: its DT function nodes, then the
    devices discovered on the bus."""
    p = find_prop(t, bridge, IOMMU_MAP)
    mask = read_u32(t, bridge, IOMMU_MAP_MASK, 0xffffffff)
    entries, n, error = map_entries(t, d, p, map_cells)
    era, era_cells, era_node = map_era(t, d, p, map_cells)
    targets, placeholder = map_providers(entries)
    readable = error[0] == ATTACHED
    functions = pci_functions(t, bridge)
    for f in range(functions.shape[0]):
        node, bus, devfn = functions[f, 0], functions[f, 1], functions[f, 2]
        guessed, bridge_fn = functions[f, 3], functions[f, 4]
        rid = (bus << 8) | devfn
        # drivers/pci/bus.c from 6.12: a function whose node is disabled is
        # enumerated but no driver (vfio-pci included) matches it.
        enabled = tree_ok[bridge] and (own_ok[node] or not unbind_disabled)
        attach, target, diag, arg, arg2, diag_node = map_lookup(entries, error, mask, rid,
                                                                map_cells)
        if era != D_NONE:
            diag, arg, arg2, diag_node = era, t.prop_val_len[p], era_cells, era_node
        note = N_GUESSED_BUS if guessed else N_NONE
        if readable and (placeholder or (attach == A_UNCOVERED_ID and guessed)):
            note = N_PLACEHOLDER if placeholder else N_GUESS_UNMATCHED
            for target in targets:
                k = _row(out, k, d, target, node, VIA_IOMMU_MAP, PCI_DT_CHILD, bridge,
                         bridge_fn, enabled, _attach(t, role, state, own_ok, target, legacy[d]),
                         note, diag, arg, rid, arg2, diag_node)
            continue
        if attach == ATTACHED:
            attach = _attach(t, role, state, own_ok, target, legacy[d])
        k = _row(out, k, d, target, node, VIA_IOMMU_MAP, PCI_DT_CHILD, bridge, bridge_fn,
                 enabled, attach, note, diag, arg, rid, arg2, diag_node)
    return _map_links(t, d, bridge, PCI_DISCOVERED, role, state, own_ok, tree_ok,
                      legacy, map_cells, out, k)


@njit(**NJIT)
def _iommus_link(t, d, node, role, driver, state, own_ok, tree_ok, legacy, out, k):
    """of_iommu_configure_dev(): every entry is translated; the device is
    attached to the first entry's IOMMU, an entry of another driver is
    refused (-EINVAL) and any failure leaves it with none.  Parsing stops
    quietly at the first entry that does not parse."""
    p = find_prop(t, node, IOMMUS)
    cur = 0
    first = -1
    attach = ATTACHED
    note = N_NONE
    diag = D_NONE
    arg = 0
    idx = 0
    while True:
        code, target, nxt = phandle_entry(t, d, p, cur, IOMMU_CELLS)
        if code == PH_OK and target < 0:
            diag = D_EMPTY_ENTRY
            code = PH_END
        if code != PH_OK:
            if code != PH_END:
                diag = _ph_diag(code)
                arg = cell(t, p, cur) if code == PH_NO_NODE else target
            if idx == 0:
                attach = A_BAD_ENTRY
                if code == PH_NO_CELLS:
                    first = target
            elif code != PH_END or diag != D_NONE:
                note = N_TRUNCATED
            break
        if idx == 0:
            first = target
            attach = _attach(t, role, state, own_ok, target, legacy[d])
        else:
            a = _attach(t, role, state, own_ok, target, legacy[d])
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


@njit(**NJIT)
def _legacy_links(t, d, role, state, own_ok, tree_ok, legacy_bindings, unbind_disabled,
                  out, k):
    """`mmu-masters` on arm-smmu nodes: a master belongs to the first probed
    SMMU that lists it (driver_for_each_device)."""
    start, end = t.dtb_node_start[d], t.dtb_node_start[d + 1]
    claimed = np.zeros(end - start, dtype=np.bool_)
    for probed_pass in (True, False):
        for s in range(start, end):
            if role[s] != ARM_SMMU or (state[s] == PROBED) != probed_pass:
                continue
            p = find_prop(t, s, MMU_MASTERS)
            if p < 0:
                continue
            cur = 0
            while True:
                code, m, nxt = phandle_entry(t, d, p, cur, STREAM_ID_CELLS)
                if code != PH_OK or m < 0:
                    if code != PH_END:
                        k = _row(out, k, d, s, -1 if m < 0 else m, VIA_MMU_MASTERS, PLATFORM,
                                 -1, 0, False, A_BAD_ENTRY, N_NONE, _ph_diag(code),
                                 cell(t, p, cur) if code == PH_NO_NODE else m, -1, 0, -1)
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
                par = t.node_parent[m]
                if is_pci(t, m) and (par < 0 or not is_pci(t, par)):
                    functions = pci_functions(t, m)
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
    return k


@njit(**NJIT)
def find_links(t, role, driver, state, own_ok, tree_ok, legacy, legacy_bindings,
               map_cells, unbind_disabled, limit, out, dtb_links):
    """Every link of every DTB into `out` (int64[capacity, len(FIELDS)]).
    Returns the number of links kept; when it exceeds the capacity, call
    again with a larger `out`.  dtb_links[d] gets the number of links of DTB
    d; a DTB with more than `limit` keeps none of them."""
    # Plain arrays in the per-node loop: `t` goes only to the few nodes
    # that carry one of these properties.
    depth = t.node_depth
    parent = t.node_parent
    device_type = t.pidx[DEVICE_TYPE]
    iommu_map = t.pidx[IOMMU_MAP]
    iommus = t.pidx[IOMMUS]
    mmu_masters = t.pidx[MMU_MASTERS]
    k = 0
    n_dtb = t.dtb_node_start.shape[0] - 1
    for d in range(n_dtb):
        start, end = t.dtb_node_start[d], t.dtb_node_start[d + 1]
        k_start = k
        pci_depth = -1          # depth of the PCI host bridge we are below, if any
        legacy_masters = False
        for i in range(start, end):
            if pci_depth >= 0 and depth[i] <= pci_depth:
                pci_depth = -1
            if pci_depth >= 0:
                continue
            has_map = iommu_map[i] >= 0
            par = parent[i]
            legacy_masters = legacy_masters or mmu_masters[i] >= 0
            if device_type[i] >= 0 and is_pci(t, i) and \
                    (par < 0 or device_type[par] < 0 or not is_pci(t, par)):
                # A host bridge: its subtree holds PCI functions, not platform devices.
                pci_depth = depth[i]
                if has_map:
                    k = _pci_links(t, d, i, role, state, own_ok, tree_ok, legacy, map_cells,
                                   unbind_disabled, out, k)
            r = role[i]
            if has_map and r == FSL_MC:
                k = _map_links(t, d, i, FSL_MC_OBJECT, role, state, own_ok, tree_ok, legacy,
                               map_cells, out, k)
            elif has_map and r == HOST1X:
                k = _map_links(t, d, i, HOST1X_CONTEXT, role, state, own_ok, tree_ok, legacy,
                               map_cells, out, k)
            elif has_map and r == CDX:
                k = _map_links(t, d, i, CDX_DEVICE, role, state, own_ok, tree_ok, legacy,
                               map_cells, out, k)
            elif has_map and r == GPCDMA:
                k = _map_links(t, d, i, GPCDMA_CHANNEL, role, state, own_ok, tree_ok, legacy,
                               map_cells, out, k)
            if iommus[i] >= 0:   # a platform device (a host bridge's controller too)
                k = _iommus_link(t, d, i, role, driver, state, own_ok, tree_ok, legacy, out, k)
        if legacy_masters:
            k = _legacy_links(t, d, role, state, own_ok, tree_ok, legacy_bindings,
                              unbind_disabled, out, k)
        dtb_links[d] = k - k_start
        if k - k_start > limit:
            k = k_start         # a link explosion: reported by the caller, not kept
    return k
