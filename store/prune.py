"""Keeping the entries in use: each is marked when used, and all but the
few most recently used of its kind are removed."""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

USED = ".used"


def mark_used(entry: Path) -> None:
    with contextlib.suppress(OSError):
        (entry / USED).touch()


def _last_used(entry: Path) -> int:
    try:
        return (entry / USED).stat().st_mtime_ns
    except OSError:
        return 0


def prune(current: Path, keep: int, others=None) -> None:
    """Remove all but the `keep` most recently used (mark_used()) of
    `others`, never `current`; by default current's sibling folders
    (temporaries, named with a dot, are remove_dead()'s)."""
    if others is None:
        try:
            others = [p for p in current.parent.iterdir() if p.is_dir()]
        except OSError:
            return
    others = [p for p in others if p != current and not p.name.startswith(".")]
    others.sort(key=_last_used, reverse=True)
    for old in others[keep:]:
        shutil.rmtree(old, ignore_errors=True)
