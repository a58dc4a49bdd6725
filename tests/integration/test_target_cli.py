"""The target kernel as a user meets it (issue 19 item 1, issue 22, issue 18
item 6): any kernel version on the command line and in saved documents,
read by one parser, refused with one line when it names no kernel."""
import json
from pathlib import Path

import pytest

from auditor.cli import main
from minikernel import make_minikernel
from snippets import compile_dts, device, smmu, soc


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def socs(out):
    doc = json.loads(out)
    return doc["target_kernel"], [(s["soc"], s["affected"]) for s in doc["socs"]]


@pytest.fixture
def rc_tree(tmp_path, isolated_cache):
    """A 7.2 tree the day the merge window closes: its Makefile says 7.3.0-rc1."""
    tree = Path(make_minikernel(tmp_path / "linux", version=(7, 3, 0)))
    makefile = tree / "Makefile"
    makefile.write_text(makefile.read_text().replace("EXTRAVERSION =", "EXTRAVERSION = -rc1"))
    return tree


NEWER = ("dtb-audit: warning: target kernel 7.3.0-rc1 is newer than the newest modelled "
         "(7.2): judged with 7.2's decisions")


def test_a_tree_newer_than_modelled_sweeps_as_the_newest_with_one_warning(rc_tree, capsys):
    status, out, err = run(capsys, "sweep", "--kernel", rc_tree, "--format", "json")
    assert status == 0, err
    target, found = socs(out)
    assert target == "7.3.0-rc1"
    assert [line for line in err.splitlines() if "warning" in line] == [NEWER]
    status, out, err = run(capsys, "sweep", "--kernel", rc_tree, "--format", "json",
                           "--target-kernel", "7.2")
    assert status == 0 and "warning: target" not in err
    assert socs(out) == ("7.2", found)
    assert ("acme,a100", True) in found          # the same affected SoCs, not none


@pytest.mark.parametrize("older", ["4.15-rc2", "5.10", "3.7"])
def test_a_target_older_than_modelled_is_certain_no_check(rc_tree, capsys, older):
    """VFIO asked nothing before v5.19: nothing is affected, the version named."""
    status, out, err = run(capsys, "sweep", "--kernel", rc_tree, "--format", "json",
                           "--target-kernel", older)
    assert status == 0, err
    doc = json.loads(out)
    assert (doc["target_kernel"], doc["rule"], doc["target_assumed"]) == (older, "no-check", False)
    assert not any(s["affected"] for s in doc["socs"])
    assert "warning: target" not in err


@pytest.mark.parametrize("text", ["6.1.-1", "6.12.x", " 6.1", "6.1." + "1" * 25, "", "99.9",
                                  "6.1\n", "v7.2 "])
def test_a_target_that_names_no_kernel_is_one_line(tmp_path, capsys, text):
    compile_dts(tmp_path, "board", soc(smmu(), device("dev@1", "")))
    status, out, err = run(capsys, "sweep", tmp_path, "--target-kernel", text)
    assert (status, out) == (2, "")
    assert len(err.splitlines()) == 1 and err.startswith("dtb-audit: error: --target-kernel: ")
    assert "usage:" not in err and "Traceback" not in err


@pytest.mark.parametrize("target, verdict", [("6.1.6", "broken"),
                                             ("6.1.7", "rescued-by-device")])
def test_6_1_7_took_the_device_fallback(tmp_path, capsys, target, verdict):
    """A dma-coherent device behind a non-coherent MMU-500: ac9c5e92dd15 reached
    6.1.y in 6.1.7 (Debian's 6.1 changelog, under ChangeLog-6.1.7)."""
    compile_dts(tmp_path, "board", soc(smmu(), device("dev@1", "dma-coherent;")))
    status, out, err = run(capsys, "sweep", tmp_path, "--target-kernel", target,
                           "--format", "jsonl")
    assert status == 0, err
    (link,) = [json.loads(line) for line in out.splitlines()]
    assert (link["rule"], link["verdict"]) == (
        "walk-only" if verdict == "broken" else "walk-or-device", verdict)


# -- saved documents: validated as the command line is -------------------------------

@pytest.fixture
def saved(tmp_path, capsys):
    """A saved sweep of a snippet, and a function writing it with another target."""
    (tmp_path / "dtbs").mkdir()
    compile_dts(tmp_path / "dtbs", "board", soc(smmu(), device("dev@1", "dma-coherent;")))
    status, out, err = run(capsys, "sweep", tmp_path / "dtbs", "--format", "json")
    assert status == 0, err
    doc = json.loads(out)

    def with_target(name, target):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(dict(doc, target_kernel=target)))
        return path
    return with_target


@pytest.mark.parametrize("target", ["99.9", "6.12.x", "", " 6.1"])
def test_diff_refuses_a_saved_target_no_kernel_has(saved, capsys, target):
    good, bad = saved("good", "7.2"), saved("bad", target)
    status, out, err = run(capsys, "diff", good, bad)
    assert (status, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert err.startswith(f"{bad}: error: not a valid sweep: sweep.target_kernel: ")


def test_patch_refuses_a_saved_target_no_kernel_has(saved, capsys, tmp_path, isolated_cache):
    tree = make_minikernel(tmp_path / "linux")
    bad = saved("bad", "99.9")
    status, out, err = run(capsys, "patch", "--sweep", bad, "--kernel", tree,
                           "-o", tmp_path / "series")
    assert (status, out) == (2, "")
    assert err == (f"{bad}: error: not a valid sweep: sweep.target_kernel: 99.9: no kernel has "
                   f"this version (majors up to 9, minors up to 30; the newest modelled is 7.2)\n")
    assert not (tmp_path / "series").exists()


@pytest.mark.parametrize("target", ["7.3-rc1", "4.15-rc2", "6.1.0-27-arm64"])
def test_diff_reads_any_kernel_version_a_sweep_can_have(saved, capsys, target):
    status, out, err = run(capsys, "diff", saved("old", "7.2"), saved("new", target))
    assert status == 0, err
