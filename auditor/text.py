"""Text from a DTB, made safe for the formats people read.

Node names, labels and `compatible` strings are bytes that whoever wrote the
DT chose.  They arrive here decoded once, by corpus.flat.dt_text(): UTF-8
as UTF-8, any byte that is not valid UTF-8 as the four characters \\xNN.
A newline or an escape sequence in them must not forge a line of a table,
a `file:line: warning:` line or a terminal's state.  Every human format
(and each CSV cell) shows them through `shown()`; JSON escapes by its own
rules.  docs/text-and-formats.md says what each format does.
"""
import re

# C0 controls, DEL, C1 controls, and the Unicode line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def shown(value) -> str:
    """str(value) with every control character written as \\xNN (or \\uNNNN)."""
    text = "" if value is None else str(value)
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                       else f"\\u{ord(m.group()):04x}", text)

