"""What a kernel maintainer gets from `dtb-audit patch`, through its public
entry points (make_series, write_series, run, verify_series): which SMMU
nodes are patched and where the line goes, the commit message and its
trailers (Signed-off-by, Fixes), the cover letter, the mail headers git
format-patch writes, what is left alone and why, and what the verify loop
says.  Whole mails are golden files (tests/golden/patch/, reviewed by eye):

    DTB_AUDIT_REGENERATE=1 python3 -m pytest tests/integration/test_patch_series_mails.py
    git diff tests/golden/patch/

Most cases are a few lines of DTS written here and a Sweep built from
model records (no dtc, fast); the verify loop and `run` use the mini
kernel tree (tests/minikernel.py), built with dtc."""
import dataclasses
import datetime
import email.utils
import io
import os
import subprocess
import time
from importlib.metadata import version

import pytest

from auditor.model import CorpusInfo, Link, Provider, SocSummary, Sweep
from auditor.patch import PatchError, Series, Verification, candidates, check_series, \
    format_verification, make_series, run, verify_series, write_series
from auditor.sweep import sweep_corpus
from kernels.codes import Rule
from kernels.target import TargetKernel
from corpus.build import build_corpus
from goldenfiles import check
from kerneltree import write_tree
from minikernel import VENDOR_DIR, dependencies, make_minikernel, smmu_line

AUTHOR = "Ann Maintainer <ann@example.org>"
DATE = "Mon, 1 Jan 2024 00:00:00 +0000"
SMMU = "/soc/iommu@5000000"
DTS = "arch/arm64/boot/dts"
A100 = f"{VENDOR_DIR}/a100.dtsi"
GIT_ENV = dict(GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com",
               GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.com",
               GIT_AUTHOR_DATE="2024-01-01T00:00:00Z", GIT_COMMITTER_DATE="2024-01-01T00:00:00Z")


def assert_golden(name, text, **places):
    """`text` equals tests/golden/patch/<name> once the values of `places`
    ({placeholder: text}) and the tool's version are replaced by {PLACEHOLDER}s
    (or is written there with DTB_AUDIT_REGENERATE=1)."""
    text = text.replace(f"\n-- \ndtb-audit {version('dtb-audit')}\n",
                        "\n-- \ndtb-audit {VERSION}\n")
    check(f"patch/{name}", text, {"{%s}" % k: v for k, v in places.items()})


# -- trees and sweeps written here --------------------------------------------------------

def smmus_dtsi(*nodes):
    """A .dtsi with SMMU nodes [(label or None, unit address)] under /soc, and
    {node path: line where it opens}."""
    lines = ["// SPDX-License-Identifier: GPL-2.0", "/ {", "\tsoc {"]
    at = {}
    for label, unit in nodes:
        at[f"/soc/iommu@{unit}"] = len(lines) + 1
        lines += [f"\t\t{label + ': ' if label else ''}iommu@{unit} {{",
                  '\t\t\tcompatible = "arm,mmu-500";', "\t\t\t#iommu-cells = <1>;", "\t\t};", ""]
    return "\n".join(lines + ["\t};", "};", ""]), at


def evidence(verdict, master, *, soc="acme,a", smmu=SMMU, label=None,
             compatible=("arm,mmu-500",), driver="arm-smmu", kind="platform", bridge=None,
             dtb="acme/a-evk.dtb", smmu_coherent=False, dma="coherent"):
    """A link record of a sweep: `master` behind the SMMU at `smmu`."""
    return Link(dtb=dtb, board=None, soc=soc, provider_path=smmu, provider_label=label,
                provider_compatible=compatible, driver=driver, provider_enabled=True,
                provider_coherent=smmu_coherent, link="iommus", master_path=master,
                master_kind=kind, master_enabled=True, master_dma_attr=dma, bridge_path=bridge,
                bridge_coherent=None, placeholder_map=False, vfio_candidate=True,
                rule="walk-or-device", verdict=verdict, note=None)


def sweep_of(links, where, *, rule="walk-or-device", target="6.1.192", identity=None):
    """A Sweep of `links`; where: {SMMU path: (source file, line)}, the same in
    every SoC (a path it lacks: no source position)."""
    socs = {}
    for link in links:
        socs.setdefault(link.soc, set()).add(link.provider_path)
    return Sweep(rule=Rule(rule), target_kernel=target and TargetKernel.parse(target),
                 target_assumed=False, legacy_dt_bindings=False,
                 corpus=CorpusInfo(root="/corpus", identity=identity, kernel_dir=None),
                 links=tuple(links),
                 socs=tuple(SocSummary(
                     soc=soc, affected=True, passthrough=False, boards=(), affected_boards=(),
                     providers=tuple(Provider(path, None, (), "arm-smmu", False, True,
                                              *where.get(path, (None, None)), (), {})
                                     for path in sorted(paths)),
                     broken_masters=(), verdict_counts={}) for soc, paths in socs.items()))


def one_smmu_series(tmp_path, *, file=f"{DTS}/acme/a.dtsi", socs=("acme,a",), text=None,
                    line=None, path=SMMU, label=None, **options):
    """make_series of one SMMU node accused in `socs`, written in `file` (by
    default as smmus_dtsi writes it, else `text` with the node at `line`)."""
    if text is None:
        text, at = smmus_dtsi(("smmu", "5000000"))
        line = at[SMMU]
    tree = write_tree(tmp_path / "linux", {file: text})
    links = [evidence("rescued-by-device", "/soc/dev@1", soc=soc, smmu=path, label=label)
             for soc in socs]
    options.setdefault("author", AUTHOR)
    options.setdefault("date", DATE)
    return make_series(sweep_of(links, {path: (file, line)}), tree, **options)


def git_checkout(tree):
    """Make `tree` a git checkout with one commit; returns HEAD."""
    env = dict(os.environ, **GIT_ENV)
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "tree"]):
        subprocess.run(["git", "-C", str(tree), *cmd], check=True, env=env, capture_output=True)
    return subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


# -- a whole series: two files patched, two SMMUs left alone ----------------------------

LS1028A = f"{DTS}/freescale/fsl-ls1028a.dtsi"
ACME_A = f"{DTS}/acme/a.dtsi"
ACME_B = f"{DTS}/acme/b.dtsi"
REMOVE = "\n&smmu {\n\t/delete-property/ dma-coherent;\n};\n"
FIXES = {(ACME_A, 4): ("0123456789abcdef0123456789abcdef01234567", "arm64: dts: acme: add a"),
         (ACME_A, 14): ("0123456789abcdef0123456789abcdef01234567", "arm64: dts: acme: add a"),
         (LS1028A, 4): ("fedcba9876543210fedcba9876543210fedcba98",
                        "arm64: dts: ls1028a: add the SMMU")}


@pytest.fixture
def whole_series(tmp_path):
    """(series, tree, HEAD) of a git checkout where the sweep accuses:
    in acme/a.dtsi three SMMUs (arm-smmu-v3 with one master, arm-smmu with
    fourteen, one of no known driver); in fsl-ls1028a.dtsi one SMMU with every
    kind of evidence and eight non-coherent masters; in acme/b.dtsi one SMMU
    that both boards of acme,b and acme,c strip of dma-coherent; and one SMMU
    of a SoC without a name that has no source position.  Signed off, with
    Fixes: from a blame that knows two of the nodes of a.dtsi and the LS1028A one."""
    a, at_a = smmus_dtsi((None, "1"), ("smmu2", "2"), (None, "3"))
    ls, at_ls = smmus_dtsi(("smmu", "5000000"))
    b, at_b = smmus_dtsi(("smmu", "9"))
    tree = write_tree(tmp_path / "linux", {
        ACME_A: a, LS1028A: ls, ACME_B: b,
        f"{DTS}/acme/b-evk.dts": '#include "b.dtsi"\n' + REMOVE,
        f"{DTS}/acme/b-lite.dts": '/dts-v1/;\n#include "b.dtsi"\n\n/ {\n};\n' + REMOVE})
    head = git_checkout(tree)
    rdb, kontron = "freescale/fsl-ls1028a-rdb.dtb", "freescale/fsl-ls1028a-kontron-sl28.dtb"
    ls_link = dict(soc="fsl,ls1028a", label="smmu", compatible=("arm,mmu-500", "arm,smmu"),
                   dtb=rdb)
    links = [
        evidence("rescued-by-device", "/soc/m@00", smmu="/soc/iommu@1", compatible=(),
                 driver="arm-smmu-v3"),
        *[evidence("rescued-by-device", f"/soc/m@{k:02d}", smmu="/soc/iommu@2", label="smmu2")
          for k in range(14)],
        evidence("rescued-by-device", "/soc/m@00", smmu="/soc/iommu@3", compatible=(), driver=""),
        evidence("rescued-by-device", "/soc/pcie@1f0000000/ethernet@0,0", kind="pci-dt-child",
                 **ls_link),
        evidence("rescued-by-device", "/soc/pcie@1f0000000/ethernet@0,0", kind="pci-dt-child",
                 **dict(ls_link, dtb=kontron)),
        evidence("rescued-by-device", "/soc/a-usb@3100000", **ls_link),
        evidence("broken-bridge-coherent", "/soc/pcie@1f0000000", kind="pci-discovered",
                 bridge="/soc/pcie@1f0000000", **ls_link),
        evidence("broken-bridge-coherent", "/soc/fsl-mc@80c000000", kind="fsl-mc",
                 bridge="/soc/fsl-mc@80c000000", **ls_link),
        evidence("broken-bridge-coherent", "/soc/x@1", **ls_link),
        # A master that is coherent itself, and one of another SoC: not against it.
        evidence("broken", "/soc/sata@3200000", **ls_link),
        evidence("broken", "/soc/sata@3200000", dma="non-coherent",
                 **dict(ls_link, soc="fsl,ls1027a")),
        *[evidence("broken", f"/soc/dma@{k}", dma="non-coherent", **ls_link) for k in range(8)],
        *[evidence("rescued-by-device", "/soc/dev@1", soc=soc, smmu="/soc/iommu@9",
                   dtb=f"acme/{board}.dtb") for soc, board in (("acme,b", "b-evk"),
                                                              ("acme,c", "b-lite"))],
        evidence("rescued-by-device", "/soc/dev@1", soc=None, smmu="/soc/iommu@8"),
    ]
    where = {path: (ACME_A, line) for path, line in at_a.items()}
    where.update({SMMU: (LS1028A, at_ls[SMMU]), "/soc/iommu@9": (ACME_B, at_b["/soc/iommu@9"])})
    deps = {f"acme/{board}.dtb": [ACME_B, f"{DTS}/acme/{board}.dts"]
            for board in ("b-evk", "b-lite")}
    sweep = sweep_of(links, where, identity="Debian linux-source-6.1 6.1.192-1")
    series = make_series(sweep, tree, deps, author=AUTHOR, date=DATE, signoff=True,
                         fixes=lambda file, line: FIXES.get((file, line)))
    return series, tree, head


def test_each_patch_adds_dma_coherent_to_the_smmus_of_one_file(whole_series, tmp_path):
    series, tree, head = whole_series
    assert [(p.number, p.source_file, [c.path for c in p.candidates]) for p in series.patches] \
        == [(1, ACME_A, ["/soc/iommu@1", "/soc/iommu@2", "/soc/iommu@3"]),
            (2, LS1028A, [SMMU])]
    files = write_series(series, tmp_path / "out")
    assert [os.path.basename(f) for f in files] == [
        "0000-cover-letter.patch", "0001-arm64-dts-acme-a-mark-SMMUs-as-DMA-coherent.patch",
        "0002-arm64-dts-freescale-ls1028a-mark-SMMU-as-DMA-coheren.patch"]
    for patch in series.patches:
        assert_golden(f"series/{patch.filename}", patch.text)
    # git takes them as they are.
    assert check_series(tree, files[1:]) == []


def test_trailers_sign_off_then_one_fixes_per_commit_that_added_the_nodes(whole_series):
    series, _, _ = whole_series
    trailers = [p.text.split("\n---\n")[0].split("\n\n")[-1] for p in series.patches]
    assert trailers == [
        'Fixes: 0123456789ab ("arm64: dts: acme: add a")\nSigned-off-by: ' + AUTHOR,
        'Fixes: fedcba987654 ("arm64: dts: ls1028a: add the SMMU")\nSigned-off-by: ' + AUTHOR]


@pytest.mark.parametrize("blame, trailers", [
    pytest.param({}, [], id="no-commit-known"),
    pytest.param({9: ("0123456789abcdef0123456789abcdef01234567", "arm64: dts: acme: add a")},
                 ['Fixes: 0123456789ab ("arm64: dts: acme: add a")'], id="one-commit"),
    pytest.param({4: ("0123456789abcdef0123456789abcdef01234567", "arm64: dts: acme: add a"),
                  9: ("fedcba9876543210fedcba9876543210fedcba98", "arm64: dts: acme: b")},
                 ['Fixes: 0123456789ab ("arm64: dts: acme: add a")',
                  'Fixes: fedcba987654 ("arm64: dts: acme: b")'], id="two-commits-in-line-order"),
])
def test_fixes_names_each_commit_that_added_a_patched_node(tmp_path, blame, trailers):
    text, at = smmus_dtsi(("smmu", "1"), ("smmu2", "2"))
    tree = write_tree(tmp_path / "linux", {ACME_A: text})
    links = [evidence("rescued-by-device", "/soc/dev@1", smmu=path) for path in at]
    series = make_series(sweep_of(links, {p: (ACME_A, n) for p, n in at.items()}), tree,
                         author=AUTHOR, date=DATE,
                         fixes=lambda file, line: blame.get(line) if file == ACME_A else None)
    message = series.patches[0].text.split("\n---\n")[0]
    assert [line for line in message.split("\n") if line.startswith("Fixes:")] == trailers
    if trailers:
        assert message.endswith("\n\n" + "\n".join(trailers))


def test_cover_letter_lists_the_patches_what_is_left_alone_and_the_base(whole_series):
    series, _, head = whole_series
    assert series.base_commit == head
    assert [(s.path, s.socs, s.where) for s in series.skips] == [
        ("/soc/iommu@8", ["?"], None), ("/soc/iommu@9", ["acme,b", "acme,c"], f"{ACME_B}:4")]
    assert_golden("series/0000-cover-letter.patch", series.cover, BASE=head)


# Behind /soc/iommu@2 beside /soc/m@00 to /soc/m@09: twelve masters, listed whole,
# once each, the PCI and fsl-mc ones first.
TWELVE = [evidence("rescued-by-device", "/soc/m@00", smmu="/soc/iommu@2", compatible=(),
                   dtb="acme/a-lite.dtb"),          # the same master on another board
          evidence("rescued-by-device", "/soc/pcie/x", smmu="/soc/iommu@2", compatible=(),
                   kind="pci-dt-child"),
          evidence("rescued-by-device", "/soc/mc", smmu="/soc/iommu@2", compatible=(),
                   kind="fsl-mc")]


@pytest.mark.parametrize("case, smmus, extra, rule, target", [
    pytest.param("no-driver", [("", "3", 1)], [], "walk-only", "6.1.0", id="an-smmu-of-no-driver"),
    pytest.param("one-driver", [("arm-smmu", "2", 10), ("arm-smmu", "7", 1)], TWELVE,
                 "walk-or-device", "6.1.192", id="two-smmus-of-one-driver"),
    pytest.param("v3", [("arm-smmu-v3", "1", 1)], [], "walk-or-device", "6.12.0",
                 id="an-arm-smmu-v3"),
])
def test_the_commit_message_says_what_the_driver_then_refuses(tmp_path, case, smmus, extra,
                                                              rule, target):
    """smmus: [(driver, unit address, how many masters behind it)] in one file."""
    text, at = smmus_dtsi(*[(None, unit) for _, unit, _ in smmus])
    tree = write_tree(tmp_path / "linux", {ACME_A: text})
    links = [evidence("rescued-by-device", f"/soc/m@{k:02d}", smmu=f"/soc/iommu@{unit}",
                      compatible=(), driver=driver)
             for driver, unit, masters in smmus for k in range(masters)]
    sweep = sweep_of(links + extra, {p: (ACME_A, n) for p, n in at.items()}, rule=rule,
                     target=target)
    (patch,) = make_series(sweep, tree, author=AUTHOR, date=DATE).patches
    assert_golden(f"{case}/{patch.filename}", patch.text)


def test_a_master_without_a_path_is_listed_before_the_named_ones(tmp_path):
    # A saved sweep may hold a link without a master path (null in its JSON).
    text, at = smmus_dtsi(("smmu", "5000000"))
    tree = write_tree(tmp_path / "linux", {ACME_A: text})
    links = [evidence("rescued-by-device", path) for path in ("/soc/b", None, "/soc/a")]
    (patch,) = make_series(sweep_of(links, {SMMU: (ACME_A, at[SMMU])}), tree, author=AUTHOR,
                           date=DATE).patches
    listed = patch.text.split("(rescued-by-device):\n")[1].split("\n\n")[0].split("\n")
    assert len(listed) == 3 and not listed[0].startswith("  - /soc/")
    assert listed[1:] == ["  - /soc/a (platform)", "  - /soc/b (platform)"]


def test_a_series_of_nothing_is_a_cover_letter_of_zero_patches(tmp_path, monkeypatch):
    no_git_identity(monkeypatch, tmp_path)
    tree = write_tree(tmp_path / "linux", {ACME_A: smmus_dtsi(("smmu", "5000000"))[0]})
    # The SMMU is coherent: no evidence against it.
    sweep = sweep_of([evidence("broken", "/soc/dev@1", smmu_coherent=True)],
                     {SMMU: (ACME_A, 4)}, rule="walk-only", target="6.1.0")
    series = make_series(sweep, tree, date=DATE)
    assert series.patches == [] and series.skips == [] and series.base_commit is None
    assert_golden("nothing/0000-cover-letter.patch", series.cover)


# -- the subject and the file name ----------------------------------------------------------

@pytest.mark.parametrize("file, vendor", [
    pytest.param(f"{DTS}/freescale/fsl-ls1028a.dtsi", "freescale", id="vendor-folder"),
    pytest.param(f"{DTS}/freescale/sub/x.dtsi", "freescale", id="below-the-vendor-folder"),
    pytest.param(f"{DTS}/x.dtsi", "dts", id="no-vendor-folder"),
    pytest.param("src/arm64/freescale/fsl-ls1028a.dtsi", "freescale",
                 id="devicetree-rebasing"),
    pytest.param("a/b/c/d/x.dtsi", "d", id="elsewhere-its-folder"),
    pytest.param("acme/x.dtsi", "acme", id="one-folder"),
    pytest.param("x.dtsi", "dts", id="at-the-top"),
])
def test_the_subject_names_the_vendor_folder(tmp_path, file, vendor):
    (patch,) = one_smmu_series(tmp_path, file=file, socs=("acme,a100",)).patches
    assert patch.subject == f"arm64: dts: {vendor}: a100: mark SMMU as DMA coherent"


@pytest.mark.parametrize("socs, named", [
    pytest.param(("fsl,ls1028a",), "ls1028a", id="one-soc"),
    pytest.param(("fsl,ls1028a", "fsl,ls1027a", "vendor,sub,x"), "ls1027a/ls1028a/sub,x",
                 id="three-socs-sorted-after-the-vendor"),
    pytest.param(("fsl,a", "fsl,b", "fsl,c", "fsl,d"), "a", id="four-socs-the-file"),
    pytest.param((None,), "a", id="a-soc-without-a-name-the-file"),
    pytest.param(("acme,x", None), "a", id="a-named-and-a-nameless-soc-the-file"),
    pytest.param(("plain",), "plain", id="a-soc-without-a-vendor"),
])
def test_the_subject_names_up_to_three_socs_else_the_file(tmp_path, socs, named):
    (patch,) = one_smmu_series(tmp_path, socs=socs).patches
    assert patch.subject == f"arm64: dts: acme: {named}: mark SMMU as DMA coherent"


@pytest.mark.parametrize("soc, filename", [
    pytest.param("acme,a.b_c", "0001-arm64-dts-acme-a.b_c-mark-SMMU-as-DMA-coherent.patch",
                 id="dots-and-underscores-kept"),
    pytest.param("acme,X-ray (2)", "0001-arm64-dts-acme-X-ray-2-mark-SMMU-as-DMA-coherent.patch",
                 id="runs-of-others-one-dash"),
    # Cut after the name is made, as git cuts it: a '-' or '.' there stays.
    pytest.param("acme," + "s" * 36, "0001-arm64-dts-acme-" + "s" * 36 + "-.patch",
                 id="cut-at-52-after-a-dash"),
    pytest.param("acme," + "s" * 35 + ".", "0001-arm64-dts-acme-" + "s" * 35 + ".-.patch",
                 id="cut-at-52-after-a-dot"),
    pytest.param("acme,a..b...c", "0001-arm64-dts-acme-a.b.c-mark-SMMU-as-DMA-coherent.patch",
                 id="runs-of-dots-one-dot"),
    pytest.param("acme," + "s" * 37, "0001-arm64-dts-acme-" + "s" * 37 + ".patch",
                 id="cut-at-52-a-letter-kept"),
    pytest.param("acme," + "s" * 40, "0001-arm64-dts-acme-" + "s" * 37 + ".patch",
                 id="cut-at-52-within-a-word"),
])
def test_patch_files_are_named_as_git_format_patch_names_them(tmp_path, soc, filename):
    (patch,) = one_smmu_series(tmp_path, socs=(soc,)).patches
    assert patch.filename == filename
    repo = tmp_path / "r"
    git_checkout(write_tree(repo, {"f": "a\n"}))
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "--allow-empty", "-m", patch.subject],
                   check=True, env=dict(os.environ, **GIT_ENV))
    made = subprocess.run(["git", "-C", str(repo), "format-patch", "-1", "--numbered", "-o",
                           str(tmp_path / "git")], check=True, capture_output=True, text=True)
    assert os.path.basename(made.stdout.strip()) == filename


# -- the headers --------------------------------------------------------------------------

def no_git_identity(monkeypatch, tmp_path):
    """No user or system git configuration: only the tree's own counts."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                 "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("config, author", [
    pytest.param({}, "dtb-audit <dtb-audit@invalid>", id="none"),
    pytest.param({"user.name": "Ann Maintainer"}, "dtb-audit <dtb-audit@invalid>",
                 id="a-name-only"),
    pytest.param({"user.email": "ann@example.org"}, "dtb-audit <dtb-audit@invalid>",
                 id="an-email-only"),
    pytest.param({"user.name": "Ann Maintainer", "user.email": "ann@example.org"},
                 "Ann Maintainer <ann@example.org>", id="both"),
])
def test_the_author_is_the_trees_git_identity(monkeypatch, tmp_path, config, author):
    no_git_identity(monkeypatch, tmp_path)
    tree = tmp_path / "linux"
    tree.mkdir()
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    for key, value in config.items():
        subprocess.run(["git", "-C", str(tree), "config", key, value], check=True)
    series = one_smmu_series(tmp_path, author=None, signoff=True)
    assert f"\nFrom: {author}\n" in series.cover
    assert f"\nFrom: {author}\n" in series.patches[0].text
    assert f"\nSigned-off-by: {author}\n---\n" in series.patches[0].text


def test_without_a_git_checkout_the_author_is_dtb_audit(monkeypatch, tmp_path):
    no_git_identity(monkeypatch, tmp_path)
    series = one_smmu_series(tmp_path, author=None)
    assert "\nFrom: dtb-audit <dtb-audit@invalid>\n" in series.patches[0].text
    assert "dtb-audit (1):\n" in series.cover


@pytest.mark.parametrize("epoch, date", [pytest.param(epoch, date, id=date[:11].strip(", "))
                                         for epoch, date in [
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
]])
def test_the_date_from_source_date_epoch_as_git_writes_it(monkeypatch, tmp_path, epoch, date):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(epoch))
    series = one_smmu_series(tmp_path, date=None)
    assert f"\nDate: {date}\n" in series.patches[0].text and f"\nDate: {date}\n" in series.cover


def test_the_date_is_now_in_the_local_time_zone(monkeypatch, tmp_path):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        series = one_smmu_series(tmp_path, date=None)
        after = datetime.datetime.now(datetime.timezone.utc)
    finally:
        monkeypatch.undo()
        time.tzset()
    date = series.patches[0].text.split("\nDate: ")[1].split("\n")[0]
    assert date.endswith(" +0530")
    when = email.utils.parsedate_to_datetime(date)
    assert before <= when <= after
    # The names git uses, in English, whatever the locale.
    assert date == (f"{'Mon Tue Wed Thu Fri Sat Sun'.split()[when.weekday()]}, {when.day} "
                    f"{'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split()[when.month - 1]} "
                    f"{when:%Y %H:%M:%S} +0530")


def _headers(mail):
    """The header lines of a mail but its first (From <sha>) and Date:."""
    head = mail.split("\n\n", 1)[0].split("\n")[1:]
    return [line for line in head if not line.startswith("Date: ")]


@pytest.mark.parametrize("author, socs, identity", [
    pytest.param("Jörg Müller-Lüdenscheidt <jm@example.org>",
                 ("acme,Ä100-extra-long-name", "acme,Ö200-extra-long-name", "acme,Ü300"),
                 "Jörg's tree", id="not-ascii-anywhere-and-a-folded-subject"),
    pytest.param("Doe, J. Q. (ACME) Jr <jd@example.org>", ('acme,plain "ASCII" =?x?=',), None,
                 id="specials-in-the-name-and-an-encoded-word-in-the-subject"),
    pytest.param("Ann Example <ann@example.org>", ("acme,a",), "Zoë's tree",
                 id="not-ascii-in-the-body-only"),
    pytest.param("Ann Example <ann@example.org>", ("acme,a",), None, id="ascii"),
    pytest.param("Zo\u00eb (ACME) O'Brien <z@example.org>", ("acme,\u00e4_b=c? ~tilde",), None,
                 id="not-ascii-and-specials-in-the-name-and-subject"),
    pytest.param('Ann "Q" Back\\slash <a@example.org>', ("acme,a",), None,
                 id="quotes-and-a-backslash-in-the-name"),
])
def test_the_mail_headers_are_the_ones_git_format_patch_writes(tmp_path, author, socs, identity):
    text, at = smmus_dtsi(("smmu", "5000000"))
    tree = write_tree(tmp_path / "linux", {ACME_A: text})
    links = [evidence("rescued-by-device", "/soc/dev@1", soc=soc) for soc in socs]
    series = make_series(sweep_of(links, {SMMU: (ACME_A, at[SMMU])}, identity=identity), tree,
                         author=author, date=DATE)
    (patch,) = series.patches
    # The same commit made by git, written by git format-patch.
    name, address = author[:-1].split(" <")
    repo = tmp_path / "r"
    env = dict(os.environ, GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=address,
               GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=address, HOME=str(tmp_path),
               GIT_CEILING_DIRECTORIES=str(tmp_path))
    git = lambda *a: subprocess.run(["git", "-C", str(repo), *a], env=env, check=True,
                                    capture_output=True, text=True).stdout
    repo.mkdir()
    git("init", "-q")
    (repo / "f").write_text("a\n")
    git("add", "f")
    body = patch.text.split("\n\n", 1)[1].split("\n---\n")[0] + "\n"
    git("commit", "-q", "-m", f"{patch.subject}\n\n{body}")
    theirs = git("format-patch", "-1", "--numbered", "--stdout")
    assert _headers(patch.text) == _headers(theirs)


# -- where the line goes, and the diff git takes ---------------------------------------------

def test_the_line_goes_after_iommu_cells_and_the_diff_is_gits(tmp_path):
    text, at = smmus_dtsi(("smmu", "5000000"))
    series = one_smmu_series(tmp_path, text=text + "\t\n", line=at[SMMU])
    diff = series.patches[0].text.split("\n---\n", 1)[1].rsplit("-- \n", 1)[0]
    tree = tmp_path / "linux"
    git_checkout(tree)
    (tree / ACME_A).write_text(text.replace("#iommu-cells = <1>;\n",
                                            "#iommu-cells = <1>;\n\t\t\tdma-coherent;\n") + "\t\n")
    git = subprocess.run(["git", "-C", str(tree), "diff", "--abbrev=12"], check=True,
                         capture_output=True, text=True).stdout
    assert diff == f" {ACME_A} | 1 +\n 1 file changed, 1 insertion(+)\n\n" + git


def test_a_file_without_a_last_newline_gets_gits_marker(tmp_path):
    # The hunk reaches the end of a file that lacks its last newline.
    old = "/ {\n\tsmmu {\n\t\tx;\n\t};\n};"
    (patch,) = one_smmu_series(tmp_path, text=old, line=2, path="/smmu").patches
    tree = tmp_path / "linux"
    git_checkout(tree)
    (tree / ACME_A).write_text(old.replace("x;\n", "x;\n\t\tdma-coherent;\n"))
    git = subprocess.run(["git", "-C", str(tree), "diff", "--abbrev=12"], check=True,
                         capture_output=True, text=True).stdout
    assert patch.text.rsplit("-- \n", 1)[0].endswith("\n\n" + git)
    assert git.endswith("\n \t};\n };\n\\ No newline at end of file\n")


def test_the_index_line_names_the_blobs_and_mode_git_would(tmp_path):
    text, at = smmus_dtsi(("smmu", "5000000"))
    tree = write_tree(tmp_path / "linux", {ACME_A: text})
    dtsi = tree / ACME_A
    # A byte that is not UTF-8 (in a comment) and an executable bit.
    with open(dtsi, "ab") as f:
        f.write(b"/* caf\xe9 */\n")
    os.chmod(dtsi, 0o755)
    hash_object = lambda: subprocess.run(["git", "hash-object", str(dtsi)], check=True,
                                         capture_output=True, text=True).stdout.strip()
    old = hash_object()
    sweep = sweep_of([evidence("rescued-by-device", "/soc/dev@1")], {SMMU: (ACME_A, at[SMMU])})
    series = make_series(sweep, tree, author=AUTHOR, date=DATE)
    files = write_series(series, tmp_path / "out")
    assert check_series(tree, files[1:]) == []
    subprocess.run(["git", "apply", files[1]], cwd=tree, check=True,
                   env=dict(os.environ, GIT_CEILING_DIRECTORIES=str(tmp_path)))
    assert f"\nindex {old[:12]}..{hash_object()[:12]} 100755\n" in series.patches[0].text
    assert dtsi.read_bytes().endswith(b"/* caf\xe9 */\n")


def test_lines_are_counted_through_a_continued_directive(tmp_path):
    # A #define continued on the next line is one directive of two lines:
    # the node after it opens at the line the sweep recorded.
    text = ("#define SMMU_IRQS \\\n\t13 14\n/ {\n\tsmmu: iommu@1 {\n\t\treg = <1>;\n"
            "\t};\n};\n&smmu {\n\tstatus = \"okay\";\n};")
    (patch,) = one_smmu_series(tmp_path, text=text, line=4, path="/iommu@1").patches
    assert "\n \t\treg = <1>;\n+\t\tdma-coherent;\n \t};\n" in patch.text
    (skip,) = one_smmu_series(tmp_path, text=text, line=5, path="/iommu@1").skips
    assert skip.reason == f"{ACME_A}:5: no node opens here"


# -- what is left alone, and why ------------------------------------------------------------

def written(*chain):
    """DTS with the nodes of `chain` one inside the other, the last one at
    line len(chain) with #iommu-cells."""
    n = len(chain)
    return "\n".join(["\t" * k + name + " {" for k, name in enumerate(chain)] +
                     ["\t" * n + "#iommu-cells = <1>;"] +
                     ["\t" * k + "};" for k in reversed(range(n))]) + "\n"


@pytest.mark.parametrize("chain, path, label, patched", [
    # From the root: the whole path.
    pytest.param(("/", "soc", "iommu@5000000"), SMMU, None, True, id="root-whole-path"),
    pytest.param(("/", "soc", "iommu@5000000"), "/soc/iommu@6000000", None, False,
                 id="root-other-unit-address"),
    pytest.param(("/", "iommu@5000000"), SMMU, None, False, id="root-path-too-short"),
    pytest.param(("/", "Xbar", "iommu@5000000"), "/Xbar/iommu@5000000/", None, True,
                 id="root-path-with-trailing-slash"),
    # &{/path}: that path, then the nodes inside.
    pytest.param(("&{/soc}", "iommu@5000000"), SMMU, None, True, id="path-reference"),
    pytest.param(("&{/soc/}", "iommu@5000000"), SMMU, None, True,
                 id="path-reference-trailing-slash"),
    pytest.param(("&{/}", "soc", "iommu@5000000"), SMMU, None, True, id="path-reference-root"),
    pytest.param(("&{/bus}", "iommu@5000000"), SMMU, None, False, id="path-reference-other"),
    pytest.param(("&{/soc/bus}", "iommu@5000000"), "/soc/bus/iommu@5000000", None, True,
                 id="path-reference-two-deep"),
    pytest.param(("&{/barX}", "iommu@5000000"), "/barX/iommu@5000000", None, True,
                 id="path-reference-x-in-name"),
    # &label alone: the node's labels decide.
    pytest.param(("&smmu",), SMMU, "smmu", True, id="label-reference-its-label"),
    pytest.param(("&smmu",), SMMU, "mmu", False, id="label-reference-another-label"),
    # &label { nodes }: the nodes inside are the end of the path.
    pytest.param(("&soc", "iommu@5000000"), SMMU, None, True, id="label-then-node"),
    pytest.param(("&bus", "soc", "iommu@5000000"), "/bus/soc/iommu@5000000", None, True,
                 id="label-then-two-nodes"),
    pytest.param(("&root", "soc", "iommu@5000000"), SMMU, None, True,
                 id="label-of-the-root-then-nodes"),
    pytest.param(("&soc", "iommu@5000000"), "/soc/iommu@6000000", None, False,
                 id="label-then-another-node"),
    pytest.param(("&soc", "bus", "iommu@5000000"), SMMU, None, False,
                 id="label-then-a-deeper-node"),
    # A node name at the top (inside an included fragment): the end of the path.
    pytest.param(("soc", "iommu@5000000"), SMMU, None, True, id="fragment"),
    pytest.param(("soc", "iommu@5000000"), "/bus/soc/iommu@5000000", None, True,
                 id="fragment-deeper"),
    pytest.param(("soc", "iommu@5000000"), "/iommu@5000000", None, False,
                 id="fragment-longer-than-the-path"),
    pytest.param(("iommu@5000000",), SMMU, None, True, id="fragment-the-node"),
    pytest.param(("iommu@5000000",), "/soc/iommu@6000000", None, False,
                 id="fragment-another-node"),
])
def test_a_node_is_patched_only_where_the_tree_still_writes_it(tmp_path, chain, path, label,
                                                               patched):
    series = one_smmu_series(tmp_path, text=written(*chain), line=len(chain), path=path,
                             label=label)
    if patched:
        assert [[c.path for c in p.candidates] for p in series.patches] == [[path]]
        assert series.skips == []
    else:
        (skip,) = series.skips
        assert series.patches == [] and skip.path == path
        assert skip.reason.startswith(f"{ACME_A}:{len(chain)}: the node written here (")
        assert skip.reason.endswith(f") is not {path}: the tree changed since the sweep; "
                                    "sweep it again")


def test_a_node_named_differently_is_named_as_written(tmp_path):
    (skip,) = one_smmu_series(tmp_path, text=written("/", "soc", "iommu@5000000"), line=3,
                              path="/soc/iommu@6000000").skips
    assert skip.reason == (f"{ACME_A}:3: the node written here (/soc/iommu@5000000) is not "
                           "/soc/iommu@6000000: the tree changed since the sweep; sweep it again")
    (skip,) = one_smmu_series(tmp_path, text=written("&{/bus}", "iommu@5000000"), line=2).skips
    assert "the node written here (&{/bus}/iommu@5000000) is not" in skip.reason


def test_nodes_a_series_cannot_patch_are_left_alone_with_the_reason(tmp_path):
    text, at = smmus_dtsi(("smmu", "5000000"))
    cases = {
        "coherent": text.replace("#iommu-cells = <1>;\n",
                                 "#iommu-cells = <1>;\n\t\t\tdma-coherent;\n"),
        "noncoherent": text.replace("#iommu-cells = <1>;\n",
                                    "#iommu-cells = <1>;\n\t\t\tdma-noncoherent;\n"),
        "unbalanced": text + "};\n",
    }
    reasons = {}
    for name, source in cases.items():
        (skip,) = one_smmu_series(tmp_path / name, text=source, line=at[SMMU],
                                  socs=("acme,b", None, "acme,a")).skips
        assert (skip.path, skip.socs, skip.where) == (SMMU, ["?", "acme,a", "acme,b"],
                                                      f"{ACME_A}:{at[SMMU]}")
        reasons[name] = skip.reason
    assert reasons["coherent"].startswith(f"{ACME_A}:{at[SMMU]}: ")
    assert "already has dma-coherent" in reasons["coherent"]
    assert "says dma-noncoherent" in reasons["noncoherent"]
    assert reasons["unbalanced"].startswith(f"{ACME_A}:") and "unmatched" in reasons["unbalanced"]


def test_a_nameless_soc_without_a_source_position_is_named_by_a_question_mark(tmp_path):
    tree = write_tree(tmp_path / "linux", {})
    sweep = sweep_of([evidence("rescued-by-device", "/soc/dev@1", soc=None,
                               smmu="/soc/iommu@1")], {})
    series = make_series(sweep, tree, author=AUTHOR, date=DATE)
    assert [(s.path, s.socs, s.where) for s in series.skips] == [("/soc/iommu@1", ["?"], None)]
    assert ("  - /soc/iommu@1 (?): no source position (the corpus was not built from\n"
            "    a kernel tree)\n") in series.cover


def test_only_the_evidence_accuses_and_non_coherent_masters_are_named_against():
    # SPEC section 4: rescued-by-device and broken-bridge-coherent accuse an
    # SMMU that is not coherent; broken non-coherent masters of the same SMMU
    # in the same SoC are named against it.
    where = {"/soc/iommu@1": ("a.dtsi", 9), "/soc/iommu@2": (None, None),
             "/soc/iommu@3": ("a.dtsi", None), "/soc/iommu@4": ("a.dtsi", 3)}
    links = [evidence("broken", "/soc/m0", dma="non-coherent", smmu="/soc/iommu@1"),
             evidence("rescued-by-device", "/soc/m1", smmu="/soc/iommu@1", smmu_coherent=True),
             evidence("rescued-by-device", "/soc/m2", smmu="/soc/iommu@1"),
             evidence("broken-bridge-coherent", "/soc/m3", soc="acme,b", smmu="/soc/iommu@1"),
             evidence("rescued-by-device", "/soc/m4", smmu="/soc/iommu@2"),
             evidence("rescued-by-device", "/soc/m5", smmu="/soc/iommu@3"),
             evidence("rescued-by-device", "/soc/m6", smmu="/soc/iommu@4"),
             evidence("broken", "/soc/m7", smmu="/soc/iommu@1"),
             evidence("broken", "/soc/m8", dma="non-coherent", smmu="/soc/iommu@1",
                      smmu_coherent=True),
             evidence("broken", "/soc/m9", dma="non-coherent", soc="acme,c",
                      smmu="/soc/iommu@1")]
    sweep = sweep_of(links, {})
    sweep = dataclasses.replace(sweep, socs=tuple(
        SocSummary(soc=soc, affected=True, passthrough=False, boards=(), affected_boards=(),
                   providers=tuple(Provider(p, None, (), "arm-smmu", False, True, f, n, (), {})
                                   for p, (f, n) in where.items()),
                   broken_masters=(), verdict_counts={}) for soc in ("acme,a", "acme,b")))
    found, skips = candidates(sweep)
    assert [(c.source_file, c.source_line, c.path, sorted(c.socs),
             [l.master_path for l in c.links], [l.master_path for l in c.against])
            for c in found] == [
        ("a.dtsi", 3, "/soc/iommu@4", ["acme,a"], ["/soc/m6"], []),
        ("a.dtsi", 9, "/soc/iommu@1", ["acme,a", "acme,b"], ["/soc/m2", "/soc/m3"], ["/soc/m0"])]
    assert [(s.path, s.socs, s.where) for s in skips] == [
        ("/soc/iommu@2", ["acme,a"], None), ("/soc/iommu@3", ["acme,a"], None)]


# -- writing the series -------------------------------------------------------------------

def test_write_series_writes_the_text_as_made_and_says_what_it_cannot(tmp_path):
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


# -- on the mini kernel: the verify loop and `dtb-audit patch` (run) -------------------------

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


def _soc(*, before, after, patched=(), others=()):
    """What the verify loop found of a SoC; patched: [(path, coherent, affected)]."""
    return {"before": before, "after": after,
            "patched": [{"path": p, "coherent": c, "affected": a} for p, c, a in patched],
            "others": list(others)}


FIXED = _soc(before=True, after=False, patched=[(SMMU, True, False)])


@pytest.mark.parametrize("socs, not_applied, failed_builds, ok", [
    pytest.param({}, [], [], True, id="nothing-to-do"),
    pytest.param({"a": FIXED}, [], [], True, id="the-patched-smmu-fixed"),
    pytest.param({"a": _soc(before=True, after=True, patched=[(SMMU, True, False)],
                            others=["/other"])}, [], [], True,
                 id="still-affected-through-an-smmu-left-alone"),
    pytest.param({"a": FIXED}, [("p", "m")], [], False, id="a-patch-not-applied"),
    pytest.param({"a": FIXED}, [], [("d.dtb", "m")], False, id="a-board-not-built"),
    pytest.param({"a": _soc(before=True, after=None)}, [], [], False, id="a-soc-not-rebuilt"),
    pytest.param({"a": _soc(before=True, after=False, patched=[(SMMU, False, False)])}, [], [],
                 False, id="a-patched-smmu-not-coherent"),
    pytest.param({"a": _soc(before=True, after=False, patched=[(SMMU, True, True)])}, [], [],
                 False, id="a-patched-smmu-still-affected"),
    pytest.param({"a": FIXED, "b": _soc(before=True, after=False,
                                         patched=[(SMMU, True, False), ("/s2", True, True)])},
                 [], [], False, id="one-of-two-patched-smmus-still-affected"),
])
def test_the_series_did_its_part_when_every_patched_smmu_is_fixed(socs, not_applied,
                                                                  failed_builds, ok):
    assert Verification(socs, not_applied, failed_builds).ok is ok


def test_format_verification_one_line_per_soc_and_per_problem():
    v = Verification(
        {"acme,a100": _soc(before=True, after=False, patched=[(SMMU, True, False)]),
         "acme,a200": _soc(before=True, after=True,
                                patched=[("/soc/iommu@1", False, False),
                                         ("/soc/iommu@2", True, True),
                                         ("/soc/iommu@3", True, False)],
                                others=["/soc/iommu@9", "/soc/iommu@8"]),
         "acme,a300": _soc(before=False, after=None),
         "acme,a400": _soc(before=False, after=False, others=["/soc/iommu@7"])},
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
    open(dtsi, "w").write(text.replace("\t\t\t#iommu-cells = <1>;\n",
                                       "\t\t\t#iommu-cells = <2>;\n"))
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
    open(dtsi, "w").write(text.replace("\t\t\t#iommu-cells = <1>;\n",
                                       "\t\t\t#iommu-cells = <2>;\n"))
    # a100 stays unpatched; under the rule of a kernel that checks nothing it
    # is not affected, whatever the tree's own version (6.1.192) says.
    result = verify_series(series, dataclasses.replace(sweep, rule=Rule.NO_CHECK), tree)
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


def test_run_writes_the_series_and_says_what_it_left_alone(mini, tmp_path):
    tree, sweep, deps = mini
    out, err = io.StringIO(), io.StringIO()
    folder = tmp_path / "out"
    assert run(sweep, tree, str(folder), deps, author=AUTHOR, recipients=False,
               signoff=True, out=out, err=err) == 0
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
    # a100.dtsi is a symbolic link (to a file of the tree: one out of it is
    # never read, tests/integration/test_paths.py): git apply will not patch
    # through it.
    dtsi = os.path.join(tree, A100)
    os.rename(dtsi, dtsi + ".real")
    os.symlink("a100.dtsi.real", dtsi)
    out, err = io.StringIO(), io.StringIO()
    folder = tmp_path / "out"
    assert run(sweep, tree, str(folder), deps, verify=True, author=AUTHOR, recipients=False,
               out=out, err=err) == 1
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
    assert run(bare, tree, str(tmp_path / "out"), deps, recipients=False, out=out, err=err) == 0
    assert out.getvalue() == ""
    assert err.getvalue() == (
        f"{SMMU}: warning: {SMMU} (acme,a100, acme,a200, acme,a300) not patched: "
        "no source position "
        f"(the corpus was not built from a kernel tree)\n"
        "dtb-audit: no SMMU node to patch\n")
    assert not (tmp_path / "out").exists()


def test_format_verification_of_a_nameless_soc():
    v = Verification({None: _soc(before=True, after=False, patched=[(SMMU, True, False)])}, [], [])
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
    assert run(sweep, tree, str(tmp_path / "out"), deps, verify=True, author=AUTHOR,
               recipients=False, out=io.StringIO(), err=err) == 0
    assert err.getvalue().split("\n")[1:] == [
        "acme,a100: affected -> no longer affected", "acme,a200: affected -> no longer affected",
        ""]
    # Far from the hunk: the patch applies, the boards of a100 do not build.
    with open(os.path.join(tree, A100), "a") as f:
        f.write("\nthis is not a device tree\n")
    err = io.StringIO()
    assert run(sweep, tree, str(tmp_path / "out"), deps, verify=True, author=AUTHOR,
               recipients=False, out=io.StringIO(), err=err) == 1
    lines = err.getvalue().split("\n")[1:]
    assert [l.split(": error: ")[0] for l in lines[:2]] == ["acme/a100-evk.dtb",
                                                           "acme/a100-mini.dtb"]
    assert lines[2:] == ["acme,a100: affected -> not rebuilt",
                         "acme,a200: affected -> no longer affected", ""]


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


def test_verify_rebuilds_a_board_whose_name_reads_as_a_glob(tmp_path, isolated_cache):
    # The boards to rebuild are chosen by name patterns: a200's one board,
    # named a200-rdb[2]*, must be taken as that name, not as a pattern.
    tree = make_minikernel(tmp_path / "linux")
    folder = os.path.join(tree, VENDOR_DIR)
    os.rename(os.path.join(folder, "a200-rdb.dts"), os.path.join(folder, "a200-rdb[2]*.dts"))
    makefile = os.path.join(folder, "Makefile")
    text = open(makefile).read()
    open(makefile, "w").write(text.replace("a200-rdb.dtb", "a200-rdb[2]*.dtb"))
    corpus = build_corpus(kernel=tree, out=tmp_path / "dtbs")
    sweep = sweep_corpus(corpus)
    series = make_series(sweep, tree, dependencies(corpus), author=AUTHOR, date=DATE)
    write_series(series, tmp_path / "out")
    result = verify_series(series, sweep, tree)
    assert format_verification(result) == ("acme,a100: affected -> no longer affected\n"
                                           "acme,a200: affected -> no longer affected\n")
    assert result.ok
