"""Judging the revisions of a git repository, one chunk on one Dask worker
(history_chunk()): what each revision says of each SoC, as a compact
RevisionResult that auditor/history/stitching.py turns into the History.

The chunk runs from a worktree of its own, revision after revision: `git
checkout` moves the worktree (unchanged files keep their modification
times), corpus.build rebuilds only the DTBs whose inputs changed, and only
the DTBs whose bytes changed are judged again (a board's judgement is kept
by its SHA-256, target kernel version and rule). The design of the whole
run is in docs/history.md.

A revision's target kernel is the Judging's (--target-kernel), else the
first release whose tag's ancestry holds the commit (corpus.git.with_releases:
in devicetree-rebasing, the release whose merge brought a side branch in),
else a kernel tree's Makefile, else the newest modelled, marked "assumed"
(docs/target-kernel.md).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field

from corpus.errors import UserError
from corpus.git import KERNEL, Commit, Repo, open_repo, owned_worktree
from kernels.judging import Judging
from kernels.target import TargetError, TargetKernel
from store.digests import content_digests

from ..documents import AFFECTED, UNAFFECTED

# Where a revision's target kernel comes from, first that applies (docs/target-kernel.md).
TARGET_FROM = ("given", "release", "makefile", "assumed")

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


@dataclass
class RevisionResult:
    commit: str
    target_kernel: TargetKernel | None = None
    target_from: str | None = None   # TARGET_FROM: where the target came from
    error: str | None = None     # why nothing could be judged (the tree, a lost worker)
    judged_all: bool = True      # False: nothing could be judged
    failed: tuple = ()           # DTBs that did not build ...
    not_built: tuple = ()        # ... the first error of each, as the repository names the file
    unchanged: bool = False      # no input of the arm64 build changed: not built, not judged
    socs: dict = field(default_factory=dict)     # soc -> SocState
    judged: dict = field(default_factory=dict)   # dtb -> soc, of the boards judged now
    built: int = 0               # DTBs compiled or overlaid for this revision ...
    reused: int = 0              # ... and those up to date from the previous one
    rejudged: int = 0            # boards judged (their bytes were new) ...
    kept: int = 0                # ... and boards whose judgement was kept
    seconds: float = 0.0


def history_chunk(repo_name: str, commits: list[Commit], judging: Judging = Judging(),
                  jobs: int | None = None, topic: str | None = None,
                  chunk: int = 0) -> list[RevisionResult]:
    """Judge `commits` in order from one owned worktree, incrementally (runs on a worker)."""
    _tell(topic, {"chunk": chunk, "started": True, "pid": os.getpid()})
    repo = open_repo(repo_name, need=[c.sha for c in commits])
    judgements: dict[tuple, DtbResult] = {}
    results = []
    with owned_worktree(repo) as worktree:
        built = None        # the build the worktree holds: (its result, the files it read)
        for commit in commits:
            result = _unchanged(worktree, commit, judging, built)
            if result is None:
                result, inputs = _revision(worktree, commit, judging, jobs, judgements)
                built = (result, inputs) if inputs is not None else None
            results.append(result)
            _tell(topic, {"chunk": chunk, "commit": commit.sha, "pid": os.getpid()})
    return results


def _unchanged(worktree, commit: Commit, judging: Judging, built) -> RevisionResult | None:
    """The result of a commit that changes no file the arm64 build the
    worktree holds read (nor the arm64 DTS folder, nor the build's own
    machinery: corpus.git.ARM64_BUILD), under the same target: that build's,
    with nothing built or judged. None: the commit has to be built."""
    if built is None:
        return None
    last, inputs = built
    started = time.monotonic()
    known, source = _known_target(commit, judging)
    if known is None and last.target_from in ("makefile", "assumed"):
        known, source = last.target_kernel, last.target_from   # the Makefile is an input
    if (known, source) != (last.target_kernel, last.target_from):
        return None
    try:
        changed = worktree.repo.changed_paths(last.commit, commit.sha)
    except UserError:
        return None
    if any(worktree.repo.reads_arm64_build(path, inputs) for path in changed):
        return None
    return dataclasses.replace(last, commit=commit.sha, judged={}, built=0,
                               reused=last.built + last.reused, rejudged=0,
                               kept=last.rejudged + last.kept, unchanged=True,
                               seconds=time.monotonic() - started)


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


def _revision(worktree, commit: Commit, judging: Judging, jobs, judgements):
    """(the RevisionResult of `commit`, built and judged; the files its arm64
    build read, as the repository names them, or None when a DTB did not build)."""
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
    except UserError as why:
        result.error, result.judged_all = worktree.in_repo(why.line() if why.path else why.message), False
        result.seconds = time.monotonic() - started
        return result, None
    target = known
    result.target_kernel, result.target_from = target, source
    result.built, result.reused = corpus.built, corpus.reused
    failed = [e for e in corpus.entries if e.error is not None]
    result.failed = tuple(e.dtb for e in failed)
    result.not_built = tuple(f"{worktree.repo_path(e.source or e.dtb)}: error: {e.error}"
                             for e in failed)
    # The judgement depends on the version and the rule (an -rcN only through
    # the rule): 6.12 and 6.12.0, or 4.15-rc1 and 4.15-rc2, share judgements.
    # The digests the sweep keeps judgements by, remembered by stamp: a DTB the
    # build did not touch is not read again. One it cannot read is judged anew.
    boards = corpus.boards
    digests = content_digests(corpus.root, [e.dtb for e in boards])
    keys = {e.dtb: (e.dtb, digest or f"unread {started}", target.version, target.rule)
            for e, digest in zip(boards, digests)}
    new = [e for e in corpus.boards if keys[e.dtb] not in judgements]
    if new:
        for dtb, judged in judge_boards(corpus, new, target, judging).items():
            judgements[keys[dtb]] = _in_repo(judged, worktree)
        result.judged = {e.dtb: judgements[keys[e.dtb]].soc for e in new}
    result.rejudged, result.kept = len(new), len(keys) - len(new)
    result.socs = soc_states({dtb: judgements[key] for dtb, key in keys.items()})
    inputs = None if failed else _in_worktree(worktree, corpus.all_dependencies())
    result.seconds = time.monotonic() - started
    return result, inputs


def _in_worktree(worktree, files) -> frozenset[str]:
    """Files as the repository names them (devicetree-rebasing's shim links
    resolve into the worktree too); files outside it change with no commit."""
    top = worktree.path.resolve()
    return frozenset(f.relative_to(top).as_posix() for f in files if f.is_relative_to(top))


def _known_target(commit: Commit, judging: Judging):
    """(target, TARGET_FROM) known before the build: the Judging's, else
    the first release that contains the commit; (None, None) otherwise."""
    if judging.target is not None:
        return judging.target, "given"
    if commit.release:
        try:
            return TargetKernel.parse(commit.release), "release"
        except TargetError:
            pass        # a tag no kernel has (v99.1): as if untagged
    return None, None


def _target_of_tree(corpus, repo: Repo):
    """(target, TARGET_FROM) of an untagged commit: a kernel tree's Makefile,
    else (devicetree-rebasing has no version of its own) the newest, assumed."""
    from auditor.sweep import target_of
    if repo.layout == KERNEL and corpus.kernel_version:
        return target_of(corpus, Judging()), "makefile"
    return _newest(), "assumed"


def _newest():
    return TargetKernel.newest()


def judge_boards(corpus, entries, target, judging: Judging) -> dict[str, DtbResult]:
    """What each of some boards of `corpus` says under `target`, from their sweep."""
    from auditor.sweep import judged_sweep

    part = dataclasses.replace(corpus, entries=list(entries))
    # What each DTB says is kept by its content on disk too, shared with `sweep`
    # and with other chunks and runs (auditor/judged.py).
    sweep = judged_sweep(part, entries, target, judging)
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


