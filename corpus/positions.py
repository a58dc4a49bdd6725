"""Where each node of a board is written: the .dtsi (or .dts) and line of
its first `label: name@addr {`, as the tree's dtc annotates it. Kept beside
the DTBs (.positions/), keyed by the DTB's stamp."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from corpus.compile import first_error
from corpus.console import diagnostic
from corpus.dtc import tree_tools
from corpus.errors import UserError
from corpus.kbuild import Target, cpp_flags, dtc_include, read_targets
from corpus.model import Corpus, Entry
from store.durable import remove_dead, temporary_folder, write_atomically
from store.folders import cache_dir
from store.kept import NotKept
from store.sealed import Damaged, OtherFormat, read_sealed, sealed
from store.stamps import file_stamp

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
        raise UserError(entry.dtb, "no kernel source for this DTB")
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
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        remove_dead(corpus.root / ".positions", recursive=True)
        write_atomically(cache, sealed({"stamp": dtb_stamp, "positions": positions}))
    except OSError as why:
        diagnostic(f"{cache}: warning: cannot keep the source positions: {why.strerror or why}")
    return positions


def _read_positions(cache: Path) -> dict | None:
    """A verified source-positions entry; None when missing or damaged (with a warning)."""
    try:
        data = read_sealed(cache, None)
        if data is None or isinstance(data.get("positions"), dict):
            return data
        problem = "damaged (checksum)"
    except NotKept as why:
        problem = f"unusable ({why})"
    except (Damaged, OtherFormat):
        problem = "damaged (checksum)"
    except (OSError, ValueError) as why:
        problem = f"unreadable ({why})"
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
        raise UserError(entry.dtb, f"not built from a .dts in {tree}")
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
            raise UserError(target.source, first_error(proc.stderr, proc.returncode))
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
