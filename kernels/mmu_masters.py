"""The legacy `mmu-masters` binding on arm-smmu nodes
(CONFIG_ARM_SMMU_LEGACY_DT_BINDINGS); docs/links.md."""
from numba import njit

from .codes import (A_BAD_ENTRY, A_LEGACY_UNSUPPORTED, A_NOT_PROBED, A_PROVIDER_DISABLED,
                    ARM_SMMU, ATTACHED, N_NONE, PCI_DISCOVERED, PCI_DT_CHILD, PLATFORM,
                    PROBED, VIA_MMU_MASTERS)
from .config import INNER
from .dt import (MMU_MASTERS, PH_END, PH_NO_NODE, PH_OK, STREAM_ID_CELLS, TREE, i64, tree_cell,
                 tree_entry)
from .link_rows import LINKS, NODES, NO_DIAG, READING, ph_diag, row
from .pci import pci_functions
from .providers import is_pci


@njit(i64(TREE, NODES, READING, i64, LINKS, i64), **INNER)
def legacy_links(t, nodes, reading, d, out, k):
    """`mmu-masters` on arm-smmu nodes: a master belongs to the first probed
    SMMU that lists it (driver_for_each_device).  nodes.seen holds the
    masters claimed so far."""
    role, state, own_ok, tree_ok = nodes.role, nodes.state, nodes.own_ok, nodes.tree_ok
    start, end = t.dtb_node_start[d], t.dtb_node_start[d + 1]
    claimed = nodes.seen
    for probed_pass in (True, False):
        for s in range(start, end):
            if role[s] != ARM_SMMU or (state[s] == PROBED) != probed_pass:
                continue
            p = t.pidx[MMU_MASTERS, s]
            if p < 0:
                continue
            cur = 0
            while True:
                code, m, nxt = tree_entry(t, d, p, cur, STREAM_ID_CELLS)
                if code != PH_OK or m < 0:
                    if code != PH_END:
                        arg = tree_cell(t, p, cur) if code == PH_NO_NODE else m
                        k = row(out, k, d, s, -1 if m < 0 else m, VIA_MMU_MASTERS, PLATFORM,
                                -1, False, False, A_BAD_ENTRY, N_NONE, -1,
                                (ph_diag(code), arg, 0, -1))
                    break
                cur = nxt
                if claimed[m - start]:
                    continue
                claimed[m - start] = True
                if not own_ok[s]:
                    attach = A_PROVIDER_DISABLED
                elif state[s] != PROBED:
                    attach = A_NOT_PROBED
                elif not reading.legacy_bindings:
                    attach = A_LEGACY_UNSUPPORTED
                else:
                    attach = ATTACHED
                par = t.node_parent[m]
                if is_pci(t.data, t.pidx, t.prop_val_off, t.prop_val_len, m) and \
                        (par < 0 or not is_pci(t.data, t.pidx, t.prop_val_off, t.prop_val_len,
                                               par)):
                    functions = pci_functions(t, m, end)
                    for f in range(functions.shape[0]):
                        node = functions[f, 0]
                        k = row(out, k, d, s, node, VIA_MMU_MASTERS, PCI_DT_CHILD, m,
                                functions[f, 4] != 0,
                                tree_ok[m] and (own_ok[node] or not reading.unbind_disabled),
                                attach, N_NONE, (functions[f, 1] << 8) | functions[f, 2],
                                NO_DIAG)
                    k = row(out, k, d, s, m, VIA_MMU_MASTERS, PCI_DISCOVERED, m, False,
                            tree_ok[m], attach, N_NONE, -1, NO_DIAG)
                else:
                    k = row(out, k, d, s, m, VIA_MMU_MASTERS, PLATFORM, -1, False,
                            tree_ok[m], attach, N_NONE, -1, NO_DIAG)
    for j in range(end - start):
        claimed[j] = False
    return k
