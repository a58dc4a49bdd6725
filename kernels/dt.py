"""Small device-tree readers shared by the rule kernels.

They take `t`, a `Tree`: the flattened corpus arrays (corpus/flat.py) that
the rule needs, as one typed tuple.  Nothing here reads past a property's
value: a short or malformed value reads as absent.
"""
from collections import namedtuple

import numpy as np
from numba import njit

from .config import NJIT
from .fdt import resolve_phandle

Tree = namedtuple("Tree", [
    "data", "dtb_node_start", "node_parent", "node_depth", "node_dtb",
    "node_name_off", "node_name_len", "node_prop_start",
    "node_phandle", "phandle_sorted", "prop_name", "prop_val_off", "prop_val_len",
])


def tree_of(flat):
    """The Tree of a corpus.flat.FlatCorpus."""
    return Tree(*(getattr(flat, f) for f in Tree._fields))


@njit(**NJIT)
def find_prop(t, node, name_id):
    """Index of property `name_id` of `node`, or -1."""
    if node < 0 or name_id < 0:
        return -1
    for p in range(t.node_prop_start[node], t.node_prop_start[node + 1]):
        if t.prop_name[p] == name_id:
            return p
    return -1


@njit(**NJIT)
def has_prop(t, node, name_id):
    return find_prop(t, node, name_id) >= 0


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
def read_u32(t, node, name_id, default):
    """of_property_read_u32(): the first cell, or `default` when absent or short."""
    p = find_prop(t, node, name_id)
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
def status_okay(t, node, status_id):
    """__of_device_is_available() of the node alone: `status` absent, "okay" or "ok"."""
    p = find_prop(t, node, status_id)
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
def phandle_entry(t, d, p, cur, cells_id):
    """The entry at cell `cur` of phandle list p (`iommus`, `interconnects`,
    `mmu-masters`) in DTB d; the target's `cells_id` gives its argument count.
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
    q = find_prop(t, target, cells_id)
    if q < 0 or t.prop_val_len[q] < 4:
        return PH_NO_CELLS, target, cur
    count = cell(t, q, 0)
    if cur + 1 + count > n:
        return PH_OVERRUN, target, cur
    return PH_OK, target, cur + 1 + count


# The property names the rule reads.  Kernels take `ids`, an int64 array of
# their interned ids (-1 when the corpus never uses the name), indexed by
# these constants.
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


def property_ids(flat):
    return np.array([flat.name_id(n) for n in PROPERTY_NAMES], dtype=np.int64)
