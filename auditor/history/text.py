"""The History for people: a table of saved sweeps' verdicts, or the
commits of a git repository with each SoC's changes (and the robot's mails
after them). Every line is shown() (SoCs, paths, subjects: no raw control
character)."""

from __future__ import annotations

from ..documents import AFFECTED, History
from ..model import NAMELESS
from ..text import shown
from .mail import revert_lines, robot_message, smmu_line


def format_history(history: History, changed_only: bool = False, mails: bool = True) -> str:
    """changed_only: only the SoCs that changed (a history of sweeps);
    mails: the robot's message of each newly affected SoC after the text (of
    commits)."""
    if history.git is None:
        return _table(history, changed_only)
    return _commits(history, mails)


# -- of saved sweeps ---------------------------------------------------------------

def _table(history: History, changed_only: bool) -> str:
    """One row per SoC: its verdict in each version, and when its SMMU
    became or stopped being coherent."""
    versions = [r.name for r in history.revisions]
    short = [_short(v) for v in versions]
    rows = [r for r in history.socs if r.changes or not changed_only]
    width = max([len("SoC")] + [len(shown(r.soc or NAMELESS)) for r in rows])
    cols = [max(len(s), len("unaffected")) for s in short]
    out = ["SoC".ljust(width) + "  " + "  ".join(s.ljust(c) for s, c in zip(short, cols))
           + "  SMMU\n"]
    for r in rows:
        cells = [(v or "-").ljust(c) for v, c in zip(r.verdicts, cols)]
        out.append(shown(r.soc or NAMELESS).ljust(width) + "  " + "  ".join(cells) + "  "
                   + _smmu_story(r, short, versions) + "\n")
    return "".join(out)


def _short(identity):
    # "linux-6.1.192 (debian linux-source-6.1)" -> "linux-6.1.192"
    return shown(identity.split(" (", 1)[0])


def _smmu_story(row, short, versions):
    moves = [c for c in row.changes if c.what == "smmu"]
    if not moves:
        known = [s for s in row.smmu if s is not None]
        return f"{known[0]} throughout" if known and len(set(known)) == 1 else "-"
    name = dict(zip(versions, short))
    return "; ".join(f"{c.new} from {name[c.version]}" for c in moves)


# -- of commits ----------------------------------------------------------------------

def _commits(history: History, mails: bool) -> str:
    """The revisions, then each SoC's changes, then the messages."""
    revisions = history.revisions
    lines = [f"dtb-audit history: {history.git.repo}: {len(revisions)} revisions, "
             f"{len(history.socs)} SoCs changed", ""]
    for r, count in zip(revisions, history.affected):
        mark = f"  [error: {r.error}]" if r.error else ""
        if r.not_built:
            more = f" (and {len(r.not_built) - 1} more)" if len(r.not_built) > 1 else ""
            mark += f"  [not built: {r.not_built[0]}{more}]"
        target = (str(r.target_kernel) if r.target_kernel else "-") + \
            ("?" if r.target_assumed else "")
        lines.append(f"  {r.name[:12]}  {r.date[:10]}  {target:<10} "
                     f"{len(count):>3} affected  {r.subject}{mark}")
    if any(r.target_assumed for r in revisions):
        lines.append("  (?: no release contains the commit and the tree names no version: "
                     "judged as the newest modelled)")
    for s in history.socs:
        lines += ["", s.soc]
        for c in s.changes:
            boards = (f" ({len(c.affected_boards)}/{c.boards} boards)"
                      if c.new == AFFECTED else "")
            lines.append(f"  {c.commit[:12]}  {c.date[:10]}  {c.old} -> {c.new}"
                         f"{boards}  {c.subject}")
            for smmu in c.smmu:
                lines.append(f"      {smmu_line(smmu)}")
            lines.extend(f"      {line}" for line in revert_lines(c))
    text = "".join(shown(line) + "\n" for line in lines)
    if mails:
        for soc, change in history.newly_affected():
            text += "\n" + "-" * 72 + "\n" + robot_message(history, soc, change)
    return text
