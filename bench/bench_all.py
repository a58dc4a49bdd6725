"""Every speed figure of the project, side by side with the reference, in one run.

    python -m bench.bench_all [--corpus sid/linux-source-7.2] [--repeat 3] [--only a,b,...]

The reference is bench/naive_rule.py: the same rule in plain Python over
pylibfdt.  Each figure is the best of --repeat runs (the machine is shared
and noisy); the machine's load average is printed with them.

  (a) cold     the first `dtb-audit sweep BOARD` of a fresh process with no
               compiled code and no caches at all (a private, empty
               $XDG_CACHE_HOME), against the reference's sweep of all of
               Linux 6.12.  Wanted: under half.
  (b) process  the warm whole-process `dtb-audit sweep --debian CORPUS
               --format jsonl -o FILE`, against the reference over the same
               corpus.  Wanted: 20x.  Warm: the corpus built, its flattened
               arrays and the kernels' results cached (kernels/results.py),
               as in a nightly sweep of an unchanged tree.  Also shown: the
               same with the results dropped before each run, so that the
               kernels load and run (a new target, rule or kernel source).
  (c) kernels  in process: flatten() from its cache plus evaluate() with
               the kernels running (no kept results), against the
               reference.  Wanted: 100x.
  (d) no numba `dtb-audit --help` and `dtb-audit diff a.json b.json` load
               neither numba nor a compiled kernel (sys.modules checked in
               the process).  Wanted: none loaded.
  (e) scaling  `dtb-audit sweep X.dtb --format json` in process, warm, for
               one SMMU with 4,000 and with 16,000 masters (DTBs made with
               dtc).  Wanted: at most 5x.

CORPUS is a Debian source package as `dtb-audit --debian` takes it
(default: sid/linux-source-7.2 when it can be had, else the default
corpus); (a) always compares with Linux 6.12.  Exit status 0 when the
figures were measured (whether they meet the wanted ratios or not: the
table says), 2 when a corpus cannot be had.
"""
from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from bench.timing import best

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:                 # python bench/bench_all.py
    sys.path.insert(0, str(REPO))

# The board of (a): a real board with PCI and an SMMU (the seed thread's LS1028A).
COLD_BOARD = "freescale/fsl-ls1028a-rdb.dtb"
DEFAULT_CORPUS = "sid/linux-source-7.2"
REFERENCE_CORPUS = "linux-source-6.12"
MASTERS = (4000, 16000)


def cli(*args, env=None, check=True):
    """`dtb-audit ARGS` in a fresh process; its CompletedProcess."""
    p = subprocess.run([sys.executable, "-m", "auditor.cli", *map(str, args)],
                       capture_output=True, text=True, env=env, cwd=REPO)
    if check and p.returncode != 0:
        raise RuntimeError(f"dtb-audit {' '.join(map(str, args))}: exit {p.returncode}: "
                           f"{p.stderr.strip()[-500:]}")
    return p


# -- the corpora -----------------------------------------------------------------

def corpus_of(debian):
    """(corpus, target kernel) of a Debian source package, built or reused."""
    from auditor.sweep import target_of
    from kernels.judging import Judging
    from corpus.build import build_corpus
    corpus = build_corpus(debian=debian)
    return corpus, target_of(corpus, Judging())


def corpora(choice=None):
    """((reference corpus, its target), (sweep corpus, its target, its
    --debian name)): Linux 6.12, and `choice`, else Linux 7.2 when it can be
    had, else 6.12 again."""
    from corpus.errors import UserError
    reference = corpus_of(REFERENCE_CORPUS)
    if choice:
        return reference, (*corpus_of(choice), choice)
    try:
        return reference, (*corpus_of(DEFAULT_CORPUS), DEFAULT_CORPUS)
    except UserError as why:
        sys.stderr.write(f"bench_all: {DEFAULT_CORPUS} not available ({why}); "
                         f"using {REFERENCE_CORPUS}\n")
        return reference, (*reference, REFERENCE_CORPUS)


def board_paths(corpus):
    root = Path(corpus.root)
    return root, [e.dtb for e in corpus.boards]


# -- the reference ---------------------------------------------------------------

def reference_sweep(root, dtbs, target):
    """bench/naive_rule.py over every DTB: the link records."""
    from bench.naive_rule import NaiveError, sweep_dtb
    records = []
    for dtb in dtbs:
        try:
            records += sweep_dtb(root / dtb, target=target, dtb=dtb)
        except NaiveError as exc:
            sys.stderr.write(f"{exc}\n")
    return records


# -- (a) the first sweep, nothing compiled ------------------------------------------

def cold_first_sweep(board):
    """(seconds, compiled files written) of `dtb-audit sweep BOARD` in a
    fresh process with an empty $XDG_CACHE_HOME: no compiled kernels, no
    flattened-corpus cache.  No file written: the kernels ran as plain
    Python (kernels.jit.choose_tier)."""
    with tempfile.TemporaryDirectory(prefix="dtb-audit-cold-") as tmp:
        tmp = Path(tmp)
        dtb = tmp / "dtbs" / Path(board).name     # a bare DTB, no corpus around it
        dtb.parent.mkdir()
        shutil.copyfile(board, dtb)
        env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "xdg"))
        env.pop("NUMBA_CACHE_DIR", None)
        t = time.perf_counter()
        cli("sweep", dtb, "--format", "jsonl", "-o", tmp / "out.jsonl", env=env)
        seconds = time.perf_counter() - t
        return seconds, len(list((tmp / "xdg" / "dtb-audit" / "numba").glob("*/*.nbc")))


# -- (b) and (c) -------------------------------------------------------------------

def warm_process_sweep(debian, out, drop_results=None):
    """Seconds of one whole `dtb-audit sweep --debian X --format jsonl -o out`;
    drop_results: a folder of kept results to remove first (not timed)."""
    if drop_results is not None:
        shutil.rmtree(drop_results, ignore_errors=True)
    t = time.perf_counter()
    cli("sweep", "--debian", debian, "--format", "jsonl", "-o", out)
    return time.perf_counter() - t


def flatten_and_evaluate(root, dtbs, target):
    """The in-process sweep from the flattened cache, the kernels running: the Evaluation."""
    from corpus.flat import flatten
    from kernels.evaluate import evaluate
    return evaluate(flatten([root / d for d in dtbs], root), target, cache=False)


def results_folder(root, dtbs):
    """Where the kernels' results of this corpus are kept (kernels/results.py)."""
    from corpus.flat import flatten
    return flatten([root / d for d in dtbs], root).cache_folder / "results"


# -- (d) commands that judge nothing ------------------------------------------------

_MODULES = r"""
import json, sys
from auditor.cli import main
try:
    status = main(sys.argv[2:])
except SystemExit as e:
    status = e.code
compiled = sorted(m for m in sys.modules
                  if m.split(".")[0] in ("numba", "llvmlite")
                  or m in ("kernels.fdt", "kernels.dt", "kernels.links", "kernels.coherency",
                           "kernels.providers", "kernels.rule", "kernels.evaluate", "kernels.jit"))
with open(sys.argv[1], "w") as f:
    json.dump({"status": status, "loaded": compiled}, f)
"""


def modules_loaded(*args):
    """(seconds, exit status, numba and compiled-kernel modules loaded) of
    `dtb-audit ARGS` in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "modules.json"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", _MODULES, str(report), *map(str, args)],
                       capture_output=True, cwd=REPO, check=False)
        seconds = time.perf_counter() - t
        found = json.loads(report.read_text())
    return seconds, found["status"], found["loaded"]


# -- (e) many masters on one SMMU ------------------------------------------------

def masters_dts(n):
    """One arm,mmu-500 without dma-coherent and n platform masters on it, a
    thousand per simple-bus (dtc's parser takes no more than about ten
    thousand nodes in one node)."""
    lines = ["/dts-v1/;", "/ {", '    compatible = "bench,masters", "bench,soc";',
             "    #address-cells = <1>;", "    #size-cells = <1>;",
             "    smmu: iommu@1000 {", '        compatible = "arm,mmu-500";',
             "        reg = <0x1000 0x1000>;", "        #global-interrupts = <1>;",
             "        #iommu-cells = <1>;", "    };"]
    for bus in range(0, n, 1000):
        lines += [f"    bus@{bus:x} {{", '        compatible = "simple-bus";',
                  "        #address-cells = <1>;", "        #size-cells = <1>;", "        ranges;"]
        for k in range(bus, min(n, bus + 1000)):
            reg = 0x100000 + k * 0x100
            lines.append(f'        dev@{reg:x} {{ compatible = "bench,dev"; reg = <{reg:#x} 0x100>; '
                         f"iommus = <&smmu {k:#x}>; }};")
        lines.append("    };")
    lines.append("};")
    return "\n".join(lines) + "\n"


def masters_dtb(n, folder):
    dtb = Path(folder) / f"masters-{n}.dtb"
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtb), "-"],
                   input=masters_dts(n).encode(), check=True)
    return dtb


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null: the sweep's summary line is not a figure."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def sweep_in_process(dtb, out):
    """`dtb-audit sweep DTB --format json -o out` in this process."""
    from auditor.cli import main
    with _quiet_stderr():
        status = main(["sweep", str(dtb), "--format", "json", "-o", str(out)])
    if status != 0:
        raise RuntimeError(f"dtb-audit sweep {dtb}: exit {status}")


# -- the run ------------------------------------------------------------------------

def _row(label, ours, reference=None, wanted=None, ok=None):
    ratio = "" if reference is None else f"{reference / ours:8.1f}x"
    ref = "" if reference is None else f"{reference:9.2f} s"
    verdict = "" if ok is None else ("yes" if ok else "NO")
    print(f"{label:<58}{ours:9.2f} s{ref:>12}{ratio:>10}  {wanted or '':<10}{verdict}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", help=f"Debian source package of (b), (c) (default {DEFAULT_CORPUS}, "
                                     f"else {REFERENCE_CORPUS})")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each figure; the best counts")
    ap.add_argument("--only", default="abcde", help="the figures to measure, e.g. 'ad'")
    args = ap.parse_args(argv)
    only = set(args.only.replace(",", ""))
    from corpus.errors import UserError

    try:
        (ref_corpus, ref_target), (corpus, target, debian) = corpora(args.corpus)
    except UserError as why:
        sys.stderr.write(f"bench_all: error: {why}\n")
        return 2
    ref_root, ref_dtbs = board_paths(ref_corpus)
    root, dtbs = board_paths(corpus)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; best of {args.repeat}")
    print(f"reference corpus: {ref_corpus.identity}, {len(ref_dtbs)} DTBs, target {ref_target}")
    print(f"sweep corpus:     {corpus.identity}, {len(dtbs)} DTBs, target {target}")
    print(f"{'':<58}{'ours':>11}{'reference':>12}{'ratio':>10}  {'wanted':<10}met")

    reference = {}

    def reference_time(key, r, d, tgt):
        if key not in reference:
            reference[key] = best(lambda: reference_sweep(r, d, tgt), args.repeat)
        return reference[key]

    if "a" in only:
        t_ref, _ = reference_time("6.12", ref_root, ref_dtbs, ref_target)
        t_cold, (_, n_compiled) = best(lambda: cold_first_sweep(ref_root / COLD_BOARD),
                                       args.repeat)
        how = f"compiles {n_compiled} kernels" if n_compiled else "kernels as plain Python"
        _row(f"(a) first sweep, 1 board, cold: {how}", t_cold, t_ref,
             "> 2x", t_ref / t_cold > 2)
    if "b" in only or "c" in only:
        t_ref, records = reference_time(debian, root, dtbs, target)
    if "b" in only:
        # The bytecode of our modules, as an install has it (setup.sh does the same).
        for package in ("auditor", "corpus", "kernels"):
            compileall.compile_dir(REPO / package, quiet=1)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "sweep.jsonl"
            warm_process_sweep(debian, out)             # builds the caches, compiles
            t_proc, _ = best(lambda: warm_process_sweep(debian, out), args.repeat)
            with open(out) as f:
                n_records = sum(1 for _ in f)
        _row(f"(b) warm process sweep -> jsonl, {n_records} links", t_proc, t_ref, ">= 20x",
             t_ref / t_proc >= 20)
        dropped = results_folder(root, dtbs)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "sweep.jsonl"
            t_run, _ = best(lambda: warm_process_sweep(debian, out, dropped), args.repeat)
        _row("(b) the same, results dropped: the kernels load and run", t_run, t_ref)
    if "c" in only:
        flatten_and_evaluate(root, dtbs, target)        # cache and compiled code warm
        t_in, ev = best(lambda: flatten_and_evaluate(root, dtbs, target), args.repeat)
        _row(f"(c) flatten (cached) + evaluate, {len(ev.verdict)}/{len(records)} links",
             t_in, t_ref, ">= 100x", t_ref / t_in >= 100)
    if "d" in only:
        with tempfile.TemporaryDirectory() as tmp:
            board = ref_root / COLD_BOARD
            a, b = Path(tmp) / "a.json", Path(tmp) / "b.json"
            cli("sweep", board, "--format", "json", "-o", a)
            cli("sweep", board, "--format", "json", "--rule", "walk-only", "-o", b)
            for label, cmd in (("--help", ["--help"]), ("diff a.json b.json", ["diff", a, b])):
                runs = [modules_loaded(*cmd) for _ in range(args.repeat)]
                seconds = min(r[0] for r in runs)
                loaded = runs[-1][2]
                _row(f"(d) {label}: " + (f"LOADS {', '.join(loaded[:3])}"
                                                 + (" ..." if len(loaded) > 3 else "")
                                                 if loaded else "no numba, no kernels"),
                     seconds, wanted="none", ok=not loaded)
    if "e" in only:
        with tempfile.TemporaryDirectory() as tmp:
            times = {}
            for n in MASTERS:
                dtb = masters_dtb(n, tmp)
                out = Path(tmp) / f"masters-{n}.json"
                sweep_in_process(dtb, out)              # flattened cache, compiled code
                times[n], _ = best(lambda: sweep_in_process(dtb, out), args.repeat)
                _row(f"(e) {n:,} masters on one SMMU, in process", times[n])
            small, large = MASTERS
            ratio = times[large] / times[small]
            print(f"{'(e) scaling ' + f'{large:,} / {small:,} masters':<58}{ratio:9.1f} x"
                  f"{'':>24}  {'<= 5x':<10}{'yes' if ratio <= 5 else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
