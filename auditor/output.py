"""Where reports and diagnostics go.

A report written to a file appears whole or not at all: it is written to a
temporary file beside the target, flushed to disk, then renamed over it, so
a full disk or a kill leaves the previous report (or none), never half of
one that the next `diff` would choke on.  Special files (`/dev/null`, a
FIFO, a terminal) are written in place.  Diagnostics go to stderr one
write() per line, and a reader that went away (`2>&1 | head -1`) only stops
them: the report is still written and the exit status still says what was
found.
"""
import contextlib
import functools
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator

from corpus.errors import UserError
from store.durable import replace_folder, writing


class OutputError(UserError):
    """A report that cannot be written where asked."""


def write_report(path, render, binary=False):
    """Call render(f) with a text file open for `path` (None: stdout).

    Returns False when stdout's reader went away (nothing more to say there)."""
    if path is None:
        try:
            render(sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:
            _quiet_stdout()
            return False
        return True
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as why:
        raise OutputError(path, f"cannot write the report: {why.strerror}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise OutputError(path, "cannot write the report: it is a folder")
    in_place = mode is not None and not stat.S_ISREG(mode)   # /dev/null, a FIFO, a terminal
    folder = os.path.dirname(os.path.abspath(path))
    if not in_place and not os.path.isdir(folder):
        raise OutputError(path, f"cannot write the report: no folder {folder}")
    try:
        with (open if in_place else writing)(path, "w", encoding="utf-8", newline="") as f:
            render(f)
    except OSError as why:
        raise OutputError(path, f"cannot write the report: {why.strerror or why}") \
            from None
    return True


def dump_json(doc: dict, out) -> None:
    """Write the text of json.dump(doc, out, indent=1), where a value of
    `doc` that is an iterator is written item by item as a JSON array: a
    document whose records are made as they are read is never whole in
    memory."""
    out.write("{")
    for i, (key, value) in enumerate(doc.items()):
        out.write(("\n " if i == 0 else ",\n ") + _json_key(key) + ": ")
        if not isinstance(value, Iterator):
            out.write(_json_text(value, 1))
            continue
        empty = True
        for item in value:
            out.write(("[\n  " if empty else ",\n  ") + _json_text(item, 2))
            empty = False
        out.write("[]" if empty else "\n ]")
    out.write("\n}" if doc else "}")


def _json_text(value, level: int) -> str:
    """json.dumps(value, indent=1) as written `level` deep.  By hand, not
    with json's own indenting encoder: that one makes reference cycles at
    every call, which the sweep (its collector off) would keep."""
    if type(value) in _SCALARS:
        return _scalar_text(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        pad = "\n" + " " * (level + 1)
        return "{" + ",".join([pad + _json_key(k) + ": " + _json_text(v, level + 1)
                               for k, v in value.items()]) + "\n" + " " * level + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        pad = "\n" + " " * (level + 1)
        return "[" + ",".join([pad + _json_text(v, level + 1) for v in value]) \
            + "\n" + " " * level + "]"
    return json.dumps(value)


_SCALARS = frozenset((str, int, float, bool, type(None)))
# Each distinct value and key encoded once (typed: True and 1 are different values).
_scalar_text = functools.lru_cache(maxsize=1 << 12, typed=True)(json.dumps)


@functools.lru_cache(maxsize=1 << 12)
def _json_key(key) -> str:
    if not isinstance(key, str):
        raise TypeError(f"a JSON key must be a string here, not {type(key).__name__}")
    return json.dumps(key)


def write_folder(path, render, marker):
    """Replace the folder `path` by what render(folder) writes into a fresh one.

    The new folder is filled beside `path`, then replaces it whole
    (store.durable.replace_folder: a reader never sees a half-written page).
    `marker` is a file name render must write: a folder without it is not
    one of ours, and is never replaced."""
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    if os.path.lexists(path):
        if not os.path.isdir(path) or os.path.islink(path):
            raise OutputError(path, "cannot write the site: not a folder")
        with os.scandir(path) as entries:
            if any(True for _ in entries) and not os.path.isfile(os.path.join(path, marker)):
                raise OutputError(path, f"not written by dtb-audit site (no {marker}): "
                                  f"refusing to replace it")
    if not os.path.isdir(parent):
        raise OutputError(path, f"cannot write the site: no folder {parent}")
    try:
        fresh = tempfile.mkdtemp(prefix=f".{name}.", suffix=".new", dir=parent)
    except OSError as why:
        raise OutputError(path, f"cannot write the site: {why.strerror}") from None
    try:
        render(fresh)
        if not os.path.isfile(os.path.join(fresh, marker)):
            raise AssertionError(f"render wrote no {marker}")
        replace_folder(fresh, path)
    except OSError as why:
        shutil.rmtree(fresh, ignore_errors=True)
        raise OutputError(path, f"cannot write the site: {why.strerror or why}") \
            from None
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise


def _quiet_stdout():
    # Python would complain again at exit while flushing the dead pipe.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


class Stderr:
    """Diagnostic lines on stderr, one write() each; silent once the reader is gone."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.gone = False

    def line(self, text):
        if self.gone:
            return
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            # ValueError: stderr was closed under us.
            self.gone = True
        except OSError:
            self.gone = True

