"""Check the numba FDT parser against pyfdt, the reference.

For every DTB, the node paths, property names and raw value bytes of the
flattened corpus must equal what pyfdt reads, in the same order.  pyfdt
guesses each property's type (strings, words, bytes); the guess is turned
back into bytes, and bytes are what is compared.

    python -m corpus.pyfdt_check DIR [--jobs N]

checks every .dtb/.dtbo under DIR; prints one `file: error: ...` line per
DTB that differs (the first difference) and a summary; exit status 0 when
all agree, 1 on a mismatch, 2 on a usage error.
"""

import argparse
import contextlib
import io
import os
import struct
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from pyfdt.pyfdt import (FdtBlobParse, FdtNode, FdtPropertyBytes, FdtPropertyStrings,
                         FdtPropertyWords)

from corpus.flat import flatten


def pyfdt_records(path):
    """What pyfdt reads from a DTB, in structure-block order:
    ("node", path) and ("prop", node path, name, value bytes)."""
    # pyfdt prints "Unknown Tag" on stdout instead of raising: keep it quiet.
    with open(path, "rb") as f, contextlib.redirect_stdout(io.StringIO()):
        root = FdtBlobParse(f).to_fdt().get_rootnode()
    if root is None:
        raise ValueError("no root node")
    out = [("node", "/")]
    # walk() is depth first in file order, each node before its contents.
    for path, obj in root.walk():
        if isinstance(obj, FdtNode):
            out.append(("node", path))
        else:
            parent = path.rsplit("/", 1)[0] or "/"
            out.append(("prop", parent, obj.get_name(), _raw(obj)))
    return out


def _raw(prop):
    """The value bytes behind pyfdt's guess of a property's type (its own
    to_raw() fails on Python 3 for words and bytes)."""
    if isinstance(prop, FdtPropertyStrings):
        return b"".join(s.encode("ascii") + b"\0" for s in prop.strings)
    if isinstance(prop, FdtPropertyWords):
        return struct.pack(f">{len(prop.words)}I", *prop.words)
    if isinstance(prop, FdtPropertyBytes):
        return struct.pack(f">{len(prop.bytes)}b", *prop.bytes)
    return b""  # FdtProperty: no value


def flat_records(fc, d):
    """The same records from DTB d of a FlatCorpus."""
    out = []
    for i in range(fc.dtb_node_start[d], fc.dtb_node_start[d + 1]):
        path = fc.node_path(i)
        out.append(("node", path))
        for p in range(fc.node_prop_start[i], fc.node_prop_start[i + 1]):
            out.append(("prop", path, fc.prop_names[fc.prop_name[p]], fc.prop_value(p)))
    return out


def compare(fc, d, reference):
    """None when DTB d agrees with reference (pyfdt's records, or the
    exception pyfdt raised), else what differs first."""
    error = fc.error(d)
    if isinstance(reference, Exception):
        if error:
            return None  # both refuse it
        return f"pyfdt cannot read it ({type(reference).__name__}: {reference}), the parser can"
    if error:
        return f"the parser refuses what pyfdt reads: {error.split(': error: ', 1)[1]}"
    mine = flat_records(fc, d)
    for k, (a, b) in enumerate(zip(mine, reference)):
        if a != b:
            return f"record {k} differs: parser {_short(a)}, pyfdt {_short(b)}"
    if len(mine) != len(reference):
        return f"the parser has {len(mine)} nodes and properties, pyfdt {len(reference)}"
    return None


def _short(record):
    r = repr(record)
    return r if len(r) < 160 else r[:157] + "..."


def _pyfdt_or_exception(path):
    try:
        return pyfdt_records(path)
    except Exception as e:  # pyfdt raises bare Exception for bad input
        return e


def check(fc, jobs=1):
    """Compare every DTB of a FlatCorpus with pyfdt; returns the messages
    "file: error: mismatch with pyfdt: what", one per DTB that differs."""
    files = [fc.dtb_file(d) for d in range(fc.n_dtb)]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            refs = list(pool.map(_pyfdt_or_exception, files, chunksize=8))
    else:
        refs = map(_pyfdt_or_exception, files)
    out = []
    for d, ref in enumerate(refs):
        problem = compare(fc, d, ref)
        if problem:
            out.append(f"{files[d]}: error: mismatch with pyfdt: {problem}")
    return out


def dtb_files(folder):
    return sorted(p for p in Path(folder).rglob("*") if p.suffix in (".dtb", ".dtbo") and p.is_file())


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m corpus.pyfdt_check",
                                 description="Compare the numba FDT parser with pyfdt on every DTB of DIR.")
    ap.add_argument("dir", help="folder of .dtb/.dtbo files (searched recursively)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="processes running pyfdt (default: all cores)")
    args = ap.parse_args(argv)
    if not Path(args.dir).is_dir():
        sys.stderr.write(f"{args.dir}: error: not a folder\n")
        return 2
    files = dtb_files(args.dir)
    if not files:
        sys.stderr.write(f"{args.dir}: error: no .dtb or .dtbo files\n")
        return 2
    fc = flatten(files, args.dir, cache=False)
    problems = check(fc, args.jobs)
    for line in problems:
        sys.stderr.write(line + "\n")
    refused = sum(1 for d in range(fc.n_dtb) if fc.dtb_error[d])
    print(f"{fc.n_dtb} DTBs ({refused} refused by both), {fc.node_dtb.size} nodes, "
          f"{fc.prop_node.size} properties compared with pyfdt: {len(problems)} mismatches")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
