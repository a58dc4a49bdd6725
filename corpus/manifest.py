"""The build's manifest: in the output folder, for each output the files cpp
and dtc read with their stamps, the flags, the output's size, SHA-256 and
stamp; whether every chosen target was tried. Sealed JSON (store/sealed.py);
docs/corpus.md says how the build trusts it.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

from corpus.kbuild import Target
from store.durable import write_atomically
from store.kept import NotKept, open_kept
from store.sealed import Damaged, OtherFormat, read_sealed, sealed
from store.stamps import file_stamp, racy

MANIFEST = "dtb-audit-corpus.json"
FORMAT = 2


def mtime_size(path) -> list | None:
    """A dependency's stamp as the manifest keeps it, [mtime, size]; None when it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]


def output_of(path, size: int | None = None) -> tuple[list, list]:
    """([size, sha256], stamp) of a built file: the stamp of the very file
    read, a regular file (of `size` bytes when given)."""
    with open_kept(path, size) as f:
        st = os.fstat(f.fileno())
        data = f.read(st.st_size)
    return [len(data), hashlib.sha256(data).hexdigest()], file_stamp(st)


def digest_of(record: dict | None) -> str | None:
    output = (record or {}).get("output")
    return output[1] if output else None


def output_problem(path, record: dict, written_ns) -> tuple[str | None, list | None]:
    """(why the file at path is not the output the record says, None when it is;
    the file's stamp when its bytes were read to tell).

    An output whose stamp is the one recorded, not racy against the
    manifest's time (written_ns), is the file built; any other is read whole.
    """
    recorded = record.get("output")
    if not recorded:
        return "no size and checksum recorded", None
    try:
        st = os.stat(path)
        if st.st_size != recorded[0]:
            return f"changed since it was built ({st.st_size} bytes, {recorded[0]} when built)", None
        now = file_stamp(st)
        if now == record.get("stamp") and not racy(now, written_ns):
            return None, None
        output, now = output_of(path, recorded[0])
        if output != recorded:
            return "changed since it was built (checksum)", None
    except FileNotFoundError:
        return "missing since it was built", None
    except NotKept as why:
        return f"not the output built: {why}", None
    except OSError as why:
        return f"unreadable: {why.strerror}", None
    return None, now


def output_record(target: Target, error: str | None, deps: dict | None = None,
            inputs: dict | None = None, output: tuple | None = None, racy: bool = False) -> dict:
    """An output's record; `output`: what output_of() says of it."""
    record = {"kind": target.kind, "source": target.source, "parts": target.parts,
              "flags": target.dtc_flags, "error": error, "deps": deps or {},
              "inputs": inputs or {}, "output": output[0] if output else None}
    if output:
        record["stamp"] = output[1]
    if racy:
        record["racy"] = True
    return record


def read_manifest(root: Path) -> tuple[dict, str | None]:
    """(the manifest, None); ({}, None) when there is none; ({}, what is wrong) when
    it cannot be trusted (unreadable, damaged, or of another version of dtb-audit)."""
    try:
        data = read_sealed(root / MANIFEST, FORMAT)
    except NotKept as why:
        return {}, f"unusable manifest ({why})"
    except OtherFormat as why:
        return {}, f"manifest of another dtb-audit version ({why})"
    except Damaged:
        return {}, "damaged manifest (checksum)"
    except (OSError, ValueError) as why:
        return {}, f"unreadable manifest ({why})"
    return (data, None) if data is not None else ({}, None)


def sources_record(record: dict) -> dict:
    """What a corpus keeps of the manifest's record of a DTB (Corpus._records):
    the sources it was built from and the files it read, without the stamps
    only the build checks (a fifth of the memory of a sweep of several corpora)."""
    # File names interned and equal flags shared: corpora swept together
    # name the same files, and most DTBs have the same flags.
    return {"source": record.get("source"), "flags": _shared(record.get("flags") or ()),
            "parts": _shared(record.get("parts") or ()),
            "deps": tuple(map(sys.intern, record.get("deps") or ()))}


_SHARED: dict[tuple, tuple] = {}


def _shared(names) -> tuple:
    names = tuple(map(sys.intern, names))
    return _SHARED.setdefault(names, names)


def write_manifest(root: Path, header: dict, done: dict, chosen: list[Target],
                    finished: bool) -> None:
    """The manifest: what is built, and whether every chosen target was tried.

    written_ns: when, for the racy rule of the outputs' stamps.
    """
    tried = sum(t.dtb in done for t in chosen)
    data = dict(header, records=done, targets=len(chosen), tried=tried,
                complete=finished and tried == len(chosen), written_ns=time.time_ns())
    write_atomically(root / MANIFEST, sealed(data))
