"""Opening a file a cache kept, trusting nothing about what is there now.

Anything may have been put in place of a cache file: a FIFO (opening or
reading it waits for a writer, forever), a device or a link to one
(/dev/zero reads without end), a folder, a file of another size.  Every
reader of a cache file in dtb-audit (flattened arrays, kept results,
compiled kernels, manifests, remembered answers, downloaded packages)
opens it through open_kept() or read_kept(): the path is looked at without
following a link, opened without blocking and without following a link,
and must be the regular file it looked at, of the recorded size when one
was recorded.  Anything else raises NotKept (an OSError: the readers'
"unreadable, rebuilt" path takes it) whose str() says what is there, and
nothing of it is read.

It lives in the store (plain Python, no numba): readers in corpus/ and
kernels/ use it.
"""
from __future__ import annotations

import os
import stat

_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


class NotKept(OSError):
    """A cache file that is not the regular file written there."""

    def __init__(self, path, what: str):
        super().__init__(None, f"{os.path.basename(os.fspath(path))} is {what}", os.fspath(path))

    def __str__(self):
        return self.strerror


def _check(path, st: os.stat_result, size: int | None) -> None:
    if not stat.S_ISREG(st.st_mode):
        what = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        raise NotKept(path, f"{what}, not a regular file")
    if size is not None and st.st_size != size:
        raise NotKept(path, f"{st.st_size} bytes, not the {size} recorded")


def open_kept(path, size: int | None = None):
    """The cache file at path opened for reading (a binary file object),
    once it is known to be a regular file (of `size` bytes when given).

    Raises FileNotFoundError when there is nothing, NotKept when something
    else is there, OSError when it cannot be opened."""
    return _open_regular(os.fspath(path), size, follow=False)


def open_regular(path):
    """A file a user named, opened for reading (a binary file object): a
    link is followed, but what it reaches must be a regular file, opened
    without blocking (a FIFO would wait for a writer, /dev/zero never
    ends).  Raises FileNotFoundError when there is nothing, NotKept (an
    OSError naming what is there) for anything but a regular file."""
    return _open_regular(os.fspath(path), None, follow=True)


def _open_regular(path: str, size: int | None, follow: bool):
    seen = os.stat(path) if follow else os.lstat(path)
    _check(path, seen, size)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
                 | (0 if follow else os.O_NOFOLLOW))
    try:
        st = os.fstat(fd)
        _check(path, st, size)
        if (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino):
            raise NotKept(path, "another file since it was looked at")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_kept(path, size: int | None = None) -> bytes:
    """The bytes of the cache file at path (open_kept's checks first): at
    most the size it had when opened, so a file that grows meanwhile ends."""
    with open_kept(path, size) as f:
        return f.read(os.fstat(f.fileno()).st_size)
