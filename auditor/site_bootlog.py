"""The boot-log findings on the site's SoC pages: `dtb-audit bootlog
--format json` read, checked field by field, and shown as a table.

Kept apart from auditor/site.py: the document is young.  Only the fields
shown are required (auditor/schemas.py); a field of the wrong type, or a
finding this version does not know, refuses the whole document with one
line naming the file and field.
"""
from corpus.errors import UserError

from .bootlog import FINDINGS, SCHEMA
from .site_html import h, read_json_document, table


class BootlogFileError(UserError):
    """A document that is not a bootlog document this version reads."""


def load_bootlog(path) -> dict:
    """The bootlog document saved in `path`, checked against its schema
    (auditor/schemas.py); raises BootlogFileError."""
    from .schemas import bootlog_schema, check
    name, doc = read_json_document(path, "bootlog document", BootlogFileError)
    if not isinstance(doc, dict) or doc.get("tool") != "dtb-audit" or doc.get("kind") != "bootlog":
        raise BootlogFileError(name, "not a bootlog document (write one with "
                                     "`dtb-audit bootlog --format json`)")
    check(doc, bootlog_schema(FINDINGS, SCHEMA), name, "not a valid bootlog document", None,
          BootlogFileError)
    return doc


def logs_of(doc, soc, boards) -> list:
    """The logs of a SoC: those naming it, or booted on one of its boards."""
    boards = set(boards)
    return [log for log in doc["logs"]
            if (log.get("soc") is not None and log.get("soc") == soc)
            or boards.intersection(log["boards"])]


def _coherent(value):
    return "unknown" if value is None else "coherent" if value else "not coherent"


def section(logs) -> str:
    """The SoC page's boot-log section (HTML)."""
    rows = []
    for log in logs:
        for smmu in log["smmus"]:
            finding = smmu["finding"]
            rows.append([
                ("th", h(log["log"])), h(log["model"] or ""), h(log["kernel"] or ""),
                f"<code>{h(smmu['device'])}</code>",
                f"<code>{h(smmu['node'] or '')}</code>",
                h(_coherent(smmu["dt_coherent"])), h(_coherent(smmu["hw_coherent"])),
                f'<span class="finding{" bad" if finding == "dt-lacks-coherent" else ""}">'
                f'{h(finding)}</span>',
                h(smmu["note"] or "")])
    if not rows:
        return ('<section><h2>Boot logs</h2><p class="muted">No boot log of this SoC\'s '
                'boards.</p></section>')
    return ("<section><h2>Boot logs</h2>"
            + table("bootlogs", "What each boot log says of the SMMU's coherency register",
                    ["Log", "Model", "Kernel", "Device", "Node", "DT", "Register", "Finding",
                     "Note"], rows)
            + "</section>")
