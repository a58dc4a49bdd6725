"""Night after night: what changed between two sweeps, and across versions.

`diff_sweeps(old, new)` compares two Sweeps (auditor/model.py): the SoCs,
boards and links that became affected or stopped being affected, and the
SMMUs whose coherency changed (a `dma-coherent` added, or removed, as
upstream did for sdm845 in 2025).  `history(sweeps)` follows each SoC with
an SMMU through several versions in order.

Identities across sweeps are the model's: a SoC by its compatible, a board
by its DTB path, a link by Link.key, an SMMU by (SoC, path).  A board or
link is affected when it is a VFIO candidate with a `broken*` verdict (SPEC
section 4).  Something that exists only in NEW and is affected counts as
newly affected: a nightly job wants to hear about it.
"""
from .model import NAMELESS
from .text import shown


# --- what one document says ---------------------------------------------------

def _affected_links(sweep):
    """{Link.key: Link} of the VFIO candidate links with a broken* verdict."""
    return {link.key: link for link in sweep.links if link.affected}


def _boards(sweep):
    """{dtb: soc} of every board, and the set of affected boards."""
    boards, affected = {}, set()
    for soc in sweep.socs:
        for dtb in soc.boards:
            boards[dtb] = soc.soc
        affected.update(soc.affected_boards)
    return boards, affected


def _smmus(sweep):
    """{(soc, path): Provider} of every SMMU."""
    return {(soc.soc, p.path): p for soc in sweep.socs for p in soc.providers}


# --- diff ---------------------------------------------------------------------

def diff_sweeps(old, new):
    """What changed from sweep `old` to sweep `new`, as a JSON-able document.

    "regression" is true exactly when a SoC, a board or a link became
    affected: what `--fail-on-new` exits 1 for."""
    old_socs = {s.soc: s for s in old.socs}
    new_socs = {s.soc: s for s in new.socs}
    socs = {"newly_affected": [], "fixed": [], "gone": []}
    for name, s in sorted(new_socs.items(), key=lambda kv: kv[0] or ""):
        before = old_socs.get(name)
        if s.affected and not (before and before.affected):
            socs["newly_affected"].append(_soc_change(name, before, s))
    for name, s in sorted(old_socs.items(), key=lambda kv: kv[0] or ""):
        if not s.affected:
            continue
        after = new_socs.get(name)
        if after is None:
            socs["gone"].append(_soc_change(name, s, None))
        elif not after.affected:
            socs["fixed"].append(_soc_change(name, s, after))

    old_boards, old_affected = _boards(old)
    new_boards, new_affected = _boards(new)
    boards = {
        "newly_affected": [{"dtb": b, "soc": new_boards.get(b), "new_board": b not in old_boards}
                           for b in sorted(new_affected - old_affected)],
        "fixed": [{"dtb": b, "soc": new_boards.get(b)}
                  for b in sorted(old_affected - new_affected) if b in new_boards],
        "gone": [{"dtb": b, "soc": old_boards.get(b)}
                 for b in sorted(old_affected) if b not in new_boards],
    }

    old_links, new_links = _affected_links(old), _affected_links(new)
    new_all = {link.key: link for link in new.links}
    old_all = {link.key: link for link in old.links}
    links = {
        "newly_affected": [_link_change(old_all.get(k), new_links[k])
                           for k in sorted(new_links.keys() - old_links.keys(), key=_sort_key)],
        "fixed": [_link_change(old_links[k], new_all[k])
                  for k in sorted(old_links.keys() - new_links.keys(), key=_sort_key)
                  if k in new_all],
    }

    coherency = {"added": [], "removed": []}
    old_smmus, new_smmus = _smmus(old), _smmus(new)
    for key in sorted(old_smmus.keys() & new_smmus.keys(), key=_sort_key):
        before, after = old_smmus[key], new_smmus[key]
        if before.coherent != after.coherent:
            coherency["added" if after.coherent else "removed"].append({
                "soc": key[0], "path": key[1], "label": after.label or before.label,
                "compatible": list(after.compatible), "driver": after.driver,
                "source_file": after.source_file or before.source_file,
                "source_line": after.source_line or before.source_line,
                "old_affected": before.affected, "new_affected": after.affected})

    return {
        "tool": "dtb-audit",
        "kind": "diff",
        "old": _about(old),
        "new": _about(new),
        "socs": socs,
        "boards": boards,
        "links": links,
        "smmu_coherency": coherency,
        "regression": bool(socs["newly_affected"] or boards["newly_affected"]
                           or links["newly_affected"]),
    }


def _sort_key(key):
    return tuple("" if k is None else str(k) for k in key)


def _about(sweep):
    return {"identity": sweep.name, "target_kernel": sweep.target_kernel, "rule": sweep.rule,
            "legacy_dt_bindings": sweep.legacy_dt_bindings}


def _soc_change(name, before, after):
    return {"soc": name,
            "old_affected_boards": len(before.affected_boards) if before else None,
            "new_affected_boards": len(after.affected_boards) if after else None,
            "boards": len((after or before).boards),
            "new_soc": before is None}


def _link_change(before, after):
    return {"dtb": after.dtb, "soc": after.soc, "provider_path": after.provider_path,
            "master_path": after.master_path, "link": after.link,
            "master_kind": after.master_kind,
            "old_verdict": before.verdict if before else None,
            "new_verdict": after.verdict}


def rule_mismatch(old, new):
    """A warning text when the two sweeps were made under different rules
    (the rule, or the legacy mmu-masters binding); a different target kernel
    is expected between versions and not warned about."""
    a, b = _about(old), _about(new)
    if a["legacy_dt_bindings"] == b["legacy_dt_bindings"] and \
            (a["rule"] == b["rule"] or a["target_kernel"] != b["target_kernel"]):
        return None     # the same rule, or each version judged by its own kernel
    if (a["rule"], a["legacy_dt_bindings"]) != (b["rule"], b["legacy_dt_bindings"]):
        return (f"the sweeps use different rules ({a['rule']}, legacy {a['legacy_dt_bindings']} "
                f"-> {b['rule']}, legacy {b['legacy_dt_bindings']}): changes may come from "
                f"the rule, not the trees")
    return None


def format_diff(d, most=40):
    """The diff for people: regressions first, then fixes, then coherency."""
    out = [f"dtb-audit diff: {shown(d['old']['identity'])} -> {shown(d['new']['identity'])} "
           f"(target {d['old']['target_kernel']} -> {d['new']['target_kernel']}, "
           f"rule {d['new']['rule']})\n"]

    def section(title, rows):
        out.append(f"\n{title} ({len(rows)}):\n" if rows else f"\n{title}: none\n")
        for row in rows[:most]:
            out.append(f"  {shown(row)}\n")
        if len(rows) > most:
            out.append(f"  ... and {len(rows) - most} more (--format json lists all)\n")

    socs, boards, links = d["socs"], d["boards"], d["links"]
    section("SoCs newly affected", [
        f"{s['soc']}: {s['new_affected_boards']} of {s['boards']} boards"
        + (" (new SoC)" if s["new_soc"] else "") for s in socs["newly_affected"]])
    section("Boards newly affected", [
        f"{b['dtb']}" + (" (new board)" if b["new_board"] else "")
        for b in boards["newly_affected"]])
    section("Links newly affected", [
        f"{l['dtb']}: {l['master_path']} ({l['master_kind']}) -> {l['provider_path']}: "
        f"{l['old_verdict'] or 'new link'} -> {l['new_verdict']}"
        for l in links["newly_affected"]])
    section("SoCs no longer affected", [
        f"{s['soc']}: {s['old_affected_boards']} affected boards -> 0"
        for s in socs["fixed"]])
    out.append(f"  ({len(boards['fixed'])} boards and {len(links['fixed'])} links "
               f"no longer affected)\n")
    if socs["gone"] or boards["gone"]:
        out.append(f"  ({len(socs['gone'])} affected SoCs and {len(boards['gone'])} affected "
                   f"boards are no longer in the new corpus)\n")
    coherency = d["smmu_coherency"]
    section("SMMUs now dma-coherent", [_smmu_row(s) for s in coherency["added"]])
    section("SMMUs no longer dma-coherent", [_smmu_row(s) for s in coherency["removed"]])
    return "".join(out)


def _smmu_row(s):
    label = f" ({s['label']})" if s.get("label") else ""
    where = f" [{s['source_file']}:{s['source_line']}]" if s.get("source_file") else ""
    return f"{s['soc']}: {s['path']}{label}{where}"


# --- history ----------------------------------------------------------------

def history(docs, names=None):
    """Each SoC with an SMMU through `docs` (oldest first), as a document.

    Per SoC and version: "affected", "unaffected", or None when the
    version has no such SoC; the SMMUs' coherency ("coherent",
    "non-coherent", "mixed", or None without an SMMU); and the changes:
    in which version the SMMUs became or stopped being coherent, and the
    SoC became or stopped being affected."""
    names = names or [d.name for d in docs]
    per_version = [{s.soc: s for s in d.socs} for d in docs]
    with_smmu = sorted({soc for socs in per_version for soc, s in socs.items()
                        if s.providers}, key=lambda s: s or "")
    rows = []
    for soc in with_smmu:
        verdicts, coherency = [], []
        for socs in per_version:
            s = socs.get(soc)
            verdicts.append(None if s is None else "affected" if s.affected else "unaffected")
            coherency.append(None if s is None else _coherency(s.providers))
        changes = []
        for k in range(1, len(docs)):
            for what, values in (("smmu", coherency), ("verdict", verdicts)):
                a, b = values[k - 1], values[k]
                if a is not None and b is not None and a != b:
                    changes.append({"version": names[k], "what": what, "old": a, "new": b})
        rows.append({"soc": soc, "verdicts": verdicts, "smmu": coherency, "changes": changes})
    rows.sort(key=lambda r: (not r["changes"], not any(v == "affected" for v in r["verdicts"]),
                             r["soc"] or ""))
    return {"tool": "dtb-audit", "kind": "history", "versions": names,
            "target_kernels": [d.target_kernel for d in docs],
            "rules": [d.rule for d in docs], "socs": rows}


def _coherency(providers):
    flags = {p.coherent for p in providers}
    if not flags:
        return None
    return "mixed" if len(flags) == 2 else "coherent" if flags.pop() else "non-coherent"


def format_history(h, changed_only=False):
    """One row per SoC: its verdict in each version, and when its SMMU
    became or stopped being coherent."""
    short = [_short(v) for v in h["versions"]]
    rows = [r for r in h["socs"] if r["changes"] or not changed_only]
    width = max([len("SoC")] + [len(shown(r["soc"] or NAMELESS)) for r in rows])
    cols = [max(len(s), len("unaffected")) for s in short]
    out = ["SoC".ljust(width) + "  " + "  ".join(s.ljust(c) for s, c in zip(short, cols))
           + "  SMMU\n"]
    for r in rows:
        cells = [(v or "-").ljust(c) for v, c in zip(r["verdicts"], cols)]
        out.append(shown(r["soc"] or NAMELESS).ljust(width) + "  " + "  ".join(cells) + "  "
                   + _smmu_story(r, short, h["versions"]) + "\n")
    return "".join(out)


def _short(identity):
    # "linux-6.1.192 (debian linux-source-6.1)" -> "linux-6.1.192"
    return shown(identity.split(" (", 1)[0])


def _smmu_story(row, short, versions):
    moves = [c for c in row["changes"] if c["what"] == "smmu"]
    if not moves:
        known = [s for s in row["smmu"] if s is not None]
        return f"{known[0]} throughout" if known and len(set(known)) == 1 else "-"
    name = dict(zip(versions, short))
    return "; ".join(f"{c['new']} from {name[c['version']]}" for c in moves)
