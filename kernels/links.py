"""Masters and the providers they end up attached to: every (provider,
master) link of every DTB, with why a link leads to no IOMMU.

Three ways a master names its IOMMU (../shared/SPEC.md section 3):
`iommus` on the device (of_iommu_configure_dev), `iommu-map` on a bus node
(of_map_id: PCI host bridges, fsl-mc, host1x, CDX, GPC DMA), and the legacy
`mmu-masters` on an arm-smmu node.
"""
import numpy as np
from numba import njit

from .config import NJIT
from .dt import (BUS_RANGE, DEVICE_TYPE, IOMMU_CELLS, IOMMU_MAP, IOMMU_MAP_MASK, IOMMUS,
                 MMU_MASTERS, PH_END, PH_NO_CELLS, PH_NO_NODE, PH_OK, PH_OVERRUN,
                 REG, STREAM_ID_CELLS, cell, find_prop, phandle_entry, read_u32,
                 status_okay)
from .fdt import resolve_phandle
from .providers import (ARM_SMMU, CDX, FSL_MC, GPCDMA, HOST1X, NO_CAPABLE,
                        PROBED, is_pci)

# How the master names the provider (link_via).
VIA_IOMMUS, VIA_IOMMU_MAP, VIA_MMU_MASTERS = 0, 1, 2

# What the master is (link_kind).
PLATFORM, PCI_DT_CHILD, PCI_DISCOVERED, FSL_MC_OBJECT, HOST1X_CONTEXT, \
    GPCDMA_CHANNEL, CDX_DEVICE = range(7)

# Whether the device gets its IOMMU (link_attach); all but ATTACHED mean no-iommu.
ATTACHED = 0
A_PROVIDER_DISABLED = 1   # of_iommu_xlate(): !of_device_is_available()
A_NOT_PROBED = 2          # the provider's driver failed to probe (providers.probe)
A_BAD_ENTRY = 3           # the first `iommus` entry does not parse
A_OTHER_DRIVER = 4        # a later `iommus` entry names another driver: -EINVAL
A_UNCOVERED_ID = 5        # the ID is in no iommu-map entry
A_BAD_MAP = 6             # iommu-map of a bad length, or id-base outside the mask
A_NO_TARGET = 7           # a map entry's phandle points nowhere
A_LEGACY_UNSUPPORTED = 8  # mmu-masters without CONFIG_ARM_SMMU_LEGACY_DT_BINDINGS
A_LEGACY_SYSTEM = 9       # a generic-binding master of an arm-smmu running legacy
A_NOT_A_PROVIDER = 10     # the target is no IOMMU at all (no #iommu-cells, no driver)

# Remarks that do not change the verdict (link_note).
N_NONE = 0
N_PLACEHOLDER = 1         # every map entry has length 0: firmware fills it in at boot
N_GUESSED_BUS = 2         # below a root port: the bus number is a guess from `reg`
N_GUESS_UNMATCHED = 3     # ...and that guess is in no entry: judged against the map's providers
N_TRUNCATED = 4           # `iommus` parsing stopped at a malformed later entry

# Diagnostics about the DT itself (link_diag), with link_diag_arg.
D_NONE = 0
D_PHANDLE_NOWHERE = 1     # arg: the phandle
D_NO_IOMMU_CELLS = 2      # the target lacks #iommu-cells (#stream-id-cells for mmu-masters)
D_SHORT_LIST = 3          # arguments run past the end of the property
D_EMPTY_ENTRY = 4         # a phandle of 0
D_MAP_LENGTH = 5          # arg: the length in bytes
D_MAP_MASK = 6            # arg: the id-base the mask ignores
D_MIXED_DRIVERS = 7       # arg: the node of the other driver's entry

# The columns of the int64 table that find_links() returns, one row a link.
FIELDS = ("dtb", "provider", "master", "via", "kind", "bridge", "bridge_function",
          "enabled", "attach", "note", "diag", "diag_arg", "rid")
(L_DTB, L_PROVIDER, L_MASTER, L_VIA, L_KIND, L_BRIDGE, L_BRIDGE_FUNCTION,
 L_ENABLED, L_ATTACH, L_NOTE, L_DIAG, L_DIAG_ARG, L_RID) = range(len(FIELDS))


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


@njit(**NJIT)
def map_lookup(t, d, p, mask, rid):
    """of_map_id() with the fixed 4-cell entries of Linux 6.1 and 6.12:
    (attach code, target node, diag, diag_arg)."""
    n_bytes = t.prop_val_len[p]
    if n_bytes == 0 or n_bytes % 16 != 0:
        return A_BAD_MAP, -1, D_MAP_LENGTH, n_bytes
    masked = rid & mask
    for e in range(n_bytes // 16):
        base = cell(t, p, 4 * e)
        length = cell(t, p, 4 * e + 3)
        if base & ~mask & 0xffffffff:
            return A_BAD_MAP, -1, D_MAP_MASK, base
        if masked < base or masked >= base + length:
            continue
        ph = cell(t, p, 4 * e + 1)
        target = resolve_phandle(t.node_dtb, t.node_phandle, t.phandle_sorted,
                                 t.dtb_node_start, d, ph)
        if target < 0:
            return A_NO_TARGET, -1, D_PHANDLE_NOWHERE, ph
        return ATTACHED, target, D_NONE, 0
    return A_UNCOVERED_ID, -1, D_NONE, 0


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
    is_bus = np.zeros(size, dtype=np.bool_)     # a bus node: the bridge or a matched function
    is_bus[0] = True
    seen = np.zeros((size, 256), dtype=np.bool_)
    row_of = np.full(size, -1, dtype=np.int64)
    for j in range(bridge + 1, end):
        if not _function_node(t, j):
            continue
        bus_node = t.node_parent[j]
        if _is_multifunc(t, bus_node) and bus_node > bridge:
            bus_node = t.node_parent[bus_node]
        if not is_bus[bus_node - bridge]:
            continue
        reg0 = cell(t, find_prop(t, j, REG), 0)
        devfn = (reg0 >> 8) & 0xff
        if seen[bus_node - bridge, devfn]:
            continue
        seen[bus_node - bridge, devfn] = True
        is_bus[j - bridge] = True
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


@njit(**NJIT)
def map_providers(t, d, p):
    """The distinct targets of an iommu-map, in entry order, and whether it
    is a placeholder (every entry of length 0, filled in by firmware)."""
    n = t.prop_val_len[p] // 16
    targets = np.empty(max(n, 1), dtype=np.int64)
    k = 0
    placeholder = n > 0
    for e in range(n):
        if cell(t, p, 4 * e + 3) != 0:
            placeholder = False
        target = resolve_phandle(t.node_dtb, t.node_phandle, t.phandle_sorted,
                                 t.dtb_node_start, d, cell(t, p, 4 * e + 1))
        if target < 0:
            continue
        new = True
        for q in range(k):
            if targets[q] == target:
                new = False
        if new:
            targets[k] = target
            k += 1
    return targets[:k], placeholder


@njit(**NJIT)
def _row(out, k, d, provider, master, via, kind, bridge, bridge_function, enabled,
         attach, note, diag, diag_arg, rid):
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
    return k + 1


@njit(**NJIT)
def _map_links(t, d, node, kind, role, state, own_ok, tree_ok, legacy, out, k):
    """Links of a bus node's iommu-map for the devices found at run time:
    one per (bus node, provider of the map)."""
    p = find_prop(t, node, IOMMU_MAP)
    enabled = tree_ok[node]
    n_bytes = t.prop_val_len[p]
    if n_bytes == 0 or n_bytes % 16 != 0:
        return _row(out, k, d, -1, node, VIA_IOMMU_MAP, kind, node, 0, enabled,
                    A_BAD_MAP, N_NONE, D_MAP_LENGTH, n_bytes, -1)
    targets, placeholder = map_providers(t, d, p)
    note = N_PLACEHOLDER if placeholder else N_NONE
    for e in range(n_bytes // 16):
        ph = cell(t, p, 4 * e + 1)
        if resolve_phandle(t.node_dtb, t.node_phandle, t.phandle_sorted,
                           t.dtb_node_start, d, ph) < 0:
            k = _row(out, k, d, -1, node, VIA_IOMMU_MAP, kind, node, 0, enabled,
                     A_NO_TARGET, note, D_PHANDLE_NOWHERE, ph, -1)
            break
    for target in targets:
        k = _row(out, k, d, target, node, VIA_IOMMU_MAP, kind, node, 0, enabled,
                 _attach(t, role, state, own_ok, target, legacy[d]), note, D_NONE, 0, -1)
    return k


@njit(**NJIT)
def _pci_links(t, d, bridge, role, state, own_ok, tree_ok, legacy, out, k):
    """A PCI host bridge's iommu-map: its DT function nodes, then the
    devices discovered on the bus."""
    p = find_prop(t, bridge, IOMMU_MAP)
    mask = read_u32(t, bridge, IOMMU_MAP_MASK, 0xffffffff)
    targets, placeholder = map_providers(t, d, p)
    bad_length = t.prop_val_len[p] == 0 or t.prop_val_len[p] % 16 != 0
    functions = pci_functions(t, bridge)
    for f in range(functions.shape[0]):
        node, bus, devfn = functions[f, 0], functions[f, 1], functions[f, 2]
        guessed, bridge_fn = functions[f, 3], functions[f, 4]
        rid = (bus << 8) | devfn
        # pci_bus.c: a function whose node is disabled is enumerated but no
        # driver (vfio-pci included) matches it.
        enabled = tree_ok[bridge] and own_ok[node]
        attach, target, diag, arg = map_lookup(t, d, p, mask, rid)
        note = N_GUESSED_BUS if guessed else N_NONE
        if not bad_length and (placeholder or (attach == A_UNCOVERED_ID and guessed)):
            note = N_PLACEHOLDER if placeholder else N_GUESS_UNMATCHED
            for target in targets:
                k = _row(out, k, d, target, node, VIA_IOMMU_MAP, PCI_DT_CHILD, bridge,
                         bridge_fn, enabled, _attach(t, role, state, own_ok, target, legacy[d]),
                         note, D_NONE, 0, rid)
            continue
        if attach == ATTACHED:
            attach = _attach(t, role, state, own_ok, target, legacy[d])
        k = _row(out, k, d, target, node, VIA_IOMMU_MAP, PCI_DT_CHILD, bridge, bridge_fn,
                 enabled, attach, note, diag, arg, rid)
    return _map_links(t, d, bridge, PCI_DISCOVERED, role, state, own_ok, tree_ok,
                      legacy, out, k)


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
                attach, note, diag, arg, -1)


@njit(**NJIT)
def _legacy_links(t, d, role, state, own_ok, tree_ok, legacy_bindings, out, k):
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
                                 cell(t, p, cur) if code == PH_NO_NODE else m, -1)
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
                                 functions[f, 4], tree_ok[m] and own_ok[node], attach,
                                 N_NONE, D_NONE, 0, (functions[f, 1] << 8) | functions[f, 2])
                    k = _row(out, k, d, s, m, VIA_MMU_MASTERS, PCI_DISCOVERED, m, 0,
                             tree_ok[m], attach, N_NONE, D_NONE, 0, -1)
                else:
                    k = _row(out, k, d, s, m, VIA_MMU_MASTERS, PLATFORM, -1, 0,
                             tree_ok[m], attach, N_NONE, D_NONE, 0, -1)
    return k


@njit(**NJIT)
def find_links(t, role, driver, state, own_ok, tree_ok, legacy, legacy_bindings, out):
    """Every link of every DTB into `out` (int64[capacity, len(FIELDS)]).
    Returns the number of links; when it exceeds the capacity, call again
    with a larger `out`."""
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
                    k = _pci_links(t, d, i, role, state, own_ok, tree_ok, legacy, out, k)
            r = role[i]
            if has_map and r == FSL_MC:
                k = _map_links(t, d, i, FSL_MC_OBJECT, role, state, own_ok, tree_ok, legacy, out, k)
            elif has_map and r == HOST1X:
                k = _map_links(t, d, i, HOST1X_CONTEXT, role, state, own_ok, tree_ok, legacy, out, k)
            elif has_map and r == CDX:
                k = _map_links(t, d, i, CDX_DEVICE, role, state, own_ok, tree_ok, legacy, out, k)
            elif has_map and r == GPCDMA:
                k = _map_links(t, d, i, GPCDMA_CHANNEL, role, state, own_ok, tree_ok, legacy, out, k)
            if iommus[i] >= 0:   # a platform device (a host bridge's controller too)
                k = _iommus_link(t, d, i, role, driver, state, own_ok, tree_ok, legacy, out, k)
        if legacy_masters:
            k = _legacy_links(t, d, role, state, own_ok, tree_ok, legacy_bindings, out, k)
    return k
