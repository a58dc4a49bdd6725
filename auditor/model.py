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

import json
import os
from dataclasses import dataclass, field
from typing import NamedTuple

from corpus.errors import CorpusError
from kernels.codes import (BROKEN_VERDICTS, DMA_ATTR_NAMES, EVIDENCE_VERDICTS, KIND_NAMES,
                           RULE_NAMES, VERDICT_NAMES, VIA_NAMES)
from kernels.target import TargetError, TargetKernel

TOOL = "dtb-audit"
# 2: target_kernel, schema and typed fields; 1 (no "schema" key): before them.
SCHEMA = 2


class SweepFileError(CorpusError):
    """A saved document that is not a sweep this version can read."""


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
        """VFIO would be asked to bind it and refuses (SPEC section 4)."""
        return self.vfio_candidate and self.verdict in BROKEN_VERDICTS

    @property
    def key(self) -> tuple:
        return (self.dtb, self.provider_path, self.master_path, self.link)


# The fields of a link record in jsonl and csv, in order.
LINK_FIELDS = Link._fields[:-1]


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
        return f"{self.source_file}:{self.source_line}" if self.source_file else None


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
    rule: str
    target_kernel: str | None      # "6.12.117"; None in schema 1 documents
    target_assumed: bool           # nothing told the version: the newest modelled
    legacy_dt_bindings: bool
    corpus: CorpusInfo
    links: tuple = ()
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

    def evidence_of(self, soc, path):
        """The evidence.Evidence of SMMU `path` of `soc`, None when there is none."""
        return next((e for e in self.evidence if (e.soc, e.path) == (soc, path)), None)

    def to_json(self) -> dict:
        """The `--format json` document (keys in this order; "evidence" last,
        only when boot logs were read)."""
        doc = {
            "tool": self.tool,
            "schema": self.schema,
            "rule": self.rule,
            "target_kernel": self.target_kernel,
            "target_assumed": self.target_assumed,
            "legacy_dt_bindings": self.legacy_dt_bindings,
            "corpus": {"root": self.corpus.root, "identity": self.corpus.identity,
                       "kernel_dir": self.corpus.kernel_dir, "partial": self.corpus.partial},
            "links": [link_json(link) for link in self.links],
            "socs": [_soc_json(s) for s in self.socs],
            "diagnostics": [{"dtb": d.dtb, "path": d.path, "message": d.message,
                             "severity": d.severity} for d in self.diagnostics],
        }
        if self.evidence:
            doc["evidence"] = [e.to_json() for e in self.evidence]
        return doc


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


# -- reading a saved sweep -------------------------------------------------------

def load_sweep(path) -> Sweep:
    """The Sweep saved in `path` (`dtb-audit sweep --format json`); raises
    SweepFileError "path: error: why" for anything else."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            doc = json.load(f)
    except UnicodeDecodeError as why:
        raise SweepFileError(f"{name}: error: not a saved sweep (not UTF-8 text: {why.reason})") \
            from None
    except ValueError as why:
        raise SweepFileError(f"{name}: error: not a saved sweep (not JSON: {why})") from None
    except OSError as why:
        raise SweepFileError(f"{name}: error: cannot read: {why.strerror or why}") from None
    return sweep_from_json(doc, name)


def sweep_from_json(doc, name="<sweep>") -> Sweep:
    """A Sweep from a parsed JSON document, validated field by field."""
    if not isinstance(doc, dict):
        raise SweepFileError(f"{name}: error: not a dtb-audit sweep (the JSON is "
                             f"{_json_kind(doc)}, not an object)")
    if doc.get("tool") != TOOL:
        raise SweepFileError(f"{name}: error: not a dtb-audit sweep "
                             f"(write one with `dtb-audit sweep --format json`)")
    if "kind" in doc:
        raise SweepFileError(f"{name}: error: a dtb-audit {doc['kind']!s:.20} document, "
                             f"not a sweep (write one with `dtb-audit sweep --format json`)")
    schema = doc.get("schema", 1)
    if schema not in (1, SCHEMA):
        raise SweepFileError(f"{name}: error: sweep schema {schema!r:.20} is not one this "
                             f"version reads (1 or {SCHEMA}): sweep again")
    v = _Validator(name)
    corpus = v.obj(doc, "corpus", "sweep")
    sweep = Sweep(
        rule=v.choice(doc, "rule", RULE_NAMES, "sweep"),
        target_kernel=v.target(doc, "target_kernel", "sweep") if schema > 1 else None,
        target_assumed=v.boolean(doc, "target_assumed", "sweep") if schema > 1 else False,
        legacy_dt_bindings=v.boolean(doc, "legacy_dt_bindings", "sweep"),
        corpus=CorpusInfo(root=v.string(corpus, "root", "corpus"),
                          identity=v.opt_str(corpus, "identity", "corpus"),
                          kernel_dir=v.opt_str(corpus, "kernel_dir", "corpus"),
                          partial=v.boolean(corpus, "partial", "corpus") if schema > 1 else False),
        links=tuple(_link(v, r, f"links[{k}]") for k, r in enumerate(v.array(doc, "links", "sweep"))),
        socs=tuple(_soc(v, s, f"socs[{k}]") for k, s in enumerate(v.array(doc, "socs", "sweep"))),
        diagnostics=tuple(_diagnostic(v, d, f"diagnostics[{k}]", schema)
                          for k, d in enumerate(v.objects(doc, "diagnostics", "sweep"))),
        evidence=tuple(_evidence(v, e, f"evidence[{k}]")
                       for k, e in enumerate(v.objects(doc, "evidence", "sweep")))
        if "evidence" in doc else (),
        schema=schema)
    return sweep


def _evidence(v, e, where):
    from .evidence import CLASSES, Evidence, LogWord
    logs = []
    for k, w in enumerate(v.objects(e, "logs", where)):
        at = f"{where}.logs[{k}]"
        logs.append(LogWord(v.string(w, "log", at), v.strings(w, "boards", at),
                            v.opt_str(w, "kernel", at), v.opt_bool(w, "register_coherent", at)))
    return Evidence(v.opt_str(e, "soc", where), v.string(e, "path", where),
                    v.choice(e, "class", CLASSES, where), v.string(e, "reason", where),
                    tuple(logs))


def _link(v, r, where) -> Link:
    v.is_obj(r, where)
    return Link(
        dtb=v.string(r, "dtb", where), board=v.opt_str(r, "board", where),
        soc=v.opt_str(r, "soc", where), provider_path=v.opt_str(r, "provider_path", where),
        provider_label=v.opt_str(r, "provider_label", where),
        provider_compatible=v.strings(r, "provider_compatible", where),
        driver=v.opt_str(r, "driver", where), provider_enabled=v.boolean(r, "provider_enabled", where),
        provider_coherent=v.boolean(r, "provider_coherent", where),
        link=v.choice(r, "link", VIA_NAMES, where), master_path=v.opt_str(r, "master_path", where),
        master_kind=v.choice(r, "master_kind", KIND_NAMES, where),
        master_enabled=v.boolean(r, "master_enabled", where),
        master_dma_attr=v.choice(r, "master_dma_attr", DMA_ATTR_NAMES, where),
        bridge_path=v.opt_str(r, "bridge_path", where),
        bridge_coherent=v.opt_bool(r, "bridge_coherent", where),
        placeholder_map=v.boolean(r, "placeholder_map", where),
        vfio_candidate=v.boolean(r, "vfio_candidate", where),
        rule=v.choice(r, "rule", RULE_NAMES, where), verdict=v.choice(r, "verdict", VERDICT_NAMES, where),
        note=v.opt_str(r, "note", where), diagnostic=v.opt_str(r, "diagnostic", where, missing_ok=True))


def _diagnostic(v, d, where, schema) -> Diagnostic:
    return Diagnostic(v.string(d, "dtb", where), v.opt_str(d, "path", where),
                      v.string(d, "message", where),
                      v.choice(d, "severity", SEVERITIES, where) if schema > 1 else "warning")


def _soc(v, s, where) -> SocSummary:
    v.is_obj(s, where)
    providers = []
    for k, p in enumerate(v.array(s, "providers", where)):
        at = f"{where}.providers[{k}]"
        v.is_obj(p, at)
        line = p.get("source_line")
        if line is not None and (not isinstance(line, int) or isinstance(line, bool) or line < 1):
            v.fail(at, "source_line", "a line number")
        providers.append(Provider(
            path=v.string(p, "path", at), label=v.opt_str(p, "label", at),
            compatible=v.strings(p, "compatible", at), driver=v.string(p, "driver", at),
            coherent=v.boolean(p, "coherent", at), affected=v.boolean(p, "affected", at),
            source_file=v.tree_path(p, "source_file", at), source_line=line,
            dtbs=v.strings(p, "dtbs", at), verdict_counts=v.counts(p, "verdict_counts", at)))
    masters = []
    for k, m in enumerate(v.array(s, "broken_masters", where)):
        at = f"{where}.broken_masters[{k}]"
        v.is_obj(m, at)
        masters.append(BrokenMaster(v.opt_str(m, "path", at), v.choice(m, "kind", KIND_NAMES, at),
                                    v.choice(m, "verdict", VERDICT_NAMES, at), v.strings(m, "dtbs", at)))
    return SocSummary(
        soc=v.opt_str(s, "soc", where), affected=v.boolean(s, "affected", where),
        passthrough=v.boolean(s, "passthrough", where), boards=v.strings(s, "boards", where),
        affected_boards=v.strings(s, "affected_boards", where), providers=tuple(providers),
        broken_masters=tuple(masters), verdict_counts=v.counts(s, "verdict_counts", where))


def _json_kind(value) -> str:
    if value is None:
        return "null"
    return {list: "a list", str: "a string", bool: "a boolean"}.get(type(value), "a number")


class _Validator:
    """Field readers that raise SweepFileError naming the file and the field."""

    def __init__(self, name):
        self.name = name

    def fail(self, where, key, what):
        raise SweepFileError(f"{self.name}: error: not a valid sweep: {where}.{key} "
                             f"is not {what}")

    def is_obj(self, value, where):
        if not isinstance(value, dict):
            raise SweepFileError(f"{self.name}: error: not a valid sweep: {where} is not an object")

    def _get(self, obj, key, where, missing_ok=False):
        if key not in obj and not missing_ok:
            raise SweepFileError(f"{self.name}: error: not a valid sweep: {where} has no {key!r}")
        return obj.get(key)

    def string(self, obj, key, where):
        value = self._get(obj, key, where)
        if not isinstance(value, str):
            self.fail(where, key, "a string")
        return value

    def opt_str(self, obj, key, where, missing_ok=False):
        value = self._get(obj, key, where, missing_ok)
        if value is not None and not isinstance(value, str):
            self.fail(where, key, "a string or null")
        return value

    def target(self, obj, key, where):
        """A target kernel version (or null), read as --target-kernel is (kernels.target)."""
        value = self.opt_str(obj, key, where)
        if value is not None:
            try:
                TargetKernel.parse(value)
            except TargetError as why:
                raise SweepFileError(f"{self.name}: error: not a valid sweep: {where}.{key}: "
                                     f"{why}") from None
        return value

    def tree_path(self, obj, key, where):
        """A path relative to the kernel tree, or null: `patch` reads it, so
        nothing absolute and no `..` (a link out of the tree is refused where
        the tree is known: auditor.patch.dts.tree_file)."""
        value = self.opt_str(obj, key, where)
        if value is not None and (not value or value.startswith("/") or "\0" in value
                                  or ".." in value.split("/")):
            raise SweepFileError(f"{self.name}: error: not a valid sweep: {where}.{key} is not "
                                 f"a path inside the kernel tree: {value!r:.200}")
        return value

    def boolean(self, obj, key, where):
        value = self._get(obj, key, where)
        if not isinstance(value, bool):
            self.fail(where, key, "true or false")
        return value

    def opt_bool(self, obj, key, where):
        value = self._get(obj, key, where)
        if value is not None and not isinstance(value, bool):
            self.fail(where, key, "true, false or null")
        return value

    def choice(self, obj, key, names, where):
        value = self._get(obj, key, where)
        if value not in names:
            self.fail(where, key, "one of " + ", ".join(names))
        return value

    def array(self, obj, key, where):
        value = self._get(obj, key, where)
        if not isinstance(value, list):
            self.fail(where, key, "a list")
        return value

    def objects(self, obj, key, where):
        value = self.array(obj, key, where)
        for k, item in enumerate(value):
            self.is_obj(item, f"{where}.{key}[{k}]")
        return value

    def obj(self, obj, key, where):
        value = self._get(obj, key, where)
        self.is_obj(value, f"{where}.{key}")
        return value

    def strings(self, obj, key, where):
        value = self.array(obj, key, where)
        if not all(isinstance(s, str) for s in value):
            self.fail(where, key, "a list of strings")
        return tuple(value)

    def counts(self, obj, key, where):
        value = self._get(obj, key, where)
        if not isinstance(value, dict) or not all(
                k in VERDICT_NAMES and isinstance(n, int) and not isinstance(n, bool) and n >= 0
                for k, n in value.items()):
            self.fail(where, key, "verdict counts")
        return dict(value)

