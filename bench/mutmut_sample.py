"""The mutation score of auditor/ from a random sample of its mutants (mutmut 3).

A whole `mutmut run` of auditor/ (about 12,800 mutants, each running every
test that reaches its function) takes most of a day on two cores. A
seeded random sample gives the share killed, with its 95% interval, in an
hour or two:

    nice -n 19 python3 bench/mutmut_sample.py run [--size 600] [--seed 1] [--max-children 2]
    python3 bench/mutmut_sample.py score [--size 600] [--seed 1]
    nice -n 19 python3 bench/mutmut_sample.py recheck [--size 600] [--seed 1] [--only M]
        TEST_FILE...

Run it from the root of a checkout of the commit to measure (mutmut keeps
its state in mutants/ there; [tool.mutmut] of pyproject.toml says which
tests). `run` has mutmut make every mutant and learn which tests reach
which function (a run that names no mutant), draws the sample, and has
mutmut run exactly those; run again, it goes on with the ones not checked.
`score` prints, per module and for all of auditor/, the sampled mutants
killed, timed out (a test hung: killed too), survived and not checked, and
the share killed of those checked with its Wilson 95% interval.

mutmut runs, for a mutant, only the tests its statistics say reach the
mutated function, and a test whose work is done in a module-scoped fixture
(one site built for a whole test module) reaches it only in the first test
of its module: mutmut misses the others. `recheck` runs the given test
files, whole, in mutants/, once per sampled mutant mutmut left survived
(--only: those of a module, or one mutant), after checking that they pass
with no mutant (bench/mutant_runs.py, as mutmut_kernels.py's `quick`). It
prints "NAME killed", "timeout", "survived" or "exit-N", and records kills
and timeouts in mutmut's .meta files, as mutmut counts them, so that `score`
counts them. Tests added since the run must be copied into mutants/tests
first.
"""
import argparse
import json
import math
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

from mutant_runs import judge, record

MUTANTS = Path("mutants")
# No mutant has this name: mutmut makes the mutants and its statistics, then runs none.
NONE = "auditor.no_such_module.x_no_such_function__mutmut_1"


def all_mutants() -> dict[str, object]:
    """{mutant name: mutmut's exit code (None: not checked)} of auditor/."""
    out = {}
    for meta in sorted((MUTANTS / "auditor").rglob("*.py.meta")):
        out.update(json.loads(meta.read_text()).get("exit_code_by_key", {}))
    return out


def sample(size: int, seed: int) -> list[str]:
    names = sorted(all_mutants())
    return sorted(random.Random(seed).sample(names, min(size, len(names))))


def mutmut(*args) -> int:
    return subprocess.run([sys.executable, "-m", "mutmut", *args]).returncode


def run(args) -> int:
    if not all_mutants() or not (MUTANTS / "mutmut-stats.json").is_file():
        mutmut("run", "--max-children", str(args.max_children), NONE)
    names = sample(args.size, args.seed)
    if not names:
        print("mutmut made no mutants of auditor/", file=sys.stderr)
        return 1
    return mutmut("run", "--max-children", str(args.max_children), *names)


def module_of(name: str) -> str:
    """The module of a mutant's name (auditor.site.x__index__mutmut_3: auditor.site)."""
    return name.split(".x_")[0].split(".xǁ")[0]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of k successes in n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def score(args) -> int:
    from mutmut.stats import status_by_exit_code
    codes = all_mutants()
    names = sample(args.size, args.seed)
    by_module: dict[str, Counter] = {}
    for name in names:
        module = module_of(name)
        by_module.setdefault(module, Counter())[status_by_exit_code[codes[name]]] += 1
    total = Counter()
    print(f"{len(names)} of {len(codes)} mutants of auditor/, seed {args.seed}")
    for module, c in sorted(by_module.items()):
        total.update(c)
        print(line(module, c))
    print(line("all of auditor/", total))
    checked = sum(v for k, v in total.items() if k != "not checked")
    killed = total["killed"] + total["timeout"]
    low, high = wilson(killed, checked)
    print(f"killed (a test failed or hung) {killed} of {checked} checked: "
          f"{100 * killed / max(checked, 1):.1f}%, 95% interval {100 * low:.1f}-{100 * high:.1f}%")
    return 0


def line(name: str, c: Counter) -> str:
    checked = sum(v for k, v in c.items() if k != "not checked")
    killed = c["killed"] + c["timeout"]
    rate = f"{100 * killed / checked:5.1f}%" if checked else "  none"
    rest = ", ".join(f"{k} {v}" for k, v in sorted(c.items())
                     if k not in ("killed", "survived", "timeout"))
    return (f"{name:32} {rate}  killed {c['killed']}, timeout {c['timeout']}, "
            f"survived {c['survived']}" + (f", {rest}" if rest else ""))


def recheck(args) -> int:
    from mutmut.stats import status_by_exit_code
    codes = all_mutants()
    names = [n for n in sample(args.size, args.seed)
             if status_by_exit_code[codes[n]] == "survived"
             and (not args.only or module_of(n) in args.only or n in args.only)]
    missing = [f for f in args.files if not (MUTANTS / f).is_file()]
    if missing:
        print(f"recheck: not in {MUTANTS}/: {' '.join(missing)}", file=sys.stderr)
        return 1
    print(f"recheck: {len(names)} survivors against {' '.join(args.files)}", flush=True)
    found = Counter()
    for name, status in judge(args.files, names, MUTANTS):
        print(name, status, flush=True)
        found[status] += 1
        record(MUTANTS / "auditor", name, status)
    print(f"recheck: {dict(found)}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=("run", "score", "recheck"))
    ap.add_argument("--size", type=int, default=600)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-children", type=int, default=2)
    ap.add_argument("--only", action="append", default=[], metavar="MODULE_OR_MUTANT",
                    help="recheck: only the survivors of this module (auditor.site) or this "
                         "one (repeatable)")
    ap.add_argument("files", nargs="*", metavar="TEST_FILE",
                    help="recheck: the test files, from the checkout's root")
    args = ap.parse_intermixed_args(argv)
    if args.command == "recheck" and not args.files:
        ap.error("recheck needs the test files to run")
    return {"run": run, "score": score, "recheck": recheck}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
