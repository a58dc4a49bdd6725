"""The plot of a History of commits: affected SoCs over the revisions,
transitions marked (matplotlib, SVG or PNG)."""

from __future__ import annotations

import io
from pathlib import Path

from corpus.errors import UserError

from ..documents import AFFECTED, History
from ..text import shown

PLOT_SUFFIXES = ("svg", "png")


def write_plot(history: History, path) -> None:
    """Affected SoCs over the revisions, transitions marked; SVG or PNG by suffix."""
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"   # text stays text: searchable, selectable
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from store.durable import write_atomically

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in PLOT_SUFFIXES:
        raise UserError(str(path), "the plot is written as .svg or .png")
    revisions = history.revisions
    counts = [len(a) for a in history.affected]
    xs = list(range(len(revisions)))
    order = {r.name: k for k, r in enumerate(revisions)}
    up: dict[int, list] = {}
    down: dict[int, list] = {}
    for s in history.socs:
        for c in s.changes:
            if c.new == AFFECTED:
                up.setdefault(order[c.commit], []).append(s.soc)
            elif c.old == AFFECTED:
                down.setdefault(order[c.commit], []).append(s.soc)

    figure = Figure(figsize=(max(8.0, min(24.0, 0.35 * len(xs) + 4)), 5), layout="constrained")
    axes = figure.subplots()
    axes.step(xs, counts, where="post", color="#444444", linewidth=1.5, label="affected SoCs")
    axes.plot(xs, counts, "o", color="#444444", markersize=3)
    for marks, color, symbol, sign, label in ((up, "#c0392b", "^", "+", "newly affected"),
                                              (down, "#27ae60", "v", "-", "no longer affected")):
        ks = sorted(marks)
        axes.plot(ks, [counts[k] for k in ks], symbol, color=color, markersize=9, label=label)
        for k in ks:
            socs = marks[k]
            # DTB text: escaped, and a `$` is a dollar, not matplotlib's mathtext
            names = ", ".join(shown(soc).replace("$", r"\$") for soc in socs[:3]) + (
                f" +{len(socs) - 3}" if len(socs) > 3 else "")
            axes.annotate(f"{sign}{len(socs)} {revisions[k].name[:12]}\n{names}",
                          (k, counts[k]), textcoords="offset points",
                          xytext=(5, 8), fontsize=7, color=color)
    errors = [k for k, r in enumerate(revisions) if r.error or r.not_built]
    if errors:
        axes.plot(errors, [counts[k] for k in errors], "x", color="#888888", markersize=8,
                  label="build errors")
    if len(xs) <= 40:
        axes.set_xticks(xs, [r.name[:12] for r in revisions], rotation=60, ha="right",
                        fontsize=7)
    axes.set_xlabel("revision")
    axes.set_ylabel("affected SoCs")
    axes.set_ylim(bottom=-0.2, top=max(counts + [1]) * 1.25 + 1)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(f"SoCs VFIO refuses (IOMMU_CAP_CACHE_COHERENCY) over {len(xs)} revisions "
                   f"of {shown(Path(history.git.repo).name).replace('$', chr(92) + '$')}",
                   fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="upper left", fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt)
    write_atomically(path, buffer.getvalue())
