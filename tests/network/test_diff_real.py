"""The issue's "done when" for diff and history: from Debian's Linux 6.1 to
6.12, LS1028A and LS1088A are fixed because their SMMU gained dma-coherent."""
import pytest

from auditor.diff import diff_sweeps
from auditor.history.stitching import of_sweeps
from auditor.history.text import format_history
from auditor.sweep import sweep_corpus

pytestmark = pytest.mark.network

LAYERSCAPE = ["freescale/fsl-ls1028a-*", "freescale/fsl-ls1088a-*"]
SMMU = "/soc/iommu@5000000"


@pytest.fixture(scope="module")
def sweeps(real_corpus_factory):
    return [sweep_corpus(real_corpus_factory(debian, LAYERSCAPE))
            for debian in ("linux-source-6.1", "linux-source-6.12")]


def test_diff_61_612_lists_layerscape_as_fixed(sweeps):
    d = diff_sweeps(*sweeps).to_json()
    assert [s["soc"] for s in d["socs"]["fixed"]] == ["fsl,ls1028a", "fsl,ls1088a"]
    assert d["socs"]["newly_affected"] == [] and d["regression"] is False
    added = [(s["soc"], s["path"]) for s in d["smmu_coherency"]["added"]]
    assert added == [("fsl,ls1028a", SMMU), ("fsl,ls1088a", SMMU)]
    assert d["smmu_coherency"]["removed"] == []
    assert "freescale/fsl-ls1028a-rdb.dtb" in {b["dtb"] for b in d["boards"]["fixed"]}


def test_history_61_612(sweeps):
    history = of_sweeps(sweeps)
    h = history.to_json()
    # Debian's packages: 6.1.192 and 6.12.117 today; a newer upload changes
    # the sublevel, never the series.
    series = [v.split()[0].rsplit(".", 1)[0] for v in h["versions"]]
    assert series == ["linux-6.1", "linux-6.12"]
    assert h["versions"] == [s.name for s in sweeps]
    assert h["target_kernels"] == [str(s.target_kernel) for s in sweeps]
    assert [t.rsplit(".", 1)[0] for t in h["target_kernels"]] == ["6.1", "6.12"]
    assert h["rules"] == ["walk-or-device", "walk-or-device"]
    rows = {r["soc"]: r for r in h["socs"]}
    for soc in ("fsl,ls1028a", "fsl,ls1088a"):
        r = rows[soc]
        assert r["verdicts"] == ["affected", "unaffected"]
        assert r["smmu"] == ["non-coherent", "coherent"]
        assert [(c["what"], c["old"], c["new"]) for c in r["changes"]] == [
            ("smmu", "non-coherent", "coherent"), ("verdict", "affected", "unaffected")]
    text = format_history(history)
    (line,) = [l for l in text.split("\n") if l.startswith("fsl,ls1028a ")]
    assert line.split()[1:4] == ["affected", "unaffected", "coherent"]
