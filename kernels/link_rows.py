"""What the link kernels share (kernels/links.py and the module of each way
a master names its IOMMU: iommus.py, iommu_map.py, mmu_masters.py): the
typed values they take besides the Tree (kernels.dt.TREE), and the writer
of one row of the table of links (kernels/table.py)."""
from collections import namedtuple

import numpy as np
from numba import from_dtype, njit, types

from .codes import D_NO_IOMMU_CELLS, D_NONE, D_PHANDLE_NOWHERE, D_SHORT_LIST
from .config import INNER
from .dt import (B, B_RO, I8, I8_RO, I16_RO, PH_NO_CELLS, PH_NO_NODE, PH_OVERRUN, b1, i64,
                 readonly)
from .table import LINK_DTYPE

LINKS = types.Array(from_dtype(LINK_DTYPE), 1, "C")
LINKS_RO = types.Array(from_dtype(LINK_DTYPE), 1, "C", readonly=True)

# What the kernels before found of each node (roles, driver, probe state,
# availability) and of each DTB (`legacy`: arm-smmu runs the mmu-masters
# binding), then the link kernels' own: what of_iommu_xlate() answers for
# each node as an iommu-map's or an iommus entry's target, and `seen`,
# scratch of one flag per node of a DTB, all False between uses.
Nodes = namedtuple("Nodes", ["role", "driver", "state", "own_ok", "tree_ok", "legacy",
                             "xlate", "xlate_iommus", "seen"])
NODES = types.NamedTuple([I8_RO, I16_RO, I8_RO, B_RO, B_RO, B_RO, I8, I8, B], Nodes)

# What the target kernel decides about links (kernels.target.TargetKernel,
# Judging): CONFIG_ARM_SMMU_LEGACY_DT_BINDINGS; of_map_id() reads
# out-specifiers of the target's #iommu-cells (7.2); no driver binds a PCI
# function whose node is disabled (6.12).
Reading = namedtuple("Reading", ["legacy_bindings", "map_cells", "unbind_disabled"])
READING = types.NamedUniTuple(b1, 3, Reading)

# A link's diagnostic: (diag, diag_arg, diag_arg2, diag_node), codes.DIAGNOSTICS.
DIAG = types.UniTuple(i64, 4)
NO_DIAG = (D_NONE, 0, 0, -1)


def nodes_of(role, driver, state, own_ok, tree_ok, legacy, n_nodes, n_seen):
    """The Nodes of a sweep, with its scratch arrays."""
    return Nodes(readonly(role), readonly(driver), readonly(state), readonly(own_ok),
                 readonly(tree_ok), readonly(legacy), np.empty(n_nodes, dtype=np.int8),
                 np.empty(n_nodes, dtype=np.int8), np.zeros(n_seen, dtype=np.bool_))


@njit(i64(LINKS, i64, i64, i64, i64, i64, i64, i64, b1, b1, i64, i64, i64, DIAG), **INNER)
def row(out, k, d, provider, master, via, kind, bridge, bridge_function, enabled, attach, note,
        rid, diag):
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
    r["bridge_function"] = bridge_function
    r["enabled"] = enabled
    r["attach"] = attach
    r["note"] = note
    r["rid"] = rid
    r["diag"] = diag[0]
    r["diag_arg"] = diag[1]
    r["diag_arg2"] = diag[2]
    r["diag_node"] = diag[3]
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
