"""Output formats of a Sweep (auditor/model.py): people read `table` and
`md`, editors and CI `gcc`, code-scanning UIs `sarif`, machines `jsonl`,
`json` and `csv`.  Every human format shows text from a DTB through
auditor.text.shown(); CSV cells go through csv_cell(); JSON escapes by its
own rules (ASCII only).  What each format does with DTB text:
docs/text-and-formats.md."""
import csv
import functools
import itertools
import json
import re

from kernels.codes import PASSTHROUGH_KINDS, RULES, Rule

from .model import LINK_FIELDS, NAMELESS
from .output import dump_json
from .text import shown

PLATFORM_SHOWN = 5   # platform masters listed per SoC in the table; rarely passed through
BOARDS_SHOWN = 6

FORMATS = ("table", "jsonl", "json", "csv", "md", "gcc", "sarif")


def write(sweep, fmt, out):
    WRITERS[fmt](sweep, out)


# A link record of jsonl and csv: the link's fields, then the evidence class
# of its provider when that SMMU is one of an affected SoC (auditor.evidence).
RECORD_FIELDS = (*LINK_FIELDS, "evidence")


def _records(sweep):
    """Each link's fields and its provider's evidence class (None when none)."""
    classes = {(e.soc, e.path): e.kind for e in sweep.evidence}
    for link in sweep.links:
        yield (*link[:len(LINK_FIELDS)], classes.get((link.soc, link.provider_path)))


def _jsonl(sweep, out):
    # One record on each line, written field by field: keys encoded once,
    # each distinct value encoded once (typed: True and 1 are different
    # values).  Tuples are JSON arrays either way.
    encoded = functools.lru_cache(maxsize=1 << 12, typed=True)(json.dumps)
    keys = ["{" + json.dumps(RECORD_FIELDS[0]) + ": "] + [f", {json.dumps(f)}: "
                                                         for f in RECORD_FIELDS[1:]]
    # A thousand lines a write: the report is never whole in memory.
    records = iter(_records(sweep))
    while batch := list(itertools.islice(records, 1024)):
        out.write("".join(["".join([key + encoded(value) for key, value in zip(keys, record)])
                           + "}\n" for record in batch]))


def _json(sweep, out):
    dump_json(sweep.to_json(streamed=True), out)
    out.write("\n")


# What makes a spreadsheet run a cell as a formula (OWASP, "CSV Injection").
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A CSV cell of a link's field: text a spreadsheet would run as a
    formula starts with a single quote (OWASP's advice), control characters
    are escaped as everywhere else (no raw newline or ESC in a cell);
    True/False as they are (no field is a number)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return value
    text = ";".join(value) if isinstance(value, tuple) else str(value)
    return shown("'" + text if text.startswith(_FORMULA) else text)


def _csv(sweep, out):
    w = csv.writer(out, lineterminator="\n")
    w.writerow(RECORD_FIELDS)
    for record in _records(sweep):
        w.writerow([csv_cell(v) for v in record])


def _provider_line(p):
    label = f" ({shown(p.label)})" if p.label else ""
    coherent = "dma-coherent" if p.coherent else "NOT dma-coherent"
    return f"{shown(p.path)}{label} {shown(', '.join(p.compatible))}: {coherent}"


def _counts(counts):
    return ", ".join(f"{v} {n}" for v, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def count(n, noun):
    """"1 board", "2 boards"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def target_words(sweep):
    """"target 6.12.117" (with "assumed" when nothing told the version)."""
    if sweep.target_kernel is None:
        return "target unknown"
    return f"target {sweep.target_kernel}" + (
        " (assumed: the newest modelled; give --target-kernel)" if sweep.target_assumed else "")


def summary_line(sweep):
    affected = sweep.affected
    boards = sum(len(s.boards) for s in sweep.socs)
    passthrough = sum(1 for s in affected if s.passthrough)
    partial = " (PARTIAL corpus: its build was interrupted)" if sweep.corpus.partial else ""
    return (f"{shown(sweep.name)}{partial}: {target_words(sweep)}: rule {sweep.rule}: "
            f"{count(len(sweep.links), 'link')} on {count(boards, 'board')} of "
            f"{count(len(sweep.socs), 'SoC')}; "
            f"{count(len(affected), 'SoC')} affected "
            f"({passthrough} with PCI/fsl-mc passthrough broken)")


def _table(sweep, out):
    out.write(summary_line(sweep) + "\n")
    if sweep.rule is Rule.NO_CHECK:
        out.write(f"  ({RULES[Rule.NO_CHECK.value]})\n")
    for s in sweep.affected:
        tag = "PCI/fsl-mc passthrough broken" if s.passthrough else "platform devices only"
        out.write(f"\nAFFECTED {shown(s.soc)}  {len(s.affected_boards)}/{len(s.boards)} boards"
                  f"  [{tag}]\n")
        for p in s.providers:
            if not p.affected:
                continue
            out.write(f"  provider  {_provider_line(p)}\n")
            if p.where:
                out.write(f"            written at {shown(p.where)}\n")
            e = sweep.evidence_of(s.soc, p.path)
            if e is not None:
                out.write(f"            evidence  {e.kind}: {shown(e.reason)}\n")
        masters = s.broken_masters
        shown_masters = [m for m in masters if m.kind in PASSTHROUGH_KINDS]
        shown_masters += [m for m in masters if m.kind not in PASSTHROUGH_KINDS][:PLATFORM_SHOWN]
        for m in shown_masters:
            out.write(f"  broken    {m.kind:<15} {shown(m.path)}  {m.verdict}"
                      f"  ({count(len(m.dtbs), 'board')})\n")
        if len(masters) > len(shown_masters):
            out.write(f"  broken    ... and {len(masters) - len(shown_masters)} more platform "
                      "devices (--format json lists them)\n")
        boards = s.affected_boards
        more = f", ... and {len(boards) - BOARDS_SHOWN} more" if len(boards) > BOARDS_SHOWN else ""
        out.write(f"  boards    {shown(', '.join(boards[:BOARDS_SHOWN]))}{more}\n")
        out.write(f"  verdicts  {_counts(s.verdict_counts)}\n")
    rest = [s for s in sweep.socs if not s.affected]
    if rest:
        out.write(f"\nnot affected: {len(rest)} SoCs\n")
    if sweep.diagnostics:
        out.write(f"{len(sweep.diagnostics)} diagnostics (on stderr)\n")


def _md_cell(text):
    return shown(text).replace("|", "\\|")


def _md_code(text):
    """DTB text as a code span of a table cell: fenced by more backticks than
    it holds in a row, so a backtick in it cannot end the span and let the
    rest be read as Markdown (a link, an image, HTML)."""
    text = _md_cell(text)
    longest = max(map(len, re.findall(r"`+", text)), default=0)
    fence, pad = "`" * (longest + 1), " " if longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md(sweep, out):
    out.write(f"**{_md_cell(summary_line(sweep))}**\n\n")
    out.write("| SoC | boards affected | SMMU node | coherent | written at | broken masters |\n")
    out.write("|---|---|---|---|---|---|\n")
    for s in sweep.affected:
        smmus = [p for p in s.providers if p.affected]
        masters = "<br>".join(f"{_md_code(m.path)} ({m.kind}, {m.verdict})"
                              for m in s.broken_masters)
        out.write(f"| {_md_code(s.soc)} | {len(s.affected_boards)}/{len(s.boards)} | "
                  + "<br>".join(_md_code(p.path) for p in smmus) + " | "
                  + "<br>".join("yes" if p.coherent else "no" for p in smmus) + " | "
                  + "<br>".join(_md_code(p.where) if p.where else "" for p in smmus)
                  + f" | {masters} |\n")
    if sweep.evidence:
        out.write("\n| SoC | SMMU node | evidence | why |\n|---|---|---|---|\n")
        for e in sweep.evidence:
            out.write(f"| `{_md_cell(e.soc)}` | `{_md_cell(e.path)}` | {e.kind} | "
                      f"{_md_cell(e.reason)} |\n")


def _gcc(sweep, out):
    """file:line: warning: ... for each SMMU node to patch, so an editor or CI
    can jump to it; the DTB when the source is unknown."""
    for s in sweep.affected:
        for p in s.providers:
            if not p.affected:
                continue
            where = p.where or f"{sweep.corpus.root}/{p.dtbs[0]}"
            kinds = sorted({m.verdict for m in s.broken_masters})
            out.write(f"{shown(where)}: warning: {shown(s.soc)}: SMMU {shown(p.path)} lacks "
                      f"dma-coherent: VFIO refuses {count(len(s.broken_masters), 'master')} "
                      f"({', '.join(kinds)}) on {count(len(s.affected_boards), 'board')} "
                      f"[rule {sweep.rule}, target {sweep.target_kernel}]"
                      + _evidence_words(sweep.evidence_of(s.soc, p.path)) + "\n")


def _evidence_words(e):
    return f" [evidence {e.kind}: {shown(e.reason)}]" if e is not None else ""


# -- SARIF 2.1.0 -------------------------------------------------------------------

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# Rule ids are part of the interface: code-scanning UIs track results by them.
SARIF_RULES = (
    ("DTBA001", "smmu-not-dma-coherent-passthrough", "error",
     "SMMU node lacks dma-coherent: VFIO refuses PCI or fsl-mc devices behind it",
     "VFIO (vfio-pci, vfio-fsl-mc) and iommufd refuse a device unless its IOMMU reports "
     "IOMMU_CAP_CACHE_COHERENCY; arm-smmu and arm-smmu-v3 answer from the SMMU node's "
     "dma-coherent (of_dma_is_coherent). Add dma-coherent to the SMMU node once the "
     "hardware is confirmed coherent (IDR0.CTTW)."),
    ("DTBA002", "smmu-not-dma-coherent-platform", "warning",
     "SMMU node lacks dma-coherent: VFIO refuses platform devices behind it",
     "vfio-platform refuses a device unless its IOMMU reports IOMMU_CAP_CACHE_COHERENCY; "
     "arm-smmu and arm-smmu-v3 answer from the SMMU node's dma-coherent. Platform devices "
     "are rarely passed through; confirm the SMMU's coherency (IDR0.CTTW) before patching."),
)


def sarif_document(sweep):
    """The sweep as a SARIF 2.1.0 log: one result per SMMU node to patch, at
    the file and line where it is written (the DTB when not built from source)."""
    rules = [{"id": rid, "name": name, "shortDescription": {"text": short},
              "fullDescription": {"text": full}, "help": {"text": full},
              "defaultConfiguration": {"level": level}}
             for rid, name, level, short, full in SARIF_RULES]
    nodes = {}
    for s in sweep.affected:
        for p in s.providers:
            if not p.affected:
                continue
            key = (p.source_file, p.source_line) if p.source_file else (p.dtbs[0], p.path)
            entry = nodes.setdefault(key, {"provider": p, "socs": [], "boards": set(),
                                           "masters": {}, "passthrough": False})
            entry["socs"].append(s.soc)
            entry["boards"].update(set(p.dtbs) & set(s.affected_boards))
            entry["passthrough"] = entry["passthrough"] or s.passthrough
            for m in s.broken_masters:
                entry["masters"].setdefault((m.path, m.kind, m.verdict), set()).update(m.dtbs)
    results = []
    # By file, then line as a number (line 99 before line 100).
    for key in sorted(nodes, key=lambda k: (str(k[0]), k[1] if isinstance(k[1], int) else -1,
                                            str(k[1]))):
        e = nodes[key]
        p = e["provider"]
        index = 0 if e["passthrough"] else 1
        boards = sorted(e["boards"])
        masters = [{"path": m, "kind": k, "verdict": v, "boards": len(ds)}
                   for (m, k, v), ds in sorted(e["masters"].items(), key=lambda kv: str(kv[0]))]
        if p.source_file:
            location = {"uri": p.source_file, "uriBaseId": "KERNELROOT"}
        else:
            location = {"uri": p.dtbs[0], "uriBaseId": "CORPUSROOT"}
        physical = {"artifactLocation": location}
        if p.source_file and p.source_line is not None:     # a file without a line: no region
            physical["region"] = {"startLine": p.source_line}
        label = f" ({p.label})" if p.label else ""
        names = [s or NAMELESS for s in e["socs"]]
        text = (f"{', '.join(names)}: SMMU {p.path}{label} lacks "
                f"dma-coherent: VFIO refuses {count(len(masters), 'master')} on "
                f"{count(len(boards), 'board')} "
                f"(target {sweep.target_kernel}, rule {sweep.rule}): "
                + ", ".join(f"{m['path']} ({m['kind']}, {m['verdict']})" for m in masters[:8])
                + (f", and {len(masters) - 8} more" if len(masters) > 8 else ""))
        results.append({
            "ruleId": SARIF_RULES[index][0], "ruleIndex": index, "level": SARIF_RULES[index][2],
            "message": {"text": shown(text)},     # DTB text: no raw control characters
            "locations": [{"physicalLocation": physical,
                           "logicalLocations": [{"fullyQualifiedName": p.path, "kind": "object"}]}],
            # Stable across runs and line moves: the node and its SoCs, not the line.
            "partialFingerprints": {"smmuNode/v1": f"{'+'.join(sorted(names))}:{p.path}"},
            "properties": {"socs": e["socs"], "smmu_path": p.path, "label": p.label,
                           "compatible": list(p.compatible), "driver": p.driver,
                           "boards": boards, "masters": masters,
                           "target_kernel": sweep.target_text, "rule": sweep.rule.value,
                           **({"evidence": [ev.to_json() for soc in e["socs"]
                                            for ev in [sweep.evidence_of(soc, p.path)] if ev]}
                              if sweep.evidence else {})},
        })
    base = {}
    if sweep.corpus.kernel_dir:
        base["KERNELROOT"] = {"uri": _file_uri(sweep.corpus.kernel_dir)}
    base["CORPUSROOT"] = {"uri": _file_uri(sweep.corpus.root)}
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "dtb-audit", "version": tool_version() or "0",
                                "informationUri": "https://docs.kernel.org/driver-api/vfio.html",
                                "rules": rules}},
            "originalUriBaseIds": base,
            "results": results,
            "properties": {"target_kernel": sweep.target_text, "rule": sweep.rule.value,
                           "corpus": sweep.name},
        }],
    }


def _file_uri(folder):
    """The folder's file: URI with one slash at the end (SARIF's base URIs need it)."""
    from pathlib import Path
    uri = Path(folder).resolve().as_uri()
    return uri if uri.endswith("/") else uri + "/"


def tool_version():
    """dtb-audit's installed version; None when run from a checkout that
    was never installed."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("dtb-audit")
    except PackageNotFoundError:
        return None


def _sarif(sweep, out):
    json.dump(sarif_document(sweep), out, indent=1)
    out.write("\n")


# -- diagnostics -----------------------------------------------------------------

def diagnostic_line(d):
    """`dtb: warning: /path: message`, GNU style; text from the DTB escaped."""
    where = f"{shown(d.path)}: " if d.path else ""
    return f"{shown(d.dtb)}: {d.severity}: {where}{shown(d.message)}"


WRITERS = {"table": _table, "jsonl": _jsonl, "json": _json, "csv": _csv, "md": _md, "gcc": _gcc,
           "sarif": _sarif}
