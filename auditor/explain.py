"""`dtb-audit explain BOARD`: every provider and link of one board, with the
chain of nodes that decided each coherency and availability, so that a
reviewer can check a verdict by eye."""
from kernels import coherency, dt, providers

from .sweep import PROBE_REASONS, _Names, link_records


def coherency_chain(ev, names, node):
    """The DMA-parent walk of of_dma_is_coherent(): 'a -> b (dma-coherent)'."""
    t = dt.tree_of(ev.flat)
    why = int(ev.coherent_why[node])
    end = int(ev.coherent_from[node])
    steps = [names.path(node)]
    seen = {node}
    while node != end and node >= 0:
        node = int(coherency.dma_parent(t, node))
        if node < 0 or node in seen:
            break
        seen.add(node)
        steps.append(names.path(node))
    if why == coherency.WHY_CYCLE:
        tail = "(DMA parents loop: not coherent)"
    elif why == coherency.WHY_DEFAULT:
        tail = "(past the root: not coherent)"
    else:
        tail = "(dma-coherent)" if ev.coherent[end] else "(dma-noncoherent)"
    return " -> ".join(steps) + " " + tail


def availability_chain(ev, names, node):
    """Why a node is or is not a device: the first node up the tree whose
    status is not okay."""
    flat = ev.flat
    i = node
    while i >= 0:
        if not ev.own_ok[i]:
            return "disabled by " + ("its own status" if i == node else f"ancestor {names.path(i)}")
        i = int(flat.node_parent[i])
    return "enabled (status okay up to the root)"


def explain(ev, d, out):
    """Write the explanation of DTB d of an Evaluation."""
    flat = ev.flat
    names = _Names(flat)
    compatible = flat.root_compatible(d)
    out.write(f"{flat.paths[d]}: board {compatible[0] if compatible else '?'}, "
              f"SoC {compatible[-1] if compatible else '?'}, rule {ev.rule_name}\n")
    start, end = int(flat.dtb_node_start[d]), int(flat.dtb_node_start[d + 1])
    out.write("\nproviders\n")
    for i in range(start, end):
        role = int(ev.role[i])
        if not providers.ARM_SMMU <= role <= providers.NO_CAPABLE:
            continue
        state = int(ev.probe_state[i])
        label = names.label(i)
        out.write(f"  {names.path(i)}{' (' + label + ')' if label else ''} "
                  f"[{', '.join(names.compatible(i))}] driver {providers.DRIVER_NAMES[role]}\n")
        out.write(f"    probe:     {PROBE_REASONS.get(state, 'probes')}\n")
        out.write(f"    available: {availability_chain(ev, names, i)}\n")
        out.write(f"    coherent:  {coherency_chain(ev, names, i)}\n")
    out.write("\nlinks\n")
    rows = [k for k in range(ev.links.shape[0]) if ev.links[k, 0] == d]
    sub = _subset(ev, rows)
    for k, r in zip(rows, link_records(sub, names)):
        master = int(ev.links[k, 2])
        out.write(f"  {r['master_path']} ({r['master_kind']}) via {r['link']} -> "
                  f"{r['provider_path'] or 'nothing'}: {r['verdict'].upper()}\n")
        out.write(f"    device:    {availability_chain(ev, names, master)}\n")
        if r["master_dma_attr"] != "not-supported":
            out.write(f"    dma attr:  {coherency_chain(ev, names, master)}\n")
        else:
            out.write("    dma attr:  not-supported (no DT node: only the SMMU counts)\n")
        if r["bridge_path"]:
            bridge = int(ev.links[k, 5])
            out.write(f"    bridge:    {coherency_chain(ev, names, bridge)}\n")
        for key in ("note", "diagnostic"):
            if r[key]:
                out.write(f"    {key + ':':<10} {r[key]}\n")
    if not rows:
        out.write("  (none)\n")


def _subset(ev, rows):
    """The Evaluation restricted to some links (for link_records)."""
    from dataclasses import replace
    return replace(ev, links=ev.links[rows], dma_attr=ev.dma_attr[rows], verdict=ev.verdict[rows])
