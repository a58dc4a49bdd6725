"""Small device-tree readers shared by the rule kernels.

They take `t`, a `Tree`: the flattened corpus arrays (corpus/flat.py) that
the rule needs, as one typed tuple, plus `pidx`, an index of the properties
the rule reads (PROPERTY_NAMES) so that finding one is a lookup.  Nothing
here reads past a property's value: a short or malformed value reads as
absent.
"""
from collections import namedtuple

import numpy as np
from numba import njit

from .config import NJIT
from .fdt import resolve_phandle


# The property names the rule reads; kernels name them by these slots.
PROPERTY_NAMES = (
    "status", "compatible", "device_type", "reg", "bus-range",
    "dma-coherent", "dma-noncoherent", "interconnects", "interconnect-names",
    "#interconnect-cells", "iommus", "#iommu-cells", "iommu-map",
    "iommu-map-mask", "mmu-masters", "#stream-id-cells", "#global-interrupts",
)
(STATUS, COMPATIBLE, DEVICE_TYPE, REG, BUS_RANGE,
 DMA_COHERENT, DMA_NONCOHERENT, INTERCONNECTS, INTERCONNECT_NAMES,
 INTERCONNECT_CELLS, IOMMUS, IOMMU_CELLS, IOMMU_MAP,
 IOMMU_MAP_MASK, MMU_MASTERS, STREAM_ID_CELLS, GLOBAL_INTERRUPTS) = range(len(PROPERTY_NAMES))


Tree = namedtuple("Tree", [
    "data", "dtb_node_start", "node_parent", "node_depth", "node_dtb",
    "node_name_off", "node_name_len", "node_prop_start",
    "node_phandle", "phandle_sorted", "prop_name", "prop_val_off", "prop_val_len",
    "pidx",
])


@njit(**NJIT)
def property_index(prop_node, prop_name, slot_of_name, n_nodes, n_slots):
    """pidx[slot, node]: the property of that name (PROPERTY_NAMES[slot]) of
    the node, -1 when it has none.  One pass over all properties."""
    pidx = np.full((n_slots, n_nodes), -1, dtype=np.int64)
    for p in range(prop_node.shape[0]):
        slot = slot_of_name[prop_name[p]]
        if slot >= 0 and pidx[slot, prop_node[p]] < 0:
            pidx[slot, prop_node[p]] = p
    return pidx


def tree_of(flat):
    """The Tree of a corpus.flat.FlatCorpus."""
    slot_of_name = np.full(max(len(flat.prop_names), 1), -1, dtype=np.int64)
    for slot, name in enumerate(PROPERTY_NAMES):
        if flat.name_id(name) >= 0:
            slot_of_name[flat.name_id(name)] = slot
    pidx = property_index(flat.prop_node, flat.prop_name, slot_of_name,
                          flat.node_parent.shape[0], len(PROPERTY_NAMES))
    return Tree(*(getattr(flat, f) for f in Tree._fields[:-1]), pidx)


@njit(**NJIT)
def find_prop(t, node, slot):
    """Index of property PROPERTY_NAMES[slot] of `node`, or -1."""
    if node < 0:
        return -1
    return t.pidx[slot, node]


@njit(**NJIT)
def ncells(t, p):
    return t.prop_val_len[p] // 4 if p >= 0 else 0


@njit(**NJIT)
def cell(t, p, k):
    """The k-th big-endian u32 cell of property p (the caller checks k < ncells)."""
    o = t.prop_val_off[p] + 4 * k
    d = t.data
    return (np.int64(d[o]) << 24) | (np.int64(d[o + 1]) << 16) | \
           (np.int64(d[o + 2]) << 8) | np.int64(d[o + 3])


@njit(**NJIT)
def read_u32(t, node, slot, default):
    """of_property_read_u32(): the first cell, or `default` when absent or short."""
    p = find_prop(t, node, slot)
    if p < 0 or t.prop_val_len[p] < 4:
        return np.int64(default)
    return cell(t, p, 0)


@njit(**NJIT)
def bytes_equal(data, off, n, pattern, poff, plen, fold_case):
    if n != plen:
        return False
    for k in range(n):
        a = data[off + k]
        b = pattern[poff + k]
        if fold_case:
            if 65 <= a <= 90:
                a += 32
            if 65 <= b <= 90:
                b += 32
        if a != b:
            return False
    return True


@njit(**NJIT)
def string_index(t, p, pattern, poff, plen):
    """Index of `pattern` in the string list of property p, or -1
    (of_property_match_string)."""
    if p < 0:
        return -1
    i = 0
    start = t.prop_val_off[p]
    end = start + t.prop_val_len[p]
    for k in range(start, end):
        if t.data[k] == 0:
            if bytes_equal(t.data, start, k - start, pattern, poff, plen, False):
                return i
            i += 1
            start = k + 1
    return -1


@njit(**NJIT)
def status_okay(t, node):
    """__of_device_is_available() of the node alone: `status` absent, "okay" or "ok"."""
    p = find_prop(t, node, STATUS)
    if p < 0:
        return True
    o = t.prop_val_off[p]
    n = t.prop_val_len[p]
    d = t.data
    # strcmp() against "okay" / "ok": the value up to its first NUL.
    if n >= 5 and d[o] == 111 and d[o + 1] == 107 and d[o + 2] == 97 \
            and d[o + 3] == 121 and d[o + 4] == 0:
        return True
    return n >= 3 and d[o] == 111 and d[o + 1] == 107 and d[o + 2] == 0


# Outcome of one step of of_phandle_iterator_next().
PH_OK = 0          # an entry: its target node (-1 for a phandle-0 "empty" entry)
PH_END = 1         # past the end of the list
PH_NO_NODE = 2     # "could not find phandle"
PH_NO_CELLS = 3    # the target lacks the #*-cells property
PH_OVERRUN = 4     # the arguments run past the end of the property


@njit(**NJIT)
def phandle_entry(t, d, p, cur, cells):
    """The entry at cell `cur` of phandle list p (`iommus`, `interconnects`,
    `mmu-masters`) in DTB d; the target's property `cells` (a slot, e.g.
    IOMMU_CELLS) gives its argument count.
    Returns (code, target, next_cur): the arguments are cells cur+1 .. next_cur-1."""
    n = t.prop_val_len[p] // 4
    if cur >= n:
        return PH_END, -1, cur
    ph = cell(t, p, cur)
    if ph == 0:
        return PH_OK, -1, cur + 1
    target = resolve_phandle(t.node_dtb, t.node_phandle, t.phandle_sorted,
                             t.dtb_node_start, d, ph)
    if target < 0:
        return PH_NO_NODE, -1, cur
    q = find_prop(t, target, cells)
    if q < 0 or t.prop_val_len[q] < 4:
        return PH_NO_CELLS, target, cur
    count = cell(t, q, 0)
    if cur + 1 + count > n:
        return PH_OVERRUN, target, cur
    return PH_OK, target, cur + 1 + count

