"""The one durable write, and the temporaries it goes through.

A file that users or later runs read appears whole or not at all: it is
written to a temporary beside it, flushed to disk, renamed over the old one,
and the folder is flushed so that the rename survives a crash too
(writing(), write_atomically(), place()).

Temporaries are named for the process that owns them: `.{name}.tmp-{pid}`
or `.{kind}.tmp-{pid}-{random}`. A process killed with SIGKILL cannot clean
up, so the next run removes the temporaries of processes that no longer
exist (remove_dead()), and never those of a live one.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

_OWNED = re.compile(r"^\..*\.tmp-(\d+)(?:-[^/]*)?$")


def temporary_path(final: Path) -> Path:
    """Where a tool writes `final` before it is placed (place())."""
    return final.with_name(f".{final.name}.tmp-{os.getpid()}")


def temporary_folder(parent: Path, kind: str) -> Path:
    """A new private folder in `parent`, named for this process."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{kind}.tmp-{os.getpid()}-", dir=parent))


def is_temporary(path: Path) -> bool:
    """Whether a path is named as one of these temporaries."""
    return _OWNED.match(path.name) is not None


def sync_folder(folder) -> None:
    """Flush a folder's entries (a rename in it) to disk; a file system that
    cannot is left as it is."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sync_tree(folder) -> None:
    """Flush every file and folder below `folder` to disk (a folder filled
    before it is renamed into place whole)."""
    for here, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(here, name), os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        sync_folder(here)


def _umasked(mode: int) -> int:
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


@contextlib.contextmanager
def writing(path, mode: str = "wb", **open_args):
    """A file object to write `path` through: on a clean exit its bytes are
    flushed to disk and it replaces `path` (with the mode bits the file there
    had, or the umask's); on an exception nothing changes. OSErrors name the
    file that failed (the folder's temporary, when a write failed)."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    try:
        kept_mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        kept_mode = _umasked(0o666)
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.tmp-{os.getpid()}-", dir=folder)
    try:
        with os.fdopen(fd, mode, **open_args) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), kept_mode)
        os.replace(temporary, path)
    except OSError as why:
        if why.filename is None:  # a failed write or flush names no file: say which
            why.filename = temporary
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    sync_folder(folder)


def write_atomically(path: Path, data: bytes) -> None:
    """Write data to path so that a reader sees the old file or the whole new one."""
    with writing(path) as f:
        f.write(data)


def write_sealed_entry(path: Path, data: bytes) -> None:
    """Write a cache file that carries its own check (a sealed document, one
    of thousands): renamed into place whole but not flushed, as the build's
    DTB outputs are; after a crash its check refuses what the disk kept."""
    temporary = temporary_path(path)
    try:
        with open(temporary, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def write_new(path: Path, data: bytes) -> None:
    """Write a file of a private temporary folder, flushed to disk (the
    folder is placed whole afterwards)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def place(temporary: Path, final: Path, replace: bool = True, sync: bool = True) -> bool:
    """Rename a finished temporary file or folder into place, durably.

    replace=False: a folder already there (another process's) is kept and
    the temporary is left to its owner to remove. sync=False: the folder is
    not flushed (the build's outputs: thousands of them, each checked
    against the manifest's checksum instead). Returns whether ours is the
    one in place."""
    try:
        if replace:
            os.replace(temporary, final)
        else:
            os.rename(temporary, final)
    except OSError:
        if replace or not os.path.isdir(final):
            raise
        return False          # another process placed it first
    if sync:
        sync_folder(os.path.dirname(os.path.abspath(final)))
    return True


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a, b) -> bool:
    """Swap two paths atomically; False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), b)


def replace_folder(fresh: str, path: str) -> None:
    """Put the filled folder `fresh` (a `.NAME.*.new` beside `path`) at
    `path`, durably: every file flushed, then swapped with the folder there
    in one rename (renameat2's RENAME_EXCHANGE; two renames, a short moment
    without the folder, where the file system lacks it), and the old one
    removed. A reader sees either folder whole: a file opened before the
    swap reads to its end."""
    sync_tree(fresh)
    os.chmod(fresh, _umasked(0o777))      # mkdtemp's 0700 would hide it from a web server
    if os.path.isdir(path):
        old = fresh[:-len(".new")] + ".old"
        if _exchange(fresh, path):
            os.rename(fresh, old)
        else:
            os.rename(path, old)
            os.rename(fresh, path)
        sync_folder(os.path.dirname(path))
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(fresh, path)
        sync_folder(os.path.dirname(path))


def adopt(written: Path, final: Path) -> None:
    """Place a file another program wrote in a private folder (apt's
    download): flushed to disk first, so that it is whole once in place."""
    with open(written, "rb") as f:
        os.fsync(f.fileno())
    place(written, final)


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead(folder: Path, recursive: bool = False) -> int:
    """Remove the temporaries of dead processes in folder (and below); returns how many."""
    try:
        candidates = folder.rglob(".*.tmp-*") if recursive else folder.glob(".*.tmp-*")
        found = [p for p in candidates if _OWNED.match(p.name)]
    except OSError:
        return 0
    removed = 0
    for path in found:
        pid = int(_OWNED.match(path.name).group(1))
        if pid == os.getpid() or alive(pid):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
        except OSError:
            pass
    return removed
