"""`iommus` on a device: of_iommu_configure_dev() and of_iommu_xlate() of
each entry; docs/links.md."""
from numba import njit

from .codes import (A_BAD_ENTRY, A_NOT_A_PROVIDER, A_OTHER_DRIVER, ATTACHED, D_EMPTY_ENTRY,
                    D_MIXED_DRIVERS, D_NO_IOMMU_CELLS, D_NONE, N_NONE, N_TRUNCATED, PLATFORM,
                    VIA_IOMMUS)
from .config import INNER
from .dt import (B_RO, I8_RO, I16_RO, IOMMU_CELLS, IOMMUS, PH_END, PH_NO_CELLS, PH_NO_NODE, PH_OK,
                 PHANDLES, PROPS, cell, i64, phandle_entry)
from .link_rows import LINKS, ph_diag, row


@njit(i64(*PROPS, *PHANDLES, i64, i64, I16_RO, B_RO, I8_RO, LINKS, i64), **INNER)
def iommus_link(data, pidx, val_off, val_len, node_dtb, node_phandle, phandle_sorted,
                dtb_node_start, d, node, driver, tree_ok, xlate, out, k):
    """of_iommu_configure_dev(): every entry is translated; the device is
    attached to the first entry's IOMMU, an entry of another driver is
    refused (-EINVAL) and any failure leaves it with none.  Parsing stops
    quietly at the first entry that does not parse."""
    p = pidx[IOMMUS, node]
    cur = 0
    first = -1
    attach = ATTACHED
    note = N_NONE
    diag = D_NONE
    arg = 0
    while True:
        code, target, nxt = phandle_entry(data, pidx, val_off, val_len, node_dtb, node_phandle,
                                          phandle_sorted, dtb_node_start, d, p, cur,
                                          IOMMU_CELLS)
        if code == PH_OK and target < 0:
            diag = D_EMPTY_ENTRY
            code = PH_END
        if code != PH_OK:
            if code != PH_END:
                diag = ph_diag(code)
                arg = cell(data, val_off, p, cur) if code == PH_NO_NODE else target
            if first < 0:          # the first entry
                attach = A_BAD_ENTRY
                if code == PH_NO_CELLS:
                    first = target
            elif code != PH_END or diag != D_NONE:
                note = N_TRUNCATED
            break
        if first < 0:
            first = target
            attach = xlate[target]
        else:
            a = xlate[target]
            if a != ATTACHED:
                attach = a
            elif driver[target] != driver[first]:
                attach = A_OTHER_DRIVER
                diag = D_MIXED_DRIVERS
                arg = target
        if attach != ATTACHED:
            break
        cur = nxt
    if first >= 0 and attach == A_BAD_ENTRY and diag == D_NO_IOMMU_CELLS:
        attach = A_NOT_A_PROVIDER
    return row(out, k, d, first, node, VIA_IOMMUS, PLATFORM, -1, 0, tree_ok[node],
                attach, note, diag, arg, -1, 0, -1)
