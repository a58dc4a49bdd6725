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

The copy is $XDG_CACHE_HOME/dtb-audit/mutmut-kernels (default
~/.cache/...); mutmut keeps its state in mutants/ there, so a `run` after
an interrupted one goes on with the mutants not yet tested.  `run` stages
a fresh copy only when the sources changed (the mutants of a changed
source are made again by mutmut).  `retest` is `run` after the tests
changed: the survivors (and mutants no test reached) are tested again, with
the tests' coverage of each function collected anew.  The [tool.mutmut] of
pyproject.toml, for auditor/, is untouched.
"""
import ast
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dtb-audit" / \
    "mutmut-kernels"
COPIED = ("auditor", "corpus", "kernels", "tests", "bench")
# The numba cache machinery (jit.py) and its settings (config.py) do nothing
# with the JIT off: their mutants could not be killed here.
NOT_MUTATED = ["kernels/jit.py", "kernels/config.py"]
TESTS = ["tests/unit/test_kernel_decisions.py", "tests/unit/test_rule.py",
         "tests/unit/test_target_kernel.py",
         "tests/unit/test_fdt.py", "tests/integration/test_results_cache.py"]
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


def forget_survivors():
    """Mark survived and untested mutants not checked, and drop mutmut's
    record of which tests reach which function, so that new tests count."""
    from mutmut.stats import status_by_exit_code
    for meta in (STAGE / "mutants" / "kernels").glob("*.py.meta"):
        data = json.loads(meta.read_text())
        codes = data.get("exit_code_by_key", {})
        for key, code in codes.items():
            if status_by_exit_code[code] in ("survived", "no tests"):
                codes[key] = None
        meta.write_text(json.dumps(data, indent=4))
    (STAGE / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)


def mutmut(*args):
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=STAGE, env=env).returncode


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
        stage()
        forget_survivors()
        return mutmut("run", *argv[1:])
    if command == "score":
        score()
        return 0
    return mutmut(*argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
