"""Output formats of a sweep document (auditor.sweep): people read `table`
and `md`, editors and CI `gcc`, machines `jsonl`, `json` and `csv`."""
import csv
import json

from .sweep import LINK_FIELDS, PASSTHROUGH_KINDS

PLATFORM_SHOWN = 5   # platform masters listed per SoC in the table; rarely passed through
BOARDS_SHOWN = 6

FORMATS = ("table", "jsonl", "json", "csv", "md", "gcc")


def write(doc, fmt, out):
    WRITERS[fmt](doc, out)


def _jsonl(doc, out):
    for r in doc["links"]:
        out.write(json.dumps({f: r[f] for f in LINK_FIELDS}) + "\n")


def _json(doc, out):
    json.dump(doc, out, indent=1)
    out.write("\n")


def _csv(doc, out):
    w = csv.writer(out, lineterminator="\n")
    w.writerow(LINK_FIELDS)
    for r in doc["links"]:
        w.writerow([";".join(r[f]) if isinstance(r[f], list) else
                    ("" if r[f] is None else r[f]) for f in LINK_FIELDS])


def _where(p):
    if p.get("source_file"):
        return f"{p['source_file']}:{p['source_line']}"
    return None


def _provider_line(p):
    label = f" ({p['label']})" if p.get("label") else ""
    coherent = "dma-coherent" if p["coherent"] else "NOT dma-coherent"
    return f"{p['path']}{label} {', '.join(p['compatible'])}: {coherent}"


def _counts(counts):
    return ", ".join(f"{v} {n}" for v, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def summary_line(doc):
    socs = doc["socs"]
    affected = [s for s in socs if s["affected"]]
    boards = sum(len(s["boards"]) for s in socs)
    passthrough = sum(1 for s in affected if s["passthrough"])
    return (f"{doc['corpus'].get('identity') or doc['corpus']['root']}: rule {doc['rule']}: "
            f"{len(doc['links'])} links on {boards} boards of {len(socs)} SoCs; "
            f"{len(affected)} SoCs affected ({passthrough} with PCI/fsl-mc passthrough broken)")


def _table(doc, out):
    out.write(summary_line(doc) + "\n")
    affected = [s for s in doc["socs"] if s["affected"]]
    for s in affected:
        tag = "PCI/fsl-mc passthrough broken" if s["passthrough"] else "platform devices only"
        out.write(f"\nAFFECTED {s['soc']}  {len(s['affected_boards'])}/{len(s['boards'])} boards"
                  f"  [{tag}]\n")
        for p in s["providers"]:
            if not p["affected"]:
                continue
            out.write(f"  provider  {_provider_line(p)}\n")
            if _where(p):
                out.write(f"            written at {_where(p)}\n")
        masters = sorted(s["broken_masters"], key=lambda m: m["kind"] not in PASSTHROUGH_KINDS)
        shown = [m for m in masters if m["kind"] in PASSTHROUGH_KINDS]
        shown += [m for m in masters if m["kind"] not in PASSTHROUGH_KINDS][:PLATFORM_SHOWN]
        for m in shown:
            out.write(f"  broken    {m['kind']:<15} {m['path']}  {m['verdict']}"
                      f"  ({len(m['dtbs'])} boards)\n")
        if len(masters) > len(shown):
            out.write(f"  broken    ... and {len(masters) - len(shown)} more platform devices"
                      " (--format json lists them)\n")
        boards = s["affected_boards"]
        more = f", ... and {len(boards) - BOARDS_SHOWN} more" if len(boards) > BOARDS_SHOWN else ""
        out.write(f"  boards    {', '.join(boards[:BOARDS_SHOWN])}{more}\n")
        out.write(f"  verdicts  {_counts(s['verdict_counts'])}\n")
    rest = [s for s in doc["socs"] if not s["affected"]]
    if rest:
        out.write(f"\nnot affected: {len(rest)} SoCs\n")
    if doc["diagnostics"]:
        out.write(f"{len(doc['diagnostics'])} diagnostics (on stderr)\n")


def _md(doc, out):
    out.write(f"**{summary_line(doc)}**\n\n")
    out.write("| SoC | boards affected | SMMU node | coherent | written at | broken masters |\n")
    out.write("|---|---|---|---|---|---|\n")
    for s in doc["socs"]:
        if not s["affected"]:
            continue
        smmus = [p for p in s["providers"] if p["affected"]]
        masters = "<br>".join(f"`{m['path']}` ({m['kind']}, {m['verdict']})"
                              for m in s["broken_masters"])
        out.write(f"| `{s['soc']}` | {len(s['affected_boards'])}/{len(s['boards'])} | "
                  + "<br>".join(f"`{p['path']}`" for p in smmus) + " | "
                  + "<br>".join("yes" if p["coherent"] else "no" for p in smmus) + " | "
                  + "<br>".join(f"`{_where(p)}`" if _where(p) else "" for p in smmus)
                  + f" | {masters} |\n")


def _gcc(doc, out):
    """file:line: warning: ... for each SMMU node to patch, so an editor or CI
    can jump to it; the DTB when the source is unknown."""
    for s in doc["socs"]:
        for p in s["providers"]:
            if not p["affected"]:
                continue
            where = _where(p) or f"{doc['corpus']['root']}/{p['dtbs'][0]}"
            masters = [m for m in s["broken_masters"]]
            kinds = sorted({m["verdict"] for m in masters})
            out.write(f"{where}: warning: {s['soc']}: SMMU {p['path']} lacks dma-coherent: "
                      f"VFIO refuses {len(masters)} masters ({', '.join(kinds)}) on "
                      f"{len(s['affected_boards'])} boards [rule {doc['rule']}]\n")


def diagnostics(doc, err):
    """Problems found in the DTBs, one GNU-style line each (one write per line)."""
    for d in doc["diagnostics"]:
        where = f"{d['dtb']}: {d['path']}: " if d["path"] else ""
        message = d["message"]
        if message.startswith(d["dtb"]):       # parser errors already name the file
            err.write(message + "\n")
        else:
            err.write(f"{d['dtb']}: warning: {where[len(d['dtb']) + 2:]}{message}\n")


WRITERS = {"table": _table, "jsonl": _jsonl, "json": _json, "csv": _csv, "md": _md, "gcc": _gcc}
