"""A sweep: the kernels' verdicts over a corpus, as the typed model
(auditor/model.py) that every report reads.

`sweep_corpus()` judges a corpus under its target kernel DTB by DTB:
what a DTB says is kept by its content (auditor/judged.py), and only the
DTBs without a kept judgement are flattened and judged by the kernels
(kernels/evaluate.py), CHUNK at a time, so that memory follows the chunk,
not the corpus; the Sweep is then built once from every DTB's records.  Building is linear in
links: the strings of a node (path, label, compatible) are made once per
node that a link names, the link records straight from the columns of the
kernels' table, the per-SoC summaries in one pass over the links.
"""
from __future__ import annotations

import dataclasses
import os
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from corpus.errors import UserError
from corpus.flat import dt_text
from kernels import codes, fdt_codes
from kernels.judging import Judging
from kernels.target import TargetError, TargetKernel

from .evidence import classify
from .model import (BrokenMaster, CorpusInfo, Diagnostic, Link, Links, Provider, SocSummary,
                    Sweep)


def target_of(corpus, judging: Judging) -> TargetKernel:
    """The target kernel a corpus is judged as: judging's, else the version
    of the tree it was built from, else the newest modelled (assumed).
    UserError names where a bad version came from."""
    where = getattr(corpus, "identity", None) or "the tree"
    try:
        return judging.target_of(getattr(corpus, "kernel_version", None), where)
    except TargetError as why:
        raise UserError(None, str(why)) from None


def flatten_corpus(corpus):
    """The flattened arrays of a corpus.build.Corpus: its boards and composites."""
    root = Path(corpus.root)
    paths = [root / e.dtb for e in corpus.boards]
    from corpus.flat import flatten
    return flatten(paths, root)


def sweep_corpus(corpus, judging: Judging = Judging()) -> Sweep:
    """The whole sweep of a corpus.build.Corpus under `judging`."""
    return judged_sweep(corpus, corpus.boards, target_of(corpus, judging), judging)


# Errors of reading, not of the bytes read: nothing to keep by content.
_READER_ERRORS = (fdt_codes.ERR_NOT_FILE, fdt_codes.ERR_READ, fdt_codes.ERR_TOO_BIG,
                  fdt_codes.ERR_NOT_FOUND)
# DTBs flattened and judged at once (about 8 MB of Debian 7.2's DTBs): memory follows it.
CHUNK = 128


def judged_sweep(corpus, entries, target, judging: Judging = Judging()) -> Sweep:
    """The Sweep of the boards `entries` of `corpus` under `target`: each
    DTB's records kept by its content are loaded (auditor/judged.py), the
    other DTBs flattened and judged CHUNK at a time, and their records kept."""
    from corpus.flat import flatten
    from kernels.evaluate import evaluate
    from store.digests import content_digests

    from . import judged
    root = Path(os.path.abspath(corpus.root))
    paths = [os.path.normpath(e.dtb) for e in entries]
    rule = judging.rule_under(target)
    key = judged.key(target, rule, judging.legacy_dt_bindings)
    digests = content_digests(root, paths)
    records, by_content, first = [], {}, {}
    where = str(judged.folder(key))
    for d, digest in enumerate(digests):
        if digest is not None and digest not in by_content:
            by_content[digest], first[digest] = judged.load(where, key, digest), d
        records.append(by_content.get(digest))
    # Each content judged once: a copy of a DTB takes its first's records.
    todo = [d for d, r in enumerate(records) if r is None
            and (digests[d] is None or first[digests[d]] == d)]
    saved = False
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start:start + CHUNK]
        flat = flatten([root / paths[d] for d in chunk], root, cache=False)
        made = _records(evaluate(flat, target, judging, cache=False))
        kept = {}
        for i, d in enumerate(chunk):
            records[d] = made[i]
            if int(flat.dtb_error[i]) not in _READER_ERRORS:
                # keyed by the very bytes judged (the file may have changed since it was hashed)
                kept[_sha256(flat.data[flat.dtb_data_off[i]:flat.dtb_data_off[i + 1]])] = made[i]
        saved = judged.save(key, kept) or saved
        del flat, made
    if saved:
        judged.prune_kept(key)
    for d, r in enumerate(records):
        if r is None:
            records[d] = records[first[digests[d]]]
    return _assembled(records, paths, target, rule, judging.legacy_dt_bindings, root, corpus)


def _sha256(data) -> str:
    import hashlib
    return hashlib.sha256(memoryview(data)).hexdigest()


# The fields of a Link a record keeps: all but those of the DTB (its path, board, SoC).
_LINK_FIELDS = Link._fields[3:]
_TUPLES = tuple(i for i, f in enumerate(_LINK_FIELDS) if f == "provider_compatible")


def _records(ev) -> list[dict]:
    """Each DTB's record of an Evaluation: its board and SoC, its links
    (without the DTB's path), its problems and its errors."""
    flat = ev.flat
    text = NodeText(flat)
    boards = root_compatibles(flat)
    index = {p: d for d, p in enumerate(flat.paths)}
    out = [{"board": b, "soc": s, "links": [], "problems": [], "errors": []} for b, s in boards]
    for link in _links(ev, text, boards):
        out[index[link.dtb]]["links"].append(list(link[3:]))
    for diag in _problems(ev, text):
        out[index[diag.dtb]]["problems"].append([diag.path, diag.message])
    for diag in _dtb_errors(flat):
        out[index[diag.dtb]]["errors"].append(diag.message)
    return out


def _assembled(records, paths, target, rule, legacy, root, corpus) -> Sweep:
    """The Sweep from each DTB's record, in the corpus's order: as
    build_sweep() makes it from one Evaluation of all of them."""
    links, problems, errors, boards = [], [], [], []
    for path, r in zip(paths, records):
        board, soc = r["board"], r["soc"]
        boards.append((board, soc))
        if not r.get("tuples"):   # once per content: the copies of a DTB share them
            for fields in r["links"]:
                for i in _TUPLES:
                    fields[i] = tuple(fields[i])
            r["tuples"] = True
        links.append((path, board, soc, r["links"]))
        problems += [Diagnostic(path, p, m) for p, m in r["problems"]]
        errors += [Diagnostic(path, None, m, "error") for m in r["errors"]]
    return _sweep_of(Links(links), problems + errors, paths, boards, target, rule, legacy,
                     root, corpus)


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
        return dt_text(self._data[o:o + int(self.flat.node_name_len[i])])

    def raw_path(self, i):
        """The node's path as the bytes its DTB holds (b"/soc/pcie@1f0000000")."""
        flat, names = self.flat, []
        while flat.node_parent[i] >= 0:
            o = int(flat.node_name_off[i])
            names.append(bytes(self._data[o:o + int(flat.node_name_len[i])]))
            i = int(flat.node_parent[i])
        return b"/" + b"/".join(reversed(names))

    def path(self, i):
        """"/soc/pcie@1f0000000"; None for -1 (no node)."""
        p = self._path.get(i)
        if p is None and i not in self._path:
            parent = int(self.flat.node_parent[i])
            p = "/" if parent < 0 else self.path(parent).rstrip("/") + "/" + self.name(i)
            self._path[i] = p
        return p

    def make_paths(self, nodes):
        """Make the paths of `nodes` (node numbers; -1 ignored) in bulk, for
        path() to find: every ancestor's name decoded once, parents before
        children (the layout's structure order)."""
        flat = self.flat
        todo = set(np.asarray(nodes).tolist()) - self._path.keys()
        frontier = todo
        while frontier:
            parents = flat.node_parent[np.fromiter(frontier, dtype=np.int64)]
            frontier = set(parents[parents >= 0].tolist()) - todo - self._path.keys()
            todo |= frontier
        order = np.array(sorted(todo), dtype=np.int64)
        data, path = self._data, self._path
        for i, parent, o, n in zip(order.tolist(), flat.node_parent[order].tolist(),
                                   flat.node_name_off[order].tolist(),
                                   flat.node_name_len[order].tolist()):
            path[i] = "/" if parent < 0 else \
                path[parent].rstrip("/") + "/" + dt_text(data[o:o + n])

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
            wanted.setdefault(self.raw_path(node) + b"\0", []).append(node)
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

def build_sweep(ev, corpus=None) -> Sweep:
    """The Sweep of an Evaluation (kernels/evaluate.py) of `corpus`'s DTBs."""
    flat = ev.flat
    text = NodeText(flat)
    boards = root_compatibles(flat)
    links = tuple(_links(ev, text, boards))
    return _sweep_of(links, _problems(ev, text) + _dtb_errors(flat), flat.paths, boards,
                     ev.target, ev.rule, ev.legacy_dt_bindings, flat.root, corpus)


def _sweep_of(links, more, paths, boards, target, rule, legacy, root, corpus) -> Sweep:
    """The Sweep of links and the other diagnostics `more` (problems, then errors)."""
    diagnostics = [Diagnostic(link.dtb, link.master_path, link.diagnostic)
                   for link in links if link.diagnostic]
    diagnostics += more
    locate = source_locator(corpus, diagnostics)
    socs = soc_summaries(links, paths, boards, locate)
    sweep = Sweep(
        rule=rule, target_kernel=target, target_assumed=target.assumed,
        legacy_dt_bindings=legacy,
        corpus=CorpusInfo(root=str(root), identity=getattr(corpus, "identity", None),
                          kernel_dir=_str_or_none(getattr(corpus, "kernel_dir", None)),
                          partial=bool(getattr(corpus, "partial", False))),
        links=links, socs=tuple(socs), diagnostics=tuple(diagnostics))
    # Each affected SMMU's evidence class from the DT and upstream's settled
    # cases; `--boot-logs` classifies again with the logs' word.
    return dataclasses.replace(sweep, evidence=classify(sweep))


def _str_or_none(value):
    return None if value is None else str(value)


def _links(ev, text, boards):
    """Link records built column by column from the kernels' table: each
    string made once per node, provider or code it names, then taken for
    every link at once; only the rare links with a note or a diagnostic
    are looked at one by one."""
    from kernels.evaluate import diagnostic_text
    table = ev.links
    n = table.shape[0]
    if n == 0:
        return []
    flat = ev.flat
    dtb, provider, master, via, kind, bridge = (
        table[c] for c in ("dtb", "provider", "master", "via", "kind", "bridge"))

    def taken(values, index):
        """values[index] for every link: index into an object array of strings."""
        column = np.empty(len(values), dtype=object)
        column[:] = values
        return column[index].tolist()

    def per_node(nodes, make, none=None):
        """make(node) for each link's node, made once per distinct node (-1: `none`)."""
        unique, inverse = np.unique(nodes, return_inverse=True)
        return taken([none if i < 0 else make(i) for i in unique.tolist()], inverse)

    providers = np.unique(provider)
    providers = providers[providers >= 0].tolist()
    labels = {}
    by_dtb = defaultdict(list)
    for node in providers:
        by_dtb[int(flat.node_dtb[node])].append(node)
    for d, nodes in by_dtb.items():
        labels.update(text.labels(d, nodes))
    text.make_paths(np.concatenate([provider, master, bridge]))
    has_provider = provider >= 0
    kind_names = taken(codes.KIND_NAMES, kind)
    vfio = np.isin(kind, [codes.KIND_NAMES.index(k) for k in codes.VFIO_KINDS]) \
        & ~table["bridge_function"]
    bridge_coherent = taken([None, False, True], np.where(
        via == codes.VIA_IOMMU_MAP, 1 + ev.coherent[np.maximum(bridge, 0)], 0))
    columns = dict(
        dtb=taken(flat.paths, dtb),
        board=taken([b for b, _ in boards], dtb), soc=taken([s for _, s in boards], dtb),
        provider_path=per_node(provider, text.path),
        provider_label=per_node(provider, labels.get),
        provider_compatible=per_node(provider, text.compatible, ()),
        driver=per_node(provider, lambda i: codes.DRIVER_NAMES.get(int(ev.role[i]), "unknown")),
        provider_enabled=(has_provider & ev.available[np.maximum(provider, 0)]).tolist(),
        provider_coherent=(has_provider & ev.coherent[np.maximum(provider, 0)]).tolist(),
        link=taken(codes.VIA_NAMES, via),
        master_path=per_node(master, text.path),
        master_kind=kind_names,
        master_enabled=table["enabled"].tolist(),
        master_dma_attr=taken(codes.DMA_ATTR_NAMES, ev.dma_attr),
        bridge_path=per_node(bridge, text.path),
        bridge_coherent=bridge_coherent,
        placeholder_map=(table["note"] == codes.N_PLACEHOLDER).tolist(),
        vfio_candidate=vfio.tolist(),
        rule=[ev.rule.value] * n,
        verdict=taken(codes.VERDICT_NAMES, ev.verdict),
        note=[None] * n,
        diagnostic=[None] * n,
    )
    noted = (table["attach"] != codes.ATTACHED) | (table["note"] != codes.N_NONE) \
        | (ev.target_note != codes.N_NONE)
    for k in np.flatnonzero(noted).tolist():
        attach, note, p = int(table["attach"][k]), int(table["note"][k]), int(provider[k])
        notes = []
        if attach != codes.ATTACHED:
            notes.append(codes.ATTACH_REASONS[attach].format(rid=int(table["rid"][k])))
            if attach == codes.A_NOT_PROBED and p >= 0:
                notes.append(codes.PROBE_STATES[codes.PROBE_STATE_NAMES[ev.probe_state[p]]])
        notes.append(codes.NOTES[note])
        notes.append(codes.NOTES[int(ev.target_note[k])])
        columns["note"][k] = "; ".join(n for n in notes if n) or None
    for k in np.flatnonzero(table["diag"] != codes.D_NONE).tolist():
        columns["diagnostic"][k] = diagnostic_text(ev, k, text.path)
    return list(map(Link._make, zip(*(columns[f] for f in Link._fields))))


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
    # One pass, each SoC's tallies made as its links come (the links are
    # made as read: holding them grouped would hold them all).
    tallies = {soc: _SocTally() for soc in soc_boards}
    for link in links:
        t = tallies.get(link.soc)
        if t is None:
            t = tallies[link.soc] = _SocTally()
        t.add(link)
    out = []
    for soc, t in tallies.items():
        smmus, masters, affected_boards = t.smmus, t.masters, t.affected_boards
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
            soc=soc, affected=bool(affected_boards), passthrough=t.passthrough,
            boards=tuple(sorted(soc_boards.get(soc, ()))),
            affected_boards=tuple(sorted(affected_boards)),
            providers=tuple(providers),
            broken_masters=tuple(BrokenMaster(m or None, k, v, tuple(sorted(ds)))
                                 for (m, k, v), ds in sorted(masters.items())),
            verdict_counts=dict(t.verdicts)))
    out.sort(key=lambda s: (not s.affected, not s.passthrough, -len(s.affected_boards),
                            s.soc or ""))
    return out


class _SocTally:
    """What soc_summaries() counts of one SoC's links."""

    def __init__(self):
        self.smmus = {}
        self.masters = defaultdict(set)
        self.affected_boards = set()
        self.passthrough = False
        self.verdicts = Counter()

    def add(self, link):
        self.verdicts[link.verdict] += 1
        affected = link.affected
        if affected:
            self.masters[(link.master_path or "", link.master_kind, link.verdict)].add(link.dtb)
            self.affected_boards.add(link.dtb)
            self.passthrough = self.passthrough or link.master_kind in codes.PASSTHROUGH_KINDS
        if link.provider_path is None or link.driver not in codes.SMMU_DRIVERS:
            return
        p = self.smmus.get(link.provider_path)
        if p is None:
            p = self.smmus[link.provider_path] = {
                "link": link, "label": link.provider_label, "affected": False,
                "dtbs": set(), "counts": Counter()}
        p["dtbs"].add(link.dtb)
        p["counts"][link.verdict] += 1
        p["affected"] = p["affected"] or affected
        p["label"] = p["label"] or link.provider_label


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
            except (UserError, OSError, KeyError) as why:
                cache[dtb] = {}
                diagnostics.append(Diagnostic(dtb, None, f"no source positions: {why}"))
        return cache[dtb].get(path)
    return locate
