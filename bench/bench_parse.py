"""Parse a whole corpus with the numba parser, pyfdt and pylibfdt, in one run.

    python -m bench.bench_parse [DIR] [--repeat 5]

DIR is a folder of DTBs (default: every DTB of the Linux 6.12 corpus of
corpus.build).  Measured, one process, one core, files in the page cache:

  read floor      reading every file's bytes, nothing else
  numba cold      flatten(cache=False): read the files and parse them
  numba parse     the parser kernels alone, on bytes already in memory
  numba warm      flatten(cache=True) with a valid cache: stat and map it
  pylibfdt        libfdt walking every node and property (name, value bytes)
  pyfdt           FdtBlobParse(file).to_fdt(), the reference

Each is the best of --repeat runs (pyfdt: one run, it takes about a minute).
Throughput is corpus bytes (MB/s) and DTBs per second; "x pyfdt" is how many
times faster than pyfdt.
"""

import argparse
import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

import libfdt
from pyfdt.pyfdt import FdtBlobParse

from bench.timing import best
from corpus import flat
from corpus.flat import flatten
from corpus.pyfdt_check import dtb_files


def read_floor(files):
    for f in files:
        with open(f, "rb") as fh:
            fh.read()


def numba_cold(files, root):
    flatten(files, root, cache=False)


def numba_parse(data, dtb_data_off, dtb_error):
    flat._parse(data, dtb_data_off, dtb_error.copy())


def numba_warm(files, root):
    flatten(files, root, cache=True)


def pylibfdt_walk(files):
    """Every node's name and every property's name and value, through libfdt."""
    for f in files:
        fdt = libfdt.Fdt(Path(f).read_bytes())
        node, depth = 0, 0
        while node >= 0 and depth >= 0:  # depth -1: past the root's end
            fdt.get_name(node)
            p = fdt.first_property_offset(node, [libfdt.NOTFOUND])
            while p >= 0:
                fdt.get_property_by_offset(p)
                p = fdt.next_property_offset(p, [libfdt.NOTFOUND])
            node, depth = fdt.next_node(node, depth, [libfdt.NOTFOUND])


def pyfdt_parse(files):
    for f in files:
        with open(f, "rb") as fh, contextlib.redirect_stdout(io.StringIO()):
            FdtBlobParse(fh).to_fdt()


def _default_folder():
    from corpus.build import build_corpus
    return build_corpus().root          # the default corpus


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", help="folder of DTBs (default: the Linux 6.12 corpus)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-pyfdt", action="store_true", help="leave the slow reference out")
    args = ap.parse_args(argv)
    root = Path(args.dir or _default_folder())
    files = dtb_files(root)
    if not files:
        sys.stderr.write(f"{root}: error: no .dtb or .dtbo files\n")
        return 2
    size = sum(os.path.getsize(f) for f in files)

    with tempfile.TemporaryDirectory() as xdg:
        # A private cache: "warm" is this corpus's entry, nothing older.
        os.environ["XDG_CACHE_HOME"] = xdg
        # Untimed first runs: numba loads (or compiles) its machine code, the
        # files enter the page cache, the flattened-corpus cache is written.
        fc = flatten(files, root, cache=True)
        data, dtb_data_off, dtb_error = flat._read_dtbs(files)
        numba_parse(data, dtb_data_off, dtb_error)
        pylibfdt_walk(files[:1])
        rows = [
            ("read floor", best(lambda: read_floor(files), args.repeat)[0]),
            ("numba cold", best(lambda: numba_cold(files, root), args.repeat)[0]),
            ("numba parse", best(lambda: numba_parse(data, dtb_data_off, dtb_error), args.repeat)[0]),
            ("numba warm", best(lambda: numba_warm(files, root), args.repeat)[0]),
            ("pylibfdt", best(lambda: pylibfdt_walk(files), max(1, args.repeat // 2))[0]),
        ]
        if not args.skip_pyfdt:
            rows.append(("pyfdt", best(lambda: pyfdt_parse(files), 1)[0]))

    print(f"{len(files)} DTBs, {size / 1e6:.1f} MB, {fc.node_dtb.size} nodes, "
          f"{fc.prop_node.size} properties, {len(fc.errors())} refused ({root})")
    ref = dict(rows).get("pyfdt")
    floor = dict(rows)["read floor"]
    print(f"{'':12} {'seconds':>9} {'MB/s':>9} {'DTBs/s':>9} {'x pyfdt':>9} {'x floor':>9}")
    for name, t in rows:
        vs = f"{ref / t:9.1f}" if ref else f"{'-':>9}"
        print(f"{name:12} {t:9.4f} {size / 1e6 / t:9.1f} {len(files) / t:9.0f} {vs} {t / floor:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
