"""`dtb-audit explain BOARD`: every provider and link of one board, with the
chain of nodes that decided each coherency and availability, so that a
reviewer can check a verdict by eye.

judge_board() finds the board and judges it (the service beside
auditor/sweep.py's sweep_corpus()); write_explanation() writes what it found."""
import os
from pathlib import Path

from corpus.errors import UserError
from kernels import codes

from .report import target_words
from .sweep import NodeText, build_sweep
from .text import shown


def coherency_chain(ev, text, node):
    """The DMA-parent walk of of_dma_is_coherent(): 'a -> b (dma-coherent)'."""
    from kernels import coherency, dt
    t = dt.tree_of(ev.flat)
    why = int(ev.coherent_why[node])
    end = int(ev.coherent_from[node])
    steps = [text.path(node)]
    seen = {node}
    while node != end:
        node = int(coherency.dma_parent(t, node))
        if node < 0 or node in seen:
            break
        seen.add(node)
        steps.append(text.path(node))
    if why == coherency.WHY_CYCLE:
        tail = "(DMA parents loop: not coherent)"
    elif why == coherency.WHY_DEFAULT:
        tail = "(past the root: not coherent)"
    else:
        tail = "(dma-coherent)" if ev.coherent[end] else "(dma-noncoherent)"
    return " -> ".join(shown(s) for s in steps) + " " + tail


def availability_chain(ev, text, node):
    """Why a node is or is not a device: the first node up the tree whose
    status is not okay."""
    i = node
    parent = ev.flat.node_parent
    while i >= 0 and parent[i] >= 0:        # the root's status disables nothing
        if not ev.own_ok[i]:
            return "disabled by " + ("its own status" if i == node
                                     else f"ancestor {shown(text.path(i))}")
        i = int(parent[i])
    return "enabled (status okay up to the root)"


def judge_board(board: str, corpus_of, has_source: bool, judging, warn_newer=None):
    """(corpus, flat, Evaluation) of one board: `board` is a DTB file, or a
    board's DTB path or name in the corpus that corpus_of() opens (built
    from the command's source option, has_source, or the default one).
    warn_newer(targets) is told the target kernel before the kernels run."""
    from corpus.flat import flatten
    from kernels.evaluate import evaluate

    from .sweep import target_of
    path = Path(board)
    if path.is_file():
        from corpus.build import open_corpus
        corpus = open_corpus(path)
        # The file as the corpus resolved it (whatever the working folder),
        # named by itself, as given.
        dtb = Path(corpus.root) / corpus.entries[0].dtb
        flat = flatten([dtb], dtb.parent, cache=False)
    elif (os.sep in board or path.suffix in (".dtb", ".dtbo")) and not has_source:
        # A path, not a board name, and no corpus to find it in: say so
        # before fetching the default corpus.
        raise UserError(board, "no such file")
    else:
        corpus = corpus_of()
        wanted = board.removesuffix(".dtb")
        matches = [e for e in corpus.boards
                   if e.dtb.removesuffix(".dtb") == wanted or Path(e.dtb).stem == wanted]
        if not matches:
            raise UserError(board, f"no such board in {corpus.root}")
        flat = flatten([Path(corpus.root) / matches[0].dtb], corpus.root)
    if flat.dtb_error[0]:
        where = str(flat.dtb_file(0))
        raise UserError(where, flat.error(0).removeprefix(f"{where}: error: "))
    target = target_of(corpus, judging)
    if warn_newer is not None:
        warn_newer([target])
    return corpus, flat, evaluate(flat, target, judging)


def write_explanation(ev, out, d=0):
    """Write the explanation of DTB d of an Evaluation (kernels/evaluate.py)."""
    from kernels.codes import PR_DTB
    from kernels.evaluate import problem_text
    flat = ev.flat
    text = NodeText(flat)
    sweep = build_sweep(ev)
    compatible = flat.root_compatible(d)
    out.write(f"{shown(flat.paths[d])}: board {shown(compatible[0]) if compatible else '?'}, "
              f"SoC {shown(compatible[-1]) if compatible else '?'}, {target_words(sweep)}, "
              f"rule {sweep.rule}\n")
    start, end = int(flat.dtb_node_start[d]), int(flat.dtb_node_start[d + 1])
    out.write("\nproviders\n")
    for i in range(start, end):
        role = int(ev.role[i])
        if not codes.ARM_SMMU <= role <= codes.NO_CAPABLE:
            continue
        state = codes.PROBE_STATE_NAMES[int(ev.probe_state[i])]
        label = text.labels(d, [i]).get(i)
        out.write(f"  {shown(text.path(i))}{' (' + shown(label) + ')' if label else ''} "
                  f"[{shown(', '.join(text.compatible(i)))}] driver {codes.DRIVER_NAMES[role]}\n")
        out.write(f"    probe:     {codes.PROBE_STATES[state]}\n")
        out.write(f"    available: {availability_chain(ev, text, i)}\n")
        out.write(f"    coherent:  {coherency_chain(ev, text, i)}\n")
    out.write("\nlinks\n")
    rows = [k for k, dtb in enumerate(ev.links["dtb"].tolist()) if dtb == d]
    for k in rows:
        link = sweep.links[k]
        master = int(ev.links["master"][k])
        out.write(f"  {shown(link.master_path)} ({link.master_kind}) via {link.link} -> "
                  f"{shown(link.provider_path) if link.provider_path else 'nothing'}: "
                  f"{link.verdict.upper()}\n")
        out.write(f"    device:    {availability_chain(ev, text, master)}\n")
        if link.master_dma_attr != "not-supported":
            out.write(f"    dma attr:  {coherency_chain(ev, text, master)}\n")
        else:
            out.write("    dma attr:  not-supported (no DT node: only the SMMU counts)\n")
        if link.bridge_path:
            out.write(f"    bridge:    {coherency_chain(ev, text, int(ev.links['bridge'][k]))}\n")
        for key, value in (("note", link.note), ("diagnostic", link.diagnostic)):
            if value:
                out.write(f"    {key + ':':<10} {shown(value)}\n")
    if not rows:
        out.write("  (none)\n")
    problems = [i for i in range(ev.problems.shape[0]) if ev.problems[i, PR_DTB] == d]
    if problems:
        # Problems of the DT as a whole (a DMA-parent loop, a phandle used
        # twice, too many links): no link carries them.
        out.write("\nproblems\n")
        for i in problems:
            out.write(f"  {shown(problem_text(ev, i, text.path))}\n")
