"""Paths given on the command line name the same file from any working
folder (issue 22: `explain c/612/freescale/x.dtb` doubled the folder):
relative with folders, `./x`, `../x`, a bare name, an absolute path, and
`..` after a link to a folder (which the system resolves, not the text)."""
import json
import os
import shutil

import pytest

from corpora import explain_boards
from minikernel import make_minikernel

from auditor.cli import main

pytestmark = pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc")


@pytest.fixture
def layout(tmp_path):
    """tmp/c/612/freescale/chains.dtb, an empty tmp/c/612/other, and
    tmp/into -> c/612/freescale (a link to a folder)."""
    folder = explain_boards(tmp_path / "c" / "612" / "freescale")
    (tmp_path / "c" / "612" / "other").mkdir()
    (tmp_path / "into").symlink_to(folder)
    return tmp_path


# (working folder below tmp, the path given)
WAYS = [
    ("", "c/612/freescale/chains.dtb"),
    ("c", "612/freescale/chains.dtb"),
    ("c/612/freescale", "./chains.dtb"),
    ("c/612/freescale", "chains.dtb"),
    ("c/612/other", "../freescale/chains.dtb"),
    ("c/612/other", "./../freescale/./chains.dtb"),
    ("into", "../other/../freescale/chains.dtb"),    # `..` of the link's target, not of tmp
]


def _run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("cwd, given", WAYS)
def test_explain_finds_the_dtb_from_any_folder(layout, monkeypatch, capsys, cwd, given):
    expected = _run(capsys, "explain", str(layout / "c/612/freescale/chains.dtb"))
    assert expected[0] == 0 and expected[2] == ""
    monkeypatch.chdir(layout / cwd)
    assert _run(capsys, "explain", given) == expected


@pytest.mark.parametrize("cwd, given", WAYS)
def test_sweep_finds_the_dtb_from_any_folder(layout, monkeypatch, capsys, cwd, given):
    expected = _run(capsys, "sweep", "--format", "jsonl",
                    str(layout / "c/612/freescale/chains.dtb"))
    assert expected[0] == 0
    monkeypatch.chdir(layout / cwd)
    assert _run(capsys, "sweep", "--format", "jsonl", given) == expected


def test_explain_of_a_dtb_of_a_built_corpus_from_inside_it(tmp_path, monkeypatch, capsys):
    """A DTB of a corpus built with --out, given relative from inside the
    corpus or from beside it: the corpus's board (judged as its kernel)."""
    tree = make_minikernel(tmp_path / "linux")
    assert main(["corpus", "build", "--kernel", str(tree), "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    expected = _run(capsys, "explain", str(tmp_path / "out" / "acme" / "a100-evk.dtb"))
    assert expected[0] == 0 and expected[1].startswith("a100-evk.dtb: board acme,a100-evk")
    for cwd, given in (("out", "acme/a100-evk.dtb"), ("out/acme", "a100-evk.dtb"),
                       ("linux", "../out/acme/./a100-evk.dtb")):
        monkeypatch.chdir(tmp_path / cwd)
        assert _run(capsys, "explain", given) == expected, (cwd, given)


def test_diff_and_patch_read_saved_sweeps_relative_to_the_working_folder(
        tmp_path, monkeypatch, capsys):
    tree = make_minikernel(tmp_path / "linux")
    (tmp_path / "runs").mkdir()
    assert main(["sweep", "--kernel", str(tree), "--format", "json",
                 "-o", str(tmp_path / "runs" / "s.json")]) == 0
    monkeypatch.chdir(tmp_path / "runs")
    capsys.readouterr()
    assert main(["diff", "s.json", "./s.json", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["regression"] is False
    monkeypatch.chdir(tmp_path / "linux")
    assert main(["patch", "--sweep", "../runs/s.json", "-o", "../series"]) == 0
    written = capsys.readouterr().out.split()
    assert written and all(os.path.isfile(tmp_path / "linux" / p) for p in written)
