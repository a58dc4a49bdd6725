"""Mutation testing of kernels/ with mutmut 3, the kernels run as plain
Python (NUMBA_DISABLE_JIT=1).

mutmut 3 leaves every decorated function alone, and the rule's kernels are
all @njit ones.  Under NUMBA_DISABLE_JIT=1 numba's njit hands back the
plain function anyway, so this script stages a copy of the repository in
which kernels/*.py have their @njit decorators removed, with a
[tool.mutmut] for kernels/ and the tests that judge the kernels, and runs
mutmut there:

    nice -n 19 python3 bench/mutmut_kernels.py run [mutmut run's arguments]
    nice -n 19 python3 bench/mutmut_kernels.py retest [...]   # after tests changed
    python3 bench/mutmut_kernels.py results      # mutmut's own listing
    python3 bench/mutmut_kernels.py score        # killed / survived / not checked, per module
    nice -n 19 python3 bench/mutmut_kernels.py quick TEST_FILE... [--module M...] [MUTANT...]

The copy is $XDG_CACHE_HOME/dtb-audit/mutmut-kernels (default
~/.cache/...); mutmut keeps its state in mutants/ there, so a `run` after
an interrupted one goes on with the mutants not yet tested.  `run` stages
a fresh copy only when the sources changed (the mutants of a changed
source are made again by mutmut).  `retest` is `run` after the tests
or the kernels changed: mutmut forgets every verdict when its test
selection (TESTS) changes, so retest keeps the verdicts of the mutants
killed (or timed out) before in a function whose source is unchanged, and
has mutmut test the rest (the survivors, and every mutant of a changed or
new function), with the tests' coverage of each function collected anew.  The [tool.mutmut] of
pyproject.toml, for auditor/, is untouched.

A survivor costs mutmut every test that reaches its function (for
kernels/fdt.py that is every test that parses a DTB: a minute or more on a
shared machine).  `quick` is the short way for new tests: it runs the given
test files (default: every file of TESTS) against each survived or
not-checked mutant of kernels/ (or of the modules named with --module, or
those named) in one process, forking a child per mutant from a parent that only imported
the code (as mutmut's forkserver does), and records in mutmut's state the
mutants they kill (a test fails) or hang (timed out).  It records nothing
else: a mutant they do not kill stays survived or not checked, which only
mutmut's own run, with every test, decides.  Stage first (`run` or
`retest`, interrupted once it has started running mutants, is enough):
quick refuses a stage whose sources differ from the worktree's.
"""
import ast
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from mutant_runs import judge, record

ROOT = Path(__file__).resolve().parent.parent
STAGE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dtb-audit" / \
    "mutmut-kernels"
COPIED = ("auditor", "corpus", "kernels", "store", "tests", "bench")
# The numba cache machinery (jit.py) and its settings (config.py) do nothing
# with the JIT off: their mutants could not be killed here.
NOT_MUTATED = ["kernels/jit.py", "kernels/config.py"]
TESTS = ["tests/unit/test_kernel_decisions.py", "tests/unit/test_kernel_links.py",
         "tests/unit/test_kernel_providers.py", "tests/unit/test_kernel_dt.py",
         "tests/unit/test_rule.py", "tests/unit/test_target_kernel.py",
         "tests/unit/test_fdt.py", "tests/unit/test_kernel_fdt.py",
         "tests/integration/test_results_cache.py", "tests/unit/test_judging.py",
         "tests/unit/test_kernel_iommu_map.py", "tests/unit/test_kernel_pci.py",
         "tests/unit/test_kernel_mmu_masters.py", "tests/unit/test_kernel_coherency.py",
         "tests/unit/test_kernel_iommus.py", "tests/unit/test_target_versions.py",
         "tests/unit/test_kernel_results.py", "tests/unit/test_kernel_properties.py",
         "tests/unit/test_kernel_evaluate.py"]
CONFIG = f"""
[tool.mutmut]
source_paths = ["kernels/"]
also_copy = ["auditor/", "corpus/", "store/", "bench/"]
do_not_mutate = {json.dumps(NOT_MUTATED)}
pytest_add_cli_args = ["-m", "not network", "-p", "no:cacheprovider", "-n", "0", "-x",
                       "-q"]
pytest_add_cli_args_test_selection = {json.dumps(TESTS)}
# A mutant that stops a `while True` walk from advancing spins: give up on it
# after 4 times its tests' usual time (mutmut's default is 15).
timeout_multiplier = 4.0
# Forked from a process that only collected the tests: with mutmut's default
# (fork from the process that ran them all), compatible_table()'s cache is
# already full in every child, and its mutants are never run.
process_isolation = "forkserver"
"""


def strip_njit(source: str) -> str:
    """The source without its @njit(...) decorator lines."""
    drop = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            for dec in node.decorator_list:
                func = dec.func if isinstance(dec, ast.Call) else dec
                if isinstance(func, ast.Name) and func.id == "njit":
                    drop.update(range(dec.lineno - 1, dec.end_lineno))
    return "".join(line for i, line in enumerate(source.splitlines(keepends=True))
                   if i not in drop)


def stage():
    """Copy the sources into STAGE (kernels/ without @njit), keeping mutmut's
    mutants/ of an earlier run."""
    STAGE.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        shutil.rmtree(STAGE / name, ignore_errors=True)
        shutil.copytree(ROOT / name, STAGE / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in (STAGE / "kernels").glob("*.py"):
        path.write_text(strip_njit(path.read_text()))
    pyproject = (ROOT / "pyproject.toml").read_text()
    start = pyproject.index("[tool.mutmut]")
    end = pyproject.find("\n[", start + 1)
    (STAGE / "pyproject.toml").write_text(
        pyproject[:start] + CONFIG.strip() + "\n" + (pyproject[end:] if end >= 0 else ""))


# No mutant has this name: mutmut makes the mutants and collects which tests
# reach which function, then runs none.
NONE = "kernels.no_such_module.x_no_such_function__mutmut_1"


def _verdicts():
    """{module: mutmut's .meta of it} in STAGE (empty before a first run)."""
    return {meta.name: json.loads(meta.read_text())
            for meta in (STAGE / "mutants" / "kernels").glob("*.py.meta")}


def _function(key):
    """The mutated function of a mutant's name: kernels.fdt.x_intern__mutmut_3 -> x_intern."""
    return key.rsplit(".", 1)[1].rsplit("__mutmut_", 1)[0]


def retest(argv):
    """The `retest` command (see the module's docstring)."""
    from mutmut.stats import status_by_exit_code
    before = _verdicts()
    stage()
    mutmut("run", NONE)
    kept = Counter()
    rest = []
    for name, data in _verdicts().items():
        old = before.get(name, {})
        unchanged = {f for f, h in data.get("hash_by_function_name", {}).items()
                     if old.get("hash_by_function_name", {}).get(f) == h}
        codes = data["exit_code_by_key"]
        for key in codes:
            was = old.get("exit_code_by_key", {}).get(key)
            if _function(key) in unchanged and was is not None and \
                    status_by_exit_code[was] in ("killed", "timeout"):
                codes[key] = was
                kept[status_by_exit_code[was]] += 1
            else:
                codes[key] = None
                rest.append(key)
        (STAGE / "mutants" / "kernels" / name).write_text(json.dumps(data, indent=4))
    print(f"retest: kept {dict(kept)} of unchanged functions; testing {len(rest)}", flush=True)
    return mutmut("run", *argv, *rest) if rest else 0


def mutmut(*args):
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=STAGE, env=env).returncode


def quick(argv):
    """The `quick` command (see the module's docstring)."""
    from mutmut.stats import status_by_exit_code
    modules = []
    files = []
    it = iter(argv)
    only = set()
    for a in it:
        if a == "--module":
            modules.append(next(it))
        elif a.startswith("kernels."):
            only.add(a)         # a mutant's name: only the mutants named
        else:
            files.append(a)
    files = files or TESTS
    for path in (ROOT / "kernels").glob("*.py"):
        staged = STAGE / "kernels" / path.name
        if not staged.exists() or staged.read_text() != strip_njit(path.read_text()):
            sys.exit(f"quick: {staged} differs from the worktree's: stage with `run` first")
    # Copied over, not replaced: another quick (of other modules) may be running.
    shutil.copytree(ROOT / "tests", STAGE / "mutants" / "tests", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    names = []
    for meta in sorted((STAGE / "mutants" / "kernels").glob("*.py.meta")):
        module = meta.name[:-len(".py.meta")]
        if modules and module not in modules:
            continue
        data = json.loads(meta.read_text())
        names += [k for k, c in data.get("exit_code_by_key", {}).items()
                  if status_by_exit_code[c] in ("survived", "not checked", "no tests")
                  and (not only or k in only)]
    print(f"quick: {len(names)} mutants against {' '.join(files)}", flush=True)
    found = Counter()
    for name, status in judge(files, names, STAGE / "mutants",
                              dict(os.environ, NUMBA_DISABLE_JIT="1")):
        print(name, status, flush=True)
        found[status] += 1
        record(STAGE / "mutants" / "kernels", name, status)
    print(f"quick: {dict(found)}")
    return 0


def score():
    """killed / survived / ... per module, from mutmut's .meta files, with
    mutmut's own names for the exit codes ("not checked": not run yet)."""
    from mutmut.stats import status_by_exit_code
    counts = {}
    for meta in sorted((STAGE / "mutants" / "kernels").glob("*.py.meta")):
        codes = json.loads(meta.read_text()).get("exit_code_by_key", {}).values()
        counts[meta.name[:-len(".meta")]] = Counter(status_by_exit_code[c] for c in codes)
    total = Counter()
    for name, c in counts.items():
        total.update(c)
        print(_line(name, c))
    print(_line("all of kernels/", total))


def _line(name, c):
    run = sum(v for k, v in c.items() if k != "not checked")
    rate = f"{100 * c['killed'] / run:.1f}% killed" if run else "none run"
    rest = ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if k not in ("killed", "survived"))
    return f"{name:24} {rate:>14}  killed {c['killed']}, survived {c['survived']}" + \
        (f", {rest}" if rest else "")


def main(argv):
    command = argv[0] if argv else "run"
    if command == "run":
        stage()
        return mutmut("run", *argv[1:])
    if command == "retest":
        return retest(argv[1:])
    if command == "score":
        score()
        return 0
    if command == "quick":
        return quick(argv[1:])
    return mutmut(*argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
