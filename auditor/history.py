"""The history over git revisions: which commit made each SoC affected, or fixed it.

history_git() judges every revision of a git repository (corpus/git.py
lists them) and follows each SoC through them; run_history_git() is the
command: text, JSON, robot-style messages and a plot.

How a run goes. The revision list is cut into contiguous chunks; each chunk
runs on one Dask worker (history_chunk()), from a worktree of its own,
revision after revision: `git checkout` moves the worktree (unchanged files
keep their modification times), corpus.build rebuilds only the DTBs whose
inputs changed, and only the DTBs whose bytes changed are judged again (a
board's judgement is kept by its SHA-256 and target kernel). Each revision
comes back as a compact RevisionResult (per SoC: its state, affected
boards, SMMU nodes); the client stitches the transitions, also across chunk
boundaries (the first revision of a chunk is built from whatever its slot
holds, in the worst case everything). Without a scheduler address the run
starts a LocalCluster on 127.0.0.1 with this machine's cores: one code path.

A revision's target kernel is --target-kernel, else the first release
whose tag's ancestry holds the commit (corpus.git.with_releases: in
devicetree-rebasing, the release whose merge brought a side branch in),
else a kernel tree's Makefile, else the newest modelled, marked "assumed"
(docs/target-kernel.md).

A SoC is `affected` in a revision when one of its boards is (SPEC section 4),
`unaffected` when none is, `absent` when no board has it. A revision is
compared with its parent in the list (the previous one along first parents;
the nearest listed ancestor with all_commits). A revision that does not
build is marked with its first error; the SoCs of the boards that failed
keep their state there (a board that does not compile is not removed).
A chunk whose worker died is retried by the scheduler; when it cannot be,
its revisions are marked as not judged, never dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from corpus.console import progress_wanted
from corpus.errors import CorpusError
from corpus.git import KERNEL, Commit, Repo, open_repo, owned_worktree, revisions as list_revisions

from .text import shown

AFFECTED, UNAFFECTED, ABSENT = "affected", "unaffected", "absent"
# Where a revision's target kernel comes from, first that applies (docs/target-kernel.md).
TARGET_FROM = ("given", "release", "makefile", "assumed")
BOARDS_IN_MAIL = 12


# -- per revision: compact results ----------------------------------------------

@dataclass(frozen=True)
class Smmu:
    """An SMMU node of a SoC in one revision."""
    path: str
    coherent: bool               # dma-coherent on every board that has the node
    source_file: str | None      # where the node is written (known when the sweep gave it)
    source_line: int | None


@dataclass(frozen=True)
class SocState:
    state: str                   # AFFECTED | UNAFFECTED
    boards: int
    affected_boards: tuple       # DTB paths
    smmus: tuple                 # Smmu, by path


@dataclass(frozen=True)
class DtbResult:
    """What one board says, kept by (dtb, SHA-256, target version and rule) within a chunk."""
    soc: str | None
    affected: bool
    smmus: tuple                 # Smmu


@dataclass(frozen=True)
class Judging:
    """How every revision is judged (the same on every worker)."""
    target_kernel: str | None = None   # --target-kernel; None: each revision's own version
    rule: str | None = None            # --rule: a RULES id overriding the target's
    legacy_dt_bindings: bool = True    # CONFIG_ARM_SMMU_LEGACY_DT_BINDINGS


@dataclass
class RevisionResult:
    commit: str
    target_kernel: str | None = None
    target_from: str | None = None   # TARGET_FROM: where the target came from
    error: str | None = None     # the first build error; the revision is marked
    judged_all: bool = True      # False: nothing could be judged (the tree, a lost worker)
    failed: tuple = ()           # DTBs that did not build
    socs: dict = field(default_factory=dict)     # soc -> SocState
    judged: dict = field(default_factory=dict)   # dtb -> soc, of the boards judged now
    built: int = 0               # DTBs compiled or overlaid for this revision ...
    reused: int = 0              # ... and those up to date from the previous one
    rejudged: int = 0            # boards judged (their bytes were new) ...
    kept: int = 0                # ... and boards whose judgement was kept
    seconds: float = 0.0


def history_chunk(repo_path: str, commits: list[Commit], judging: Judging = Judging(),
                  jobs: int | None = None, topic: str | None = None,
                  chunk: int = 0) -> list[RevisionResult]:
    """Judge `commits` in order from one owned worktree, incrementally (runs on a worker)."""
    _tell(topic, {"chunk": chunk, "started": True, "pid": os.getpid()})
    repo = open_repo(repo_path)
    judgements: dict[tuple, DtbResult] = {}
    results = []
    with owned_worktree(repo) as worktree:
        for commit in commits:
            results.append(_revision(worktree, commit, judging, jobs, judgements))
            _tell(topic, {"chunk": chunk, "commit": commit.sha, "pid": os.getpid()})
    return results


def _tell(topic: str | None, message: dict) -> None:
    """Progress to the client, through the scheduler's event log (only on a worker)."""
    if topic is None:
        return
    try:
        from distributed import get_worker
        worker = get_worker()
    except (ImportError, ValueError):
        return
    worker.log_event(topic, message)


def _revision(worktree, commit: Commit, judging: Judging, jobs, judgements) -> RevisionResult:
    from corpus.build import build_corpus

    started = time.monotonic()
    result = RevisionResult(commit.sha)
    try:
        known, source = _known_target(commit, judging)
        # devicetree-rebasing has no Makefile: its shim says the release (or the newest).
        worktree.checkout(commit.sha, str(known or _newest()))
        corpus = build_corpus(kernel=worktree.tree, out=worktree.corpus_dir, jobs=jobs)
        if known is None:
            known, source = _target_of_tree(corpus, worktree.repo)
    except CorpusError as why:
        result.error, result.judged_all = worktree.in_repo(str(why)), False
        result.seconds = time.monotonic() - started
        return result
    target = known
    result.target_kernel, result.target_from = str(target), source
    result.built, result.reused = corpus.built, corpus.reused
    failed = [e for e in corpus.entries if e.error is not None]
    result.failed = tuple(e.dtb for e in failed)
    if failed:
        first = failed[0]
        result.error = f"{worktree.repo_path(first.source or first.dtb)}: error: {first.error}"
    # The judgement depends on the version and the rule (an -rcN only through
    # the rule): 6.12 and 6.12.0, or 4.15-rc1 and 4.15-rc2, share judgements.
    keys = {e.dtb: (e.dtb, _sha256(corpus.root / e.dtb), target.version, target.rule)
            for e in corpus.boards}
    new = [e for e in corpus.boards if keys[e.dtb] not in judgements]
    if new:
        for dtb, judged in _judge(corpus, new, target, judging).items():
            judgements[keys[dtb]] = _in_repo(judged, worktree)
        result.judged = {e.dtb: judgements[keys[e.dtb]].soc for e in new}
    result.rejudged, result.kept = len(new), len(keys) - len(new)
    result.socs = soc_states({dtb: judgements[key] for dtb, key in keys.items()})
    result.seconds = time.monotonic() - started
    return result


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _known_target(commit: Commit, judging: Judging):
    """(target, TARGET_FROM) known before the build: --target-kernel, else
    the first release that contains the commit; (None, None) otherwise."""
    from auditor.sweep import target_for
    from kernels.target import TargetError, TargetKernel
    if judging.target_kernel:
        return target_for(None, judging.target_kernel), "given"
    if commit.release:
        try:
            return TargetKernel.parse(commit.release), "release"
        except TargetError:
            pass        # a tag no kernel has (v99.1): as if untagged
    return None, None


def _target_of_tree(corpus, repo: Repo):
    """(target, TARGET_FROM) of an untagged commit: a kernel tree's Makefile,
    else (devicetree-rebasing has no version of its own) the newest, assumed."""
    from auditor.sweep import target_for
    if repo.layout == KERNEL and corpus.kernel_version:
        return target_for(corpus), "makefile"
    return _newest(), "assumed"


def _newest():
    from kernels.target import TargetKernel
    return TargetKernel.newest()


def _judge(corpus, entries, target, judging: Judging) -> dict[str, DtbResult]:
    """The sweep of some boards of `corpus`, per board: the one place the sweep is read."""
    from auditor.sweep import sweep_corpus
    from corpus.flat import flatten

    part = dataclasses.replace(corpus, entries=list(entries))
    flat = flatten([corpus.root / e.dtb for e in entries], corpus.root, cache=False)
    sweep = sweep_corpus(part, target=target, rule=judging.rule,
                         legacy_dt_bindings=judging.legacy_dt_bindings, flat=flat)
    # A board without a root compatible (or that does not parse) belongs to no SoC.
    out = {e.dtb: DtbResult(None, False, ()) for e in entries}
    for soc in sweep.socs:
        affected = set(soc.affected_boards)
        for dtb in soc.boards:
            smmus = tuple(Smmu(p.path, bool(p.coherent), p.source_file, p.source_line)
                          for p in soc.providers if dtb in p.dtbs)
            out[dtb] = DtbResult(soc.soc, dtb in affected, smmus)
    return out


def _in_repo(judged: DtbResult, worktree) -> DtbResult:
    """Source files named as the repository names them (devicetree-rebasing: src/...)."""
    smmus = tuple(dataclasses.replace(s, source_file=worktree.repo_path(s.source_file))
                  if s.source_file else s for s in judged.smmus)
    return dataclasses.replace(judged, smmus=smmus)


def soc_states(boards: dict[str, DtbResult]) -> dict[str, SocState]:
    """Per SoC, from its boards' results: state, affected boards, SMMU nodes.

    An SMMU node is coherent when it is on every board that has it; its
    source position is the first one known, boards in path order.
    """
    grouped: dict[str, list] = {}
    for dtb in sorted(boards):
        result = boards[dtb]
        if result.soc is not None:
            grouped.setdefault(result.soc, []).append((dtb, result))
    states = {}
    for soc, members in grouped.items():
        smmus: dict[str, Smmu] = {}
        for _, result in members:
            for s in result.smmus:
                known = smmus.get(s.path)
                if known is None:
                    smmus[s.path] = s
                else:
                    smmus[s.path] = Smmu(s.path, known.coherent and s.coherent,
                                         known.source_file or s.source_file,
                                         known.source_line if known.source_file else s.source_line)
        affected = tuple(dtb for dtb, result in members if result.affected)
        states[soc] = SocState(AFFECTED if affected else UNAFFECTED, len(members), affected,
                               tuple(smmus[p] for p in sorted(smmus)))
    return states


# -- over the revisions: chunks on a Dask cluster -----------------------------------

@dataclass
class History:
    repo: Repo
    commits: list                # Commit, oldest first
    results: list                # RevisionResult, one per commit
    doc: dict                    # the JSON document
    affected: list               # affected SoCs per revision (errors carry the state over)
    chunks: list = field(default_factory=list)   # how the commits were cut


def history_git(repo, revisions=(), *, all_commits=False, target_kernel=None, rule=None,
                legacy_dt_bindings=True, scheduler=None, jobs=None, chunk_size=None,
                on_event=None) -> History:
    """Judge the revisions of `repo` on a Dask cluster and stitch the history.

    revisions: git ranges (see corpus.git.revisions); none: the release tags.
    target_kernel: judge every revision under this version instead of its own;
    rule: a RULES id overriding the target kernel's; legacy_dt_bindings: as
    for the sweep.
    scheduler: "tcp://host:port" of a dask scheduler; None: a LocalCluster
    on 127.0.0.1 with `jobs` worker processes (this machine's cores).
    chunk_size: revisions per chunk (default: spread over the workers).
    on_event: called on the client with each progress message of a worker
    ({"chunk", "pid", and "commit" after each revision or "started"}).
    Raises CorpusError for a repository or revision that cannot be used.
    """
    repo = open_repo(repo)
    if target_kernel:
        from auditor.sweep import target_for
        target_for(None, target_kernel)      # a bad version fails here, not on every worker
    commits = list_revisions(repo, revisions, all_commits=all_commits)
    if not commits:
        raise CorpusError(f"{repo.path}: error: no commit in {' '.join(revisions)} touches "
                          f"the device-tree sources")
    judging = Judging(target_kernel, rule, legacy_dt_bindings)
    results, chunks = _run(repo, commits, judging, scheduler, jobs, chunk_size, on_event)
    doc, affected = stitch(repo, commits, results, judging)
    return History(repo, commits, results, doc, affected, chunks)


def _run(repo, commits, judging, scheduler, jobs, chunk_size, on_event):
    from distributed import Client, LocalCluster

    cluster = None
    try:
        if scheduler is None:
            cluster = LocalCluster(n_workers=jobs or os.cpu_count() or 1, threads_per_worker=1,
                                   processes=True, host="127.0.0.1",
                                   # its HTTP server on a free loopback port, never 8787
                                   dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
            client = Client(cluster)
        else:
            client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as why:
        if cluster is not None:
            cluster.close()
        raise CorpusError(f"{scheduler or 'LocalCluster'}: error: cannot reach the Dask "
                          f"scheduler: {why}") from None
    try:
        try:
            client.wait_for_workers(1, timeout=120)
        except TimeoutError:
            raise CorpusError(f"{scheduler}: error: no Dask worker connected to the scheduler "
                              f"(start some with `dask worker {scheduler}`)") from None
        threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
        size = chunk_size or math.ceil(len(commits) / max(1, threads))
        chunks = [commits[i:i + size] for i in range(0, len(commits), size)]
        return _gather(client, repo, chunks, judging, on_event), chunks
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _gather(client, repo, chunks, judging, on_event) -> list[RevisionResult]:
    from tqdm import tqdm

    topic = f"dtb-audit-history-{uuid.uuid4().hex}"
    bar = tqdm(total=sum(map(len, chunks)), desc="revisions", unit="rev", file=sys.stderr,
               disable=not progress_wanted(), leave=False)

    def event(item):
        message = item[1]
        if "commit" in message:
            bar.update()
        if on_event is not None:
            on_event(message)

    client.subscribe_topic(topic, event)
    futures = [client.submit(history_chunk, str(repo.path), chunk, judging, None, topic, i,
                             key=f"dtb-audit-chunk-{i}-{topic}", pure=False, retries=1)
               for i, chunk in enumerate(chunks)]
    results = []
    try:
        for chunk, future in zip(chunks, futures):
            try:
                results += future.result()
            except Exception as why:  # a worker that died or failed: reported, never dropped
                reason = f"{type(why).__name__}: {why}".strip().splitlines()[0]
                results += [RevisionResult(c.sha, error=f"not judged: {reason}", judged_all=False)
                            for c in chunk]
    finally:
        client.unsubscribe_topic(topic)
        bar.close()
    return results


# -- stitching --------------------------------------------------------------------

def stitch(repo: Repo, commits: list, results: list,
           judging: Judging = Judging()) -> tuple[dict, list]:
    """The history document, and the affected SoCs of each revision.

    A revision is compared with its parent in the list (commit.parent), else
    with the revision before it. In a revision with boards that did not
    build, the SoCs of those boards keep the state they had (the SoC of a
    DTB is the one it had when last judged, or, failing that, next judged);
    a revision where nothing could be judged keeps every state.
    """
    index = {c.sha: k for k, c in enumerate(commits)}
    soc_of_later: dict[str, str] = {}
    for result in reversed(results):
        soc_of_later.update(result.judged)
    soc_of: dict[str, str] = {}
    known: list[dict] = []
    for k, (commit, result) in enumerate(zip(commits, results)):
        soc_of.update(result.judged)
        base = _base(commit, k, index)
        previous = known[base] if base is not None else {}
        if not result.judged_all:
            known.append(dict(previous))
            continue
        states = dict(result.socs)
        for dtb in result.failed:
            soc = soc_of.get(dtb) or soc_of_later.get(dtb)
            if soc is None:
                continue
            if soc in previous:
                states[soc] = previous[soc]
            else:
                states.pop(soc, None)
        known.append(states)

    changes: dict[str, list] = {}
    for k, commit in enumerate(commits):
        base = _base(commit, k, index)
        if base is None:
            continue
        before, after = known[base], known[k]
        for soc in sorted(before.keys() | after.keys()):
            change = _change(commit, before.get(soc), after.get(soc), soc)
            if change is not None:
                changes.setdefault(soc, []).append(change)
    doc = {
        "tool": "dtb-audit",
        "kind": "history",
        "repo": str(repo.path),
        "layout": repo.layout,
        "rule": judging.rule,
        "legacy_dt_bindings": judging.legacy_dt_bindings,
        "revisions": [{"commit": c.sha, "subject": c.subject, "date": c.date,
                       "target_kernel": r.target_kernel, "target_from": r.target_from,
                       "release": c.release, "error": r.error}
                      for c, r in zip(commits, results)],
        "socs": [{"soc": soc, "changes": changes[soc]} for soc in sorted(changes)],
    }
    affected = [sorted(s for s, st in states.items() if st.state == AFFECTED) for states in known]
    return doc, affected


def _base(commit: Commit, k: int, index: dict) -> int | None:
    if commit.parent is not None and commit.parent in index and index[commit.parent] < k:
        return index[commit.parent]
    return k - 1 if k > 0 else None


def _change(commit: Commit, before: SocState | None, after: SocState | None,
            soc: str | None = None) -> dict | None:
    """The change of one SoC at `commit`, None when nothing changed.

    "smmu": the SMMU nodes that gained or lost dma-coherent; when none did,
    the SoC's SMMU nodes on either side (a master added, a board removed).
    "removes_dma_coherent": the commit took dma-coherent away from an SMMU
    node that had it, as a revert of a coherency fix does; "upstream" then
    names what upstream settled about that SMMU, when it is one of
    auditor.settled's (sdm845's apps SMMU, reverted as CVE-2025-22012).
    """
    old = before.state if before else ABSENT
    new = after.state if after else ABSENT
    smmus_before = {s.path: s for s in before.smmus} if before else {}
    smmus_after = {s.path: s for s in after.smmus} if after else {}
    flipped = [p for p in sorted(smmus_before.keys() & smmus_after.keys())
               if smmus_before[p].coherent != smmus_after[p].coherent]
    if old == new and not flipped:
        return None
    shown = flipped or sorted(smmus_before.keys() | smmus_after.keys())
    smmu = []
    removed = []
    for path in shown:
        b, a = smmus_before.get(path), smmus_after.get(path)
        where = a if a is not None and a.source_file else b if b is not None and b.source_file \
            else None
        smmu.append({"path": path,
                     "coherent_before": b.coherent if b is not None else None,
                     "coherent_after": a.coherent if a is not None else None,
                     "source_file": where.source_file if where else None,
                     "source_line": where.source_line if where else None})
        if b is not None and a is not None and b.coherent and not a.coherent:
            removed.append(path)
    upstream = None
    if removed and soc is not None:
        from .settled import settled_for
        settled = [settled_for([soc], path.rsplit("/", 1)[-1]) for path in removed]
        upstream = next((f"{e.reference}: {e.note or e.verdict}" for e in settled
                         if e is not None), None)
    return {"commit": commit.sha, "subject": commit.subject, "date": commit.date,
            "from": old, "to": new,
            "boards": after.boards if after else 0,
            "affected_boards": list(after.affected_boards) if after else [],
            "smmu": smmu,
            "removes_dma_coherent": bool(removed),
            "upstream": upstream}


# -- what people and robots read ----------------------------------------------------

def newly_affected(doc: dict) -> list[tuple[str, dict]]:
    """(soc, change) of every change that made a SoC affected, in revision order."""
    order = {r["commit"]: k for k, r in enumerate(doc["revisions"])}
    found = [(s["soc"], c) for s in doc["socs"] for c in s["changes"] if c["to"] == AFFECTED]
    return sorted(found, key=lambda sc: (order[sc[1]["commit"]], sc[0]))


def new_since_first(affected: list) -> list[str]:
    """SoCs affected in the last revision and not in the first (what --fail-on-new exits 1 for)."""
    return sorted(set(affected[-1]) - set(affected[0])) if affected else []


def _smmu_line(s: dict) -> str:
    where = f"{s['source_file']}:{s['source_line']}: " if s["source_file"] else ""
    before, after = s["coherent_before"], s["coherent_after"]
    if before is not None and after is not None and before != after:
        what = "dma-coherent added" if after else "dma-coherent removed"
    elif after is None:
        what = "no longer on any board"
    else:
        what = "dma-coherent" if after else "not dma-coherent"
    return f"{where}{s['path']}: {what}"


def _revert_lines(change: dict) -> list[str]:
    """What a commit that removes dma-coherent from an SMMU node is told."""
    if not change.get("removes_dma_coherent"):
        return []
    lines = ["a revert: this commit removes dma-coherent from an SMMU node"]
    if change.get("upstream"):
        lines.append(f"upstream: {change['upstream']}")
    else:
        lines.append("if the hardware is not coherent on every board, VFIO's refusal is right")
    return lines


def format_text(doc: dict, affected: list, mails: bool = True) -> str:
    """The history for people: the revisions, then each SoC's changes, then the messages.
    Each line is shown() (SoCs, paths, subjects: no raw control character)."""
    revisions = doc["revisions"]
    lines = [f"dtb-audit history: {doc['repo']}: {len(revisions)} revisions, "
             f"{len(doc['socs'])} SoCs changed", ""]
    for r, count in zip(revisions, affected):
        mark = f"  [error: {r['error']}]" if r["error"] else ""
        target = (r["target_kernel"] or "-") + ("?" if r.get("target_from") == "assumed" else "")
        lines.append(f"  {r['commit'][:12]}  {r['date'][:10]}  {target:<10} "
                     f"{len(count):>3} affected  {r['subject']}{mark}")
    if any(r.get("target_from") == "assumed" for r in revisions):
        lines.append("  (?: no release contains the commit and the tree names no version: "
                     "judged as the newest modelled)")
    for s in doc["socs"]:
        lines += ["", s["soc"]]
        for c in s["changes"]:
            boards = (f" ({len(c['affected_boards'])}/{c['boards']} boards)"
                      if c["to"] == AFFECTED else "")
            lines.append(f"  {c['commit'][:12]}  {c['date'][:10]}  {c['from']} -> {c['to']}"
                         f"{boards}  {c['subject']}")
            for smmu in c["smmu"]:
                lines.append(f"      {_smmu_line(smmu)}")
            lines.extend(f"      {line}" for line in _revert_lines(c))
    text = "".join(shown(line) + "\n" for line in lines)
    if mails:
        for soc, change in newly_affected(doc):
            text += "\n" + "-" * 72 + "\n" + robot_message(doc, soc, change)
    return text


def robot_message(doc: dict, soc: str, change: dict) -> str:
    """A kernel-test-robot-style mail about one SoC a commit made affected."""
    sha12, subject = change["commit"][:12], change["subject"]
    target = next((r["target_kernel"] for r in doc["revisions"]
                   if r["commit"] == change["commit"]), None)
    boards = change["affected_boards"]
    lines = [
        f"Subject: [dtb-audit] {soc}: VFIO refuses its devices since {sha12}",
        "",
        f"tree:   {doc['repo']}",
        f"commit: {change['commit']} ({subject})",
        f"date:   {change['date']}",
        f"target kernel: {target or 'unknown'}",
        "",
        "If you fix the issue in a separate patch/commit (i.e. not just a new version of",
        "the same patch/commit), kindly add the following tag",
        f"| Fixes: {sha12} (\"{subject}\")",
        "",
        f"{soc} went from {change['from']} to affected: on {len(boards)} of its "
        f"{change['boards']} boards,",
        "VFIO (vfio-pci, vfio-platform, vfio-fsl-mc) and iommufd refuse a device because",
        "its IOMMU does not report IOMMU_CAP_CACHE_COHERENCY.",
        "",
        "SMMU nodes:",
    ]
    lines += [f">> {_smmu_line(s)}" for s in change["smmu"]] or ["   (none)"]
    lines += [f"   {line}" for line in _revert_lines(change)]
    lines += ["", "boards:"]
    lines += [f"   {b}" for b in boards[:BOARDS_IN_MAIL]]
    if len(boards) > BOARDS_IN_MAIL:
        lines.append(f"   ... and {len(boards) - BOARDS_IN_MAIL} more")
    lines += ["", "If the SMMU's page-table walk is coherent (IDR0.CTTW), the node lacks",
              "`dma-coherent;`: confirm it on hardware before patching.", ""]
    # One line each, escaped: a newline in a SoC's name cannot add a header.
    return "\n".join(shown(line) for line in lines)


def mail_name(k: int, soc: str, change: dict) -> str:
    return f"{k:04d}-{re.sub(r'[^A-Za-z0-9.+-]', '_', soc)}-{change['commit'][:12]}.txt"


def write_mails(doc: dict, folder) -> list[Path]:
    """One file per newly affected SoC in `folder`, written atomically."""
    from corpus.temporary import write_atomically

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for k, (soc, change) in enumerate(newly_affected(doc), 1):
        path = folder / mail_name(k, soc, change)
        write_atomically(path, robot_message(doc, soc, change).encode())
        written.append(path)
    return written


def write_plot(doc: dict, affected: list, path) -> None:
    """Affected SoCs over the revisions, transitions marked; SVG or PNG by suffix."""
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"   # text stays text: searchable, selectable
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from corpus.temporary import write_atomically

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("svg", "png"):
        raise CorpusError(f"{path}: error: the plot is written as .svg or .png")
    revisions = doc["revisions"]
    counts = [len(a) for a in affected]
    xs = list(range(len(revisions)))
    order = {r["commit"]: k for k, r in enumerate(revisions)}
    up: dict[int, list] = {}
    down: dict[int, list] = {}
    for s in doc["socs"]:
        for c in s["changes"]:
            if c["to"] == AFFECTED:
                up.setdefault(order[c["commit"]], []).append(s["soc"])
            elif c["from"] == AFFECTED:
                down.setdefault(order[c["commit"]], []).append(s["soc"])

    figure = Figure(figsize=(max(8.0, min(24.0, 0.35 * len(xs) + 4)), 5), layout="constrained")
    axes = figure.subplots()
    axes.step(xs, counts, where="post", color="#444444", linewidth=1.5, label="affected SoCs")
    axes.plot(xs, counts, "o", color="#444444", markersize=3)
    for marks, color, symbol, sign, label in ((up, "#c0392b", "^", "+", "newly affected"),
                                              (down, "#27ae60", "v", "-", "no longer affected")):
        ks = sorted(marks)
        axes.plot(ks, [counts[k] for k in ks], symbol, color=color, markersize=9, label=label)
        for k in ks:
            socs = marks[k]
            # DTB text: escaped, and a `$` is a dollar, not matplotlib's mathtext
            names = ", ".join(shown(soc).replace("$", r"\$") for soc in socs[:3]) + (
                f" +{len(socs) - 3}" if len(socs) > 3 else "")
            axes.annotate(f"{sign}{len(socs)} {revisions[k]['commit'][:12]}\n{names}",
                          (k, counts[k]), textcoords="offset points",
                          xytext=(5, 8), fontsize=7, color=color)
    errors = [k for k, r in enumerate(revisions) if r["error"]]
    if errors:
        axes.plot(errors, [counts[k] for k in errors], "x", color="#888888", markersize=8,
                  label="build errors")
    if len(xs) <= 40:
        axes.set_xticks(xs, [r["commit"][:12] for r in revisions], rotation=60, ha="right",
                        fontsize=7)
    axes.set_xlabel("revision")
    axes.set_ylabel("affected SoCs")
    axes.set_ylim(bottom=-0.2, top=max(counts + [1]) * 1.25 + 1)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(f"SoCs VFIO refuses (IOMMU_CAP_CACHE_COHERENCY) over {len(xs)} revisions "
                   f"of {shown(Path(doc['repo']).name).replace('$', chr(92) + '$')}",
                   fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="upper left", fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt)
    write_atomically(path, buffer.getvalue())


def run_history_git(repo, revisions=(), *, all_commits=False, target_kernel=None, rule=None,
                    legacy_dt_bindings=True, scheduler=None, jobs=None, plot=None, mails=None,
                    fmt="text", fail_on_new=False, output=None, chunk_size=None,
                    out=sys.stdout, err=sys.stderr) -> int:
    """`dtb-audit history --git REPO [REVISIONS...]`: the exit status.

    0 when the history ran; 1 with fail_on_new when a SoC is affected in the
    last revision and was not in the first; 2 for a repository, revision,
    scheduler or option that cannot be used (one line on err). Revisions that
    did not build are reported on err, one line each, and marked in the
    output. fmt "text" (with the robot messages, unless `mails` names a
    folder to write them in, one file each) or "json"; to `out`, or to the
    file `output` (written atomically). plot: an .svg or .png file.
    """
    from corpus.temporary import write_atomically

    try:
        if plot is not None and Path(plot).suffix.lower() not in (".svg", ".png"):
            raise CorpusError(f"{plot}: error: the plot is written as .svg or .png")
        history = history_git(repo, revisions, all_commits=all_commits,
                              target_kernel=target_kernel, rule=rule,
                              legacy_dt_bindings=legacy_dt_bindings, scheduler=scheduler,
                              jobs=jobs, chunk_size=chunk_size)
        from auditor.sweep import warn_newer
        from kernels.target import TargetKernel
        warn_newer([TargetKernel.parse(r["target_kernel"], where=r["commit"][:12])
                    for r in history.doc["revisions"] if r["target_kernel"]], err.write)
        for r in history.doc["revisions"]:
            if r["error"]:
                said = r["error"] if ": error: " in r["error"] else f"error: {r['error']}"
                err.write(f"{r['commit'][:12]}: {said}\n")
        if fmt == "json":
            text = json.dumps(history.doc, indent=1) + "\n"
        else:
            text = format_text(history.doc, history.affected, mails=mails is None)
        if plot is not None:
            write_plot(history.doc, history.affected, plot)
        if mails is not None:
            write_mails(history.doc, mails)
        if output is not None:
            write_atomically(Path(output), text.encode())
    except CorpusError as why:
        message = str(why)
        err.write((message if ": error: " in message else f"dtb-audit: error: {message}") + "\n")
        return 2
    except OSError as why:
        err.write(f"{why.filename or 'dtb-audit'}: error: {why.strerror or why}\n")
        return 2
    if output is None:
        out.write(text)
    return 1 if fail_on_new and new_since_first(history.affected) else 0
