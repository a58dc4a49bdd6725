"""`dtb-audit sweep` and `explain` as a user runs them: formats, exit status,
diagnostics on stderr."""
import csv
import io
import json

import pytest

from auditor.cli import main
from auditor.model import LINK_FIELDS
from snippets import compile_dts, device, smmu, soc


@pytest.fixture
def corpus(tmp_path):
    """A folder with an affected board, a clean board and a board with a bad phandle."""
    compile_dts(tmp_path, "affected", soc(smmu(), device("dev@1", "")))
    compile_dts(tmp_path, "clean", soc(smmu(extra="dma-coherent;"), device("dev@1", "")),
                header=HEADER_CLEAN)
    compile_dts(tmp_path, "dangling", soc(smmu(extra="dma-coherent;"), device("dev@1", "", "<0x999 1>")),
                header=HEADER_CLEAN.replace("clean,soc", "dangling,soc"))
    (tmp_path / "notes.dtb").write_bytes(b"this is not a device tree")
    return tmp_path


HEADER_CLEAN = """/dts-v1/;
/ {
	compatible = "clean,board", "clean,soc";
	#address-cells = <2>;
	#size-cells = <2>;
"""


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_jsonl_fields_and_values(corpus, capsys):
    status, out, err = run(capsys, "sweep", corpus, "--format", "jsonl")
    assert status == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert all(list(r) == [*LINK_FIELDS, "evidence"] for r in records)
    (affected,) = [r for r in records if r["soc"] == "test,soc"]
    assert affected == {
        "dtb": "affected.dtb", "board": "test,board", "soc": "test,soc",
        "provider_path": "/soc/iommu@5000000", "provider_label": "smmu",
        "provider_compatible": ["arm,mmu-500"], "driver": "arm-smmu",
        "provider_enabled": True, "provider_coherent": False, "link": "iommus",
        "master_path": "/soc/dev@1", "master_kind": "platform", "master_enabled": True,
        "master_dma_attr": "non-coherent", "bridge_path": None, "bridge_coherent": None,
        "placeholder_map": False, "vfio_candidate": True, "rule": "walk-or-device",
        "verdict": "broken", "note": None, "evidence": "no-evidence"}
    # the bad phandle and the file that is not a DTB: named on stderr, the sweep goes on
    assert "dangling.dtb: warning: /soc/dev@1: iommus: phandle 0x999 points nowhere" in err
    assert [l for l in err.splitlines() if l.startswith("notes.dtb")] == [
        "notes.dtb: error: bad magic, not a DTB (expected d00dfeed) (at offset 0)"]
    assert err.splitlines()[-1] == (
        f"DTBs in {corpus}: target 7.2 (assumed: the newest modelled; give --target-kernel): "
        "rule walk-or-device: 3 links on 3 boards of 3 SoCs; 1 SoC affected "
        "(0 with PCI/fsl-mc passthrough broken)")


def test_fail_on_affected_and_rules(corpus, capsys):
    assert run(capsys, "sweep", corpus, "--format", "json", "--fail-on-affected")[0] == 1
    assert run(capsys, "sweep", corpus, "--format", "json", "--fail-on-affected",
               "--rule", "legacy-true")[0] == 0


def test_usage_error(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["sweep", "--rule", "sometimes"])
    assert exit.value.code == 2


def test_json_csv_md_gcc(corpus, capsys):
    status, out, _ = run(capsys, "sweep", corpus, "--format", "json")
    doc = json.loads(out)
    assert [s["soc"] for s in doc["socs"] if s["affected"]] == ["test,soc"]
    assert (doc["rule"], doc["target_kernel"], doc["target_assumed"]) == (
        "walk-or-device", "7.2", True)
    assert len(doc["links"]) == 3
    _, out, _ = run(capsys, "sweep", corpus, "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == [*LINK_FIELDS, "evidence"] and len(rows) == 4
    _, out, _ = run(capsys, "sweep", corpus, "--format", "md")
    assert "| `test,soc` | 1/1 | `/soc/iommu@5000000` | no |" in out
    _, out, _ = run(capsys, "sweep", corpus, "--format", "gcc")
    (line,) = out.splitlines()
    assert line == (f"{corpus}/affected.dtb: warning: test,soc: SMMU /soc/iommu@5000000 lacks "
                    "dma-coherent: VFIO refuses 1 master (broken) on 1 board "
                    "[rule walk-or-device, target 7.2] [evidence no-evidence: nothing says it lacks "
                    "dma-coherent]")


def test_table_and_output_file(corpus, capsys, tmp_path):
    target = tmp_path / "report.txt"
    assert run(capsys, "sweep", corpus, "--format", "table", "-o", target)[0] == 0
    text = target.read_text()
    assert "AFFECTED test,soc  1/1 boards  [platform devices only]" in text
    assert "provider  /soc/iommu@5000000 (smmu) arm,mmu-500: NOT dma-coherent" in text


def test_explain_shows_the_deciding_chain(corpus, capsys):
    status, out, _ = run(capsys, "explain", corpus / "affected.dtb")
    assert status == 0
    assert "coherent:  /soc/iommu@5000000 -> /soc -> / (past the root: not coherent)" in out
    assert "/soc/dev@1 (platform) via iommus -> /soc/iommu@5000000: BROKEN" in out
