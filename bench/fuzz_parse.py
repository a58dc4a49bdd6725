"""Fuzz the FDT parser with mutated real DTBs: no crash, no hang, no
out-of-bounds read.

    python -m bench.fuzz_parse [DIR] [--count 100000] [--seed 1]

DIR is a folder of DTBs (default: the Linux 6.12 corpus of corpus.build).
Each input is a real DTB with one to three mutations (truncation, random
bytes, header fields and structure words set to boundary values, 4-byte
chunks inserted or removed, splices of two DTBs, NULs removed, token soup,
the strings block cut short, deep nesting).

Out-of-bounds reads: the kernels run with numba's bounds checking switched
on (NUMBA_BOUNDSCHECK=1, which is part of the compiled-code cache's key
(kernels/jit.py): the production machine code is neither used nor replaced) and each input is parsed alone in
an array of exactly its size, so any read outside it raises IndexError.
Every 50th input is also parsed in a batch between two good DTBs, which must
come out as when parsed alone.  A parse that succeeds must give consistent
arrays (all ranges inside the DTB, parents before children, CSR ranges
monotonic); one that fails must have a known error code, an offset inside
the file and no nodes.  Hangs: a watchdog (faulthandler) ends the process
when one input takes more than --timeout seconds.  Failing inputs are
written to --out for reproduction.  Exit status 0 when all inputs pass.
"""

import argparse
import os
import sys
from pathlib import Path

if __name__ == "__main__" and "--no-boundscheck" not in sys.argv:
    # Before numba is imported: the checked build gets a cache key of its own.
    os.environ["NUMBA_BOUNDSCHECK"] = "1"

import faulthandler  # noqa: E402
import random  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from corpus import flat  # noqa: E402
from kernels import fdt, fdt_codes  # noqa: E402

_BOUNDARY = (0, 1, 3, 4, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFC)
_TOKENS = (fdt.FDT_BEGIN_NODE, fdt.FDT_END_NODE, fdt.FDT_PROP, fdt.FDT_NOP, fdt.FDT_END)


def _u32(b, off):
    return struct.unpack_from(">I", b, off)[0] if off + 4 <= len(b) else 0


def _struct_range(b):
    """(start, end) of the structure block as the header says, clipped."""
    s0 = min(_u32(b, 8), len(b))
    s1 = min(s0 + _u32(b, 36), len(b)) if _u32(b, 20) >= 17 else len(b)
    return s0 & ~3, max(s1, s0 & ~3)


def _aligned_word(rng, b, lo, hi):
    if hi - lo < 4:
        return None
    return lo + 4 * rng.randrange((hi - lo) // 4)


def _shift_header(b, w, n):
    """After n bytes were inserted (or removed, n < 0) at w in the structure
    block, fix the header's sizes and offsets, so the walk goes past them."""
    if len(b) < 40:
        return
    for k in (1, 9):  # totalsize, size_dt_struct
        struct.pack_into(">I", b, 4 * k, (_u32(b, 4 * k) + n) % 2**32)
    for k in (3, 4):  # off_dt_strings, off_mem_rsvmap when after w
        if _u32(b, 4 * k) > w:
            struct.pack_into(">I", b, 4 * k, (_u32(b, 4 * k) + n) % 2**32)


def _mutate_once(rng, b, seeds):
    kind = rng.randrange(11)
    if kind == 0:  # truncation, half of the time with the header made to agree
        b = b[:rng.randrange(len(b) + 1)]
        if len(b) >= 40 and rng.random() < 0.5:
            s0, n = _u32(b, 8), _u32(b, 36)
            struct.pack_into(">I", b, 4, len(b))
            if s0 <= len(b):
                struct.pack_into(">I", b, 36, min(n, len(b) - s0))
        return b
    if kind == 1:  # random bytes anywhere
        for _ in range(rng.randint(1, 8)):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        return b
    if kind == 2:  # a header field set to a boundary or near-valid value
        if len(b) >= 40:
            k = rng.randrange(10)
            old = _u32(b, 4 * k)
            v = rng.choice(_BOUNDARY + (len(b), len(b) + 1, len(b) - 1, old + 4, old - 4,
                                        rng.randrange(2**32)))
            struct.pack_into(">I", b, 4 * k, v % 2**32)
        return b
    s0, s1 = _struct_range(b)
    if kind == 3:  # a structure word set to a token, a boundary or random value
        w = _aligned_word(rng, b, s0, s1)
        if w is not None:
            v = rng.choice(_TOKENS + _BOUNDARY + (rng.randrange(2**32), rng.randrange(4096)))
            struct.pack_into(">I", b, w, v)
        return b
    if kind == 4:  # remove 4-byte chunks from the structure block
        w = _aligned_word(rng, b, s0, s1)
        if w is not None:
            n = min(4 * rng.randint(1, 4), len(b) - w)
            del b[w:w + n]
            _shift_header(b, w, -n)
        return b
    if kind == 5:  # insert token words into the structure block
        w = _aligned_word(rng, b, s0, s1)
        if w is not None:
            words = b"".join(struct.pack(">I", rng.choice(_TOKENS)) for _ in range(rng.randint(1, 4)))
            b[w:w] = words
            _shift_header(b, w, len(words))
        return b
    if kind == 6:  # splice: the head of this DTB, the tail of another
        other = rng.choice(seeds)
        return b[:rng.randrange(len(b) + 1)] + other[rng.randrange(len(other) + 1):]
    if kind == 7:  # NULs removed: unterminated names and strings
        for _ in range(rng.randint(1, 16)):
            k = b.find(b"\0", rng.randrange(len(b) + 1)) if b else -1
            if k >= 0:
                b[k] = 0x61
        return b
    if kind == 8:  # the structure block replaced by a soup of tokens
        soup = bytearray()
        for _ in range(rng.randint(1, 64)):
            t = rng.choice(_TOKENS)
            soup += struct.pack(">I", t)
            if t == fdt.FDT_BEGIN_NODE:
                soup += b"n" * rng.randrange(6) + b"\0" * rng.randint(0, 4)
                soup += b"\0" * (-len(soup) % 4)
            elif t == fdt.FDT_PROP:
                n = rng.choice((0, 4, 8, rng.randrange(64)))
                soup += struct.pack(">II", n, rng.choice((0, 4, 8, rng.randrange(256))))
                soup += bytes(rng.randrange(256) for _ in range(n)) + b"\0" * (-n % 4)
        return b[:s0] + soup + b[s0 + len(soup):]
    if kind == 9:  # the strings block (last in the file) cut short
        off, size = _u32(b, 12), _u32(b, 32)
        if off + size == len(b) and len(b) >= 40:
            cut = rng.randint(1, 8)
            del b[max(len(b) - cut, 0):]
            struct.pack_into(">I", b, 4, len(b))
            struct.pack_into(">I", b, 32, max(size - cut, 0))
        return b
    # kind 10: deep nesting, past the depth limit or just under it
    depth = rng.choice((fdt.MAX_DEPTH - 1, fdt.MAX_DEPTH, fdt.MAX_DEPTH + 1, rng.randrange(2000)))
    nest = struct.pack(">I", fdt.FDT_BEGIN_NODE) + b"a\0\0\0"
    return b[:s0] + nest * depth + b[s0:]


def struct_last(b):
    """The same DTB with its structure block moved to the end of the file,
    after the strings: a read past the structure block is then out of
    bounds, which the bounds checks see."""
    s0, n, t0, tn = _u32(b, 8), _u32(b, 36), _u32(b, 12), _u32(b, 32)
    head = bytearray(b[:min(s0, t0)])
    strings, structure = b[t0:t0 + tn], b[s0:s0 + n]
    pad = b"\0" * (-(len(head) + len(strings)) % 4)
    struct.pack_into(">I", head, 12, len(head))
    struct.pack_into(">I", head, 8, len(head) + len(strings) + len(pad))
    out = bytes(head) + strings + pad + structure
    struct.pack_into(">I", head, 4, len(out))
    return bytes(head) + strings + pad + structure


def mutate(rng, seeds):
    b = bytearray(rng.choice(seeds))
    # Mostly one mutation, so that many inputs get past the header checks.
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
        b = bytearray(_mutate_once(rng, b, seeds))
    return bytes(b)


def parse_one(blob):
    """Parse one blob alone: (arrays, prop_names), the data array exactly its size."""
    data = np.frombuffer(blob, dtype=np.uint8).copy()
    dtb_data_off = np.array([0, len(blob)], dtype=np.int64)
    return flat._parse(data, dtb_data_off, np.zeros(1, dtype=np.int32))


def check_arrays(a, prop_names, d=0):
    """Assert the invariants of DTB d in a parse: an error and no nodes, or
    arrays whose every range is inside the DTB."""
    lo, hi = int(a["dtb_data_off"][d]), int(a["dtb_data_off"][d + 1])
    n0, n1 = int(a["dtb_node_start"][d]), int(a["dtb_node_start"][d + 1])
    err = int(a["dtb_error"][d])
    if err:
        assert err in fdt_codes.ERR_MESSAGES, f"unknown error code {err}"
        assert 0 <= a["dtb_error_off"][d] <= hi - lo, "error offset outside the file"
        assert n0 == n1, "a DTB with an error has nodes"
        return
    assert n1 > n0, "a parsed DTB without nodes"
    idx = np.arange(n0, n1)
    par = a["node_parent"][n0:n1]
    assert par[0] == -1 and (a["node_parent"][n0 + 1:n1] >= n0).all(), "parent outside the DTB"
    assert (par[1:] < idx[1:]).all(), "parent after child"
    dep = a["node_depth"][n0:n1]
    assert dep[0] == 0 and (dep[1:] == a["node_depth"][par[1:]] + 1).all(), "bad depth"
    assert (a["node_dtb"][n0:n1] == d).all()
    for off, ln in (("node_name_off", "node_name_len"),):
        o, n = a[off][n0:n1], a[ln][n0:n1]
        assert (o >= lo).all() and (n >= 0).all() and (o + n < hi).all(), "name outside the DTB"
    ps = a["node_prop_start"][n0:n1 + 1]
    assert (np.diff(ps) >= 0).all(), "node_prop_start not monotonic"
    p0, p1 = int(ps[0]), int(ps[-1])
    counts = np.diff(ps)
    assert (a["prop_node"][p0:p1] == np.repeat(idx, counts)).all(), "prop_node vs CSR"
    o, n = a["prop_val_off"][p0:p1], a["prop_val_len"][p0:p1]
    assert (o >= lo).all() and (n >= 0).all() and (o + n <= hi).all(), "value outside the DTB"
    ids = a["prop_name"][p0:p1]
    assert ((ids >= 0) & (ids < len(prop_names))).all(), "name id out of range"
    ph = a["phandle_sorted"]
    mine = ph[(ph >= n0) & (ph < n1)]
    assert (np.diff(a["node_phandle"][mine].astype(np.int64)) >= 0).all(), "phandle_sorted order"


def _dtb_view(a, prop_names, d):
    """DTB d of a parse, independent of its position in the batch."""
    n0, n1 = a["dtb_node_start"][d], a["dtb_node_start"][d + 1]
    base = a["dtb_data_off"][d]
    p0, p1 = a["node_prop_start"][n0], a["node_prop_start"][n1]
    return (
        int(a["dtb_error"][d]), int(a["dtb_error_off"][d]),
        np.where(a["node_parent"][n0:n1] < 0, -1, a["node_parent"][n0:n1] - n0).tolist(), (a["node_name_off"][n0:n1] - base).tolist(),
        (a["node_prop_start"][n0:n1 + 1] - p0).tolist(), a["node_phandle"][n0:n1].tolist(),
        [prop_names[i] for i in a["prop_name"][p0:p1]], (a["prop_val_off"][p0:p1] - base).tolist(),
        a["prop_val_len"][p0:p1].tolist(),
    )


def check_batch(blob, good):
    """Parse [good, blob, good]: both good DTBs come out as when alone."""
    blobs = [good, blob, good]
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8).copy()
    off = np.zeros(4, dtype=np.int64)
    np.cumsum([len(b) for b in blobs], out=off[1:])
    a, names = flat._parse(data, off, np.zeros(3, dtype=np.int32))
    alone, alone_names = parse_one(good)
    ref = _dtb_view(alone, alone_names, 0)
    assert _dtb_view(a, names, 0) == ref and _dtb_view(a, names, 2) == ref, \
        "a bad DTB changed how its neighbours parse"
    for d in range(3):
        check_arrays(a, names, d)


def fuzz(seeds, count, seed=1, timeout=10.0, out=None, progress=None):
    """Run count mutated inputs; returns (n_failures, outcomes, max_seconds),
    outcomes counting the inputs per error code (0: parsed)."""
    rng = random.Random(seed)
    failures = 0
    outcomes = {}
    worst = 0.0
    good = min(seeds, key=len)
    check_batch(good, good)  # compiles the kernels before the clock runs
    for k in range(count):
        blob = mutate(rng, seeds)
        faulthandler.dump_traceback_later(timeout, exit=True)
        t = time.perf_counter()
        try:
            a, names = parse_one(blob)
            check_arrays(a, names)
            code = int(a["dtb_error"][0])
            outcomes[code] = outcomes.get(code, 0) + 1
            if k % 50 == 0:
                check_batch(blob, good)
        except (AssertionError, IndexError, ValueError) as e:
            failures += 1
            where = ""
            if out:
                os.makedirs(out, exist_ok=True)
                where = os.path.join(out, f"fuzz-{seed}-{k}.dtb")
                Path(where).write_bytes(blob)
            sys.stderr.write(f"{where or f'input {k}'}: error: {type(e).__name__}: {e}\n")
        finally:
            faulthandler.cancel_dump_traceback_later()
        worst = max(worst, time.perf_counter() - t)
        if progress:
            progress.update(1)
    return failures, outcomes, worst


def load_seeds(folder, n, rng):
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix in (".dtb", ".dtbo"))
    if not files:
        raise SystemExit(f"{folder}: error: no .dtb files")
    return [p.read_bytes() for p in rng.sample(files, min(n, len(files)))]


def _default_folder():
    from corpus.build import build_corpus
    return build_corpus().root          # the default corpus


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", help="folder of DTBs (default: the Linux 6.12 corpus)")
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=64, help="how many real DTBs to mutate")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds before one input counts as a hang")
    ap.add_argument("--out", help="folder for failing inputs")
    ap.add_argument("--no-boundscheck", action="store_true",
                    help="fuzz the production build (faster, blind to out-of-bounds reads)")
    args = ap.parse_args(argv)
    faulthandler.enable()
    rng = random.Random(args.seed)
    files = load_seeds(args.dir or _default_folder(), args.seeds, rng)
    seeds = files + [struct_last(b) for b in files]
    progress = None
    if sys.stderr.isatty() and not os.environ.get("CI"):
        from tqdm import tqdm
        progress = tqdm(total=args.count, file=sys.stderr, unit="input")
    t = time.perf_counter()
    failures, outcomes, worst = fuzz(seeds, args.count, args.seed, args.timeout, args.out, progress)
    if progress:
        progress.close()
    bc = "off" if args.no_boundscheck else "on"
    print(f"{args.count} inputs from {len(files)} DTBs in {time.perf_counter() - t:.1f} s "
          f"(bounds checking {bc}): {failures} failures, {outcomes.get(0, 0)} parsed, "
          f"slowest input {worst * 1e3:.1f} ms")
    for code, n in sorted(outcomes.items()):
        if code:
            print(f"  {n:7d} rejected: {fdt_codes.ERR_MESSAGES[code]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
