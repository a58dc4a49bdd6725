"""history --git on a real repository, timed: the whole run and each revision,
with one and with two Dask workers, each from an empty cache (as on a fresh
machine: worktrees, builds and compiled kernels made on the way).

    python bench/bench_history.py --git DIR_OR_URL RANGE [--all-commits]
        [--target-kernel 7.2] [--workers 1,2]

For devicetree-rebasing (issue 19): a clone of robherring/devicetree-rebasing
and v4.14-dts..v4.15-rc3-dts --all-commits.  Prints, per worker count, the
wall time, then the seconds of a revision: the first of each chunk (it builds
everything its worktree lacks), typical (median), the 90th percentile and the
worst, with what the worst ones rebuilt; how many commits changed no input
of the arm64 build (listed as unchanged, not built); and that every run
gives the same document.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run(args, workers):
    """(seconds, GitRun) of one history from an empty cache."""
    from auditor.history.cluster import judge_git
    from kernels.judging import Judging
    from kernels.target import TargetKernel

    judging = Judging(target=TargetKernel.parse(args.target_kernel)) if args.target_kernel \
        else Judging()
    with tempfile.TemporaryDirectory(prefix="bench-history-") as cache:
        os.environ["XDG_CACHE_HOME"] = cache     # the LocalCluster's workers inherit it
        started = time.perf_counter()
        result = judge_git(args.git, args.ranges, judging, all_commits=args.all_commits,
                           jobs=workers)
        return time.perf_counter() - started, result


def report(workers, seconds, result):
    commits = {c.sha: c for c in result.commits}
    firsts = {chunk[0].sha for chunk in result.chunks}
    per = [(r.seconds, r) for r in result.results]
    typical = [s for s, r in per if r.commit not in firsts]
    unchanged = sum(r.unchanged for r in result.results)
    print(f"{workers} worker(s): {seconds:.0f} s for {len(per)} revisions "
          f"({seconds / len(per):.2f} s a revision), {unchanged} unchanged (not built), "
          f"{sum(1 for r in result.results if r.error)} in error, "
          f"{sum(1 for r in result.results if r.not_built)} with DTBs the tree cannot build")
    print("  first of a chunk: " + ", ".join(f"{s:.1f} s" for s, r in per if r.commit in firsts))
    if typical:
        q = statistics.quantiles(typical, n=10)
        print(f"  typical {statistics.median(typical):.2f} s, 90th percentile {q[-1]:.2f} s, "
              f"built ones {statistics.median([s for s, r in per if not r.unchanged]):.2f} s, "
              f"unchanged ones "
              f"{statistics.median([s for s, r in per if r.unchanged] or [0]):.3f} s")
    for s, r in sorted(per, key=lambda p: p[0], reverse=True)[:5]:
        print(f"  worst {s:5.1f} s  {r.commit[:12]}  built {r.built}, reused {r.reused}, "
              f"judged {r.rejudged}, kept {r.kept}  {commits[r.commit].subject[:60]}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--git", required=True)
    parser.add_argument("ranges", nargs="*")
    parser.add_argument("--all-commits", action="store_true")
    parser.add_argument("--target-kernel")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args(argv)
    documents = []
    for workers in map(int, args.workers.split(",")):
        seconds, result = run(args, workers)
        report(workers, seconds, result)
        documents.append(json.dumps(result.history.to_json(), sort_keys=True))
    if len(set(documents)) > 1:
        for workers, document in zip(args.workers.split(","), documents):
            Path(f"bench-history-{workers}.json").write_text(document)
    print("the same document from every run" if len(set(documents)) == 1
          else "THE DOCUMENTS DIFFER (bench-history-N.json)")
    return 0 if len(set(documents)) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
