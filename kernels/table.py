"""The table of links the kernels return (kernels.links.find_links): one
row a (provider, master) link, its columns named by a structured dtype.

Plain numpy: kept results are loaded (kernels/results.py) and read
(auditor/sweep.py, auditor/explain.py) without numba.  The codes of each
column are in kernels/codes.py.
"""
import numpy as np

# Widest first: aligned rows without holes, 48 bytes a link.
LINK_DTYPE = np.dtype([
    ("diag_arg", np.int64),          # the diagnostic's {arg} (codes.DIAGNOSTICS)
    ("diag_arg2", np.int64),         # its {arg2}
    ("dtb", np.int32),               # the DTB (flat.paths)
    ("provider", np.int32),          # the IOMMU node; -1: none
    ("master", np.int32),            # the master's node (the bus node: devices found at run time)
    ("bridge", np.int32),            # the bus node of an iommu-map above the master; -1: none
    ("rid", np.int32),               # a PCI function's requester ID; -1: none
    ("diag_node", np.int32),         # the diagnostic's {node}; -1: none
    ("via", np.int8),                # codes.VIA_NAMES
    ("kind", np.int8),               # codes.KIND_NAMES
    ("attach", np.int8),             # codes.ATTACH_REASONS
    ("note", np.int8),               # codes.NOTES
    ("diag", np.int8),               # codes.DIAGNOSTICS
    ("bridge_function", np.bool_),   # a PCI-PCI bridge's function: no VFIO candidate
    ("enabled", np.bool_),           # the master is a device (its status and its ancestors')
], align=True)
assert LINK_DTYPE.itemsize == 48


def stored(links: np.ndarray) -> np.ndarray:
    """The links as a plain uint8[n, 48] array (an array bundle keeps plain
    dtypes only): the same bytes, no copy."""
    return links.view(np.uint8).reshape(links.shape[0], LINK_DTYPE.itemsize)


def from_stored(rows: np.ndarray) -> np.ndarray:
    """The links of stored(): the same bytes (a read-only map stays one)."""
    return rows.view(LINK_DTYPE).reshape(rows.shape[0])
