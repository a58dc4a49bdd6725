"""The problems of a DTB as a whole (kernels/evaluate.py: Evaluation.problems)
and what evaluate() hands on, with the expected results read from the
kernel's C sources (Debian's linux-source-6.12 6.12.118), not from kernels/.

of_find_node_by_phandle() (drivers/of/base.c :1115) walks every node in
tree order (for_each_of_allnodes) and takes the first whose phandle
matches: of nodes sharing a phandle, every reference resolves to the first
in the DTB, and each later one is reported against that first.  Each DTB
is booted alone: a phandle in one DTB is no duplicate of one in another.
"""
import pytest

from corpus.flat import flatten
from kernels import codes
from kernels.evaluate import evaluate
from kernels.judging import Judging
from kernels.target import TargetKernel
from snippets import compile_dts, device, document, smmu, soc, sweep_dts
from test_rule import explosion


def node(name, phandle, extra=""):
    return f'\t\t{name} {{ compatible = "test,dev"; phandle = <{phandle}>; {extra}}};\n'


def problems(doc):
    return [(p["dtb"], p["code"], p["node"], p["other"]) for p in doc["problems"]]


def test_three_nodes_share_each_phandle(tmp_path):
    """Two groups of three nodes sharing a phandle: the second and third
    of each group are reported against the first of their group."""
    body = soc(*(node(f"a@{i}", 1) for i in (1, 2, 3)), *(node(f"b@{i}", 2) for i in (4, 5, 6)))
    doc = sweep_dts(tmp_path, body, force=True)
    dtb = "board.dtb"
    dup = codes.P_DUPLICATE_PHANDLE
    assert problems(doc) == [(dtb, dup, "/soc/a@2", "/soc/a@1"), (dtb, dup, "/soc/a@3", "/soc/a@1"),
                             (dtb, dup, "/soc/b@5", "/soc/b@4"), (dtb, dup, "/soc/b@6", "/soc/b@4")]
    assert [p["message"] for p in doc["problems"]][:1] == [
        "phandle 0x1 of /soc/a@2 is also the phandle of /soc/a@1: every reference resolves "
        "to /soc/a@1"]


def test_duplicates_are_found_per_dtb(tmp_path):
    """The second DTB's nodes share phandle 2, which is also the phandle
    of the first DTB's last node: they are reported against the first of
    their own DTB only.  Its DMA-parent loop (two interconnects naming
    each other as dma-mem) is reported too, every problem in DTB then
    node order."""
    first = compile_dts(tmp_path, "first", soc(node("x@1", 1), node("y@2", 2)))
    loop = 'interconnect-names = "dma-mem"; #interconnect-cells = <0>; interconnects = <%d>; '
    second = compile_dts(tmp_path, "second", soc(
        *(node(f"p@{i}", 2) for i in (1, 2, 3)),
        node("noc@4", 3, loop % 4), node("noc@5", 4, loop % 3)), force=True)
    ev = evaluate(flatten([first, second], tmp_path, cache=False), TargetKernel.parse("6.12"))
    doc = document(ev)
    b = "second.dtb"
    assert problems(doc) == [(b, codes.P_DUPLICATE_PHANDLE, "/soc/p@2", "/soc/p@1"),
                             (b, codes.P_DUPLICATE_PHANDLE, "/soc/p@3", "/soc/p@1"),
                             (b, codes.P_DMA_PARENT_LOOP, "/soc/noc@5", "/soc/noc@4")]


@pytest.mark.parametrize("legacy", [True, False])
def test_the_sweep_says_whether_mmu_masters_is_built(tmp_path, legacy):
    """CONFIG_ARM_SMMU_LEGACY_DT_BINDINGS as judged reaches the sweep
    (the site's Rule line says it)."""
    from auditor.sweep import build_sweep
    dtb = compile_dts(tmp_path, "board", soc(smmu(), device("dev@1", "")))
    ev = evaluate(flatten([dtb], tmp_path, cache=False), TargetKernel.parse("6.12"),
                  Judging(legacy_dt_bindings=legacy))
    assert ev.legacy_dt_bindings is legacy
    assert build_sweep(ev).legacy_dt_bindings is legacy


# A host bridge whose placeholder iommu-map names 400 SMMUs has one link per
# (function node or device found on the bus, SMMU): 400 * (functions + 1).

def test_a_dtb_over_the_limit_says_so(tmp_path):
    doc = document(evaluate(flatten([compile_dts(tmp_path, "big", explosion(400, 250))],
                                    tmp_path, cache=False), TargetKernel.parse("6.12")))
    assert doc["links"] == []
    assert [p["message"] for p in doc["problems"]] == [
        "100400 links in one DTB, more than 100000: its links are left out"]
