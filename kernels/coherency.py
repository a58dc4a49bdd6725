"""of_dma_is_coherent() and device availability, for every node at once."""
import numpy as np
from numba import njit, types

from .config import NJIT
from .dt import (B, DATA, DMA_COHERENT, DMA_NONCOHERENT, I8, I32_RO, I64, I64_RO, INTERCONNECTS,
                 INTERCONNECT_CELLS, INTERCONNECT_NAMES, PH_OK, PHANDLES, PROPS, STATUS, b1, i64,
                 phandle_entry, phandles, props, status_okay, string_index)

DMA_MEM = np.frombuffer(b"dma-mem", dtype=np.uint8)

# How a node's coherency was decided (coherent_why).
WHY_OWN = 0        # the node itself says dma-coherent / dma-noncoherent
WHY_INHERITED = 1  # a DMA parent does (coherent_from)
WHY_DEFAULT = 2    # nobody says: dma_default_coherent, false on arm64
WHY_CYCLE = 3      # the DMA-parent chain loops (the kernel would spin)


@njit(i64(*PROPS, *PHANDLES, I32_RO, i64), **NJIT)
def _dma_parent(data, pidx, val_off, val_len, node_dtb, node_phandle, phandle_sorted,
                dtb_node_start, node_parent, node):
    names = pidx[INTERCONNECT_NAMES, node]
    if names >= 0:
        index = string_index(data, val_off[names], val_len[names], DMA_MEM)
        p = pidx[INTERCONNECTS, node]
        if index >= 0 and p >= 0:
            d = node_dtb[node]
            cur = 0
            for i in range(index + 1):
                code, target, nxt = phandle_entry(data, pidx, val_off, val_len, node_dtb,
                                                  node_phandle, phandle_sorted, dtb_node_start,
                                                  d, p, cur, INTERCONNECT_CELLS)
                if code != PH_OK:
                    break
                if i == index:
                    if target >= 0:
                        return target
                    break
                cur = nxt
    return node_parent[node]


def dma_parent(t, node):
    """of_get_next_dma_parent(): the `interconnects` entry named "dma-mem"
    when there is one that parses, else the tree parent."""
    return _dma_parent(*props(t), *phandles(t), t.node_parent, node)


@njit(types.none(DATA, I32_RO, I64_RO, I32_RO, I32_RO, B, B), **NJIT)
def _availability(data, status, val_off, val_len, node_parent, own, tree):
    for i in range(node_parent.shape[0]):      # parents precede children
        p = status[i]
        own[i] = p < 0 or status_okay(data, val_off[p], val_len[p])
        par = node_parent[i]
        # of_platform_populate() starts at the root's children: the root's
        # own status disables nothing.
        tree[i] = par < 0 or (own[i] and tree[par])


def availability(t):
    """Per node: its own `status` is okay, and it and all its ancestors below
    the root are (a node under a disabled ancestor is never made a device)."""
    n = t.node_parent.shape[0]
    own = np.empty(n, dtype=np.bool_)
    tree = np.empty(n, dtype=np.bool_)
    _availability(t.data, t.pidx[STATUS], t.prop_val_off, t.prop_val_len, t.node_parent,
                  own, tree)
    return own, tree


@njit(types.none(*PROPS, *PHANDLES, I32_RO, b1, B, I8, I64, I64, I64), **NJIT)
def _coherency(data, pidx, val_off, val_len, node_dtb, node_phandle, phandle_sorted,
               dtb_node_start, node_parent, honour_noncoherent, coherent, why, source,
               loop_from, chain):
    parent = node_parent
    has_coherent = pidx[DMA_COHERENT]
    has_noncoherent = pidx[DMA_NONCOHERENT]
    names = pidx[INTERCONNECT_NAMES]
    for i in range(parent.shape[0]):
        # Walk DMA parents until a node already decided or one that decides
        # (a node decided before stops its own walk at once).
        k = 0
        node = i
        value = False
        how = WHY_DEFAULT
        src = -1
        while node >= 0:
            if why[node] >= 0:
                value, how, src = coherent[node], why[node], source[node]
                break
            if why[node] == -2:     # back on this walk's chain: a loop
                how = WHY_CYCLE
                loop_from[node] = chain[k - 1]
                break
            if has_coherent[node] >= 0:
                value, how, src = True, WHY_OWN, node
                break
            if honour_noncoherent and has_noncoherent[node] >= 0:
                value, how, src = False, WHY_OWN, node
                break
            why[node] = -2          # on the current chain
            chain[k] = node
            k += 1
            # interconnects: only the few nodes that name them
            node = _dma_parent(data, pidx, val_off, val_len, node_dtb, node_phandle,
                               phandle_sorted, dtb_node_start, parent, node) \
                if names[node] >= 0 else parent[node]
        # The deciding node and everything on the chain (an own decision
        # taken from a node decided before writes what it holds).
        if how == WHY_OWN:
            coherent[src] = value
            why[src] = WHY_OWN
            source[src] = src
        for j in range(k):
            c = chain[j]
            coherent[c] = value
            why[c] = WHY_INHERITED if how == WHY_OWN else how
            source[c] = src


def coherency(t, honour_noncoherent):
    """of_dma_is_coherent() of every node: (coherent, coherent_why,
    coherent_from, loop_from), coherent_from being the node whose property
    decided.  honour_noncoherent: `dma-noncoherent` ends the walk (from 6.1;
    5.10 looks for `dma-coherent` only).  A DMA-parent loop is found once,
    by the walk that first enters it: loop_from[node] = the node on the loop
    whose DMA parent closes it (node), -1 elsewhere."""
    n = t.node_parent.shape[0]
    coherent = np.zeros(n, dtype=np.bool_)
    why = np.full(n, -1, dtype=np.int8)
    source = np.full(n, -1, dtype=np.int64)
    loop_from = np.full(n, -1, dtype=np.int64)
    chain = np.empty(n, dtype=np.int64)       # the walk's nodes, scratch
    _coherency(*props(t), *phandles(t), t.node_parent, honour_noncoherent, coherent, why, source,
               loop_from, chain)
    return coherent, why, source, loop_from
