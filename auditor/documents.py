"""The typed documents besides the sweep: a Diff of two sweeps and a History
(revisions x SoC states), each with one JSON form and one "kind".

A History is either of saved sweeps or corpora (each SoC's verdict and
SMMU coherency in every version) or of the commits of a git repository
(each SoC's changes, with the commit that made them); both are made in
auditor/history/stitching.py. The two forms share the document's kind,
"history", and its revisions x SoCs, and each leaves out the fields the
other has (docs/formats.md). Renderers take these values, never dicts;
auditor/model.py reads a history of sweeps back (load_history()).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from kernels.codes import Rule
from kernels.target import TargetKernel

TOOL = "dtb-audit"
AFFECTED, UNAFFECTED, ABSENT = "affected", "unaffected", "absent"


def _text(value) -> str | None:
    """A typed value as its JSON string (None stays null)."""
    return None if value is None else str(value)


# -- diff -----------------------------------------------------------------------

class About(NamedTuple):
    """One side of a diff: which sweep, judged how."""
    identity: str
    target_kernel: TargetKernel | None
    rule: Rule
    legacy_dt_bindings: bool

    def to_json(self) -> dict:
        return {"identity": self.identity, "target_kernel": _text(self.target_kernel),
                "rule": self.rule.value, "legacy_dt_bindings": self.legacy_dt_bindings}


class SocChange(NamedTuple):
    soc: str | None
    old_affected_boards: int | None
    new_affected_boards: int | None
    boards: int
    new_soc: bool


class BoardChange(NamedTuple):
    dtb: str
    soc: str | None
    new_board: bool | None = None     # only of a newly affected board

    def to_json(self) -> dict:
        out = {"dtb": self.dtb, "soc": self.soc}
        if self.new_board is not None:
            out["new_board"] = self.new_board
        return out


class LinkChange(NamedTuple):
    dtb: str
    soc: str | None
    provider_path: str | None
    master_path: str | None
    link: str
    master_kind: str
    old_verdict: str | None       # None: a new link
    new_verdict: str


class CoherencyChange(NamedTuple):
    """An SMMU that gained or lost dma-coherent."""
    soc: str | None
    path: str
    label: str | None
    compatible: tuple
    driver: str
    source_file: str | None
    source_line: int | None
    old_affected: bool
    new_affected: bool

    def to_json(self) -> dict:
        return dict(self._asdict(), compatible=list(self.compatible))


class Changes(NamedTuple):
    """What became affected, stopped being affected, or left the corpus."""
    newly_affected: tuple = ()
    fixed: tuple = ()
    gone: tuple | None = None      # None: a list the diff does not keep (links)

    def to_json(self) -> dict:
        out = {"newly_affected": [_json(c) for c in self.newly_affected],
               "fixed": [_json(c) for c in self.fixed]}
        if self.gone is not None:
            out["gone"] = [_json(c) for c in self.gone]
        return out


def _json(record) -> dict:
    to_json = getattr(record, "to_json", None)
    return to_json() if to_json is not None else record._asdict()


@dataclass(frozen=True)
class Diff:
    """What changed from one sweep to another (auditor/diff.py makes it)."""
    old: About
    new: About
    socs: Changes                  # SocChange
    boards: Changes                # BoardChange
    links: Changes                 # LinkChange, no "gone"
    coherency_added: tuple         # CoherencyChange
    coherency_removed: tuple

    KIND = "diff"

    @property
    def regression(self) -> bool:
        """A SoC, a board or a link became affected: what --fail-on-new exits 1 for."""
        return bool(self.socs.newly_affected or self.boards.newly_affected
                    or self.links.newly_affected)

    def to_json(self) -> dict:
        return {
            "tool": TOOL,
            "kind": self.KIND,
            "old": self.old.to_json(),
            "new": self.new.to_json(),
            "socs": self.socs.to_json(),
            "boards": self.boards.to_json(),
            "links": self.links.to_json(),
            "smmu_coherency": {"added": [c.to_json() for c in self.coherency_added],
                               "removed": [c.to_json() for c in self.coherency_removed]},
            "regression": self.regression,
        }


# -- history --------------------------------------------------------------------

@dataclass(frozen=True)
class Revision:
    """A column of the history: a saved sweep or corpus (name: its identity,
    or the argument it came from), or a commit (name: its SHA)."""
    name: str
    target_kernel: TargetKernel | None
    rule: Rule | None = None           # of a sweep: the rule it was judged by
    # of a commit:
    subject: str | None = None
    date: str | None = None
    target_from: str | None = None     # TARGET_FROM (auditor/history/revisions.py)
    release: str | None = None
    error: str | None = None           # why the commit could not be judged at all
    not_built: tuple = ()              # "FILE: error: ..." of each DTB of the tree that did not build

    @property
    def target_assumed(self) -> bool:
        return self.target_from == "assumed"

    def commit_json(self) -> dict:
        return {"commit": self.name, "subject": self.subject, "date": self.date,
                "target_kernel": _text(self.target_kernel), "target_from": self.target_from,
                "release": self.release, "error": self.error,
                # only when there is one: a history where every DTB built reads as before
                **({"not_built": list(self.not_built)} if self.not_built else {})}


class VersionChange(NamedTuple):
    """A change of a SoC between two versions (saved sweeps or corpora)."""
    version: str
    what: str                      # "smmu" or "verdict"
    old: str
    new: str


class SmmuChange(NamedTuple):
    """An SMMU node of a SoC across a commit."""
    path: str
    coherent_before: bool | None   # None: not on any board before
    coherent_after: bool | None
    source_file: str | None
    source_line: int | None


class CommitChange(NamedTuple):
    """A change of a SoC at one commit."""
    commit: str
    subject: str
    date: str
    old: str                       # AFFECTED, UNAFFECTED or ABSENT ("from" in JSON)
    new: str                       # ("to" in JSON)
    boards: int
    affected_boards: tuple
    smmu: tuple                    # SmmuChange
    removes_dma_coherent: bool     # a revert of a coherency fix
    upstream: str | None           # what upstream settled about that SMMU

    def to_json(self) -> dict:
        return {"commit": self.commit, "subject": self.subject, "date": self.date,
                "from": self.old, "to": self.new, "boards": self.boards,
                "affected_boards": list(self.affected_boards),
                "smmu": [s._asdict() for s in self.smmu],
                "removes_dma_coherent": self.removes_dma_coherent, "upstream": self.upstream}


@dataclass(frozen=True)
class SocLine:
    """A row of the history: one SoC across the revisions."""
    soc: str | None
    changes: tuple                  # VersionChange or CommitChange, in revision order
    verdicts: tuple | None = None   # of sweeps: AFFECTED, UNAFFECTED or None per revision
    smmu: tuple | None = None       # of sweeps: "coherent", "non-coherent", "mixed" or None


@dataclass(frozen=True)
class GitSource:
    """Where a history of commits comes from, and how it was judged."""
    repo: str
    layout: str
    rule: Rule | None               # --rule, None: each commit's target's
    legacy_dt_bindings: bool


@dataclass(frozen=True)
class History:
    """Revisions x SoC states. `git` is None for a history of sweeps."""
    revisions: tuple                # Revision, oldest first
    socs: tuple                     # SocLine
    git: GitSource | None = None
    # The affected SoCs of each revision (a failed revision carries the
    # states over); known where the history was made, not saved.
    affected: tuple | None = None

    KIND = "history"

    def to_json(self) -> dict:
        doc = {"tool": TOOL, "kind": self.KIND}
        if self.git is None:
            doc.update(
                versions=[r.name for r in self.revisions],
                target_kernels=[_text(r.target_kernel) for r in self.revisions],
                rules=[_text(r.rule) for r in self.revisions],
                socs=[{"soc": s.soc, "verdicts": list(s.verdicts), "smmu": list(s.smmu),
                       "changes": [c._asdict() for c in s.changes]} for s in self.socs])
        else:
            doc.update(
                repo=self.git.repo, layout=self.git.layout, rule=_text(self.git.rule),
                legacy_dt_bindings=self.git.legacy_dt_bindings,
                revisions=[r.commit_json() for r in self.revisions],
                socs=[{"soc": s.soc, "changes": [c.to_json() for c in s.changes]}
                      for s in self.socs])
        return doc

    def newly_affected(self) -> list:
        """(soc, change) of every CommitChange that made a SoC affected, in
        revision order."""
        order = {r.name: k for k, r in enumerate(self.revisions)}
        found = [(s.soc, c) for s in self.socs for c in s.changes
                 if isinstance(c, CommitChange) and c.new == AFFECTED]
        return sorted(found, key=lambda sc: (order[sc[1].commit], sc[0]))

    def new_since_first(self) -> list:
        """SoCs affected in the last revision and not in the first (what
        --fail-on-new exits 1 for)."""
        if not self.affected:
            return []
        # A SoC without a name (None) first, as the reports list it.
        return sorted(set(self.affected[-1]) - set(self.affected[0]),
                      key=lambda soc: (soc is not None, soc or ""))
