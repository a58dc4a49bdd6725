"""The boot-log findings on the site's SoC pages: `dtb-audit bootlog
--format json` read, checked field by field, and shown as a table.

Kept apart from auditor/site.py: the document is young, and this module
is the only place that knows its shape.  Only the fields shown are
required; a field of the wrong type, or a finding this version does not
know, refuses the whole document with one line naming the file and field.
"""
from .bootlog import FINDINGS, SCHEMA
from .site_html import h, read_json_document, table
from corpus.errors import UserError



class BootlogFileError(UserError):
    """A document that is not a bootlog document this version reads."""


def load_bootlog(path) -> dict:
    """The bootlog document saved in `path`, checked; raises BootlogFileError."""
    name, doc = read_json_document(path, "bootlog document", BootlogFileError)

    def bad(where, what):
        raise BootlogFileError(name, f"not a valid bootlog document: {where} is not {what}")

    if not isinstance(doc, dict) or doc.get("tool") != "dtb-audit" or doc.get("kind") != "bootlog":
        raise BootlogFileError(name, "not a bootlog document (write one with "
                                     "`dtb-audit bootlog --format json`)")
    if doc.get("schema") != SCHEMA:
        bad("schema", f"{SCHEMA}")
    if not isinstance(doc.get("logs"), list):
        bad("logs", "a list")
    if not isinstance(doc.get("socs", []), list):
        bad("socs", "a list")
    for k, log in enumerate(doc["logs"]):
        at = f"logs[{k}]"
        if not isinstance(log, dict):
            bad(at, "an object")
        if not isinstance(log.get("log"), str):
            bad(f"{at}.log", "a string")
        for key in ("model", "kernel", "soc"):
            if not isinstance(log.get(key), (str, type(None))):
                bad(f"{at}.{key}", "a string or null")
        for key in ("boards", "smmus"):
            if not isinstance(log.get(key), list):
                bad(f"{at}.{key}", "a list")
        if not all(isinstance(b, str) for b in log["boards"]):
            bad(f"{at}.boards", "a list of strings")
        for j, smmu in enumerate(log["smmus"]):
            where = f"{at}.smmus[{j}]"
            if not isinstance(smmu, dict):
                bad(where, "an object")
            if not isinstance(smmu.get("device"), str):
                bad(f"{where}.device", "a string")
            for key in ("node", "note"):
                if not isinstance(smmu.get(key), (str, type(None))):
                    bad(f"{where}.{key}", "a string or null")
            for key in ("dt_coherent", "hw_coherent"):
                if not isinstance(smmu.get(key), (bool, type(None))):
                    bad(f"{where}.{key}", "true, false or null")
            if smmu.get("finding") not in FINDINGS:
                bad(f"{where}.finding", "one of " + ", ".join(FINDINGS))
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
