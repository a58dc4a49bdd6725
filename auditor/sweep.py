"""A sweep: the kernels' verdicts over a corpus, as the typed model
(auditor/model.py) that every report reads.

`sweep_corpus()` flattens a corpus, judges it under its target kernel
(kernels/evaluate.py) and builds the Sweep once.  Building is linear in
links: the strings of a node (path, label, compatible) are made once per
node that a link names, the link records straight from the columns of the
kernels' table, the per-SoC summaries in one pass over the links.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from corpus.errors import CorpusError
from kernels import codes
from kernels.target import TargetError, TargetKernel

from .model import (BrokenMaster, CorpusInfo, Diagnostic, Link, Provider, SocSummary, Sweep)


def target_for(corpus=None, given=None) -> TargetKernel:
    """The target kernel: `given` (--target-kernel), else the version of the
    tree the corpus was built from, else the newest modelled (assumed)."""
    try:
        if given:
            return TargetKernel.parse(given)
        version = getattr(corpus, "kernel_version", None)
        if version:
            return TargetKernel.parse(version)
    except TargetError as why:
        raise CorpusError(f"--target-kernel: {why}") from None
    return TargetKernel.newest()


def flatten_corpus(corpus):
    """The flattened arrays of a corpus.build.Corpus: its boards and composites."""
    root = Path(corpus.root)
    paths = [root / e.dtb for e in corpus.boards]
    from corpus.flat import flatten
    return flatten(paths, root)


def sweep_corpus(corpus, target=None, rule=None, legacy_dt_bindings=True, flat=None) -> Sweep:
    """The whole sweep of a corpus.build.Corpus.  target: a TargetKernel
    (default: target_for(corpus)); rule: a RULES id overriding the target's."""
    target = target or target_for(corpus)
    flat = flat if flat is not None else flatten_corpus(corpus)
    from kernels.evaluate import evaluate
    ev = evaluate(flat, target, rule, legacy_dt_bindings)
    return build_sweep(ev, corpus, legacy_dt_bindings)


# -- strings of nodes ------------------------------------------------------------

class NodeText:
    """Per-node strings, each computed once and only for nodes asked for."""

    def __init__(self, flat):
        self.flat = flat
        self._data = memoryview(flat.data)
        self._path = {-1: None}
        self._compatible = {}

    def name(self, i):
        """The node's full name ("pcie@1f0000000"; "" for a root)."""
        o = int(self.flat.node_name_off[i])
        # latin-1: one character per byte, whatever the DTB holds (text.shown escapes).
        return str(self._data[o:o + int(self.flat.node_name_len[i])], "latin-1")

    def path(self, i):
        """"/soc/pcie@1f0000000"; None for -1 (no node)."""
        p = self._path.get(i)
        if p is None and i not in self._path:
            parent = int(self.flat.node_parent[i])
            p = "/" if parent < 0 else self.path(parent).rstrip("/") + "/" + self.name(i)
            self._path[i] = p
        return p

    def compatible(self, i):
        c = self._compatible.get(i)
        if c is None:
            c = self._compatible[i] = tuple(self.flat.strings(i, "compatible"))
        return c

    def labels(self, d, nodes):
        """{node: label} for `nodes` of DTB d, from its /__symbols__ (dtc -@):
        only the symbols whose value has the length of a wanted path are read."""
        flat = self.flat
        start, end = int(flat.dtb_node_start[d]), int(flat.dtb_node_start[d + 1])
        if start == end:
            return {}
        # Top-level nodes named "__symbols__": by length first, then by bytes.
        top = start + np.flatnonzero((flat.node_depth[start:end] == 1)
                                     & (flat.node_name_len[start:end] == len(SYMBOLS)))
        symbols = next((int(i) for i in top if self.name(int(i)) == SYMBOLS), None)
        if symbols is None:
            return {}
        wanted = {}
        for node in nodes:
            wanted.setdefault(self.path(node).encode("latin-1") + b"\0", []).append(node)
        first, last = int(flat.node_prop_start[symbols]), int(flat.node_prop_start[symbols + 1])
        lengths = flat.prop_val_len[first:last]
        out = {}
        for p in first + np.flatnonzero(np.isin(lengths, [len(w) for w in wanted])):
            for node in wanted.get(flat.prop_value(int(p)), ()):
                out.setdefault(node, flat.prop_names[flat.prop_name[p]])
        return out


SYMBOLS = "__symbols__"


def root_compatibles(flat):
    """(board, soc) of every DTB: the first and last root `compatible`."""
    out = []
    for d in range(flat.n_dtb):
        c = flat.root_compatible(d)
        out.append((c[0], c[-1]) if c else (None, None))
    return out


# -- the model from the arrays ----------------------------------------------------

def build_sweep(ev, corpus=None, legacy_dt_bindings=True) -> Sweep:
    """The Sweep of an Evaluation (kernels/evaluate.py) of `corpus`'s DTBs."""
    flat = ev.flat
    text = NodeText(flat)
    boards = root_compatibles(flat)
    links = tuple(_links(ev, text, boards))
    diagnostics = [Diagnostic(link.dtb, link.master_path, link.diagnostic)
                   for link in links if link.diagnostic]
    diagnostics += _problems(ev, text)
    diagnostics += _dtb_errors(flat)
    locate = source_locator(corpus, diagnostics)
    socs = soc_summaries(links, flat.paths, boards, locate)
    target = ev.target
    return Sweep(
        rule=codes.RULE_NAMES[ev.rule], target_kernel=str(target), target_assumed=target.assumed,
        legacy_dt_bindings=legacy_dt_bindings,
        corpus=CorpusInfo(root=str(flat.root), identity=getattr(corpus, "identity", None),
                          kernel_dir=_str_or_none(getattr(corpus, "kernel_dir", None)),
                          partial=bool(getattr(corpus, "partial", False))),
        links=links, socs=tuple(socs), diagnostics=tuple(diagnostics))


def document(ev, corpus=None, legacy_dt_bindings=True) -> dict:
    """The JSON document of an Evaluation (what `--format json` writes)."""
    return build_sweep(ev, corpus, legacy_dt_bindings).to_json()


def _str_or_none(value):
    return None if value is None else str(value)


def _links(ev, text, boards):
    """Link records straight from the columns of the kernels' table; what
    belongs to a provider is made once per provider."""
    from kernels.codes import (L_ATTACH, L_BRIDGE, L_BRIDGE_FUNCTION, L_DIAG, L_DIAG_ARG, L_DTB,
                               L_ENABLED, L_KIND, L_MASTER, L_NOTE, L_PROVIDER, L_RID, L_VIA)
    from kernels.evaluate import diagnostic_text
    table = ev.links
    if table.shape[0] == 0:
        return
    flat = ev.flat
    providers = np.unique(table[:, L_PROVIDER])
    providers = providers[providers >= 0].tolist()
    labels = {}
    by_dtb = defaultdict(list)
    for node in providers:
        by_dtb[int(flat.node_dtb[node])].append(node)
    for d, nodes in by_dtb.items():
        labels.update(text.labels(d, nodes))
    # (path, label, compatible, driver, enabled, coherent) of each provider; -1: none.
    provider_fields = {-1: (None, None, (), None, False, False)}
    for node in providers:
        provider_fields[node] = (
            text.path(node), labels.get(node), text.compatible(node),
            codes.DRIVER_NAMES.get(int(ev.role[node]), "unknown"),
            bool(ev.available[node]), bool(ev.coherent[node]))
    rule_name = codes.RULE_NAMES[ev.rule]
    coherent, probe_state = ev.coherent, ev.probe_state
    columns = [table[:, c].tolist() for c in (L_DTB, L_PROVIDER, L_MASTER, L_VIA, L_KIND,
                                               L_BRIDGE, L_BRIDGE_FUNCTION, L_ENABLED,
                                               L_ATTACH, L_NOTE, L_DIAG, L_DIAG_ARG, L_RID)]
    verdicts = [codes.VERDICT_NAMES[v] for v in ev.verdict.tolist()]
    attrs = [codes.DMA_ATTR_NAMES[a] for a in ev.dma_attr.tolist()]
    target_notes = ev.target_note.tolist()
    paths, path = flat.paths, text.path
    for k, (d, provider, master, via, kind, bridge, bridge_fn, enabled, attach, note, diag,
            diag_arg, rid) in enumerate(zip(*columns)):
        notes = []
        if attach != codes.ATTACHED:
            notes.append(codes.ATTACH_REASONS[attach].format(rid=rid))
            if attach == codes.A_NOT_PROBED and provider >= 0:
                notes.append(codes.PROBE_STATES[codes.PROBE_STATE_NAMES[probe_state[provider]]])
        if note != codes.N_NONE:
            notes.append(codes.NOTES[note])
        if target_notes[k] != codes.N_NONE:
            notes.append(codes.NOTES[target_notes[k]])
        kind_name = codes.KIND_NAMES[kind]
        board, soc = boards[d]
        p_path, p_label, p_compatible, p_driver, p_enabled, p_coherent = provider_fields[provider]
        yield Link(
            dtb=paths[d], board=board, soc=soc,
            provider_path=p_path, provider_label=p_label, provider_compatible=p_compatible,
            driver=p_driver, provider_enabled=p_enabled, provider_coherent=p_coherent,
            link=codes.VIA_NAMES[via],
            master_path=path(master),
            master_kind=kind_name, master_enabled=bool(enabled),
            master_dma_attr=attrs[k],
            bridge_path=path(bridge),
            bridge_coherent=bool(coherent[bridge]) if via == codes.VIA_IOMMU_MAP else None,
            placeholder_map=note == codes.N_PLACEHOLDER,
            vfio_candidate=kind_name in codes.VFIO_KINDS and not bridge_fn,
            rule=rule_name, verdict=verdicts[k],
            note="; ".join(n for n in notes if n) or None,
            diagnostic=None if diag == codes.D_NONE else diagnostic_text(ev, k, path))


def _problems(ev, text):
    """Problems of a DTB as a whole (a DMA-parent loop, duplicate phandles,
    too many links): one diagnostic each."""
    from kernels.codes import PR_DTB, PR_NODE
    from kernels.evaluate import problem_text
    return [Diagnostic(ev.flat.paths[int(row[PR_DTB])],
                       text.path(int(row[PR_NODE])) if row[PR_NODE] >= 0 else None,
                       problem_text(ev, i, text.path))
            for i, row in enumerate(ev.problems)]


def _dtb_errors(flat):
    from kernels.fdt_codes import ERR_MESSAGES
    out = []
    for d in np.flatnonzero(flat.dtb_error).tolist():
        code = int(flat.dtb_error[d])
        out.append(Diagnostic(flat.paths[d], None,
                              f"{ERR_MESSAGES.get(code, f'error {code}')} "
                              f"(at offset {int(flat.dtb_error_off[d])})", "error"))
    return out


# -- per SoC ---------------------------------------------------------------------

def soc_summaries(links, paths, boards, locate=None):
    """Per SoC: boards, SMMUs, broken masters, verdict counts, in one pass
    over the links; affected SoCs first, those with a broken PCI or fsl-mc
    device before the rest, then by affected boards."""
    soc_boards = defaultdict(list)
    for d, (_, soc) in enumerate(boards):
        if soc is not None:
            soc_boards[soc].append(paths[d])
    grouped = {soc: [] for soc in soc_boards}
    for link in links:
        grouped.setdefault(link.soc, []).append(link)
    out = []
    for soc, soc_links in grouped.items():
        smmus = {}
        masters = defaultdict(set)
        affected_boards = set()
        passthrough = False
        for link in soc_links:
            affected = link.affected
            if affected:
                masters[(link.master_path or "", link.master_kind, link.verdict)].add(link.dtb)
                affected_boards.add(link.dtb)
                passthrough = passthrough or link.master_kind in codes.PASSTHROUGH_KINDS
            if link.provider_path is None or link.driver not in codes.SMMU_DRIVERS:
                continue
            p = smmus.get(link.provider_path)
            if p is None:
                p = smmus[link.provider_path] = {
                    "link": link, "label": link.provider_label, "affected": False,
                    "dtbs": set(), "counts": Counter()}
            p["dtbs"].add(link.dtb)
            p["counts"][link.verdict] += 1
            p["affected"] = p["affected"] or affected
            p["label"] = p["label"] or link.provider_label
        providers = []
        for path, p in smmus.items():
            first = p["link"]
            dtbs = tuple(sorted(p["dtbs"]))
            counts = dict(p["counts"])
            where = (None, None)
            evidence = any(counts.get(v) for v in codes.EVIDENCE_VERDICTS)
            if locate is not None and (p["affected"] or evidence):
                where = locate(dtbs[0], path) or (None, None)
            providers.append(Provider(
                path=path, label=p["label"], compatible=first.provider_compatible,
                driver=first.driver, coherent=first.provider_coherent, affected=p["affected"],
                source_file=where[0], source_line=where[1], dtbs=dtbs, verdict_counts=counts))
        out.append(SocSummary(
            soc=soc, affected=bool(affected_boards), passthrough=passthrough,
            boards=tuple(sorted(soc_boards.get(soc, ()))),
            affected_boards=tuple(sorted(affected_boards)),
            providers=tuple(providers),
            broken_masters=tuple(BrokenMaster(m or None, k, v, tuple(sorted(ds)))
                                 for (m, k, v), ds in sorted(masters.items())),
            verdict_counts=dict(Counter(link.verdict for link in soc_links))))
    out.sort(key=lambda s: (not s.affected, not s.passthrough, -len(s.affected_boards),
                            s.soc or ""))
    return out


def source_locator(corpus, diagnostics):
    """(dtb, node path) -> (.dtsi file, line) where the node is written, when
    the corpus was built from a kernel tree; None otherwise.  A board whose
    sources cannot be read adds a diagnostic and reports without lines."""
    if corpus is None or getattr(corpus, "kernel_dir", None) is None:
        return None
    from corpus.build import source_positions
    entries = {e.dtb: e for e in corpus.entries}
    cache = {}

    def locate(dtb, path):
        if dtb not in cache:
            try:
                cache[dtb] = source_positions(corpus, entries[dtb])
            except (CorpusError, OSError, KeyError) as why:
                cache[dtb] = {}
                diagnostics.append(Diagnostic(dtb, None, f"no source positions: {why}"))
        return cache[dtb].get(path)
    return locate
