"""The PCI function nodes below a host bridge, as the PCI core finds them
(of_pci_get_devfn, of_pci_find_child_device); docs/links.md."""
import numpy as np
from numba import njit

from .config import INNER
from .dt import (BUS_RANGE, DATA, I32_RO, I64_2D, I64_RO, PROPS, REG, b1, cell, i64, read_u32)
from .providers import is_pci

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
