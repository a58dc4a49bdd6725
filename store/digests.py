"""The SHA-256 of each file of a folder, remembered with the file's stamp
(store/stamps.py) so that a file unchanged since the last run is not read
to be hashed again: a sealed document per folder,
digests/<hash of the folder>.json.  A stamp that is racy against the time
the document was written vouches for nothing, and the file is read.
"""
from __future__ import annotations

import hashlib
import os
import stat
import sys
import time
from pathlib import Path

from store.durable import remove_dead, write_atomically
from store.folders import cache_dir, short_hash
from store.sealed import read_sealed, sealed
from store.stamps import file_stamp, racy

FORMAT = 1


def _index(root: Path) -> Path:
    return cache_dir() / "digests" / f"{short_hash(FORMAT, os.fsencode(root))}.json"


def content_digests(root, rel: list[str]) -> list[str | None]:
    """The SHA-256 (hex) of each file `rel` (relative to `root`); None for
    one that is not a readable regular file (its reader reports it)."""
    root = Path(os.path.abspath(root))
    top = str(root)
    index = _index(root)
    try:
        kept = read_sealed(index, FORMAT) or {}
    except (OSError, ValueError) as why:   # damaged, another format, not a file: hashed again
        sys.stderr.write(f"{index}: warning: file digests unusable ({why}); hashing again\n")
        kept = {}
    files, written_ns = kept.get("files", {}), kept.get("written_ns")
    started_ns = time.time_ns()
    out, now, changed = [], {}, False
    for name in rel:
        key = os.fsencode(name).decode("utf-8", "backslashreplace")
        known = files.get(key)
        path = os.path.join(top, name)
        try:
            st = os.stat(path)
        except OSError:
            out.append(None)
            continue
        mine = file_stamp(st)
        if not stat.S_ISREG(st.st_mode):
            out.append(None)
            continue
        if known is not None and known[0] == mine and not racy(mine, written_ns):
            out.append(known[1])
            now[key] = known
            continue
        digest = _hash(path, st)
        out.append(digest)
        changed = True
        if digest is not None:
            now[key] = [mine, digest]
    if changed or len(now) != len(files):
        try:
            index.parent.mkdir(parents=True, exist_ok=True)
            remove_dead(index.parent)
            # A name that is not UTF-8 is kept escaped: at worst it is hashed again.
            write_atomically(index, sealed({
                "format": FORMAT, "root": os.fsencode(root).decode("utf-8", "backslashreplace"),
                "written_ns": started_ns, "files": now}))
        except OSError as e:
            sys.stderr.write(f"{index}: warning: cannot keep the file digests: "
                             f"{e.strerror or e}\n")
    return out


def _hash(path: str, st: os.stat_result) -> str | None:
    """SHA-256 of the regular file looked at as `st` (another file there since: None)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(now.st_mode):
            return None
        return hashlib.file_digest(f, "sha256").hexdigest()
