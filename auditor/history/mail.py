"""The robot's mails of a History of commits: one per SoC a commit made
affected, as the kernel test robot writes them."""

from __future__ import annotations

import re
from pathlib import Path

from ..documents import CommitChange, History, SmmuChange
from ..text import shown

BOARDS_IN_MAIL = 12


def smmu_line(s: SmmuChange) -> str:
    where = f"{s.source_file}:{s.source_line}: " if s.source_file else ""
    before, after = s.coherent_before, s.coherent_after
    if before is not None and after is not None and before != after:
        what = "dma-coherent added" if after else "dma-coherent removed"
    elif after is None:
        what = "no longer on any board"
    else:
        what = "dma-coherent" if after else "not dma-coherent"
    return f"{where}{s.path}: {what}"


def revert_lines(change) -> list[str]:
    """What a commit that removes dma-coherent from an SMMU node is told."""
    if not change.removes_dma_coherent:
        return []
    lines = ["a revert: this commit removes dma-coherent from an SMMU node"]
    if change.upstream:
        lines.append(f"upstream: {change.upstream}")
    else:
        lines.append("if the hardware is not coherent on every board, VFIO's refusal is right")
    return lines


def robot_message(history: History, soc: str, change: CommitChange) -> str:
    """A kernel-test-robot-style mail about one SoC a commit made affected."""
    sha12, subject = change.commit[:12], change.subject
    target = next((r.target_kernel for r in history.revisions if r.name == change.commit), None)
    boards = change.affected_boards
    lines = [
        f"Subject: [dtb-audit] {soc}: VFIO refuses its devices since {sha12}",
        "",
        f"tree:   {history.git.repo}",
        f"commit: {change.commit} ({subject})",
        f"date:   {change.date}",
        f"target kernel: {target or 'unknown'}",
        "",
        "If you fix the issue in a separate patch/commit (i.e. not just a new version of",
        "the same patch/commit), kindly add the following tag",
        f"| Fixes: {sha12} (\"{subject}\")",
        "",
        f"{soc} went from {change.old} to affected: on {len(boards)} of its "
        f"{change.boards} boards,",
        "VFIO (vfio-pci, vfio-platform, vfio-fsl-mc) and iommufd refuse a device because",
        "its IOMMU does not report IOMMU_CAP_CACHE_COHERENCY.",
        "",
        "SMMU nodes:",
    ]
    lines += [f">> {smmu_line(s)}" for s in change.smmu] or ["   (none)"]
    lines += [f"   {line}" for line in revert_lines(change)]
    lines += ["", "boards:"]
    lines += [f"   {b}" for b in boards[:BOARDS_IN_MAIL]]
    if len(boards) > BOARDS_IN_MAIL:
        lines.append(f"   ... and {len(boards) - BOARDS_IN_MAIL} more")
    lines += ["", "If the SMMU's page-table walk is coherent (IDR0.CTTW), the node lacks",
              "`dma-coherent;`: confirm it on hardware before patching.", ""]
    # One line each, escaped: a newline in a SoC's name cannot add a header.
    return "\n".join(shown(line) for line in lines)


def mail_name(k: int, soc: str, change: CommitChange) -> str:
    return f"{k:04d}-{re.sub(r'[^A-Za-z0-9.+-]', '_', soc)}-{change.commit[:12]}.txt"


def write_mails(history: History, folder) -> list[Path]:
    """One file per newly affected SoC in `folder`, written atomically."""
    from store.durable import write_atomically

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for k, (soc, change) in enumerate(history.newly_affected(), 1):
        path = folder / mail_name(k, soc, change)
        write_atomically(path, robot_message(history, soc, change).encode())
        written.append(path)
    return written
