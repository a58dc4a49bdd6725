"""The patch series end to end on the mini kernel tree: which nodes, the
mbox files, `git apply --check`, `git am`, and the rebuild-and-sweep loop."""
import os
import re
import subprocess

import pytest

from auditor.cli import main
from auditor.patch import check_series, make_series, verify_series, write_series
from auditor.sweep import sweep_corpus
from corpus.build import build_corpus
from kernels.judging import Judging, Rule
from minikernel import VENDOR_DIR, dependencies, make_minikernel, smmu_line

GIT_ENV = dict(GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com",
               GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.com")


def _sweep(tree, out, rule=None):
    """(the Sweep, the build's dependencies) of a mini kernel tree."""
    corpus = build_corpus(kernel=tree, out=out)
    return sweep_corpus(corpus, Judging(rule=Rule(rule) if rule else None)), dependencies(corpus)


@pytest.fixture
def mini(tmp_path, isolated_cache):
    tree = make_minikernel(tmp_path / "linux", git=True)
    return (tree, *_sweep(tree, tmp_path / "dtbs"))


@pytest.fixture
def series(mini, tmp_path):
    tree, doc, deps = mini
    s = make_series(doc, tree, deps, author="Test <test@example.com>",
                    date="Mon, 1 Jan 2024 00:00:00 +0000")
    write_series(s, tmp_path / "out")
    return s


def test_one_patch_per_accused_dtsi(series):
    assert [p.source_file for p in series.patches] == [f"{VENDOR_DIR}/a100.dtsi",
                                                       f"{VENDOR_DIR}/a200.dtsi"]
    assert [p.subject for p in series.patches] == [
        "arm64: dts: acme: a100: mark SMMU as DMA coherent",
        "arm64: dts: acme: a200: mark SMMU as DMA coherent"]
    assert [os.path.basename(f) for f in series.files] == [
        "0000-cover-letter.patch",
        "0001-arm64-dts-acme-a100-mark-SMMU-as-DMA-coherent.patch",
        "0002-arm64-dts-acme-a200-mark-SMMU-as-DMA-coherent.patch"]


def test_board_that_removes_coherency_is_never_patched(series, mini):
    tree, _, _ = mini
    (skip,) = series.skips
    assert skip.socs == ["acme,a300"] and skip.path == "/soc/iommu@5000000"
    assert skip.where == f"{VENDOR_DIR}/a300.dtsi:{smmu_line(tree, 'a300')}"
    m = re.search(r"a300-lite\.dts:(\d+)$", skip.reason)
    lines = open(os.path.join(tree, VENDOR_DIR, "a300-lite.dts")).read().split("\n")
    assert "/delete-property/ dma-coherent;" in lines[int(m.group(1)) - 1]
    cover = " ".join(series.cover.split())          # filled paragraphs
    assert "(acme,a300," in cover and "remove its dma-coherent on purpose" in cover


def test_patch_adds_one_line_after_iommu_cells(series, mini):
    tree, _, _ = mini
    text = series.patches[0].text
    added = [l for l in text.split("\n") if l.startswith("+") and not l.startswith("+++")]
    assert added == ["+\t\t\tdma-coherent;"]
    hunk = text[text.index("@@"):].split("\n")
    assert hunk[3] == " \t\t\t#iommu-cells = <1>;" and hunk[4] == "+\t\t\tdma-coherent;"
    line = smmu_line(tree, "a100")
    assert f"@@ -{line + 2},6 +{line + 2},7 @@" in text


def test_mbox_headers_body_and_trailer(series):
    p1, p2 = (p.text for p in series.patches)
    assert p1.startswith(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: Test <test@example.com>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
        "Subject: [PATCH 1/2] arm64: dts: acme: a100: mark SMMU as DMA coherent\n\n")
    # The evidence: which masters, which bridges, which boards, and the caveat.
    assert "/soc/pcie@1f0000000/ethernet@0,0 (pci-dt-child)" in p1
    assert "PCI devices discovered behind /soc/pcie@1f0000000" in p1
    assert "Boards (2): a100-evk, a100-mini." in p1
    assert "fsl-mc objects of /soc/fsl-mc@80c000000" in p2 and "Boards (1): a200-rdb." in p2
    for text in (p1, p2):
        flat = " ".join(text.split())
        assert "IDR0.CTTW" in flat and "sdm845" in flat and "reverted" in flat
        assert "\n---\n arch/arm64/boot/dts/acme/" in text
        assert "1 file changed, 1 insertion(+)" in text
        assert re.search(r"\n-- \ndtb-audit[^\n]*\n\n\Z", text) and "Signed-off-by" not in text
        # wrapped at 75 columns, except a word longer than that (the tree's path)
        body = text.split("\n---\n")[0].split("\n")[5:]
        assert [l for l in body if len(l) > 75 and " " in l.strip()] == []


def test_cover_letter_lists_the_series_and_base_commit(series, mini):
    tree, _, _ = mini
    head = subprocess.run(["git", "-C", tree, "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    cover = series.cover
    assert "Subject: [PATCH 0/2] arm64: dts: mark SMMUs as DMA coherent\n" in cover
    assert "  arm64: dts: acme: a100: mark SMMU as DMA coherent\n" in cover
    assert " 2 files changed, 2 insertions(+)\n" in cover
    assert f"\nbase-commit: {head}\n" in cover and series.base_commit == head


def test_git_applies_and_git_am_makes_the_commits(series, mini):
    tree, _, _ = mini
    assert check_series(tree, series.files[1:]) == []
    proc = subprocess.run(["git", "-C", tree, "am", *series.files[1:]], capture_output=True,
                          text=True, env=dict(os.environ, **GIT_ENV))
    assert proc.returncode == 0, proc.stderr
    log = subprocess.run(["git", "-C", tree, "log", "--format=%s", "-2"], capture_output=True,
                         text=True, check=True).stdout.split("\n")
    assert log[:2] == [p.subject for p in reversed(series.patches)]
    # Applied once, the same patches no longer apply: the check is real.
    assert len(check_series(tree, series.files[1:])) == 2


def test_verify_loop_leaves_the_socs_unaffected(series, mini):
    tree, doc, deps = mini
    dtsi = os.path.join(tree, VENDOR_DIR, "a100.dtsi")
    original = open(dtsi).read()
    result = verify_series(series, doc, tree)
    assert result.ok, result
    assert set(result.socs) == {"acme,a100", "acme,a200"}
    for s in result.socs.values():
        assert s["before"] is True and s["after"] is False
        assert [p["coherent"] for p in s["patched"]] == [True]
    # The tree itself is untouched by the loop.
    assert open(dtsi).read() == original


def test_verify_loop_notices_a_patch_that_fixes_nothing(series, mini):
    """A series whose diff went to the wrong node: the loop says so."""
    tree, doc, deps = mini
    patch = series.files[1]
    text = open(patch).read().replace("#iommu-cells = <1>;\n+\t\t\tdma-coherent;",
                                      "#iommu-cells = <1>;\n+\t\t\tacme,not-coherent;")
    open(patch, "w").write(text)
    result = verify_series(series, doc, tree)
    assert not result.ok
    assert result.socs["acme,a100"]["after"] is True
    assert result.socs["acme,a200"]["after"] is False


def test_non_git_tree_has_no_base_commit(tmp_path, isolated_cache):
    tree = make_minikernel(tmp_path / "plain")
    doc, deps = _sweep(tree, tmp_path / "dtbs")
    s = make_series(doc, tree, deps)
    assert s.base_commit is None and "base-commit:" not in s.cover


def test_walk_only_rule_accuses_the_same_nodes(tmp_path, isolated_cache):
    tree = make_minikernel(tmp_path / "linux")
    doc, deps = _sweep(tree, tmp_path / "dtbs", "walk-only")
    assert doc.rule is Rule.WALK_ONLY
    s = make_series(doc, tree, deps)
    assert [p.source_file for p in s.patches] == [f"{VENDOR_DIR}/a100.dtsi",
                                                  f"{VENDOR_DIR}/a200.dtsi"]


def test_cli_patch_verify(tmp_path, isolated_cache, capsys):
    tree = make_minikernel(tmp_path / "linux")
    out = tmp_path / "series"
    out.mkdir()
    (out / "0009-stale.patch").write_text("last night's\n")
    status = main(["patch", "--kernel", str(tree), "-o", str(out), "--verify",
                   "--from", "Test <test@example.com>"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert sorted(os.listdir(out)) == [
        "0000-cover-letter.patch", "0001-arm64-dts-acme-a100-mark-SMMU-as-DMA-coherent.patch",
        "0002-arm64-dts-acme-a200-mark-SMMU-as-DMA-coherent.patch"]
    assert captured.out.split() == [str(out / n) for n in sorted(os.listdir(out))]
    line = smmu_line(tree, "a300")
    assert re.search(rf"^{VENDOR_DIR}/a300\.dtsi:{line}: warning: /soc/iommu@5000000 "
                     rf"\(acme,a300\) not patched: board files remove", captured.err, re.M)
    assert "acme,a100: affected -> no longer affected" in captured.err
    assert "acme,a200: affected -> no longer affected" in captured.err


def test_cli_patch_from_saved_sweep_and_nothing_to_do(tmp_path, isolated_cache, capsys):
    tree = make_minikernel(tmp_path / "linux", coherent=("a100", "a200", "a300", "a400"))
    assert main(["sweep", "--kernel", str(tree), "--format", "json",
                 "-o", str(tmp_path / "sweep.json")]) == 0
    status = main(["patch", "--sweep", str(tmp_path / "sweep.json"), "-o", str(tmp_path / "s")])
    assert status == 0
    assert "no SMMU node to patch" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_cli_patch_input_errors(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["patch", "--sweep", str(tmp_path / "bad.json"), "-o", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{tmp_path / 'bad.json'}: error: not a saved sweep (not JSON: ")
    assert err.count("\n") == 1
    assert main(["patch", "--dtbs", str(tmp_path), "-o", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err == ("dtb-audit: error: patch needs the kernel sources: give "
                                       "--kernel, --tarball or --debian, not --dtbs\n")


def test_reproducible_with_source_date_epoch_and_signoff(mini, monkeypatch):
    tree, doc, deps = mini
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1704067200")
    a = make_series(doc, tree, deps, author="Test <test@example.com>", signoff=True)
    b = make_series(doc, tree, deps, author="Test <test@example.com>", signoff=True)
    assert [p.text for p in a.patches] == [p.text for p in b.patches] and a.cover == b.cover
    assert "\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n" in a.cover
    text = a.patches[0].text
    assert "\nSigned-off-by: Test <test@example.com>\n---\n" in text
