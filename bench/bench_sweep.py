"""The whole-corpus sweep, timed: the numba kernels from the flattened cache
beside the plain pylibfdt version of the same rule (bench/naive_rule.py),
in one run, under every rule, as the corpus's own kernel (its target)
judges.  (Every figure of the project side by side: bench/bench_all.py.)

    python bench/bench_sweep.py [--debian linux-source-6.12] [--repeat 3]

(or --kernel DIR, --tarball FILE, --dtbs DIR, as `dtb-audit corpus build`).
The corpus is built or reused first (corpus.build.build_corpus) and
flattened once so the cache is warm.  Timed, each the best of --repeat runs
(the machine is noisy):

  flatten   flatten(..., cache=True): load of the warm cache
  evaluate  kernels.evaluate.evaluate(): the rule over every link
  sweep     flatten + evaluate: the full sweep from the cache
  document  auditor.sweep.build_sweep(): the link records and SoC summaries
  naive     naive_rule.sweep_dtb() over every DTB: link records

The two must give the same verdict counts; the output says whether they do,
and lists the links found by only one of them.  Exit status 0 when the
counts agree, 1 when they do not, 2 for a corpus that cannot be built.
"""
import argparse
import sys
import time
from collections import Counter
from pathlib import Path

# Run as a script (python bench/bench_sweep.py): the repository root holds the packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm  # noqa: E402

from auditor.sweep import build_sweep, target_of  # noqa: E402
from bench.timing import best  # noqa: E402
from bench.naive_rule import RULES, NaiveError, sweep_dtb  # noqa: E402
from corpus.build import build_corpus  # noqa: E402
from corpus.console import progress_wanted  # noqa: E402
from corpus.errors import UserError  # noqa: E402
from corpus.flat import flatten  # noqa: E402
from kernels.codes import VERDICT_NAMES as VERDICTS, Rule  # noqa: E402
from kernels.evaluate import evaluate  # noqa: E402
from kernels.judging import Judging  # noqa: E402

KEY = ("dtb", "provider_path", "master_path", "link", "master_kind", "verdict")


def naive_sweep(root, dtbs, rule, target):
    """naive_rule over every DTB; a DTB it cannot read is reported and skipped."""
    records = []
    for dtb in tqdm(dtbs, desc=f"naive {rule}", unit="dtb", file=sys.stderr, leave=False,
                    disable=not progress_wanted()):
        try:
            records += sweep_dtb(root / dtb, rule, dtb=dtb, target=target)
        except NaiveError as exc:
            sys.stderr.write(f"{exc}\n")
    return records


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = ap.add_mutually_exclusive_group()
    source.add_argument("--debian", help="a linux-source-X package (default: linux-source-6.12)")
    source.add_argument("--kernel", help="a kernel source tree")
    source.add_argument("--tarball", help="a kernel .tar.xz / .tar.gz")
    source.add_argument("--dtbs", help="a folder of built DTBs")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measure; the best counts")
    ap.add_argument("--rule", choices=RULES, action="append",
                    help="only this rule (again for more; default: all of them)")
    args = ap.parse_args(argv)
    rules = args.rule or list(RULES)

    try:
        corpus = build_corpus(kernel=args.kernel, tarball=args.tarball, debian=args.debian,
                              dtbs=args.dtbs)
    except UserError as exc:
        sys.stderr.write(f"bench_sweep: error: {exc}\n")
        return 2
    root = Path(corpus.root)
    dtbs = [e.dtb for e in corpus.boards]
    paths = [root / d for d in dtbs]
    target = target_of(corpus, Judging())

    flat = flatten(paths, root)          # parses on a first run, and fills the cache
    for message in flat.errors():
        sys.stderr.write(message + "\n")
    t = time.perf_counter()
    evaluate(flat, target)               # loads (or compiles) the kernels' machine code
    warmup = time.perf_counter() - t
    print(f"corpus: {corpus.identity}: {len(dtbs)} DTBs, {flat.node_parent.size} nodes, "
          f"{flat.prop_node.size} properties ({root}); target kernel {target}")
    print(f"kernels loaded in {warmup:.2f} s; best of {args.repeat} runs, seconds")

    header = (f"{'rule':<15}{'links':>7}{'flatten':>9}{'evaluate':>10}{'sweep':>8}"
              f"{'document':>10}{'naive':>8}  {'sweep links/s':>14}{'naive links/s':>14}"
              f"{'naive/sweep':>12}{'naive/(sweep+doc)':>19}")
    rows, checks = [], []
    agree = True
    for rule in rules:
        t_flatten, _ = best(lambda: flatten(paths, root), args.repeat)
        # cache=False: the kernels run (kept results would only be loaded).
        judging = Judging(rule=Rule(rule))
        t_evaluate, ev = best(lambda: evaluate(flat, target, judging, cache=False), args.repeat)
        t_sweep, _ = best(lambda: evaluate(flatten(paths, root), target, judging, cache=False),
                          args.repeat)
        t_document, result = best(lambda: build_sweep(ev, corpus), args.repeat)
        t_naive, naive = best(lambda: naive_sweep(root, dtbs, rule, target), args.repeat)

        n = len(ev.verdict)
        rows.append(f"{rule:<15}{n:>7}{t_flatten:>9.3f}{t_evaluate:>10.3f}{t_sweep:>8.3f}"
                    f"{t_document:>10.3f}{t_naive:>8.2f}  {n / t_sweep:>14,.0f}"
                    f"{len(naive) / t_naive:>14,.0f}{t_naive / t_sweep:>11.0f}x"
                    f"{t_naive / (t_sweep + t_document):>18.1f}x")

        numba_counts = Counter(VERDICTS[v] for v in ev.verdict)
        naive_counts = Counter(r["verdict"] for r in naive)
        links_numba = Counter(tuple(getattr(link, k) for k in KEY) for link in result.links)
        links_naive = Counter(tuple(r[k] for k in KEY) for r in naive)
        same = numba_counts == naive_counts
        agree &= same
        counts = ", ".join(f"{v} {numba_counts[v]}" for v in VERDICTS if numba_counts[v])
        if same:
            checks.append(f"{rule}: same verdict counts in both ({counts})")
        else:
            diff = ", ".join(f"{v} {numba_counts[v]} vs {naive_counts[v]}" for v in VERDICTS
                             if numba_counts[v] != naive_counts[v])
            checks.append(f"{rule}: verdict counts DIFFER, numba vs naive: {diff}")
        for label, only in (("numba only", links_numba - links_naive),
                            ("naive only", links_naive - links_numba)):
            links = sorted(only.elements(), key=str)
            for link in links[:10]:
                checks.append(f"  {label}: {' '.join(str(x) for x in link)}")
            if len(links) > 10:
                checks.append(f"  {label}: ... {len(links) - 10} more")

    print(header)
    print("\n".join(rows))
    print("\n".join(checks))
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
