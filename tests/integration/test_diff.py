"""`dtb-audit diff` and `history` on mini kernel trees shaped like Linux 6.1
(LS1028A- and LS1088A-like SMMUs without dma-coherent) and 6.12 (with it),
and a later tree that reverts one addition, as upstream did for sdm845."""
import dataclasses
import json

import pytest

from auditor.cli import main
from auditor.diff import diff_sweeps as diff_of, format_diff
from auditor.documents import BoardChange, History, Revision, SocLine, VersionChange
from auditor.history.stitching import of_sweeps
from auditor.history.text import format_history
from auditor.model import SweepFileError, load_sweep


def diff_sweeps(old, new):
    """The diff's JSON form (what --format json writes)."""
    return diff_of(old, new).to_json()


def history(sweeps, names=None):
    """The history of sweeps and its JSON form."""
    h = of_sweeps(sweeps, names)
    return h, h.to_json()
from auditor.sweep import sweep_corpus
from corpus.build import build_corpus
from minikernel import VENDOR_DIR, make_minikernel
from testpaths import GOLDEN

V61 = dict(version=(6, 1, 192), coherent=("a400",))
V612 = dict(version=(6, 12, 117), coherent=("a100", "a200", "a400"))
REVERTED = dict(version=(6, 13, 0), coherent=("a200", "a400"))     # a100's addition reverted


@pytest.fixture(scope="module")
def private(tmp_path_factory):
    """One folder for the module's trees, and its own cache (never the user's)."""
    base = tmp_path_factory.mktemp("diff")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("XDG_CACHE_HOME", str(base / "cache"))
        yield base


@pytest.fixture(scope="module")
def trees(private):
    return {name: make_minikernel(private / name, **kw)
            for name, kw in (("v61", V61), ("v612", V612), ("reverted", REVERTED))}


@pytest.fixture(scope="module")
def docs(trees, private):
    return {name: sweep_corpus(build_corpus(kernel=tree, out=private / f"dtbs-{name}"))
            for name, tree in trees.items()}


def save(sweep, path):
    path.write_text(json.dumps(sweep.to_json()))
    return path


def test_fixed_between_61_and_612(docs):
    d = diff_sweeps(docs["v61"], docs["v612"])
    assert [s["soc"] for s in d["socs"]["fixed"]] == ["acme,a100", "acme,a200"]
    assert d["socs"]["newly_affected"] == [] and not d["regression"]
    assert [b["dtb"] for b in d["boards"]["fixed"]] == [
        "acme/a100-evk.dtb", "acme/a100-mini.dtb", "acme/a200-rdb.dtb"]
    added = d["smmu_coherency"]["added"]
    assert [(s["soc"], s["path"]) for s in added] == [("acme,a100", "/soc/iommu@5000000"),
                                                      ("acme,a200", "/soc/iommu@5000000")]
    assert added[0]["source_file"] == f"{VENDOR_DIR}/a100.dtsi"
    assert d["smmu_coherency"]["removed"] == []
    fixed = {(l["dtb"], l["master_kind"], l["old_verdict"], l["new_verdict"])
             for l in d["links"]["fixed"]}
    assert ("acme/a200-rdb.dtb", "fsl-mc", "broken-bridge-coherent", "capable") in fixed
    # a300 stays affected and a400 stays fine: neither is mentioned.
    assert not any("a300" in l["dtb"] or "a400" in l["dtb"] for l in d["links"]["fixed"])


def test_revert_is_a_regression(docs):
    diff = diff_of(docs["v612"], docs["reverted"])
    d = diff.to_json()
    assert d["regression"]
    assert [s["soc"] for s in d["socs"]["newly_affected"]] == ["acme,a100"]
    assert [b["dtb"] for b in d["boards"]["newly_affected"]] == ["acme/a100-evk.dtb",
                                                                 "acme/a100-mini.dtb"]
    assert {(l["master_kind"], l["old_verdict"], l["new_verdict"])
            for l in d["links"]["newly_affected"]} == {
        ("pci-discovered", "capable", "broken-bridge-coherent")}
    assert [s["soc"] for s in d["smmu_coherency"]["removed"]] == ["acme,a100"]
    text = format_diff(diff)
    assert "SoCs newly affected (1):\n  acme,a100: 2 of 2 boards\n" in text
    assert "SMMUs no longer dma-coherent (1):\n  acme,a100: /soc/iommu@5000000" in text


def test_same_tree_no_change(docs):
    d = diff_sweeps(docs["v61"], docs["v61"])
    assert not d["regression"]
    assert all(not rows for part in ("socs", "boards", "links", "smmu_coherency")
               for rows in d[part].values())


def test_new_affected_board_counts_as_new(docs):
    old = docs["v612"]
    old = dataclasses.replace(
        old, socs=tuple(dataclasses.replace(s, boards=tuple(b for b in s.boards if "mini" not in b))
                        for s in old.socs),
        links=tuple(l for l in old.links if "mini" not in l.dtb))
    d = diff_sweeps(old, docs["reverted"])
    assert [(b["dtb"], b["new_board"]) for b in d["boards"]["newly_affected"]] == [
        ("acme/a100-evk.dtb", False), ("acme/a100-mini.dtb", True)]


def test_history_rows(docs):
    history_, h = history([docs["v61"], docs["v612"], docs["reverted"]])
    rows = {r["soc"]: r for r in h["socs"]}
    assert set(rows) == {"acme,a100", "acme,a200", "acme,a300", "acme,a400"}
    assert rows["acme,a100"]["verdicts"] == ["affected", "unaffected", "affected"]
    assert rows["acme,a100"]["smmu"] == ["non-coherent", "coherent", "non-coherent"]
    v612 = "linux-6.12.117 (%s)" % docs["v612"].corpus.kernel_dir
    reverted = "linux-6.13.0 (%s)" % docs["reverted"].corpus.kernel_dir
    assert h["versions"] == ["linux-6.1.192 (%s)" % docs["v61"].corpus.kernel_dir, v612, reverted]
    assert h["target_kernels"] == ["6.1.192", "6.12.117", "6.13.0"]
    assert [(c["version"], c["what"], c["old"], c["new"]) for c in rows["acme,a100"]["changes"]] == [
        (v612, "smmu", "non-coherent", "coherent"), (v612, "verdict", "affected", "unaffected"),
        (reverted, "smmu", "coherent", "non-coherent"), (reverted, "verdict", "unaffected", "affected")]
    assert rows["acme,a200"]["verdicts"] == ["affected", "unaffected", "unaffected"]
    assert rows["acme,a300"]["changes"] == [] and rows["acme,a400"]["smmu"] == ["coherent"] * 3
    lines = format_history(history_).split("\n")
    assert lines[0].split() == ["SoC", "linux-6.1.192", "linux-6.12.117", "linux-6.13.0", "SMMU"]
    (a100,) = [l for l in lines if l.startswith("acme,a100 ")]
    assert a100.split() == ["acme,a100", "affected", "unaffected", "affected", "coherent", "from",
                            "linux-6.12.117;", "non-coherent", "from", "linux-6.13.0"]
    (a400,) = [l for l in lines if l.startswith("acme,a400 ")]
    assert a400.split()[-2:] == ["coherent", "throughout"]
    changed = format_history(history_, changed_only=True).split("\n")
    assert not any(line.startswith("acme,a400") for line in changed)


def test_cli_diff_saved_sweeps_and_fail_on_new(docs, tmp_path, capsys):
    paths = {name: save(doc, tmp_path / f"{name}.json") for name, doc in docs.items()}
    assert main(["diff", str(paths["v61"]), str(paths["v612"]), "--fail-on-new"]) == 0
    out = capsys.readouterr().out
    assert "SoCs no longer affected (2):\n  acme,a100: 2 affected boards -> 0\n" in out
    assert main(["diff", str(paths["v612"]), str(paths["reverted"]), "--fail-on-new",
                 "--format", "json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["regression"] is True
    assert [s["soc"] for s in d["socs"]["newly_affected"]] == ["acme,a100"]
    # Without --fail-on-new a regression is reported, not an exit status.
    assert main(["diff", str(paths["v612"]), str(paths["reverted"])]) == 0


def test_cli_diff_corpora_directly(trees, capsys):
    assert main(["diff", str(trees["v61"]), str(trees["v612"]), "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [s["soc"] for s in d["socs"]["fixed"]] == ["acme,a100", "acme,a200"]


def test_cli_history_goes_on_past_a_bad_corpus(docs, tmp_path, capsys):
    good = save(docs["v61"], tmp_path / "v61.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"tool": "something-else"}))
    assert main(["history", str(good), str(bad), str(tmp_path / "missing")]) == 1
    captured = capsys.readouterr()
    assert f"{bad}: error: not a dtb-audit sweep" in captured.err
    assert f"{tmp_path / 'missing'}: error: no such file or folder" in captured.err
    assert "acme,a100" in captured.out


def test_cli_diff_warns_about_different_rules(docs, trees, tmp_path, capsys):
    old = save(docs["v61"], tmp_path / "old.json")
    assert main(["diff", str(old), str(trees["v61"]), "--rule", "legacy-true"]) == 0
    captured = capsys.readouterr()
    assert "warning: the sweeps use different rules (walk-or-device" in captured.err
    # Under legacy-true nothing is affected: every SoC reads as fixed.
    assert "SoCs no longer affected (3)" in captured.out


def test_load_sweep_rejects_other_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("[1, 2]")
    with pytest.raises(SweepFileError) as why:
        load_sweep(str(path))
    assert str(why.value) == (f"{path}: error: not a dtb-audit sweep (the JSON is a list, "
                              f"not an object)")


# -- history and diff of saved sweeps (no tree built) ---------------------------------------



@pytest.fixture(scope="module")
def saved():
    return load_sweep(GOLDEN / "snippets/sweep.json")


def _soc(sweep, name):
    (s,) = [s for s in sweep.socs if s.soc == name]
    return s


def _with_socs(sweep, *socs):
    return dataclasses.replace(sweep, socs=tuple(socs))


def test_history_rows_order_and_socs_without_a_name(saved):
    """Changed SoCs first, then the ones ever affected, then by name; a SoC
    of no name (no root compatible) sorts as the empty name and reads "?"."""
    plat, fine = _soc(saved, "acme,plat"), _soc(saved, "acme,fine")
    nameless = dataclasses.replace(plat, soc=None)
    upper = dataclasses.replace(fine, soc="Acme,fine")
    first = _with_socs(saved, nameless, upper, plat)
    second = _with_socs(saved, nameless, dataclasses.replace(upper, affected=True), plat)
    history_, h = history([first, second], ["one", "two"])
    assert [r["soc"] for r in h["socs"]] == ["Acme,fine", None, "acme,plat"]
    assert h["socs"][0]["changes"] == [
        {"version": "two", "what": "verdict", "old": "unaffected", "new": "affected"}]
    lines = format_history(history_).split("\n")
    assert lines[2].split() == ["?", "affected", "affected", "non-coherent", "throughout"]
    assert lines[0].startswith("SoC        one")


def test_history_smmu_mixed_and_absent(saved):
    plat = _soc(saved, "acme,plat")
    (p,) = plat.providers
    mixed = dataclasses.replace(plat, providers=(p, dataclasses.replace(p, path="/soc/x",
                                                                        coherent=True)))
    coherent = dataclasses.replace(plat, providers=(dataclasses.replace(p, coherent=True),))
    history_, h = history([_with_socs(saved, mixed), _with_socs(saved),
                           _with_socs(saved, coherent)], ["a", "b", "c"])
    (row,) = h["socs"]
    assert row["smmu"] == ["mixed", None, "coherent"]
    assert row["verdicts"] == ["affected", None, "affected"]
    # Absent in between: nothing to compare across the gap, and no "throughout".
    assert row["changes"] == []
    assert format_history(history_).split("\n")[1].split() == [
        "acme,plat", "affected", "-", "affected", "-"]


def test_history_soc_without_smmu_is_left_out(saved):
    rk = _soc(saved, "acme,rk")
    assert rk.providers == ()
    assert history([_with_socs(saved, rk)])[1]["socs"] == []


def test_history_short_names():
    h = History((Revision("linux-6.1.192 (debian linux-source-6.1)", None),
                 Revision("linux-6.12.117 (x y)", None)),
                (SocLine("a", (VersionChange("linux-6.12.117 (x y)", "smmu", "non-coherent",
                                             "coherent"),),
                         ("affected", "unaffected"), ("non-coherent", "coherent")),))
    assert format_history(h) == (
        "SoC  linux-6.1.192  linux-6.12.117  SMMU\n"
        "a    affected       unaffected      coherent from linux-6.12.117\n")


def test_a_short_name_ends_at_the_first_parenthesis_and_is_escaped():
    h = History((Revision("linux-7.2.13 (/src/linux (copy))", None),
                 Revision("DTBs in /srv/dtbs\x1b[m", None)),
                (SocLine("a", (), ("affected", "affected"), ("non-coherent", "non-coherent")),))
    header = format_history(h).split("\n")[0].split("  ")
    assert [c.strip() for c in header if c.strip()] == [
        "SoC", "linux-7.2.13", "DTBs in /srv/dtbs\\x1b[m", "SMMU"]


@pytest.mark.parametrize("count, shown_rows, more", [
    (40, 40, None), (41, 40, "  ... and 1 more (--format json lists all)")])
def test_format_diff_shows_at_most_40_rows_a_section(saved, count, shown_rows, more):
    same = diff_of(saved, saved)
    d = dataclasses.replace(same, boards=same.boards._replace(newly_affected=tuple(
        BoardChange(f"b{k:02}.dtb", "s", False) for k in range(count))))
    lines = format_diff(d).split("\n")
    start = lines.index(f"Boards newly affected ({count}):")
    rows = lines[start + 1:start + 1 + shown_rows]
    assert rows == [f"  b{k:02}.dtb" for k in range(shown_rows)]
    assert lines[start + 1 + shown_rows] == (more or "")
    assert len(format_diff(d, most=2).split("\n")) == len(lines) - shown_rows + 2 + (more is None)


def test_diff_orders_socs_by_name_nameless_first(saved):
    plat = _soc(saved, "acme,plat")
    fine = _soc(saved, "acme,fine")           # not affected
    names = (None, "Acme,x", "acme,y")
    old = _with_socs(saved, *(dataclasses.replace(fine, soc=n) for n in names))
    new = _with_socs(saved, *(dataclasses.replace(plat, soc=n) for n in names))
    d = diff_sweeps(old, new)
    assert [s["soc"] for s in d["socs"]["newly_affected"]] == [None, "Acme,x", "acme,y"]
    back = diff_sweeps(new, old)
    assert [s["soc"] for s in back["socs"]["fixed"]] == [None, "Acme,x", "acme,y"]
    gone = diff_sweeps(new, _with_socs(saved))
    assert [s["soc"] for s in gone["socs"]["gone"]] == [None, "Acme,x", "acme,y"]
