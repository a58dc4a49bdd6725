"""The architecture, held: imports go downwards only, and no module imports
one that imports it back (function-level imports included)

    auditor  (the model, reports, commands; cli.py on top)
       |  \\
    corpus  |   (kernel sources -> DTBs -> flattened arrays)
       |   /
    kernels     (numba kernels that decide; plain-Python vocabulary)
       |
    store       (caches and durable writes; imports none of the above)

where corpus reaches kernels only for the FDT parser (corpus/flat.py ->
kernels/fdt.py, its codes and its tier); the contracts are import-linter's,
in pyproject.toml ([tool.importlinter]). The commands that only read saved
sweeps never load numba."""
import ast
import json
import os
import shutil
import subprocess
import sys

import grimp
import pytest

from testpaths import GOLDEN, ROOT

PACKAGES = ("auditor", "corpus", "kernels", "store")


def lint_imports(root):
    """(exit status, report) of import-linter on the packages under `root`."""
    proc = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import "
                           "lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"],
                          cwd=root, env=dict(os.environ, PYTHONPATH=str(root)),
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def test_the_contracts_hold():
    status, report = lint_imports(ROOT)
    assert status == 0, report
    assert "3 kept, 0 broken" in report


def test_the_contracts_find_what_they_forbid(tmp_path):
    """A copy with an import upwards, a cycle inside a layer (in a function)
    and corpus reaching kernels elsewhere than the parser: each contract broken."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with open(tmp_path / "store" / "prune.py", "a") as f:
        f.write("\nimport corpus.sources\n")
    with open(tmp_path / "corpus" / "model.py", "a") as f:
        f.write("\n\ndef _later():\n    from corpus import build\n    return build\n")
    with open(tmp_path / "corpus" / "git.py", "a") as f:
        f.write("\nfrom kernels import codes\n")
    status, report = lint_imports(tmp_path)
    assert status != 0
    assert "0 kept, 3 broken" in report, report
    assert "store.prune -> corpus.sources" in report
    assert "corpus.git -> kernels.codes" in report
    assert ".model -> .build" in report


def test_nothing_imports_the_cli():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    assert graph.find_modules_that_directly_import("auditor.cli") == set()


def test_the_model_reads_no_arrays():
    """auditor/model.py (what every report reads) stands on the vocabulary
    only: no numpy, no numba, no corpus building. kernels.target is plain
    Python: the one reader of version strings, which saved sweeps go through."""
    path = ROOT / "auditor/model.py"
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add(node.module)
    assert names <= {"__future__", "bisect", "itertools", "json", "os", "collections.abc",
                     "dataclasses", "typing", "corpus.errors",
                     "kernels.codes", "kernels.judging", "kernels.target", "store.kept"}, names


NO_NUMBA = """
import runpy, sys
sys.argv = ["dtb-audit", *{argv!r}]
try:
    runpy.run_module("auditor.cli", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    status = exit.code
else:
    status = 0
print(repr((status, sorted(m for m in ("numba", "numpy", "llvmlite") if m in sys.modules))))
"""


def run_without_numba(*argv, cache=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    proc = subprocess.run([sys.executable, "-c", NO_NUMBA.format(argv=[str(a) for a in argv])],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize("argv", [["--help"], ["sweep", "--help"], ["diff", "--help"],
                                  ["patch", "--help"]])
def test_help_loads_no_numba(argv):
    proc = run_without_numba(*argv)
    assert proc.stdout.startswith("usage: dtb-audit")
    assert proc.stdout.splitlines()[-1] == "(0, [])"


def test_diff_and_history_of_saved_sweeps_load_no_numba(tmp_path):
    old, new = GOLDEN / "snippets/sweep.json", GOLDEN / "minikernel/sweep.json"
    proc = run_without_numba("diff", old, new, "--format", "json")
    *out, last = proc.stdout.splitlines()
    assert last == "(0, [])"
    assert json.loads("\n".join(out))["kind"] == "diff"
    proc = run_without_numba("history", old, new)
    assert proc.stdout.splitlines()[-1] == "(0, [])"
    assert proc.stdout.startswith("SoC ")


def test_the_probe_sees_numba_when_it_is_loaded(tmp_path):
    """The check above is real: a sweep does load numba."""
    from corpora import private_cache, snippet_corpus
    folder = snippet_corpus(tmp_path / "dtbs")
    proc = run_without_numba("sweep", folder, "--format", "csv", "-o", tmp_path / "r.csv",
                             cache=private_cache(tmp_path / "cache"))
    assert proc.stdout.splitlines()[-1] == "(0, ['llvmlite', 'numba', 'numpy'])"


def test_a_second_sweep_of_an_unchanged_corpus_loads_no_numba(tmp_path):
    """The kernels' results are kept (kernels/results.py): the same sweep
    again loads them, not the compiler, and writes the same report."""
    from corpora import private_cache, snippet_corpus
    folder = snippet_corpus(tmp_path / "dtbs")
    cache = private_cache(tmp_path / "cache")
    first = run_without_numba("sweep", folder, "--format", "json", "-o", tmp_path / "1.json",
                              cache=cache)
    assert first.stdout.splitlines()[-1] == "(0, ['llvmlite', 'numba', 'numpy'])"
    again = run_without_numba("sweep", folder, "--format", "json", "-o", tmp_path / "2.json",
                              cache=cache)
    assert again.stdout.splitlines()[-1] == "(0, ['numpy'])"
    assert (tmp_path / "2.json").read_bytes() == (tmp_path / "1.json").read_bytes()
    other = run_without_numba("sweep", folder, "--format", "json", "--target-kernel", "6.1",
                              "-o", tmp_path / "3.json", cache=cache)
    assert other.stdout.splitlines()[-1] == "(0, ['llvmlite', 'numba', 'numpy'])"
