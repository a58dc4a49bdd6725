"""The kernels' results, kept next to the flattened arrays they were computed
from, so that a sweep of a corpus unchanged since the last one loads them
instead of running (or even loading) the kernels: a checked array bundle
(store/bundle.py) under <flat cache entry>/results/<key>/, where <key>
hashes everything the results depend on besides the DTBs (docs/store.md).

Plain Python and numpy: loading results imports no numba.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import sys
from pathlib import Path

from store import bundle
from store.prune import mark_used, prune

KERNELS_DIR = Path(__file__).resolve().parent
FORMAT = 2   # 2: a store bundle (dtype, shape, size, CRC and stamp of each array)
# Keys kept per flat entry besides the one in use (other targets, rules).
KEEP_OTHER_KEYS = 7
_sources = None


def _sources_digest() -> str:
    """What the kernels compute with: their sources and the compiler's version."""
    global _sources
    if _sources is None:
        h = hashlib.sha256()
        for f in sorted(KERNELS_DIR.glob("*.py")):
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
        for package in ("numba", "llvmlite"):         # their metadata: not imported
            h.update(package.encode() + b"\0" + importlib.metadata.version(package).encode())
        _sources = h.hexdigest()
    return _sources


def key(target, rule: int, legacy_dt_bindings: bool) -> str:
    """The key of one evaluation of a flat entry."""
    return hashlib.sha256(json.dumps([FORMAT, _sources_digest(), list(target.version), rule,
                                      bool(legacy_dt_bindings)]).encode()).hexdigest()[:16]


def folder_of(flat, key_: str) -> Path | None:
    return None if flat.cache_folder is None else Path(flat.cache_folder) / "results" / key_


def load(folder: Path | None, key_: str, names) -> dict | None:
    """The arrays `names` of a valid entry, or None (no entry, or one that is
    not trusted: then one warning line)."""
    if folder is None:
        return None

    def wanted(meta):
        if meta.get("key") != key_ or sorted(meta.get("arrays", {})) != sorted(names):
            return "is for another evaluation"
        return None

    try:
        loaded = bundle.load(folder, wanted)
    except bundle.Untrusted as problem:
        sys.stderr.write(f"{folder}: warning: cached results {problem}; evaluating again\n")
        return None
    if loaded is None:
        return None
    bundle.remember(folder, loaded)
    mark_used(folder)
    return loaded.arrays


def save(folder: Path | None, key_: str, arrays: dict) -> None:
    """Keep `arrays` as the entry `folder`; a cache that cannot be written is
    one warning line (the sweep goes on)."""
    if folder is None:
        return
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        bundle.save(folder, arrays, {"format": FORMAT, "key": key_})
        mark_used(folder)
        prune(folder, KEEP_OTHER_KEYS)
    except OSError as e:
        sys.stderr.write(f"{folder}: warning: cannot keep the results: {e.strerror or e}\n")
