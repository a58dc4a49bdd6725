"""The typed model of a sweep: what every report, `diff`, `history`,
`explain` and `patch` reads.

auditor/sweep.py builds a Sweep once from the kernels' arrays; a saved
sweep (`--format json`) comes back through `load_sweep()`, the one
validated way in, which refuses anything else with one line naming the
file and what is wrong.  Plain Python: reading a saved sweep loads no
numba.

Conventions: records are immutable (NamedTuple for the many links,
frozen dataclasses for the rest); names are the JSON document's keys;
lists in the JSON are tuples here.  Identities across sweeps: a SoC by its
compatible, a board by its DTB path, a link by `Link.key`, an SMMU by
(SoC, path).
"""
from __future__ import annotations

import bisect
import itertools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from corpus.errors import UserError
from store.kept import open_regular
from kernels.codes import BROKEN_VERDICTS, EVIDENCE_VERDICTS, Rule
from kernels.judging import Judging
from kernels.target import TargetError, TargetKernel

TOOL = "dtb-audit"
# 2: target_kernel, schema and typed fields; 1 (no "schema" key): before them.
SCHEMA = 2


class SweepFileError(UserError):
    """A saved document that is not a document of the kind this version reads."""


class Link(NamedTuple):
    """One (provider, master) link of one DTB and its verdict."""
    dtb: str
    board: str | None
    soc: str | None
    provider_path: str | None
    provider_label: str | None
    provider_compatible: tuple
    driver: str | None
    provider_enabled: bool
    provider_coherent: bool
    link: str                      # VIA_NAMES
    master_path: str | None
    master_kind: str               # KIND_NAMES
    master_enabled: bool
    master_dma_attr: str           # DMA_ATTR_NAMES
    bridge_path: str | None
    bridge_coherent: bool | None   # None unless the link is through an iommu-map
    placeholder_map: bool
    vfio_candidate: bool
    rule: str
    verdict: str                   # VERDICT_NAMES
    note: str | None
    diagnostic: str | None = None  # a problem of the DT at this link (not in jsonl/csv)

    @property
    def affected(self) -> bool:
        """VFIO would be asked to bind it and refuses (docs/rule.md)."""
        return self.vfio_candidate and self.verdict in BROKEN_VERDICTS

    @property
    def key(self) -> tuple:
        return (self.dtb, self.provider_path, self.master_path, self.link)


# The fields of a link record in jsonl and csv, in order.
LINK_FIELDS = Link._fields[:-1]


class Links(Sequence):
    """The links of a sweep, made when read from each DTB's records: a DTB
    that has the bytes of another (a copy in another corpus) shares its
    records, so memory follows the distinct DTBs, not the corpus.

    `boards` is one (dtb, board, soc, records) per DTB, records a list of
    each link's fields after those three (Link._fields[3:])."""

    __slots__ = ("_boards", "_ends")

    def __init__(self, boards):
        self._boards = tuple((dtb, board, soc, records) for dtb, board, soc, records in boards
                             if records)
        self._ends = tuple(itertools.accumulate(len(b[3]) for b in self._boards))

    def __len__(self):
        return self._ends[-1] if self._ends else 0

    def __iter__(self):
        for dtb, board, soc, records in self._boards:
            for fields in records:
                yield Link(dtb, board, soc, *fields)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return tuple(self)[k]
        n = len(self)
        if not -n <= k < n:
            raise IndexError("link index out of range")
        k %= n
        b = bisect.bisect_right(self._ends, k)
        dtb, board, soc, records = self._boards[b]
        return Link(dtb, board, soc, *records[k - (self._ends[b - 1] if b else 0)])

    def __eq__(self, other):
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None

    def __repr__(self):
        return f"Links({len(self)} links)"


@dataclass(frozen=True)
class Provider:
    """An SMMU (arm-smmu or arm-smmu-v3) node of a SoC, over its boards."""
    path: str
    label: str | None
    compatible: tuple
    driver: str
    coherent: bool
    affected: bool                 # a VFIO candidate behind it is broken*
    source_file: str | None        # where the node is written, when built from source
    source_line: int | None
    dtbs: tuple
    verdict_counts: dict

    @property
    def evidence(self) -> bool:
        """Some link says the node most likely lacks dma-coherent."""
        return any(self.verdict_counts.get(v) for v in EVIDENCE_VERDICTS)

    @property
    def where(self) -> str | None:
        """"FILE:LINE" where the node is written; "FILE" when no line is known."""
        if not self.source_file:
            return None
        return f"{self.source_file}:{self.source_line}" if self.source_line else self.source_file


@dataclass(frozen=True)
class BrokenMaster:
    path: str | None
    kind: str
    verdict: str
    dtbs: tuple


# How messages name a SoC whose DTBs have no root `compatible` (soc None).
NAMELESS = "?"


@dataclass(frozen=True)
class SocSummary:
    soc: str | None
    affected: bool
    passthrough: bool              # a PCI or fsl-mc candidate is broken
    boards: tuple
    affected_boards: tuple
    providers: tuple               # Provider
    broken_masters: tuple          # BrokenMaster
    verdict_counts: dict


SEVERITIES = ("warning", "error")


@dataclass(frozen=True)
class Diagnostic:
    """A problem of a DTB (`path` None: of the whole file, e.g. it does not parse)."""
    dtb: str
    path: str | None
    message: str
    severity: str = "warning"      # SEVERITIES


@dataclass(frozen=True)
class CorpusInfo:
    root: str
    identity: str | None
    kernel_dir: str | None
    partial: bool = False          # an interrupted build swept on purpose (--partial)


@dataclass(frozen=True)
class Sweep:
    rule: Rule
    target_kernel: TargetKernel | None   # None in schema 1 documents
    target_assumed: bool           # nothing told the version: the newest modelled
    legacy_dt_bindings: bool
    corpus: CorpusInfo
    links: Sequence = ()           # of Link: a tuple, or Links made as read
    socs: tuple = ()
    diagnostics: tuple = ()
    # evidence.Evidence of the affected SMMUs, when boot logs were read (--boot-logs).
    evidence: tuple = ()
    tool: str = field(default=TOOL)
    schema: int = field(default=SCHEMA)

    @property
    def name(self) -> str:
        return self.corpus.identity or self.corpus.root

    @property
    def affected(self) -> list:
        return [s for s in self.socs if s.affected]

    @property
    def target_text(self) -> str | None:
        """The target kernel as the documents write it ("6.12.117"; None: unknown)."""
        return None if self.target_kernel is None else str(self.target_kernel)

    @property
    def judging(self) -> Judging:
        """How to judge a tree as this sweep was judged (patch --verify):
        its target kernel (None: the tree's own), rule and bindings."""
        return Judging(self.target_kernel, self.rule, self.legacy_dt_bindings)

    def evidence_of(self, soc, path):
        """The evidence.Evidence of SMMU `path` of `soc`, None when there is none."""
        return next((e for e in self.evidence if (e.soc, e.path) == (soc, path)), None)

    def to_json(self, streamed=False) -> dict:
        """The `--format json` document (keys in this order; "evidence" last,
        only when boot logs were read); `streamed`: its links an iterator,
        made as written (auditor.output.dump_json)."""
        doc = {
            "tool": self.tool,
            "schema": self.schema,
            "rule": self.rule.value,
            "target_kernel": self.target_text,
            "target_assumed": self.target_assumed,
            "legacy_dt_bindings": self.legacy_dt_bindings,
            "corpus": {"root": self.corpus.root, "identity": self.corpus.identity,
                       "kernel_dir": self.corpus.kernel_dir, "partial": self.corpus.partial},
            "links": (map if streamed else _list_map)(link_json, self.links),
            "socs": [_soc_json(s) for s in self.socs],
            "diagnostics": [{"dtb": d.dtb, "path": d.path, "message": d.message,
                             "severity": d.severity} for d in self.diagnostics],
        }
        if self.evidence:
            doc["evidence"] = [e.to_json() for e in self.evidence]
        return doc


def _list_map(f, items) -> list:
    return [f(item) for item in items]


def link_json(link: Link, with_diagnostic=True) -> dict:
    out = dict(zip(Link._fields if with_diagnostic else LINK_FIELDS, link))
    out["provider_compatible"] = list(link.provider_compatible)
    return out


def _soc_json(s: SocSummary) -> dict:
    return {
        "soc": s.soc, "affected": s.affected, "passthrough": s.passthrough,
        "boards": list(s.boards), "affected_boards": list(s.affected_boards),
        "providers": [{"path": p.path, "label": p.label, "compatible": list(p.compatible),
                       "driver": p.driver, "coherent": p.coherent, "affected": p.affected,
                       "source_file": p.source_file, "source_line": p.source_line,
                       "dtbs": list(p.dtbs), "verdict_counts": dict(p.verdict_counts)}
                      for p in s.providers],
        "broken_masters": [{"path": m.path, "kind": m.kind, "verdict": m.verdict,
                            "dtbs": list(m.dtbs)} for m in s.broken_masters],
        "verdict_counts": dict(s.verdict_counts),
    }


# -- reading saved documents -------------------------------------------------------

def _read(path, what: str):
    """(name, the parsed JSON) of a saved document; SweepFileError when it
    cannot be read or is not JSON."""
    name = os.fspath(path)
    try:
        with open_regular(name) as f:    # a FIFO or a device is refused, not read
            return name, json.loads(f.read().decode("utf-8"))
    except UnicodeDecodeError as why:
        raise SweepFileError(name, f"not a {what} (not UTF-8 text: {why.reason})") from None
    except ValueError as why:
        raise SweepFileError(name, f"not a {what} (not JSON: {why})") from None
    except OSError as why:
        raise SweepFileError(name, f"cannot read: {why.strerror or why}") from None


def load_sweep(path) -> Sweep:
    """The Sweep saved in `path` (`dtb-audit sweep --format json`); raises
    SweepFileError naming the file and what is wrong for anything else."""
    name, doc = _read(path, "saved sweep")
    return sweep_from_json(doc, name)


def sweep_from_json(doc, name="<sweep>") -> Sweep:
    """A Sweep from a parsed JSON document, checked against its schema
    (auditor/schemas.py)."""
    from .evidence import Evidence, LogWord
    from .schemas import check, sweep_schema

    if not isinstance(doc, dict):
        raise SweepFileError(name, f"not a dtb-audit sweep (the JSON is "
                                   f"{_json_kind(doc)}, not an object)")
    if doc.get("tool") != TOOL:
        raise SweepFileError(name, "not a dtb-audit sweep "
                                   "(write one with `dtb-audit sweep --format json`)")
    if "kind" in doc:
        raise SweepFileError(name, f"a dtb-audit {doc['kind']!s:.20} document, "
                                   f"not a sweep (write one with `dtb-audit sweep --format json`)")
    schema = doc.get("schema", 1)
    if schema not in (1, SCHEMA):
        raise SweepFileError(name, f"sweep schema {schema!r:.20} is not one this "
                                   f"version reads (1 or {SCHEMA}): sweep again")
    check(doc, sweep_schema(schema), name, "not a valid sweep", "sweep", SweepFileError)
    target = None
    if schema > 1 and doc["target_kernel"] is not None:
        try:
            target = TargetKernel.parse(doc["target_kernel"], assumed=doc["target_assumed"])
        except TargetError as why:
            raise SweepFileError(name, f"not a valid sweep: sweep.target_kernel: {why}") \
                from None
    corpus = doc["corpus"]
    return Sweep(
        rule=Rule(doc["rule"]),
        target_kernel=target,
        target_assumed=doc["target_assumed"] if schema > 1 else False,
        legacy_dt_bindings=doc["legacy_dt_bindings"],
        corpus=CorpusInfo(corpus["root"], corpus["identity"], corpus["kernel_dir"],
                          corpus.get("partial", False)),
        links=tuple(Link._make(tuple(r[f]) if f == "provider_compatible" else r.get(f)
                               for f in Link._fields) for r in doc["links"]),
        socs=tuple(_soc(s) for s in doc["socs"]),
        diagnostics=tuple(Diagnostic(d["dtb"], d["path"], d["message"],
                                     d.get("severity", "warning")) for d in doc["diagnostics"]),
        evidence=tuple(Evidence(e["soc"], e["path"], e["class"], e["reason"],
                                tuple(LogWord(w["log"], tuple(w["boards"]), w["kernel"],
                                              w["register_coherent"]) for w in e["logs"]))
                       for e in doc.get("evidence", ())),
        schema=schema)


def _soc(s) -> SocSummary:
    return SocSummary(
        soc=s["soc"], affected=s["affected"], passthrough=s["passthrough"],
        boards=tuple(s["boards"]), affected_boards=tuple(s["affected_boards"]),
        providers=tuple(Provider(
            path=p["path"], label=p["label"], compatible=tuple(p["compatible"]),
            driver=p["driver"], coherent=p["coherent"], affected=p["affected"],
            source_file=p["source_file"], source_line=p["source_line"], dtbs=tuple(p["dtbs"]),
            verdict_counts=dict(p["verdict_counts"])) for p in s["providers"]),
        broken_masters=tuple(BrokenMaster(m["path"], m["kind"], m["verdict"], tuple(m["dtbs"]))
                             for m in s["broken_masters"]),
        verdict_counts=dict(s["verdict_counts"]))


def _json_kind(value) -> str:
    if value is None:
        return "null"
    return {list: "a list", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def load_history(path):
    """The History of saved sweeps in `path` (`dtb-audit history SWEEP.json...
    --format json`), checked against its schema; SweepFileError otherwise."""
    from .documents import History, Revision, SocLine, VersionChange
    from .schemas import check, history_schema

    name, doc = _read(path, "history document")
    if not isinstance(doc, dict) or doc.get("tool") != TOOL or doc.get("kind") != History.KIND:
        raise SweepFileError(name, "not a history document (write one with "
                                   "`dtb-audit history SWEEP.json... --format json`)")
    if "revisions" in doc:
        raise SweepFileError(name, "a history of git commits (--git): give the "
                                   "history of saved sweeps")
    versions = doc.get("versions")
    check(doc, history_schema(len(versions) if isinstance(versions, list) else 0), name,
          "not a valid history document", None, SweepFileError)
    targets = []
    for k, text in enumerate(doc["target_kernels"]):
        try:
            targets.append(None if text is None else TargetKernel.parse(text))
        except TargetError as why:
            raise SweepFileError(name, f"not a valid history document: target_kernels[{k}]: "
                                       f"{why}") from None
    rules = [None if r is None else Rule(r) for r in doc["rules"]]
    return History(
        tuple(Revision(v, t, r) for v, t, r in zip(doc["versions"], targets, rules)),
        tuple(SocLine(row["soc"], tuple(VersionChange(**c) for c in row["changes"]),
                      tuple(row["verdicts"]), tuple(row["smmu"])) for row in doc["socs"]))
