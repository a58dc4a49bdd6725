"""The numbers of the flattened device-tree format and the parser's error
codes, without numba: what corpus.flat and the reports need to name an error
without loading the parser (kernels/fdt.py, which uses them)."""

FDT_MAGIC = 0xD00DFEED
FDT_BEGIN_NODE = 1
FDT_END_NODE = 2
FDT_PROP = 3
FDT_NOP = 4
FDT_END = 9

# Header sizes: version 17 adds size_dt_struct to the 36 bytes of version 16.
FDT_V16_SIZE = 36
FDT_V17_SIZE = 40
# Deeper nesting than this is no real board: stop it before it costs memory.
MAX_DEPTH = 1024

# Error codes (dtb_error); 0 is no error.  ERR_NOT_FILE, ERR_READ,
# ERR_TOO_BIG and ERR_NOT_FOUND are set by the reader (corpus.flat) before
# the kernels run.
ERR_NOT_FILE = 1
ERR_READ = 2
ERR_TOO_BIG = 3
ERR_EMPTY = 4
ERR_TRUNCATED_HEADER = 5
ERR_BAD_MAGIC = 6
ERR_BAD_VERSION = 7
ERR_TOTALSIZE = 8
ERR_TRUNCATED = 9
ERR_BLOCK_BOUNDS = 10
ERR_STRUCT_ALIGN = 11
ERR_RSVMAP = 12
ERR_STRUCT_END = 13
ERR_BAD_TOKEN = 14
ERR_NAME_UNTERMINATED = 15
ERR_DEPTH = 16
ERR_MULTIPLE_ROOTS = 17
ERR_END_NODE = 18
ERR_PROP_OUTSIDE_NODE = 19
ERR_PROP_AFTER_SUBNODE = 20
ERR_PROP_LEN = 21
ERR_PROP_NAMEOFF = 22
ERR_PROP_NAME_UNTERMINATED = 23
ERR_UNCLOSED_NODES = 24
ERR_NO_ROOT = 25
ERR_NOT_FOUND = 26

ERR_MESSAGES = {
    ERR_NOT_FILE: "not a regular file",
    ERR_READ: "cannot be read",
    ERR_TOO_BIG: "larger than 2 GiB, not a DTB",
    ERR_EMPTY: "empty file, not a DTB",
    ERR_TRUNCATED_HEADER: "file too short for an FDT header",
    ERR_BAD_MAGIC: "bad magic, not a DTB (expected d00dfeed)",
    ERR_BAD_VERSION: "unsupported FDT version (this parser reads versions 16 and 17)",
    ERR_TOTALSIZE: "header totalsize smaller than the header",
    ERR_TRUNCATED: "truncated: file shorter than the header's totalsize",
    ERR_BLOCK_BOUNDS: "structure, strings or reservation block outside the blob",
    ERR_STRUCT_ALIGN: "structure block not 4-byte aligned",
    ERR_RSVMAP: "memory reservation block not terminated within the blob",
    ERR_STRUCT_END: "structure block ends before FDT_END",
    ERR_BAD_TOKEN: "unknown token in the structure block",
    ERR_NAME_UNTERMINATED: "node name not terminated within the structure block",
    ERR_DEPTH: f"nodes nested deeper than {MAX_DEPTH}",
    ERR_MULTIPLE_ROOTS: "second root node after the first one closed",
    ERR_END_NODE: "FDT_END_NODE without an open node",
    ERR_PROP_OUTSIDE_NODE: "property outside any node",
    ERR_PROP_AFTER_SUBNODE: "property after a subnode of the same node",
    ERR_PROP_LEN: "property value runs past the structure block",
    ERR_PROP_NAMEOFF: "property name offset outside the strings block",
    ERR_PROP_NAME_UNTERMINATED: "property name not terminated within the strings block",
    ERR_UNCLOSED_NODES: "FDT_END with nodes still open",
    ERR_NO_ROOT: "no root node",
    ERR_NOT_FOUND: "no such file",
}
