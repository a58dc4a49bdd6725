"""What says a file changed without reading it: its stamp.

A stamp is [size, mtime, ctime, inode]: ctime cannot be set back, so a
change in place (its mtime put back or not) or another file put there moves
it. A file changed less than RACY_NS before its stamp was kept may change
again within the same timestamp tick, and its stamp would not show it (git's
racy-clean rule): such a stamp vouches for nothing.
"""
from __future__ import annotations

import os

RACY_NS = 2_000_000_000


def file_stamp(st: os.stat_result) -> list[int]:
    """[size, mtime, ctime, inode] of a stat result."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def stamp(path) -> list[int] | None:
    """The file_stamp of path (links followed), None when there is nothing to stat."""
    try:
        return file_stamp(os.stat(path))
    except OSError:
        return None


def racy(stamp: list[int] | None, kept_ns: int | None) -> bool:
    """Whether a stamp kept at kept_ns (None: unknown) cannot vouch for its file."""
    if stamp is None:
        return False  # nothing there: whatever comes has a stamp
    return kept_ns is None or max(stamp[1], stamp[2]) >= kept_ns - RACY_NS


def stamps(paths) -> dict[str, list[int] | None]:
    """path -> stamp, for files and folders; a folder's entries are stamped
    too (one level), so that a file added, removed or changed in it shows."""
    found = {}
    for path in map(str, paths):
        found[path] = stamp(path)
        if found[path] is not None and os.path.isdir(path):
            try:
                names = sorted(os.listdir(path))
            except OSError:
                continue
            for name in names:
                found[os.path.join(path, name)] = stamp(os.path.join(path, name))
    return found


def unchanged(then: dict, now: dict, kept_ns: int) -> bool:
    """Whether the stamps `now` (path -> stamp) are those kept at kept_ns
    (`then`), and old enough then to vouch for their files."""
    return now == then and not any(racy(s, kept_ns) for s in now.values())
