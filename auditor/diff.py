"""Night after night: what changed between two sweeps.

`diff_sweeps(old, new)` compares two Sweeps (auditor/model.py) into a Diff
(auditor/documents.py): the SoCs, boards and links that became affected or
stopped being affected, and the SMMUs whose coherency changed (a
`dma-coherent` added, or removed, as upstream did for sdm845 in 2025).
Across more versions: auditor/history/stitching.py's of_sweeps().

Identities across sweeps are the model's: a SoC by its compatible, a board
by its DTB path, a link by Link.key, an SMMU by (SoC, path).  A board or
link is affected when it is a VFIO candidate with a `broken*` verdict
(docs/rule.md).  Something that exists only in NEW and is affected counts
as newly affected: a nightly job wants to hear about it.
"""
from .documents import (About, BoardChange, Changes, CoherencyChange, Diff, LinkChange,
                        SocChange)
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

def diff_sweeps(old, new) -> Diff:
    """What changed from sweep `old` to sweep `new`."""
    old_socs = {s.soc: s for s in old.socs}
    new_socs = {s.soc: s for s in new.socs}
    newly, fixed, gone = [], [], []
    for name, s in sorted(new_socs.items(), key=lambda kv: kv[0] or ""):
        before = old_socs.get(name)
        if s.affected and not (before and before.affected):
            newly.append(_soc_change(name, before, s))
    for name, s in sorted(old_socs.items(), key=lambda kv: kv[0] or ""):
        if not s.affected:
            continue
        after = new_socs.get(name)
        if after is None:
            gone.append(_soc_change(name, s, None))
        elif not after.affected:
            fixed.append(_soc_change(name, s, after))
    socs = Changes(tuple(newly), tuple(fixed), tuple(gone))

    old_boards, old_affected = _boards(old)
    new_boards, new_affected = _boards(new)
    boards = Changes(
        tuple(BoardChange(b, new_boards.get(b), b not in old_boards)
              for b in sorted(new_affected - old_affected)),
        tuple(BoardChange(b, new_boards.get(b))
              for b in sorted(old_affected - new_affected) if b in new_boards),
        tuple(BoardChange(b, old_boards.get(b))
              for b in sorted(old_affected) if b not in new_boards))

    old_links, new_links = _affected_links(old), _affected_links(new)
    new_all = {link.key: link for link in new.links}
    old_all = {link.key: link for link in old.links}
    links = Changes(
        tuple(_link_change(old_all.get(k), new_links[k])
              for k in sorted(new_links.keys() - old_links.keys(), key=_sort_key)),
        tuple(_link_change(old_links[k], new_all[k])
              for k in sorted(old_links.keys() - new_links.keys(), key=_sort_key)
              if k in new_all))

    added, removed = [], []
    old_smmus, new_smmus = _smmus(old), _smmus(new)
    for key in sorted(old_smmus.keys() & new_smmus.keys(), key=_sort_key):
        before, after = old_smmus[key], new_smmus[key]
        if before.coherent != after.coherent:
            (added if after.coherent else removed).append(CoherencyChange(
                key[0], key[1], after.label or before.label, tuple(after.compatible),
                after.driver, after.source_file or before.source_file,
                after.source_line or before.source_line, before.affected, after.affected))
    return Diff(_about(old), _about(new), socs, boards, links, tuple(added), tuple(removed))


def _sort_key(key):
    return tuple("" if k is None else str(k) for k in key)


def _about(sweep) -> About:
    return About(sweep.name, sweep.target_kernel, sweep.rule, sweep.legacy_dt_bindings)


def _soc_change(name, before, after) -> SocChange:
    return SocChange(name, len(before.affected_boards) if before else None,
                     len(after.affected_boards) if after else None,
                     len((after or before).boards), before is None)


def _link_change(before, after) -> LinkChange:
    return LinkChange(after.dtb, after.soc, after.provider_path, after.master_path, after.link,
                      after.master_kind, before.verdict if before else None, after.verdict)


def rule_mismatch(old, new):
    """A warning text when the two sweeps were made under different rules
    (the rule, or the legacy mmu-masters binding); a different target kernel
    is expected between versions and not warned about."""
    a, b = _about(old), _about(new)
    if a.legacy_dt_bindings == b.legacy_dt_bindings and \
            (a.rule == b.rule or str(a.target_kernel) != str(b.target_kernel)):
        return None     # the same rule, or each version judged by its own kernel
    if (a.rule, a.legacy_dt_bindings) != (b.rule, b.legacy_dt_bindings):
        return (f"the sweeps use different rules ({a.rule}, legacy {a.legacy_dt_bindings} "
                f"-> {b.rule}, legacy {b.legacy_dt_bindings}): changes may come from "
                f"the rule, not the trees")
    return None


def format_diff(d: Diff, most=40):
    """The diff for people: regressions first, then fixes, then coherency."""
    out = [f"dtb-audit diff: {shown(d.old.identity)} -> {shown(d.new.identity)} "
           f"(target {d.old.target_kernel} -> {d.new.target_kernel}, "
           f"rule {d.new.rule})\n"]

    def section(title, rows):
        out.append(f"\n{title} ({len(rows)}):\n" if rows else f"\n{title}: none\n")
        for row in rows[:most]:
            out.append(f"  {shown(row)}\n")
        if len(rows) > most:
            out.append(f"  ... and {len(rows) - most} more (--format json lists all)\n")

    socs, boards, links = d.socs, d.boards, d.links
    section("SoCs newly affected", [
        f"{s.soc}: {s.new_affected_boards} of {s.boards} boards"
        + (" (new SoC)" if s.new_soc else "") for s in socs.newly_affected])
    section("Boards newly affected", [
        f"{b.dtb}" + (" (new board)" if b.new_board else "")
        for b in boards.newly_affected])
    section("Links newly affected", [
        f"{l.dtb}: {l.master_path} ({l.master_kind}) -> {l.provider_path}: "
        f"{l.old_verdict or 'new link'} -> {l.new_verdict}"
        for l in links.newly_affected])
    section("SoCs no longer affected", [
        f"{s.soc}: {s.old_affected_boards} affected boards -> 0"
        for s in socs.fixed])
    out.append(f"  ({len(boards.fixed)} boards and {len(links.fixed)} links "
               f"no longer affected)\n")
    if socs.gone or boards.gone:
        out.append(f"  ({len(socs.gone)} affected SoCs and {len(boards.gone)} affected "
                   f"boards are no longer in the new corpus)\n")
    section("SMMUs now dma-coherent", [_smmu_row(s) for s in d.coherency_added])
    section("SMMUs no longer dma-coherent", [_smmu_row(s) for s in d.coherency_removed])
    return "".join(out)


def _smmu_row(s: CoherencyChange):
    label = f" ({s.label})" if s.label else ""
    where = f" [{s.source_file}:{s.source_line}]" if s.source_file else ""
    return f"{s.soc}: {s.path}{label}{where}"
