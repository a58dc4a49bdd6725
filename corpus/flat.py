"""The flattened corpus: every DTB of a corpus as one set of columnar arrays.

Layout (the one place it is described).  Indices are global across the
corpus; per-DTB ranges are CSR style.

  data            uint8[n_bytes]   all DTB files, concatenated; names and
                                   values below are (offset, length) into it
  dtb_data_off    int64[n_dtb+1]   DTB d's bytes are data[dtb_data_off[d]:dtb_data_off[d+1]]
  dtb_node_start  int64[n_dtb+1]   DTB d's nodes are [dtb_node_start[d], dtb_node_start[d+1])
  dtb_error       int32[n_dtb]     0, or an error code (kernels.fdt_codes.ERR_*); a DTB
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
contiguous range after it and every parent precedes its children.  A node's
properties come before its subnodes in a DTB (one that breaks this is
refused), which is what makes node_prop_start a CSR index.  A DTB refused
with an error has no nodes and no properties; one the reader could not read
(not a regular file, missing, unreadable) has no bytes either.  Error codes
and their messages: kernels/fdt_codes.py (ERR_*, ERR_MESSAGES).

Python-side (not used inside kernels):
  paths       list[str]  DTB path relative to root, one per DTB
  prop_names  list[str]  interned property names, ids in order of first
                         appearance (decoded by dt_text(); ids stand for the
                         byte strings, so a name with a literal "\\xNN" and
                         one with that invalid byte share a spelling, not an id)
  root        str        corpus root folder

All arrays are read-only.  FlatCorpus adds helpers: name_id(name),
node_name(i), node_path(i), prop_value(p), root_compatible(d), errors(),
and cache_folder: the cache entry the arrays were loaded from or saved to
(None when not cached), where derived results may be kept beside them.

The cache: flatten(..., cache=True) keeps the arrays as a checked array
bundle (store/bundle.py) under $XDG_CACHE_HOME/dtb-audit/flat/<corpus>-<key>/
and memory-maps them on the next run; docs/store.md says how it is keyed
and when it is trusted.
"""

import hashlib
import json
import os
import stat
import sys
import time
from pathlib import Path

import numpy as np

from kernels import fdt_codes
from store import bundle
from store.durable import remove_dead
from store.folders import cache_dir, short_hash
from store.kept import read_kept
from store.prune import prune
from store.stamps import file_stamp, racy

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


def dt_text(b) -> str:
    """Text of a DTB (a name, a string of a property) as a str: DT strings
    are bytes; valid UTF-8 is read as UTF-8 ("véndor"), every byte that is
    not is written \\xNN ("v\\xe9ndor" for latin-1 bytes).  The one decoding
    of DTB text: every format shows what this gives (control characters are
    escaped where the text goes: auditor/text.py, the formats)."""
    return str(b, "utf-8", "backslashreplace")



class FlatCorpus:
    """The arrays of the layout above as attributes, plus paths, prop_names
    and root."""

    def __init__(self, arrays, paths, prop_names, root, cache_folder=None):
        self.cache_folder = cache_folder   # Path of the cache entry, None when not cached
        for name, _ in ARRAYS:
            setattr(self, name, arrays[name])
        self.paths = list(paths)
        self.prop_names = list(prop_names)
        self.root = str(root)
        for name, _ in ARRAYS:
            # Read-only whether parsed or memory-mapped from the cache, so
            # the rule kernels see one array type and compile once.
            getattr(self, name).flags.writeable = False
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
        return dt_text(self.data[o:o + self.node_name_len[i]])

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

    def strings(self, node, name):
        """The strings of a string-list property of a node ([] if absent)."""
        name_id = self.name_id(name)
        for p in range(self.node_prop_start[node], self.node_prop_start[node + 1]):
            if self.prop_name[p] == name_id:
                return [dt_text(s) for s in self.prop_value(p).split(b"\0") if s]
        return []

    def root_compatible(self, d):
        """The strings of the root node's `compatible` in DTB d ([] if none)."""
        if self.dtb_node_start[d] == self.dtb_node_start[d + 1]:
            return []
        return self.strings(self.dtb_node_start[d], "compatible")

    def dtb_file(self, d):
        return os.path.join(self.root, self.paths[d])

    def error(self, d):
        """The message of DTB d's error, None when it parsed."""
        code = int(self.dtb_error[d])
        if code == 0:
            return None
        return (f"{self.dtb_file(d)}: error: {fdt_codes.ERR_MESSAGES.get(code, f'error {code}')} "
                f"(at offset {int(self.dtb_error_off[d])})")

    def errors(self):
        """Messages "file: error: what (at offset N)", one per bad DTB."""
        return [self.error(d) for d in np.flatnonzero(self.dtb_error)]


def _read_dtbs(files):
    """Read every file into one buffer.  Returns (data, dtb_data_off,
    dtb_error): what cannot be read gets a reader error and no bytes."""
    dtb_error = np.zeros(len(files), dtype=np.int32)
    sizes = np.zeros(len(files), dtype=np.int64)
    for d, f in enumerate(files):
        try:
            # stat before open: opening a FIFO or a device could block.
            st = os.stat(f)
        except FileNotFoundError:
            dtb_error[d] = fdt_codes.ERR_NOT_FOUND
            continue
        except OSError:
            dtb_error[d] = fdt_codes.ERR_READ
            continue
        if not stat.S_ISREG(st.st_mode):
            dtb_error[d] = fdt_codes.ERR_NOT_FILE
        elif st.st_size > _MAX_FILE:
            dtb_error[d] = fdt_codes.ERR_TOO_BIG
        else:
            sizes[d] = st.st_size
    dtb_data_off = np.zeros(len(files) + 1, dtype=np.int64)
    np.cumsum(sizes, out=dtb_data_off[1:])
    # Each file straight into its place in the buffer: no second copy.
    data = np.empty(int(dtb_data_off[-1]), dtype=np.uint8)
    buf = memoryview(data)
    for d in np.flatnonzero(sizes):
        lo, hi = dtb_data_off[d], dtb_data_off[d + 1]
        try:
            with open(files[d], "rb", buffering=0) as fh:
                got = 0
                while lo + got < hi:
                    n = fh.readinto(buf[lo + got:hi])
                    if not n:
                        break
                    got += n
                grew = fh.read(1)
        except FileNotFoundError:
            got, grew, dtb_error[d] = -1, b"", fdt_codes.ERR_NOT_FOUND
        except OSError:
            got, grew, dtb_error[d] = -1, b"", fdt_codes.ERR_READ
        if got != hi - lo or grew:
            # Changed between stat and read: refuse it rather than guess.
            dtb_error[d] = dtb_error[d] or fdt_codes.ERR_READ
            data[lo:hi] = 0
    return data, dtb_data_off, dtb_error


def _parse(data, dtb_data_off, dtb_error):
    """Run the parser kernels over the corpus bytes: the arrays of the layout
    and the interned property names."""
    from kernels.jit import choose_tier
    choose_tier(int(data.size))   # compiled or plain Python, before the parser is imported
    from kernels import fdt       # numba only when parsing
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
        elif name.startswith("prop_") and name != "prop_name":
            a[name] = np.empty(npr, dtype=dtype)
    # Property names as (offset, length) in data, interned into ids below.
    prop_name_off = np.empty(npr, dtype=np.int64)
    prop_name_len = np.empty(npr, dtype=np.int32)
    fdt.fill_dtbs(
        data, dtb_data_off, dtb_error, dtb_node_start, dtb_prop_start,
        a["node_parent"], a["node_depth"], a["node_dtb"], a["node_name_off"],
        a["node_name_len"], a["node_prop_start"], a["node_phandle"],
        a["prop_node"], prop_name_off, prop_name_len, a["prop_val_off"], a["prop_val_len"],
    )
    a["prop_name"], uniq_off, uniq_len = fdt.intern_names(data, prop_name_off, prop_name_len)
    prop_names = [dt_text(data[o:o + n]) for o, n in zip(uniq_off, uniq_len)]
    with_ph = np.flatnonzero(a["node_phandle"])
    key = (a["node_dtb"][with_ph].astype(np.int64) << 32) | a["node_phandle"][with_ph]
    a["phandle_sorted"] = with_ph[np.argsort(key, kind="stable")].astype(np.int64)
    return a, prop_names


def flatten(paths, root, cache=True):
    """Flatten the DTBs `paths` (relative to `root`, or absolute under it)
    into a FlatCorpus.  Bad files get an error (FlatCorpus.errors()); the
    others are parsed as usual.  cache: reuse and keep the arrays on disk
    (see "The cache" above)."""
    root = Path(os.path.abspath(root))
    top = str(root)
    rel = [_relative(p, top) for p in paths]
    files = [os.path.join(top, r) for r in rel]
    started_ns = time.time_ns()
    if cache:
        stats = [_stat(f) for f in files]
        folder = _cache_folder(root, rel, stats)
        fc, problem = _load_cache(folder, root, rel, stats, started_ns)
        if fc is not None:
            # what killed processes left inside (a meta.json or kept results being written)
            remove_dead(folder, recursive=True)
            return fc
        if problem:
            sys.stderr.write(f"{folder}: warning: flattened corpus cache {problem}; parsing again\n")
    data, dtb_data_off, dtb_error = _read_dtbs(files)
    arrays, prop_names = _parse(data, dtb_data_off, dtb_error)
    fc = FlatCorpus(arrays, rel, prop_names, root)
    if cache:
        try:
            _save_cache(folder, fc, stats, started_ns)
            fc.cache_folder = folder
        except OSError as e:
            sys.stderr.write(f"{folder}: warning: cannot write the flattened corpus cache: "
                             f"{e.strerror or e}\n")
    return fc


def _relative(path, top):
    """A DTB's path relative to the root `top` (an absolute, normal path)."""
    path = os.fspath(path)
    if not os.path.isabs(path):
        return os.path.normpath(path)
    path = os.path.normpath(path)
    # os.path.relpath's answer for a file under the root, without its cost.
    if path.startswith(top) and path[len(top):len(top) + 1] == os.sep and top != os.sep:
        return path[len(top) + 1:]
    return os.path.relpath(path, top)


# -- the cache -------------------------------------------------------------

CACHE_FORMAT = 3   # 3: a store bundle (each array's dtype recorded)
_code = None


def _code_digest():
    """Digest of the parser's source: a changed parser never reads an old cache."""
    global _code
    if _code is None:
        h = hashlib.sha256()
        for f in (Path(fdt_codes.__file__).with_name("fdt.py"), Path(__file__)):
            h.update(f.read_bytes())
        _code = h.hexdigest()
    return _code


def _stat(f):
    """What says a file changed: its type, then its file_stamp (size, mtime,
    ctime, inode); or why it cannot be stat'ed."""
    try:
        st = os.stat(f)
    except OSError as e:
        return [type(e).__name__]
    return [stat.S_IFMT(st.st_mode), *file_stamp(st)]


def _cache_folder(root, rel, stats):
    # One folder per list of files and their stats; the prefix names the
    # list, so that older entries of the same list can be pruned.
    # (surrogateescape: a file name that is not UTF-8 still names one entry.)
    corpus = short_hash(CACHE_FORMAT, os.fsencode(root), *map(os.fsencode, rel))
    return cache_dir() / "flat" / f"{corpus}-{short_hash(_code_digest(), json.dumps(stats))}"


def _load_cache(folder, root, rel, stats, started_ns):
    """(FlatCorpus, None) from a valid cache entry; (None, None) when there
    is none; (None, what is wrong) when it cannot be trusted."""
    layout = {name: np.dtype(dtype).str for name, dtype in ARRAYS}

    def wanted(meta):
        if (meta["format"], meta["code"], meta["root"], meta["paths"], meta["stats"]) != (
                CACHE_FORMAT, _code_digest(), _json_path(root), list(map(_json_path, rel)), stats):
            return "is for other files or another parser"
        if {name: a[0] for name, a in meta["arrays"].items()} != layout:
            return "has arrays of another layout"
        return None

    try:
        loaded = bundle.load(folder, wanted)
        if loaded is None:
            return None, None
        arrays, meta = loaded.arrays, loaded.meta
        prop_names = meta["prop_names"]
        problem = _inconsistent(arrays, len(rel), len(prop_names),
                                whole="prop_name" in loaded.read_whole)
    except bundle.Untrusted as why:
        return None, str(why)
    except Exception as e:  # noqa: BLE001 - whatever meta.json holds, no traceback
        return None, f"is unreadable ({type(e).__name__}: {e})"
    if problem:
        return None, problem
    # DTBs changed around the time the cache was written: compare bytes.
    off = arrays["dtb_data_off"]
    changed = [d for d, st in enumerate(stats) if len(st) == 5 and racy(st[1:], meta["started_ns"])]
    for d in changed:
        try:   # of the size it had, and never a FIFO put there since
            same = read_kept(root / rel[d], stats[d][1]) == arrays["data"][off[d]:off[d + 1]].tobytes()
        except OSError:
            same = False
        if not same:
            return None, f"is stale ({_json_path(rel[d])} changed)"
    # What was read matched as of now: later runs need not read it again.
    bundle.remember(folder, loaded, {"started_ns": started_ns} if changed else None)
    return FlatCorpus(arrays, rel, prop_names, root, cache_folder=folder), None


def _json_path(p):
    """A path as JSON keeps it: a name that is not UTF-8 escaped, never an error."""
    return os.fsencode(p).decode("utf-8", "backslashreplace")


def _inconsistent(a, n_dtb, n_names, whole=True):
    """What breaks the layout's invariants that the kernels rely on, if any.

    whole: also every property's name id, which reads all of prop_name (the
    ranges need only their ends); a file vouched for by its stamp is the one
    written after this very check.
    """
    n_nodes, n_props = a["node_parent"].size, a["prop_node"].size
    if not (a["dtb_data_off"].size == a["dtb_node_start"].size == n_dtb + 1
            and a["dtb_error"].size == a["dtb_error_off"].size == n_dtb):
        return "has per-DTB arrays of the wrong length"
    if a["dtb_data_off"][-1] != a["data"].size or a["dtb_node_start"][-1] != n_nodes:
        return "has ranges that do not cover data or nodes"
    if a["node_prop_start"].size != n_nodes + 1 or a["node_prop_start"][-1] != n_props:
        return "has ranges that do not cover properties"
    if whole and n_props and not (0 <= a["prop_name"].min() and a["prop_name"].max() < n_names):
        return "has property names out of range"
    return None


def _save_cache(folder, fc, stats, started_ns):
    """Keep the arrays as the bundle `folder`; older entries of the same
    list of files are stale and go."""
    problem = _inconsistent({name: getattr(fc, name) for name, _ in ARRAYS}, fc.n_dtb,
                            len(fc.prop_names))
    if problem:  # a parser bug: never kept, so a loaded entry need not read all again
        raise OSError(f"not kept: the parsed corpus {problem}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_dead(folder.parent)  # entries being written by processes that were killed
    fields = dict(format=CACHE_FORMAT, code=_code_digest(), root=_json_path(fc.root),
                  paths=list(map(_json_path, fc.paths)), stats=stats, started_ns=started_ns,
                  prop_names=fc.prop_names)
    bundle.save(folder, {name: getattr(fc, name) for name, _ in ARRAYS}, fields)
    prefix = folder.name.split("-")[0]
    prune(folder, 0, folder.parent.glob(f"{prefix}-*"))
