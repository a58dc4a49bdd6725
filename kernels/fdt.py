"""Bounds-checked parser of the flattened device-tree format (DTB), in numba.

The format is the one of the Devicetree Specification, chapter 5, versions
16 and 17: a header, the memory reservation block, the structure block
(tokens FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END) and the
strings block.  The kernels fill the columnar arrays described in
corpus/flat.py; corpus.flat.flatten() is the Python entry that calls them.

Every read is checked against the DTB's own bytes, whatever they contain: a
bad DTB gets an error code and the byte offset where the problem was found
(ERR_* and their texts ERR_MESSAGES, in kernels/fdt_codes.py, which needs no
numba), contributes no nodes, and the others are parsed as usual.  All
integers are big-endian and read byte by byte, so a DTB needs no alignment
inside the corpus buffer.
"""

import numpy as np
from numba import njit, types

from kernels.config import INNER, NJIT, array
from kernels.fdt_codes import (
    FDT_MAGIC, FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END, FDT_V16_SIZE,
    FDT_V17_SIZE, MAX_DEPTH, ERR_EMPTY,
    ERR_TRUNCATED_HEADER, ERR_BAD_MAGIC, ERR_BAD_VERSION, ERR_TOTALSIZE, ERR_TRUNCATED,
    ERR_BLOCK_BOUNDS, ERR_STRUCT_ALIGN, ERR_RSVMAP, ERR_STRUCT_END, ERR_BAD_TOKEN,
    ERR_NAME_UNTERMINATED, ERR_DEPTH, ERR_MULTIPLE_ROOTS, ERR_END_NODE, ERR_PROP_OUTSIDE_NODE,
    ERR_PROP_AFTER_SUBNODE, ERR_PROP_LEN, ERR_PROP_NAMEOFF, ERR_PROP_NAME_UNTERMINATED,
    ERR_UNCLOSED_NODES, ERR_NO_ROOT,
)


# Property names that carry a node's phandle ("phandle" wins over the old one).
_PHANDLE = np.frombuffer(b"phandle", dtype=np.uint8)
_LINUX_PHANDLE = np.frombuffer(b"linux,phandle", dtype=np.uint8)

# The types of the signatures: one machine-code version per kernel.
_i64, _b = types.int64, types.boolean
_DATA = array(np.uint8, readonly=True)
_I32, _I64, _U32, _B = array(np.int32), array(np.int64), array(np.uint32), array(np.bool_)
_I32_RO, _I64_RO, _U32_RO = (array(t, readonly=True) for t in (np.int32, np.int64, np.uint32))
_WALK_ARRAYS = (_I32, _I32, _I32, _I64, _I32, _I64, _U32, _I32, _I64, _I32, _I64, _I32)


@njit(_i64(_DATA, _i64), **INNER)
def _be32(data, p):
    """Big-endian u32 at data[p:p+4] (caller checked the bounds)."""
    return (
        (np.int64(data[p]) << 24)
        | (np.int64(data[p + 1]) << 16)
        | (np.int64(data[p + 2]) << 8)
        | np.int64(data[p + 3])
    )


@njit(_b(_DATA, _i64, _i64, _DATA), **INNER)
def _bytes_equal(data, off, n, lit):
    if n != lit.size:
        return False
    for k in range(n):
        if data[off + k] != lit[k]:
            return False
    return True


@njit(types.UniTuple(_i64, 4)(_DATA, _i64), **INNER)
def _blocks(data, base):
    """(struct_start, struct_end, strings_start, strings_end) of the DTB at
    data[base:], offsets relative to base, as its header (of version 16 or
    later, whole) gives them; _check_header checks them."""
    totalsize = _be32(data, base + 4)
    off_struct = _be32(data, base + 8)
    off_strings = _be32(data, base + 12)
    if _be32(data, base + 20) >= 17:
        size_struct = _be32(data, base + 36)
    else:
        # Version 16 does not record the size: the block may use the rest.
        size_struct = totalsize - off_struct
    return off_struct, off_struct + size_struct, off_strings, off_strings + _be32(data, base + 32)


@njit(types.UniTuple(_i64, 2)(_DATA, _i64, _i64), **INNER)
def _check_header(data, base, size):
    """Validate the header and the memory reservation block of the DTB at
    data[base:base+size].  Returns (err, err_off): (0, 0) when they are
    good, and then _blocks gives the bounds of the other blocks."""
    if size == 0:
        return ERR_EMPTY, 0
    if size < 4:
        return ERR_TRUNCATED_HEADER, size
    if _be32(data, base) != FDT_MAGIC:
        return ERR_BAD_MAGIC, 0
    if size < FDT_V16_SIZE:
        return ERR_TRUNCATED_HEADER, size
    version = _be32(data, base + 20)
    last_comp_version = _be32(data, base + 24)
    if version < 16:
        return ERR_BAD_VERSION, 20
    if last_comp_version > 17:
        return ERR_BAD_VERSION, 24
    hdr = FDT_V17_SIZE if version >= 17 else FDT_V16_SIZE
    if size < hdr:
        return ERR_TRUNCATED_HEADER, size
    totalsize = _be32(data, base + 4)
    if totalsize < hdr:
        return ERR_TOTALSIZE, 4
    if totalsize > size:
        return ERR_TRUNCATED, size
    s0, s1, t0, t1 = _blocks(data, base)
    if s0 < hdr or s0 > totalsize:
        return ERR_BLOCK_BOUNDS, 8
    if s1 > totalsize:
        return ERR_BLOCK_BOUNDS, 36
    if s0 % 4 != 0:
        return ERR_STRUCT_ALIGN, 8
    if t0 < hdr or t1 > totalsize:
        return ERR_BLOCK_BOUNDS, 12
    off_rsvmap = _be32(data, base + 16)
    if off_rsvmap < hdr or off_rsvmap > totalsize:
        return ERR_BLOCK_BOUNDS, 16
    # The reservation block is (address, size) u64 pairs ending with (0, 0).
    p = off_rsvmap
    while True:
        if p + 16 > totalsize:
            return ERR_RSVMAP, off_rsvmap
        zero = True
        for k in range(16):
            if data[base + p + k] != 0:
                zero = False
                break
        p += 16
        if zero:
            break
    return 0, 0


@njit(types.UniTuple(_i64, 4)(_DATA, _i64, _i64, _i64, _b, _i64, _i64, _I64, _B,
                              *_WALK_ARRAYS), **INNER)
def _walk_dtb(
    data, base, size, d, fill, node0, prop0, open_node, has_child,
    node_parent, node_depth, node_dtb, node_name_off, node_name_len,
    node_prop_start, node_phandle,
    prop_node, prop_name_off, prop_name_len, prop_val_off, prop_val_len,
):
    """Walk the structure block of DTB d (data[base:base+size]).

    Counting pass (fill False): validates everything and returns
    (n_nodes, n_props, err, err_off); the arrays may be empty.  Filling pass
    (fill True): also writes nodes from global index node0 and properties
    from prop0, the property names as offsets into data (interned later).
    open_node and has_child are scratch of MAX_DEPTH entries.  Each token
    moves forward by at least 4 bytes, so the walk ends.
    """
    err, err_off = _check_header(data, base, size)
    if err != 0:
        return 0, 0, err, err_off
    s0, s1, t0, t1 = _blocks(data, base)
    # open_node[k]: global index of the open node at depth k; has_child[k]:
    # it already has a subnode, so a property now would break the CSR ranges.
    depth = 0
    n_nodes = 0
    n_props = 0
    p = s0
    while True:
        if p + 4 > s1:
            # p may be past s1 by the padding of the last name or value
            return 0, 0, ERR_STRUCT_END, min(p, s1)
        tag_off = p
        tag = _be32(data, base + p)
        p += 4
        if tag == FDT_BEGIN_NODE:
            if depth == 0 and n_nodes > 0:
                return 0, 0, ERR_MULTIPLE_ROOTS, tag_off
            if depth >= MAX_DEPTH:
                return 0, 0, ERR_DEPTH, tag_off
            q = p
            while q < s1 and data[base + q] != 0:
                q += 1
            if q >= s1:
                return 0, 0, ERR_NAME_UNTERMINATED, p
            if fill:
                i = node0 + n_nodes
                node_parent[i] = open_node[depth - 1] if depth > 0 else -1
                node_depth[i] = depth
                node_dtb[i] = d
                node_name_off[i] = base + p
                node_name_len[i] = q - p
                node_prop_start[i] = prop0 + n_props
                node_phandle[i] = 0
            if depth > 0:
                has_child[depth - 1] = True
            open_node[depth] = node0 + n_nodes
            has_child[depth] = False
            depth += 1
            n_nodes += 1
            p = (q + 1 + 3) & ~3
        elif tag == FDT_END_NODE:
            if depth == 0:
                return 0, 0, ERR_END_NODE, tag_off
            depth -= 1
        elif tag == FDT_PROP:
            if p + 8 > s1:
                return 0, 0, ERR_STRUCT_END, tag_off
            vlen = _be32(data, base + p)
            nameoff = _be32(data, base + p + 4)
            p += 8
            if depth == 0:
                return 0, 0, ERR_PROP_OUTSIDE_NODE, tag_off
            if has_child[depth - 1]:
                return 0, 0, ERR_PROP_AFTER_SUBNODE, tag_off
            if vlen > s1 - p:
                return 0, 0, ERR_PROP_LEN, tag_off + 4
            if nameoff >= t1 - t0:
                return 0, 0, ERR_PROP_NAMEOFF, tag_off + 8
            q = t0 + nameoff
            while q < t1 and data[base + q] != 0:
                q += 1
            if q >= t1:
                return 0, 0, ERR_PROP_NAME_UNTERMINATED, t0 + nameoff
            if fill:
                j = prop0 + n_props
                node = open_node[depth - 1]
                prop_node[j] = node
                prop_name_off[j] = base + t0 + nameoff
                prop_name_len[j] = q - (t0 + nameoff)
                prop_val_off[j] = base + p
                prop_val_len[j] = vlen
                if vlen == 4:
                    if _bytes_equal(data, base + t0 + nameoff, q - t0 - nameoff, _PHANDLE):
                        node_phandle[node] = _be32(data, base + p)
                    elif node_phandle[node] == 0 and _bytes_equal(
                        data, base + t0 + nameoff, q - t0 - nameoff, _LINUX_PHANDLE
                    ):
                        node_phandle[node] = _be32(data, base + p)
            n_props += 1
            p = (p + vlen + 3) & ~3
        elif tag == FDT_NOP:
            pass
        elif tag == FDT_END:
            if depth != 0:
                return 0, 0, ERR_UNCLOSED_NODES, tag_off
            if n_nodes == 0:
                return 0, 0, ERR_NO_ROOT, tag_off
            return n_nodes, n_props, 0, 0
        else:
            return 0, 0, ERR_BAD_TOKEN, tag_off


@njit(types.none(_DATA, _I64_RO, _I32, _I64, _I64, _I64, _I64_RO, _I64_RO, _b,
                 _I64, _B, *_WALK_ARRAYS), **NJIT)
def walk_dtbs(
    data, dtb_data_off, dtb_error, dtb_error_off, dtb_n_nodes, dtb_n_props,
    dtb_node_start, dtb_prop_start, fill, open_node, has_child,
    node_parent, node_depth, node_dtb, node_name_off, node_name_len,
    node_prop_start, node_phandle,
    prop_node, prop_name_off, prop_name_len, prop_val_off, prop_val_len,
):
    """Both passes over every DTB (one kernel: compiled once).

    fill False: counts each DTB's nodes and properties and finds its error
    (DTBs the reader already refused are skipped); dtb_node_start and
    dtb_prop_start and the node and property arrays may be empty.  fill
    True: writes the arrays of the DTBs without an error from the starts
    computed from the counts.  open_node and has_child: scratch of MAX_DEPTH
    entries (allocated by the caller: numba compiles no allocator)."""
    for d in range(dtb_error.size):
        if not fill:
            dtb_n_nodes[d] = 0
            dtb_n_props[d] = 0
        if dtb_error[d] != 0:
            continue
        base = dtb_data_off[d]
        node0 = dtb_node_start[d] if fill else 0
        prop0 = dtb_prop_start[d] if fill else 0
        n_nodes, n_props, err, err_off = _walk_dtb(
            data, base, dtb_data_off[d + 1] - base, d, fill, node0, prop0, open_node, has_child,
            node_parent, node_depth, node_dtb, node_name_off, node_name_len,
            node_prop_start, node_phandle,
            prop_node, prop_name_off, prop_name_len, prop_val_off, prop_val_len,
        )
        if not fill:
            dtb_error[d] = err
            dtb_error_off[d] = err_off
            dtb_n_nodes[d] = n_nodes
            dtb_n_props[d] = n_props


def _walk_all(data, dtb_data_off, dtb_error, dtb_error_off, dtb_n_nodes, dtb_n_props,
              dtb_node_start, dtb_prop_start, fill, arrays):
    """walk_dtbs over every DTB, on one thread: two threads over halves of
    the corpus were no faster on the project's shared two-core machine (all
    of Linux 6.12 in 157-215 ms on one thread, 189-269 ms on two)."""
    walk_dtbs(data, dtb_data_off, dtb_error, dtb_error_off, dtb_n_nodes, dtb_n_props,
              dtb_node_start, dtb_prop_start, fill,
              np.empty(MAX_DEPTH, dtype=np.int64), np.empty(MAX_DEPTH, dtype=np.bool_), *arrays)


def count_dtbs(data, dtb_data_off, dtb_error, dtb_error_off, dtb_n_nodes, dtb_n_props):
    """Counting pass over every DTB: fills the per-DTB node and property
    counts and the errors.  DTBs already marked with an error (by the reader)
    are skipped."""
    empty = tuple(np.empty(0, dtype=t.dtype.name) for t in _WALK_ARRAYS)
    none = np.empty(0, dtype=np.int64)
    _walk_all(data, dtb_data_off, dtb_error, dtb_error_off, dtb_n_nodes, dtb_n_props,
              none, none, False, empty)


def fill_dtbs(
    data, dtb_data_off, dtb_error, dtb_node_start, dtb_prop_start,
    node_parent, node_depth, node_dtb, node_name_off, node_name_len,
    node_prop_start, node_phandle,
    prop_node, prop_name_off, prop_name_len, prop_val_off, prop_val_len,
):
    """Filling pass: the arrays are sized from count_dtbs' counts."""
    none = np.empty(0, dtype=np.int64)
    _walk_all(data, dtb_data_off, dtb_error, none, none, none, dtb_node_start, dtb_prop_start,
              True, (node_parent, node_depth, node_dtb, node_name_off, node_name_len,
                     node_prop_start, node_phandle,
                     prop_node, prop_name_off, prop_name_len, prop_val_off, prop_val_len))
    node_prop_start[node_prop_start.size - 1] = prop_node.size


@njit(_i64(_DATA, _i64, _i64), **INNER)
def _hash_bytes(data, off, n):
    # FNV-1a, 32-bit, in int64 arithmetic: the product stays below 2**56, so
    # nothing overflows, compiled or run as plain Python.
    h = 2166136261
    for k in range(n):
        h = ((h ^ np.int64(data[off + k])) * 16777619) & 0xFFFFFFFF
    return h


@njit(_i64(_DATA, _I64_RO, _I32_RO, _I32, _I32, _I64, _I32, _I64, _I32), **NJIT)
def intern(data, name_off, name_len, ids, table, uniq_off, uniq_len, memo_off, memo_id):
    """Intern byte strings data[name_off[j]:name_off[j]+name_len[j]] into
    ids, numbered in order of first appearance; the j-th distinct string is
    data[uniq_off[j]:uniq_off[j]+uniq_len[j]].  Returns the number of
    distinct strings, or -1 when there are more than uniq_off holds.
    table: open addressing (slot -> id), all -1, a power of two at least
    twice uniq_off's size so that it is never more than half full.
    memo_off (all -1) and memo_id: a direct-mapped memo of a power-of-two
    size: the properties of a DTB share the few names of its strings block,
    so looking the offset up there skips hashing the bytes most of the time."""
    mask = table.size - 1
    memo_mask = memo_off.size - 1
    n_uniq = 0
    for j in range(name_off.size):
        off = name_off[j]
        m = off & memo_mask
        if memo_off[m] == off:
            ids[j] = memo_id[m]
            continue
        ln = name_len[j]
        slot = _hash_bytes(data, off, ln) & mask
        while True:
            u = table[slot]
            if u < 0:
                break
            if uniq_len[u] == ln:
                uo = uniq_off[u]
                same = True
                for k in range(ln):
                    if data[uo + k] != data[off + k]:
                        same = False
                        break
                if same:
                    break
            slot = (slot + 1) & mask
        if u < 0:
            if n_uniq == uniq_off.size:
                return -1
            u = n_uniq
            uniq_off[u] = off
            uniq_len[u] = ln
            table[slot] = u
            n_uniq += 1
        ids[j] = u
        memo_off[m] = off
        memo_id[m] = u
    return n_uniq


def intern_names(data, name_off, name_len):
    """Intern byte strings data[name_off[j]:name_off[j]+name_len[j]]: returns
    (ids, uniq_off, uniq_len), ids numbered in order of first appearance."""
    ids = np.empty(name_off.size, dtype=np.int32)
    capacity = 1024
    while True:
        uniq_off = np.empty(capacity, dtype=np.int64)
        uniq_len = np.empty(capacity, dtype=np.int32)
        table = np.full(2 * capacity, -1, dtype=np.int32)
        n = intern(data, name_off, name_len, ids, table, uniq_off, uniq_len,
                   np.full(4096, -1, dtype=np.int64), np.empty(4096, dtype=np.int32))
        if n >= 0:
            return ids, uniq_off[:n].copy(), uniq_len[:n].copy()
        capacity *= 4


@njit(_i64(_I32_RO, _U32_RO, _I64_RO, _I64_RO, _i64, _i64), **NJIT)
def resolve_phandle(node_dtb, node_phandle, phandle_sorted, dtb_node_start, d, ph):
    """Global index of the node of DTB d whose phandle is ph, -1 when none.

    Binary search in phandle_sorted (node indices ordered by (dtb, phandle));
    with duplicated phandles (a broken DTB) the first in that order wins.
    """
    if ph == 0 or ph == 0xFFFFFFFF or dtb_node_start[d] == dtb_node_start[d + 1]:
        return -1
    lo = 0
    hi = phandle_sorted.size
    while lo < hi:
        mid = (lo + hi) >> 1
        i = phandle_sorted[mid]
        if node_dtb[i] < d or (node_dtb[i] == d and node_phandle[i] < ph):
            lo = mid + 1
        else:
            hi = mid
    if lo < phandle_sorted.size:
        i = phandle_sorted[lo]
        if node_dtb[i] == d and node_phandle[i] == ph:
            return i
    return -1
