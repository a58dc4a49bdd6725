"""The FDT parser (kernels/fdt.py) at the edges of the format, through
flatten() (corpus/flat.py) as tests/unit/test_fdt.py uses it, and
kernels.fdt.resolve_phandle.

The format is the Devicetree Specification's chapter 5 (v0.4), as dtc's
libfdt reads it: fdt_check_header() (libfdt/fdt.c) takes versions 16 and
up whose last_comp_version is at most 17, a header of 40 bytes from
version 17 (36 before: no size_dt_struct), blocks inside totalsize; the
memory reservation block ends with a (0, 0) entry; the structure block's
tokens are read by fdt_next_tag() (libfdt/fdt.c), a property's name is a
NUL-terminated string at nameoff in the strings block (fdt_string()).
"""
import struct

import pytest

from corpus.flat import flatten
from fdtblobs import END, END_NODE, MINIMAL, begin, blob, nodes_and_props, prop
from kernels import fdt

S = 56  # offset of the structure block in blob(): 40 + 16


def parse(tmp_path, blobs):
    """flatten() over files holding the blobs."""
    paths = []
    for k, b in enumerate(blobs):
        p = tmp_path / f"b{k}.dtb"
        p.write_bytes(b)
        paths.append(p)
    return flatten(paths, tmp_path, cache=False)


def header_only(version, size, totalsize=None, **fields):
    """A header of `size` bytes (zero-padded) with every block at its end."""
    hdr = 40 if version >= 17 else 36
    values = dict(magic=fdt.FDT_MAGIC, totalsize=size if totalsize is None else totalsize,
                  off_dt_struct=hdr, off_dt_strings=hdr, off_mem_rsvmap=hdr, version=version,
                  last_comp_version=16, boot_cpuid_phys=0, size_dt_strings=0, size_dt_struct=0)
    values.update(fields)
    head = struct.pack(">10I", *values.values())[:hdr]
    return (head + b"\0" * size)[:size]


# (case, bytes, error code, offset of the error in the file)
BAD = [
    # four bytes are enough to see the magic is wrong
    ("four bytes", b"abcd", fdt.ERR_BAD_MAGIC, 0),
    ("five bytes", b"abcde", fdt.ERR_BAD_MAGIC, 0),
    # a v17 header cut between the v16 and the v17 sizes
    ("v17 header cut at 38", header_only(17, 38), fdt.ERR_TRUNCATED_HEADER, 38),
    ("v16 header cut at 35", header_only(16, 35), fdt.ERR_TRUNCATED_HEADER, 35),
    # a whole header, and no room for the reservation block's (0, 0)
    ("v16 header alone", header_only(16, 36), fdt.ERR_RSVMAP, 36),
    ("v17 header alone", header_only(17, 40), fdt.ERR_RSVMAP, 40),
    ("totalsize one short of the header", header_only(17, 56, totalsize=39), fdt.ERR_TOTALSIZE, 4),
    # a value that runs exactly to the end of the structure block: no END
    ("value to the end of the block", blob(begin(b"") + struct.pack(">III", 3, 4, 0) + b"abcd"),
     fdt.ERR_STRUCT_END, S + 8 + 12 + 4),
    ("value one past the block", blob(begin(b"") + struct.pack(">III", 3, 5, 0) + b"abcd"),
     fdt.ERR_PROP_LEN, S + 12),
    ("name offset at the end", blob(begin(b"") + prop(11) + END_NODE + END),
     fdt.ERR_PROP_NAMEOFF, S + 16),
    # a name whose NUL would be the first byte after the file: nothing is
    # read past the DTB's own bytes
    ("node name unterminated at the end of the file",
     blob(struct.pack(">I", fdt.FDT_BEGIN_NODE) + b"abcd", strings=b""),
     fdt.ERR_NAME_UNTERMINATED, S + 4),
    ("property name unterminated at the end of the file", blob(MINIMAL, strings=b"compatible"),
     fdt.ERR_PROP_NAME_UNTERMINATED, S + len(MINIMAL)),
    # a property's header (tag, length, name offset) cut by the end of the
    # structure block: that token is incomplete; one that ends exactly there
    # is whole, and then FDT_END is missing
    ("property header cut", blob(begin(b"") + struct.pack(">II", fdt.FDT_PROP, 0)),
     fdt.ERR_STRUCT_END, S + 8),
    ("property header to the end of the block", blob(begin(b"") + prop(0)),
     fdt.ERR_STRUCT_END, S + 8 + 12),
    # the offset of the name that runs off the strings block is its own
    ("second name unterminated", blob(begin(b"") + prop(0) + prop(11) + END_NODE + END,
                                      strings=b"compatible\0model"),
     fdt.ERR_PROP_NAME_UNTERMINATED, S + 8 + 12 + 12 + 4 + 4 + 11),
    # a whole header and a terminated reservation block, but the structure
    # block (at the end) is empty: no FDT_END
    ("empty structure block", header_only(17, 56, off_dt_struct=56, off_dt_strings=56),
     fdt.ERR_STRUCT_END, 56),
]


@pytest.mark.parametrize("case,data,code,offset", BAD, ids=[c[0] for c in BAD])
def test_bad_header_and_blocks(tmp_path, case, data, code, offset):
    fc = parse(tmp_path, [data])
    assert (fc.dtb_error.tolist(), fc.dtb_error_off.tolist()) == ([code], [offset])
    assert fc.node_dtb.size == 0 and fc.dtb_node_start.tolist() == [0, 0]


@pytest.mark.parametrize("header", [
    dict(version=16), dict(version=17), dict(version=18), dict(version=17, last_comp_version=17),
    dict(version=16, last_comp_version=2),
])
def test_versions_read(tmp_path, header):
    """Versions from 16 whose last_comp_version is at most 17 are read."""
    fc = parse(tmp_path, [blob(MINIMAL, **header)])
    assert fc.errors() == []
    assert nodes_and_props(fc, 0) == [("/", [("compatible", b"vendor,board\0")])]


def test_v16_reservation_block_right_after_the_header(tmp_path):
    """A v16 header is 36 bytes: the reservation block may start there."""
    structure = MINIMAL
    strings = b"compatible\0"
    rsv, st = 36, 36 + 16
    head = struct.pack(">9I", fdt.FDT_MAGIC, st + len(structure) + len(strings), st,
                       st + len(structure), rsv, 16, 16, 0, len(strings))
    fc = parse(tmp_path, [head + b"\0" * 16 + structure + strings])
    assert fc.errors() == []
    assert nodes_and_props(fc, 0) == [("/", [("compatible", b"vendor,board\0")])]


def test_reservation_block_last(tmp_path):
    """The blocks "should" come in the order reservation, structure, strings
    (Devicetree Specification v0.4, 5.1), but fdt_check_header()
    (libfdt/fdt.c) checks each against the header and totalsize alone: a
    reservation block placed last, its (0, 0) entry ending exactly at
    totalsize, is read, whatever follows the DTB."""
    strings = b"compatible\0"
    st = 40
    rsv = st + len(MINIMAL) + len(strings)
    rsv += -rsv % 8
    rsvmap = struct.pack(">4Q", 0x80000000, 0x1000, 0, 0)
    head = struct.pack(">10I", fdt.FDT_MAGIC, rsv + len(rsvmap), st, st + len(MINIMAL), rsv, 17,
                       16, 0, len(strings), len(MINIMAL))
    body = MINIMAL + strings
    one = head + body + b"\0" * (rsv - st - len(body)) + rsvmap
    fc = parse(tmp_path, [one, one])
    assert fc.errors() == []
    assert nodes_and_props(fc, 0) == nodes_and_props(fc, 1) == [
        ("/", [("compatible", b"vendor,board\0")])]


DEEP = blob(begin(b"") + prop(0, b"x\0") + begin(b"n") * fdt.MAX_DEPTH
            + END_NODE * (fdt.MAX_DEPTH + 1) + END)
CUT = blob(begin(b"") + prop(0, b"x\0") + begin(b"a") + struct.pack(">II", fdt.FDT_PROP, 4))


@pytest.mark.parametrize("bad,code", [(DEEP, fdt.ERR_DEPTH), (CUT, fdt.ERR_STRUCT_END)],
                         ids=["too deep", "property cut in its header"])
def test_refused_dtb_contributes_nothing(tmp_path, bad, code):
    """A DTB refused after some of its nodes and properties were read (nested
    deeper than MAX_DEPTH; its structure block ending inside a property's
    header, which fdt_next_tag() in libfdt/fdt.c calls a premature end)
    contributes no node and no property; the DTB after it is parsed as usual."""
    fc = parse(tmp_path, [bad, blob(MINIMAL)])
    assert fc.dtb_error.tolist() == [code, 0]
    assert fc.dtb_node_start.tolist() == [0, 0, 1]
    assert fc.node_dtb.tolist() == [1] and fc.prop_node.tolist() == [0]
    assert fc.prop_names == ["compatible"]
    assert nodes_and_props(fc, 1) == [("/", [("compatible", b"vendor,board\0")])]


def test_unreadable_file_contributes_nothing(tmp_path):
    """A file the reader could not read (here a missing one) is skipped by
    the parser: no node, no property; the DTB after it parses as usual."""
    (tmp_path / "ok.dtb").write_bytes(blob(MINIMAL))
    fc = flatten([tmp_path / "missing.dtb", tmp_path / "ok.dtb"], tmp_path, cache=False)
    assert fc.dtb_node_start.tolist() == [0, 0, 1]
    assert fc.node_dtb.tolist() == [1] and fc.prop_node.tolist() == [0]
    assert nodes_and_props(fc, 1) == [("/", [("compatible", b"vendor,board\0")])]


def test_phandle_only_from_its_own_names(tmp_path):
    """populate_properties() (drivers/of/fdt.c 6.12 :137) takes a node's
    phandle from a property named exactly "phandle" or "linux,phandle":
    other names of the same lengths with a u32 value give none."""
    strings = b"channel\0current-speed\0"
    s = (begin(b"") + begin(b"serial") + prop(0, struct.pack(">I", 5))
         + prop(8, struct.pack(">I", 115200)) + END_NODE + END_NODE + END)
    fc = parse(tmp_path, [blob(s, strings=strings)])
    assert fc.errors() == []
    assert fc.node_phandle.tolist() == [0, 0]
    args = (fc.node_dtb, fc.node_phandle, fc.phandle_sorted, fc.dtb_node_start)
    assert [fdt.resolve_phandle(*args, 0, ph) for ph in (5, 115200)] == [-1, -1]


def test_empty_property_name(tmp_path):
    """nameoff may point at the strings block's last NUL: the name is ""."""
    s = begin(b"") + prop(10, b"x") + END_NODE + END
    fc = parse(tmp_path, [blob(s, strings=b"compatible\0")])
    assert fc.errors() == []
    assert nodes_and_props(fc, 0) == [("/", [("", b"x")])]


def test_many_property_names(tmp_path):
    """Names are interned across the corpus in order of first appearance,
    however many (here more than a thousand, in two DTBs sharing half)."""
    names = [f"p{k}".encode() for k in range(1500)]

    def board(selected):
        strings = b"".join(n + b"\0" for n in selected)
        offsets = [strings.index(n + b"\0") for n in selected]
        s = begin(b"") + b"".join(prop(o, b"") for o in offsets) + END_NODE + END
        return blob(s, strings=strings)

    fc = parse(tmp_path, [board(names[:1000]), board(names[500:][::-1])])
    assert fc.errors() == []
    expected = [n.decode() for n in names[:1000]] + [n.decode() for n in names[1000:][::-1]]
    assert fc.prop_names == expected
    got = [[p for p, _ in nodes_and_props(fc, d)[0][1]] for d in range(2)]
    assert got == [[n.decode() for n in names[:1000]], [n.decode() for n in names[500:][::-1]]]


def test_names_sharing_a_hash_slot_stay_distinct(tmp_path):
    """Property names are interned by their bytes: "compatible" and
    "fsl,mipi-phy-gpr" (a real property, of imx8mq.dtsi), whose FNV-1a
    hashes share a slot of the interning table of 2048, stay two names."""
    strings = b"compatible\0fsl,mipi-phy-gpr\0"
    s = begin(b"") + prop(0, b"x\0") + begin(b"phy") + prop(11, b"") + END_NODE + END_NODE + END
    fc = parse(tmp_path, [blob(s, strings=strings)])
    assert fc.errors() == []
    assert fc.prop_names == ["compatible", "fsl,mipi-phy-gpr"]
    assert nodes_and_props(fc, 0) == [("/", [("compatible", b"x\0")]),
                                      ("/phy", [("fsl,mipi-phy-gpr", b"")])]


def test_resolve_phandle_exact_only(tmp_path):
    """of_find_node_by_phandle() (drivers/of/base.c 6.12 :1115) finds the
    node whose phandle is the one asked for: a phandle between two of a
    DTB's, or one that only another DTB has, finds nothing."""
    def board(phandles):
        s = begin(b"") + b"".join(begin(f"n{p}".encode()) + prop(0, struct.pack(">I", p))
                                  + END_NODE for p in phandles) + END_NODE + END
        return blob(s, strings=b"phandle\0")

    fc = parse(tmp_path, [board([2, 9]), board([5])])
    args = (fc.node_dtb, fc.node_phandle, fc.phandle_sorted, fc.dtb_node_start)
    assert [fdt.resolve_phandle(*args, 0, ph) for ph in (1, 2, 5, 9, 10)] == [-1, 1, -1, 2, -1]
    assert [fdt.resolve_phandle(*args, 1, ph) for ph in (2, 4, 5, 6, 9)] == [-1, -1, 4, -1, -1]
