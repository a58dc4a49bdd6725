"""A sweep: the rule over every link of a flattened corpus, and the document
that reports it.

`evaluate()` is the compute path (arrays in, arrays out: what bench/ times);
`sweep()` turns a corpus into the JSON-able document that every output
format, `diff`, `history` and `patch` read:

  {"tool", "rule", "legacy_dt_bindings", "corpus": {"root", "identity", "kernel_dir"},
   "links": [one record per link, fields LINK_FIELDS],
   "socs": [per SoC: "soc", "affected", "passthrough" (a PCI or fsl-mc
            candidate is broken), "boards", "affected_boards", "providers"
            (path, label, compatible, driver, coherent, affected, source_file,
            source_line, dtbs, verdict_counts), "broken_masters" (path, kind,
            verdict, dtbs), "verdict_counts"],
   "diagnostics": [{"dtb", "path", "message"}]}
"""
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpus.flat import flatten
from kernels import coherency, dt, links, providers, rule

LINK_FIELDS = (
    "dtb", "board", "soc", "provider_path", "provider_label", "provider_compatible",
    "driver", "provider_enabled", "provider_coherent", "link", "master_path",
    "master_kind", "master_enabled", "master_dma_attr", "bridge_path", "bridge_coherent",
    "placeholder_map", "vfio_candidate", "rule", "verdict", "note",
)
VIA_NAMES = ("iommus", "iommu-map", "mmu-masters")
KIND_NAMES = ("platform", "pci-dt-child", "pci-discovered", "fsl-mc", "host1x-context",
              "gpcdma-channel", "cdx")
# What people pass through, most wanted first (SPEC section 4).
PASSTHROUGH_KINDS = {"pci-dt-child", "pci-discovered", "fsl-mc", "cdx"}
BROKEN = {"broken", "broken-bridge-coherent"}

NOTES = {
    links.N_PLACEHOLDER: "placeholder iommu-map (every entry has length 0): firmware fills it in at boot",
    links.N_GUESSED_BUS: "below a root port: bus number guessed from reg",
    links.N_GUESS_UNMATCHED: "below a root port: guessed requester ID in no iommu-map entry; judged against the map's providers",
    links.N_TRUNCATED: "iommus parsing stopped at a malformed entry; earlier entries stand",
}
ATTACH_REASONS = {
    links.A_PROVIDER_DISABLED: "the IOMMU node is disabled",
    links.A_NOT_PROBED: "the IOMMU driver does not probe",
    links.A_BAD_ENTRY: "the first iommus entry does not parse",
    links.A_OTHER_DRIVER: "an iommus entry names an IOMMU of another driver (-EINVAL)",
    links.A_UNCOVERED_ID: "requester ID {rid:#06x} is in no iommu-map entry",
    links.A_BAD_MAP: "the iommu-map is malformed",
    links.A_NO_TARGET: "an iommu-map phandle points nowhere",
    links.A_LEGACY_UNSUPPORTED: "mmu-masters needs CONFIG_ARM_SMMU_LEGACY_DT_BINDINGS",
    links.A_LEGACY_SYSTEM: "the arm-smmu driver runs the legacy mmu-masters binding; iommus is ignored",
    links.A_NOT_A_PROVIDER: "the iommus target is not an IOMMU",
}
PROBE_REASONS = {
    providers.PROVIDER_DISABLED: "disabled (status, or a disabled ancestor)",
    providers.NO_GLOBAL_INTERRUPTS: "missing #global-interrupts property: arm-smmu does not probe",
    providers.BAD_IOMMU_CELLS: "#iommu-cells is not 1: arm-smmu-v3 does not probe",
    providers.MISMATCHED_BINDING: "not probing due to mismatched DT properties (mmu-masters vs iommus)",
}
DIAGNOSTICS = {
    links.D_PHANDLE_NOWHERE: "{prop}: phandle {arg:#x} points nowhere",
    links.D_NO_IOMMU_CELLS: "{prop}: target {target} has no {cells}",
    links.D_SHORT_LIST: "{prop}: arguments run past the end of the property",
    links.D_EMPTY_ENTRY: "{prop}: empty entry (phandle 0)",
    links.D_MAP_LENGTH: "iommu-map: length {arg} bytes is not a non-zero multiple of 16",
    links.D_MAP_MASK: "iommu-map: id-base {arg:#x} is outside iommu-map-mask",
    links.D_MIXED_DRIVERS: "iommus: entry for {target} is of another IOMMU driver than the first",
}


@dataclass
class Evaluation:
    """The arrays of one sweep; row k of every per-link array is link k."""
    flat: object
    rule: int
    links: np.ndarray          # int64[n_links, len(kernels.links.FIELDS)]
    dma_attr: np.ndarray       # int8[n_links]
    verdict: np.ndarray        # int8[n_links]
    role: np.ndarray           # int8[n_nodes]
    probe_state: np.ndarray    # int8[n_nodes]
    coherent: np.ndarray       # bool[n_nodes]
    coherent_why: np.ndarray   # int8[n_nodes]
    coherent_from: np.ndarray  # int64[n_nodes]
    own_ok: np.ndarray         # bool[n_nodes]
    available: np.ndarray      # bool[n_nodes]

    @property
    def rule_name(self):
        return rule.RULES[self.rule]


_TABLE = providers.compatible_table()


def evaluate(flat, rule_name="walk-or-device", legacy_dt_bindings=True):
    """The rule over all links of a flattened corpus, all in numba kernels."""
    t = dt.tree_of(flat)
    own_ok, available = coherency.availability(t)
    coherent, why, source = coherency.coherency(t)
    role, driver = providers.roles(t, *_TABLE)
    state, legacy = providers.probe(t, role, available)
    out = np.empty((max(1024, flat.node_parent.shape[0] // 4), len(links.FIELDS)), dtype=np.int64)
    while True:
        n = links.find_links(t, role, driver, state, own_ok, available, legacy,
                             legacy_dt_bindings, out)
        if n <= out.shape[0]:
            break
        out = np.empty((n, len(links.FIELDS)), dtype=np.int64)
    table = out[:n]
    attr = rule.dma_attr(table, coherent)
    code = rule.RULES.index(rule_name)
    verdict = rule.verdicts(table, attr, role, coherent, code)
    return Evaluation(flat, code, table, attr, verdict, role, state, coherent, why, source,
                      own_ok, available)


def flatten_corpus(corpus):
    """The flattened arrays of a corpus.build.Corpus: its boards and composites."""
    root = Path(corpus.root)
    return flatten([root / e.dtb for e in corpus.boards], root)


class _Names:
    """Per-node strings, computed once per node that a report mentions."""

    def __init__(self, flat):
        self.flat = flat
        self._path = {}
        self._labels = {}
        self._compatible = {}

    def path(self, i):
        if i < 0:
            return None
        p = self._path.get(i)
        if p is None:
            p = self._path[i] = self.flat.node_path(i)
        return p

    def compatible(self, i):
        c = self._compatible.get(i)
        if c is None:
            c = self._compatible[i] = self.flat.strings(i, "compatible")
        return c

    def label(self, i):
        """The node's label from /__symbols__ (dtc -@), when the DTB has one."""
        d = int(self.flat.node_dtb[i])
        labels = self._labels.get(d)
        if labels is None:
            labels = self._labels[d] = symbols(self.flat, d)
        return labels.get(self.path(i))


def symbols(flat, d):
    """path -> label, from the DTB's /__symbols__ node."""
    start, end = flat.dtb_node_start[d], flat.dtb_node_start[d + 1]
    for i in range(start + 1, end):
        if flat.node_depth[i] == 1 and flat.node_name(i) == "__symbols__":
            out = {}
            for p in range(flat.node_prop_start[i], flat.node_prop_start[i + 1]):
                path = flat.prop_value(p).rstrip(b"\0").decode("utf-8", "replace")
                out.setdefault(path, flat.prop_names[flat.prop_name[p]])
            return out
    return {}


def link_records(ev, names):
    """One dict per link, with the fields of LINK_FIELDS (and `diagnostic`)."""
    flat = ev.flat
    rule_name = ev.rule_name
    boards = {}
    records = []
    for k, row in enumerate(ev.links.tolist()):
        (d, provider, master, via, kind, bridge, bridge_fn, enabled, attach, note,
         diag, diag_arg, rid) = row
        if d not in boards:
            compatible = flat.root_compatible(d)
            boards[d] = (compatible[0] if compatible else None,
                         compatible[-1] if compatible else None)
        board, soc = boards[d]
        kind_name = KIND_NAMES[kind]
        verdict = rule.VERDICTS[ev.verdict[k]]
        notes = []
        if attach != links.ATTACHED:
            notes.append(ATTACH_REASONS[attach].format(rid=rid))
            if attach == links.A_NOT_PROBED and provider >= 0:
                notes.append(PROBE_REASONS.get(int(ev.probe_state[provider]), ""))
        if note != links.N_NONE:
            notes.append(NOTES[note])
        role = int(ev.role[provider]) if provider >= 0 else providers.NONE
        records.append({
            "dtb": flat.paths[d],
            "board": board,
            "soc": soc,
            "provider_path": names.path(provider),
            "provider_label": names.label(provider) if provider >= 0 else None,
            "provider_compatible": names.compatible(provider) if provider >= 0 else [],
            "driver": providers.DRIVER_NAMES.get(role, "unknown") if provider >= 0 else None,
            "provider_enabled": bool(ev.available[provider]) if provider >= 0 else False,
            "provider_coherent": bool(ev.coherent[provider]) if provider >= 0 else False,
            "link": VIA_NAMES[via],
            "master_path": names.path(master),
            "master_kind": kind_name,
            "master_enabled": bool(enabled),
            "master_dma_attr": rule.DMA_ATTRS[ev.dma_attr[k]],
            "bridge_path": names.path(bridge),
            "bridge_coherent": bool(ev.coherent[bridge]) if via == links.VIA_IOMMU_MAP else None,
            "placeholder_map": note == links.N_PLACEHOLDER,
            "vfio_candidate": kind_name not in ("host1x-context", "gpcdma-channel") and not bridge_fn,
            "rule": rule_name,
            "verdict": verdict,
            "note": "; ".join(n for n in notes if n) or None,
            "diagnostic": diagnostic(names, via, diag, diag_arg, master),
        })
    return records


def diagnostic(names, via, diag, arg, master):
    if diag == links.D_NONE:
        return None
    prop = VIA_NAMES[via]
    cells = "#stream-id-cells" if via == links.VIA_MMU_MASTERS else "#iommu-cells"
    target = names.path(arg) if diag in (links.D_NO_IOMMU_CELLS, links.D_MIXED_DRIVERS) else None
    return DIAGNOSTICS[diag].format(prop=prop, arg=arg, target=target, cells=cells)


def soc_summaries(records, ev, names, positions=None):
    """Per SoC: boards, providers, broken masters, verdict counts; affected
    SoCs first, those with a broken PCI or fsl-mc device before the rest."""
    boards = defaultdict(set)
    for d in range(ev.flat.n_dtb):
        compatible = ev.flat.root_compatible(d)
        if compatible:
            boards[compatible[-1]].add(ev.flat.paths[d])
    by_soc = {soc: [] for soc in boards}
    for r in records:
        by_soc.setdefault(r["soc"], []).append(r)
    socs = []
    for soc, recs in by_soc.items():
        broken = [r for r in recs if r["vfio_candidate"] and r["verdict"] in BROKEN]
        providers_ = {}
        for r in recs:
            if r["provider_path"] is None or r["driver"] not in ("arm-smmu", "arm-smmu-v3"):
                continue
            p = providers_.setdefault(r["provider_path"], {
                "path": r["provider_path"], "label": r["provider_label"],
                "compatible": r["provider_compatible"], "driver": r["driver"],
                "coherent": r["provider_coherent"], "affected": False,
                "source_file": None, "source_line": None,
                "dtbs": set(), "verdict_counts": Counter()})
            p["dtbs"].add(r["dtb"])
            p["verdict_counts"][r["verdict"]] += 1
            if r in broken:
                p["affected"] = True
            p["label"] = p["label"] or r["provider_label"]
        masters = {}
        for r in broken:
            m = masters.setdefault((r["master_path"], r["master_kind"], r["verdict"]), set())
            m.add(r["dtb"])
        entry = {
            "soc": soc,
            "affected": bool(broken),
            "passthrough": any(r["master_kind"] in PASSTHROUGH_KINDS for r in broken),
            "boards": sorted(boards.get(soc, ())),
            "affected_boards": sorted({r["dtb"] for r in broken}),
            "providers": [],
            "broken_masters": [{"path": m, "kind": k, "verdict": v, "dtbs": sorted(ds)}
                               for (m, k, v), ds in sorted(masters.items())],
            "verdict_counts": dict(Counter(r["verdict"] for r in recs)),
        }
        for p in providers_.values():
            p["dtbs"] = sorted(p["dtbs"])
            p["verdict_counts"] = dict(p["verdict_counts"])
            if positions is not None and (p["affected"] or _evidence(p)):
                where = positions(p["dtbs"][0], p["path"])
                if where:
                    p["source_file"], p["source_line"] = where
            entry["providers"].append(p)
        socs.append(entry)
    socs.sort(key=lambda s: (not s["affected"], not s["passthrough"],
                             -len(s["affected_boards"]), s["soc"] or ""))
    return socs


def _evidence(provider):
    counts = provider["verdict_counts"]
    return bool(counts.get("rescued-by-device") or counts.get("broken-bridge-coherent"))


def source_locator(corpus):
    """(dtb, node path) -> (.dtsi file, line) where the node is written, when
    the corpus was built from a kernel tree; None otherwise."""
    if corpus is None or getattr(corpus, "kernel_dir", None) is None:
        return None
    from corpus.build import source_positions
    entries = {e.dtb: e for e in corpus.entries}
    cache = {}

    def locate(dtb, path):
        if dtb not in cache:
            try:
                cache[dtb] = source_positions(corpus, entries[dtb])
            except Exception as exc:     # a board whose sources moved: report without lines
                cache[dtb] = {}
                print(f"{dtb}: warning: no source positions: {exc}", flush=True)
        return cache[dtb].get(path)
    return locate


def document(ev, corpus=None, legacy_dt_bindings=True):
    names = _Names(ev.flat)
    records = link_records(ev, names)
    diagnostics = [{"dtb": r["dtb"], "path": r["master_path"], "message": r["diagnostic"]}
                   for r in records if r["diagnostic"]]
    diagnostics += [{"dtb": ev.flat.paths[d], "path": None, "message": message}
                    for d, message in _dtb_errors(ev.flat)]
    return {
        "tool": "dtb-audit",
        "rule": rule.RULES[ev.rule],
        "legacy_dt_bindings": legacy_dt_bindings,
        "corpus": {
            "root": str(ev.flat.root),
            "identity": getattr(corpus, "identity", None),
            "kernel_dir": str(corpus.kernel_dir) if getattr(corpus, "kernel_dir", None) else None,
        },
        "links": records,
        "socs": soc_summaries(records, ev, names, source_locator(corpus)),
        "diagnostics": diagnostics,
    }


def _dtb_errors(flat):
    for d in range(flat.n_dtb):
        if flat.dtb_error[d]:
            yield d, flat.error(d)


def sweep(corpus, rule="walk-or-device", legacy_dt_bindings=True, flat=None):
    """The whole sweep of a corpus.build.Corpus, as the document above."""
    flat = flat if flat is not None else flatten_corpus(corpus)
    ev = evaluate(flat, rule, legacy_dt_bindings)
    return document(ev, corpus, legacy_dt_bindings)
