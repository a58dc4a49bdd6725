"""The numba parser against pyfdt (corpus/pyfdt_check.py): the check does
see a difference when there is one (real boards agree:
tests/network/test_fdt_pyfdt_real.py).  The whole corpus:
`python -m corpus.pyfdt_check DIR`."""

import shutil

import numpy as np
import pytest

from corpus import pyfdt_check
from corpus.flat import ARRAYS, FlatCorpus, flatten
from fdtblobs import BOARD, END, END_NODE, begin, blob, dtc, prop

def tampered(fc, name, index, delta):
    """fc with one array element changed."""
    arrays = {n: getattr(fc, n) for n, _ in ARRAYS}
    a = arrays[name].copy()
    a[index] += delta
    arrays[name] = a
    return FlatCorpus(arrays, fc.paths, fc.prop_names, fc.root)


@pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc")
def test_check_sees_differences(tmp_path):
    (tmp_path / "board.dtb").write_bytes(dtc(BOARD))
    fc = flatten([tmp_path / "board.dtb"], tmp_path, cache=False)
    assert pyfdt_check.check(fc) == []
    value = tampered(fc, "prop_val_len", 3, -1)
    (msg,) = pyfdt_check.check(value)
    assert msg.startswith(f"{tmp_path}/board.dtb: error: mismatch with pyfdt: record ")
    assert " differs: parser ('prop', " in msg
    name = tampered(fc, "prop_name", 0, 1)
    assert "differs" in pyfdt_check.check(name)[0]
    shape = tampered(fc, "node_parent", 4, -1)
    assert "differs" in pyfdt_check.check(shape)[0]
    fewer = tampered(fc, "node_prop_start", fc.node_prop_start.size - 1, -1)
    assert pyfdt_check.check(fewer)[0].endswith("the parser has 15 nodes and properties, pyfdt 16")


def test_check_reports_what_only_one_side_reads(tmp_path):
    # pyfdt reads a property after a subnode; the parser refuses it.
    (tmp_path / "late.dtb").write_bytes(
        blob(begin(b"") + begin(b"a") + END_NODE + prop(0, b"x\0") + END_NODE + END))
    (tmp_path / "junk.dtb").write_bytes(b"junk" * 20)  # both refuse it
    fc = flatten([tmp_path / "late.dtb", tmp_path / "junk.dtb"], tmp_path, cache=False)
    assert pyfdt_check.check(fc) == [
        f"{tmp_path}/late.dtb: error: mismatch with pyfdt: the parser refuses what pyfdt "
        "reads: property after a subnode of the same node (at offset 76)"]


@pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc")
def test_command(tmp_path, capsys):
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "a.dtb").write_bytes(dtc(BOARD))
    (tmp_path / "vendor" / "b.dtbo").write_bytes(dtc(BOARD, 16))
    assert pyfdt_check.main([str(tmp_path), "--jobs", "2"]) == 0
    out = capsys.readouterr()
    n_props = 2 * int(np.sum(np.diff(flatten([tmp_path / "vendor" / "a.dtb"], tmp_path,
                                             cache=False).node_prop_start)))
    assert out.out == (f"2 DTBs (0 refused by both), 12 nodes, {n_props} properties "
                       "compared with pyfdt: 0 mismatches\n")
    assert out.err == ""
    assert pyfdt_check.main([str(tmp_path / "vendor" / "a.dtb")]) == 2
    assert capsys.readouterr().err.endswith("a.dtb: error: not a folder\n")
    (tmp_path / "empty").mkdir()
    assert pyfdt_check.main([str(tmp_path / "empty")]) == 2
