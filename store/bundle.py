"""Checked array bundles: a folder of .npy files and a sealed meta.json.

    <entry>/<name>.npy ...   one per array
    <entry>/meta.json        sealed (store/sealed.py), written last: the
                             caller's fields, then for each array its dtype,
                             shape, size and CRC-32, and its stamp

save() fills a temporary folder beside the entry and renames it into place,
so a crash leaves nothing a later run would trust. load() trusts an entry
only when meta.json's seal holds, the caller's check passes, and every .npy
file is the one written there (header and all: a flipped byte anywhere is
found) of the recorded dtype and shape. A .npy file whose stamp is the one
recorded, not racy against meta.json's time, is vouched for without being
read; any other is read whole and its CRC-32 checked, and remember() keeps
its stamp for next time. Arrays are memory-mapped read-only from the very
files checked. Other files and folders in an entry (results derived from
its arrays) are left alone, and go with it.
"""
from __future__ import annotations

import json
import mmap
import os
import shutil
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from store.durable import place, temporary_folder, write_atomically, write_new
from store.kept import NotKept, open_kept, read_kept
from store.sealed import seal_holds, sealed
from store.stamps import file_stamp, racy

META = "meta.json"


class Untrusted(Exception):
    """An entry that is not used; str() says why ("has a corrupt x.npy (checksum)")."""


@dataclass
class Loaded:
    arrays: dict          # name -> read-only array
    meta: dict            # meta.json as read
    read_whole: dict      # name -> stamp of the .npy files read to check their CRC-32


def _save_npy(path, a):
    """np.save's format, written through Python's file object, so that a full
    disk is an OSError saying so (numpy's own writer reports only a short write)."""
    a = np.ascontiguousarray(a)
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, np.lib.format.header_data_from_array_1_0(a))
        if a.size:
            fh.write(memoryview(a).cast("B"))
        fh.flush()
        os.fsync(fh.fileno())


def _file_crc(fh):
    """((size, CRC-32) of a whole open file, header included; the stamp of the file read)."""
    st = os.fstat(fh.fileno())
    if st.st_size == 0:
        return (0, zlib.crc32(b"")), file_stamp(st)
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        return (st.st_size, zlib.crc32(m)), file_stamp(st)


def _array(fh, dtype, shape):
    """The array of an open .npy file as _save_npy wrote it (memory-mapped
    from that very file); None when it is not of that dtype and shape."""
    fh.seek(0)
    if np.lib.format.read_magic(fh) != (1, 0):
        return None
    got_shape, fortran, got_dtype = np.lib.format.read_array_header_1_0(fh)
    if got_dtype != dtype or list(got_shape) != shape or fortran:
        return None
    if not np.prod(shape):   # numpy cannot map an empty file region
        a = np.empty(shape, dtype=dtype)
        a.flags.writeable = False
        return a
    return np.asarray(np.memmap(fh, dtype=dtype, mode="r", offset=fh.tell(), shape=tuple(shape)))


def save(entry: Path, arrays: dict, fields: dict) -> None:
    """Keep `arrays` (name -> array) as the bundle `entry`, `fields` in its
    meta.json. An entry already there is replaced (it was not trusted); one
    another process placed meanwhile is kept. Raises OSError."""
    tmp = temporary_folder(entry.parent, entry.name)
    try:
        meta = dict(fields, arrays={}, stamps={})
        for name, a in arrays.items():
            _save_npy(tmp / f"{name}.npy", a)
            with open(tmp / f"{name}.npy", "rb") as fh:
                (size, crc), meta["stamps"][name] = _file_crc(fh)
            meta["arrays"][name] = [a.dtype.str, list(a.shape), size, crc]
        # The folder is renamed into place: its files keep their stamps.
        meta["written_ns"] = time.time_ns()
        write_new(tmp / META, sealed(meta))
        tmp.chmod(0o755)   # mkdtemp makes it private; the entry is not
        shutil.rmtree(entry, ignore_errors=True)
        place(tmp, entry, replace=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load(entry: Path, check=None) -> Loaded | None:
    """The arrays of the bundle `entry`; None when there is none.

    check(meta) -> None, or why the entry is not the one wanted; called once
    the seal holds, before any array is opened. Raises Untrusted."""
    try:
        try:
            raw = read_kept(entry / META)
        except (FileNotFoundError, NotADirectoryError):
            return None
        meta = json.loads(raw)
        if not isinstance(meta, dict) or not seal_holds(raw, meta):
            raise Untrusted(f"has a damaged {META} (checksum)")
        problem = check(meta) if check is not None else None
        if problem:
            raise Untrusted(problem)
        arrays, read_whole = {}, {}
        for name, (dtype, shape, size, crc) in meta["arrays"].items():
            kept = meta["stamps"].get(name)
            # One open file for the checks and the array: what is checked is what is mapped.
            with open_kept(entry / f"{name}.npy", size) as fh:
                now = file_stamp(os.fstat(fh.fileno()))
                if now != kept or racy(now, meta["written_ns"]):
                    got, read_whole[name] = _file_crc(fh)
                    if got != (size, crc):
                        raise Untrusted(f"has a corrupt {name}.npy (checksum)")
                a = _array(fh, np.dtype(dtype), shape)
            if a is None:
                raise Untrusted(f"has a wrong {name}.npy")
            arrays[name] = a
    except Untrusted:
        raise
    except NotKept as e:
        raise Untrusted(f"is unusable ({e})") from None
    except Exception as e:  # noqa: BLE001 - whatever the files hold, no traceback
        raise Untrusted(f"is unreadable ({type(e).__name__}: {e})") from None
    return Loaded(arrays, meta, read_whole)


def remember(entry: Path, loaded: Loaded, fields: dict | None = None) -> None:
    """Rewrite meta.json with `fields` changed and the stamps of the files
    read whole that are now old enough to vouch for them (nothing to do:
    nothing written). A meta.json that cannot be written stays as it was."""
    now_ns = time.time_ns()
    learnt = {name: st for name, st in loaded.read_whole.items() if not racy(st, now_ns)}
    if not learnt and not fields:
        return
    meta = dict(loaded.meta, **(fields or {}))
    if learnt:
        # Every other stamp kept was vouched for before: it still is.
        meta["stamps"] = dict(meta["stamps"], **learnt)
        meta["written_ns"] = now_ns
    try:
        write_atomically(entry / META, sealed(meta))
    except OSError:
        pass
