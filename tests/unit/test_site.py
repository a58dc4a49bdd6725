"""`dtb-audit site` without a browser: the HTML escapes text from DTBs, SoC
pages get safe and distinct file names whatever the compatible, the folder
is replaced whole, and bad documents or options are one line on stderr.

The sweeps are the golden snippet sweep (tests/golden/snippets/sweep.json,
a saved document) and variants of it, given to the CLI's main.
"""
import base64
import copy
import hashlib
import json
import os
import re
from html.parser import HTMLParser

import pytest

from auditor.cli import main
from auditor.output import OutputError, write_folder
from auditor.site_bootlog import BootlogFileError, load_bootlog
from testpaths import GOLDEN

MARKER = ".dtb-audit-site"


def snippet_doc(tmp_path):
    return json.loads((GOLDEN / "snippets" / "sweep.json").read_text()
                      .replace("{TMP}", str(tmp_path)))


def saved(tmp_path, doc, name="sweep.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def rename_soc(doc, old, new):
    for s in doc["socs"]:
        if s["soc"] == old:
            s["soc"] = new
    for link in doc["links"]:
        if link["soc"] == old:
            link["soc"] = new
    return doc


class Tags(HTMLParser):
    """The elements of a page, and its text, as a browser's parser sees them."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.data, self.scripts, self._in_script = [], [], [], False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.data).append(data)


def site(tmp_path, capsys, *more, doc=None):
    sweep = saved(tmp_path, doc if doc is not None else snippet_doc(tmp_path))
    status = main(["site", str(tmp_path / "out"), "--sweep", str(sweep), *map(str, more)])
    return status, capsys.readouterr()


def pages(out):
    index = json.loads((out / "data" / "index.json").read_text())
    return index["pages"]


# -- escaping ---------------------------------------------------------------------------

EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def test_text_from_dtbs_is_text_in_every_page(tmp_path, capsys):
    doc = rename_soc(snippet_doc(tmp_path), "acme,plat", EVIL)
    s = next(s for s in doc["socs"] if s["soc"] == EVIL)
    s["providers"][0]["label"] = EVIL
    s["providers"][0]["path"] = "/soc/" + EVIL
    s["broken_masters"][0]["path"] = "/soc/</td></tr></table><b>x"
    status, _ = site(tmp_path, capsys, doc=doc)
    assert status == 0
    out = tmp_path / "out"
    soc_page = next(n for n, soc in pages(out).items() if soc == EVIL)
    for name in ("index.html", soc_page):
        parsed = Tags((out / name).read_text())
        tags = [t for t, _ in parsed.tags]
        assert tags.count("script") == 1 and "img" not in tags and "b" not in tags, name
        assert EVIL in "".join(parsed.data), name
        assert all("alert" not in s for s in parsed.scripts), name
    # Control characters are written out, as in every human format (auditor/text.py).
    index = (out / "index.html").read_text()
    assert "evil\\x0asoc\\x1b[31m" in index and "\x1b" not in index


def test_the_content_security_policy_allows_the_pages_own_script_and_style(tmp_path, capsys):
    assert site(tmp_path, capsys)[0] == 0
    for path in [tmp_path / "out" / "index.html", *(tmp_path / "out" / "soc").glob("*.html")]:
        text = path.read_text()
        parsed = Tags(text)
        csp, = [a["content"] for t, a in parsed.tags
                if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
        script, = re.findall(r"<script>(.*?)</script>", text, re.S)
        style, = re.findall(r"<style>(.*?)</style>", text, re.S)

        def sha(s):
            return "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() \
                + "'"
        assert f"script-src {sha(script)};" in csp and f"style-src {sha(style)};" in csp
        assert "default-src 'none'" in csp and "unsafe-inline" not in csp
        # Nothing is fetched at view time: no src= or external stylesheet.
        assert not [a for t, a in parsed.tags if "src" in a or (t == "link")]


# -- file names -----------------------------------------------------------------------------

NAMES = ["../../../etc/passwd", "a/b\\c", "..", "", "CON", "x" * 400, "Acme,X", "acme,x",
         "acme.x", "ü,ñ\u2028", "nul\x00byte", "lone \ud800 surrogate", None]


def test_soc_pages_have_safe_and_distinct_names(tmp_path, capsys):
    doc = snippet_doc(tmp_path)
    model = next(s for s in doc["socs"] if s["soc"] == "acme,plat")
    doc["socs"] = [dict(copy.deepcopy(model), soc=name,
                        boards=[f"b{k}.dtb"], affected_boards=[f"b{k}.dtb"])
                   for k, name in enumerate(NAMES)]
    doc["links"] = []
    status, _ = site(tmp_path, capsys, doc=doc)
    assert status == 0
    out = tmp_path / "out"
    names = pages(out)
    assert sorted(names.values(), key=str) == sorted(NAMES, key=str)
    for name in names:
        assert re.fullmatch(r"soc/[a-z0-9-]{1,48}-[0-9a-f]{12}\.html", name), name
        assert (out / name).is_file()
    assert sorted(os.listdir(out)) == [MARKER, "data", "index.html", "soc"]
    assert len(os.listdir(out / "soc")) == 2 * len(NAMES)          # page and JSON each
    hrefs = [a["href"] for t, a in Tags((out / "index.html").read_text()).tags
             if t == "a" and a["href"].startswith("soc/")]
    assert sorted(set(hrefs)) == sorted(names)


# -- replacing the folder ---------------------------------------------------------------------

def test_a_rebuild_never_shows_a_reader_half_a_page(tmp_path, capsys, monkeypatch):
    """At every rename the build makes, the site's pages are there and whole;
    a page opened before the swap is read whole after it."""
    assert site(tmp_path, capsys)[0] == 0
    out = tmp_path / "out"
    soc_page = out / next(iter(pages(out)))
    seen = []
    rename = os.rename

    def look():
        for path in (out / "index.html", soc_page):
            try:
                seen.append(path.read_text().endswith("</html>\n"))
            except FileNotFoundError:
                seen.append(f"{path.name} missing")

    def watched(a, b):
        look()
        rename(a, b)
        look()
    monkeypatch.setattr(os, "rename", watched)
    with open(out / "index.html", encoding="utf-8") as before:
        for _ in range(3):
            assert site(tmp_path, capsys)[0] == 0
        assert before.read().endswith("</html>\n")
    assert seen and set(seen) == {True}
    assert sorted(os.listdir(tmp_path)) == ["out", "sweep.json"]      # nothing left beside


def test_a_failed_build_leaves_the_old_folder(tmp_path):
    out = tmp_path / "site"

    def good(folder):
        (open(os.path.join(folder, MARKER), "w")).close()
        with open(os.path.join(folder, "index.html"), "w") as f:
            f.write("old\n")

    def bad(folder):
        with open(os.path.join(folder, "index.html"), "w") as f:
            f.write("half")
        raise OSError(28, "No space left on device")

    write_folder(out, good, MARKER)
    with pytest.raises(OutputError, match=r"site: error: cannot write the site: No space left"):
        write_folder(out, bad, MARKER)
    assert (out / "index.html").read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["site"]


def test_a_folder_not_written_by_site_is_never_replaced(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work\n")
    status, (stdout, stderr) = site(tmp_path, capsys)
    assert status == 2 and stdout == ""
    assert stderr == f"{out}: error: not written by dtb-audit site (no {MARKER}): refusing " \
                     f"to replace it\n"
    assert os.listdir(out) == ["thesis.tex"]


def test_the_site_is_readable_by_others(tmp_path, capsys):
    umask = os.umask(0o022)
    try:
        assert site(tmp_path, capsys)[0] == 0
    finally:
        os.umask(umask)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755


# -- bad input --------------------------------------------------------------------------------

def test_bad_documents_and_options_are_one_line(tmp_path, capsys):
    sweep = saved(tmp_path, snippet_doc(tmp_path))
    git_history = saved(tmp_path, {"tool": "dtb-audit", "kind": "history", "revisions": [],
                                   "socs": []}, "git.json")
    bootlog = saved(tmp_path, {"schema": 1, "tool": "dtb-audit", "kind": "bootlog", "socs": [],
                               "logs": [{"log": "a.log", "model": None, "kernel": None,
                                         "boards": [], "smmus": [{
                                             "device": "15000000.iommu", "node": None,
                                             "dt_coherent": False, "hw_coherent": True,
                                             "finding": "looks-fine", "note": None}]}]},
                    "boot.json")
    cases = [
        (["--previous", str(bootlog)],
         f"{bootlog}: error: a dtb-audit bootlog document, not a sweep"),
        (["--history", str(git_history)], f"{git_history}: error: a history of git commits "
                                          f"(--git): give the history of saved sweeps"),
        (["--history", str(sweep)], f"{sweep}: error: not a history document"),
        (["--bootlog", str(bootlog)], f"{bootlog}: error: not a valid bootlog document: "
                                      f"logs[0].smmus[0].finding is not one of agree,"),
        (["--bootlog", str(sweep)], f"{sweep}: error: not a bootlog document"),
        (["--source-url", "https://x/{file}"], "--source-url 'https://x/{file}': error: needs "
                                                "{path}"),
        (["--source-url", "javascript:alert('{path}')"], "error: not an http, https or file URL"),
        (["--source-url", "https://x/{path}#{lines}"], "error: unknown placeholder {lines}"),
    ]
    old = snippet_doc(tmp_path)
    del old["schema"]           # schema 1: no target kernel
    old = saved(tmp_path, old, "schema1.json")
    cases.append((["--source-url", "https://x/v{version}/{path}"],
                  "error: the sweep names no target kernel for {version}"))
    for more, message in cases:
        status = main(["site", str(tmp_path / "out"), "--sweep",
                       str(old if "{version}" in more[-1] else sweep), *more])
        stdout, stderr = capsys.readouterr()
        assert status == 2 and stdout == "", more
        assert stderr.count("\n") == 1 and message in stderr, (more, stderr)
        assert not (tmp_path / "out").exists()


# -- what the pages say ----------------------------------------------------------------------

def test_bootlog_findings_on_the_pages_of_their_socs(tmp_path, capsys):
    bootlog = saved(tmp_path, {
        "schema": 1, "tool": "dtb-audit", "kind": "bootlog", "socs": [],
        "logs": [{"log": "evk-<b>1</b>.log", "model": "Acme Plat EVK", "kernel": "6.12.0",
                  "boards": ["plat-evk.dtb"], "soc": None, "smmus": [{
                      "device": "5000000.iommu", "node": "/soc/iommu@5000000",
                      "dt_coherent": False, "hw_coherent": True,
                      "finding": "dt-lacks-coherent", "note": None}]}]}, "boot.json")
    assert site(tmp_path, capsys, "--bootlog", bootlog)[0] == 0
    out = tmp_path / "out"
    for name, soc in pages(out).items():
        text = (out / name).read_text()
        assert ("dt-lacks-coherent" in text) == (soc == "acme,plat"), soc
        assert "<b>" not in text
    plat = next(n for n, s in pages(out).items() if s == "acme,plat")
    assert "evk-&lt;b&gt;1&lt;/b&gt;.log" in (out / plat).read_text()


def test_the_table_rows_are_the_affected_socs_in_the_html(tmp_path, capsys):
    assert site(tmp_path, capsys)[0] == 0
    text = (tmp_path / "out" / "index.html").read_text()
    table = text[text.index('<table id="affected"'):]
    table = table[:table.index("</table>")]
    doc = snippet_doc(tmp_path)
    assert table.count("<tr>") - 1 == sum(s["affected"] for s in doc["socs"]) == 4
    assert table.count('<th scope="row"') == 4 and table.count('<th scope="col"') == 6
    assert table.count('<button type="button">') == 6
    # each SMMU's evidence class, from the saved sweep
    classes = {e["class"] for e in doc["evidence"]}
    assert classes and all(f">{c}</span>" in table for c in classes)


def test_every_link_of_the_site_leads_to_a_page(tmp_path, capsys):
    """Also for a SoC affected in --previous and gone from the corpus since."""
    doc = snippet_doc(tmp_path)
    previous = copy.deepcopy(doc)
    gone = copy.deepcopy(next(s for s in previous["socs"] if s["soc"] == "acme,plat"))
    previous["socs"].append(dict(gone, soc="acme,gone", boards=["gone.dtb"],
                                 affected_boards=["gone.dtb"]))
    status, _ = site(tmp_path, capsys, "--previous", saved(tmp_path, previous, "previous.json"),
                     doc=doc)
    assert status == 0
    out = tmp_path / "out"
    index = (out / "index.html").read_text()
    assert "acme,gone" in index
    for page in [out / "index.html", *(out / "soc").glob("*.html")]:
        for tag, attrs in Tags(page.read_text()).tags:
            href = attrs.get("href") if tag == "a" else None
            if href and not href.startswith("#"):
                target = (page.parent / href.split("#")[0]).resolve()
                assert target.is_file() and out in target.parents, (page.name, href)


# -- the history the site reads ----------------------------------------------------------------

def _history_doc(tmp_path, capsys):
    """`history --format json` of the snippet sweep twice, renamed apart."""
    first = saved(tmp_path, snippet_doc(tmp_path), "one.json")
    second = saved(tmp_path, rename_soc(snippet_doc(tmp_path), "acme,plat", "acme,plat2"),
                   "two.json")
    assert main(["history", str(first), str(second), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_saved_history_reads_back_as_the_history_it_was(tmp_path, capsys):
    """The document `history --format json` wrote is read back (what the site
    shows) into the same History: the same JSON and the same text."""
    from auditor.history.text import format_history
    from auditor.model import load_history
    doc = _history_doc(tmp_path, capsys)
    path = saved(tmp_path, doc, "history.json")
    history = load_history(path)
    assert history.to_json() == doc
    assert main(["history", str(tmp_path / "one.json"), str(tmp_path / "two.json")]) == 0
    assert format_history(history) == capsys.readouterr().out


@pytest.mark.parametrize("change, message", [
    (("target_kernels", 0, "99.9"), "target_kernels[0]: 99.9: no kernel has this version"),
    (("target_kernels", None, ["6.1"]), "target_kernels is not a list of 2 strings or nulls"),
    (("rules", 1, "sometimes"), "rules[1] is not one of walk-or-device, walk-only, "
                                "legacy-true, no-check, null"),
    (("socs", 0, {"soc": "x", "verdicts": [None, None], "smmu": [None, None],
                  "changes": [{"version": "v", "what": "mood", "old": "a", "new": "b"}]}),
     "socs[0].changes[0].what is not one of smmu, verdict"),
    (("socs", 0, {"soc": "x", "verdicts": [None, None], "smmu": [None, None]}),
     "socs[0] has no 'changes'"),
])
def test_a_history_is_checked_whole_before_the_site_is_made(tmp_path, capsys, change, message):
    """Every field of a saved history is checked (each version's target
    kernel read as --target-kernel is): one line naming the file and the
    field, exit 2, no site."""
    doc = _history_doc(tmp_path, capsys)
    key, index, value = change
    if index is None:
        doc[key] = value
    else:
        doc[key][index] = value
    path = saved(tmp_path, doc, "history.json")
    status = main(["site", str(tmp_path / "out"), "--sweep", str(tmp_path / "one.json"),
                   "--history", str(path)])
    stdout, stderr = capsys.readouterr()
    assert (status, stdout) == (2, "")
    assert stderr.startswith(f"{path}: error: not a valid history document: {message}"), stderr
    assert stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("log, smmu, message", [
    ("model", None, "logs[0] has no 'model'"),
    (None, "note", "logs[0].smmus[0] has no 'note'"),
    (None, "hw_coherent", "logs[0].smmus[0] has no 'hw_coherent'"),
])
def test_a_bootlog_document_without_a_field_the_page_shows_is_refused(tmp_path, capsys, log,
                                                                        smmu, message):
    """What a SoC page shows of a boot log must be in the document: a log or
    SMMU without it is one line naming the field, never a page half made."""
    doc = {"schema": 1, "tool": "dtb-audit", "kind": "bootlog", "socs": [],
           "logs": [{"log": "evk.log", "model": "Acme Plat EVK", "kernel": "6.12.0",
                     "boards": ["plat-evk.dtb"], "soc": None, "smmus": [{
                         "device": "5000000.iommu", "node": "/soc/iommu@5000000",
                         "dt_coherent": False, "hw_coherent": True,
                         "finding": "dt-lacks-coherent", "note": None}]}]}
    if log:
        del doc["logs"][0][log]
    if smmu:
        del doc["logs"][0]["smmus"][0][smmu]
    bootlog = saved(tmp_path, doc, "boot.json")
    status, (stdout, stderr) = site(tmp_path, capsys, "--bootlog", bootlog)
    assert (status, stdout) == (2, "")
    assert stderr == f"{bootlog}: error: not a valid bootlog document: {message}\n"
    assert not (tmp_path / "out").exists()
    # load_bootlog says which error it raises: the document's own, not any UserError
    with pytest.raises(BootlogFileError) as caught:
        load_bootlog(bootlog)
    assert caught.value.line() == stderr.rstrip("\n")


def test_every_class_of_a_page_is_one_its_style_or_script_selects(tmp_path, capsys):
    """A class (case-sensitive in HTML) that neither the page's stylesheet
    nor its script names does nothing: a misspelt one loses its layout."""
    status, _ = site(tmp_path, capsys)
    assert status == 0
    out = tmp_path / "out"
    for page in [out / "index.html", *(out / "soc").glob("*.html")]:
        text = page.read_text()
        blocks = re.findall(r"<(style|script)\b[^>]*>(.*?)</\1>", text, re.S)
        selectors = set(re.findall(r"\.([A-Za-z_][\w-]*)", "".join(b for _, b in blocks)))
        classes = {c for _, attrs in Tags(text).tags for c in (attrs.get("class") or "").split()}
        assert classes and classes <= selectors, (page.name, sorted(classes - selectors))
