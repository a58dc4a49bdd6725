"""Stitching: the History of what was judged, revision after revision.

stitch() follows each SoC through the commits judged by
auditor/history/revisions.py; of_sweeps() through saved sweeps or corpora
of several versions. Both make the one History (auditor/documents.py).

A SoC is `affected` in a revision when one of its boards is
(docs/rule.md), `unaffected` when none is, `absent` when no board has it.
"""

from __future__ import annotations

from corpus.git import Commit, Repo
from kernels.judging import Judging

from ..documents import (ABSENT, AFFECTED, UNAFFECTED, CommitChange, GitSource, History,
                         Revision, SmmuChange, SocLine, VersionChange)
from .revisions import SocState


def stitch(repo: Repo, commits: list, results: list, judging: Judging = Judging()) -> History:
    """The History of the commits, from their RevisionResults.

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
    revisions = tuple(Revision(c.sha, r.target_kernel, subject=c.subject, date=c.date,
                               target_from=r.target_from, release=c.release, error=r.error,
                               not_built=r.not_built)
                      for c, r in zip(commits, results))
    affected = tuple(sorted(s for s, st in states.items() if st.state == AFFECTED)
                     for states in known)
    return History(revisions, tuple(SocLine(soc, tuple(changes[soc])) for soc in sorted(changes)),
                   GitSource(repo.name, repo.layout, judging.rule,
                             judging.legacy_dt_bindings),
                   affected)


def _base(commit: Commit, k: int, index: dict) -> int | None:
    if commit.parent is not None and commit.parent in index and index[commit.parent] < k:
        return index[commit.parent]
    return k - 1 if k > 0 else None


def _change(commit: Commit, before: SocState | None, after: SocState | None,
            soc: str | None = None) -> CommitChange | None:
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
        smmu.append(SmmuChange(path, b.coherent if b is not None else None,
                               a.coherent if a is not None else None,
                               where.source_file if where else None,
                               where.source_line if where else None))
        if b is not None and a is not None and b.coherent and not a.coherent:
            removed.append(path)
    upstream = None
    if removed and soc is not None:
        from ..settled import settled_for
        settled = [settled_for([soc], path.rsplit("/", 1)[-1]) for path in removed]
        upstream = next((f"{e.reference}: {e.note or e.verdict}" for e in settled
                         if e is not None), None)
    return CommitChange(commit.sha, commit.subject, commit.date, old, new,
                        after.boards if after else 0,
                        tuple(after.affected_boards) if after else (), tuple(smmu),
                        bool(removed), upstream)


# -- saved sweeps or corpora of several versions ------------------------------------

def of_sweeps(sweeps, names=None) -> History:
    """Each SoC with an SMMU through `sweeps` (oldest first; names: what to
    call each version, their identities by default).

    Per SoC and version: AFFECTED, UNAFFECTED, or None when the version has
    no such SoC; the SMMUs' coherency ("coherent", "non-coherent", "mixed",
    or None without an SMMU); and the changes: in which version the SMMUs
    became or stopped being coherent, and the SoC became or stopped being
    affected. SoCs that changed come first, then those ever affected."""
    names = names or [s.name for s in sweeps]
    per_version = [{s.soc: s for s in d.socs} for d in sweeps]
    with_smmu = sorted({soc for socs in per_version for soc, s in socs.items()
                        if s.providers}, key=lambda s: s or "")
    rows = []
    for soc in with_smmu:
        verdicts, coherency = [], []
        for socs in per_version:
            s = socs.get(soc)
            verdicts.append(None if s is None else AFFECTED if s.affected else UNAFFECTED)
            coherency.append(None if s is None else _coherency(s.providers))
        changes = []
        for k in range(1, len(sweeps)):
            for what, values in (("smmu", coherency), ("verdict", verdicts)):
                a, b = values[k - 1], values[k]
                if a is not None and b is not None and a != b:
                    changes.append(VersionChange(names[k], what, a, b))
        rows.append(SocLine(soc, tuple(changes), tuple(verdicts), tuple(coherency)))
    rows.sort(key=lambda r: (not r.changes, AFFECTED not in r.verdicts, r.soc or ""))
    return History(tuple(Revision(name, d.target_kernel, d.rule)
                         for name, d in zip(names, sweeps)),
                   tuple(rows),
                   affected=tuple(tuple(s.soc for s in d.affected) for d in sweeps))


def _coherency(providers):
    flags = {p.coherent for p in providers}
    if not flags:
        return None
    return "mixed" if len(flags) == 2 else "coherent" if flags.pop() else "non-coherent"
