"""`bootlog` on real boards of Debian's 6.1, 6.12 and 7.2 (network: the
packages are fetched once and cached), with logs written from each
version's format strings (tests/bootlogs.py): a log from a kernel other
than the corpus's is read against the corpus's DT.

The facts the expectations come from: sdm845's apps SMMU is not coherent on
every board (v6.13's dma-coherent reverted in v6.14, CVE-2025-22012);
LS1028A's IDR0.CTTW says non-coherent while the hardware is coherent, and
dma-coherent is in 6.12's and 7.2's .dtsi, not in 6.1's; x1e80100's apps
SMMU became dma-coherent in v6.13 (in 7.2, not in 6.12), its register
saying coherent; sm8250's SMMUs in v6.6 (in 6.12, not in 6.1).
"""
import pytest

import bootlogs

from auditor.bootlog import audit, board_index
from auditor.settled import SETTLED
from auditor.sweep import target_of
from kernels.judging import Judging

PACKAGES = {"6.1": "linux-source-6.1", "6.12": "linux-source-6.12",
            "7.2": "sid/linux-source-7.2"}
BOARDS = ["qcom/sdm845-db845c.dtb", "qcom/sdm850-lenovo-yoga-c630.dtb",
          "freescale/fsl-ls1028a-rdb.dtb", "qcom/x1e80100-crd.dtb", "qcom/sm8250-hdk.dtb"]
MODELS = {"Thundercomm Dragonboard 845c": "qcom/sdm845-db845c.dtb",
          "Lenovo Yoga C630": "qcom/sdm850-lenovo-yoga-c630.dtb",
          "LS1028A RDB Board": "freescale/fsl-ls1028a-rdb.dtb",
          "Qualcomm Technologies, Inc. X1E80100 CRD": "qcom/x1e80100-crd.dtb",
          "Qualcomm Technologies, Inc. SM8250 HDK": "qcom/sm8250-hdk.dtb"}
# (model, device, the register's word, the DT of each version's .dtsi)
SMMUS = [("Thundercomm Dragonboard 845c", "15000000.iommu", True,
          {"6.1": False, "6.12": False, "7.2": False}),
         ("Lenovo Yoga C630", "15000000.iommu", True, {"6.1": False, "6.12": False, "7.2": False}),
         ("LS1028A RDB Board", "5000000.iommu", False, {"6.1": False, "6.12": True, "7.2": True}),
         ("Qualcomm Technologies, Inc. X1E80100 CRD", "15000000.iommu", True,
          {"6.12": False, "7.2": True}),
         ("Qualcomm Technologies, Inc. SM8250 HDK", "15000000.iommu", True,
          {"6.1": False, "6.12": True, "7.2": True})]


@pytest.mark.network
@pytest.mark.parametrize("corpus_version", list(PACKAGES))
def test_real_boards_with_logs_of_every_version(real_corpus_factory, tmp_path, corpus_version):
    corpus = real_corpus_factory(PACKAGES[corpus_version], BOARDS)
    boards = board_index(corpus, target_of(corpus, Judging()))
    expected = {}
    for log_version in bootlogs.VERSIONS:
        for model, device, reg, dt in SMMUS:
            if log_version not in dt:
                continue            # the board is not in that kernel
            path = tmp_path / f"{log_version}-{MODELS[model].split('/')[1]}.log"
            bootlogs.write(path, bootlogs.dmesg(bootlogs.boot(
                log_version, model, [("arm-smmu", device, dt[log_version], reg)])))
            if corpus_version in dt:
                expected[str(path)] = (model, reg, dt[corpus_version])
    problems = []
    doc = audit([tmp_path], boards, problem=problems.append)
    got = {log["log"]: log for log in doc["logs"]}
    # Logs of boards this corpus lacks (x1e80100 in 6.1) name no board of it.
    assert set(got) == set(expected)
    assert all("names no board" in p for p in problems)
    for path, (model, reg, dt) in expected.items():
        log = got[path]
        assert log["boards"] == [MODELS[model]], path
        (s,) = log["smmus"]
        assert (s["dt_coherent"], s["hw_coherent"]) == (dt, reg), path
        if "845" in model or "C630" in model:
            finding = "known-noncoherent"
        else:
            finding = "agree" if reg == dt else ("dt-lacks-coherent" if reg else "dt-overrides-hw")
        assert s["finding"] == finding, path
        if "LS1028A" in model:
            assert "register is wrong" in s["note"], path
    sdm845 = next(g for g in doc["socs"] if g["soc"] == "qcom,sdm845")
    assert sdm845["boards"] == sorted(["qcom/sdm845-db845c.dtb",
                                       "qcom/sdm850-lenovo-yoga-c630.dtb"])
    assert sdm845["findings"] == {"known-noncoherent": sdm845["logs"]}


# One board of each SoC the settled table names.
SETTLED_BOARDS = ["qcom/qdu1000-idp.dtb", "qcom/sc7180-idp.dtb", "qcom/sc8180x-primus.dtb",
                  "qcom/sc8280xp-crd.dtb", "qcom/sdm670-google-sargo.dtb",
                  "qcom/sdm845-db845c.dtb", "qcom/sm6350-sony-xperia-lena-pdx213.dtb",
                  "qcom/sm8150-hdk.dtb", "qcom/sm8350-hdk.dtb", "qcom/sm8450-hdk.dtb",
                  "qcom/x1e80100-crd.dtb", "qcom/sm8250-hdk.dtb", "qcom/sc7280-idp.dtb",
                  "qcom/sm8550-hdk.dtb", "qcom/sa8775p-ride.dtb",
                  "freescale/fsl-ls1028a-rdb.dtb", "freescale/fsl-ls1088a-rdb.dtb"]


@pytest.mark.network
@pytest.mark.parametrize("corpus_version", ["6.12", "7.2"])
def test_every_settled_smmu_is_a_node_of_the_corpus(real_corpus_factory, corpus_version):
    """Each entry names an SMMU node that the SoC's boards have (by SoC
    compatible and name@unit-address), so that logs and sweeps find it."""
    corpus = real_corpus_factory(PACKAGES[corpus_version], SETTLED_BOARDS)
    boards = board_index(corpus, target_of(corpus, Judging()))
    nodes = {}
    for d, compatibles in boards.compatibles.items():
        for n in boards.smmus(d):
            nodes.setdefault((compatibles[-1], n.name), set()).add(n.label)
    for entry in SETTLED:
        assert (entry.soc, entry.node) in nodes, entry


@pytest.mark.network
def test_patch_on_6_12_with_boot_logs(real_corpus_factory, tmp_path):
    """Issue 18's check: the series never proposes sdm845's apps SMMU, even
    with a log whose register says coherent (the Dragonboard's), and names
    the log behind x1e80100's."""
    from dataclasses import replace

    from auditor.evidence import classify
    from auditor.patch import make_series
    from auditor.sweep import sweep_corpus
    corpus = real_corpus_factory("linux-source-6.12",
                                 ["qcom/sdm845-db845c.dtb", "qcom/sdm850-lenovo-yoga-c630.dtb",
                                  "qcom/x1e80100-crd.dtb"])
    for model, name in [("Thundercomm Dragonboard 845c", "db845c.log"),
                        ("Qualcomm Technologies, Inc. X1E80100 CRD", "crd.log")]:
        bootlogs.write(tmp_path / name, bootlogs.dmesg(bootlogs.boot(
            "6.12", model, [("arm-smmu", "15000000.iommu", False, True)])))
    sweep = sweep_corpus(corpus)
    doc = audit([tmp_path], board_index(corpus, target_of(corpus, Judging())))
    sweep = replace(sweep, evidence=classify(sweep, doc))
    kinds = {(e.soc, e.path): e.kind for e in sweep.evidence}
    assert kinds[("qcom,sdm845", "/soc@0/iommu@15000000")] == "known-noncoherent"
    assert kinds[("qcom,x1e80100", "/soc@0/iommu@15000000")] == "hardware-says-coherent"
    series = make_series(sweep, corpus.kernel_dir, author="T <t@example.com>")
    files = [p.source_file for p in series.patches]
    assert not any("sdm845" in f for f in files)
    (x1e,) = [p for p in series.patches if p.source_file.endswith("x1e80100.dtsi")]
    assert "x1e80100-crd (6.12.117-arm64): crd.log" in x1e.text
