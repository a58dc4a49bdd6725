"""Evidence classes of affected SMMUs (issue 18, item 3): `sweep`,
`explain` and `patch` with `--boot-logs DIR`.

  hardware-says-coherent  boot logs say the register is coherent (and none
                          says it is not)
  coherent-masters        the DT's own evidence (rescued-by-device,
                          broken-bridge-coherent links)
  known-noncoherent       upstream settled that the SMMU is not coherent on
                          every board (sdm845's apps SMMU): never patched
  no-evidence             nothing, or logs saying the register is not coherent

The logs are written from the kernel's format strings (tests/bootlogs.py).
"""
import json

import pytest

import bootlogs
from minikernel import add_board, make_minikernel
from snippets import compile_dts

from auditor.cli import main
from auditor.model import load_sweep


def _header(model, *compatible):
    return ("/dts-v1/;\n/ {\n" + f'\tmodel = "{model}";\n'
            + "\tcompatible = " + ", ".join(f'"{c}"' for c in compatible) + ";\n"
            "\t#address-cells = <2>;\n\t#size-cells = <2>;\n")


def _soc(unit, *devices):
    return ("\tsoc@0 {\n\t\tcompatible = \"simple-bus\";\n\t\t#address-cells = <2>;\n"
            "\t\t#size-cells = <2>;\n\t\tranges;\n"
            f"\t\tsmmu: iommu@{unit} {{\n\t\t\tcompatible = \"arm,mmu-500\";\n"
            f"\t\t\treg = <0 0x{unit} 0 0x10000>;\n\t\t\t#global-interrupts = <1>;\n"
            "\t\t\t#iommu-cells = <1>;\n\t\t};\n"
            + "".join(f"\t\t{name} {{\n\t\t\tcompatible = \"acme,dev\";\n"
                      f"\t\t\tiommus = <&smmu 0x10>;\n\t\t\t{extra}\n\t\t}};\n"
                      for name, extra in devices) + "\t};\n")


BROKEN = ("dma@1000", "")
RESCUED = ("crypto@2000", "dma-coherent;")
BOARDS = {
    "hw-evk": (_header("Acme HW EVK", "acme,hw-evk", "acme,hw"), _soc("15000000", BROKEN)),
    "sdm845-test": (_header("Test SDM845 Board", "test,sdm845", "qcom,sdm845"),
                    _soc("15000000", BROKEN)),
    "rescue-evk": (_header("Acme Rescue EVK", "acme,rescue-evk", "acme,rescue"),
                   _soc("5000000", BROKEN, RESCUED)),
    "plain-evk": (_header("Acme Plain EVK", "acme,plain-evk", "acme,plain"),
                  _soc("5000000", BROKEN)),
}


@pytest.fixture(scope="module")
def dtbs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dtbs")
    for name, (header, body) in BOARDS.items():
        compile_dts(folder, name, body, header=header)
        (folder / f"{name}.dts").unlink()
    logs = tmp_path_factory.mktemp("logs")
    for name, model, device, reg in [
            ("hw.log", "Acme HW EVK", "15000000.iommu", True),
            ("sdm845.log", "Test SDM845 Board", "15000000.iommu", True),
            ("rescue.log", "Acme Rescue EVK", "5000000.iommu", False)]:
        bootlogs.write(logs / name, bootlogs.dmesg(bootlogs.boot(
            "6.12", model, [("arm-smmu", device, False, reg)])))
    return folder, logs


EXPECTED = {"acme,hw": "hardware-says-coherent", "qcom,sdm845": "known-noncoherent",
            "acme,rescue": "no-evidence", "acme,plain": "no-evidence"}


def _sweep(dtbs, fmt, *more, capsys):
    folder, logs = dtbs
    status = main(["sweep", "--dtbs", str(folder), "--format", fmt, *more])
    out, err = capsys.readouterr()
    assert status == 0
    return out


def test_sweep_json_carries_the_evidence_and_reads_back(dtbs, tmp_path, capsys):
    out = _sweep(dtbs, "json", "--boot-logs", str(dtbs[1]), "-o", str(tmp_path / "s.json"),
                 capsys=capsys)
    assert out == ""                            # the report went to -o, not stdout
    doc = json.loads((tmp_path / "s.json").read_text())
    got = {e["soc"]: e for e in doc["evidence"]}
    assert {soc: e["class"] for soc, e in got.items()} == EXPECTED
    assert got["acme,hw"]["logs"] == [{"log": str(dtbs[1] / "hw.log"),
                                       "boards": ["hw-evk.dtb"], "kernel": "6.12.117-arm64",
                                       "register_coherent": True}]
    assert "1 boot log says the register is not coherent" in got["acme,rescue"]["reason"]
    assert "CVE-2025-22012" in got["qcom,sdm845"]["reason"]
    saved = load_sweep(tmp_path / "s.json")
    assert {e.soc: e.kind for e in saved.evidence} == EXPECTED


def test_a_saved_sweep_with_bad_evidence_is_refused(dtbs, tmp_path, capsys):
    from auditor.model import SweepFileError
    _sweep(dtbs, "json", "--boot-logs", str(dtbs[1]), "-o", str(tmp_path / "s.json"),
           capsys=capsys)
    doc = json.loads((tmp_path / "s.json").read_text())
    doc["evidence"][0]["class"] = "maybe"
    (tmp_path / "s.json").write_text(json.dumps(doc))
    with pytest.raises(SweepFileError) as why:
        load_sweep(tmp_path / "s.json")
    assert str(why.value).endswith("evidence[0].class is not one of hardware-says-coherent, "
                                   "coherent-masters, known-noncoherent, no-evidence")


def test_without_boot_logs_the_evidence_is_the_dts_and_upstreams(dtbs, tmp_path, capsys):
    """No --boot-logs: the same classes as with a folder of no logs."""
    empty = tmp_path / "none"
    empty.mkdir()
    without = json.loads(_sweep(dtbs, "json", capsys=capsys))["evidence"]
    with_none = json.loads(_sweep(dtbs, "json", "--boot-logs", str(empty),
                                  capsys=capsys))["evidence"]
    assert without == with_none
    assert {e["soc"]: e["class"] for e in without} == {
        "acme,hw": "no-evidence", "qcom,sdm845": "known-noncoherent",
        "acme,rescue": "coherent-masters", "acme,plain": "no-evidence"}
    assert "evidence  known-noncoherent: upstream" in _sweep(dtbs, "table", capsys=capsys)


def test_coherent_masters_without_logs(dtbs, tmp_path, capsys):
    empty = tmp_path / "none"
    empty.mkdir()
    doc = json.loads(_sweep(dtbs, "json", "--boot-logs", str(empty), capsys=capsys))
    got = {e["soc"]: e["class"] for e in doc["evidence"]}
    assert got == {"acme,hw": "no-evidence", "qcom,sdm845": "known-noncoherent",
                   "acme,rescue": "coherent-masters", "acme,plain": "no-evidence"}


@pytest.mark.parametrize("fmt", ["table", "md", "gcc"])
def test_human_formats_name_the_class(dtbs, capsys, fmt):
    out = _sweep(dtbs, fmt, "--boot-logs", str(dtbs[1]), capsys=capsys)
    for kind in set(EXPECTED.values()):
        assert kind in out, fmt
    assert "report coherent table walks in IDR0" in out or \
        "reports coherent table walks in IDR0" in out


def test_sarif_properties(dtbs, capsys):
    doc = json.loads(_sweep(dtbs, "sarif", "--boot-logs", str(dtbs[1]), capsys=capsys))
    got = {r["properties"]["socs"][0]: r["properties"]["evidence"][0]["class"]
           for r in doc["runs"][0]["results"]}
    assert got == EXPECTED


def test_explain_names_the_evidence_of_its_board(dtbs, capsys):
    folder, logs = dtbs
    assert main(["explain", "--dtbs", str(folder), "hw-evk", "--boot-logs", str(logs)]) == 0
    out, err = capsys.readouterr()
    tail = out[out.index("\nevidence\n"):]
    assert "acme,hw /soc@0/iommu@15000000: hardware-says-coherent" in tail
    assert "hw.log: hw-evk.dtb (6.12.117-arm64): register coherent" in tail
    assert err == ""          # the logs of the other boards are not this board's news


# -- patch ------------------------------------------------------------------------

SDM845_DTSI = """\
// SPDX-License-Identifier: GPL-2.0
/ {
	compatible = "qcom,sdm845";
	#address-cells = <2>;
	#size-cells = <2>;

	soc@0 {
		compatible = "simple-bus";
		#address-cells = <2>;
		#size-cells = <2>;
		ranges;

		apps_smmu: iommu@15000000 {
			compatible = "qcom,sdm845-smmu-500", "arm,mmu-500";
			reg = <0 0x15000000 0 0x80000>;
			#global-interrupts = <1>;
			#iommu-cells = <2>;
		};

		pcie@1c00000 {
			compatible = "pci-host-ecam-generic";
			reg = <0x0 0x01c00000 0x0 0x100000>;
			#address-cells = <3>;
			#size-cells = <2>;
			device_type = "pci";
			bus-range = <0x0 0x0>;
			dma-coherent;
			iommu-map = <0x0 &apps_smmu 0x1c10 0x1>;
		};
	};
};
"""


@pytest.fixture
def tree(tmp_path, isolated_cache):
    tree = make_minikernel(tmp_path / "linux")
    add_board(tree, "sdm845", SDM845_DTSI, "sdm845-board", "Test SDM845 Board",
              ("test,sdm845-board", "qcom,sdm845"))
    return tree


def _patch(tree, tmp_path, capsys, *more):
    out = tmp_path / "series"
    status = main(["patch", "--kernel", str(tree), "-o", str(out),
                   "--from", "Test <test@example.com>", *more])
    stdout, err = capsys.readouterr()
    assert status == 0, err
    files = [p for p in sorted(out.iterdir())]
    return {p.name: p.read_text() for p in files}, err


def test_patch_never_proposes_a_known_noncoherent_smmu(tree, tmp_path, capsys):
    """Without logs too: the DT's evidence (a dma-coherent bridge) accuses
    the sdm845 apps SMMU, and upstream's revert overrules it."""
    series, err = _patch(tree, tmp_path, capsys)
    assert not any("sdm845" in name for name in series)
    assert any("a100" in name for name in series) and any("a200" in name for name in series)
    assert "/soc@0/iommu@15000000 (qcom,sdm845) not patched: known-noncoherent" in err
    cover = series["0000-cover-letter.patch"]
    assert "CVE-2025-22012" in cover


def test_patch_with_boot_logs(tree, tmp_path, capsys):
    """a100's register says not coherent: left alone whatever its masters
    say; a200's says coherent: patched, the message naming the log."""
    logs = tmp_path / "logs"
    logs.mkdir()
    for name, model, reg in [("a100.log", "ACME a100 evk", False),
                             ("a200.log", "ACME a200 rdb", True),
                             ("sdm845.log", "Test SDM845 Board", True)]:
        bootlogs.write(logs / name, bootlogs.dmesg(bootlogs.boot(
            "6.1", model, [("arm-smmu", "5000000.iommu" if "a" in name[0] else
                            "15000000.iommu", False, reg)])))
    series, err = _patch(tree, tmp_path, capsys, "--boot-logs", str(logs))
    names = [n for n in series if n != "0000-cover-letter.patch"]
    assert len(names) == 1 and "a200" in names[0]
    message = series[names[0]]
    words = " ".join(message.split())       # the body is wrapped at 72 columns
    assert "IDR0.CTTW reports coherent table walks in the boot logs of 1 boot:" in words
    assert "  - a200-rdb (6.1.0-28-arm64): a200.log" in message
    assert "(acme,a100) not patched: no-evidence: 1 boot log says the register is not " \
           "coherent" in err
    assert "(qcom,sdm845) not patched: known-noncoherent" in err
    assert "sdm845" not in " ".join(names)
