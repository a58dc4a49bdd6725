"""Peak memory and time of sweeps, whole processes, side by side with the
plain pylibfdt reference (bench/naive_rule.py), in one run (issue 19,
item 6):

    python bench/bench_memory.py [--debian sid/linux-source-7.2] [--copies 5]
                                 [--baseline /work/main]

Each row is one process, measured by `/usr/bin/time -f "%M %e"` (peak RSS,
seconds):

  reference        naive_rule.sweep_dtb() over every DTB of the corpus
  one cold         `dtb-audit sweep DIR --format json -o X`, nothing kept
                   (a private cache; only the compiled kernels are shared)
  one warm         the same again
  N copies cold    N copies of the corpus (hard links) as one corpus:
                   `dtb-audit sweep DIR1 ... DIRN`, nothing kept
  N copies warm    the same again
  after an edit    the nightly re-sweep of DIR after one .dtsi edit: the
                   boards that include a .dtsi (the build manifest says
                   which) get that edit's bytes (a property added to the
                   root node with fdtput, as an edit of the .dtsi adds it
                   to every board that includes it); the count of DTBs
                   judged again is the count of judgements kept anew

Then the ratios the issue asks for: N copies' peak over one's (at most
1.3), N copies' time over one's (at most 5.5), one's peak (at most 250 MB),
DTBs judged again against DTBs whose bytes changed.  --baseline TREE runs
the sweeps also from another source tree (the main branch before the
change), beside ours. The machine is shared: run it under nice.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TIME = "/usr/bin/time"


def measured(args, cwd, env):
    """(peak RSS in MB, seconds, stderr) of one process."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        p = subprocess.run([TIME, "-o", t.name, "-f", "%M %e", *args], cwd=cwd, env=env,
                           capture_output=True, text=True)
        if p.returncode not in (0, 1):
            raise RuntimeError(f"{' '.join(map(str, args))}: exit {p.returncode}: "
                               f"{p.stderr.strip()[-800:]}")
        kb, seconds = t.read().split()[-2:]
    return int(kb) / 1024, float(seconds), p.stderr


def sweep(tree, dirs, out, env):
    return measured([sys.executable, "-m", "auditor.cli", "sweep", *map(str, dirs),
                     "--format", "json", "-o", str(out)], tree, env)


def private_env(cache):
    """A private $XDG_CACHE_HOME sharing only the compiled kernels of the user's."""
    from store.folders import cache_dir
    (cache / "dtb-audit").mkdir(parents=True, exist_ok=True)
    numba = cache_dir() / "numba"
    if numba.is_dir():
        os.symlink(numba, cache / "dtb-audit" / "numba")
    return dict(os.environ, XDG_CACHE_HOME=str(cache))


def judged_count(cache):
    return sum(1 for _ in Path(cache).glob("dtb-audit/judged/*/*.json"))


def reference(root, dtbs, target):
    code = ("import sys; from pathlib import Path; sys.path.insert(0, %r)\n"
            "from bench.naive_rule import NaiveError, sweep_dtb\n"
            "n = 0\n"
            "for d in %r:\n"
            "    try: n += len(sweep_dtb(Path(%r) / d, target=%r, dtb=d))\n"
            "    except NaiveError: pass\n"
            "print(n)\n") % (str(REPO), dtbs, str(root), tuple(target.version))
    return measured([sys.executable, "-c", code], REPO, os.environ)


def edit_dtsi(corpus, copy):
    """Give the boards of `copy` that include one .dtsi the bytes of an edit
    of that .dtsi; (the .dtsi, the boards changed)."""
    users = {}
    for e in corpus.boards:
        for dep in corpus.dependencies(e.dtb):
            if dep.endswith(".dtsi"):
                users.setdefault(dep, []).append(e.dtb)
    # A .dtsi of a few boards, as a nightly's edit of one SoC's file.
    dtsi, boards = min(((d, b) for d, b in users.items() if 5 <= len(b) <= 40),
                       key=lambda x: (len(x[1]), x[0]))
    for dtb in boards:
        path = copy / dtb
        data = path.read_bytes()
        path.unlink()                      # a hard link: the other copies keep their bytes
        path.write_bytes(data)
        subprocess.run(["fdtput", "-t", "s", str(path), "/", "bench-edit", "1"], check=True)
    return dtsi, boards


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--debian", default="sid/linux-source-7.2")
    ap.add_argument("--copies", type=int, default=5)
    ap.add_argument("--baseline", help="another source tree to sweep from, side by side")
    args = ap.parse_args(argv)

    from auditor.sweep import target_of
    from corpus.build import build_corpus
    from kernels.judging import Judging
    corpus = build_corpus(debian=args.debian)
    target = target_of(corpus, Judging())
    dtbs = [e.dtb for e in corpus.boards]
    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    try:
        copies = []
        for i in range(args.copies):
            copy = work / f"copy{i + 1}"
            shutil.copytree(corpus.root, copy, copy_function=os.link)
            copies.append(copy)
        rows = []
        print(f"{args.debian}: {len(dtbs)} DTBs, target {target}; "
              f"{args.copies} copies: {len(dtbs) * args.copies} DTBs", flush=True)

        def row(label, mb, seconds, note=""):
            rows.append((label, mb, seconds))
            print(f"  {label:<34}{mb:>9.0f} MB{seconds:>9.2f} s  {note}", flush=True)

        mb, s, _ = reference(corpus.root, dtbs, target)
        row("reference (naive_rule, pylibfdt)", mb, s)
        figures = {}
        trees = [("ours", REPO)] + ([("baseline", Path(args.baseline))] if args.baseline else [])
        # Phase by phase, ours then the baseline's, so that both see the same load.
        envs = {(name, which): private_env(work / f"cache-{name}-{which}")   # cold: nothing kept
                for name, _ in trees for which in ("one", "copies")}
        for phase in ("one cold", "one warm", "copies cold", "copies warm"):
            which = phase.split()[0]
            for name, tree in trees:
                mb, s = sweep(tree, copies[:1] if which == "one" else copies,
                              work / f"{name}-{which}.json", envs[name, which])[:2]
                figures.setdefault(name, {})[phase] = (mb, s)
                row(f"{name}: {phase.replace('copies', f'{args.copies} copies')}", mb, s)
        # The nightly re-sweep after an edit: ours only (the baseline keeps no judgement per DTB).
        cache = work / "cache-ours-one"
        env = envs["ours", "one"]
        before = judged_count(cache)
        dtsi, changed = edit_dtsi(corpus, copies[0])
        mb, s, _ = sweep(REPO, copies[:1], work / "edited.json", env)
        rejudged = judged_count(cache) - before
        row("ours: re-sweep after one .dtsi edit", mb, s,
            f"{rejudged} DTBs judged again; {len(changed)} changed ({dtsi})")
        ours = figures["ours"]
        print("ratios (ours):")
        for phase in ("cold", "warm"):
            one, all_ = ours[f"one {phase}"], ours[f"copies {phase}"]
            print(f"  {phase}: peak {one[0]:.0f} MB (target <= 250); {args.copies} copies / one: "
                  f"peak {all_[0] / one[0]:.2f}x (target <= 1.3), "
                  f"time {all_[1] / one[1]:.2f}x (target <= 5.5)")
        print(f"  after the edit: {rejudged} judged again of {len(changed)} changed "
              f"(target: equal)")
        if args.baseline:
            base = figures["baseline"]
            print("ours / baseline: " + ", ".join(
                f"{k}: peak {ours[k][0] / base[k][0]:.2f}x time {ours[k][1] / base[k][1]:.2f}x"
                for k in ours))
        print(json.dumps({"rows": rows, "rejudged": rejudged, "changed": len(changed)}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
