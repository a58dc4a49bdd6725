"""The patch series' smaller promises, each checked exactly: the verify
loop's report and its verdict, a patch the copy refuses, where the loop
works, `git apply --check` inside another repository, what `run` says, and
the mbox pieces (subject, file name, date, author, diffstat, the commit
message and the cover letter, compared whole)."""
import dataclasses
import datetime
import email.utils
import importlib.metadata
import io
import os
import subprocess
import time
from types import SimpleNamespace as NS

import pytest

from auditor.patch import Verification, check_series, format_verification, make_series, run, \
    verify_series, write_series
from auditor.patch.candidates import Candidate, Skip, candidates, soc_names
from auditor.patch.dts import PatchError, add_dma_coherent, written_as
from auditor.patch.series import (Patch, Series, _author, _body, _cover, _date, _diff, _diffstat,
                                  _fixes_tags, _listing, _masters, _slug, _subject,
                                  _vendor)
from auditor.patch.verify import _glob_escape
from auditor.sweep import sweep_corpus
from corpus.build import build_corpus
from minikernel import VENDOR_DIR, dependencies, make_minikernel, smmu_line

AUTHOR = "Test <test@example.com>"
DATE = "Mon, 1 Jan 2024 00:00:00 +0000"
A100 = f"{VENDOR_DIR}/a100.dtsi"
SMMU = "/soc/iommu@5000000"


@pytest.fixture
def mini(tmp_path, isolated_cache):
    """(tree, Sweep, dependencies) of the mini kernel tree (not a git checkout)."""
    tree = make_minikernel(tmp_path / "linux")
    corpus = build_corpus(kernel=tree, out=tmp_path / "dtbs")
    return tree, sweep_corpus(corpus), dependencies(corpus)


def _written(mini, out):
    tree, sweep, deps = mini
    series = make_series(sweep, tree, deps, author=AUTHOR, date=DATE)
    write_series(series, out)
    return series


# -- verify.py --------------------------------------------------------------------------

def _soc(before, after, patched=(), others=()):
    return {"before": before, "after": after,
            "patched": [{"path": p, "coherent": c, "affected": a} for p, c, a in patched],
            "others": list(others)}


def test_format_verification_one_line_per_soc_and_per_problem():
    v = Verification(
        {"acme,a100": _soc(True, False, [(SMMU, True, False)]),
         "acme,a200": _soc(True, True, [("/soc/iommu@1", False, False),
                                        ("/soc/iommu@2", True, True),
                                        ("/soc/iommu@3", True, False)],
                           ["/soc/iommu@9", "/soc/iommu@8"]),
         "acme,a300": _soc(False, None),
         "acme,a400": _soc(False, False, others=["/soc/iommu@7"])},
        [("out/0001-a.patch", "error: patch failed: a.dtsi:3\nerror: a.dtsi: patch does not "
                              "apply"), ("out/0002-b.patch", "")],
        [("acme/a100-evk.dtb", "syntax error")])
    assert format_verification(v) == (
        "out/0001-a.patch: error: does not apply: error: patch failed: a.dtsi:3\n"
        "out/0002-b.patch: error: does not apply: \n"
        "acme/a100-evk.dtb: error: syntax error\n"
        "acme,a100: affected -> no longer affected\n"
        "acme,a200: affected -> still affected; patched SMMU not fixed: /soc/iommu@1, "
        "/soc/iommu@2; through SMMUs the series leaves alone: /soc/iommu@9, /soc/iommu@8\n"
        "acme,a300: unaffected -> not rebuilt\n"
        "acme,a400: unaffected -> no longer affected; through SMMUs the series leaves alone: "
        "/soc/iommu@7\n")
    assert format_verification(Verification({}, [], [])) == ""


@pytest.mark.parametrize("socs,not_applied,failed,ok", [
    ({}, [], [], True),
    ({"a": _soc(True, False, [(SMMU, True, False)], ["/other"])}, [], [], True),
    ({"a": _soc(True, True, [(SMMU, True, False)], ["/other"])}, [], [], True),
    ({"a": _soc(True, False, [(SMMU, True, False)])}, [("p", "m")], [], False),
    ({"a": _soc(True, False, [(SMMU, True, False)])}, [], [("d.dtb", "m")], False),
    ({"a": _soc(True, None, [])}, [], [], False),
    ({"a": _soc(True, False, [(SMMU, False, False)])}, [], [], False),
    ({"a": _soc(True, False, [(SMMU, True, True)])}, [], [], False),
    ({"a": _soc(True, False, [(SMMU, True, False)]),
      "b": _soc(True, False, [(SMMU, True, False), ("/s2", True, True)])}, [], [], False),
])
def test_verification_ok(socs, not_applied, failed, ok):
    assert Verification(socs, not_applied, failed).ok is ok


def test_glob_escape():
    assert _glob_escape("acme/a*b?c[d].dtb") == "acme/a[*]b[?]c[[]d].dtb"
    assert _glob_escape("acme/a100-evk.dtb") == "acme/a100-evk.dtb"


def test_verify_refuses_a_series_not_written(mini):
    tree, sweep, deps = mini
    series = make_series(sweep, tree, deps, author=AUTHOR, date=DATE)
    with pytest.raises(ValueError) as raised:
        verify_series(series, sweep, tree)
    assert str(raised.value) == "verify_series: write the series first (write_series)"


def test_verify_works_in_the_folder_given(mini, tmp_path):
    tree, sweep, _ = mini
    series = _written(mini, tmp_path / "out")
    work = tmp_path / "work"
    work.mkdir()
    result = verify_series(series, sweep, tree, work=str(work))
    assert result.ok
    assert sorted(os.listdir(work)) == ["dtbs", "tree"]
    # The copy is patched, the boards of the touched SoCs only are rebuilt.
    assert "\t\t\tdma-coherent;\n" in (work / "tree" / A100).read_text()
    built = sorted(p.name for p in (work / "dtbs").rglob("*.dtb"))
    assert built == ["a100-evk.dtb", "a100-mini.dtb", "a200-rdb.dtb"]
    assert result.socs == {
        "acme,a100": {"before": True, "after": False,
                      "patched": [{"path": SMMU, "coherent": True, "affected": False}],
                      "others": []},
        "acme,a200": {"before": True, "after": False,
                      "patched": [{"path": SMMU, "coherent": True, "affected": False}],
                      "others": []}}
    assert result.not_applied == [] and result.failed_builds == []


def test_verify_names_a_patch_the_copy_refuses(mini, tmp_path):
    tree, sweep, _ = mini
    series = _written(mini, tmp_path / "out")
    # The tree changed under the series: a100's patch no longer applies.
    dtsi = os.path.join(tree, A100)
    text = open(dtsi).read()
    open(dtsi, "w").write(text.replace("\t\t\t#iommu-cells = <1>;\n", "\t\t\t#iommu-cells = <2>;\n"))
    line = smmu_line(tree, "a100")
    result = verify_series(series, sweep, tree)
    assert result.not_applied == [(series.files[1],
                                   f"error: patch failed: {A100}:{line + 2}\n"
                                   f"error: {A100}: patch does not apply")]
    assert result.failed_builds == []
    assert result.socs["acme,a100"] == {
        "before": True, "after": True,
        "patched": [{"path": SMMU, "coherent": False, "affected": True}], "others": []}
    assert result.socs["acme,a200"]["after"] is False
    assert not result.ok


def test_check_series_inside_another_repository(tmp_path):
    # The tree is a plain folder inside someone's git checkout: git must
    # check the patch against the tree, not skip it as outside the checkout.
    outer = tmp_path / "home"
    tree = outer / "src" / "linux"
    tree.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(outer)], check=True)
    (tree / "a.dtsi").write_text("one\ntwo\nthree\n")
    patch = tmp_path / "0001-x.patch"
    patch.write_text("diff --git a/a.dtsi b/a.dtsi\n--- a/a.dtsi\n+++ b/a.dtsi\n"
                     "@@ -1,3 +1,4 @@\n one\n-zwei\n+two\n+2\n three\n")
    assert check_series(str(tree), [str(patch)]) == [
        (str(patch), "error: patch failed: a.dtsi:1\nerror: a.dtsi: patch does not apply")]
    good = tmp_path / "0002-y.patch"
    good.write_text("diff --git a/a.dtsi b/a.dtsi\n--- a/a.dtsi\n+++ b/a.dtsi\n"
                    "@@ -1,3 +1,4 @@\n one\n two\n+2\n three\n")
    assert check_series(str(tree), [str(good)]) == []


def test_verify_judges_under_the_sweeps_rule(mini, tmp_path):
    tree, sweep, _ = mini
    series = _written(mini, tmp_path / "out")
    dtsi = os.path.join(tree, A100)
    text = open(dtsi).read()
    open(dtsi, "w").write(text.replace("\t\t\t#iommu-cells = <1>;\n", "\t\t\t#iommu-cells = <2>;\n"))
    # a100 stays unpatched; under the rule of a kernel that checks nothing it
    # is not affected, whatever the tree's own version (6.1.192) says.
    result = verify_series(series, dataclasses.replace(sweep, rule="no-check"), tree)
    assert {soc: s["after"] for soc, s in result.socs.items()} == {"acme,a100": False,
                                                                   "acme,a200": False}


def test_verify_a_soc_whose_boards_no_longer_build(mini, tmp_path):
    tree, sweep, _ = mini
    series = _written(mini, tmp_path / "out")
    # Far from the hunk: the patch applies, the boards of a100 do not build.
    with open(os.path.join(tree, A100), "a") as f:
        f.write("\nthis is not a device tree\n")
    result = verify_series(series, sweep, tree)
    assert result.not_applied == []
    assert [dtb for dtb, _ in result.failed_builds] == ["acme/a100-evk.dtb", "acme/a100-mini.dtb"]
    assert result.socs["acme,a100"] == {"before": True, "after": None, "patched": [],
                                        "others": []}
    assert result.socs["acme,a200"]["after"] is False
    assert not result.ok


# -- run (`dtb-audit patch` after its arguments) ----------------------------------------

def test_run_writes_the_series_and_says_what_it_left_alone(mini, tmp_path):
    tree, sweep, deps = mini
    out, err = io.StringIO(), io.StringIO()
    folder = tmp_path / "out"
    assert run(sweep, tree, str(folder), deps, author=AUTHOR, recipients=False, signoff=True, out=out,
               err=err) == 0
    names = ["0000-cover-letter.patch", "0001-arm64-dts-acme-a100-mark-SMMU-as-DMA-coherent.patch",
             "0002-arm64-dts-acme-a200-mark-SMMU-as-DMA-coherent.patch"]
    assert out.getvalue() == "".join(f"{folder / n}\n" for n in names)
    line = smmu_line(tree, "a300")
    lite = open(os.path.join(tree, VENDOR_DIR, "a300-lite.dts")).read().split("\n")
    removal = 1 + next(k for k, t in enumerate(lite) if "/delete-property/ dma-coherent" in t)
    # Not verified unless asked: the skip is all that is said.
    assert err.getvalue() == (
        f"{VENDOR_DIR}/a300.dtsi:{line}: warning: {SMMU} (acme,a300) not patched: board "
        f"files remove its dma-coherent on purpose: {VENDOR_DIR}/a300-lite.dts:{removal}\n")
    text = (folder / names[1]).read_text()
    assert f"\nFrom: {AUTHOR}\n" in text and f"\nSigned-off-by: {AUTHOR}\n---\n" in text
    # No sign-off unless asked.
    assert run(sweep, tree, str(folder), deps, author=AUTHOR, recipients=False, out=io.StringIO(),
               err=io.StringIO()) == 0
    assert "Signed-off-by:" not in (folder / names[1]).read_text()


def test_run_a_patch_git_apply_refuses(mini, tmp_path):
    tree, sweep, deps = mini
    # a100.dtsi is a symbolic link: git apply will not patch through it.
    dtsi = os.path.join(tree, A100)
    os.rename(dtsi, tmp_path / "a100-elsewhere.dtsi")
    os.symlink(tmp_path / "a100-elsewhere.dtsi", dtsi)
    out, err = io.StringIO(), io.StringIO()
    folder = tmp_path / "out"
    assert run(sweep, tree, str(folder), deps, verify=True, author=AUTHOR, recipients=False, out=out,
               err=err) == 1
    patch = folder / "0001-arm64-dts-acme-a100-mark-SMMU-as-DMA-coherent.patch"
    # Only the refusal after the skip; nothing verified.
    assert err.getvalue().split("\n")[1:] == [
        f"{patch}: error: git apply --check: error: {A100}: wrong type", ""]
    assert len(out.getvalue().split()) == 3


def test_run_with_nothing_it_can_patch(mini, tmp_path):
    tree, sweep, deps = mini
    # A sweep of DTBs without source positions: the SMMU of three SoCs.
    socs = tuple(dataclasses.replace(s, providers=tuple(
        dataclasses.replace(p, source_file=None, source_line=None) for p in s.providers))
        for s in sweep.socs)
    bare = dataclasses.replace(sweep, socs=socs)
    out, err = io.StringIO(), io.StringIO()
    assert run(bare, tree, str(tmp_path / "out"), deps, out=out, err=err) == 0
    assert out.getvalue() == ""
    assert err.getvalue() == (
        f"{SMMU}: warning: {SMMU} (acme,a100, acme,a200, acme,a300) not patched: no source position "
        f"(the corpus was not built from a kernel tree)\n"
        "dtb-audit: no SMMU node to patch\n")
    assert not (tmp_path / "out").exists()


# -- series.py: the pieces of a message ---------------------------------------------------

@pytest.mark.parametrize("source_file,vendor", [
    ("arch/arm64/boot/dts/freescale/fsl-ls1028a.dtsi", "freescale"),
    ("arch/arm64/boot/dts/freescale/sub/x.dtsi", "freescale"),
    ("arch/arm64/boot/dts/x.dtsi", "dts"),
    ("src/arm64/freescale/fsl-ls1028a.dtsi", "freescale"),   # devicetree-rebasing
    ("a/b/c/d/x.dtsi", "d"),
    ("acme/x.dtsi", "acme"),
    ("x.dtsi", "dts"),
])
def test_vendor(source_file, vendor):
    assert _vendor(source_file) == vendor


def _candidate(source_file, line, *socs):
    return Candidate(source_file, line, f"/soc/iommu@{line}", None, ("arm,mmu-500",), "arm-smmu",
                     set(socs))


def test_subject_names_up_to_three_socs_else_the_file():
    f = "arch/arm64/boot/dts/freescale/fsl-ls1028a.dtsi"
    assert _subject(f, [_candidate(f, 1, "fsl,ls1028a")]) == \
        "arm64: dts: freescale: ls1028a: mark SMMU as DMA coherent"
    assert _subject(f, [_candidate(f, 1, "fsl,ls1028a", "fsl,ls1027a"),
                        _candidate(f, 9, "vendor,sub,x")]) == \
        "arm64: dts: freescale: ls1027a/ls1028a/sub,x: mark SMMUs as DMA coherent"
    assert _subject(f, [_candidate(f, 1, "fsl,a", "fsl,b", "fsl,c", "fsl,d")]) == \
        "arm64: dts: freescale: fsl-ls1028a: mark SMMU as DMA coherent"
    assert _subject("x.dtsi", [_candidate("x.dtsi", 1, "plain")]) == \
        "arm64: dts: dts: plain: mark SMMU as DMA coherent"


def test_fixes_tags_once_per_commit_twelve_characters():
    f = "arch/arm64/boot/dts/acme/a100.dtsi"
    kept = [_candidate(f, 10, "acme,a"), _candidate(f, 20, "acme,a"), _candidate(f, 30, "acme,a")]
    blame = {10: ("0123456789abcdef0123456789abcdef01234567", "arm64: dts: add a"),
             20: None,
             30: ("0123456789abcdef0123456789abcdef01234567", "arm64: dts: add a")}
    assert _fixes_tags(kept, lambda file, line: blame[line]) == \
        'Fixes: 0123456789ab ("arm64: dts: add a")\n'
    blame[20] = ("fedcba9876543210fedcba9876543210fedcba98", "arm64: dts: b")
    assert _fixes_tags(kept, lambda file, line: blame[line]) == (
        'Fixes: 0123456789ab ("arm64: dts: add a")\nFixes: fedcba987654 ("arm64: dts: b")\n')
    assert _fixes_tags(kept, None) == ""


def _git_config_isolated(monkeypatch, tmp_path):
    """No user or system git configuration: only the tree's own counts."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                 "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(name, raising=False)


def test_author_from_the_trees_git_configuration(monkeypatch, tmp_path):
    _git_config_isolated(monkeypatch, tmp_path)
    tree = tmp_path / "linux"
    tree.mkdir()
    assert _author(str(tree)) == "dtb-audit <dtb-audit@invalid>"
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    subprocess.run(["git", "-C", str(tree), "config", "user.name", "Ann Maintainer"], check=True)
    assert _author(str(tree)) == "dtb-audit <dtb-audit@invalid>"
    subprocess.run(["git", "-C", str(tree), "config", "user.email", "ann@example.org"],
                   check=True)
    assert _author(str(tree)) == "Ann Maintainer <ann@example.org>"
    subprocess.run(["git", "-C", str(tree), "config", "--unset", "user.name"], check=True)
    assert _author(str(tree)) == "dtb-audit <dtb-audit@invalid>"


@pytest.mark.parametrize("epoch,date", [
    (1704067200, "Mon, 1 Jan 2024 00:00:00 +0000"),
    (1706922245, "Sat, 3 Feb 2024 01:04:05 +0000"),
    (1709251199, "Thu, 29 Feb 2024 23:59:59 +0000"),
    (1710720000, "Mon, 18 Mar 2024 00:00:00 +0000"),
    (1713398400, "Thu, 18 Apr 2024 00:00:00 +0000"),
    (1715990400, "Sat, 18 May 2024 00:00:00 +0000"),
    (1718668800, "Tue, 18 Jun 2024 00:00:00 +0000"),
    (1721260800, "Thu, 18 Jul 2024 00:00:00 +0000"),
    (1723939200, "Sun, 18 Aug 2024 00:00:00 +0000"),
    (1726617600, "Wed, 18 Sep 2024 00:00:00 +0000"),
    (1729209600, "Fri, 18 Oct 2024 00:00:00 +0000"),
    (1731888000, "Mon, 18 Nov 2024 00:00:00 +0000"),
    (1734480000, "Wed, 18 Dec 2024 00:00:00 +0000"),
    (1734566400, "Thu, 19 Dec 2024 00:00:00 +0000"),
    (1734652800, "Fri, 20 Dec 2024 00:00:00 +0000"),
    (1734739200, "Sat, 21 Dec 2024 00:00:00 +0000"),
    (1734825600, "Sun, 22 Dec 2024 00:00:00 +0000"),
    (1734912000, "Mon, 23 Dec 2024 00:00:00 +0000"),
    (1734998400, "Tue, 24 Dec 2024 00:00:00 +0000"),
])
def test_date_from_source_date_epoch_as_git_writes_it(monkeypatch, epoch, date):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(epoch))
    assert _date() == date


def test_date_now_in_the_local_time_zone(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        date = _date()
        after = datetime.datetime.now(datetime.timezone.utc)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert date.endswith(" +0530")
    assert before <= email.utils.parsedate_to_datetime(date) <= after
    # The names git uses, in English, whatever the locale.
    when = email.utils.parsedate_to_datetime(date)
    assert date == (f"{'Mon Tue Wed Thu Fri Sat Sun'.split()[when.weekday()]}, {when.day} "
                    f"{'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split()[when.month - 1]} "
                    f"{when:%Y %H:%M:%S} +0530")


def test_write_series_bytes_and_errors(tmp_path):
    series = Series([], [], "cover \udcff\r\nline\n", None)
    assert write_series(series, str(tmp_path / "out")) == [str(tmp_path / "out" /
                                                                "0000-cover-letter.patch")]
    # Written as read: undecodable bytes and line ends kept.
    assert (tmp_path / "out" / "0000-cover-letter.patch").read_bytes() == \
        b"cover \xff\r\nline\n"
    (tmp_path / "file").write_text("")
    with pytest.raises(PatchError) as raised:
        write_series(series, str(tmp_path / "file"))
    assert str(raised.value) == f"{tmp_path / 'file'}: error: cannot make the folder: File exists"
    (tmp_path / "taken" / "0000-cover-letter.patch").mkdir(parents=True)
    with pytest.raises(PatchError) as raised:
        write_series(series, str(tmp_path / "taken"))
    assert str(raised.value) == \
        f"{tmp_path / 'taken' / '0000-cover-letter.patch'}: error: cannot write: Is a directory"


# -- series.py: the commit message and the cover letter, compared whole ---------------------
# (made once by _body and _cover, read by eye, then pinned)

def _link(verdict, path, kind="platform", bridge=None, dtb="freescale/a.dtb"):
    return NS(verdict=verdict, master_path=path, master_kind=kind, bridge_path=bridge, dtb=dtb)


SWEEP_61 = NS(rule="walk-or-device", target_kernel="6.1.192",
              corpus=NS(identity="Debian linux-source-6.1 6.1.192-1"))
SWEEP_WALK = NS(rule="walk-only", target_kernel="6.1.0", corpus=NS(identity=None))
LS1028A = Candidate(
    "arch/arm64/boot/dts/freescale/fsl-ls1028a.dtsi", 100, "/soc/iommu@5000000", "smmu",
    ("arm,mmu-500", "arm,smmu"), "arm-smmu", {"fsl,ls1028a"},
    [_link("rescued-by-device", "/soc/pcie@1f0000000/ethernet@0,0", "pci-dt-child"),
     _link("rescued-by-device", "/soc/pcie@1f0000000/ethernet@0,0", "pci-dt-child",
           dtb="freescale/b.dtb"),
     _link("rescued-by-device", "/soc/a-usb@3100000"),
     _link("broken-bridge-coherent", "/soc/pcie@1f0000000", "pci-discovered",
           "/soc/pcie@1f0000000"),
     _link("broken-bridge-coherent", "/soc/fsl-mc@80c000000", "fsl-mc", "/soc/fsl-mc@80c000000"),
     _link("broken-bridge-coherent", "/soc/x@1", "platform", None),
     _link("broken", "/soc/sata@3200000")],
    [_link("broken", f"/soc/dma@{k}", "platform") for k in range(8)])
MANY = [_link("rescued-by-device", f"/soc/m@{k:02d}") for k in range(14)]
ACME = [Candidate("arch/arm64/boot/dts/acme/a.dtsi", 5, "/soc/iommu@1", None, (), "arm-smmu-v3",
                  {"acme,a"}, MANY[:1]),
        Candidate("arch/arm64/boot/dts/acme/a.dtsi", 9, "/soc/iommu@2", "smmu2", ("arm,mmu-500",),
                  "arm-smmu", {"acme,a"}, MANY, []),
        Candidate("arch/arm64/boot/dts/acme/a.dtsi", 12, "/soc/iommu@3", None, (), "", {"acme,a"},
                  MANY[:1])]
VERSION = importlib.metadata.version("dtb-audit")

# The last paragraph of every one-patch commit message below.
CONFIRM_THIS_PATCH = """\
The device tree overrides what the SMMU reports about its page-table
walk, so this is a hypothesis until confirmed on hardware: read back
IDR0.CTTW (coherent translation table walk) on every board and firmware
concerned before sending this patch. Upstream added dma-coherent to the
sdm845 apps SMMU in 2024 and reverted it in 2025 (CVE-2025-22012)
because not every board's firmware agreed.
"""


ONE = """\
The arm,mmu-500 SMMU /soc/iommu@5000000 (smmu) has no dma-coherent
property, so of_dma_is_coherent() is false for it and arm-smmu takes its
page-table walk to be non-coherent. Since v6.2 (and 6.1.y)
arm_smmu_capable() then reports IOMMU_CAP_CACHE_COHERENCY only for
masters that are DMA coherent themselves, and at v6.1 for none, so VFIO
and iommufd refuse the other devices.

Masters behind it are DMA coherent while the SMMU is not
(rescued-by-device):
  - /soc/pcie@1f0000000/ethernet@0,0 (pci-dt-child)
  - /soc/a-usb@3100000 (platform)

Masters behind it that VFIO refuses while the bus above them is
dma-coherent (broken-bridge-coherent):
  - fsl-mc objects of /soc/fsl-mc@80c000000 (DPRC, DPNI, ...)
  - PCI devices discovered behind /soc/pcie@1f0000000 (no DT node)
  - /soc/x@1 (platform) below its bus

But these masters behind it are not DMA coherent themselves, and a
coherent SMMU in front of non-coherent masters is unusual: check them
too:
  - /soc/dma@0 (platform)
  - /soc/dma@1 (platform)
  - /soc/dma@2 (platform)
  - /soc/dma@3 (platform)
  - /soc/dma@4 (platform)
  - /soc/dma@5 (platform)
  - and 2 more

Boards (2): a, b.

Found by dtb-audit (rule walk-or-device, target 6.1.192) over Debian
linux-source-6.1 6.1.192-1.

""" + CONFIRM_THIS_PATCH


THREE = """\
The SMMU /soc/iommu@1, arm,mmu-500 SMMU /soc/iommu@2 (smmu2) and the
SMMU /soc/iommu@3 have no dma-coherent property, so of_dma_is_coherent()
is false for them and arm-smmu and arm-smmu-v3 take their page-table
walks to be non-coherent. Since v6.2 (and 6.1.y) arm_smmu_capable() then
reports IOMMU_CAP_CACHE_COHERENCY only for masters that are DMA coherent
themselves, and at v6.1 for none, so VFIO and iommufd refuse the other
devices. Since v6.1 arm_smmu_capable() then reports
IOMMU_CAP_CACHE_COHERENCY for no master at all, so VFIO and iommufd
refuse every device.

Masters behind /soc/iommu@1 are DMA coherent while the SMMU is not
(rescued-by-device):
  - /soc/m@00 (platform)

Masters behind /soc/iommu@2 are DMA coherent while the SMMU is not
(rescued-by-device):
  - /soc/m@00 (platform)
  - /soc/m@01 (platform)
  - /soc/m@02 (platform)
  - /soc/m@03 (platform)
  - /soc/m@04 (platform)
  - /soc/m@05 (platform)
  - /soc/m@06 (platform)
  - /soc/m@07 (platform)
  - /soc/m@08 (platform)
  - /soc/m@09 (platform)
  - /soc/m@10 (platform)
  - /soc/m@11 (platform)
  - and 2 more

Masters behind /soc/iommu@3 are DMA coherent while the SMMU is not
(rescued-by-device):
  - /soc/m@00 (platform)

Boards (1): a.

Found by dtb-audit (rule walk-only, target 6.1.0) over this tree.

""" + CONFIRM_THIS_PATCH


NO_DRIVER = """\
The SMMU /soc/iommu@3 has no dma-coherent property, so
of_dma_is_coherent() is false for it and its driver takes its page-table
walk to be non-coherent. Since v6.2 (and 6.1.y) arm_smmu_capable() then
reports IOMMU_CAP_CACHE_COHERENCY only for masters that are DMA coherent
themselves, and at v6.1 for none, so VFIO and iommufd refuse the other
devices.

Masters behind it are DMA coherent while the SMMU is not
(rescued-by-device):
  - /soc/m@00 (platform)

Boards (1): a.

Found by dtb-audit (rule walk-only, target 6.1.0) over this tree.

""" + CONFIRM_THIS_PATCH


ONE_DRIVER = """\
The arm,mmu-500 SMMU /soc/iommu@2 (smmu2) and the SMMU /s have no
dma-coherent property, so of_dma_is_coherent() is false for them and
arm-smmu takes their page-table walks to be non-coherent. Since v6.2
(and 6.1.y) arm_smmu_capable() then reports IOMMU_CAP_CACHE_COHERENCY
only for masters that are DMA coherent themselves, and at v6.1 for none,
so VFIO and iommufd refuse the other devices.

Masters behind /soc/iommu@2 are DMA coherent while the SMMU is not
(rescued-by-device):
  - /soc/m@00 (platform)
  - /soc/m@01 (platform)
  - /soc/m@02 (platform)
  - /soc/m@03 (platform)
  - /soc/m@04 (platform)
  - /soc/m@05 (platform)
  - /soc/m@06 (platform)
  - /soc/m@07 (platform)
  - /soc/m@08 (platform)
  - /soc/m@09 (platform)
  - /soc/m@10 (platform)
  - /soc/m@11 (platform)
  - and 2 more

Masters behind /s are DMA coherent while the SMMU is not
(rescued-by-device):
  - /soc/m@00 (platform)

Boards (1): a.

Found by dtb-audit (rule walk-or-device, target 6.1.192) over Debian
linux-source-6.1 6.1.192-1.

""" + CONFIRM_THIS_PATCH


COVER = f"""\
From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Ann Maintainer <ann@example.org>
Date: Mon, 1 Jan 2024 00:00:00 +0000
Subject: [PATCH 0/2] arm64: dts: mark SMMUs as DMA coherent

dtb-audit (rule walk-or-device, target 6.1.192) finds SMMU nodes in
Debian linux-source-6.1 6.1.192-1 that lack dma-coherent while the
masters behind them, or the bridges above those masters, are DMA
coherent. Since v6.1, arm-smmu and arm-smmu-v3 take the SMMU's coherency
from the device tree to answer IOMMU_CAP_CACHE_COHERENCY, and VFIO and
iommufd refuse devices without it. Each patch adds dma-coherent to the
SMMU nodes of one file.

The device tree overrides what the SMMU reports about its page-table
walk, so this is a hypothesis until confirmed on hardware: read back
IDR0.CTTW (coherent translation table walk) on every board and firmware
concerned before sending these patches. Upstream added dma-coherent to
the sdm845 apps SMMU in 2024 and reverted it in 2025 (CVE-2025-22012)
because not every board's firmware agreed.

Left alone:
  - /soc/iommu@9 (acme,b, acme,c, arch/arm64/boot/dts/acme/b.dtsi:40):
    board files remove its dma-coherent on purpose:
    arch/arm64/boot/dts/acme/b-evk.dts:12,
    arch/arm64/boot/dts/acme/b-lite.dts:20
  - /soc/iommu@8 (no SoC): no source position (the corpus was not built
    from a kernel tree)

Ann Maintainer (2):
  arm64: dts: acme: a: mark SMMUs as DMA coherent
  arm64: dts: freescale: ls1028a: mark SMMU as DMA coherent

 arch/arm64/boot/dts/acme/a.dtsi                | 3 +++
 arch/arm64/boot/dts/freescale/fsl-ls1028a.dtsi | 1 +
 2 files changed, 4 insertions(+)


base-commit: 0123456789abcdef0123456789abcdef01234567
-- 
dtb-audit {VERSION}

"""


COVER_EMPTY = f"""\
From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: dtb-audit <dtb-audit@invalid>
Date: Mon, 1 Jan 2024 00:00:00 +0000
Subject: [PATCH 0/0] arm64: dts: mark SMMUs as DMA coherent

dtb-audit (rule walk-only, target 6.1.0) finds SMMU nodes in the tree
that lack dma-coherent while the masters behind them, or the bridges
above those masters, are DMA coherent. Since v6.1, arm-smmu and
arm-smmu-v3 take the SMMU's coherency from the device tree to answer
IOMMU_CAP_CACHE_COHERENCY, and VFIO and iommufd refuse devices without
it. Each patch adds dma-coherent to the SMMU nodes of one file.

The device tree overrides what the SMMU reports about its page-table
walk, so this is a hypothesis until confirmed on hardware: read back
IDR0.CTTW (coherent translation table walk) on every board and firmware
concerned before sending these patches. Upstream added dma-coherent to
the sdm845 apps SMMU in 2024 and reverted it in 2025 (CVE-2025-22012)
because not every board's firmware agreed.

dtb-audit (0):


-- 
dtb-audit {VERSION}

"""


def test_body_of_one_smmu_with_every_kind_of_evidence():
    assert _body([LS1028A], SWEEP_61) == ONE


def test_body_of_three_smmus_of_two_drivers():
    assert _body(ACME, SWEEP_WALK) == THREE


def test_body_of_an_smmu_without_a_driver():
    assert _body([ACME[2]], SWEEP_WALK) == NO_DRIVER


def test_body_of_two_smmus_of_one_driver():
    other = Candidate("f", 1, "/s", None, (), "arm-smmu", set(), MANY[:1])
    assert _body([ACME[1], other], SWEEP_61) == ONE_DRIVER


def test_cover_letter_lists_what_it_left_alone():
    patches = [Patch(1, "arm64: dts: acme: a: mark SMMUs as DMA coherent",
                     "arch/arm64/boot/dts/acme/a.dtsi", ACME, "", "x"),
               Patch(2, "arm64: dts: freescale: ls1028a: mark SMMU as DMA coherent",
                     "arch/arm64/boot/dts/freescale/fsl-ls1028a.dtsi", [LS1028A], "", "y")]
    skips = [Skip("/soc/iommu@9", ["acme,b", "acme,c"], "arch/arm64/boot/dts/acme/b.dtsi:40",
                  "board files remove its dma-coherent on purpose: "
                  "arch/arm64/boot/dts/acme/b-evk.dts:12, arch/arm64/boot/dts/acme/b-lite.dts:20"),
             Skip("/soc/iommu@8", [], None,
                  "no source position (the corpus was not built from a kernel tree)")]
    assert _cover(patches, skips, SWEEP_61, "Ann Maintainer <ann@example.org>", DATE,
                  "0123456789abcdef0123456789abcdef01234567") == COVER


def test_cover_letter_of_no_patch():
    assert _cover([], [], SWEEP_WALK, "dtb-audit <dtb-audit@invalid>", DATE, None) == COVER_EMPTY


def test_slug_as_git_format_patch_names_files():
    assert _slug("[PATCH] arm64: dts: a.b_c: x.") == "PATCH-arm64-dts-a.b_c-x"
    assert _slug(" -.arm64: dts.-") == "arm64-dts"
    # Cut at 52 characters, and no '-' or '.' left at the cut.
    assert _slug("a" * 51 + " bcd") == "a" * 51
    assert _slug("a" * 50 + ".-bcd") == "a" * 50
    assert _slug("b" * 60) == "b" * 52
    assert _slug("X-ray: fix X") == "X-ray-fix-X"
    assert _slug("a" * 51 + "X") == "a" * 51 + "X"


def test_diffstat_as_git_writes_it():
    assert _diffstat([("arch/arm64/boot/dts/acme/a.dtsi", 2), ("b.dtsi", 1)]) == (
        " arch/arm64/boot/dts/acme/a.dtsi | 2 ++\n"
        " b.dtsi                          | 1 +\n"
        " 2 files changed, 3 insertions(+)\n")
    assert _diffstat([("b.dtsi", 1)]) == " b.dtsi | 1 +\n 1 file changed, 1 insertion(+)\n"


def test_the_index_line_names_the_blobs_and_mode_git_would(mini, tmp_path):
    tree, sweep, deps = mini
    dtsi = os.path.join(tree, A100)
    # A byte that is not UTF-8 (in a comment) and an executable bit.
    with open(dtsi, "ab") as f:
        f.write(b"/* caf\xe9 */\n")
    os.chmod(dtsi, 0o755)
    old = subprocess.run(["git", "hash-object", dtsi], capture_output=True, text=True,
                         check=True).stdout.strip()
    series = _written(mini, tmp_path / "out")
    assert check_series(tree, series.files[1:]) == []
    subprocess.run(["git", "apply", series.files[1]], cwd=tree, check=True)
    new = subprocess.run(["git", "hash-object", dtsi], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert f"\nindex {old[:12]}..{new[:12]} 100755\n" in series.patches[0].text
    assert open(dtsi, "rb").read().endswith(b"/* caf\xe9 */\n")


def test_masters_once_each_passthrough_first_nameless_first():
    links = [_link("rescued-by-device", "/soc/b"), _link("rescued-by-device", None),
             _link("rescued-by-device", "/soc/z", "fsl-mc"), _link("broken", "/soc/a"),
             _link("rescued-by-device", "/soc/b", dtb="freescale/c.dtb")]
    c = Candidate("f.dtsi", 1, "/soc/iommu@1", None, (), "arm-smmu", {"acme,a"}, links)
    assert [(m.master_path, m.dtb) for m in _masters(c, "rescued-by-device")] == [
        ("/soc/z", "freescale/a.dtb"), (None, "freescale/a.dtb"), ("/soc/b", "freescale/a.dtb")]


def test_listing_of_exactly_as_many_as_shown():
    masters = [f"/soc/m@{k}" for k in range(12)]
    assert _listing(masters, str) == [f"  - /soc/m@{k}\n" for k in range(12)] + ["\n"]
    assert _listing(masters + ["/soc/n"], str, most=12)[-2:] == ["  - and 1 more\n", "\n"]


# -- a SoC without a name (DTBs with no root compatible) ---------------------------------------

def test_subject_of_a_nameless_soc_names_the_file():
    f = "arch/arm64/boot/dts/acme/acme-x.dtsi"
    assert _subject(f, [_candidate(f, 1, None)]) == \
        "arm64: dts: acme: acme-x: mark SMMU as DMA coherent"
    assert _subject(f, [_candidate(f, 1, "acme,a", None)]) == \
        "arm64: dts: acme: acme-x: mark SMMU as DMA coherent"


def test_soc_names_sorted_with_the_nameless_as_a_question_mark():
    assert soc_names({"acme,b", None, "acme,a"}) == ["?", "acme,a", "acme,b"]
    assert soc_names(set()) == []


def test_a_nameless_soc_without_a_source_is_skipped_by_name():
    link = NS(verdict="rescued-by-device", provider_coherent=False, soc=None,
              provider_path="/soc/iommu@1", provider_label=None, provider_compatible=(),
              driver="arm-smmu", master_kind="platform", master_path="/soc/dev@1")
    sweep = NS(socs=[NS(soc=None, providers=[NS(path="/soc/iommu@1", source_file=None,
                                                 source_line=None)])], links=[link])
    _, skips = candidates(sweep)
    assert [(s.path, s.socs) for s in skips] == [("/soc/iommu@1", ["?"])]
    cover = _cover([], skips, SWEEP_WALK, "dtb-audit <dtb-audit@invalid>", DATE, None)
    assert "  - /soc/iommu@1 (?): no source position" in cover


def test_format_verification_of_a_nameless_soc():
    v = Verification({None: _soc(True, False, [(SMMU, True, False)])}, [], [])
    assert format_verification(v) == "?: affected -> no longer affected\n"


@pytest.fixture
def nameless(tmp_path, isolated_cache):
    """(tree, Sweep, written Series) of the mini kernel whose a100-mini lost
    its root compatible: a SoC without a name that a100.dtsi's patch touches
    along with acme,a100 and acme,a200."""
    tree = make_minikernel(tmp_path / "linux")
    board = os.path.join(tree, VENDOR_DIR, "a100-mini.dts")
    text = open(board).read()
    open(board, "w").write(text.replace('\tcompatible = "acme,a100-mini", "acme,a100";\n',
                                        "\t/delete-property/ compatible;\n"))
    corpus = build_corpus(kernel=tree, out=tmp_path / "dtbs")
    sweep = sweep_corpus(corpus)
    assert [s.affected_boards for s in sweep.socs if s.soc is None] == [("acme/a100-mini.dtb",)]
    series = make_series(sweep, tree, dependencies(corpus), author=AUTHOR, date=DATE)
    write_series(series, tmp_path / "out")
    return tree, sweep, series


def test_verify_lists_the_nameless_soc_first_and_each_before_as_the_sweep_says(nameless):
    tree, sweep, series = nameless
    # "before" is what the sweep given says, not what the tree says.
    said = dataclasses.replace(sweep, socs=tuple(
        dataclasses.replace(s, affected=False) if s.soc == "acme,a200" else s
        for s in sweep.socs))
    result = verify_series(series, said, tree)
    assert list(result.socs) == [None, "acme,a100", "acme,a200"]
    assert {soc: s["before"] for soc, s in result.socs.items()} == {
        None: True, "acme,a100": True, "acme,a200": False}
    assert {soc: s["after"] for soc, s in result.socs.items() if soc} == {
        "acme,a100": False, "acme,a200": False}


def test_verify_rebuilds_the_boards_of_the_nameless_soc(nameless):
    tree, sweep, series = nameless
    result = verify_series(series, sweep, tree)
    assert result.socs[None] == {
        "before": True, "after": False,
        "patched": [{"path": SMMU, "coherent": True, "affected": False}], "others": []}
    assert result.ok


def test_run_verify_says_per_soc_what_the_series_did_and_fails_when_a_soc_is_not_rebuilt(
        mini, tmp_path):
    tree, sweep, deps = mini
    err = io.StringIO()
    assert run(sweep, tree, str(tmp_path / "out"), deps, verify=True, author=AUTHOR, recipients=False,
               out=io.StringIO(), err=err) == 0
    assert err.getvalue().split("\n")[1:] == [
        "acme,a100: affected -> no longer affected", "acme,a200: affected -> no longer affected",
        ""]
    # Far from the hunk: the patch applies, the boards of a100 do not build.
    with open(os.path.join(tree, A100), "a") as f:
        f.write("\nthis is not a device tree\n")
    err = io.StringIO()
    assert run(sweep, tree, str(tmp_path / "out"), deps, verify=True, author=AUTHOR, recipients=False,
               out=io.StringIO(), err=err) == 1
    lines = err.getvalue().split("\n")[1:]
    assert [l.split(": error: ")[0] for l in lines[:2]] == ["acme/a100-evk.dtb",
                                                           "acme/a100-mini.dtb"]
    assert lines[2:] == ["acme,a100: affected -> not rebuilt",
                         "acme,a200: affected -> no longer affected", ""]


def test_diff_of_a_file_without_a_last_newline_is_gits(tmp_path):
    # The hunk reaches the end of a file that lacks its last newline: the
    # marker line git writes, word for word, and git applies it.
    repo = tmp_path / "k"
    repo.mkdir()
    rel = "arch/arm64/boot/dts/acme/x.dtsi"
    (repo / "arch/arm64/boot/dts/acme").mkdir(parents=True)
    old = "/ {\n\tsmmu {\n\t\tx;\n\t};\n};"
    new = "/ {\n\tsmmu {\n\t\tx;\n\t\tdma-coherent;\n\t};\n};"
    (repo / rel).write_text(old)
    env = dict(os.environ, GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com",
               GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.com",
               GIT_CEILING_DIRECTORIES=str(tmp_path))
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, env=env, capture_output=True)
    patch = _diff(str(repo), rel, old, new)
    (repo / rel).write_text(new)
    git = subprocess.run(["git", "diff", "--abbrev=12"], cwd=repo, check=True, env=env,
                         capture_output=True, text=True).stdout
    assert patch == git
    assert patch.endswith("\n \t};\n };\n\\ No newline at end of file\n")


def _chain(*names):
    return [NS(name=n) for n in names]


@pytest.mark.parametrize("chain, path, labels, written", [
    ((), "/soc/iommu@5000000", (), False),
    # From the root: the whole path.
    (("/", "soc", "iommu@5000000"), "/soc/iommu@5000000", (), True),
    (("/", "soc", "iommu@5000000"), "/soc/iommu@6000000", (), False),
    (("/", "iommu@5000000"), "/soc/iommu@5000000", (), False),
    (("/", "Xbar", "iommu@5000000"), "/Xbar/iommu@5000000/", (), True),
    # &{/path}: that path, then the nodes inside.
    (("&{/soc}", "iommu@5000000"), "/soc/iommu@5000000", (), True),
    (("&{/soc/}", "iommu@5000000"), "/soc/iommu@5000000", (), True),
    (("&{/}", "soc", "iommu@5000000"), "/soc/iommu@5000000", (), True),
    (("&{/bus}", "iommu@5000000"), "/soc/iommu@5000000", (), False),
    (("&{/soc}",), "/soc", (), True),
    (("&{/soc/bus}", "iommu@5000000"), "/soc/bus/iommu@5000000", (), True),
    (("&{/barX}", "iommu@5000000"), "/barX/iommu@5000000", (), True),
    # &label alone: the node's labels decide.
    (("&smmu",), "/soc/iommu@5000000", ("smmu",), True),
    (("&smmu",), "/soc/iommu@5000000", ("mmu", "smmu0"), False),
    # &label { nodes }: the nodes inside are the end of the path.
    (("&soc", "iommu@5000000"), "/soc/iommu@5000000", (), True),
    (("&bus", "soc", "iommu@5000000"), "/bus/soc/iommu@5000000", (), True),
    (("&root", "soc", "iommu@5000000"), "/soc/iommu@5000000", (), True),
    (("&soc", "iommu@5000000"), "/soc/iommu@6000000", (), False),
    (("&soc", "bus", "iommu@5000000"), "/soc/iommu@5000000", (), False),
    # A node name at the top (inside an included fragment): the end of the path.
    (("soc", "iommu@5000000"), "/soc/iommu@5000000", (), True),
    (("soc", "iommu@5000000"), "/bus/soc/iommu@5000000", (), True),
    (("soc", "iommu@5000000"), "/iommu@5000000", (), False),
    (("iommu@5000000",), "/soc/iommu@5000000", (), True),
    (("iommu@5000000",), "/soc/iommu@6000000", (), False),
])
def test_written_as(chain, path, labels, written):
    assert written_as(_chain(*chain), path, labels) is written


def test_series_skips_nodes_the_tree_no_longer_writes_where_the_sweep_saw_them(mini):
    tree, sweep, deps = mini
    # Since the sweep: a100's SMMU got another unit address, a200.dtsi is
    # gone, a line was added above a300's SMMU.
    a100 = os.path.join(tree, A100)
    text = open(a100).read()
    open(a100, "w").write(text.replace("smmu: iommu@5000000 {", "smmu: iommu@6000000 {"))
    os.remove(os.path.join(tree, VENDOR_DIR, "a200.dtsi"))
    a300 = os.path.join(tree, VENDOR_DIR, "a300.dtsi")
    text = open(a300).read()
    open(a300, "w").write("// a comment\n" + text)
    series = make_series(sweep, tree, deps, author=AUTHOR, date=DATE)
    assert series.patches == []
    where = {soc: f"{VENDOR_DIR}/{soc}.dtsi:27" for soc in ("a100", "a200", "a300")}
    assert [(s.path, s.socs, s.where, s.reason) for s in series.skips] == [
        (SMMU, ["acme,a100"], where["a100"],
         f"{where['a100']}: the node written here (/soc/iommu@6000000) is not {SMMU}: "
         "the tree changed since the sweep; sweep it again"),
        (SMMU, ["acme,a200"], where["a200"],
         f"{VENDOR_DIR}/a200.dtsi: cannot read: No such file or directory"),
        (SMMU, ["acme,a300"], where["a300"], f"{where['a300']}: no node opens here")]


def _evidence(verdict, master, soc="acme,a", smmu="/soc/iommu@1", coherent=False,
              dma="non-coherent"):
    return NS(verdict=verdict, provider_coherent=coherent, soc=soc, provider_path=smmu,
              provider_label="smmu", provider_compatible=["arm,mmu-500"], driver="arm-smmu",
              master_kind="platform", master_path=master, master_dma_attr=dma, dtb="a.dtb")


def test_candidates_from_the_evidence_only_and_the_masters_against():
    where = {"/soc/iommu@1": ("a.dtsi", 9), "/soc/iommu@2": (None, None),
             "/soc/iommu@3": ("a.dtsi", None), "/soc/iommu@4": ("a.dtsi", 3)}
    sweep = NS(socs=[NS(soc=soc, providers=[NS(path=p, source_file=f, source_line=n)
                                            for p, (f, n) in where.items()])
                     for soc in ("acme,a", "acme,b")],
               links=[_evidence("broken", "/soc/m0"),                       # not evidence
                      _evidence("rescued-by-device", "/soc/m1", coherent=True),  # coherent
                      _evidence("rescued-by-device", "/soc/m2"),
                      _evidence("broken-bridge-coherent", "/soc/m3", soc="acme,b"),
                      _evidence("rescued-by-device", "/soc/m4", smmu="/soc/iommu@2"),
                      _evidence("rescued-by-device", "/soc/m5", smmu="/soc/iommu@3"),
                      _evidence("rescued-by-device", "/soc/m6", smmu="/soc/iommu@4"),
                      _evidence("broken", "/soc/m7", dma="coherent"),
                      _evidence("broken", "/soc/m8", coherent=True),
                      _evidence("broken", "/soc/m9", soc="acme,c")])
    found, skips = candidates(sweep)
    assert [(c.source_file, c.source_line, c.path, sorted(c.socs),
             [l.master_path for l in c.links], [l.master_path for l in c.against])
            for c in found] == [
        ("a.dtsi", 3, "/soc/iommu@4", ["acme,a"], ["/soc/m6"], []),
        ("a.dtsi", 9, "/soc/iommu@1", ["acme,a", "acme,b"], ["/soc/m2", "/soc/m3"], ["/soc/m0"])]
    assert [(s.path, s.socs, s.where) for s in skips] == [
        ("/soc/iommu@2", ["acme,a"], None), ("/soc/iommu@3", ["acme,a"], None)]


def test_lines_counted_through_a_continued_directive():
    # A #define continued on the next line is one directive of two lines:
    # the node after it opens at the line the sweep recorded.
    text = ("#define SMMU_IRQS \\\n\t13 14\n/ {\n\tsmmu: iommu@1 {\n\t\treg = <1>;\n"
            "\t};\n};\n&smmu {\n\tstatus = \"okay\";\n};")
    assert add_dma_coherent(text, 4, "x.dtsi") == text.replace(
        "\t\treg = <1>;\n", "\t\treg = <1>;\n\t\tdma-coherent;\n")
    with pytest.raises(PatchError) as raised:
        add_dma_coherent(text, 5, "x.dtsi")
    assert str(raised.value) == "x.dtsi:5: no node opens here"
