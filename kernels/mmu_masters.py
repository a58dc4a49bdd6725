"""The legacy `mmu-masters` binding on arm-smmu nodes
(CONFIG_ARM_SMMU_LEGACY_DT_BINDINGS); docs/links.md."""
from numba import njit

from .codes import (A_BAD_ENTRY, A_LEGACY_UNSUPPORTED, A_NOT_PROBED, A_PROVIDER_DISABLED,
                    ARM_SMMU, ATTACHED, D_NONE, N_NONE, PCI_DISCOVERED, PCI_DT_CHILD, PLATFORM,
                    PROBED, VIA_MMU_MASTERS)
from .config import INNER
from .dt import (B, B_RO, I8_RO, I32_RO, I64_RO, MMU_MASTERS, PH_END, PH_NO_NODE, PH_OK, PHANDLES,
                 PROPS, STREAM_ID_CELLS, b1, cell, i64, phandle_entry)
from .link_rows import LINKS, ph_diag, row
from .pci import pci_functions
from .providers import is_pci


@njit(i64(*PROPS, *PHANDLES, I32_RO, I32_RO, I64_RO, I32_RO, i64, I8_RO, I8_RO, B_RO, B_RO,
          B, b1, b1, LINKS, i64), **INNER)
def legacy_links(data, pidx, val_off, val_len, node_dtb, node_phandle, phandle_sorted,
                 dtb_node_start, node_parent, node_depth, node_name_off, node_name_len, d,
                 role, state, own_ok, tree_ok, seen, legacy_bindings, unbind_disabled, out, k):
    """`mmu-masters` on arm-smmu nodes: a master belongs to the first probed
    SMMU that lists it (driver_for_each_device).  `seen` (scratch, as for
    map_providers) holds the masters claimed so far."""
    start, end = dtb_node_start[d], dtb_node_start[d + 1]
    claimed = seen
    for probed_pass in (True, False):
        for s in range(start, end):
            if role[s] != ARM_SMMU or (state[s] == PROBED) != probed_pass:
                continue
            p = pidx[MMU_MASTERS, s]
            if p < 0:
                continue
            cur = 0
            while True:
                code, m, nxt = phandle_entry(data, pidx, val_off, val_len, node_dtb,
                                             node_phandle, phandle_sorted, dtb_node_start, d, p,
                                             cur, STREAM_ID_CELLS)
                if code != PH_OK or m < 0:
                    if code != PH_END:
                        k = row(out, k, d, s, -1 if m < 0 else m, VIA_MMU_MASTERS, PLATFORM,
                                 -1, 0, False, A_BAD_ENTRY, N_NONE, ph_diag(code),
                                 cell(data, val_off, p, cur) if code == PH_NO_NODE else m,
                                 -1, 0, -1)
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
                par = node_parent[m]
                if par >= 0 and is_pci(data, pidx, val_off, val_len, m) and \
                        not is_pci(data, pidx, val_off, val_len, par):
                    functions = pci_functions(data, pidx, val_off, val_len, node_parent,
                                              node_depth, node_name_off, node_name_len, m, end)
                    for f in range(functions.shape[0]):
                        node = functions[f, 0]
                        k = row(out, k, d, s, node, VIA_MMU_MASTERS, PCI_DT_CHILD, m,
                                 functions[f, 4],
                                 tree_ok[m] and (own_ok[node] or not unbind_disabled),
                                 attach, N_NONE, D_NONE, 0,
                                 (functions[f, 1] << 8) | functions[f, 2], 0, -1)
                    k = row(out, k, d, s, m, VIA_MMU_MASTERS, PCI_DISCOVERED, m, 0,
                             tree_ok[m], attach, N_NONE, D_NONE, 0, -1, 0, -1)
                else:
                    # The root is no device: of_platform_populate() makes
                    # devices of its children.
                    k = row(out, k, d, s, m, VIA_MMU_MASTERS, PLATFORM, -1, 0,
                             tree_ok[m] and par >= 0, attach, N_NONE, D_NONE, 0, -1, 0, -1)
    for j in range(end - start):
        claimed[j] = False
    return k
