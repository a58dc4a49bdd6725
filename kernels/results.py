"""The kernels' results, kept next to the flattened arrays they were computed
from, so that a sweep of a corpus unchanged since the last one loads them
instead of running (or even loading) the kernels.

    <flat cache entry>/results/<key>/   one .npy per array; meta.json last

The flat cache entry (corpus/flat.py, FlatCorpus.cache_folder) already
stands for the exact DTB files and parser; <key> hashes everything else the
results depend on: the bytes of every kernels/*.py (rule, tables, codes,
target decisions), the installed numba and llvmlite, the target kernel's
version, the rule and the legacy-binding flag.  An entry is used only when
meta.json carries its own valid checksum and that key, and every .npy file
has the size, CRC-32, dtype and shape recorded there; anything else is one
warning line and the kernels run again.  Entries are written under a
temporary name and renamed into place; the few most recently used keys of a
flat entry are kept.

Plain Python and numpy: loading results imports no numba.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np

from kernels.cachefile import NotKept, read_kept

KERNELS_DIR = Path(__file__).resolve().parent
FORMAT = 1
# Keys kept per flat entry besides the one in use (other targets, rules).
KEEP_OTHER_KEYS = 7
_USED = ".used"
_sources = None


def _sources_digest() -> str:
    """What the kernels compute with: their sources and the compiler's version."""
    global _sources
    if _sources is None:
        h = hashlib.sha256()
        for f in sorted(KERNELS_DIR.glob("*.py")):
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
        for package in ("numba", "llvmlite"):
            spec = importlib.util.find_spec(package)   # found, not imported
            version = Path(spec.origin).with_name("_version.py") if spec and spec.origin else None
            h.update(version.read_bytes() if version and version.is_file() else b"?")
        _sources = h.hexdigest()
    return _sources


def key(target, rule: int, legacy_dt_bindings: bool) -> str:
    """The key of one evaluation of a flat entry."""
    return hashlib.sha256(json.dumps([FORMAT, _sources_digest(), list(target.version), rule,
                                      bool(legacy_dt_bindings)]).encode()).hexdigest()[:16]


def folder_of(flat, key_: str) -> Path | None:
    entry = getattr(flat, "cache_folder", None)
    return None if entry is None else Path(entry) / "results" / key_


def _checksum(meta: dict) -> str:
    body = {k: v for k, v in meta.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _file_crc(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    return len(data), zlib.crc32(data)


def load(folder: Path | None, key_: str, names) -> dict | None:
    """The arrays `names` of a valid entry, or None (no entry, or one that is
    not trusted: then one warning line)."""
    if folder is None:
        return None
    try:
        try:
            meta = json.loads(read_kept(folder / "meta.json"))
        except (FileNotFoundError, NotADirectoryError):
            return None                                  # no entry (or no folder for one)
        if not isinstance(meta, dict) or meta.get("checksum") != _checksum(meta):
            problem = "has a damaged meta.json (checksum)"
        elif meta.get("key") != key_ or sorted(meta.get("arrays", {})) != sorted(names):
            problem = "is for another evaluation"
        else:
            problem, arrays = None, {}
            for name in names:
                dtype, shape, size, crc = meta["arrays"][name]
                data = read_kept(folder / f"{name}.npy", size)  # read once: checked, then parsed
                if zlib.crc32(data) != crc:
                    problem = f"has a corrupt {name}.npy (checksum)"
                    break
                a = np.load(io.BytesIO(data), allow_pickle=False)
                if a.dtype.str != dtype or list(a.shape) != shape:
                    problem = f"has a wrong {name}.npy"
                    break
                a.flags.writeable = False
                arrays[name] = a
    except NotKept as e:
        problem = f"is unusable ({e})"
    except Exception as e:  # noqa: BLE001 - whatever the files hold, no traceback
        problem = f"is unreadable ({type(e).__name__}: {e})"
    if problem:
        sys.stderr.write(f"{folder}: warning: cached results {problem}; evaluating again\n")
        return None
    _mark_used(folder)
    return arrays


def save(folder: Path | None, key_: str, arrays: dict) -> None:
    """Keep `arrays` as the entry `folder`; a cache that cannot be written is
    one warning line (the sweep goes on)."""
    if folder is None:
        return
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        meta = {"format": FORMAT, "key": key_, "arrays": {}}
        for name, a in arrays.items():
            a = np.ascontiguousarray(a)
            with open(tmp / f"{name}.npy", "wb") as fh:
                np.lib.format.write_array(fh, a, allow_pickle=False)
                fh.flush()
                os.fsync(fh.fileno())
            meta["arrays"][name] = [a.dtype.str, list(a.shape), *_file_crc(tmp / f"{name}.npy")]
        meta["checksum"] = _checksum(meta)
        with open(tmp / "meta.json", "wb") as fh:
            fh.write(json.dumps(meta).encode())
            fh.flush()
            os.fsync(fh.fileno())
        shutil.rmtree(folder, ignore_errors=True)      # an entry that was not trusted
        try:
            os.rename(tmp, folder)
        except OSError:
            pass                                       # another process wrote it meanwhile
        _mark_used(folder)
        _prune(folder)
    except OSError as e:
        sys.stderr.write(f"{folder}: warning: cannot keep the results: {e.strerror or e}\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _mark_used(folder: Path) -> None:
    try:
        (folder / _USED).touch()
    except OSError:
        pass


def _prune(folder: Path) -> None:
    """Keep the entry in use and the KEEP_OTHER_KEYS most recently used others."""
    def last_used(p):
        try:
            return (p / _USED).stat().st_mtime_ns
        except OSError:
            return 0

    others = [p for p in folder.parent.iterdir()
              if p.is_dir() and p != folder and not p.name.startswith(".")]
    others.sort(key=last_used, reverse=True)
    for old in others[KEEP_OTHER_KEYS:]:
        shutil.rmtree(old, ignore_errors=True)
