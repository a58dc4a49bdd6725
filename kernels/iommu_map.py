"""`iommu-map` on a bus node: of_map_id() of each kernel version, and the
links of a bus whose devices it maps (PCI host bridges, fsl-mc, host1x,
CDX, GPC DMA); docs/links.md."""
import numpy as np
from numba import njit, types

from .codes import (A_BAD_MAP, A_NO_TARGET, A_UNCOVERED_ID, ATTACHED, D_MAP_CELLS_MAX,
                    D_MAP_LENGTH, D_MAP_MASK, D_MAP_MISREAD, D_MAP_NEEDS_FOUR_CELLS,
                    D_MAP_NEEDS_TARGET_CELLS, D_MAP_TRUNCATED, D_MAP_WIDE_RANGE, D_NONE,
                    D_PHANDLE_NOWHERE, N_GUESS_UNMATCHED, N_GUESSED_BUS, N_NONE, N_PLACEHOLDER,
                    PCI_DISCOVERED, PCI_DT_CHILD, VIA_IOMMU_MAP)
from .config import INNER
from .dt import (B, B_RO, DATA, I8_RO, I32_RO, I64, I64_2D, I64_2D_RO, I64_RO, IOMMU_CELLS,
                 IOMMU_MAP, IOMMU_MAP_MASK, PHANDLES, PROPS, b1, cell, i64, read_u32)
from .fdt import resolve_phandle
from .link_rows import LINKS, row
from .pci import pci_functions

# The parsed entries of an iommu-map (map_entries), one row an entry.
E_BASE, E_TARGET, E_PHANDLE, E_LENGTH, E_CELLS = range(5)
# Most cells an out-specifier may have (MAX_PHANDLE_ARGS).
MAX_PHANDLE_ARGS = 16
# Where the walk of an iommu-map fails: (attach, diag, arg, arg2, node), or
# (ATTACHED, D_NONE, 0, 0, -1).
ERROR = types.UniTuple(i64, 5)


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
    # of_map_id()'s err_map_len (7.2): the map ends inside an entry.
    truncated = (A_BAD_MAP, D_MAP_TRUNCATED, n_bytes, 0, -1)
    if n_bytes % 4 != 0:
        return entries[:0], truncated
    offset = 0
    n = 0
    one_cell = False
    while offset < n_cells:
        if n_cells - offset < 2:
            return entries[:n], truncated
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
            return entries[:n], truncated
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
    if attach == ATTACHED:
        return D_NONE, 0, -1
    target = other[0, E_TARGET]      # a clean 4-cell reading has an entry
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


@njit(i64(*PROPS, *PHANDLES, I32_RO, I32_RO, I64_RO, I32_RO, i64, i64, i64, B_RO, B_RO, I8_RO, B,
          b1, b1, LINKS, i64), **INNER)
def map_links(data, pidx, val_off, val_len, node_dtb, node_phandle, phandle_sorted,
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
                    k = row(out, k, d, target, function, VIA_IOMMU_MAP, PCI_DT_CHILD, node,
                             bridge_fn, enabled, xlate[target], note, diag, arg, rid, arg2,
                             diag_node)
                continue
            if attach == ATTACHED:
                attach = xlate[target]
            k = row(out, k, d, target, function, VIA_IOMMU_MAP, PCI_DT_CHILD, node, bridge_fn,
                     enabled, attach, note, diag, arg, rid, arg2, diag_node)
    # The devices found at run time.
    enabled = tree_ok[node]
    attach, diag, arg, arg2, diag_node = error
    if era != D_NONE:
        diag, arg, arg2, diag_node = era, val_len[p], era_cells, era_node
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
        k = row(out, k, d, -1, node, VIA_IOMMU_MAP, kind, node, 0, enabled,
                 attach, note, diag, arg, -1, arg2, diag_node)
    for target in targets:
        a = xlate[target]
        g, g_arg, g_arg2, g_node = (era, val_len[p], era_cells, era_node) \
            if era != D_NONE else (D_NONE, 0, 0, -1)
        if map_cells:
            wide, length, cells = _all_wide(entries, target)
            if wide:
                a, g, g_arg, g_arg2, g_node = A_BAD_MAP, D_MAP_WIDE_RANGE, length, cells, target
        k = row(out, k, d, target, node, VIA_IOMMU_MAP, kind, node, 0, enabled,
                 a, note, g, g_arg, -1, g_arg2, g_node)
    return k
