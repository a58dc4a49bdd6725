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
