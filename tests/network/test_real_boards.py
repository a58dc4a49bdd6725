"""SPEC section 6: the known facts, on real boards built from Debian's kernel
sources (cached between runs)."""
import pytest

from auditor.sweep import sweep_corpus
from kernels.judging import Judging, Rule

pytestmark = pytest.mark.network

LAYERSCAPE = ["freescale/fsl-ls1028a-*", "freescale/fsl-ls1088a-*"]
SMMU = "/soc/iommu@5000000"


def soc(sweep, name):
    (s,) = [s for s in sweep.socs if s.soc == name]
    return s


@pytest.fixture(scope="module")
def linux61(real_corpus_factory):
    return real_corpus_factory("linux-source-6.1", LAYERSCAPE)


@pytest.fixture(scope="module")
def linux612(real_corpus_factory):
    return real_corpus_factory("linux-source-6.12", LAYERSCAPE)


def test_target_kernel_is_the_trees_version(linux61, linux612):
    """Debian's 6.1 has 6.1.y's backport (walk-or-device), not 6.1.0's rule."""
    for corpus, series in ((linux61, "6.1"), (linux612, "6.12")):
        s = sweep_corpus(corpus)
        assert str(s.target_kernel) == corpus.kernel_version
        assert str(s.target_kernel).rsplit(".", 1)[0] == series
        assert (s.target_assumed, s.rule.value) == (False, "walk-or-device")


@pytest.mark.parametrize("rule", ["walk-or-device", "walk-only"])
def test_linux61_layerscape_affected_on_every_board(linux61, rule):
    sweep = sweep_corpus(linux61, Judging(rule=Rule(rule)))
    assert sweep.rule.value == rule
    for name, dtsi in (("fsl,ls1028a", "fsl-ls1028a.dtsi"), ("fsl,ls1088a", "fsl-ls1088a.dtsi")):
        s = soc(sweep, name)
        assert s.affected and s.passthrough
        assert s.affected_boards == s.boards and len(s.boards) >= 3
        (p,) = [p for p in s.providers if p.affected]
        assert (p.path, p.coherent) == (SMMU, False)
        assert p.source_file == f"arch/arm64/boot/dts/freescale/{dtsi}"
        line = (linux61.kernel_dir / p.source_file).read_text().splitlines()[p.source_line - 1]
        assert "iommu@5000000" in line


def test_linux61_link_level_facts(linux61):
    sweep = sweep_corpus(linux61)
    rdb = [r for r in sweep.links if r.dtb == "freescale/fsl-ls1028a-rdb.dtb"]
    enetc = {r.master_path: r for r in rdb if r.master_kind == "pci-dt-child"}
    assert enetc["/soc/pcie@1f0000000/ethernet@0,0"].verdict == "rescued-by-device"
    assert enetc["/soc/pcie@1f0000000/rcec@1f,0"].verdict == "no-iommu"
    (vfs,) = [r for r in rdb if r.master_kind == "pci-discovered"
              and r.master_path == "/soc/pcie@1f0000000"]
    assert vfs.verdict == "broken-bridge-coherent"
    ls1088a = [r for r in sweep.links if r.soc == "fsl,ls1088a"]
    mc = [r for r in ls1088a if r.master_kind == "fsl-mc"]
    assert mc and all(r.placeholder_map and r.verdict == "broken-bridge-coherent" for r in mc)
    pcie = [r for r in ls1088a if r.master_kind == "pci-discovered"]
    assert pcie and all(r.verdict == "not-a-device" for r in pcie)


def test_linux61_legacy_true_affects_nothing(linux61):
    sweep = sweep_corpus(linux61, Judging(rule=Rule("legacy-true")))
    assert sweep.socs and not any(s.affected for s in sweep.socs)


def test_linux612_layerscape_not_affected(linux612):
    for rule in ("walk-or-device", "walk-only"):
        sweep = sweep_corpus(linux612, Judging(rule=Rule(rule)))
        for name in ("fsl,ls1028a", "fsl,ls1088a"):
            s = soc(sweep, name)
            assert not s.affected
            (p,) = [p for p in s.providers if p.path == SMMU]
            assert p.coherent


def test_linux612_fvp_smmu_v3(real_corpus_factory):
    # The one arm64 board of 6.12 whose masters sit behind an arm,smmu-v3:
    # a dma-coherent SMMUv3 behind the FVP's PCI host bridge.
    corpus = real_corpus_factory("linux-source-6.12", ["arm/fvp-base-revc.dtb"])
    links = sweep_corpus(corpus, Judging(rule=Rule("walk-only"))).links
    (r,) = [r for r in links if r.master_kind == "pci-discovered"]
    assert (r.driver, r.provider_coherent, r.verdict) == ("arm-smmu-v3", True, "capable")
