"""What one DTB says, kept by its content: the link records, problems and
errors the sweep builds from the kernels' results for that DTB, as a sealed
JSON document judged/<key>/<SHA-256 of the DTB>.json, where <key> hashes
what the judgement depends on besides the DTB's bytes (the kernels'
results key: their sources, numba, the target kernel, the rule, the
bindings; the target's text; the code that builds the records).

Every link, provider and verdict is found within one DTB, and no record
names the DTB's path (the sweep adds it), so an entry serves any corpus
that holds those bytes: `sweep` and `history` share them, identical DTBs
of two corpora are judged once, and after an edit only the DTBs whose
bytes changed are judged again (docs/store.md).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from pathlib import Path

from kernels import results
from store.durable import remove_dead, write_sealed_entry
from store.folders import cache_dir
from store.prune import mark_used, prune
from store.sealed import read_sealed, sealed

FORMAT = 1
# Entries kept per key (least recently used go first): some twenty corpora of 2,000 DTBs.
KEEP_ENTRIES = 40_000
# Keys kept besides the one in use (other targets, rules, versions of the code).
KEEP_OTHER_KEYS = 7
_code = None


def _code_digest() -> str:
    """The code that reads the DTBs and turns the kernels' results into records."""
    global _code
    if _code is None:
        import corpus.flat   # its parser's reading of names and strings
        here = Path(__file__).resolve().parent
        h = hashlib.sha256()
        for f in (here / "judged.py", here / "sweep.py", here / "model.py",
                  Path(corpus.flat.__file__)):
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
        _code = h.hexdigest()
    return _code


def key(target, rule, legacy_dt_bindings: bool) -> str:
    """The key of one judgement (kernels/results.key() and what the records add)."""
    return hashlib.sha256("\0".join((
        str(FORMAT), results.key(target, rule.code, legacy_dt_bindings), str(target),
        rule.value, _code_digest())).encode()).hexdigest()[:16]


def folder(key_: str) -> Path:
    return cache_dir() / "judged" / key_


def load(where: str, key_: str, sha256: str) -> dict | None:
    """The record of the DTB whose bytes hash to sha256 in the folder of
    key_, or None (none kept, or one not trusted: then one warning line,
    and it is judged again)."""
    path = os.path.join(where, f"{sha256}.json")
    try:
        record = read_sealed(path, FORMAT)
        if record is not None and (record.get("key"), record.get("sha256")) != (key_, sha256):
            raise ValueError("is for another DTB or judgement")
    except (OSError, ValueError) as why:
        sys.stderr.write(f"{path}: warning: kept judgement unusable ({why}); judging again\n")
        return None
    if record is not None:
        with contextlib.suppress(OSError):
            os.utime(path)      # last used: what pruning keeps
    return record


def save(key_: str, records: dict) -> bool:
    """Keep records (SHA-256 -> record); a cache that cannot be written is
    one warning line (the sweep goes on). Whether any was kept."""
    if not records:
        return False
    where = folder(key_)
    try:
        where.mkdir(parents=True, exist_ok=True)
        remove_dead(where)    # temporaries of killed processes
        for sha256, record in records.items():
            write_sealed_entry(where / f"{sha256}.json",
                             sealed(dict(record, format=FORMAT, key=key_, sha256=sha256)))
        mark_used(where)
    except OSError as e:
        sys.stderr.write(f"{where}: warning: cannot keep the judgements: {e.strerror or e}\n")
        return False
    return True


def prune_kept(key_: str) -> None:
    """All but the few most recently used keys go, and the least recently
    used entries of this one beyond KEEP_ENTRIES (once a sweep kept some)."""
    where = folder(key_)
    prune(where, KEEP_OTHER_KEYS)
    try:
        entries = [e for e in os.scandir(where) if e.name.endswith(".json")
                   and not e.name.startswith(".")]
    except OSError:
        return
    if len(entries) <= KEEP_ENTRIES:
        return

    def last_used(e):
        try:
            return e.stat(follow_symlinks=False).st_mtime_ns
        except OSError:
            return 0
    entries.sort(key=last_used, reverse=True)
    for e in entries[KEEP_ENTRIES:]:
        with contextlib.suppress(OSError):
            os.unlink(e.path)
