"""Sealed JSON: a document that carries its own checksum, so that a damaged
or half-written one is never taken for what was written.

sealed() writes the checksum first, then the text of the body it covers:
seal_holds() checks such a document by hashing those bytes, without
encoding the data again. read_sealed() reads one a cache kept.
"""
from __future__ import annotations

import hashlib
import json
import re

from store.kept import read_kept


class Damaged(ValueError):
    """A sealed document whose checksum does not hold."""


class OtherFormat(ValueError):
    """A sealed document of another format (another version of dtb-audit)."""

    def __init__(self, found):
        super().__init__(f"format {found!r}")
        self.found = found


def checksum(data: dict) -> str:
    """SHA-256 of a document without its "checksum", as json.dumps(sort_keys=True) writes it."""
    body = {k: v for k, v in data.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# How a document written by sealed() starts: its checksum, then the text of
# the body the checksum was computed over.
_SEAL = re.compile(rb'\{"checksum": "([0-9a-f]{64})", ')


def sealed(data: dict) -> bytes:
    """data as JSON, its checksum() first (any "checksum" it has is replaced):
    encoded once, by Python's C encoder (no indent)."""
    body = json.dumps({k: v for k, v in data.items() if k != "checksum"}, sort_keys=True)
    digest = hashlib.sha256(body.encode()).hexdigest()
    return f'{{"checksum": "{digest}", {body[1:]}'.encode()


def seal_holds(raw: bytes, data: dict) -> bool:
    """Whether data, read from raw, carries its right checksum().

    Any text not written by sealed() (or damaged) is encoded again and checked.
    """
    seal = _SEAL.match(raw)
    if seal and data.get("checksum") == seal.group(1).decode() \
            and hashlib.sha256(b"{" + raw[seal.end():]).hexdigest() == data["checksum"]:
        return True
    return data.get("checksum") == checksum(data)


def read_sealed(path, format) -> dict | None:
    """The sealed document of `format` a cache kept at path (its "format";
    None: a document without one); None when there is none.

    Raises NotKept (something else than the regular file written there),
    OSError (unreadable), ValueError (not JSON; not an object), OtherFormat
    (its "format" is another: told before its seal is checked) or Damaged.
    """
    try:
        raw = read_kept(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if data.get("format") != format:
        raise OtherFormat(data.get("format"))
    if not seal_holds(raw, data):
        raise Damaged("checksum")
    return data
