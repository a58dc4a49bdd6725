"""Paths given on the command line name the same file from any working
folder (issue 22: `explain c/612/freescale/x.dtb` doubled the folder):
relative with folders, `./x`, `../x`, a bare name, an absolute path, and
`..` after a link to a folder (which the system resolves, not the text)."""
import contextlib
import json
import os
import shutil
import signal

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


# -- paths that saved documents give ------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    """A mini kernel, its saved sweep, and a FIFO outside the tree that
    would stop whoever opens it."""
    tree = make_minikernel(tmp_path / "linux")
    sweep = tmp_path / "s.json"
    assert main(["sweep", "--kernel", str(tree), "--format", "json", "-o", str(sweep)]) == 0
    os.mkfifo(tmp_path / "outside")
    return tree, sweep


def _edited(sweep, source_file):
    """The saved sweep with every SMMU written in a100.dtsi now written at source_file."""
    doc = json.loads(sweep.read_text())
    n = 0
    for soc in doc["socs"]:
        for p in soc["providers"]:
            if (p["source_file"] or "").endswith("/a100.dtsi"):
                p["source_file"] = source_file
                n += 1
    assert n
    sweep.write_text(json.dumps(doc))
    return sweep


@contextlib.contextmanager
def no_hang(seconds=20):
    def ring(*_):
        raise TimeoutError("opened a FIFO named by a saved sweep")
    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("how", ["dotdot", "absolute"])
def test_a_saved_source_file_outside_the_tree_is_refused_unopened(saved, tmp_path, capsys, how):
    tree, sweep = saved
    given = ("arch/arm64/boot/dts/acme/../../../../../outside" if how == "dotdot"
             else str(tmp_path / "outside"))
    shutil.copy(sweep, tmp_path / "good.json")
    _edited(sweep, given)
    capsys.readouterr()
    for argv in (["patch", "--sweep", str(sweep), "--kernel", str(tree),
                  "-o", str(tmp_path / "series")],
                 ["diff", str(tmp_path / "good.json"), str(sweep)], ["history", str(sweep)]):
        with no_hang():
            status = main(argv)
        out, err = capsys.readouterr()
        assert status == 2 and out == "", argv
        assert err.splitlines() == [
            f"{sweep}: error: not a valid sweep: socs[0].providers[0].source_file is not a path "
            f"inside the kernel tree: {given!r}"], argv
    assert not (tmp_path / "series").exists()


def test_a_saved_source_file_linked_out_of_the_tree_is_refused_unopened(saved, tmp_path, capsys):
    tree, sweep = saved
    link = "arch/arm64/boot/dts/acme/elsewhere.dtsi"
    os.symlink(tmp_path / "outside", os.path.join(tree, link))
    _edited(sweep, link)
    capsys.readouterr()
    with no_hang():
        status = main(["patch", "--sweep", str(sweep), "--kernel", str(tree),
                       "-o", str(tmp_path / "series")])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.splitlines() == [f"{sweep}: error: {link}: leads out of the kernel tree {tree} "
                                f"(to {tmp_path / 'outside'})"]


def test_a_source_linked_out_of_the_tree_is_left_alone(tmp_path, capsys):
    """A tree whose a100.dtsi is a link to a file elsewhere: it builds, but
    `patch` edits only files of the tree, and says so."""
    tree = make_minikernel(tmp_path / "linux")
    dtsi = os.path.join(tree, "arch/arm64/boot/dts/acme/a100.dtsi")
    shutil.move(dtsi, tmp_path / "a100.dtsi")
    os.symlink(tmp_path / "a100.dtsi", dtsi)
    assert main(["patch", "--kernel", str(tree), "-o", str(tmp_path / "series"),
                 "--from", "A U Thor <author@example.com>"]) == 0
    out, err = capsys.readouterr()
    assert "arm64-dts-acme-a200" in out and "a100" not in out
    assert (f"arch/arm64/boot/dts/acme/a100.dtsi: leads out of the kernel tree {tree} "
            f"(to {tmp_path / 'a100.dtsi'})") in err
