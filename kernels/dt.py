"""Small device-tree readers shared by the rule kernels, and the types of
their signatures.

A kernel takes the flattened corpus arrays (corpus/flat.py) it reads, by
the layout's names, not one tuple of them all: numba passes, and compiles
the passing of, every array of a tuple at every call (the link kernels
were measured slower with a NamedTuple of the Tree: docs/links.md).  Two
groups recur, always in this order:

    data, pidx, val_off, val_len          the properties the rule reads (PROPS)
    node_dtb, node_phandle, phandle_sorted, dtb_node_start
                                          phandles (PHANDLES, kernels.fdt.resolve_phandle)

`pidx[slot, node]` is the index of property PROPERTY_NAMES[slot] of the
node (-1: none), built once per sweep so that finding one is a lookup;
`val_off`, `val_len` are the layout's prop_val_off and prop_val_len.
Nothing here reads past a property's value: a short or malformed value
reads as absent.

`Tree` holds those arrays on the Python side (kernels.evaluate,
auditor.explain): the public functions of the kernel modules take it,
allocate what their kernel fills and pass it the arrays it reads.
"""
from collections import namedtuple

import numpy as np
from numba import njit, types

from .config import INNER, NJIT, array
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

# The types of the signatures: one compiled version of every kernel.  Arrays
# a kernel only reads are read-only (writable ones convert to them).
i64, b1 = types.int64, types.boolean
DATA = array(np.uint8, readonly=True)
I8, I16, I64, B = array(np.int8), array(np.int16), array(np.int64), array(np.bool_)
I8_RO, I16_RO, I32_RO, I64_RO, U32_RO, B_RO = (
    array(t, readonly=True) for t in (np.int8, np.int16, np.int32, np.int64, np.uint32, np.bool_))
I32_2D, I32_2D_RO = array(np.int32, 2), array(np.int32, 2, readonly=True)
I64_2D, I64_2D_RO = array(np.int64, 2), array(np.int64, 2, readonly=True)
PROPS = (DATA, I32_2D_RO, I64_RO, I32_RO)
PHANDLES = (I32_RO, U32_RO, I64_RO, I64_RO)


def props(t):
    """The PROPS arrays of a Tree."""
    return t.data, t.pidx, t.prop_val_off, t.prop_val_len


def phandles(t):
    """The PHANDLES arrays of a Tree."""
    return t.node_dtb, t.node_phandle, t.phandle_sorted, t.dtb_node_start


@njit(types.none(I32_RO, I32_RO, I64_RO, I32_2D), **NJIT)
def _property_index(prop_node, prop_name, slot_of_name, pidx):
    """Fill pidx (all -1) with the first property of each slot's name.  One
    pass over all properties."""
    for p in range(prop_node.shape[0]):
        slot = slot_of_name[prop_name[p]]
        if slot >= 0 and pidx[slot, prop_node[p]] < 0:
            pidx[slot, prop_node[p]] = p


def tree_of(flat):
    """The Tree of a corpus.flat.FlatCorpus."""
    # int32 property numbers: half the memory and time of the index; more
    # properties than that would not fit in memory anyway.
    if flat.prop_node.shape[0] > np.iinfo(np.int32).max:
        raise ValueError(f"{flat.root}: error: {flat.prop_node.shape[0]} properties, "
                         f"more than the rule's index holds")
    slot_of_name = np.full(max(len(flat.prop_names), 1), -1, dtype=np.int64)
    for slot, name in enumerate(PROPERTY_NAMES):
        if flat.name_id(name) >= 0:
            slot_of_name[flat.name_id(name)] = slot
    pidx = np.full((len(PROPERTY_NAMES), flat.node_parent.shape[0]), -1, dtype=np.int32)
    _property_index(flat.prop_node, flat.prop_name, slot_of_name, pidx)
    pidx.flags.writeable = False
    return Tree(*(getattr(flat, f) for f in Tree._fields[:-1]), pidx)


@njit(i64(DATA, I64_RO, i64, i64), **INNER)
def cell(data, val_off, p, k):
    """The k-th big-endian u32 cell of property p (the caller checks that
    the value has it)."""
    o = val_off[p] + 4 * k
    return (np.int64(data[o]) << 24) | (np.int64(data[o + 1]) << 16) | \
           (np.int64(data[o + 2]) << 8) | np.int64(data[o + 3])


@njit(i64(*PROPS, i64, i64, i64), **INNER)
def read_u32(data, pidx, val_off, val_len, node, slot, default):
    """of_property_read_u32(): the first cell, or `default` when absent or short."""
    p = pidx[slot, node]
    if p < 0 or val_len[p] < 4:
        return default
    return cell(data, val_off, p, 0)


@njit(b1(DATA, i64, i64, DATA, i64, i64, b1), **INNER)
def bytes_equal(data, off, n, pattern, poff, plen, fold_case):
    """data[off:off+n] equals pattern[poff:poff+plen]; with fold_case, as
    strcasecmp() does against a pattern in small letters (the callers'
    tables are): the capitals of data compare as small letters."""
    if n != plen:
        return False
    for k in range(n):
        a = data[off + k]
        if fold_case and 65 <= a <= 90:
            a += 32
        if a != pattern[poff + k]:
            return False
    return True


@njit(i64(DATA, i64, i64, DATA), **INNER)
def string_index(data, off, n, pattern):
    """Index of `pattern` in the string list data[off:off+n], or -1
    (of_property_match_string)."""
    i = 0
    start = off
    for k in range(off, off + n):
        if data[k] == 0:
            if bytes_equal(data, start, k - start, pattern, 0, pattern.shape[0], False):
                return i
            i += 1
            start = k + 1
    return -1


@njit(b1(DATA, i64, i64), **INNER)
def status_okay(data, off, n):
    """__of_device_is_available() of a `status` value data[off:off+n]:
    "okay" or "ok" (a node without one is available too)."""
    # strcmp() against "okay" / "ok": the value up to its first NUL.
    if n >= 5 and data[off] == 111 and data[off + 1] == 107 and data[off + 2] == 97 \
            and data[off + 3] == 121 and data[off + 4] == 0:
        return True
    return n >= 3 and data[off] == 111 and data[off + 1] == 107 and data[off + 2] == 0


# Outcome of one step of of_phandle_iterator_next().
PH_OK = 0          # an entry: its target node (-1 for a phandle-0 "empty" entry)
PH_END = 1         # past the end of the list
PH_NO_NODE = 2     # "could not find phandle"
PH_NO_CELLS = 3    # the target lacks the #*-cells property
PH_OVERRUN = 4     # the arguments run past the end of the property


@njit(types.UniTuple(i64, 3)(*PROPS, *PHANDLES, i64, i64, i64, i64), **INNER)
def phandle_entry(data, pidx, val_off, val_len, node_dtb, node_phandle, phandle_sorted,
                  dtb_node_start, d, p, cur, cells):
    """The entry at cell `cur` of phandle list p (`iommus`, `interconnects`,
    `mmu-masters`) in DTB d; the target's property `cells` (a slot, e.g.
    IOMMU_CELLS) gives its argument count.
    Returns (code, target, next_cur): the arguments are cells cur+1 .. next_cur-1."""
    n = val_len[p] // 4
    if cur >= n:
        return PH_END, -1, cur
    ph = cell(data, val_off, p, cur)
    if ph == 0:
        return PH_OK, -1, cur + 1
    target = resolve_phandle(node_dtb, node_phandle, phandle_sorted, dtb_node_start, d, ph)
    if target < 0:
        return PH_NO_NODE, -1, cur
    q = pidx[cells, target]
    if q < 0 or val_len[q] < 4:
        return PH_NO_CELLS, target, cur
    count = cell(data, val_off, q, 0)
    if cur + 1 + count > n:
        return PH_OVERRUN, target, cur
    return PH_OK, target, cur + 1 + count

