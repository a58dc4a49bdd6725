"""Compiling: cpp then dtc for each board and overlay, fdtoverlay for each
composite, as kbuild's cmd_dtc and cmd_fdtoverlay do, on all cores; each
output written beside its place, checked to be a whole DTB, renamed into
place and recorded for the manifest."""

from __future__ import annotations

import errno
import os
import re
import signal
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from corpus.console import diagnostic, progress_wanted
from corpus.dtc import Tools
from corpus.errors import UserError
from corpus.kbuild import Target
from corpus.manifest import MANIFEST, digest_of, mtime_size, output_of, output_record
from store.durable import place, temporary_path

_SAVE_EVERY_S = 2.0        # the manifest of what finished, while building
_DISK_FULL = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))
_FDT_MAGIC = 0xD00DFEED


def run(tree, tools, cpp, include, root, scratch, started, jobs, compile_now, overlay_now,
         done, save) -> tuple[int, int]:
    """Compile, then overlay; record each output in `done`; save() the manifest as it goes.

    Returns (built, failed). On an interruption the manifest of what
    finished is saved and the interruption goes on up.
    """
    from tqdm import tqdm    # only when there is something to build

    failed = built = 0
    last_save = time.monotonic()
    bar = tqdm(total=len(compile_now) + len(overlay_now), desc="dtbs", unit="dtb",
               file=sys.stderr, disable=not progress_wanted(), leave=False)
    pool = ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1)
    futures: dict = {}
    finished = False

    def finish(target, result):
        nonlocal built, failed, last_save
        done[target.dtb] = result
        built, failed = _count(result, target, built, failed, bar)
        bar.update()
        if time.monotonic() - last_save > _SAVE_EVERY_S:
            save(False)
            last_save = time.monotonic()

    try:
        if compile_now or overlay_now:
            # First of all the folder says it is incomplete: a SIGKILL from
            # here on leaves a corpus that is never taken for a whole one.
            save(False)
        futures = {pool.submit(compile_one, tree, tools, cpp, include, t, root, scratch, started): t
                   for t in compile_now}
        for future in as_completed(futures):
            finish(futures.pop(future), future.result())
        # Composites after the DTBs they are made of, which may be
        # composites themselves (v6.12's k3-am654-idk is made on k3-am654-evm).
        waiting = list(overlay_now)
        while waiting:
            pending = {t.dtb for t in waiting}
            ready = [t for t in waiting if not pending.intersection(t.parts)]
            ready = ready or waiting  # a cycle: let _overlay report the missing part
            waiting = [t for t in waiting if t not in ready]
            futures = {pool.submit(overlay, tools, t, root, done): t for t in ready}
            for future in as_completed(futures):
                finish(futures.pop(future), future.result())
        finished = True
    finally:
        # On Ctrl-C or SIGTERM, queued files are dropped rather than compiled first ...
        pool.shutdown(wait=True, cancel_futures=True)
        if not finished:
            # ... and what finished meanwhile is recorded, what did not is rebuilt.
            for future, target in futures.items():
                if future.done() and not future.cancelled() and future.exception() is None:
                    done[target.dtb] = future.result()
        bar.close()
        try:
            save(finished)
        except OSError as why:
            if finished:
                raise
            # Already on the way out: the error on its way (a full disk) says
            # it all; after an interruption, say that the manifest is behind.
            if isinstance(why.__context__, KeyboardInterrupt):
                diagnostic(f"{root / MANIFEST}: warning: not written ({why.strerror}); the next "
                           f"build goes on from the last one written")
    return built, failed


def _count(record: dict, target: Target, built: int, failed: int, bar):
    if record.get("error") is None:
        return built + 1, failed
    where = target.source or target.dtb
    diagnostic(f"{where}: error: {record['error']}", bar)
    return built, failed + 1


def _writeoutput_of(final: Path, run, root: Path) -> str | None:
    """Run a tool writing to a temporary file beside `final`, check what it
    wrote is a whole DTB, then rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(final)
    try:
        error = run(temporary) or _blob_problem(temporary, root)
        if error is None:
            place(temporary, final, sync=False)
        return error
    finally:
        if temporary.exists():
            temporary.unlink()


def _blob_problem(path: Path, root: Path) -> str | None:
    """Why the file a tool wrote is not a whole FDT blob (None when it is).

    dtc and fdtoverlay do not check that their output reached the disk (a
    write failing at fclose() still exits 0): the FDT header's magic and
    totalsize must match the file. A short file on a full file system stops
    the build; any other damage is that file's error.
    """
    try:
        with open(path, "rb") as f:
            header = f.read(8)
            size = os.fstat(f.fileno()).st_size
    except OSError as why:
        return f"cannot read what the compiler wrote: {why.strerror}"
    magic, total = struct.unpack(">II", header) if len(header) == 8 else (None, None)
    if magic == _FDT_MAGIC and total == size:
        return None
    free = os.statvfs(root)
    if free.f_bavail * free.f_frsize < (total if magic == _FDT_MAGIC else 1 << 16):
        raise UserError(root, _DISK_FULL[0])
    return f"the compiler wrote a damaged DTB ({size} bytes, {total} in its header)"


def _tool_error(proc: subprocess.CompletedProcess, root: Path) -> str:
    """The compiler's first error line; a full disk stops the whole build instead,
    and a compiler stopped by Ctrl-C or SIGTERM (the terminal's process group)
    interrupts it: neither is a fault of the file being compiled."""
    if proc.returncode in (-signal.SIGINT, -signal.SIGTERM):
        raise KeyboardInterrupt
    full = next((reason for reason in _DISK_FULL if reason in proc.stderr), None)
    if full:
        raise UserError(root, full)
    return first_error(proc.stderr, proc.returncode)


def compile_one(tree: Path, tools: Tools, cpp: list[str], include: str, target: Target,
             root: Path, scratch: Path, started: int) -> dict:
    """cpp then dtc, as kbuild's cmd_dtc does; returns the output's record."""
    base = scratch / target.dtb.replace("/", "__")
    pre, pre_deps, dtc_deps = (Path(f"{base}.tmp"), Path(f"{base}.pre.d"), Path(f"{base}.dtc.d"))

    def run(temporary: Path) -> str | None:
        proc = subprocess.run([tools.cpp, *cpp, "-MD", "-MF", str(pre_deps), "-o", str(pre),
                               target.source], cwd=tree, capture_output=True, text=True,
                              errors="backslashreplace")
        if proc.returncode:
            return _tool_error(proc, root)
        proc = subprocess.run([tools.dtc, "-o", str(temporary), "-b", "0",
                               "-i", os.path.dirname(target.source), "-i", include,
                               *target.dtc_flags, "-d", str(dtc_deps), str(pre)],
                              cwd=tree, capture_output=True, text=True, errors="backslashreplace")
        if proc.returncode:
            return _tool_error(proc, root)
        return None

    try:
        error = _writeoutput_of(root / target.dtb, run, root)
        if error is not None:
            return output_record(target, error)
        files = _depfile(pre_deps) + _depfile(dtc_deps)
        deps = {p: mtime_size(tree / p) for p in dict.fromkeys(files) if not p.startswith("/")}
        racy = any(stamp is None or stamp[0] >= started for stamp in deps.values())
        return output_record(target, None, deps=deps, output=output_of(root / target.dtb),
                             racy=racy)
    finally:
        for path in (pre, pre_deps, dtc_deps):
            if path.exists():
                path.unlink()


def overlay(tools: Tools, target: Target, root: Path, done: dict) -> dict:
    """fdtoverlay base + overlays, as kbuild's cmd_fdtoverlay does."""
    for part in target.parts:
        record = done.get(part)
        if record is None:
            return output_record(target, f"{part}: no such DTB or overlay in the tree")
        if record.get("error") is not None:
            return output_record(target, f"{part} did not build")

    def run(temporary: Path) -> str | None:
        proc = subprocess.run([tools.fdtoverlay, "-o", str(temporary), "-i",
                               *[str(root / p) for p in target.parts]],
                              capture_output=True, text=True, errors="backslashreplace")
        return _tool_error(proc, root) if proc.returncode else None

    error = _writeoutput_of(root / target.dtb, run, root)
    if error is not None:
        return output_record(target, error)
    inputs = {p: digest_of(done.get(p)) for p in target.parts}
    return output_record(target, None, inputs=inputs, output=output_of(root / target.dtb))


def first_error(stderr: str, status: int) -> str:
    """The compiler's first error line (cpp's `fatal error:`, dtc's `Error:`/`ERROR`)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if re.search(r"\berror\b", line, re.I):
            # dtc starts its lines with "Error: "; the diagnostic says error already.
            return re.sub(r"^(Error|ERROR):\s*", "", line)
    return lines[-1] if lines else f"exit status {status}"


def _depfile(path: Path) -> list[str]:
    """Prerequisites of a make-style dependency file, relative to the tree."""
    if not path.exists():
        return []
    text = path.read_text(errors="replace").replace("\\\n", " ")
    files = []
    for line in text.splitlines():
        if ":" in line:
            # Not normalised: `..` after a link into include-prefixes/ is not lexical.
            files += [w.removeprefix("./") for w in line.split(":", 1)[1].split()]
    # dtc lists its input, cpp's output in the scratch folder: not a dependency.
    return [f for f in files if not f.endswith(".tmp")]
