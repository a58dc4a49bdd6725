"""The issue's "done when", on real boards: Linux 6.1 from Debian
(`linux-source-6.1`), LS1028A and LS1088A.  The series must hold patches
for both SoCs' .dtsi, apply to that tree, and leave both SoCs unaffected
once the patched tree is rebuilt and swept again.  (The same loop on the
whole tree: `dtb-audit patch --debian linux-source-6.1 -o DIR --verify`.)"""
import pytest

from auditor.patch import check_series, make_series, verify_series, write_series
from auditor.sweep import sweep_corpus

pytestmark = pytest.mark.network

LAYERSCAPE = ["freescale/fsl-ls1028a-*", "freescale/fsl-ls1088a-*"]
DTSI = "arch/arm64/boot/dts/freescale/fsl-{}.dtsi"


@pytest.fixture(scope="module")
def linux61(real_corpus_factory):
    return real_corpus_factory("linux-source-6.1", LAYERSCAPE)


@pytest.fixture(scope="module")
def made(linux61, tmp_path_factory):
    doc = sweep_corpus(linux61)
    series = make_series(doc, linux61.kernel_dir,
                         {e.dtb: linux61.dependencies(e.dtb) for e in linux61.entries})
    write_series(series, tmp_path_factory.mktemp("series"))
    return doc, series


def test_linux61_series_patches_ls1028a_and_ls1088a(made, linux61):
    _, series = made
    by_file = {p.source_file: p for p in series.patches}
    assert set(by_file) == {DTSI.format("ls1028a"), DTSI.format("ls1088a")}
    assert series.skips == []
    for soc in ("ls1028a", "ls1088a"):
        p = by_file[DTSI.format(soc)]
        assert p.subject == f"arm64: dts: freescale: {soc}: mark SMMU as DMA coherent"
        # The line added is the SMMU node's, right after #iommu-cells.
        lines = (linux61.kernel_dir / p.source_file).read_text().split("\n")
        (c,) = p.candidates
        assert "smmu: iommu@5000000 {" in lines[c.source_line - 1]
        hunk = p.text[p.text.index("\n@@ "):].split("\n")
        (plus,) = [k for k, l in enumerate(hunk) if l.startswith("+")]
        assert hunk[plus] == "+\t\t\tdma-coherent;"
        assert hunk[plus - 1] == " \t\t\t#iommu-cells = <1>;"
    ls1028a = by_file[DTSI.format("ls1028a")].text
    assert "/soc/pcie@1f0000000/ethernet@0,0 (pci-dt-child)" in ls1028a
    assert "PCI devices discovered behind /soc/pcie@1f0000000" in ls1028a
    assert "fsl-ls1028a-rdb" in ls1028a
    assert "fsl-mc objects of /soc/fsl-mc@80c000000" in by_file[DTSI.format("ls1088a")].text


def test_linux61_series_applies_to_its_tree(made, linux61):
    _, series = made
    assert check_series(linux61.kernel_dir, series.files[1:]) == []


def test_linux61_patched_tree_leaves_both_socs_unaffected(made, linux61):
    doc, series = made
    result = verify_series(series, doc, linux61.kernel_dir)
    assert result.ok, result
    for soc in ("fsl,ls1028a", "fsl,ls1088a"):
        s = result.socs[soc]
        assert (s["before"], s["after"]) == (True, False)
        assert [p["coherent"] for p in s["patched"]] == [True]
