"""The architecture, held: no module imports one that imports it back
(function-level imports included), imports go downwards

    auditor  (the model, reports, commands; cli.py on top)
       |  \\
    corpus  |   (kernel sources -> DTBs -> flattened arrays)
       |   /
    kernels     (numba kernels that decide; plain-Python vocabulary)

where corpus reaches kernels only for the FDT parser (corpus/flat.py ->
kernels/fdt.py) and for the one reader of cache files (kernels/cachefile.py,
which the kernels' own caches use too), and the commands that only read saved sweeps never load
numba."""
import ast
import json
import os
import subprocess
import sys

import pytest

from testpaths import GOLDEN, ROOT

PACKAGES = ("auditor", "kernels", "corpus")


def modules():
    """{module name: file} of every module of the three packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imported(name, path, known):
    """The modules of `known` that module `name` imports, anywhere in it
    (functions included): `import a.b`, `from a import b` (a.b when it is a
    module, else a), relative imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                       for alias in node.names]
        else:
            continue
        for target in targets:
            # `import a.b.c` names a.b.c; the nearest known module it means.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph():
    known = modules()
    return {name: imported(name, path, known) for name, path in known.items()}


def cycles(edges):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_graph_is_read_right():
    """The reader finds imports at module level, inside functions, relative
    and of names from modules; the cycle finder finds a planted cycle."""
    edges = graph()
    assert "kernels.fdt" in edges["corpus.flat"]
    assert "auditor.model" in edges["auditor.report"]              # from .model import ...
    assert "auditor.explain" in edges["auditor.cli"]                # inside a function
    assert "auditor.patch.dts" in edges["auditor.patch.series"]     # relative, a subpackage
    assert "kernels.coherency" in edges["auditor.explain"]          # from kernels import coherency
    planted = dict(edges, **{"kernels.fdt": edges["kernels.fdt"] | {"auditor.cli"}})
    assert any("kernels.fdt" in c and "auditor.cli" in c for c in cycles(planted))


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_imports_go_downwards():
    wrong = []
    for module, targets in graph().items():
        layer = module.split(".")[0]
        for target in targets:
            below = target.split(".")[0]
            if layer == below or layer == "auditor":
                continue
            if layer == "corpus" and below == "kernels" and module == "corpus.flat" \
                    and target in ("kernels", "kernels.fdt", "kernels.fdt_codes", "kernels.jit"):
                continue                # the parser (and its tier): the one way corpus reaches kernels
            if layer == "corpus" and target == "kernels.cachefile":
                continue                # ... but the cache files' reader, shared by both layers
            wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_nothing_imports_the_cli():
    assert [m for m, targets in graph().items() if "auditor.cli" in targets] == []


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
    assert names <= {"__future__", "json", "os", "dataclasses", "typing", "corpus.errors",
                     "kernels.codes", "kernels.judging", "kernels.target"}, names


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
