"""What a build does: the tree's rules (its Makefiles, read once and
remembered while none of the files they come from changed), the targets
chosen, and which outputs are rebuilt, reused or removed."""

from __future__ import annotations

import fnmatch
import os
import time
from pathlib import Path

from corpus import kbuild
from corpus.console import diagnostic
from corpus.kbuild import Target, cpp_flags, dtc_include, read_targets
from corpus.manifest import digest_of, mtime_size, output_problem
from store.durable import remove_dead, write_atomically
from store.folders import cache_dir, short_hash
from store.kept import NotKept
from store.sealed import read_sealed, sealed
from store.stamps import racy, stamp, unchanged

_RULES_FORMAT = 1


def tree_rules(tree: Path) -> tuple[list[Target], list[str], str]:
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
    """What tree_rules kept for this tree, None unless still true."""
    try:
        data = read_sealed(kept, _RULES_FORMAT)
        if data is None or data["tree"] != str(tree) or not unchanged(
                data["inputs"], {path: stamp(path) for path in data["inputs"]}, data["read_ns"]):
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


def select_targets(targets: list[Target], by_dtb: dict[str, Target], select) -> list[Target]:
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


def plan(tree: Path, root: Path, chosen: list[Target], records: dict, written_ns):
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
                stamps[path] = mtime_size(os.path.join(tree_dir, path))
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
        problem, read_whole = output_problem(path, record, written_ns)
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
                and record.get("inputs") == {p: digest_of(records.get(p)) for p in target.parts} \
                and verified(target, record):
            reused += 1
        else:
            overlay_now.append(target)
            recompiled.add(target.dtb)
    return compile_now, overlay_now, reused, learnt


def says_all_is_built(manifest: dict, header: dict, chosen: list[Target], done: dict) -> bool:
    """Whether the manifest read says what this build would write (but its
    times): complete, for these targets, this tree and these tools."""
    return (manifest.get("complete") is True
            and all(manifest.get(name) == value for name, value in header.items())
            and manifest.get("targets") == len(chosen)
            and manifest.get("tried") == sum(t.dtb in done for t in chosen))


def _composite_depth(target: Target, composites: dict, seen=()) -> int:
    parts = [composites[p] for p in target.parts if p in composites and p not in seen]
    return 1 + max((_composite_depth(p, composites, seen + (target.dtb,)) for p in parts), default=0)


def remove_stale(root: Path, records: dict, by_dtb: dict) -> bool:
    """Outputs of files no longer in the tree go, so the folder mirrors the tree.
    Returns whether any went."""
    stale = [dtb for dtb in records if dtb not in by_dtb]
    for dtb in stale:
        (root / dtb).unlink(missing_ok=True)
        del records[dtb]
    return bool(stale)
