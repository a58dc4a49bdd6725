"""The rule over every link of a flattened corpus, as the target kernel
decides it: arrays in, arrays out (what bench/ times and auditor/sweep.py
turns into reports).

    evaluate(flat, target, judging=Judging()) -> Evaluation

`target` (kernels.target.TargetKernel) gives every version-dependent
decision (docs/target-kernel.md); they reach the numba kernels as plain
ints and bools.  `judging` (kernels/judging.py) may override arm-smmu's
capable() rule, for "what if" questions, and says whether the legacy
mmu-masters binding is built in.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import results, table
from .codes import (D_MIXED_DRIVERS, D_NO_IOMMU_CELLS, D_NONE, DIAGNOSTICS, MAX_LINKS_PER_DTB,
                    P_DMA_PARENT_LOOP, P_DUPLICATE_PHANDLE, P_TOO_MANY_LINKS, PR_DTB, PR_NODE,
                    PROBLEM_COLUMNS, PROBLEMS, VIA_MMU_MASTERS, VIA_NAMES, Rule)
from .judging import Judging
from .target import MAP_TARGET_CELLS, TargetKernel, version_text


@dataclass
class Evaluation:
    """The arrays of one sweep; row k of every per-link array is link k."""
    flat: object
    target: TargetKernel
    rule: Rule                 # the target's, or the override
    legacy_dt_bindings: bool   # CONFIG_ARM_SMMU_LEGACY_DT_BINDINGS
    links: np.ndarray          # kernels.table.LINK_DTYPE[n_links]: one row a link
    dma_attr: np.ndarray       # int8[n_links]  codes.DMA_ATTR_NAMES
    verdict: np.ndarray        # int8[n_links]  codes.VERDICT_NAMES
    target_note: np.ndarray    # int8[n_links]  codes.NOTES: what the target kernel decided
    role: np.ndarray           # int8[n_nodes]  codes roles
    driver: np.ndarray         # int16[n_nodes] the binding driver, numbered by name (0: none)
    probe_state: np.ndarray    # int8[n_nodes]  codes.PROBE_STATE_NAMES
    coherent: np.ndarray       # bool[n_nodes]
    coherent_why: np.ndarray   # int8[n_nodes]  kernels.coherency.WHY_*
    coherent_from: np.ndarray  # int64[n_nodes]
    own_ok: np.ndarray         # bool[n_nodes]
    available: np.ndarray      # bool[n_nodes]
    dtb_links: np.ndarray      # int64[n_dtb]   links found per DTB (kept or not)
    problems: np.ndarray       # int64[n, len(codes.PROBLEM_COLUMNS)] codes.PROBLEMS, by DTB


# The arrays of an Evaluation (what kernels/results.py keeps).
ARRAYS = ("links", "dma_attr", "verdict", "target_note", "role", "driver", "probe_state",
          "coherent", "coherent_why", "coherent_from", "own_ok", "available", "dtb_links",
          "problems")


def evaluate(flat, target: TargetKernel, judging: Judging = Judging(),
             cache=True) -> Evaluation:
    """The rule over all links of a flattened corpus (corpus.flat.FlatCorpus),
    all in numba kernels, as `target` decides (judging.target_of() of the
    tree) under `judging`'s rule and bindings.
    cache: reuse (and keep) the results of the same evaluation of the same
    cached flat arrays (kernels/results.py) instead of running the kernels."""
    rule = judging.rule_under(target)
    key = results.key(target, rule.code, judging.legacy_dt_bindings)
    folder = results.folder_of(flat, key) if cache else None
    arrays = results.load(folder, key, ARRAYS)
    if arrays is None:
        arrays = _run_kernels(flat, target, rule.code, judging.legacy_dt_bindings)
        results.save(folder, key, dict(arrays, links=table.stored(arrays["links"])))
    else:
        arrays["links"] = table.from_stored(arrays["links"])
    return Evaluation(flat, target, rule, judging.legacy_dt_bindings, **arrays)


def _run_kernels(flat, target, code, legacy_dt_bindings) -> dict:
    """The arrays of ARRAYS, computed by the kernels."""
    from kernels.jit import choose_tier
    choose_tier(int(flat.data.size))      # before the first kernel module is imported
    from . import coherency, dt, links, providers, rule as rule_kernels
    t = dt.tree_of(flat)
    own_ok, available = coherency.availability(t)
    coherent, why, source, loop_from = coherency.coherency(t, target.dma_noncoherent_honoured)
    role, driver = providers.roles(t, target)
    state, legacy = providers.probe(t, role, available)
    found, dtb_links = links.find_links(t, role, driver, state, own_ok, available, legacy,
                                        legacy_dt_bindings, target.map_reads_target_cells,
                                        target.pci_disabled_function_unbound)
    attr, verdict, target_note = rule_kernels.verdicts(found, role, coherent, code)
    return dict(links=found, dma_attr=attr, verdict=verdict, target_note=target_note,
                role=role, driver=driver, probe_state=state, coherent=coherent,
                coherent_why=why, coherent_from=source, own_ok=own_ok, available=available,
                dtb_links=dtb_links, problems=_problems(flat, loop_from, dtb_links))


def _problems(flat, loop_from, dtb_links):
    """DMA-parent loops, duplicate phandles and link explosions, by DTB."""
    rows = []
    closer = np.flatnonzero(loop_from >= 0)
    for node in closer.tolist():
        rows.append((int(flat.node_dtb[node]), int(loop_from[node]), P_DMA_PARENT_LOOP, 0, node))
    # phandle_sorted orders nodes by (dtb, phandle), stably: the first of
    # equal neighbours is the node every reference resolves to.
    order = np.asarray(flat.phandle_sorted)
    if order.size > 1:
        dtb = np.asarray(flat.node_dtb)[order]
        phandle = np.asarray(flat.node_phandle)[order]
        same = np.flatnonzero((dtb[1:] == dtb[:-1]) & (phandle[1:] == phandle[:-1])) + 1
        for q in same.tolist():
            first = q - 1
            while first > 0 and dtb[first - 1] == dtb[q] and phandle[first - 1] == phandle[q]:
                first -= 1
            rows.append((int(dtb[q]), int(order[q]), P_DUPLICATE_PHANDLE, int(phandle[q]),
                         int(order[first])))
    for d in np.flatnonzero(dtb_links > MAX_LINKS_PER_DTB).tolist():
        rows.append((d, -1, P_TOO_MANY_LINKS, int(dtb_links[d]), -1))
    found = np.array(rows, dtype=np.int64).reshape(-1, len(PROBLEM_COLUMNS))
    return found[np.lexsort((found[:, PR_NODE], found[:, PR_DTB]))] if len(rows) else found


def diagnostic_text(ev: Evaluation, k: int, path) -> str | None:
    """The diagnostic of link k (codes.DIAGNOSTICS), or None; path(node) ->
    the node's path."""
    link = ev.links[k]
    diag = int(link["diag"])
    if diag == D_NONE:
        return None
    arg, arg2, node = int(link["diag_arg"]), int(link["diag_arg2"]), int(link["diag_node"])
    via = int(link["via"])
    reader = version_text(MAP_TARGET_CELLS)
    return DIAGNOSTICS[diag].format(
        prop=VIA_NAMES[via], arg=arg, arg2=arg2,
        target=path(arg) if diag in (D_NO_IOMMU_CELLS, D_MIXED_DRIVERS) else None,
        node=path(node) if node >= 0 else None,
        cells="#stream-id-cells" if via == VIA_MMU_MASTERS else "#iommu-cells",
        target_kernel=str(ev.target), reader=reader)


def problem_text(ev: Evaluation, i: int, path) -> str:
    """The text of problem row i (codes.PROBLEMS); path(node) -> its path."""
    _, node, code, arg, other = (int(x) for x in ev.problems[i])
    return PROBLEMS[code].format(node=path(node) if node >= 0 else None, arg=arg,
                                 other=path(other) if other >= 0 else None,
                                 limit=MAX_LINKS_PER_DTB)
