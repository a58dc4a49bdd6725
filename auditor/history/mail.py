"""The robot's mails of a History of commits: one per SoC a commit made
affected, as the kernel test robot writes them."""

from __future__ import annotations

import re
from pathlib import Path

from ..documents import CommitChange, History
from ..text import shown
from .text import revert_lines, smmu_line

BOARDS_IN_MAIL = 12


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
    from corpus.temporary import write_atomically

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for k, (soc, change) in enumerate(history.newly_affected(), 1):
        path = folder / mail_name(k, soc, change)
        write_atomically(path, robot_message(history, soc, change).encode())
        written.append(path)
    return written
