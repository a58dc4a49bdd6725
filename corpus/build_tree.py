"""Building one kernel tree's DTBs, incrementally as make does: the tree's
rules read, the outputs planned against the manifest, compiled, the
manifest written as it goes and when the build ends or is interrupted
(SIGINT, SIGTERM). Builds of one folder take turns (a lock); the
temporaries of a killed build are removed by the next one. docs/corpus.md
says what is trusted and why."""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import threading
from pathlib import Path

from corpus.compile import run
from corpus.console import diagnostic, status
from corpus.dtc import tree_tools
from corpus.errors import UserError
from corpus.kbuild import Target
from corpus.manifest import FORMAT, MANIFEST, read_manifest, write_manifest
from corpus.model import Corpus, Entry
from corpus.plan import plan, remove_stale, says_all_is_built, select_targets, tree_rules
from corpus.sources import Source
from store.durable import remove_dead, temporary_folder
from store.folders import cache_dir, short_hash
from store.lock import taking_turns

_LOCK = ".dtb-audit-corpus.lock"
_LAYOUT = 1                # in the folder's key: outputs of one tree and tools


def check_jobs(jobs) -> None:
    if jobs is not None and jobs < 1:
        raise UserError(None, "-j: must be at least 1")


def build_tree(source: Source, out=None, jobs=None, select=None) -> Corpus:
    """Build the DTBs of one kernel tree (see build_corpus)."""
    check_jobs(jobs)
    tree = source.tree
    targets, cpp, include = tree_rules(tree)
    tools = tree_tools(tree, cache_dir(), {f for t in targets for f in t.dtc_flags})
    # Outputs are only comparable between runs with the same tree and tools.
    key = short_hash(_LAYOUT, tree, tools.key, *cpp, include)
    root = Path(out) if out else cache_dir() / "dtbs" / f"{_slug(source.identity)}-{key}"
    if root.exists() and not root.is_dir():
        raise UserError(root, "not a folder")
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    by_dtb = {t.dtb: t for t in targets}
    chosen = select_targets(targets, by_dtb, select)
    if not chosen:
        if select is None:
            raise UserError(tree, "no DTB to build (arch/arm64/boot/dts has none)")
        raise UserError(tree, f"no DTB matches {' or '.join(select)}")

    with taking_turns(root / _LOCK, lambda: status(f"waiting for another build of {root}")), \
            _terminate_as_interrupt():
        remove_dead(root, recursive=True)
        manifest, problem = read_manifest(root)
        if problem:
            diagnostic(f"{root / MANIFEST}: warning: {problem}; building everything again")
        records = manifest.get("records", {}) if manifest.get("key") == key else {}
        removed = remove_stale(root, records, by_dtb) if select is None else False
        header = {"format": FORMAT, "key": key, "identity": source.identity,
                  "kernel_version": source.version, "kernel_dir": str(tree),
                  "dtc": tools.dtc_version}
        compile_now, overlay_now, reused, learnt = plan(tree, root, chosen, records,
                                                        manifest.get("written_ns"))
        done = dict(records)
        if compile_now or overlay_now or removed or learnt \
                or not says_all_is_built(manifest, header, chosen, done):
            # The racy-timestamp line, by the file system's own clock (the
            # kernel's, for local file systems): a file changed at or after it
            # may have changed while cpp was reading it.
            scratch = temporary_folder(root, "build")
            header["started_ns"] = scratch.stat().st_mtime_ns
            try:
                for target in compile_now + overlay_now:
                    done.pop(target.dtb, None)  # rebuilt: until then, not an output to trust
                counts = run(tree, tools, cpp, include, root, scratch, header["started_ns"], jobs,
                             compile_now, overlay_now, done,
                             lambda finished: write_manifest(root, header, done, chosen, finished))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        else:
            counts = (0, 0)  # nothing built, nothing learnt: the manifest says it all already
    built, failed = counts
    entries = sorted((_entry(t, done.get(t.dtb)) for t in chosen), key=lambda e: e.dtb)
    return Corpus(root, tree, source.identity, entries, built=built, failed=failed,
                  reused=reused, kernel_version=source.version, _records=done, _tools=tools)


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


def _slug(identity: str) -> str:
    return re.sub(r"[^\w.+-]", "_", identity.split(" ", 1)[0])


def _entry(target: Target, record: dict | None) -> Entry:
    error = record.get("error") if record else "not built"
    return Entry(target.dtb, target.kind, target.source, list(target.parts), error)
