"""The evidence behind an affected SoC's SMMU lacking `dma-coherent`.

One class per SMMU of an affected SoC (issue 18):

  hardware-says-coherent  boot logs of the SoC's boards say the register
                          (IDR0.CTTW / IDR0.COHACC) is coherent, and none
                          says it is not (auditor/bootlog.py)
  coherent-masters        the DT's own evidence: masters behind it are
                          coherent (rescued-by-device) or the bus above
                          them is (broken-bridge-coherent)
  known-noncoherent       upstream settled that it is not coherent on every
                          board (auditor/settled.py): the SoC stays affected,
                          VFIO's refusal is correct, and it is never patched
  no-evidence             nothing says it lacks dma-coherent, or boot logs
                          say its register is not coherent

Upstream's word comes first, then the register's, then the DT's.  An SMMU
whose register is known to be wrong (LS1028A, LS1088A) keeps its DT
evidence whatever the logs say of the register.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .settled import settled_for
from .text import shown

CLASSES = ("hardware-says-coherent", "coherent-masters", "known-noncoherent", "no-evidence")


@dataclass(frozen=True)
class LogWord:
    """What one boot log said of one SMMU's register."""
    log: str
    boards: tuple
    kernel: str | None
    coherent: bool | None


@dataclass(frozen=True)
class Evidence:
    soc: str | None
    path: str                     # the SMMU node
    kind: str                     # CLASSES
    reason: str
    logs: tuple = ()              # LogWord, the logs that told the register

    @property
    def patchable(self) -> bool:
        return self.kind in ("hardware-says-coherent", "coherent-masters")

    def to_json(self) -> dict:
        return {"soc": self.soc, "path": self.path, "class": self.kind, "reason": self.reason,
                "logs": [{"log": w.log, "boards": list(w.boards), "kernel": w.kernel,
                          "register_coherent": w.coherent} for w in self.logs]}


def log_words(bootlog_doc) -> dict:
    """{(soc, node path): [LogWord]} of a bootlog document (auditor/bootlog.py)."""
    out = {}
    for log in (bootlog_doc or {}).get("logs", ()):
        for s in log["smmus"]:
            if s["node"] is None or s["hw_coherent"] is None:
                continue
            out.setdefault((log["soc"], s["node"]), []).append(LogWord(
                log["log"], tuple(log["boards"]), log["kernel"], s["hw_coherent"]))
    return out


def _count(n, word):
    return f"{n} {word}{'s' if n != 1 else ''}"


def classify(sweep, bootlog_doc=None) -> tuple:
    """The Evidence of every SMMU lacking dma-coherent of the affected SoCs
    of a Sweep, and of every other SMMU that its links accuse, with the boot
    logs of `bootlog_doc` when given."""
    words = log_words(bootlog_doc)
    out = []
    for s in sweep.socs:
        for p in s.providers:
            # An affected SoC's SMMUs, and every SMMU the DT accuses (patch's candidates).
            if p.coherent or not (s.affected or p.evidence):
                continue
            settled = settled_for((s.soc,) if s.soc else (), os.path.basename(p.path))
            said = tuple(words.get((s.soc, p.path), ()))
            yes = [w for w in said if w.coherent]
            no = [w for w in said if not w.coherent]
            if settled is not None and settled.verdict == "noncoherent":
                kind = "known-noncoherent"
                reason = (f"upstream: not coherent on every board, {settled.reference}; "
                          f"VFIO's refusal is correct"
                          + (f" ({settled.note})" if settled.note else ""))
            elif settled is not None and settled.verdict == "register-wrong" and p.evidence:
                kind = "coherent-masters"
                reason = ("coherent masters behind it; upstream: its register is wrong, "
                          "the hardware coherent")
            elif yes and not no:
                boards = sorted({b for w in yes for b in w.boards})
                kind = "hardware-says-coherent"
                reason = (f"{_count(len(yes), 'boot log')} of {_count(len(boards), 'board')} "
                          f"report{'s' if len(yes) == 1 else ''} coherent table walks in IDR0")
            elif no:
                kind = "no-evidence"
                reason = (f"{_count(len(no), 'boot log')} say{'s' if len(no) == 1 else ''} "
                          f"the register is not coherent"
                          + (f", {len(yes)} that it is" if yes else ""))
            elif p.evidence:
                kind = "coherent-masters"
                reason = "masters behind it, or the bus above them, are DMA coherent"
            else:
                kind, reason = "no-evidence", "nothing says it lacks dma-coherent"
            e = Evidence(s.soc, p.path, kind, reason, said)
            out.append(e)
    return tuple(out)


def format_text(evidence) -> str:
    """The evidence, one SMMU a paragraph, for people."""
    lines = []
    for e in sorted(evidence, key=lambda e: (e.soc or "", e.path)):
        lines.append(f"  {shown(e.soc or '?')} {shown(e.path)}: {e.kind}: {shown(e.reason)}")
        for w in e.logs:
            lines.append(f"      {shown(os.path.basename(w.log))}: "
                         f"{', '.join(shown(b) for b in w.boards)} "
                         f"({shown(w.kernel or '?')}): register "
                         f"{'coherent' if w.coherent else 'not coherent'}")
    return "\n".join(lines) + ("\n" if lines else "")
