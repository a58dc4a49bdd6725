"""Which SMMU nodes the evidence accuses, and which the series leaves alone.

docs/rule.md: an SMMU that is not coherent while the masters behind it
are (`rescued-by-device`), or while the host bridge or fsl-mc node above
its broken masters is (`broken-bridge-coherent`), most likely lacks
`dma-coherent`.  The same node written once in a `.dtsi` is one candidate
for every SoC and board that includes it.
"""
from dataclasses import dataclass, field

from kernels.codes import EVIDENCE_VERDICTS

from ..model import NAMELESS


@dataclass
class Candidate:
    """One SMMU node written in a source file, with the links that accuse it."""
    source_file: str
    source_line: int
    path: str
    label: str | None
    compatible: tuple
    driver: str
    socs: set = field(default_factory=set)
    links: list = field(default_factory=list)     # Links with an EVIDENCE verdict
    against: list = field(default_factory=list)   # Links to it from non-coherent masters

    @property
    def boards(self):
        return sorted({link.dtb for link in self.links})

    @property
    def where(self):
        return f"{self.source_file}:{self.source_line}"


@dataclass
class Skip:
    """A node the evidence names but the series leaves alone, and why."""
    path: str
    socs: list                     # names, as soc_names() gives them
    where: str | None
    reason: str


def soc_names(socs):
    """The names of `socs` (SoC strings, None for a nameless one), sorted, for messages."""
    return sorted({soc or NAMELESS for soc in socs})


def candidates(sweep, backed=frozenset()):
    """(candidates ordered by file and line, skips) of a Sweep.

    A provider is a candidate when it is not coherent in a DTB where one of
    its links is `rescued-by-device` or `broken-bridge-coherent`, or, for
    the (soc, path) in `backed` (boot logs say its register is coherent),
    where one of its links is affected."""
    providers = {(s.soc, p.path): p for s in sweep.socs for p in s.providers}
    found, skips = {}, {}
    for link in sweep.links:
        if link.provider_coherent or not (
                link.verdict in EVIDENCE_VERDICTS
                or ((link.soc, link.provider_path) in backed and link.affected)):
            continue
        p = providers.get((link.soc, link.provider_path))
        if p is None or not p.source_file or not p.source_line:
            skip = skips.setdefault(link.provider_path, Skip(
                link.provider_path, [], None,
                "no source position (the corpus was not built from a kernel tree)"))
            if (link.soc or NAMELESS) not in skip.socs:
                skip.socs.append(link.soc or NAMELESS)
            continue
        c = found.get((p.source_file, p.source_line))
        if c is None:
            c = found[(p.source_file, p.source_line)] = Candidate(
                p.source_file, p.source_line, link.provider_path, link.provider_label,
                tuple(link.provider_compatible), link.driver or "")
        c.socs.add(link.soc)
        c.links.append(link)
    # Robin Murphy's other half (docs/rule.md): a coherent SMMU in front
    # of non-coherent masters is unusual, so the message names them too.
    by_node = {(link.soc, link.provider_path): c for c in found.values() for link in c.links}
    for link in sweep.links:
        c = by_node.get((link.soc, link.provider_path))
        if c is not None and link.verdict == "broken" and not link.provider_coherent \
                and link.master_dma_attr == "non-coherent":
            c.against.append(link)
    ordered = sorted(found.values(), key=lambda c: (c.source_file, c.source_line))
    return ordered, list(skips.values())
