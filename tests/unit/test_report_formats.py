"""Every format from a saved sweep (no numba: the golden sweeps of
tests/golden/ read back through load_sweep), and the details of each that
the golden files show only once: limits of the table, counts, CSV cells,
Markdown escaping, gcc's fallback location, the summary line."""
import csv
import dataclasses
import io
import json

import pytest

from auditor import report
from auditor.model import LINK_FIELDS, Diagnostic, load_sweep
from auditor.text import shown
from kernels.codes import Rule
from kernels.target import TargetKernel
from testpaths import GOLDEN
from goldenfiles import text_file



def render(sweep, fmt):
    return text_file(lambda f: report.write(sweep, fmt, f))


@pytest.fixture(scope="module")
def snippets():
    return load_sweep(GOLDEN / "snippets/sweep.json")


@pytest.fixture(scope="module")
def mini():
    return load_sweep(GOLDEN / "minikernel/sweep.json")


def soc(sweep, name):
    (s,) = [s for s in sweep.socs if s.soc == name]
    return s


def replace_soc(sweep, name, **changes):
    return dataclasses.replace(sweep, socs=tuple(
        dataclasses.replace(s, **changes) if s.soc == name else s for s in sweep.socs))


@pytest.mark.parametrize("source", ["snippets", "minikernel"])
@pytest.mark.parametrize("fmt", report.FORMATS)
def test_a_saved_sweep_renders_as_the_sweep_did(source, fmt):
    """load_sweep() gives back everything a report reads: each format of the
    saved golden sweep is byte for byte the golden file of that format."""
    sweep = load_sweep(GOLDEN / f"{source}/sweep.json")
    out, golden = render(sweep, fmt), (GOLDEN / f"{source}/sweep.{fmt}").read_text()
    if fmt != "sarif":
        assert out == golden
        return
    # The saved paths hold placeholders ("{TMP}/old"): file URIs and the
    # tool's version are the machine's; everything else is the golden file's.
    out, golden = json.loads(out), json.loads(golden)
    for doc in (out, golden):
        del doc["runs"][0]["originalUriBaseIds"], doc["runs"][0]["tool"]["driver"]["version"]
    assert out == golden


def test_formats_are_the_writers():
    assert report.FORMATS == ("table", "jsonl", "json", "csv", "md", "gcc", "sarif")
    assert tuple(report.WRITERS) == report.FORMATS


# -- table --------------------------------------------------------------------------

def test_summary_line(snippets, mini):
    assert report.summary_line(mini) == (
        f"linux-6.1.192 ({mini.corpus.kernel_dir}): target 6.1.192: rule walk-or-device: "
        "16 links on 6 boards of 4 SoCs; 3 SoCs affected (3 with PCI/fsl-mc passthrough broken)")
    partial = dataclasses.replace(snippets, corpus=dataclasses.replace(snippets.corpus, partial=True))
    assert report.summary_line(partial).startswith(
        f"DTBs in {snippets.corpus.root} (PARTIAL corpus: its build was interrupted): target 7.2 ")


def test_target_words():
    sweep = load_sweep(GOLDEN / "snippets/sweep.json")
    assert report.target_words(sweep) == \
        "target 7.2 (assumed: the newest modelled; give --target-kernel)"
    told = dataclasses.replace(sweep, target_assumed=False,
                               target_kernel=TargetKernel.parse("6.12.117"))
    assert report.target_words(told) == "target 6.12.117"
    assert report.target_words(dataclasses.replace(sweep, target_kernel=None)) == "target unknown"


def test_no_check_rule_says_why(snippets):
    out = render(dataclasses.replace(snippets, rule=Rule.NO_CHECK), "table")
    assert out.split("\n")[1] == ("  (VFIO does not ask for IOMMU_CAP_CACHE_COHERENCY before "
                                  "v5.19 (e8ae0e140c05): no device is refused for coherency)")
    assert "\n  (" not in render(snippets, "table")


def test_table_limits_platform_masters_and_boards(snippets):
    plat = soc(snippets, "acme,plat")
    (m,) = plat.broken_masters
    masters = tuple(dataclasses.replace(m, path=f"/soc/dma@{k}") for k in range(8))
    pci = dataclasses.replace(m, path="/soc/pcie@0", kind="pci-discovered",
                              verdict="broken-bridge-coherent")
    boards = tuple(f"b{k}.dtb" for k in range(9))
    sweep = replace_soc(snippets, "acme,plat", broken_masters=(pci,) + masters,
                        affected_boards=boards, boards=boards)
    lines = render(sweep, "table").split("\n")
    start = lines.index("AFFECTED acme,plat  9/9 boards  [platform devices only]")
    assert lines[start + 2:start + 12] == [
        "            evidence  coherent-masters: masters behind it, or the bus above them, are "
        "DMA coherent",
        "  broken    pci-discovered  /soc/pcie@0  broken-bridge-coherent  (2 boards)",
        *[f"  broken    platform        /soc/dma@{k}  broken  (2 boards)" for k in range(5)],
        "  broken    ... and 3 more platform devices (--format json lists them)",
        "  boards    b0.dtb, b1.dtb, b2.dtb, b3.dtb, b4.dtb, b5.dtb, ... and 3 more",
        "  verdicts  broken 2, rescued-by-device 2, not-a-device 2"]


def test_table_with_exactly_the_limits_says_no_more(snippets):
    plat = soc(snippets, "acme,plat")
    (m,) = plat.broken_masters
    masters = tuple(dataclasses.replace(m, path=f"/soc/dma@{k}") for k in range(5))
    boards = tuple(f"b{k}.dtb" for k in range(6))
    out = render(replace_soc(snippets, "acme,plat", broken_masters=masters,
                             affected_boards=boards), "table")
    assert "... and" not in out
    assert "  boards    b0.dtb, b1.dtb, b2.dtb, b3.dtb, b4.dtb, b5.dtb\n" in out


def test_table_lists_only_affected_providers_and_counts_the_rest(mini):
    a100 = soc(mini, "acme,a100")
    (p,) = a100.providers
    idle = dataclasses.replace(p, path="/soc/iommu@6000000", affected=False, source_file=None,
                               source_line=None)
    for providers in ((p, idle), (idle, p)):
        out = render(replace_soc(mini, "acme,a100", providers=providers), "table")
        assert "iommu@6000000" not in out
        assert "  provider  /soc/iommu@5000000 arm,mmu-500: NOT dma-coherent\n" \
               "            written at arch/arm64/boot/dts/acme/a100.dtsi:27\n" in out
        assert out.endswith("\nnot affected: 1 SoCs\n")


def test_table_counts_diagnostics(snippets):
    assert render(snippets, "table").endswith("\nnot affected: 4 SoCs\n2 diagnostics (on stderr)\n")
    none = dataclasses.replace(snippets, diagnostics=())
    assert render(none, "table").endswith("\nnot affected: 4 SoCs\n")


def test_verdict_counts_most_first(snippets):
    assert report._counts({"broken": 1, "capable": 3, "no-iommu": 2}) == \
        "capable 3, no-iommu 2, broken 1"


def test_provider_line(mini, snippets):
    (p,) = soc(mini, "acme,a100").providers
    assert report._provider_line(p) == "/soc/iommu@5000000 arm,mmu-500: NOT dma-coherent"
    labelled = dataclasses.replace(p, label="apps_smmu", coherent=True,
                                   compatible=("qcom,sdm845-smmu-500", "arm,mmu-500"))
    assert report._provider_line(labelled) == \
        "/soc/iommu@5000000 (apps_smmu) qcom,sdm845-smmu-500, arm,mmu-500: dma-coherent"


# -- jsonl, json, csv -------------------------------------------------------------------

def test_jsonl_one_record_per_link_without_diagnostic(snippets):
    lines = render(snippets, "jsonl").splitlines()
    assert len(lines) == len(snippets.links) == 14
    records = [json.loads(line) for line in lines]
    # the link's fields, then its SMMU's evidence class when its SoC is affected
    assert all(list(r) == [*LINK_FIELDS, "evidence"] for r in records)
    assert "diagnostic" not in LINK_FIELDS
    assert {(r["soc"], r["evidence"]) for r in records if r["evidence"]} == {
        ("acme,mc", "coherent-masters"), ("acme,pci", "coherent-masters"),
        ("acme,plat", "coherent-masters"), ("evil\nsoc\x1b[31m", "no-evidence")}
    assert [r["master_path"] for r in records] == [link.master_path for link in snippets.links]


def test_json_is_the_document(snippets):
    out = render(snippets, "json")
    assert json.loads(out) == snippets.to_json()
    assert out.startswith('{\n "tool": "dtb-audit",\n "schema": 2,\n') and out.endswith("}\n")


def test_csv_cells(snippets):
    rows = list(csv.reader(io.StringIO(render(snippets, "csv"))))
    assert rows[0] == [*LINK_FIELDS, "evidence"]
    assert len(rows) == 1 + len(snippets.links)
    by_master = {(r[0], r[10]): dict(zip(rows[0], r)) for r in rows[1:]}
    mc = by_master[("mc-rdb.dtb", "/soc/fsl-mc@80c000000")]
    assert (mc["provider_compatible"], mc["bridge_coherent"], mc["placeholder_map"],
            mc["provider_label"]) == ("arm,mmu-500", "True", "True", "smmu")
    diag = by_master[("diag-evk.dtb", "/soc/dma@1000")]
    assert (diag["provider_path"], diag["driver"], diag["bridge_coherent"]) == ("", "", "")
    two = snippets.links[0]._replace(provider_compatible=("a,b", "c,d"))
    out = render(dataclasses.replace(snippets, links=(two,)), "csv")
    assert list(csv.reader(io.StringIO(out)))[1][5] == "a,b;c,d"
    assert out.count("\r") == 0


# -- md ------------------------------------------------------------------------------------

def test_md_escapes_pipes_and_lists_every_affected_smmu(mini):
    a100 = soc(mini, "acme,a100")
    (p,) = a100.providers
    second = dataclasses.replace(p, path="/soc/iommu|6000000", coherent=True, source_file=None,
                                 source_line=None)
    (m,) = a100.broken_masters
    out = render(replace_soc(mini, "acme,a100", soc="acme|a100", providers=(p, second),
                             broken_masters=(m, dataclasses.replace(m, path="/soc/x"))), "md")
    (row,) = [l for l in out.split("\n") if l.startswith("| `acme\\|a100`")]
    assert row == ("| `acme\\|a100` | 2/2 | `/soc/iommu@5000000`<br>`/soc/iommu\\|6000000` | "
                   "no<br>yes | `arch/arm64/boot/dts/acme/a100.dtsi:27`<br> | "
                   "`/soc/pcie@1f0000000` (pci-discovered, broken-bridge-coherent)<br>"
                   "`/soc/x` (pci-discovered, broken-bridge-coherent) |")
    assert out.startswith("**linux-6.1.192 (")


# -- gcc -------------------------------------------------------------------------------------

def test_gcc_counts_masters_and_kinds(mini):
    a100 = soc(mini, "acme,a100")
    (m,) = a100.broken_masters
    more = (m, dataclasses.replace(m, path="/soc/eth", kind="platform", verdict="broken"))
    out = render(replace_soc(mini, "acme,a100", broken_masters=more), "gcc")
    assert out.split("\n")[0] == (
        "arch/arm64/boot/dts/acme/a100.dtsi:27: warning: acme,a100: SMMU /soc/iommu@5000000 "
        "lacks dma-coherent: VFIO refuses 2 masters (broken, broken-bridge-coherent) on 2 boards "
        "[rule walk-or-device, target 6.1.192] [evidence coherent-masters: masters behind it, "
        "or the bus above them, are DMA coherent]")


def test_gcc_without_source_names_the_first_dtb(snippets):
    (line,) = [l for l in render(snippets, "gcc").split("\n") if "acme,plat" in l]
    assert line.startswith(f"{snippets.corpus.root}/plat-evk.dtb: warning: acme,plat: ")


# -- diagnostics ----------------------------------------------------------------------------------

def test_diagnostic_line():
    assert report.diagnostic_line(Diagnostic("a.dtb", "/soc/x\n", "bad\x1b[2J")) == \
        "a.dtb: warning: /soc/x\\x0a: bad\\x1b[2J"
    assert report.diagnostic_line(Diagnostic("b\n.dtb", None, "does not parse", "error")) == \
        "b\\x0a.dtb: error: does not parse"


# -- shown() -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, text", [
    ("plain, text", "plain, text"), (None, ""), (42, "42"),
    ("a\nb", "a\\x0ab"), ("\x1b[31m", "\\x1b[31m"), ("\x00\x7f\x9f", "\\x00\\x7f\\x9f"),
    ("\u2028\u2029", "\\u2028\\u2029"), ("\u00e9\u00a0", "\u00e9\u00a0"), ("\t", "\\x09"),
])
def test_shown(raw, text):
    assert shown(raw) == text


def test_gcc_skips_providers_that_are_not_affected(mini):
    a100 = soc(mini, "acme,a100")
    (p,) = a100.providers
    idle = dataclasses.replace(p, path="/soc/iommu@6000000", affected=False)
    out = render(replace_soc(mini, "acme,a100", providers=(idle, p)), "gcc")
    assert [l.split(": ")[0] for l in out.splitlines()] == [
        "arch/arm64/boot/dts/acme/a100.dtsi:27", "arch/arm64/boot/dts/acme/a300.dtsi:27",
        "arch/arm64/boot/dts/acme/a200.dtsi:27"]
    assert "iommu@6000000" not in out


def test_sarif_tool_version_without_an_installed_package(monkeypatch, snippets):
    import importlib.metadata

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert report.tool_version() is None
    assert report.sarif_document(snippets)["runs"][0]["tool"]["driver"]["version"] == "0"


def test_sarif_smmus_without_a_source_by_dtb_then_node(snippets, mini):
    # Two SMMUs of one DTB, no source position: by node path, whatever the
    # order the SoC lists them in.
    (p,) = soc(snippets, "acme,plat").providers
    low = dataclasses.replace(p, path="/soc/iommu@1000000")
    doc = report.sarif_document(replace_soc(snippets, "acme,plat", providers=(p, low)))
    assert [(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
             r["properties"]["smmu_path"]) for r in doc["runs"][0]["results"]] == [
        ("evil-evk.dtb", "/soc/iommu-\n\x1b[m@5000000"), ("mc-rdb.dtb", "/soc/iommu@5000000"),
        ("pci-rdb.dtb", "/soc/iommu@5000000"), ("plat-evk.dtb", "/soc/iommu@1000000"),
        ("plat-evk.dtb", "/soc/iommu@5000000")]
    # Written in a source file: by line as a number (99 before 100).
    (a100,) = soc(mini, "acme,a100").providers
    later = dataclasses.replace(a100, path="/soc/iommu@6000000", source_line=100)
    earlier = dataclasses.replace(a100, source_line=99)
    doc = report.sarif_document(replace_soc(mini, "acme,a100", providers=(later, earlier)))
    assert [(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
             r["locations"][0]["physicalLocation"]["region"]["startLine"])
            for r in doc["runs"][0]["results"]] == [
        ("arch/arm64/boot/dts/acme/a100.dtsi", 99), ("arch/arm64/boot/dts/acme/a100.dtsi", 100),
        ("arch/arm64/boot/dts/acme/a200.dtsi", 27), ("arch/arm64/boot/dts/acme/a300.dtsi", 27)]
