"""The corpus: every DTB `make ARCH=arm64 dtbs` builds, from whatever the user has.

build_corpus() takes a kernel tree (a folder, a tarball, Debian's
linux-source-X; Linux 6.12 from Debian when nothing is given) or a folder of
built DTBs, and returns a Corpus. open_corpus() opens a DTB, a folder of
DTBs or a kernel tree. source_positions() says in which .dtsi and line each
node of a board is written.

The build is incremental as make is: the manifest in the output folder
keeps, for each output, the files cpp and dtc read (from their dependency
files) with modification time and size, and the flags; an output is built
again when one of those changed, and every output when the tools or the
tree changed. Outputs are written under a temporary name and renamed, and
the manifest last, so an interrupted build leaves nothing a later run would
trust. A file that fails to compile is reported and retried next time.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from corpus.console import diagnostic, progress_wanted
from corpus.dtc import Tools, tree_tools
from corpus.errors import CorpusError
from corpus.kbuild import DTS_DIR, Target, cpp_flags, dtc_include, read_targets
from corpus.sources import (DEFAULT_DEBIAN, Source, cache_dir, from_debian, from_kernel_dir,
                            from_tarball, short_hash)

MANIFEST = "dtb-audit-corpus.json"
_FORMAT = 1
_TMP = re.compile(r"^\..+\.tmp-(\d+)$")


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
    _records: dict = field(default_factory=dict, repr=False)   # the manifest's, by dtb
    _tools: Tools | None = field(default=None, repr=False)      # what built kernel_dir

    @property
    def boards(self) -> list[Entry]:
        """Boards and composites that built; overlays alone are not boards."""
        return [e for e in self.entries if e.kind != "overlay" and e.error is None]

    def entry(self, dtb: str) -> Entry | None:
        return next((e for e in self.entries if e.dtb == dtb), None)


# -- building ----------------------------------------------------------------

def build_corpus(kernel=None, tarball=None, debian=None, dtbs=None, out=None, jobs=None,
                 select=None) -> Corpus:
    """Build (or reuse) the corpus of one source; Debian's linux-source-6.12 by default.

    kernel: a kernel source tree; tarball: a kernel .tar.xz/.tar.gz; debian:
    a `linux-source-X` package; dtbs: a folder of built DTBs, used as it is.
    out: build into this folder instead of the cache. jobs: parallel
    compilers (all cores by default). select: fnmatch globs on DTB paths
    ("freescale/fsl-ls10*") to build only those, plus what selected
    composites are made of. Raises CorpusError for an unusable source or a
    missing tool; a file that does not compile is an Entry with an error.
    """
    given = [name for name, value in (("kernel", kernel), ("tarball", tarball),
                                      ("debian", debian), ("dtbs", dtbs)) if value]
    if len(given) > 1:
        raise CorpusError(f"give one source, not {' and '.join(given)}")
    if dtbs:
        return _dtb_folder(Path(dtbs))
    if kernel:
        source = from_kernel_dir(Path(kernel))
    elif tarball:
        source = from_tarball(Path(tarball))
    else:
        source = from_debian(debian or DEFAULT_DEBIAN)
    return build_tree(source, out=out, jobs=jobs, select=select)


def build_tree(source: Source, out=None, jobs=None, select=None) -> Corpus:
    """Build the DTBs of one kernel tree (see build_corpus)."""
    tree = source.tree
    targets = read_targets(tree)
    tools = tree_tools(tree, cache_dir(), {f for t in targets for f in t.dtc_flags})
    cpp = cpp_flags(tree)
    include = dtc_include(tree)
    # Outputs are only comparable between runs with the same tree and tools.
    key = short_hash(_FORMAT, tree, tools.key, *cpp, include)
    root = Path(out) if out else cache_dir() / "dtbs" / f"{_slug(source.identity)}-{key}"
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()

    manifest = _read_manifest(root)
    records = manifest.get("records", {}) if manifest.get("key") == key else {}
    by_dtb = {t.dtb: t for t in targets}
    chosen = _select(targets, by_dtb, select)
    if not chosen:
        raise CorpusError(f"{tree}: error: no DTB matches {' or '.join(select)}")
    if select is None:
        _remove_stale(root, records, by_dtb)
    _remove_temporaries(root)

    compile_now, overlay_now, reused = _plan(tree, root, chosen, records)
    done = dict(records)
    failed = built = 0
    bar = tqdm(total=len(compile_now) + len(overlay_now), desc="dtbs", unit="dtb",
               file=sys.stderr, disable=not progress_wanted(), leave=False)
    pool = ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1)
    scratch = tempfile.TemporaryDirectory(prefix="dtb-audit-")
    try:
        futures = {pool.submit(_compile, tree, tools, cpp, include, t, root, Path(scratch.name)): t
                   for t in compile_now}
        for future in as_completed(futures):
            target = futures[future]
            done[target.dtb] = record = future.result()
            built, failed = _count(record, target, built, failed, bar)
            bar.update()
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
                target = futures[future]
                done[target.dtb] = record = future.result()
                built, failed = _count(record, target, built, failed, bar)
                bar.update()
    finally:
        # On Ctrl-C, queued files are dropped rather than compiled first.
        pool.shutdown(wait=True, cancel_futures=True)
        scratch.cleanup()
        bar.close()
        # Also on Ctrl-C: what finished is recorded, what did not is rebuilt.
        _write_manifest(root, {"format": _FORMAT, "key": key, "identity": source.identity,
                               "kernel_dir": str(tree), "dtc": tools.dtc_version,
                               "records": done})
    entries = sorted((_entry(t, done.get(t.dtb)) for t in chosen), key=lambda e: e.dtb)
    return Corpus(root, tree, source.identity, entries, built=built, failed=failed,
                  reused=reused, _records=done, _tools=tools)


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


def _plan(tree: Path, root: Path, chosen: list[Target], records: dict):
    """(targets to compile, composites to overlay, number reused)."""
    stamps: dict[str, list | None] = {}

    def unchanged(deps: dict, base: Path) -> bool:
        for path, stamp in deps.items():
            if path not in stamps:
                stamps[path] = _stamp(base / path)
            if stamps[path] != stamp:
                return False
        return True

    def fresh(target: Target, record: dict | None) -> bool:
        return (record is not None and record.get("error") is None
                and record.get("flags") == target.dtc_flags
                and record.get("parts") == target.parts
                and record.get("source") == target.source
                and (root / target.dtb).is_file())

    compile_now, overlay_now, reused = [], [], 0
    for target in chosen:
        record = records.get(target.dtb)
        if target.kind == "composite":
            continue
        if fresh(target, record) and unchanged(record["deps"], tree):
            reused += 1
        else:
            compile_now.append(target)
    recompiled = {t.dtb for t in compile_now}
    by_dtb = {t.dtb: t for t in chosen if t.kind == "composite"}
    # Parts before the composites made on them, so `recompiled` is complete when read.
    composites = sorted(by_dtb.values(), key=lambda t: _composite_depth(t, by_dtb))
    for target in composites:
        record = records.get(target.dtb)
        # Parts are outputs: compared by their stamps in the output folder.
        if fresh(target, record) and not recompiled.intersection(target.parts) \
                and all(_stamp(root / p) == s for p, s in record["inputs"].items()):
            reused += 1
        else:
            overlay_now.append(target)
            recompiled.add(target.dtb)
    return compile_now, overlay_now, reused


def _composite_depth(target: Target, composites: dict, seen=()) -> int:
    parts = [composites[p] for p in target.parts if p in composites and p not in seen]
    return 1 + max((_composite_depth(p, composites, seen + (target.dtb,)) for p in parts), default=0)


def _count(record: dict, target: Target, built: int, failed: int, bar):
    if record.get("error") is None:
        return built + 1, failed
    where = target.source or target.dtb
    diagnostic(f"{where}: error: {record['error']}", bar)
    return built, failed + 1


def _stamp(path: Path) -> list | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]


def _record(target: Target, error: str | None, deps: dict | None = None,
            inputs: dict | None = None) -> dict:
    return {"kind": target.kind, "source": target.source, "parts": target.parts,
            "flags": target.dtc_flags, "error": error, "deps": deps or {},
            "inputs": inputs or {}}


def _write_atomically(final: Path, run) -> str | None:
    """Run a tool writing to a temporary file beside `final`, then rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        error = run(temporary)
        if error is None:
            os.replace(temporary, final)
        return error
    finally:
        if temporary.exists():
            temporary.unlink()


def _compile(tree: Path, tools: Tools, cpp: list[str], include: str, target: Target,
             root: Path, scratch: Path) -> dict:
    """cpp then dtc, as kbuild's cmd_dtc does; returns the output's record."""
    base = scratch / target.dtb.replace("/", "__")
    pre, pre_deps, dtc_deps = (Path(f"{base}.tmp"), Path(f"{base}.pre.d"), Path(f"{base}.dtc.d"))

    def run(temporary: Path) -> str | None:
        proc = subprocess.run([tools.cpp, *cpp, "-MD", "-MF", str(pre_deps), "-o", str(pre),
                               target.source], cwd=tree, capture_output=True, text=True)
        if proc.returncode:
            return _first_error(proc.stderr, proc.returncode)
        proc = subprocess.run([tools.dtc, "-o", str(temporary), "-b", "0",
                               "-i", os.path.dirname(target.source), "-i", include,
                               *target.dtc_flags, "-d", str(dtc_deps), str(pre)],
                              cwd=tree, capture_output=True, text=True)
        if proc.returncode:
            return _first_error(proc.stderr, proc.returncode)
        return None

    try:
        error = _write_atomically(root / target.dtb, run)
        if error is not None:
            return _record(target, error)
        files = _depfile(pre_deps) + _depfile(dtc_deps)
        deps = {p: _stamp(tree / p) for p in dict.fromkeys(files) if not p.startswith("/")}
        return _record(target, None, deps=deps)
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
                              capture_output=True, text=True)
        return _first_error(proc.stderr, proc.returncode) if proc.returncode else None

    error = _write_atomically(root / target.dtb, run)
    inputs = {p: _stamp(root / p) for p in target.parts}
    return _record(target, error, inputs=inputs if error is None else None)


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


def _remove_stale(root: Path, records: dict, by_dtb: dict) -> None:
    """Outputs of files no longer in the tree go, so the folder mirrors the tree."""
    for dtb in list(records):
        if dtb not in by_dtb:
            (root / dtb).unlink(missing_ok=True)
            del records[dtb]


def _remove_temporaries(root: Path) -> None:
    """Temporary outputs left by a build that was killed (never those of a live one)."""
    for path in root.rglob(".*.tmp-*"):
        match = _TMP.match(path.name)
        if match and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as why:
        diagnostic(f"{path}: warning: unreadable manifest, rebuilding: {why}")
        return {}
    return data if isinstance(data, dict) and data.get("format") == _FORMAT else {}


def _write_manifest(root: Path, data: dict) -> None:
    path = root / MANIFEST
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(data, indent=0, sort_keys=True))
    os.replace(temporary, path)


# -- opening what is there ----------------------------------------------------

def _dtb_folder(folder: Path) -> Corpus:
    """A folder of built DTBs, used as it is (its manifest, when it has one, adds sources)."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise CorpusError(f"{folder}: error: no such folder")
    manifest = _read_manifest(folder)
    records = manifest.get("records", {})
    kernel_dir = Path(manifest["kernel_dir"]) if manifest.get("kernel_dir") else None
    if kernel_dir is not None and not kernel_dir.is_dir():
        kernel_dir = None
    entries = {}
    for path in sorted(folder.rglob("*.dtb*")):
        if path.suffix not in (".dtb", ".dtbo") or path.name.startswith("."):
            continue
        dtb = path.relative_to(folder).as_posix()
        entries[dtb] = Entry(dtb, "overlay" if path.suffix == ".dtbo" else "board")
    for dtb, record in records.items():
        # What the build said about each file, failures (no file) included.
        if dtb in entries or record.get("error") is not None:
            entries[dtb] = Entry(dtb, record["kind"], record["source"] if kernel_dir else None,
                                 list(record["parts"]), record["error"])
    entries = [entries[dtb] for dtb in sorted(entries)]
    if not entries:
        raise CorpusError(f"{folder}: error: no .dtb files in this folder")
    identity = manifest.get("identity") or f"DTBs in {folder}"
    return Corpus(folder, kernel_dir, identity, entries, reused=len(entries), _records=records)


def open_corpus(path) -> Corpus:
    """A corpus from a .dtb file, a folder of DTBs, a kernel tree (built) or a kernel tarball."""
    path = Path(path)
    if path.is_file() and path.suffix in (".dtb", ".dtbo"):
        folder = _dtb_folder(path.parent) if (path.parent / MANIFEST).is_file() else None
        dtb = path.name
        entry = folder.entry(dtb) if folder else None
        entry = entry or Entry(dtb, "overlay" if path.suffix == ".dtbo" else "board")
        return Corpus(path.parent.resolve(), folder.kernel_dir if folder else None,
                      folder.identity if folder else str(path), [entry], reused=1,
                      _records=folder._records if folder else {})
    if path.is_file() and re.search(r"\.(tar(\.\w+)?|tgz)$", path.name):
        return build_corpus(tarball=path)
    if path.is_dir() and (path / DTS_DIR).is_dir() and not (path / MANIFEST).is_file():
        return build_corpus(kernel=path)
    if path.is_dir():
        return _dtb_folder(path)
    raise CorpusError(f"{path}: error: not a .dtb, a folder of DTBs, a kernel tree or a tarball")


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
    base board. Cached on disk beside the DTBs, keyed by the DTB's stamp.
    """
    if entry.kind == "composite":
        base = corpus.entry(entry.parts[0]) or Entry(entry.parts[0], "board",
                                                     corpus._records.get(entry.parts[0], {}).get("source"))
        return source_positions(corpus, base)
    if corpus.kernel_dir is None or entry.source is None:
        raise CorpusError(f"{entry.dtb}: error: no kernel source for this DTB")
    dtb_path = corpus.root / entry.dtb
    stamp = _stamp(dtb_path)
    cache = corpus.root / ".positions" / (entry.dtb + ".json")
    try:
        cached = json.loads(cache.read_text())
        if cached["stamp"] == stamp:
            return {path: (where[0], where[1]) for path, where in cached["positions"].items()}
    except (OSError, ValueError, KeyError):
        pass
    positions = _annotate(corpus, entry)
    cache.parent.mkdir(parents=True, exist_ok=True)
    temporary = cache.with_name(f".{cache.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps({"stamp": stamp, "positions": positions}))
    os.replace(temporary, cache)
    return positions


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
    with tempfile.TemporaryDirectory(prefix="dtb-audit-") as scratch:
        pre = Path(scratch) / "pre.tmp"
        proc = subprocess.run([tools.cpp, *cpp_flags(tree), "-o", str(pre), target.source],
                              cwd=tree, capture_output=True, text=True)
        if proc.returncode == 0:
            proc = subprocess.run([tools.dtc, "-I", "dts", "-O", "dts", "-T", "-T",
                                   "-i", os.path.dirname(target.source), "-i", dtc_include(tree),
                                   *target.dtc_flags, str(pre)],
                                  cwd=tree, capture_output=True, text=True)
        if proc.returncode:
            raise CorpusError(f"{target.source}: error: {_first_error(proc.stderr, proc.returncode)}")
        annotated = proc.stdout

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
