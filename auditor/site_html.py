"""HTML pieces of the static site: escaping, tables, the page around them.

Every text that may come from a DTB goes through h(): control characters
written out as auditor.text.shown() does for the other human formats, then
HTML-escaped (quotes too, so the same text is safe in an attribute).  The
page's stylesheet and script are package files (auditor/site_assets/),
inlined, and the Content-Security-Policy allows exactly those two by
their hash: nothing else runs or loads, not even from the page's folder.
"""
import base64
import hashlib
import html
from functools import lru_cache
from importlib import resources
from string import Template

from .text import shown


def h(value) -> str:
    """Text (from a DTB or anywhere) as HTML text or attribute value.

    A lone surrogate (a saved sweep may hold "\\ud800") is written as
    \\ud800 too: the page is UTF-8, which has no such character."""
    text = html.escape(shown(value), quote=True)
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


@lru_cache(maxsize=None)
def _asset(name) -> str:
    return resources.files("auditor").joinpath("site_assets", name).read_text(encoding="utf-8")


def _sha256(text) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@lru_cache(maxsize=None)
def _frame():
    style, script = _asset("site.css"), _asset("table.js")
    csp = (f"default-src 'none'; style-src {_sha256(style)}; script-src {_sha256(script)}; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    return Template(_asset("page.html")), style, script, csp


def page(title, crumbs, heading, body, data) -> str:
    """A whole page; every argument but `title` and `heading` is HTML already."""
    template, style, script, csp = _frame()
    return template.substitute(title=h(title), crumbs=crumbs, heading=heading, body=body,
                               data=data, style=style, script=script, csp=h(csp))


def table(ident, caption, heads, rows, sortable=False, numeric=()) -> str:
    """A table with header cells scoped to their column and, for a cell
    given as ("th", html), to their row.  A cell ("td", html, sort key, class)
    carries the key the script sorts by.  `numeric`: columns sorted as numbers."""
    head = []
    for k, text in enumerate(heads):
        kind = ' data-type="number"' if k in numeric else ""
        label = f'<button type="button">{text}</button>' if sortable else text
        head.append(f'<th scope="col"{kind}>{label}</th>')
    body = []
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, tuple):
                tag, content = cell[0], cell[1]
                sort = f' data-sort="{h(cell[2])}"' if len(cell) > 2 and cell[2] is not None \
                    else ""
                css = f' class="{cell[3]}"' if len(cell) > 3 else ""
                scope = ' scope="row"' if tag == "th" else ""
                cells.append(f"<{tag}{scope}{sort}{css}>{content}</{tag}>")
            else:
                cells.append(f"<td>{cell}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    css = ' class="sortable"' if sortable else ""
    return (f'<table id="{ident}"{css}><caption>{caption}</caption>'
            f'<thead><tr>{"".join(head)}</tr></thead>\n<tbody>\n' + "\n".join(body)
            + "\n</tbody></table>")


def read_json_document(path, what: str, error: type) -> tuple[str, object]:
    """(the name, the JSON) of a saved document the site reads; `error`
    (a UserError class) when it cannot be read or is not JSON."""
    import json
    import os

    from store.kept import open_regular

    from .text import shown
    name = os.fspath(path)
    try:
        with open_regular(name) as f:    # a FIFO or a device is refused, not read
            return name, json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as why:
        raise error(name, f"not a {what} (not JSON text: {shown(why)})") from None
    except OSError as why:
        raise error(name, f"cannot read: {why.strerror or why}") from None
