"""Fuzzing the FDT parser: mutated DTBs never crash, hang or read out of
bounds; a bad DTB never changes how its neighbours parse.  The large run
(>= 100,000 inputs) is `python -m bench.fuzz_parse`; these are small."""

import os
import random
import shutil
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz_parse import check_arrays, check_batch, mutate, parse_one
from fdtblobs import BOARD, dtc
from testpaths import ROOT

pytestmark = pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc")

GOOD = dtc(BOARD) if shutil.which("dtc") else b""


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cut=st.integers(min_value=0, max_value=len(GOOD)),
    edits=st.lists(st.tuples(st.integers(0, max(len(GOOD) - 1, 0)), st.integers(0, 255)), max_size=8),
)
def test_edits_and_truncations(cut, edits):
    b = bytearray(GOOD)
    for pos, value in edits:
        b[pos] = value
    b = bytes(b[:cut])
    a, names = parse_one(b)
    check_arrays(a, names)


@settings(max_examples=100, deadline=None)
@given(words=st.lists(st.sampled_from([1, 2, 3, 4, 9, 0, 0xFFFFFFFF, 0x61000000]), max_size=40))
def test_token_soup(words):
    # Any sequence of tokens as the structure block of an otherwise valid DTB.
    from fdtblobs import blob
    b = blob(b"".join(w.to_bytes(4, "big") for w in words))
    a, names = parse_one(b)
    check_arrays(a, names)
    check_batch(b, GOOD)


def test_mutations_of_a_good_dtb_in_process():
    rng = random.Random(7)
    for _ in range(500):
        b = mutate(rng, [GOOD])
        a, names = parse_one(b)
        check_arrays(a, names)


def test_fuzz_command_with_bounds_checking(tmp_path):
    # The fuzz command itself, with numba's bounds checks compiled in (a
    # separate process: the flag is global and needs its own numba cache).
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "board.dtb").write_bytes(GOOD)
    (tmp_path / "seeds" / "v16.dtb").write_bytes(dtc(BOARD, 16))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run(
        [sys.executable, "-m", "bench.fuzz_parse", str(tmp_path / "seeds"), "--count", "3000",
         "--out", str(tmp_path / "failed")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3000 inputs from 2 DTBs" in r.stdout and " 0 failures" in r.stdout
    assert "bounds checking on" in r.stdout
    assert not (tmp_path / "failed").exists()
