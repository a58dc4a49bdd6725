"""The corpus: every DTB `make ARCH=arm64 dtbs` builds, from whatever the user has.

build_corpus() takes a kernel tree (a folder, a tarball, Debian's
linux-source-X of this machine's suite or of another, "sid/linux-source-7.2";
Linux 6.12 from Debian when nothing is given) or a folder of built DTBs, and
returns a Corpus. open_corpus() opens a DTB, a folder of DTBs or a kernel
tree; open_corpora() several of them as one corpus. source_positions() says
in which .dtsi and line each node of a board is written.

The build is incremental as make is, and trusts nothing it has not verified.
The manifest in the output folder keeps, for each output, the files cpp and
dtc read (from their dependency files) with modification time and size, the
flags, and the output's size, SHA-256 and stamp (size, mtime, ctime, inode);
the manifest carries its own checksum. An output is built again when a
dependency's stamp changed, when the output is not the file that was built
(a warning says so), and every output when the tools or the tree changed. A
dependency's stamp is not trusted when the file's modification time is not
older than the build's start (the racy timestamp rule of git): it may have
changed while cpp read it. An output is taken as built without reading it
only when its stamp is the one recorded and its ctime (which nobody can set
back) is more than 2 s older than the manifest; any other output is read
and compared with its SHA-256. Outputs are written under a temporary name
and renamed; the manifest is rewritten every few seconds while building and
when the build ends or is interrupted (SIGINT, SIGTERM), and says whether
every chosen target was tried ("complete"). A build with nothing to do
leaves a complete manifest as it is (it rewrites it only to keep the stamps
of outputs it has just read whole). open_corpus() refuses an incomplete
corpus unless asked for a partial one. Builds of one folder take turns (a
lock), and the temporaries of a killed build are removed by the next one. A
file that fails to compile is reported and retried next time.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path


from corpus import kbuild
from corpus.console import diagnostic, progress_wanted
from corpus.dtc import Tools, tree_tools
from corpus.errors import CorpusError
from corpus.kbuild import DTS_DIR, Target, cpp_flags, dtc_include, read_targets
from corpus.sources import (DEFAULT_DEBIAN, Source, cache_dir, checksum, file_stamp,
                            from_debian, from_kernel_dir, from_tarball, racy, seal_holds, sealed,
                            short_hash, stamp)
from corpus.temporary import (is_temporary, remove_dead, taking_turns, temporary_folder,
                              temporary_path, write_atomically)
from kernels.cachefile import NotKept, open_kept, read_kept

MANIFEST = "dtb-audit-corpus.json"
_LOCK = ".dtb-audit-corpus.lock"
_LAYOUT = 1                # in the folder's key: outputs of one tree and tools
_FORMAT = 2                # of the manifest
_SAVE_EVERY_S = 2.0        # the manifest of what finished, while building
_DISK_FULL = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))
_FDT_MAGIC = 0xD00DFEED


@dataclass
class Entry:
    dtb: str                          # relative to Corpus.root: "freescale/fsl-ls1028a-rdb.dtb"
    kind: str                         # "board" | "overlay" | "composite"
    source: str | None = None         # the .dts/.dtso relative to kernel_dir
    parts: list[str] = field(default_factory=list)   # composite: base, then overlays
    error: str | None = None          # first error line when it did not build


@dataclass
class Corpus:
    root: Path                        # the DTBs, in the tree's vendor folders
    kernel_dir: Path | None           # the kernel tree built from; None for a DTB folder
    identity: str                     # "linux-6.12.117 (debian linux-source-6.12)"
    entries: list[Entry]
    built: int = 0                    # this run: compiled or overlaid ...
    failed: int = 0                   # ... did not build ...
    reused: int = 0                   # ... up to date from an earlier run
    kernel_version: str | None = None  # "6.12.117", "7.3.0-rc1": the tree's Makefile's; None: unknown
    partial: bool = False             # an incomplete build, opened as such on request
    members: list[Corpus] = field(default_factory=list)   # open_corpora: what was merged
    _records: dict = field(default_factory=dict, repr=False)   # the manifest's, by dtb
    _tools: Tools | None = field(default=None, repr=False)      # what built kernel_dir
    _origins: dict = field(default_factory=dict, repr=False)   # merged dtb -> (member, its dtb)

    @property
    def boards(self) -> list[Entry]:
        """Boards and composites that built; overlays alone are not boards."""
        return [e for e in self.entries if e.kind != "overlay" and e.error is None]

    def entry(self, dtb: str) -> Entry | None:
        return next((e for e in self.entries if e.dtb == dtb), None)

    def dependencies(self, dtb: str) -> tuple[str, ...]:
        """The files the build of `dtb` read (cpp and dtc), as the manifest
        recorded them, named where they are (include-prefixes links
        resolved) relative to the kernel tree; a composite's are those of
        its parts."""
        member, entry = self.origin(self.entry(dtb) or Entry(dtb, "board"))
        record = member._records.get(entry.dtb) or {}
        deps = set()
        tree = member.kernel_dir.resolve() if member.kernel_dir else None
        for path in record.get("deps") or ():
            if tree is not None:
                real = (tree / path).resolve()
                path = real.relative_to(tree).as_posix() if real.is_relative_to(tree) else path
            deps.add(path)
        for part in record.get("parts") or ():
            deps.update(member.dependencies(part))
        return tuple(sorted(deps))

    def origin(self, entry: Entry) -> tuple[Corpus, Entry]:
        """The corpus an entry comes from and its entry there (itself unless merged)."""
        if entry.dtb not in self._origins:
            return self, entry
        member, dtb = self._origins[entry.dtb]
        return member, member.entry(dtb)


# -- building ----------------------------------------------------------------

def build_corpus(kernel=None, tarball=None, debian=None, dtbs=None, out=None, jobs=None,
                 select=None, partial=False) -> Corpus:
    """Build (or reuse) the corpus of one source; Debian's linux-source-6.12 by default.

    kernel: a kernel source tree; tarball: a kernel .tar.xz/.tar.gz; debian:
    `linux-source-X` of this machine's Debian suite, or `SUITE/linux-source-X`
    of another one (sid/linux-source-7.2); dtbs: a folder of built DTBs, used
    as it is (partial: accept an incomplete build's folder). out: build into
    this folder instead of the cache. jobs: parallel compilers (all cores by
    default). select: fnmatch globs on DTB paths ("freescale/fsl-ls10*") to
    build only those, plus what selected composites are made of. Raises
    CorpusError for an unusable source, a missing tool, a bad option or a
    file system that refuses (full disk); a file that does not compile is an
    Entry with an error.
    """
    given = [name for name, value in (("kernel", kernel), ("tarball", tarball),
                                      ("debian", debian), ("dtbs", dtbs)) if value]
    if len(given) > 1:
        raise CorpusError(f"give one source, not {' and '.join(given)}")
    _check_jobs(jobs)  # before any download
    try:
        if dtbs:
            return _dtb_folder(Path(dtbs), partial)
        if kernel:
            source = from_kernel_dir(Path(kernel))
        elif tarball:
            source = from_tarball(Path(tarball))
        else:
            source = from_debian(debian or DEFAULT_DEBIAN)
        return build_tree(source, out=out, jobs=jobs, select=select)
    except OSError as why:
        raise _os_error(why) from None


def _check_jobs(jobs) -> None:
    if jobs is not None and jobs < 1:
        raise CorpusError("-j: must be at least 1")


def _os_error(why: OSError, where=None) -> CorpusError:
    """One line for a file system that refused: the file (the folder, for one of
    our temporaries), what is wrong."""
    name = why.filename if why.filename is not None else where
    if name is not None and is_temporary(Path(os.fsdecode(name))):
        name = Path(os.fsdecode(name)).parent
    return CorpusError(f"{name}: error: {why.strerror or why}")


def build_tree(source: Source, out=None, jobs=None, select=None) -> Corpus:
    """Build the DTBs of one kernel tree (see build_corpus)."""
    _check_jobs(jobs)
    tree = source.tree
    targets, cpp, include = _tree_rules(tree)
    tools = tree_tools(tree, cache_dir(), {f for t in targets for f in t.dtc_flags})
    # Outputs are only comparable between runs with the same tree and tools.
    key = short_hash(_LAYOUT, tree, tools.key, *cpp, include)
    root = Path(out) if out else cache_dir() / "dtbs" / f"{_slug(source.identity)}-{key}"
    if root.exists() and not root.is_dir():
        raise CorpusError(f"{root}: error: not a folder")
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    by_dtb = {t.dtb: t for t in targets}
    chosen = _select(targets, by_dtb, select)
    if not chosen:
        if select is None:
            raise CorpusError(f"{tree}: error: no DTB to build (arch/arm64/boot/dts has none)")
        raise CorpusError(f"{tree}: error: no DTB matches {' or '.join(select)}")

    with taking_turns(root / _LOCK, f"waiting for another build of {root}"), \
            _terminate_as_interrupt():
        remove_dead(root, recursive=True)
        manifest, problem = _read_manifest(root)
        if problem:
            diagnostic(f"{root / MANIFEST}: warning: {problem}; building everything again")
        records = manifest.get("records", {}) if manifest.get("key") == key else {}
        removed = _remove_stale(root, records, by_dtb) if select is None else False
        header = {"format": _FORMAT, "key": key, "identity": source.identity,
                  "kernel_version": source.version, "kernel_dir": str(tree),
                  "dtc": tools.dtc_version}
        compile_now, overlay_now, reused, learnt = _plan(tree, root, chosen, records,
                                                         manifest.get("written_ns"))
        done = dict(records)
        if compile_now or overlay_now or removed or learnt \
                or not _says_all_is_built(manifest, header, chosen, done):
            # The racy-timestamp line, by the file system's own clock (the
            # kernel's, for local file systems): a file changed at or after it
            # may have changed while cpp was reading it.
            scratch = temporary_folder(root, "build")
            header["started_ns"] = scratch.stat().st_mtime_ns
            try:
                for target in compile_now + overlay_now:
                    done.pop(target.dtb, None)  # rebuilt: until then, not an output to trust
                counts = _run(tree, tools, cpp, include, root, scratch, header["started_ns"], jobs,
                              compile_now, overlay_now, done,
                              lambda finished: _write_manifest(root, header, done, chosen, finished))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        else:
            counts = (0, 0)  # nothing built, nothing learnt: the manifest says it all already
    built, failed = counts
    entries = sorted((_entry(t, done.get(t.dtb)) for t in chosen), key=lambda e: e.dtb)
    return Corpus(root, tree, source.identity, entries, built=built, failed=failed,
                  reused=reused, kernel_version=source.version, _records=done, _tools=tools)


def _run(tree, tools, cpp, include, root, scratch, started, jobs, compile_now, overlay_now,
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

    def record(target, result):
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
        futures = {pool.submit(_compile, tree, tools, cpp, include, t, root, scratch, started): t
                   for t in compile_now}
        for future in as_completed(futures):
            record(futures.pop(future), future.result())
        # Composites after the DTBs they are made of, which may be
        # composites themselves (v6.12's k3-am654-idk is made on k3-am654-evm).
        waiting = list(overlay_now)
        while waiting:
            pending = {t.dtb for t in waiting}
            ready = [t for t in waiting if not pending.intersection(t.parts)]
            ready = ready or waiting  # a cycle: let _overlay report the missing part
            waiting = [t for t in waiting if t not in ready]
            futures = {pool.submit(_overlay, tools, t, root, done): t for t in ready}
            for future in as_completed(futures):
                record(futures.pop(future), future.result())
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


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM takes Ctrl-C's way out, so the manifest of what finished is written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_RULES_FORMAT = 1


def _tree_rules(tree: Path) -> tuple[list[Target], list[str], str]:
    """(targets, cpp flags, dtc include) as the tree's Makefiles say them.

    Remembered under the cache with the stamps of every file and folder they
    come from (and of the reader's own code): while none of these changed,
    and none changed too close to the reading for its stamp to tell, the
    Makefiles are not read again. The warnings of the reading are said again.
    """
    kept = cache_dir() / "targets" / f"{short_hash(tree)}.json"
    rules = _remembered_rules(kept, tree)
    if rules is not None:
        return rules
    read_ns = time.time_ns()
    read, warnings = [kbuild.__file__], []

    def warn(line: str) -> None:
        warnings.append(line)
        diagnostic(line)

    targets = read_targets(tree, read, warn)
    cpp, include = cpp_flags(tree), dtc_include(tree)
    data = {"format": _RULES_FORMAT, "tree": str(tree), "read_ns": read_ns,
            "inputs": {path: stamp(path) for path in read}, "warnings": warnings,
            "targets": [vars(t) for t in targets], "cpp": cpp, "include": include}
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        remove_dead(kept.parent)
        write_atomically(kept, sealed(data))
    except OSError:
        pass  # not remembered: read again next time
    return targets, cpp, include


def _remembered_rules(kept: Path, tree: Path):
    """What _tree_rules kept for this tree, None unless still true."""
    try:
        raw = read_kept(kept)
        data = json.loads(raw)
        if not (isinstance(data, dict) and seal_holds(raw, data)
                and data["format"] == _RULES_FORMAT and data["tree"] == str(tree)):
            return None
        for path, then in data["inputs"].items():
            now = stamp(path)
            if now != then or racy(now, data["read_ns"]):
                return None
        targets = [Target(**t) for t in data["targets"]]
    except NotKept as why:
        diagnostic(f"{kept}: warning: the Makefiles' rules kept there are unusable ({why}); "
                   f"reading the Makefiles again")
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    for line in data["warnings"]:
        diagnostic(line)
    return targets, data["cpp"], data["include"]


def _slug(identity: str) -> str:
    return re.sub(r"[^\w.+-]", "_", identity.split(" ", 1)[0])


def _select(targets: list[Target], by_dtb: dict[str, Target], select) -> list[Target]:
    if select is None:
        return targets
    names = {t.dtb for t in targets if any(fnmatch.fnmatch(t.dtb, g) for g in select)}
    todo = list(names)
    while todo:  # parts of parts: a composite may be made on a composite
        for part in by_dtb[todo.pop()].parts:
            if part in by_dtb and part not in names:
                names.add(part)
                todo.append(part)
    return [t for t in targets if t.dtb in names]


def _plan(tree: Path, root: Path, chosen: list[Target], records: dict, written_ns):
    """(targets to compile, composites to overlay, number reused, outputs read whole).

    The last are the dtbs of reused outputs that had to be read (no stamp,
    or a racy one) and whose stamp is now old enough to be trusted; their
    records have that stamp, for the manifest to keep.
    """
    stamps: dict[str, list | None] = {}
    tree_dir, root_dir = str(tree), str(root)   # os.path, not pathlib: thousands of files
    learnt = []

    def unchanged(deps: dict) -> bool:
        for path, then in deps.items():
            if path not in stamps:
                stamps[path] = _mtime_size(os.path.join(tree_dir, path))
            if stamps[path] != then:
                return False
        return True

    def fresh(target: Target, record: dict | None) -> bool:
        return (record is not None and record.get("error") is None
                and not record.get("racy")
                and record.get("flags") == target.dtc_flags
                and record.get("parts") == target.parts
                and record.get("source") == target.source)

    def verified(target: Target, record: dict) -> bool:
        path = os.path.join(root_dir, target.dtb)
        problem, read_whole = _output_problem(path, record, written_ns)
        if problem:
            diagnostic(f"{path}: warning: {problem}; building it again")
        elif read_whole is not None and not racy(read_whole, time.time_ns()):
            record["stamp"] = read_whole
            learnt.append(target.dtb)
        return problem is None

    compile_now, overlay_now, reused = [], [], 0
    for target in chosen:
        record = records.get(target.dtb)
        if target.kind == "composite":
            continue
        if fresh(target, record) and unchanged(record["deps"]) and verified(target, record):
            reused += 1
        else:
            compile_now.append(target)
    recompiled = {t.dtb for t in compile_now}
    by_dtb = {t.dtb: t for t in chosen if t.kind == "composite"}
    # Parts before the composites made on them, so `recompiled` is complete when read.
    composites = sorted(by_dtb.values(), key=lambda t: _composite_depth(t, by_dtb))
    for target in composites:
        record = records.get(target.dtb)
        # Parts are outputs: compared by the digests they had when overlaid.
        if fresh(target, record) and not recompiled.intersection(target.parts) \
                and record.get("inputs") == {p: _digest_of(records.get(p)) for p in target.parts} \
                and verified(target, record):
            reused += 1
        else:
            overlay_now.append(target)
            recompiled.add(target.dtb)
    return compile_now, overlay_now, reused, learnt


def _says_all_is_built(manifest: dict, header: dict, chosen: list[Target], done: dict) -> bool:
    """Whether the manifest read says what this build would write (but its
    times): complete, for these targets, this tree and these tools."""
    return (manifest.get("complete") is True
            and all(manifest.get(name) == value for name, value in header.items())
            and manifest.get("targets") == len(chosen)
            and manifest.get("tried") == sum(t.dtb in done for t in chosen))


def _composite_depth(target: Target, composites: dict, seen=()) -> int:
    parts = [composites[p] for p in target.parts if p in composites and p not in seen]
    return 1 + max((_composite_depth(p, composites, seen + (target.dtb,)) for p in parts), default=0)


def _count(record: dict, target: Target, built: int, failed: int, bar):
    if record.get("error") is None:
        return built + 1, failed
    where = target.source or target.dtb
    diagnostic(f"{where}: error: {record['error']}", bar)
    return built, failed + 1


def _mtime_size(path) -> list | None:
    """A dependency's stamp as the manifest keeps it, [mtime, size]; None when it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]


def _output(path, size: int | None = None) -> tuple[list, list]:
    """([size, sha256], stamp) of a built file: the stamp of the very file
    read, a regular file (of `size` bytes when given)."""
    with open_kept(path, size) as f:
        st = os.fstat(f.fileno())
        data = f.read(st.st_size)
    return [len(data), hashlib.sha256(data).hexdigest()], file_stamp(st)


def _digest_of(record: dict | None) -> str | None:
    output = (record or {}).get("output")
    return output[1] if output else None


def _output_problem(path, record: dict, written_ns) -> tuple[str | None, list | None]:
    """(why the file at path is not the output the record says, None when it is;
    the file's stamp when its bytes were read to tell).

    An output whose stamp is the one recorded, not racy against the
    manifest's time (written_ns), is the file built; any other is read whole.
    """
    recorded = record.get("output")
    if not recorded:
        return "no size and checksum recorded", None
    try:
        st = os.stat(path)
        if st.st_size != recorded[0]:
            return f"changed since it was built ({st.st_size} bytes, {recorded[0]} when built)", None
        now = file_stamp(st)
        if now == record.get("stamp") and not racy(now, written_ns):
            return None, None
        output, now = _output(path, recorded[0])
        if output != recorded:
            return "changed since it was built (checksum)", None
    except FileNotFoundError:
        return "missing since it was built", None
    except NotKept as why:
        return f"not the output built: {why}", None
    except OSError as why:
        return f"unreadable: {why.strerror}", None
    return None, now


def _record(target: Target, error: str | None, deps: dict | None = None,
            inputs: dict | None = None, output: tuple | None = None, racy: bool = False) -> dict:
    """An output's record; `output`: what _output() says of it."""
    record = {"kind": target.kind, "source": target.source, "parts": target.parts,
              "flags": target.dtc_flags, "error": error, "deps": deps or {},
              "inputs": inputs or {}, "output": output[0] if output else None}
    if output:
        record["stamp"] = output[1]
    if racy:
        record["racy"] = True
    return record


def _write_atomically(final: Path, run, root: Path) -> str | None:
    """Run a tool writing to a temporary file beside `final`, check what it
    wrote is a whole DTB, then rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(final)
    try:
        error = run(temporary) or _blob_problem(temporary, root)
        if error is None:
            os.replace(temporary, final)
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
        raise CorpusError(f"{root}: error: {_DISK_FULL[0]}")
    return f"the compiler wrote a damaged DTB ({size} bytes, {total} in its header)"


def _tool_error(proc: subprocess.CompletedProcess, root: Path) -> str:
    """The compiler's first error line; a full disk stops the whole build instead,
    and a compiler stopped by Ctrl-C or SIGTERM (the terminal's process group)
    interrupts it: neither is a fault of the file being compiled."""
    if proc.returncode in (-signal.SIGINT, -signal.SIGTERM):
        raise KeyboardInterrupt
    full = next((reason for reason in _DISK_FULL if reason in proc.stderr), None)
    if full:
        raise CorpusError(f"{root}: error: {full}")
    return _first_error(proc.stderr, proc.returncode)


def _compile(tree: Path, tools: Tools, cpp: list[str], include: str, target: Target,
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
        error = _write_atomically(root / target.dtb, run, root)
        if error is not None:
            return _record(target, error)
        files = _depfile(pre_deps) + _depfile(dtc_deps)
        deps = {p: _mtime_size(tree / p) for p in dict.fromkeys(files) if not p.startswith("/")}
        racy = any(stamp is None or stamp[0] >= started for stamp in deps.values())
        return _record(target, None, deps=deps, output=_output(root / target.dtb), racy=racy)
    finally:
        for path in (pre, pre_deps, dtc_deps):
            if path.exists():
                path.unlink()


def _overlay(tools: Tools, target: Target, root: Path, done: dict) -> dict:
    """fdtoverlay base + overlays, as kbuild's cmd_fdtoverlay does."""
    for part in target.parts:
        record = done.get(part)
        if record is None:
            return _record(target, f"{part}: no such DTB or overlay in the tree")
        if record.get("error") is not None:
            return _record(target, f"{part} did not build")

    def run(temporary: Path) -> str | None:
        proc = subprocess.run([tools.fdtoverlay, "-o", str(temporary), "-i",
                               *[str(root / p) for p in target.parts]],
                              capture_output=True, text=True, errors="backslashreplace")
        return _tool_error(proc, root) if proc.returncode else None

    error = _write_atomically(root / target.dtb, run, root)
    if error is not None:
        return _record(target, error)
    inputs = {p: _digest_of(done.get(p)) for p in target.parts}
    return _record(target, None, inputs=inputs, output=_output(root / target.dtb))


def _first_error(stderr: str, status: int) -> str:
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


def _entry(target: Target, record: dict | None) -> Entry:
    error = record.get("error") if record else "not built"
    return Entry(target.dtb, target.kind, target.source, list(target.parts), error)


def _remove_stale(root: Path, records: dict, by_dtb: dict) -> bool:
    """Outputs of files no longer in the tree go, so the folder mirrors the tree.
    Returns whether any went."""
    stale = [dtb for dtb in records if dtb not in by_dtb]
    for dtb in stale:
        (root / dtb).unlink(missing_ok=True)
        del records[dtb]
    return bool(stale)


# -- the manifest ----------------------------------------------------------------

def _read_manifest(root: Path) -> tuple[dict, str | None]:
    """(the manifest, None); ({}, None) when there is none; ({}, what is wrong) when
    it cannot be trusted (unreadable, damaged, or of another version of dtb-audit)."""
    path = root / MANIFEST
    try:
        raw = read_kept(path)
        data = json.loads(raw)
    except FileNotFoundError:
        return {}, None
    except NotKept as why:
        return {}, f"unusable manifest ({why})"
    except (OSError, ValueError) as why:
        return {}, f"unreadable manifest ({why})"
    if not isinstance(data, dict):
        return {}, "unreadable manifest (not a JSON object)"
    if data.get("format") != _FORMAT:
        return {}, f"manifest of another dtb-audit version (format {data.get('format')!r})"
    if not seal_holds(raw, data):
        return {}, "damaged manifest (checksum)"
    return data, None


def _write_manifest(root: Path, header: dict, done: dict, chosen: list[Target],
                    finished: bool) -> None:
    """The manifest: what is built, and whether every chosen target was tried.

    written_ns: when, for the racy rule of the outputs' stamps.
    """
    tried = sum(t.dtb in done for t in chosen)
    data = dict(header, records=done, targets=len(chosen), tried=tried,
                complete=finished and tried == len(chosen), written_ns=time.time_ns())
    write_atomically(root / MANIFEST, sealed(data))


# -- opening what is there ----------------------------------------------------

def _readable_name(path: Path) -> str:
    """A path for a message, whatever bytes its name has."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _dtb_folder(folder: Path, partial: bool = False) -> Corpus:
    """A folder of built DTBs, used as it is (its manifest, when it has one, adds sources)."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise CorpusError(f"{folder}: error: no such folder")
    manifest, problem = _read_manifest(folder)
    again = "run `dtb-audit corpus build` again, or sweep it with --partial"
    incomplete = manifest and not manifest.get("complete")
    if problem and not partial:
        raise CorpusError(f"{folder}: error: {problem}; {again}")
    if incomplete and not partial:
        raise CorpusError(f"{folder}: error: incomplete corpus (the build was interrupted: "
                          f"{manifest.get('tried')} of {manifest.get('targets')} outputs); {again}")
    records = manifest.get("records", {})
    kernel_dir = Path(manifest["kernel_dir"]) if manifest.get("kernel_dir") else None
    if kernel_dir is not None and not kernel_dir.is_dir():
        kernel_dir = None
    entries = {}
    for path in sorted(folder.rglob("*.dtb*")):
        if path.suffix not in (".dtb", ".dtbo") or path.name.startswith("."):
            continue
        dtb = path.relative_to(folder).as_posix()
        try:
            dtb.encode("utf-8")
        except UnicodeEncodeError:
            diagnostic(f"{_readable_name(path)}: warning: file name is not UTF-8; skipped")
            continue
        entries[dtb] = Entry(dtb, "overlay" if path.suffix == ".dtbo" else "board")
    trusted = {}
    for dtb, record in records.items():
        # What the build said about each file, failures (no file) included;
        # a file that is not the output built keeps no sources.
        if record.get("error") is None and dtb in entries:
            problem, _ = _output_problem(os.path.join(folder, dtb), record,
                                         manifest.get("written_ns"))
            if problem:
                diagnostic(f"{folder / dtb}: warning: {problem}; its sources are not used")
                continue
        if dtb in entries or record.get("error") is not None:
            entries[dtb] = Entry(dtb, record["kind"], record["source"] if kernel_dir else None,
                                 list(record["parts"]), record["error"])
            trusted[dtb] = record
    entries = [entries[dtb] for dtb in sorted(entries)]
    if not entries:
        raise CorpusError(f"{folder}: error: no .dtb files in this folder")
    identity = manifest.get("identity") or f"DTBs in {folder}"
    return Corpus(folder, kernel_dir, identity, entries, reused=len(entries),
                  kernel_version=manifest.get("kernel_version"),
                  partial=bool(problem or incomplete), _records=trusted)


def _one_dtb(path: Path, partial: bool) -> Corpus:
    """One DTB; of the built corpus it belongs to, when a manifest above records it."""
    # Its folder as the system finds it (`..` after a link is not lexical);
    # the name kept, so a link to a DTB is opened as given.
    path = path.absolute().parent.resolve() / path.name
    for folder in path.parents:
        if (folder / MANIFEST).is_file():
            dtb = path.relative_to(folder).as_posix()
            manifest, _ = _read_manifest(folder)
            if dtb in manifest.get("records", {}):
                corpus = _dtb_folder(folder, partial)
                entry = corpus.entry(dtb)
                if entry is not None:
                    return Corpus(corpus.root, corpus.kernel_dir, corpus.identity, [entry],
                                  reused=1, kernel_version=corpus.kernel_version,
                                  partial=corpus.partial, _records=corpus._records)
            break
    entry = Entry(path.name, "overlay" if path.suffix == ".dtbo" else "board")
    return Corpus(path.parent.resolve(), None, str(path), [entry], reused=1)


def open_corpus(path, partial: bool = False) -> Corpus:
    """A corpus from a .dtb file, a folder of DTBs, a kernel tree (built) or a kernel tarball.

    partial: accept the folder of a build that did not finish (Corpus.partial
    says so); without it such a folder is a CorpusError.
    """
    path = Path(path)
    try:
        if path.is_file() and path.suffix in (".dtb", ".dtbo"):
            return _one_dtb(path, partial)
        if path.is_file() and re.search(r"\.(tar(\.\w+)?|tgz)$", path.name):
            return build_corpus(tarball=path)
        if path.is_dir() and (path / DTS_DIR).is_dir() and not (path / MANIFEST).is_file():
            return build_corpus(kernel=path)
        if path.is_dir():
            return _dtb_folder(path, partial)
    except OSError as why:
        raise _os_error(why, path) from None
    if not path.exists():
        raise CorpusError(f"{_readable_name(path)}: error: no such file or folder")
    raise CorpusError(f"{_readable_name(path)}: error: not a .dtb, a folder of DTBs, "
                      f"a kernel tree or a tarball")


def open_corpora(paths, partial: bool = False) -> Corpus:
    """Several PATHs (as open_corpus takes them) as one corpus.

    A DTB reached twice (the same folder given twice, a file and its folder)
    is listed once. DTB names stay unique: when the corpora have different
    roots, each name is prefixed with its root's path below the roots'
    common folder ("a/freescale/x.dtb", "b/freescale/x.dtb"). The members
    are kept (Corpus.members, Corpus.origin(entry)) for what only one of
    them knows: its kernel tree, its sources.
    """
    members = [open_corpus(p, partial) for p in paths]
    if not members:
        raise CorpusError("no PATH given")
    seen: set[str] = set()
    kept: list[tuple[Corpus, Entry]] = []
    for member in members:
        for entry in member.entries:
            real = os.path.realpath(member.root / entry.dtb)
            if real not in seen:
                seen.add(real)
                kept.append((member, entry))
    used = [m for m in members if any(m is k for k, _ in kept)]
    if len(used) == 1:
        return used[0]
    roots = {m.root for m in used}
    common = Path(os.path.commonpath([str(r) for r in roots]))

    def name(member: Corpus, dtb: str) -> str:
        if len(roots) == 1:
            return dtb
        return (member.root.relative_to(common) / dtb).as_posix()

    entries, origins, records = [], {}, {}
    for member, entry in kept:
        merged = name(member, entry.dtb)
        entries.append(Entry(merged, entry.kind, entry.source,
                             [name(member, p) for p in entry.parts], entry.error))
        origins[merged] = (member, entry.dtb)
        if entry.dtb in member._records:
            records[merged] = member._records[entry.dtb]
    versions = {m.kernel_version for m in used}
    trees = {m.kernel_dir for m in used}
    return Corpus(common if len(roots) > 1 else used[0].root,
                  trees.pop() if len(trees) == 1 else None,
                  " + ".join(dict.fromkeys(m.identity for m in used)),
                  sorted(entries, key=lambda e: e.dtb),
                  reused=len(entries),
                  kernel_version=versions.pop() if len(versions) == 1 else None,
                  partial=any(m.partial for m in used), members=used,
                  _records=records, _origins=origins)


# -- where nodes are written ---------------------------------------------------

_NODE = re.compile(r"^\s*(?:[\w-]+:\s*)*([^\s{};]+)\s*\{\s*(?:/\*\s*(.*?)\s*\*/)?\s*$")
_END = re.compile(r"^\s*\};")
_POSITION = re.compile(r"(.+?):(\d+):\d+(?:-\d+:\d+)?$")


def source_positions(corpus: Corpus, entry: Entry) -> dict[str, tuple[str, int]]:
    """Node path -> (file relative to kernel_dir, line) where the node is first written.

    "First written" is the `label: name@addr {` in the .dtsi, not a later
    `&label { ... }` in a board file: the tree's dtc annotates its DTS output
    (`-T -T`) with every place a node was written, in order, and line markers
    that cpp left carry the original file names. A composite answers for its
    base board. Cached on disk beside the DTBs, keyed by the DTB's stamp
    (size, mtime, ctime, inode) and covered by a checksum (a damaged entry is
    computed again, with a warning).
    """
    if corpus.members:
        member, entry = corpus.origin(entry)
        return source_positions(member, entry)
    if entry.kind == "composite":
        base = corpus.entry(entry.parts[0]) or Entry(entry.parts[0], "board",
                                                     corpus._records.get(entry.parts[0], {}).get("source"))
        return source_positions(corpus, base)
    if corpus.kernel_dir is None or entry.source is None:
        raise CorpusError(f"{entry.dtb}: error: no kernel source for this DTB")
    dtb_path = corpus.root / entry.dtb
    try:    # the whole stamp: a DTB put back with the same size and mtime is another file
        dtb_stamp = file_stamp(os.stat(dtb_path))
    except OSError:
        dtb_stamp = None
    cache = corpus.root / ".positions" / (entry.dtb + ".json")
    cached = _read_positions(cache)
    if cached is not None and cached["stamp"] == dtb_stamp:
        return {path: (where[0], where[1]) for path, where in cached["positions"].items()}
    positions = _annotate(corpus, entry)
    data = {"stamp": dtb_stamp, "positions": positions}
    data["checksum"] = checksum(data)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        remove_dead(corpus.root / ".positions", recursive=True)
        write_atomically(cache, json.dumps(data).encode())
    except OSError as why:
        diagnostic(f"{cache}: warning: cannot keep the source positions: {why.strerror or why}")
    return positions


def _read_positions(cache: Path) -> dict | None:
    """A verified source-positions entry; None when missing or damaged (with a warning)."""
    try:
        data = json.loads(read_kept(cache))
    except FileNotFoundError:
        return None
    except NotKept as why:
        problem = f"unusable ({why})"
    except (OSError, ValueError) as why:
        problem = f"unreadable ({why})"
    else:
        if isinstance(data, dict) and data.get("checksum") == checksum(data) \
                and isinstance(data.get("positions"), dict):
            return data
        problem = "damaged (checksum)"
    diagnostic(f"{cache}: warning: source positions cache {problem}; computing them again")
    return None


def _annotate(corpus: Corpus, entry: Entry) -> dict[str, tuple[str, int]]:
    tree = corpus.kernel_dir
    record = corpus._records.get(entry.dtb)
    if record and record.get("source") == entry.source:
        target = Target(entry.dtb, entry.kind, entry.source, [], record["flags"])
    else:  # a corpus without a manifest entry for it: ask the Makefiles
        target = next((t for t in read_targets(tree) if t.dtb == entry.dtb), None)
    if target is None or target.source is None:
        raise CorpusError(f"{entry.dtb}: error: not built from a .dts in {tree}")
    if corpus._tools is None:
        corpus._tools = tree_tools(tree, cache_dir(), set(target.dtc_flags))
    tools = corpus._tools
    try:
        scratch = temporary_folder(corpus.root / ".positions", "annotate")
    except OSError:  # a corpus folder we may not write to: the system's temporary folder
        scratch = Path(tempfile.mkdtemp(prefix="dtb-audit-annotate-"))
    try:
        pre = scratch / "pre.tmp"
        proc = subprocess.run([tools.cpp, *cpp_flags(tree), "-o", str(pre), target.source],
                              cwd=tree, capture_output=True, text=True, errors="backslashreplace")
        if proc.returncode == 0:
            proc = subprocess.run([tools.dtc, "-I", "dts", "-O", "dts", "-T", "-T",
                                   "-i", os.path.dirname(target.source), "-i", dtc_include(tree),
                                   *target.dtc_flags, str(pre)],
                                  cwd=tree, capture_output=True, text=True,
                                  errors="backslashreplace")
        if proc.returncode:
            raise CorpusError(f"{target.source}: error: {_first_error(proc.stderr, proc.returncode)}")
        annotated = proc.stdout
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    real_tree = tree.resolve()
    files: dict[str, str] = {}

    def in_tree(name: str) -> str:
        # Files reached through include-prefixes/ are named by where they are.
        if name not in files:
            real = (tree / name).resolve()
            files[name] = (real.relative_to(real_tree).as_posix()
                           if real.is_relative_to(real_tree) else name)
        return files[name]

    positions: dict[str, tuple[str, int]] = {}
    stack: list[str] = []
    for line in annotated.splitlines():
        match = _NODE.match(line)
        if match:
            name, note = match.groups()
            path = "/" if name == "/" else (stack[-1].rstrip("/") + "/" + name if stack else name)
            stack.append(path)
            first = _POSITION.match(note.split(", ")[0]) if note else None
            if first:
                positions[path] = (in_tree(first.group(1)), int(first.group(2)))
        elif _END.match(line) and stack:
            stack.pop()
    return positions
