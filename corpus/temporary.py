"""Temporary files and folders, named by the process that owns them.

Every temporary the corpus layer writes (an output under construction, a
manifest, a download, an extracted tree, a dtc build, a flat-cache entry)
is named `.{name}.tmp-{pid}` or `.{kind}.tmp-{pid}-{random}`, beside where
the result goes. A process killed with SIGKILL cannot clean up, so the next
run removes the temporaries of processes that no longer exist
(remove_dead()), and never those of a live one. Files users or later runs
read are written atomically: temporary, fsync, rename (write_atomically()).
Work that two processes must not do at once (building one corpus folder,
fetching into one cache folder) takes turns on a lock file (taking_turns()).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

_OWNED = re.compile(r"^\..*\.tmp-(\d+)(?:-[^/]*)?$")


def temporary_path(final: Path) -> Path:
    """Where `final` is written before it is renamed into place."""
    return final.with_name(f".{final.name}.tmp-{os.getpid()}")


def temporary_folder(parent: Path, kind: str) -> Path:
    """A new private folder in `parent`, named for this process."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{kind}.tmp-{os.getpid()}-", dir=parent))


def write_atomically(path: Path, data: bytes) -> None:
    """Write data to path so that a reader sees the old file or the whole new one."""
    temporary = temporary_path(path)
    try:
        with open(temporary, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except OSError as why:
        if why.filename is None:  # a failed write or flush names no file: say which
            why.filename = str(temporary)
        raise
    finally:
        if temporary.exists():
            temporary.unlink()


def is_temporary(path: Path) -> bool:
    """Whether a path is named as one of these temporaries."""
    return _OWNED.match(path.name) is not None


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


def open_lock(lock_file: Path):
    """lock_file opened for flock(): a regular file, made when missing.
    Anything else there (a FIFO, whose opening waits for a reader; a link)
    is one warning line and made again, never opened."""
    from corpus.console import diagnostic

    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    for attempt in (1, 2):
        try:
            fd = os.open(lock_file, flags, 0o666)
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.set_blocking(fd, True)
                return os.fdopen(fd, "a")
            os.close(fd)
            why = "not a regular file"
        except OSError as error:   # ELOOP: a link; ENXIO: a FIFO nobody reads
            if attempt == 2 or error.errno not in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
                raise
            why = error.strerror
        diagnostic(f"{lock_file}: warning: not a lock file ({why}); made again")
        if os.path.isdir(lock_file) and not os.path.islink(lock_file):
            shutil.rmtree(lock_file, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_file)
    raise OSError(errno.EEXIST, "cannot make a lock file", str(lock_file))


@contextlib.contextmanager
def taking_turns(lock_file: Path, waiting: str):
    """Hold an exclusive lock on lock_file; it goes with the process, even on SIGKILL.

    `waiting` is said (on a terminal) when another process holds it.
    """
    from corpus.console import status

    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open_lock(lock_file) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            status(waiting)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
