"""What the link kernels share (kernels/links.py and the module of each way
a master names its IOMMU: iommus.py, iommu_map.py, mmu_masters.py): the
type of the table of links (kernels/table.py) and the writer of one row.

They take the flattened arrays they read one by one (kernels/dt.py: PROPS,
PHANDLES), not the Tree as one typed value: a numba NamedTuple of the
arrays was measured slower (docs/links.md, the table of links)."""
from numba import from_dtype, njit, types

from .codes import D_NO_IOMMU_CELLS, D_NONE, D_PHANDLE_NOWHERE, D_SHORT_LIST
from .config import INNER
from .dt import PH_NO_CELLS, PH_NO_NODE, PH_OVERRUN, i64
from .table import LINK_DTYPE

LINKS = types.Array(from_dtype(LINK_DTYPE), 1, "C")
LINKS_RO = types.Array(from_dtype(LINK_DTYPE), 1, "C", readonly=True)


@njit(i64(LINKS, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64,
          i64), **INNER)
def row(out, k, d, provider, master, via, kind, bridge, bridge_function, enabled,
        attach, note, diag, diag_arg, rid, diag_arg2, diag_node):
    """Link k, when `out` has room for it; the number of links so far."""
    if k >= out.shape[0]:
        return k + 1           # counted, not stored: the caller grows `out`
    r = out[k]
    r["dtb"] = d
    r["provider"] = provider
    r["master"] = master
    r["via"] = via
    r["kind"] = kind
    r["bridge"] = bridge
    r["bridge_function"] = bridge_function != 0
    r["enabled"] = enabled != 0
    r["attach"] = attach
    r["note"] = note
    r["diag"] = diag
    r["diag_arg"] = diag_arg
    r["rid"] = rid
    r["diag_arg2"] = diag_arg2
    r["diag_node"] = diag_node
    return k + 1


@njit(i64(i64), **INNER)
def ph_diag(code):
    """The diagnostic of a phandle list entry that does not parse (kernels.dt.PH_*)."""
    if code == PH_NO_NODE:
        return D_PHANDLE_NOWHERE
    if code == PH_NO_CELLS:
        return D_NO_IOMMU_CELLS
    if code == PH_OVERRUN:
        return D_SHORT_LIST
    return D_NONE
