"""Golden outputs: every report format, `explain`, `diff` and `history`,
compared byte for byte with the reviewed files in tests/golden/.

Three sources: the snippet corpora of tests/corpora.py (every verdict, a
parse error, a diagnostic, text that needs escaping) swept as a folder of
DTBs; mini kernel trees (tests/minikernel.py: source positions, so `written
at`, gcc's file:line and SARIF's regions); and real boards of Debian's
Linux 6.1 and 6.12 (network: tests/network/test_golden_real.py).  Machine-specific text (the temporary
folder, the cache, the kernel tree, the tool's version, Debian's point
release of each series) is replaced with placeholders before comparing.

After a change that is meant to change an output, regenerate and review
the difference (`git diff tests/golden/`) before committing:

    DTB_AUDIT_REGENERATE=1 python3 -m pytest tests/integration/test_golden.py
"""
import json
import shutil
import tempfile
from pathlib import Path

import pytest

from auditor import report
from auditor.cli import main
from auditor.diff import diff_sweeps, format_diff
from auditor.history.stitching import of_sweeps
from auditor.history.text import format_history
from auditor.sweep import sweep_corpus
from corpora import explain_boards, private_cache, snippet_corpus
from corpus.build import build_corpus
from minikernel import make_minikernel
from goldenfiles import check, text_file
from testpaths import GOLDEN

FORMATS = report.FORMATS
EXPLAINED = ("plat-evk", "pci-rdb", "mc-rdb", "noirq-evk", "rk-evk", "diag-evk", "evil-evk")


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


# -- snippet corpora ---------------------------------------------------------------

def fixed_length_folder(name):
    """A temporary folder whose path has the same length on every machine
    and run (pytest's numbered folders grow a digit now and then): tables
    pad their columns to the paths they show."""
    base = Path(tempfile.mkdtemp(prefix=f"dtb-audit-{name}-", dir="/tmp"))
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def snippets():
    for base in fixed_length_folder("golden-snippets"):
        for folder, v in (("old", "old"), ("new", "new"), ("again", "old")):
            snippet_corpus(base / folder, v)
        explain_boards(base / "chains")
        yield base


@pytest.mark.parametrize("fmt", FORMATS)
def test_snippet_sweep_formats(snippets, capsys, fmt):
    status, out, err = run(capsys, "sweep", snippets / "old", "--format", fmt)
    assert status == 0
    check(f"snippets/sweep.{fmt}", out, {"{TMP}": snippets})


def test_snippet_sweep_stderr(snippets, capsys):
    status, _, err = run(capsys, "sweep", snippets / "old", "--format", "jsonl")
    assert status == 0
    check("snippets/sweep.stderr", err, {"{TMP}": snippets})


@pytest.mark.parametrize("board", EXPLAINED)
def test_snippet_explain(snippets, capsys, board):
    status, out, err = run(capsys, "explain", snippets / "old" / f"{board}.dtb")
    assert (status, err) == (0, "")
    check(f"snippets/explain.{board}", out, {"{TMP}": snippets})


@pytest.mark.parametrize("board", ["chains", "idle", "bare"])
def test_explain_chains(snippets, capsys, board):
    status, out, err = run(capsys, "explain", snippets / "chains" / f"{board}.dtb")
    assert (status, err) == (0, "")
    check(f"snippets/explain.{board}", out, {"{TMP}": snippets})


def test_explain_of_one_dtb_among_several(snippets):
    """write_explanation(ev, out, d) of a flat of several DTBs: each as on its own."""
    from auditor.explain import write_explanation
    from corpus.flat import flatten
    from kernels.evaluate import evaluate
    from kernels.target import TargetKernel
    folder = snippets / "old"
    names = ["plat-evk", "pci-rdb", "mc-rdb"]
    flat = flatten([folder / f"{name}.dtb" for name in names], folder, cache=False)
    ev = evaluate(flat, TargetKernel.newest())
    for d, name in enumerate(names):
        out = text_file(lambda f: write_explanation(ev, f, d))
        # (the command adds each affected SMMU's evidence class after it)
        golden = (GOLDEN / f"snippets/explain.{name}").read_text()
        assert out == golden.split("\n\nevidence\n")[0] + "\n", name


@pytest.fixture(scope="module")
def snippet_saved(snippets):
    """The three snippet sweeps saved as JSON (what a nightly job keeps)."""
    paths = []
    with pytest.MonkeyPatch.context() as env:
        env.setenv("XDG_CACHE_HOME", str(private_cache(snippets / "cache")))   # not the user's
        for name in ("old", "new", "again"):
            path = snippets / f"{name}.json"
            assert main(["sweep", str(snippets / name), "--format", "json", "-o", str(path)]) == 0
            paths.append(path)
    return paths


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_snippet_diff(snippets, snippet_saved, capsys, fmt):
    old, new, _ = snippet_saved
    status, out, err = run(capsys, "diff", old, new, "--format", fmt, "--fail-on-new")
    assert (status, err) == (1, "")
    check(f"snippets/diff.{fmt}", out, {"{TMP}": snippets})


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_snippet_history(snippets, snippet_saved, capsys, fmt):
    status, out, err = run(capsys, "history", *snippet_saved, "--format", fmt)
    assert (status, err) == (0, "")
    check(f"snippets/history.{fmt}", out, {"{TMP}": snippets})


# -- mini kernel trees (source positions) ----------------------------------------------

@pytest.fixture(scope="module")
def minikernels():
    """Sweeps of a 6.1.192-like tree (LS1028A/LS1088A-like SMMUs without
    dma-coherent) and a 6.12.117-like one (with it)."""
    for base in fixed_length_folder("golden-mini"):
        sweeps = {}
        with pytest.MonkeyPatch.context() as env:
            env.setenv("XDG_CACHE_HOME", str(base / "cache"))      # never the user's cache
            for name, kw in (("v61", dict(version=(6, 1, 192), coherent=("a400",))),
                             ("v612", dict(version=(6, 12, 117),
                                           coherent=("a100", "a200", "a400")))):
                tree = make_minikernel(base / name, **kw)
                sweeps[name] = sweep_corpus(build_corpus(kernel=tree, out=base / f"dtbs-{name}"))
        yield base, sweeps


@pytest.mark.parametrize("fmt", FORMATS)
def test_minikernel_sweep_formats(minikernels, fmt):
    base, sweeps = minikernels
    out = text_file(lambda f: report.write(sweeps["v61"], fmt, f))
    check(f"minikernel/sweep.{fmt}", out, {"{TMP}": base})


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_minikernel_diff_and_history(minikernels, fmt):
    base, sweeps = minikernels
    d = diff_sweeps(sweeps["v61"], sweeps["v612"])
    h = of_sweeps([sweeps["v61"], sweeps["v612"]])
    if fmt == "text":
        check("minikernel/diff.text", format_diff(d), {"{TMP}": base})
        check("minikernel/history.text", format_history(h), {"{TMP}": base})
    else:
        check("minikernel/diff.json", json.dumps(d.to_json(), indent=1) + "\n", {"{TMP}": base})
        check("minikernel/history.json", json.dumps(h.to_json(), indent=1) + "\n",
              {"{TMP}": base})


# -- the commands' help -----------------------------------------------------------------------

COMMANDS = [[], ["corpus"], ["corpus", "build"], ["sweep"], ["explain"], ["check-parser"],
            ["diff"], ["history"], ["patch"], ["bootlog"], ["site"]]


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: "-".join(w) or "top")
def test_help(words, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")        # argparse fills to the terminal's width
    with pytest.raises(SystemExit) as exit:
        main([*words, "--help"])
    assert exit.value.code == 0
    out, err = capsys.readouterr()
    assert err == ""
    check(f"help/{'-'.join(words) or 'dtb-audit'}", out, {})
