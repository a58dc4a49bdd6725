"""Opening what is there: a folder of built DTBs (its manifest, when it has
one, adds each DTB's sources), one DTB (of the corpus it belongs to), and
several corpora merged into one."""

from __future__ import annotations

import os
from pathlib import Path

from corpus.console import diagnostic
from corpus.errors import UserError
from corpus.manifest import MANIFEST, output_problem, read_manifest, sources_record
from corpus.model import Corpus, Entry


def readable_name(path: Path) -> str:
    """A path for a message, whatever bytes its name has."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def dtb_folder(folder: Path, partial: bool = False) -> Corpus:
    """A folder of built DTBs, used as it is (its manifest, when it has one, adds sources)."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise UserError(folder, "no such folder")
    manifest, problem = read_manifest(folder)
    again = "run `dtb-audit corpus build` again, or sweep it with --partial"
    incomplete = manifest and not manifest.get("complete")
    if problem and not partial:
        raise UserError(folder, f"{problem}; {again}")
    if incomplete and not partial:
        raise UserError(folder, f"incomplete corpus (the build was interrupted: "
                                      f"{manifest.get('tried')} of {manifest.get('targets')} "
                                      f"outputs); {again}")
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
            diagnostic(f"{readable_name(path)}: warning: file name is not UTF-8; skipped")
            continue
        entries[dtb] = Entry(dtb, "overlay" if path.suffix == ".dtbo" else "board")
    trusted = {}
    for dtb, record in records.items():
        # What the build said about each file, failures (no file) included;
        # a file that is not the output built keeps no sources.
        if record.get("error") is None and dtb in entries:
            problem, _ = output_problem(os.path.join(folder, dtb), record,
                                         manifest.get("written_ns"))
            if problem:
                diagnostic(f"{folder / dtb}: warning: {problem}; its sources are not used")
                continue
        if dtb in entries or record.get("error") is not None:
            entries[dtb] = Entry(dtb, record["kind"], record["source"] if kernel_dir else None,
                                 list(record["parts"]), record["error"])
            trusted[dtb] = sources_record(record)
    entries = [entries[dtb] for dtb in sorted(entries)]
    if not entries:
        raise UserError(folder, "no .dtb files in this folder")
    identity = manifest.get("identity") or f"DTBs in {folder}"
    return Corpus(folder, kernel_dir, identity, entries, reused=len(entries),
                  kernel_version=manifest.get("kernel_version"),
                  partial=bool(problem or incomplete), _records=trusted)


def one_dtb(path: Path, partial: bool) -> Corpus:
    """One DTB; of the built corpus it belongs to, when a manifest above records it."""
    # Its folder as the system finds it (`..` after a link is not lexical);
    # the name kept, so a link to a DTB is opened as given.
    path = path.absolute().parent.resolve() / path.name
    for folder in path.parents:
        if (folder / MANIFEST).is_file():
            dtb = path.relative_to(folder).as_posix()
            manifest, _ = read_manifest(folder)
            if dtb in manifest.get("records", {}):
                corpus = dtb_folder(folder, partial)
                entry = corpus.entry(dtb)
                if entry is not None:
                    return Corpus(corpus.root, corpus.kernel_dir, corpus.identity, [entry],
                                  reused=1, kernel_version=corpus.kernel_version,
                                  partial=corpus.partial, _records=corpus._records)
            break
    entry = Entry(path.name, "overlay" if path.suffix == ".dtbo" else "board")
    return Corpus(path.parent.resolve(), None, str(path), [entry], reused=1)


def merge(members: list[Corpus]) -> Corpus:
    """Corpora opened one by one (build.open_corpora), as one.

    A DTB reached twice (the same folder given twice, a file and its folder)
    is listed once. DTB names stay unique: when the corpora have different
    roots, each name is prefixed with its root's path below the roots'
    common folder ("a/freescale/x.dtb", "b/freescale/x.dtb"). The members
    are kept (Corpus.members, Corpus.origin(entry)) for what only one of
    them knows: its kernel tree, its sources.
    """
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
