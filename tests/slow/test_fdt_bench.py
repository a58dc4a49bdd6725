"""The parser benchmark and fuzz commands run end to end (tiny inputs; the
figures themselves are measured by running them, never asserted here)."""

import shutil

import pytest

from bench import bench_parse, fuzz_parse
from fdtblobs import BOARD, dtc

pytestmark = pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc")


def test_bench_parse_prints_every_row(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "dtbs").mkdir()
    for k in range(3):
        (tmp_path / "dtbs" / f"b{k}.dtb").write_bytes(dtc(BOARD))
    assert bench_parse.main([str(tmp_path / "dtbs"), "--repeat", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("3 DTBs, ") and ", 18 nodes, " in lines[0] and "0 refused" in lines[0]
    assert [line.split()[0] for line in lines[2:]] == [
        "read", "numba", "numba", "numba", "pylibfdt", "pyfdt"]
    assert lines[-1].split()[-2] == "1.0"  # pyfdt is 1.0 x pyfdt


def test_fuzz_counts_outcomes():
    import random
    seeds = [dtc(BOARD)]
    failures, outcomes, worst = fuzz_parse.fuzz(seeds + [fuzz_parse.struct_last(seeds[0])], 300, seed=3)
    assert failures == 0 and sum(outcomes.values()) == 300
    assert outcomes.get(0, 0) > 0 and len(outcomes) > 5  # parsed ones and several errors
    rng = random.Random(1)
    assert fuzz_parse.mutate(rng, seeds) != fuzz_parse.mutate(rng, seeds)


def test_bench_all_masters_on_one_smmu(tmp_path, monkeypatch):
    """(e)'s DTB: n platform masters on one non-coherent SMMU, a thousand
    per bus; the sweep links every one of them, broken."""
    import json
    from collections import Counter

    from bench import bench_all
    from kernels import jit
    compiled = jit.cache_root()                 # the user's compiled kernels, kept warm
    compiled.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "dtb-audit").mkdir(parents=True)
    (tmp_path / "xdg" / "dtb-audit" / "numba").symlink_to(compiled)
    dtb = bench_all.masters_dtb(2500, tmp_path)
    bench_all.sweep_in_process(dtb, tmp_path / "out.json")
    doc = json.loads((tmp_path / "out.json").read_text())
    assert Counter(link["verdict"] for link in doc["links"]) == {"broken": 2500}
    assert {link["provider_path"] for link in doc["links"]} == {"/iommu@1000"}
    assert {link["master_path"].rsplit("/", 2)[1] for link in doc["links"]} == {
        "bus@0", "bus@3e8", "bus@7d0"}


def test_bench_all_commands_that_judge_nothing_load_no_numba():
    from bench import bench_all
    seconds, status, loaded = bench_all.modules_loaded("--help")
    assert (status, loaded) == (0, [])
