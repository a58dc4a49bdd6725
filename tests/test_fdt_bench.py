"""The parser benchmark and fuzz commands run end to end (tiny inputs; the
figures themselves are measured by running them, never asserted here)."""

import shutil

import pytest

from bench import bench_parse, fuzz_parse
from tests.test_fdt import BOARD, dtc

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
