"""The corpus of real kernels, from Debian's linux-source packages as the
product fetches them (cached in $XDG_CACHE_HOME/dtb-audit between runs)."""

import shutil
import subprocess

from corpus.build import build_corpus, source_positions
from corpus.dtc import accepts_flags, tree_tools
from corpus.sources import cache_dir

LAYERSCAPE = ["freescale/fsl-ls1028a-*", "freescale/fsl-ls1088a-*"]


def test_default_corpus_is_all_of_linux_6_12():
    """The newcomer's corpus: every .dts, .dtso and composite of v6.12 (SPEC 5)."""
    corpus = build_corpus()
    assert corpus.identity.startswith("linux-6.12.") and "debian linux-source-6.12" in corpus.identity
    kinds = {kind: sum(e.kind == kind for e in corpus.entries)
             for kind in ("board", "overlay", "composite")}
    assert kinds == {"board": 1118, "overlay": 99, "composite": 101}
    assert [f"{e.dtb}: {e.error}" for e in corpus.entries if e.error] == []
    assert len(corpus.boards) == 1118 + 101
    # a second run compiles nothing
    again = build_corpus()
    assert (again.root, again.built, again.failed, again.reused) == (corpus.root, 0, 0, 1318)


def test_layerscape_boards_of_6_1(real_corpus_factory):
    corpus = real_corpus_factory("linux-source-6.1", LAYERSCAPE)
    names = {e.dtb for e in corpus.boards}
    assert {"freescale/fsl-ls1028a-rdb.dtb", "freescale/fsl-ls1088a-rdb.dtb",
            "freescale/fsl-ls1028a-qds-65bb.dtb"} <= names
    assert all(n.startswith(("freescale/fsl-ls1028a-", "freescale/fsl-ls1088a-")) for n in names)
    # v6.1 overlays are .dts files named .dtbo
    overlay = next(e for e in corpus.entries if e.dtb == "freescale/fsl-ls1028a-qds-65bb.dtbo")
    assert overlay.kind == "overlay" and overlay.source.endswith("fsl-ls1028a-qds-65bb.dts")


def test_tree_dtc_builds_what_debian_dtc_cannot(real_corpus_factory):
    """v6.12's LS1088A boards pass -Wno-interrupt_map, unknown to dtc 1.6.1."""
    corpus = real_corpus_factory("linux-source-6.12", ["freescale/fsl-ls1088a-rdb.dtb"])
    assert corpus.entry("freescale/fsl-ls1088a-rdb.dtb").error is None
    tools = tree_tools(corpus.kernel_dir, cache_dir(), set())
    assert "DTC 1.7" in tools.dtc_version and "the tree's scripts/dtc" in tools.dtc_version
    system = shutil.which("dtc")
    if system and "1.6." in subprocess.run([system, "--version"], capture_output=True,
                                           text=True).stdout:
        assert not accepts_flags(system, {"-Wno-interrupt_map"})


def test_smmu_is_written_in_the_soc_dtsi(real_corpus_factory):
    for package in ("linux-source-6.1", "linux-source-6.12"):
        corpus = real_corpus_factory(package, LAYERSCAPE)
        dtsi = "arch/arm64/boot/dts/freescale/fsl-ls1028a.dtsi"
        text = (corpus.kernel_dir / dtsi).read_text().splitlines()
        line = next(i for i, t in enumerate(text, 1) if "smmu: iommu@5000000 {" in t)
        for board in ("freescale/fsl-ls1028a-rdb.dtb", "freescale/fsl-ls1028a-qds-65bb.dtb"):
            positions = source_positions(corpus, corpus.entry(board))
            assert positions["/soc/iommu@5000000"] == (dtsi, line), (package, board)
