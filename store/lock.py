"""Work that two processes must not do at once (building one corpus folder,
fetching into one cache folder, a git worktree slot) takes turns on a lock
file with flock(): the lock goes with the process, even on SIGKILL."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
import sys
from pathlib import Path


def open_lock(lock_file: Path):
    """lock_file opened for flock(): a regular file, made when missing.
    Anything else there (a FIFO, whose opening waits for a reader; a link)
    is one warning line and made again, never opened."""
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
        sys.stderr.write(f"{lock_file}: warning: not a lock file ({why}); made again\n")
        sys.stderr.flush()
        if os.path.isdir(lock_file) and not os.path.islink(lock_file):
            shutil.rmtree(lock_file, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_file)
    raise OSError(errno.EEXIST, "cannot make a lock file", str(lock_file))


def try_lock(lock_file: Path):
    """The lock file opened and locked, or None when another process holds
    it; closing the file releases it."""
    handle = open_lock(lock_file)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


@contextlib.contextmanager
def taking_turns(lock_file: Path, on_wait=None):
    """Hold an exclusive lock on lock_file, waiting for it when another
    process holds it (then on_wait() is called first, to say so)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open_lock(lock_file) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
