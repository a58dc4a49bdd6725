"""Two checkouts of dtb-audit timed side by side in one run: the sweep of a
Debian corpus from the warm flat cache (kernels' results not kept, so the
kernels run), and a cold compile of every kernel (bench/compile_times.py).

    python bench/ab_trees.py BEFORE AFTER [--debian linux-source-6.12 ...]
                             [--rounds 3] [--repeat 3] [--no-compile]

Each measure runs in a fresh process of each checkout in turn, --rounds
times, alternating, so that both meet the same load of the machine; each
figure is the best of all its runs, in CPU seconds of the process (on a
shared machine the wall clock mostly measures the other processes).  Timed
per corpus:

  evaluate  kernels.evaluate.evaluate(flat, target, cache=False)
  sweep     flatten (the warm cache) + evaluate
  document  auditor.sweep.build_sweep(): the link records
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

_RUN = r"""
import json, sys, time
from auditor.sweep import build_sweep, target_of
from corpus.build import build_corpus
from corpus.flat import flatten
from kernels.evaluate import evaluate
from kernels.judging import Judging
corpus = build_corpus(debian=sys.argv[1])
root = corpus.root
paths = [root / e.dtb for e in corpus.boards]
flat = flatten(paths, root)
target = target_of(corpus, Judging())
repeat = int(sys.argv[2])


def best(run, repeat):
    times = []
    for _ in range(repeat):
        t = time.process_time()
        result = run()
        times.append(time.process_time() - t)
    return min(times), result


evaluate(flat, target, Judging(), cache=False)      # loads (or compiles) the kernels
t_eval, ev = best(lambda: evaluate(flat, target, Judging(), cache=False), repeat)
t_sweep, _ = best(lambda: evaluate(flatten(paths, root), target, Judging(), cache=False), repeat)
t_doc, _ = best(lambda: build_sweep(ev, corpus), repeat)
print(json.dumps({"links": int(len(ev.verdict)), "evaluate": t_eval, "sweep": t_sweep,
                  "document": t_doc}))
"""


def _run(tree, args):
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.pop("NUMBA_DISABLE_JIT", None)
    p = subprocess.run([sys.executable, *args], cwd=tree, env=env, capture_output=True,
                       text=True)
    if p.returncode:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"{tree}: {' '.join(args[:2])} failed ({p.returncode})")
    return p.stdout


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs=2, type=Path, help="the two checkouts (before, after)")
    ap.add_argument("--debian", action="append",
                    help="a linux-source-X package (again for more; default: 6.12 and 7.2)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measure per process")
    ap.add_argument("--no-compile", action="store_true", help="skip the cold compile")
    args = ap.parse_args(argv)
    trees = [t.resolve() for t in args.trees]
    corpora = args.debian or ["linux-source-6.12", "sid/linux-source-7.2"]
    best = {}
    for _ in range(args.rounds):
        for corpus in corpora:
            for tree in trees:
                got = json.loads(_run(tree, ["-c", _RUN, corpus, str(args.repeat)]))
                slot = best.setdefault((corpus, tree), got)
                for k in ("evaluate", "sweep", "document"):
                    slot[k] = min(slot[k], got[k])
        if not args.no_compile:
            for tree in trees:
                line = _run(tree, ["-m", "bench.compile_times", "--top", "0"]).splitlines()[0]
                # "<dtb>: N links; CPU seconds: numba import a, compile_all() b,
                # first sweep c, total d"
                total = float(line.rsplit("total ", 1)[1])
                compile_all = float(line.split("compile_all() ", 1)[1].split(",")[0])
                slot = best.setdefault(("compile", tree), {"compile_all": compile_all,
                                                          "total": total})
                slot["compile_all"] = min(slot["compile_all"], compile_all)
                slot["total"] = min(slot["total"], total)
    print(f"best of {args.rounds} rounds x {args.repeat} runs, CPU seconds")
    print(f"{'corpus':<24}{'tree':<34}{'links':>7}{'evaluate':>10}{'sweep':>8}{'document':>10}")
    for corpus in corpora:
        for tree in trees:
            r = best[(corpus, tree)]
            print(f"{corpus:<24}{str(tree):<34}{r['links']:>7}{r['evaluate']:>10.3f}"
                  f"{r['sweep']:>8.3f}{r['document']:>10.3f}")
    if not args.no_compile:
        print("cold compile, CPU seconds (bench/compile_times.py)")
        for tree in trees:
            r = best[("compile", tree)]
            print(f"  {str(tree):<34} compile_all() {r['compile_all']:.2f}, "
                  f"with the first sweep {r['total']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
