"""The flattened corpus: every DTB of a corpus as one set of columnar arrays.

Layout (the one place it is described).  Indices are global across the
corpus; per-DTB ranges are CSR style.

  data            uint8[n_bytes]   all DTB files, concatenated; names and
                                   values below are (offset, length) into it
  dtb_data_off    int64[n_dtb+1]   DTB d's bytes are data[dtb_data_off[d]:dtb_data_off[d+1]]
  dtb_node_start  int64[n_dtb+1]   DTB d's nodes are [dtb_node_start[d], dtb_node_start[d+1])
  dtb_error       int32[n_dtb]     0, or an error code (kernels.fdt.ERR_*); a DTB
                                   with an error has no nodes
  dtb_error_off   int64[n_dtb]     byte offset in the DTB where the error was found

  node_parent     int32[n_nodes]   global index of the parent, -1 for a root
  node_depth      int32[n_nodes]   0 for a root
  node_dtb        int32[n_nodes]
  node_name_off   int64[n_nodes]   full name ("pcie@1f0000000"; "" for the root)
  node_name_len   int32[n_nodes]
  node_prop_start int64[n_nodes+1] node i's properties are [node_prop_start[i], node_prop_start[i+1])
  node_phandle    uint32[n_nodes]  value of "phandle" (or "linux,phandle"), 0 when none

  prop_node       int32[n_props]
  prop_name       int32[n_props]   interned id into prop_names (corpus-wide)
  prop_val_off    int64[n_props]
  prop_val_len    int32[n_props]

  phandle_sorted  int64[n_phandles] node indices with a phandle, sorted by
                                   (node_dtb, node_phandle): resolve with
                                   kernels.fdt.resolve_phandle

Nodes are in structure-block (depth-first) order, so a node's subtree is a
contiguous range after it and every parent precedes its children.

Python-side (not used inside kernels):
  paths       list[str]  DTB path relative to root, one per DTB
  prop_names  list[str]  interned property names
  root        str        corpus root folder
"""

import os
import stat
from pathlib import Path

import numpy as np

from kernels import fdt

# (name, dtype) of every array of the layout above, in that order.
ARRAYS = (
    ("data", np.uint8),
    ("dtb_data_off", np.int64),
    ("dtb_node_start", np.int64),
    ("dtb_error", np.int32),
    ("dtb_error_off", np.int64),
    ("node_parent", np.int32),
    ("node_depth", np.int32),
    ("node_dtb", np.int32),
    ("node_name_off", np.int64),
    ("node_name_len", np.int32),
    ("node_prop_start", np.int64),
    ("node_phandle", np.uint32),
    ("prop_node", np.int32),
    ("prop_name", np.int32),
    ("prop_val_off", np.int64),
    ("prop_val_len", np.int32),
    ("phandle_sorted", np.int64),
)

# A DTB's totalsize is a u32, but lengths here are int32: refuse bigger files
# before reading them (they are no DTB anyway).
_MAX_FILE = 2**31 - 1


def _decode(b):
    # Names are printable ASCII by the spec; latin-1 maps any other byte to
    # one distinct character, so interning stays one name per byte string.
    return bytes(b).decode("latin-1")


class FlatCorpus:
    """The arrays of the layout above as attributes, plus paths, prop_names
    and root."""

    def __init__(self, arrays, paths, prop_names, root):
        for name, _ in ARRAYS:
            setattr(self, name, arrays[name])
        self.paths = list(paths)
        self.prop_names = list(prop_names)
        self.root = str(root)
        self._name_ids = {n: i for i, n in enumerate(self.prop_names)}

    def __repr__(self):
        return (f"FlatCorpus({self.root!r}, {len(self.paths)} DTBs, "
                f"{self.node_dtb.size} nodes, {self.prop_node.size} properties)")

    @property
    def n_dtb(self):
        return len(self.paths)

    def name_id(self, name):
        """Interned id of property name, -1 if no DTB has it."""
        return self._name_ids.get(name, -1)

    def node_name(self, i):
        o = self.node_name_off[i]
        return _decode(self.data[o:o + self.node_name_len[i]])

    def node_path(self, i):
        """Full path of node i in its DTB: "/" for a root, "/soc/pcie@1f0000000"."""
        names = []
        while self.node_parent[i] >= 0:
            names.append(self.node_name(i))
            i = self.node_parent[i]
        return "/" + "/".join(reversed(names))

    def prop_value(self, p):
        """Raw bytes of property p."""
        o = self.prop_val_off[p]
        return bytes(self.data[o:o + self.prop_val_len[p]])

    def root_compatible(self, d):
        """The strings of the root node's `compatible` in DTB d ([] if none)."""
        if self.dtb_node_start[d] == self.dtb_node_start[d + 1]:
            return []
        root = self.dtb_node_start[d]
        cid = self.name_id("compatible")
        for p in range(self.node_prop_start[root], self.node_prop_start[root + 1]):
            if self.prop_name[p] == cid:
                return [_decode(s) for s in self.prop_value(p).split(b"\0") if s]
        return []

    def dtb_file(self, d):
        return os.path.join(self.root, self.paths[d])

    def error(self, d):
        """The message of DTB d's error, None when it parsed."""
        code = int(self.dtb_error[d])
        if code == 0:
            return None
        return (f"{self.dtb_file(d)}: error: {fdt.ERR_MESSAGES[code]} "
                f"(at offset {int(self.dtb_error_off[d])})")

    def errors(self):
        """Messages "file: error: what (at offset N)", one per bad DTB."""
        return [self.error(d) for d in np.flatnonzero(self.dtb_error)]


def _read_dtbs(files):
    """Read every file into one buffer.  Returns (data, dtb_data_off,
    dtb_error): what cannot be read gets a reader error and no bytes."""
    blobs = []
    dtb_error = np.zeros(len(files), dtype=np.int32)
    for d, f in enumerate(files):
        blob = b""
        try:
            # stat before open: opening a FIFO or a device could block.
            st = os.stat(f)
            if not stat.S_ISREG(st.st_mode):
                dtb_error[d] = fdt.ERR_NOT_FILE
            elif st.st_size > _MAX_FILE:
                dtb_error[d] = fdt.ERR_TOO_BIG
            else:
                with open(f, "rb") as fh:
                    blob = fh.read(_MAX_FILE + 1)
                if len(blob) > _MAX_FILE:
                    blob = b""
                    dtb_error[d] = fdt.ERR_TOO_BIG
        except FileNotFoundError:
            dtb_error[d] = fdt.ERR_NOT_FOUND
        except OSError:
            dtb_error[d] = fdt.ERR_READ
        blobs.append(blob)
    dtb_data_off = np.zeros(len(files) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in blobs], out=dtb_data_off[1:])
    data = np.empty(int(dtb_data_off[-1]), dtype=np.uint8)
    for d, b in enumerate(blobs):
        data[dtb_data_off[d]:dtb_data_off[d + 1]] = np.frombuffer(b, dtype=np.uint8)
    return data, dtb_data_off, dtb_error


def _parse(data, dtb_data_off, dtb_error):
    """Run the parser kernels over the corpus bytes: the arrays of the layout
    and the interned property names."""
    n_dtb = dtb_error.size
    dtb_error_off = np.zeros(n_dtb, dtype=np.int64)
    n_nodes = np.zeros(n_dtb, dtype=np.int64)
    n_props = np.zeros(n_dtb, dtype=np.int64)
    fdt.count_dtbs(data, dtb_data_off, dtb_error, dtb_error_off, n_nodes, n_props)
    dtb_node_start = np.zeros(n_dtb + 1, dtype=np.int64)
    np.cumsum(n_nodes, out=dtb_node_start[1:])
    dtb_prop_start = np.zeros(n_dtb + 1, dtype=np.int64)
    np.cumsum(n_props, out=dtb_prop_start[1:])
    nn, npr = int(dtb_node_start[-1]), int(dtb_prop_start[-1])
    a = dict(data=data, dtb_data_off=dtb_data_off, dtb_node_start=dtb_node_start,
             dtb_error=dtb_error, dtb_error_off=dtb_error_off)
    for name, dtype in ARRAYS:
        if name.startswith("node_"):
            a[name] = np.empty(nn + (name == "node_prop_start"), dtype=dtype)
        elif name.startswith("prop_"):
            a[name] = np.empty(npr, dtype=dtype)
    prop_name_off = np.empty(npr, dtype=np.int64)
    fdt.fill_dtbs(
        data, dtb_data_off, dtb_error, dtb_node_start, dtb_prop_start,
        a["node_parent"], a["node_depth"], a["node_dtb"], a["node_name_off"],
        a["node_name_len"], a["node_prop_start"], a["node_phandle"],
        a["prop_node"], prop_name_off, a["prop_name"], a["prop_val_off"], a["prop_val_len"],
    )
    # fill_dtbs left the name lengths in prop_name: intern them into ids.
    ids, uniq_off, uniq_len = fdt.intern_names(data, prop_name_off, a["prop_name"])
    a["prop_name"] = ids
    prop_names = [_decode(data[o:o + n]) for o, n in zip(uniq_off, uniq_len)]
    with_ph = np.flatnonzero(a["node_phandle"])
    key = (a["node_dtb"][with_ph].astype(np.int64) << 32) | a["node_phandle"][with_ph]
    a["phandle_sorted"] = with_ph[np.argsort(key, kind="stable")].astype(np.int64)
    return a, prop_names


def flatten(paths, root, cache=True):
    """Flatten the DTBs `paths` (relative to `root`, or absolute under it)
    into a FlatCorpus.  Bad files get an error (FlatCorpus.errors()); the
    others are parsed as usual."""
    root = Path(root)
    rel = [os.path.relpath(p, root) if Path(p).is_absolute() else str(p) for p in paths]
    files = [root / r for r in rel]
    data, dtb_data_off, dtb_error = _read_dtbs(files)
    arrays, prop_names = _parse(data, dtb_data_off, dtb_error)
    return FlatCorpus(arrays, rel, prop_names, root)
