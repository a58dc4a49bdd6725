"""The target kernel on real boards of Debian's kernel sources (5.10 from
bullseye, 6.1 and 6.12 from bookworm, 7.2 from sid; cached between runs):
each tree judged as its own kernel and as another."""
from pathlib import Path

import pytest

from corpus.flat import flatten
from kernels import codes
from kernels.evaluate import evaluate
from kernels.target import TargetKernel
from snippets import affected_socs, by_master, document

pytestmark = pytest.mark.network

LAYERSCAPE = ["freescale/fsl-ls1028a-*", "freescale/fsl-ls1088a-*"]
BOTH = {"fsl,ls1028a", "fsl,ls1088a"}


def judged(corpus, target):
    root = Path(corpus.root)
    flat = flatten([root / e.dtb for e in corpus.boards], root)
    assert not flat.errors()
    return document(evaluate(flat, TargetKernel.parse(target)))


def test_linux_5_10_vfio_refuses_nothing(real_corpus_factory):
    """No VFIO coherency check before v5.19: neither SoC is affected under
    5.10; a 6.12 kernel booting the same DTBs refuses both."""
    corpus = real_corpus_factory("bullseye/linux-source-5.10", LAYERSCAPE)
    own = judged(corpus, "5.10")
    assert affected_socs(own) == set()
    capable = [r for r in own["links"] if r["verdict"] == "capable"]
    assert capable and {r["target_note"] for r in capable} == {codes.N_NO_CHECK}
    assert affected_socs(judged(corpus, "6.12")) == BOTH


def test_linux_6_1_by_point_release(real_corpus_factory):
    """Both SoCs affected under 6.1.0 (walk-only) and 6.1.192 (the
    backport), none under 5.19's always-true arm-smmu."""
    corpus = real_corpus_factory("linux-source-6.1", LAYERSCAPE)
    assert affected_socs(judged(corpus, "6.1.192")) == BOTH
    assert affected_socs(judged(corpus, "6.1")) == BOTH
    assert affected_socs(judged(corpus, "5.19")) == set()
    rescued = judged(corpus, "6.1.192")
    enetc = by_master(rescued)["/soc/pcie@1f0000000/ethernet@0,0"]
    assert {r["verdict"] for r in enetc} == {"rescued-by-device"}
    # ac9c5e92dd15 reached 6.1.y in 6.1.7 (Debian's changelog, ChangeLog-6.1.7).
    for target, verdict in (("6.1.6", "broken-bridge-coherent"), ("6.1.7", "rescued-by-device")):
        enetc = by_master(judged(corpus, target))["/soc/pcie@1f0000000/ethernet@0,0"]
        assert {r["verdict"] for r in enetc} == {verdict}, target


def test_linux_6_12_neither_affected(real_corpus_factory):
    corpus = real_corpus_factory("linux-source-6.12", LAYERSCAPE)
    assert affected_socs(judged(corpus, "6.12.117")) & BOTH == set()


RB5 = "qcom/qrb5165-rb5.dtb"
SMMU = "/soc@0/iommu@15000000"


def test_linux_7_2_five_cell_maps(real_corpus_factory):
    """7.2's Qualcomm PCIe maps have 5-cell entries for the 2-cell apps
    SMMU: 7.2 attaches every PCI link to it; 6.12 cannot read them and
    says which kernel can."""
    corpus = real_corpus_factory("sid/linux-source-7.2", [RB5])
    own = judged(corpus, "7.2.13")
    pci = [r for r in own["links"] if r["link"] == "iommu-map"]
    assert len(pci) == 7
    assert {(r["provider_path"], r["verdict"], r["diag"]) for r in pci} == \
        {(SMMU, "capable", codes.D_NONE)}
    old = judged(corpus, "6.12")
    pci = [r for r in old["links"] if r["link"] == "iommu-map"]
    assert len(pci) == 7
    assert {(r["provider_path"], r["verdict"]) for r in pci} == {(None, "no-iommu")}
    assert {r["diagnostic"] for r in pci} == {
        "iommu-map: length 40 bytes is not a multiple of 16: Linux 6.12 cannot read this map; "
        f"7.2 reads it with #iommu-cells = 2 of {SMMU}"}
