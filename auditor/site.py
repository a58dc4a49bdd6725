"""`dtb-audit site`: a static site from saved documents.

index.html holds the corpus, target kernel and rule, the verdict counts as
an SVG chart, what became or stopped being affected since a previous
sweep, and the affected SoCs in a table (in the HTML itself: the page is
whole without JavaScript; the script only sorts and filters).  soc/ holds
one page per SoC with an SMMU: its SMMUs and where each is written (linked
through a --source-url template), its boards, the broken masters, the
boot-log findings (auditor/site_bootlog.py) and its line of the history.
data/ holds the documents as JSON beside the pages.

Nothing is fetched at view time (no server, no CDN: it works from file://),
and the whole folder is replaced at once (auditor.output.write_folder).
A SoC page's file name is made from its compatible by keeping letters and
digits and adding a hash of the whole string: no compatible can name a
path outside soc/, and two SoCs never share a page.
"""
import hashlib
import json
import os
import re
from urllib.parse import quote, urlsplit

from corpus.errors import UserError
from kernels.codes import BROKEN_VERDICTS, EVIDENCE_VERDICTS, VERDICT_NAMES

from . import site_bootlog
from .diff import diff_sweeps
from .model import NAMELESS
from .output import write_folder
from .report import count, target_words
from .site_html import h, page, table

MARKER = ".dtb-audit-site"


class SiteInputError(UserError):
    """A document or option the site cannot be made from."""


# -- the inputs besides the sweep --------------------------------------------------

_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def check_source_url(template):
    """Refuse a --source-url that is not an http(s) or file URL with {path}."""
    if "{path}" not in template:
        raise SiteInputError(f"--source-url {template!r}",
                             "needs {path} (and may use {line} and {version})")
    unknown = set(_PLACEHOLDER.findall(template)) - {"{path}", "{line}", "{version}"}
    if unknown:
        raise SiteInputError(f"--source-url {template!r}", f"unknown placeholder "
                             f"{sorted(unknown)[0]} (use {{path}}, {{line}}, {{version}})")
    if urlsplit(template).scheme not in ("http", "https", "file"):
        raise SiteInputError(f"--source-url {template!r}", "not an http, https or file URL")


def source_url(template, version, path, line):
    return (template.replace("{path}", quote(path, safe="/"))
            .replace("{line}", "" if line is None else str(line))
            .replace("{version}", quote(version or "", safe="")))


# -- names and links -----------------------------------------------------------

def page_name(soc) -> str:
    """soc/<letters and digits of the compatible>-<hash>.html, for any compatible."""
    text = NAMELESS if soc is None else soc
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48].strip("-") or "soc"
    digest = hashlib.sha256(("\0" if soc is None else "=" + soc).encode(
        "utf-8", "surrogatepass")).hexdigest()[:12]
    return f"soc/{slug}-{digest}.html"


class _Links:
    def __init__(self, template, version, prefix, paged):
        self.template, self.version, self.prefix = template, version, prefix
        self.paged = paged          # the SoCs that have a page

    def where(self, p):
        """The provider's file:line, linked when a template was given."""
        if not p.source_file:
            # A DTB folder has no sources; a tree's sweep locates affected SMMUs only.
            return '<span class="muted">position not recorded</span>'
        text = f"<code>{h(p.where)}</code>"
        if not self.template:
            return text
        url = source_url(self.template, self.version, p.source_file, p.source_line)
        return f'<a href="{h(url)}">{text}</a>'

    def soc(self, name):
        text = h(NAMELESS if name is None else name)
        if name not in self.paged:      # gone from the corpus since --previous
            return text
        return f'<a href="{self.prefix}{page_name(name)}">{text}</a>'


# -- pieces of pages ---------------------------------------------------------------

def _facts(pairs):
    return ('<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in pairs)
            + "</dl>")


_COLOURS = {"broken": "#b3261e", "broken-bridge-coherent": "#d9480f",
            "unsupported-iommu": "#8d6e00", "rescued-by-device": "#1b6e20", "capable": "#2e7d32",
            "no-iommu": "#6b7280", "not-a-device": "#9ca3af"}


def verdict_chart(counts) -> str:
    """The verdict counts as horizontal bars (inline SVG, numbers written)."""
    items = [(v, counts.get(v, 0)) for v in VERDICT_NAMES if counts.get(v, 0)]
    if not items:
        return '<p class="muted">No links.</p>'
    most = max(n for _, n in items)
    row, label_w, bar_w = 22, 170, 320
    height = row * len(items) + 8
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{label_w + bar_w + 80}" '
             f'height="{height}" viewBox="0 0 {label_w + bar_w + 80} {height}" '
             f'aria-labelledby="chart-title"><title id="chart-title">Links by verdict: '
             + h(", ".join(f"{v} {n}" for v, n in items)) + "</title>"]
    for k, (verdict, n) in enumerate(items):
        y = 4 + k * row
        w = max(1, round(bar_w * n / most))
        colour = _COLOURS.get(verdict, "#b3261e" if verdict in BROKEN_VERDICTS else "#4a6fa5")
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{h(verdict)}</text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="16" fill="{colour}"/>'
                     f'<text x="{label_w + w + 6}" y="{y + 15}">{n}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _changes(diff, links):
    socs = diff.socs

    def items(rows, text):
        if not rows:
            return '<p class="muted">None.</p>'
        return ('<ul class="changes">' + "".join(f"<li>{links.soc(r.soc)}: {text(r)}</li>"
                                                  for r in rows) + "</ul>")

    def smmus(rows):
        if not rows:
            return '<p class="muted">None.</p>'
        return ('<ul class="changes">' + "".join(
            f"<li>{links.soc(r.soc)}: <code>{h(r.path)}</code>"
            + (f" <code>{h(r.source_file)}:{h(r.source_line)}</code>"
               if r.source_file else "") + "</li>" for r in rows) + "</ul>")

    return (f'<section id="changes"><h2>Since {h(diff.old.identity)}</h2>'
            f'<h3>Newly affected ({len(socs.newly_affected)})</h3>'
            + items(socs.newly_affected,
                    lambda r: f"{r.new_affected_boards} of {count(r.boards, 'board')}"
                    + (" (new SoC)" if r.new_soc else ""))
            + f'<h3>No longer affected ({len(socs.fixed)})</h3>'
            + items(socs.fixed, lambda r: f"{r.old_affected_boards} affected boards before")
            + (f'<h3>Affected before, gone from the corpus ({len(socs.gone)})</h3>'
               + items(socs.gone, lambda r: f"{r.old_affected_boards} affected boards before")
               if socs.gone else "")
            + f'<h3>SMMUs that gained dma-coherent ({len(diff.coherency_added)})</h3>'
            + smmus(diff.coherency_added)
            + f'<h3>SMMUs that lost dma-coherent ({len(diff.coherency_removed)})</h3>'
            + smmus(diff.coherency_removed) + "</section>")


def _cells(items):
    return '<ul class="cells">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _evidence(sweep, s, p) -> str:
    """An SMMU's evidence class (auditor.evidence), its reason on hover."""
    e = sweep.evidence_of(s.soc, p.path)
    return (f'<span class="evidence" title="{h(e.reason)}">{h(e.kind)}</span>'
            if e is not None else "")


def _affected_table(sweep, links):
    rows = []
    for s in sweep.affected:
        smmus = [p for p in s.providers if p.affected]
        first = next((p for p in smmus if p.source_file), None)
        rows.append([
            ("th", links.soc(s.soc), NAMELESS if s.soc is None else s.soc),
            ("td", f"{len(s.affected_boards)} / {len(s.boards)}", len(s.affected_boards), "num"),
            ("td", '<span class="bad nowrap">PCI / fsl-mc refused</span>' if s.passthrough
             else "platform devices only", "1" if s.passthrough else "0"),
            _cells(f"<code>{h(p.path)}</code>" + (f" ({h(p.label)})" if p.label else "")
                   for p in smmus),
            ("td", _cells(links.where(p) for p in smmus),
             f"{first.source_file}:{first.source_line:08d}" if first and first.source_line
             else (first.source_file if first else "~")),
            _cells(_evidence(sweep, s, p) for p in smmus),
        ])
    heads = ["SoC", "Boards affected", "Passthrough", "SMMU node", "Written at", "Evidence"]
    return table("affected", f"{count(len(rows), 'SoC')} affected", heads, rows, sortable=True,
                 numeric=(1,))


def _other_table(sweep, links):
    rows = []
    for s in sweep.socs:
        if s.affected or not s.providers:
            continue
        coherent = [p.coherent for p in s.providers]
        state = "all dma-coherent" if all(coherent) else \
            "none dma-coherent" if not any(coherent) else "some dma-coherent"
        rows.append([("th", links.soc(s.soc)), ("td", str(len(s.boards)), None, "num"),
                     f"{count(len(s.providers), 'SMMU')}, {state}"])
    if not rows:
        return ""
    return ("<section><h2>SoCs with an SMMU, not affected</h2>"
            + table("unaffected", f"{count(len(rows), 'SoC')}", ["SoC", "Boards", "SMMUs"], rows)
            + "</section>")


def _total_counts(sweep):
    total = {}
    for s in sweep.socs:
        for verdict, n in s.verdict_counts.items():
            total[verdict] = total.get(verdict, 0) + n
    return total


def _timeline(history, soc):
    """The SoC's row of the history as an SVG, or None when it has none."""
    row = next((r for r in history.socs if r.soc == soc), None)
    if row is None:
        return None
    versions = [r.name for r in history.revisions]
    step, height = 150, 92
    width = 20 + step * len(versions)
    colour = {"affected": "#b3261e", "unaffected": "#2e7d32", None: "#bdbdbd"}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" aria-labelledby="timeline-title">'
             f'<title id="timeline-title">'
             + h("; ".join(f"{v.split(' (', 1)[0]}: {verdict or 'absent'}"
                           for v, verdict in zip(versions, row.verdicts))) + "</title>"]
    for k, (version, verdict, smmu) in enumerate(zip(versions, row.verdicts, row.smmu)):
        x = 10 + k * step
        if k:
            parts.append(f'<line x1="{x - step + 130}" y1="26" x2="{x}" y2="26" '
                         f'stroke="#8a9099" stroke-width="2"/>')
        parts.append(f'<rect x="{x}" y="12" width="130" height="28" rx="4" '
                     f'fill="{colour[verdict]}"/>'
                     f'<text x="{x + 65}" y="31" text-anchor="middle" fill="#fff">'
                     f'{h(verdict or "absent")}</text>'
                     f'<text x="{x}" y="58">{h(version.split(" (", 1)[0][:22])}</text>'
                     f'<text x="{x}" y="76" fill="#5f6368">SMMU {h(smmu or "-")}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _soc_page(sweep, s, links, history, bootlog, data_name):
    name = NAMELESS if s.soc is None else s.soc
    affected = set(s.affected_boards)
    verdict = ('<span class="bad">affected</span>' + (": PCI / fsl-mc passthrough refused"
                                                       if s.passthrough else
                                                       ": platform devices only")
               if s.affected else '<span class="good">not affected</span>')
    body = [_facts([("Verdict", verdict),
                    ("Boards affected", f"{len(s.affected_boards)} of {len(s.boards)}"),
                    ("Corpus", h(sweep.name)),
                    ("Target kernel", h(target_words(sweep).removeprefix("target "))),
                    ("Rule", h(sweep.rule))])]
    rows = [[("th", f"<code>{h(p.path)}</code>"), h(p.label or ""),
             h(", ".join(p.compatible)), h(p.driver),
             '<span class="good">dma-coherent</span>' if p.coherent
             else '<span class="bad">no dma-coherent</span>',
             '<span class="bad">yes</span>' if p.affected else "no",
             links.where(p), ("td", str(len(p.dtbs)), None, "num"), _evidence(sweep, s, p)]
            for p in s.providers]
    body.append("<section><h2>SMMUs</h2>" + table(
        "smmus", "Each SMMU node, whether it says dma-coherent, and where it is written",
        ["Node", "Label", "Compatible", "Driver", "Coherency", "Affected", "Written at",
         "Boards", "Evidence"], rows) + "</section>")
    if s.broken_masters:
        rows = [[("th", f"<code>{h(m.path or '')}</code>"), h(m.kind), h(m.verdict),
                 ("td", str(len(m.dtbs)), None, "num")] for m in s.broken_masters]
        body.append("<section><h2>Broken masters</h2>" + table(
            "masters", "Devices VFIO refuses behind these SMMUs",
            ["Master", "Kind", "Verdict", "Boards"], rows) + "</section>")
    evidence = [v for v in EVIDENCE_VERDICTS if s.verdict_counts.get(v)]
    body.append("<section><h2>Verdicts</h2>" + verdict_chart(s.verdict_counts)
                + (f'<p>Evidence that the SMMU lacks dma-coherent: {h(", ".join(evidence))}.</p>'
                   if evidence else "") + "</section>")
    body.append("<section><h2>Boards</h2>" + table(
        "boards", f"{count(len(s.boards), 'board')}", ["Board", "Affected"],
        [[("th", f"<code>{h(b)}</code>"), '<span class="bad">yes</span>' if b in affected
          else "no"] for b in s.boards]) + "</section>")
    if bootlog is not None:
        body.append(site_bootlog.section(site_bootlog.logs_of(bootlog, s.soc, s.boards)))
    if history is not None:
        svg = _timeline(history, s.soc)
        body.append("<section><h2>History</h2>" + (svg or '<p class="muted">Not in the '
                                                   'history.</p>') + "</section>")
    return page(f"{name}: dtb-audit", '<a href="../index.html">All SoCs</a>', h(name),
                "\n".join(body), f'<a href="{h(os.path.basename(data_name))}">this SoC as JSON'
                f'</a>, <a href="../data/sweep.json">the sweep as JSON</a>')


def _index(sweep, links, diff, has):
    counts = _total_counts(sweep)
    boards = sum(len(s.boards) for s in sweep.socs)
    passthrough = sum(1 for s in sweep.affected if s.passthrough)
    facts = [("Corpus", h(sweep.name) + (' <span class="bad">(partial: its build was '
                                        'interrupted)</span>' if sweep.corpus.partial else "")),
             ("Target kernel", h(target_words(sweep).removeprefix("target "))),
             ("Rule", h(sweep.rule) + ("" if sweep.legacy_dt_bindings
                                       else " (without the legacy mmu-masters binding)")),
             ("Corpus size", f"{count(boards, 'board')} of {count(len(sweep.socs), 'SoC')}, "
                             f"{count(len(sweep.links), 'link')}"),
             ("Affected", f"<strong>{count(len(sweep.affected), 'SoC')}</strong>, "
                          f"{passthrough} with PCI or fsl-mc passthrough refused")]
    if diff is not None:
        socs = diff.socs
        facts.append(("Since", f"{h(diff.old.identity)}: "
                      f'<a href="#changes">{len(socs.newly_affected)} newly affected, '
                      f'{len(socs.fixed)} no longer affected</a>'))
    body = ['<div class="overview">' + _facts(facts) + '<figure><figcaption>Verdicts of all '
            f'{count(len(sweep.links), "link")}</figcaption>' + verdict_chart(counts)
            + "</figure></div>"]
    body.append('<section><h2>Affected SoCs</h2>'
                '<div class="filter" hidden><label for="filter">Filter</label>'
                '<input id="filter" type="search" data-filter="affected" autocomplete="off" '
                'placeholder="SoC, node or file, e.g. qcom">'
                '<span id="affected-shown" role="status" aria-live="polite"></span></div>'
                + _affected_table(sweep, links) + "</section>")
    if diff is not None:
        body.append(_changes(diff, links))
    body.append(_other_table(sweep, links))
    data = ", ".join(f'<a href="data/{n}">{n}</a>' for n in has)
    return page(f"dtb-audit: {sweep.name}", "dtb-audit site", "SMMU coherency: " + h(sweep.name),
                "\n".join(body), data)


# -- the site ----------------------------------------------------------------------

def _write(folder, relative, text):
    path = os.path.join(folder, relative)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def _dump(value):
    return json.dumps(value, indent=1) + "\n"


def build_site(out_dir, sweep, previous=None, history=None, bootlog=None, source_template=None):
    """Write the site of `sweep` (a model.Sweep) into `out_dir`, replacing it whole.

    `previous`: a Sweep to compare with; `history`: a History of sweeps
    (model.load_history()); `bootlog`: one of site_bootlog.load_bootlog();
    `source_template`: a URL with {path}, {line}, {version} (check_source_url).
    Returns the number of SoC pages."""
    if source_template:
        check_source_url(source_template)
        if "{version}" in source_template and sweep.target_kernel is None:
            raise SiteInputError(f"--source-url {source_template!r}", "the sweep names no "
                                 "target kernel for {version} (sweep again)")
    diff = diff_sweeps(previous, sweep) if previous is not None else None
    document = sweep.to_json()
    version = sweep.target_text
    pages = [(s, doc) for s, doc in zip(sweep.socs, document["socs"]) if s.providers]

    def render(folder):
        os.mkdir(os.path.join(folder, "soc"))
        os.mkdir(os.path.join(folder, "data"))
        has = {"sweep.json": document}
        if previous is not None:        # what changed, not the whole earlier sweep
            has["diff.json"] = diff.to_json()
        if history is not None:
            has["history.json"] = history.to_json()
        if bootlog is not None:
            has["bootlog.json"] = bootlog
        paged = {s.soc for s, _ in pages}
        links = _Links(source_template, version, "", paged)
        has["index.json"] = {
            "tool": "dtb-audit", "kind": "site", "corpus": sweep.name,
            "target_kernel": version, "rule": sweep.rule.value,
            "verdict_counts": _total_counts(sweep),
            "affected": [{"soc": s.soc, "page": page_name(s.soc), "passthrough": s.passthrough,
                          "boards": len(s.boards), "affected_boards": len(s.affected_boards),
                          "smmus": [{"path": p.path, "label": p.label,
                                     "source_file": p.source_file,
                                     "source_line": p.source_line,
                                     "url": source_url(source_template, version,
                                                       p.source_file, p.source_line)
                                     if source_template and p.source_file else None}
                                    for p in s.providers if p.affected]}
                         for s in sweep.affected],
            "pages": {page_name(s.soc): s.soc for s, _ in pages}}
        for name, value in has.items():
            _write(folder, f"data/{name}", _dump(value))
        _write(folder, "index.html", _index(sweep, links, diff, list(has)))
        soc_links = _Links(source_template, version, "../", paged)
        for s, doc in pages:
            name = page_name(s.soc)
            data_name = name.removesuffix(".html") + ".json"
            _write(folder, data_name, _dump(doc))
            _write(folder, name, _soc_page(sweep, s, soc_links, history, bootlog, data_name))
        _write(folder, MARKER, "A site written by `dtb-audit site`; the next run replaces this "
                               "folder whole.\n")

    write_folder(out_dir, render, MARKER)
    return len(pages)
