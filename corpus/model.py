"""The corpus: the DTBs of one build (or of several, merged), with what the
build's manifest says of each (its kind, its source, what it was made of)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from corpus.dtc import Tools


@dataclass(slots=True)    # one per DTB of each corpus opened: thousands
class Entry:
    dtb: str                          # relative to Corpus.root: "freescale/fsl-ls1028a-rdb.dtb"
    kind: str                         # "board" | "overlay" | "composite"
    source: str | None = None         # the .dts/.dtso relative to kernel_dir
    parts: list[str] = field(default_factory=list)   # composite: base, then overlays
    error: str | None = None          # first error line when it did not build


@dataclass
class Corpus:
    root: Path                        # the DTBs, in the tree's vendor folders
    kernel_dir: Path | None           # the kernel tree built from; None for a DTB folder
    identity: str                     # "linux-6.12.117 (debian linux-source-6.12)"
    entries: list[Entry]
    built: int = 0                    # this run: compiled or overlaid ...
    failed: int = 0                   # ... did not build ...
    reused: int = 0                   # ... up to date from an earlier run
    kernel_version: str | None = None  # "6.12.117", "7.3.0-rc1": the tree's Makefile's; None: unknown
    partial: bool = False             # an incomplete build, opened as such on request
    members: list[Corpus] = field(default_factory=list)   # open_corpora: what was merged
    _records: dict = field(default_factory=dict, repr=False)   # the manifest's (sources_record), by dtb
    _tools: Tools | None = field(default=None, repr=False)      # what built kernel_dir
    _origins: dict = field(default_factory=dict, repr=False)   # merged dtb -> (member, its dtb)

    @property
    def boards(self) -> list[Entry]:
        """Boards and composites that built; overlays alone are not boards."""
        return [e for e in self.entries if e.kind != "overlay" and e.error is None]

    def entry(self, dtb: str) -> Entry | None:
        return next((e for e in self.entries if e.dtb == dtb), None)

    def dependencies(self, dtb: str) -> tuple[str, ...]:
        """The files the build of `dtb` read (cpp and dtc), as the manifest
        recorded them, named where they are (include-prefixes links
        resolved) relative to the kernel tree; a composite's are those of
        its parts."""
        member, entry = self.origin(self.entry(dtb) or Entry(dtb, "board"))
        record = member._records.get(entry.dtb) or {}
        deps = set()
        tree = member.kernel_dir.resolve() if member.kernel_dir else None
        for path in record.get("deps") or ():
            if tree is not None:
                real = member._where(path)
                path = real.relative_to(tree).as_posix() if real.is_relative_to(tree) else path
            deps.add(path)
        for part in record.get("parts") or ():
            deps.update(member.dependencies(part))
        return tuple(sorted(deps))

    def all_dependencies(self) -> frozenset[Path]:
        """Every file the build of any of its DTBs read, where it really is
        (links resolved); empty for a corpus not built from a tree."""
        raw: dict[int, tuple[Corpus, set]] = {}
        for e in self.entries:
            member, entry = self.origin(e)
            record = member._records.get(entry.dtb) or {}
            raw.setdefault(id(member), (member, set()))[1].update(record.get("deps") or ())
        return frozenset(member._where(path) for member, paths in raw.values()
                         if member.kernel_dir for path in paths)

    def _where(self, dep: str) -> Path:
        """A manifest dependency where it really is (include-prefixes links resolved)."""
        return (self.kernel_dir / dep).resolve()

    def origin(self, entry: Entry) -> tuple[Corpus, Entry]:
        """The corpus an entry comes from and its entry there (itself unless merged)."""
        if entry.dtb not in self._origins:
            return self, entry
        member, dtb = self._origins[entry.dtb]
        return member, member.entry(dtb)
