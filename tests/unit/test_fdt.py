"""The FDT parser (kernels/fdt.py) and flatten() (corpus/flat.py) on DTBs
compiled from DTS snippets with the system dtc and on hand-made blobs, good
and bad."""

import os
import shutil
import struct

import numpy as np
import pytest

from corpus.flat import flatten
from kernels import fdt, fdt_codes

pytestmark = pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc")


from fdtblobs import BOARD, END, END_NODE, MINIMAL, NOP, begin, blob, dtc, nodes_and_props, prop


def parse(tmp_path, blobs):
    """flatten() over files holding blobs (bytes, or None for a directory)."""
    paths = []
    for k, b in enumerate(blobs):
        p = tmp_path / f"b{k}.dtb"
        if b is None:
            p.mkdir()
        else:
            p.write_bytes(b)
        paths.append(p)
    return flatten(paths, tmp_path, cache=False)


def test_board_layout(tmp_path):
    fc = parse(tmp_path, [dtc(BOARD)])
    assert fc.errors() == []
    paths = [fc.node_path(i) for i in range(fc.node_dtb.size)]
    assert paths == ["/", "/soc", "/soc/iommu@5000000", "/soc/pcie@1f0000000",
                     "/soc/pcie@1f0000000/ethernet@0,0", "/interrupt-controller"]
    assert fc.node_parent.tolist() == [-1, 0, 1, 1, 3, 0]
    assert fc.node_depth.tolist() == [0, 1, 2, 2, 3, 1]
    assert fc.node_dtb.tolist() == [0] * 6
    assert fc.dtb_node_start.tolist() == [0, 6]
    assert fc.node_name(0) == "" and fc.node_name(3) == "pcie@1f0000000"
    assert fc.root_compatible(0) == ["fsl,ls1028a-rdb", "fsl,ls1028a"]
    got = dict(nodes_and_props(fc, 0))
    assert got["/soc/pcie@1f0000000"][0] == ("dma-coherent", b"")
    smmu = 2
    assert fc.node_phandle[smmu] != 0
    assert got["/soc/pcie@1f0000000"][1] == (
        "iommu-map", struct.pack(">4I", 0, fc.node_phandle[smmu], 0, 1))
    # CSR: the properties of node i are exactly those with prop_node == i.
    counts = np.diff(fc.node_prop_start)
    assert fc.prop_node.tolist() == np.repeat(np.arange(6), counts).tolist()
    assert fc.node_prop_start[-1] == fc.prop_node.size
    assert fc.node_phandle[5] == 7  # "linux,phandle" alone counts
    assert fc.name_id("compatible") == fc.prop_names.index("compatible")
    assert fc.name_id("no-such-property") == -1


def test_phandle_wins_over_linux_phandle(tmp_path):
    strings = b"phandle\0linux,phandle\0"
    one = struct.pack(">I", 8)
    nine = struct.pack(">I", 9)
    s = (begin(b"") + begin(b"a") + prop(8, nine) + prop(0, one) + END_NODE
         + begin(b"b") + prop(0, one) + prop(8, nine) + END_NODE
         + begin(b"c") + prop(8, nine) + END_NODE
         + begin(b"short") + prop(0, b"\0\0\1") + END_NODE + END_NODE + END)
    fc = parse(tmp_path, [blob(s, strings=strings)])
    assert fc.node_phandle.tolist() == [0, 8, 8, 9, 0]


def test_resolve_phandle(tmp_path):
    # Two DTBs with the same phandle values: resolution stays inside each.
    fc = parse(tmp_path, [dtc(BOARD), b"junk", dtc(BOARD)])
    args = (fc.node_dtb, fc.node_phandle, fc.phandle_sorted, fc.dtb_node_start)
    smmu_ph = int(fc.node_phandle[2])
    assert smmu_ph not in (0, 7)
    for d, base in ((0, 0), (2, 6)):
        assert fdt.resolve_phandle(*args, d, 7) == base + 5
        assert fdt.resolve_phandle(*args, d, smmu_ph) == base + 2
        assert fdt.resolve_phandle(*args, d, 12345) == -1
        assert fdt.resolve_phandle(*args, d, 0) == -1
        assert fdt.resolve_phandle(*args, d, 0xFFFFFFFF) == -1
    assert fdt.resolve_phandle(*args, 1, 7) == -1  # the bad DTB has no nodes
    keys = [(fc.node_dtb[i], fc.node_phandle[i]) for i in fc.phandle_sorted]
    assert keys == sorted(keys) and len(keys) == 2 * 2


def test_versions_16_and_17_agree(tmp_path):
    fc = parse(tmp_path, [dtc(BOARD, 17), dtc(BOARD, 16), blob(MINIMAL, version=16)])
    assert fc.errors() == []
    assert nodes_and_props(fc, 0) == nodes_and_props(fc, 1)
    assert nodes_and_props(fc, 2) == [("/", [("compatible", b"vendor,board\0")])]


def test_interning_is_corpus_wide(tmp_path):
    # The same name at different string offsets in two DTBs gets one id.
    a = blob(begin(b"") + prop(0, b"x\0") + prop(11, b"") + END_NODE + END,
             strings=b"compatible\0status\0")
    b = blob(begin(b"") + prop(0, b"") + prop(7, b"y\0") + END_NODE + END,
             strings=b"status\0compatible\0")
    fc = parse(tmp_path, [a, b])
    assert fc.prop_names == ["compatible", "status"]
    assert fc.prop_name.tolist() == [0, 1, 1, 0]
    assert fc.root_compatible(0) == ["x"] and fc.root_compatible(1) == ["y"]


def test_nops_and_odd_but_valid(tmp_path):
    s = (NOP + begin(b"") + NOP + prop(0, b"") + begin(b"a") + NOP + END_NODE
         + begin(b"b") + END_NODE + END_NODE + NOP + END + b"trailing")
    fc = parse(tmp_path, [blob(s)])
    assert fc.errors() == []
    assert nodes_and_props(fc, 0) == [("/", [("compatible", b"")]), ("/a", []), ("/b", [])]
    assert fc.root_compatible(0) == []


S = 56  # offset of the structure block in blob(): 40 + 16


def deep(n):
    return blob(begin(b"") + begin(b"n") * (n - 1) + END_NODE * n + END)


def test_depth_limit(tmp_path):
    fc = parse(tmp_path, [deep(fdt.MAX_DEPTH), deep(fdt.MAX_DEPTH + 1)])
    assert fc.dtb_error.tolist() == [0, fdt.ERR_DEPTH]
    assert fc.node_depth.max() == fdt.MAX_DEPTH - 1
    # the 1025th BEGIN_NODE, after the root and 1023 "n" nodes of 8 bytes each
    assert fc.dtb_error_off[1] == S + 8 * fdt.MAX_DEPTH


# (case, bytes, error code, offset of the error in the file)
BAD = [
    ("empty", b"", fdt.ERR_EMPTY, 0),
    ("text", b"hello, world\n", fdt.ERR_BAD_MAGIC, 0),
    ("short", b"\xd0\x0d\xfe", fdt.ERR_TRUNCATED_HEADER, 3),
    ("magic only", b"\xd0\x0d\xfe\xed", fdt.ERR_TRUNCATED_HEADER, 4),
    ("old version", blob(MINIMAL, version=15), fdt.ERR_BAD_VERSION, 20),
    ("future version", blob(MINIMAL, last_comp_version=18), fdt.ERR_BAD_VERSION, 24),
    ("totalsize tiny", blob(MINIMAL, totalsize=12), fdt.ERR_TOTALSIZE, 4),
    ("truncated", blob(MINIMAL)[:60], fdt.ERR_TRUNCATED, 60),
    ("struct offset", blob(MINIMAL, off_dt_struct=1 << 20), fdt.ERR_BLOCK_BOUNDS, 8),
    ("struct size", blob(MINIMAL, size_dt_struct=0xFFFFFFFF), fdt.ERR_BLOCK_BOUNDS, 36),
    ("strings size", blob(MINIMAL, size_dt_strings=1000), fdt.ERR_BLOCK_BOUNDS, 12),
    ("rsvmap offset", blob(MINIMAL, off_mem_rsvmap=8), fdt.ERR_BLOCK_BOUNDS, 16),
    ("struct misaligned", blob(b"\0\0" + MINIMAL, off_dt_struct=S + 2,
                               size_dt_struct=len(MINIMAL)), fdt.ERR_STRUCT_ALIGN, 8),
    ("rsvmap unterminated", blob(MINIMAL, rsvmap=b"\1" * 16, strings=b""),
     fdt.ERR_RSVMAP, 40),
    ("no FDT_END", blob(MINIMAL[:-4]), fdt.ERR_STRUCT_END, S + len(MINIMAL) - 4),
    ("bad token", blob(begin(b"") + struct.pack(">I", 7) + END_NODE + END),
     fdt.ERR_BAD_TOKEN, S + 8),
    ("name unterminated", blob(struct.pack(">I", 1) + b"abcd"), fdt.ERR_NAME_UNTERMINATED, S + 4),
    ("second root", blob(begin(b"") + END_NODE + begin(b"") + END_NODE + END),
     fdt.ERR_MULTIPLE_ROOTS, S + 12),
    ("END_NODE unbalanced", blob(begin(b"") + END_NODE + END_NODE + END), fdt.ERR_END_NODE, S + 12),
    ("property first", blob(prop(0) + MINIMAL), fdt.ERR_PROP_OUTSIDE_NODE, S),
    ("property after root", blob(begin(b"") + END_NODE + prop(0) + END),
     fdt.ERR_PROP_OUTSIDE_NODE, S + 12),
    ("property after subnode", blob(begin(b"") + begin(b"a") + END_NODE + prop(0) + END_NODE + END),
     fdt.ERR_PROP_AFTER_SUBNODE, S + 20),
    ("value too long", blob(begin(b"") + struct.pack(">III", 3, 1000, 0) + END_NODE + END),
     fdt.ERR_PROP_LEN, S + 12),
    ("name offset", blob(begin(b"") + prop(11) + END_NODE + END), fdt.ERR_PROP_NAMEOFF, S + 16),
    ("name unterminated in strings", blob(MINIMAL, strings=b"compatible"),
     fdt.ERR_PROP_NAME_UNTERMINATED, S + len(MINIMAL)),
    ("unclosed", blob(begin(b"") + begin(b"a") + END_NODE + END), fdt.ERR_UNCLOSED_NODES, S + 20),
    ("no root", blob(NOP + END), fdt.ERR_NO_ROOT, S + 4),
]


@pytest.mark.parametrize("case,data,code,offset", BAD, ids=[c[0] for c in BAD])
def test_bad_dtb(tmp_path, case, data, code, offset):
    good = dtc(BOARD)
    fc = parse(tmp_path, [good, data, good])
    assert fc.dtb_error.tolist() == [0, code, 0]
    assert fc.dtb_error_off[1] == offset
    assert fc.dtb_node_start[1] == fc.dtb_node_start[2]  # no nodes
    assert fc.errors() == [
        f"{tmp_path / 'b1.dtb'}: error: {fdt_codes.ERR_MESSAGES[code]} (at offset {offset})"]
    # Its neighbours parse as they do alone.
    (tmp_path / "alone").mkdir()
    alone = nodes_and_props(parse(tmp_path / "alone", [good]), 0)
    assert nodes_and_props(fc, 0) == alone and nodes_and_props(fc, 2) == alone


def test_not_files(tmp_path):
    missing = tmp_path / "missing.dtb"
    (tmp_path / "ok.dtb").write_bytes(dtc(BOARD))
    (tmp_path / "dir.dtb").mkdir()
    fifo = tmp_path / "fifo.dtb"
    os.mkfifo(fifo)  # opening it would block: it must be refused unopened
    fc = flatten([tmp_path / "dir.dtb", missing, fifo, tmp_path / "ok.dtb"], tmp_path, cache=False)
    assert fc.paths == ["dir.dtb", "missing.dtb", "fifo.dtb", "ok.dtb"]
    assert fc.dtb_error.tolist() == [fdt_codes.ERR_NOT_FILE, fdt_codes.ERR_NOT_FOUND,
                                     fdt_codes.ERR_NOT_FILE, 0]
    assert fc.errors() == [
        f"{tmp_path}/dir.dtb: error: not a regular file (at offset 0)",
        f"{tmp_path}/missing.dtb: error: no such file (at offset 0)",
        f"{tmp_path}/fifo.dtb: error: not a regular file (at offset 0)",
    ]
    assert fc.root_compatible(3) == ["fsl,ls1028a-rdb", "fsl,ls1028a"]
    assert fc.root_compatible(0) == []


def test_relative_paths(tmp_path):
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "board.dtb").write_bytes(dtc(BOARD))
    fc = flatten(["vendor/board.dtb"], tmp_path, cache=False)
    assert fc.paths == ["vendor/board.dtb"] and fc.errors() == []
    assert fc.dtb_file(0) == str(tmp_path / "vendor" / "board.dtb")


def test_empty_corpus(tmp_path):
    fc = flatten([], tmp_path, cache=False)
    assert fc.n_dtb == 0 and fc.node_dtb.size == 0 and fc.dtb_node_start.tolist() == [0]
    assert fc.errors() == []
