"""What the site's pages SAY, read without a browser: every fact, table,
chart and link of index.html and of a SoC page, from one saved sweep with
its --previous, --history, --bootlog and --source-url (README's site
section), compared with what the documents hold.

tests/integration/test_site_browser.py reads the same pages in a browser
(slow, not in the default run); this reads them with the standard
library's HTML parser into a small tree, as a browser's parser would.
"""
import copy
import json
from html.parser import HTMLParser

import pytest

from auditor.cli import main
from testpaths import GOLDEN

SOURCE_URL = "https://src.example/linux/v{version}/source/{path}#L{line}"
TARGET = "7.2 (assumed: the newest modelled; give --target-kernel)"
CSS_BAD, CSS_GOOD = "#b3261e", "#1b6e20"      # --bad and --good of auditor/site_assets/site.css


# -- a page as a tree ----------------------------------------------------------------------

VOID = {"meta", "input", "br", "img", "link", "hr", "wbr", "col", "source"}


class Node:
    def __init__(self, tag, attrs):
        self.tag, self.attrs, self.children = tag, dict(attrs), []

    def text(self):
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    @property
    def classes(self):
        return self.attrs.get("class", "").split()

    def all(self, tag=None, **attrs):
        found = []
        for c in self.children:
            if isinstance(c, Node):
                if (tag is None or c.tag == tag) and all(
                        c.attrs.get(k.rstrip("_")) == v for k, v in attrs.items()):
                    found.append(c)
                found.extend(c.all(tag, **attrs))
        return found

    def one(self, tag=None, **attrs):
        found = self.all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]

    def nodes(self):
        return [c for c in self.children if isinstance(c, Node)]


class Tree(HTMLParser):
    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs)
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Node(tag, attrs))

    def handle_endtag(self, tag):
        while len(self.stack) > 1:
            if self.stack.pop().tag == tag:
                break

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse(path):
    return Tree(path.read_text(encoding="utf-8")).root


def facts(node):
    """A <dl class="facts"> as [(term, definition node)]."""
    dl = node.one("dl", class_="facts")
    kids = dl.nodes()
    assert [k.tag for k in kids] == ["dt", "dd"] * (len(kids) // 2)
    return [(kids[k].text(), kids[k + 1]) for k in range(0, len(kids), 2)]


def table(page, ident):
    """(caption, column heads, rows of cell nodes) of table `ident`."""
    t = page.one("table", id=ident)
    heads = t.one("thead").all("th")
    assert all(th.attrs.get("scope") == "col" for th in heads)
    rows = [r.nodes() for r in t.one("tbody").all("tr")]
    for row in rows:
        assert row[0].tag == "th" and row[0].attrs.get("scope") == "row"
        assert all(c.tag == "td" for c in row[1:])
    return t.one("caption").text(), [th.text() for th in heads], rows


def texts(rows):
    return [[c.text() for c in row] for row in rows]


def section(page, heading):
    """The <section> whose <h2> is `heading`."""
    found = [s for s in page.all("section") if s.all("h2") and s.all("h2")[0].text() == heading]
    assert len(found) <= 1
    return found[0] if found else None


# -- the documents -------------------------------------------------------------------------

def snippet_doc(tmp_path):
    return json.loads((GOLDEN / "snippets" / "sweep.json").read_text()
                      .replace("{TMP}", str(tmp_path)))


def soc_of(doc, name):
    return next(s for s in doc["socs"] if s["soc"] == name)


def smmu(path, coherent, affected, dtbs, label=None, source_file=None, source_line=None,
         compatible=("arm,mmu-500",), counts=None):
    return {"path": path, "label": label, "compatible": list(compatible), "driver": "arm-smmu",
            "coherent": coherent, "affected": affected, "source_file": source_file,
            "source_line": source_line, "dtbs": list(dtbs),
            "verdict_counts": counts or {"capable": 1}}


def current(tmp_path):
    """The snippet sweep, its SMMUs written in .dtsi files, with a second
    SMMU on acme,plat and one of its boards not affected."""
    doc = snippet_doc(tmp_path)
    doc["corpus"]["identity"] = "linux-7.2 DTBs"
    plat = soc_of(doc, "acme,plat")
    plat["providers"][0].update(source_file="arch/arm64/boot/dts/acme/plat #1.dtsi",
                                source_line=42)
    plat["providers"].append(smmu("/soc/iommu@6000000", True, False, ["plat-evk.dtb"],
                                  compatible=("acme,plat-smmu", "arm,mmu-500"),
                                  source_file="arch/arm64/boot/dts/acme/plat.dtsi",
                                  source_line=3))
    plat["boards"] = ["plat-evk.dtb", "plat-mini.dtb", "plat-zero.dtb"]
    fine = soc_of(doc, "acme,fine")
    fine["providers"][0].update(source_file="arch/arm64/boot/dts/acme/fine.dtsi", source_line=7)
    return doc


def previous(tmp_path):
    """Last week's sweep: acme,pci not yet affected, acme,mc not yet in the
    corpus, acme,fine affected, acme,gone affected and gone since; acme,fine's
    SMMU not dma-coherent, acme,noirq's and acme,pci's SMMUs dma-coherent."""
    doc = current(tmp_path)
    doc["corpus"]["identity"] = "linux-7.1 DTBs"
    pci = soc_of(doc, "acme,pci")
    pci.update(affected=False, passthrough=False, affected_boards=[])
    doc["socs"] = [s for s in doc["socs"] if s["soc"] != "acme,mc"]
    fine = soc_of(doc, "acme,fine")
    fine.update(affected=True, affected_boards=["fine-evk.dtb"])
    fine["providers"][0].update(coherent=False, affected=True)
    soc_of(doc, "acme,noirq")["providers"][0]["coherent"] = True
    pci["providers"][0]["coherent"] = True
    gone = copy.deepcopy(soc_of(doc, "acme,plat"))
    gone.update(soc="acme,gone", boards=["gone-a.dtb", "gone-b.dtb"],
                affected_boards=["gone-a.dtb", "gone-b.dtb"])
    doc["socs"].append(gone)
    return doc


HISTORY_VERSIONS = ["linux-7.0 DTBs (Debian 7.0.3-1, the oldest one kept)",
                    "linux-7.1 DTBs", "linux-7.2 DTBs"]


def history():
    return {"tool": "dtb-audit", "kind": "history", "versions": HISTORY_VERSIONS,
            "target_kernels": ["7.0", "7.1", "7.2"], "rules": ["walk-or-device"] * 3,
            "socs": [{"soc": "acme,plat", "verdicts": [None, "unaffected", "affected"],
                      "smmu": [None, "coherent", "non-coherent"], "changes": []},
                     {"soc": "acme,fine", "verdicts": ["affected", "affected", "unaffected"],
                      "smmu": ["non-coherent", "mixed", "coherent"], "changes": []}]}


def bootlog():
    smmus = [{"device": "5000000.iommu", "node": "/soc/iommu@5000000", "dt_coherent": False,
              "hw_coherent": True, "finding": "dt-lacks-coherent",
              "note": "the register says coherent"},
             {"device": "6000000.iommu", "node": None, "dt_coherent": True,
              "hw_coherent": None, "finding": "agree", "note": None}]
    return {"schema": 1, "tool": "dtb-audit", "kind": "bootlog", "socs": [], "logs": [
        {"log": "evk.log", "model": "Acme Plat EVK", "kernel": "7.2.0", "boards":
         ["plat-evk.dtb"], "smmus": smmus},
        {"log": "by-name.log", "model": None, "kernel": None, "boards": [], "soc": "acme,plat",
         "smmus": smmus[1:]},
        {"log": "other.log", "model": "Acme Fine EVK", "kernel": "7.2.0",
         "boards": ["fine-evk.dtb"], "smmus": smmus[1:]}]}


def write(folder, name, doc):
    path = folder / name
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The site of current() with everything, and its folder."""
    base = tmp_path_factory.mktemp("site")
    args = ["site", str(base / "out"), "--sweep", str(write(base, "now.json", current(base))),
            "--previous", str(write(base, "before.json", previous(base))),
            "--history", str(write(base, "history.json", history())),
            "--bootlog", str(write(base, "boot.json", bootlog())),
            "--source-url", SOURCE_URL]
    assert main(args) == 0
    return base, base / "out"


def page_of(out, soc):
    index = json.loads((out / "data" / "index.json").read_text())
    name, = [n for n, s in index["pages"].items() if s == soc]
    return out / name


def plain(tmp_path, doc, *more):
    """The site of `doc` alone (or with `more` options)."""
    assert main(["site", str(tmp_path / "out"), "--sweep", str(write(tmp_path, "s.json", doc)),
                 *map(str, more)]) == 0
    return tmp_path / "out"


# -- a SoC page ------------------------------------------------------------------------------

def test_a_soc_page_names_its_soc_and_says_its_verdict(built):
    base, out = built
    for soc, verdict, boards in [
            ("acme,plat", "affected: platform devices only", "2 of 3"),
            ("acme,mc", "affected: PCI / fsl-mc passthrough refused", "1 of 1"),
            ("acme,pci", "affected: PCI / fsl-mc passthrough refused", "1 of 1"),
            ("acme,fine", "not affected", "0 of 1"),
            ("acme,noirq", "not affected", "0 of 1")]:
        page = parse(page_of(out, soc))
        assert page.one("head").one("title").text() == f"{soc}: dtb-audit"
        assert page.one("h1").text() == soc
        crumbs = page.one("p", class_="crumbs")
        assert [(a.attrs["href"], a.text()) for a in crumbs.all("a")] == [("../index.html",
                                                                           "All SoCs")]
        shown = facts(page)
        assert [(k, v.text()) for k, v in shown] == [
            ("Verdict", verdict), ("Boards affected", boards), ("Corpus", "linux-7.2 DTBs"),
            ("Target kernel", TARGET), ("Rule", "walk-or-device")], soc
        word = shown[0][1].one("span")
        assert (word.text(), word.classes) == (("affected", ["bad"]) if verdict != "not affected"
                                               else ("not affected", ["good"]))


def test_a_soc_pages_json_is_its_soc_of_the_sweep(built):
    base, out = built
    doc = current(base)
    for soc in ("acme,plat", "acme,fine"):
        path = page_of(out, soc)
        links = [(a.attrs["href"], a.text()) for a in parse(path).one("footer").all("a")]
        own = path.name.removesuffix(".html") + ".json"
        assert links == [(own, "this SoC as JSON"), ("../data/sweep.json", "the sweep as JSON")]
        assert json.loads((path.parent / own).read_text()) == soc_of(doc, soc)


def test_the_smmus_table_shows_each_smmu_whole(built):
    base, out = built
    page = parse(page_of(out, "acme,plat"))
    caption, heads, rows = table(page, "smmus")
    assert caption == "Each SMMU node, whether it says dma-coherent, and where it is written"
    assert heads == ["Node", "Label", "Compatible", "Driver", "Coherency", "Affected",
                     "Written at", "Boards", "Evidence"]
    assert texts(rows) == [
        ["/soc/iommu@5000000", "smmu", "arm,mmu-500", "arm-smmu", "no dma-coherent", "yes",
         "arch/arm64/boot/dts/acme/plat #1.dtsi:42", "2", "coherent-masters"],
        ["/soc/iommu@6000000", "", "acme,plat-smmu, arm,mmu-500", "arm-smmu", "dma-coherent",
         "no", "arch/arm64/boot/dts/acme/plat.dtsi:3", "1", ""]]
    first, second = rows
    assert first[0].one("code").text() == "/soc/iommu@5000000"
    assert (first[4].one("span").classes, second[4].one("span").classes) == (["bad"], ["good"])
    assert first[5].one("span").classes == ["bad"] and not second[5].all("span")
    assert first[7].classes == second[7].classes == ["num"]
    evidence = first[8].one("span")
    assert evidence.classes == ["evidence"]
    assert evidence.attrs["title"] == "masters behind it, or the bus above them, are DMA coherent"
    # Each file:line links to the template's URL, the path quoted, / kept.
    link = first[6].one("a")
    assert link.attrs["href"] == ("https://src.example/linux/v7.2/source/arch/arm64/boot/dts/"
                                  "acme/plat%20%231.dtsi#L42")
    assert link.one("code").text() == "arch/arm64/boot/dts/acme/plat #1.dtsi:42"
    assert second[6].one("a").attrs["href"] == ("https://src.example/linux/v7.2/source/arch/"
                                                "arm64/boot/dts/acme/plat.dtsi#L3")


def test_an_smmu_without_a_position_says_so(built):
    base, out = built
    _, _, rows = table(parse(page_of(out, "acme,mc")), "smmus")
    cell = rows[0][6]
    assert cell.text() == "position not recorded" and not cell.all("a")
    assert cell.one("span").classes == ["muted"]


def test_broken_masters_are_listed_with_their_kind_verdict_and_boards(built):
    base, out = built
    for soc, row in [("acme,plat", ["/soc/dma@1000", "platform", "broken", "2"]),
                     ("acme,mc", ["/soc/fsl-mc@80c000000", "fsl-mc", "broken-bridge-coherent",
                                  "1"])]:
        page = parse(page_of(out, soc))
        assert section(page, "Broken masters") is not None
        caption, heads, rows = table(page, "masters")
        assert caption == "Devices VFIO refuses behind these SMMUs"
        assert heads == ["Master", "Kind", "Verdict", "Boards"]
        assert texts(rows) == [row]
        assert rows[0][0].one("code").text() == row[0] and rows[0][3].classes == ["num"]
    page = parse(page_of(out, "acme,fine"))
    assert section(page, "Broken masters") is None and not page.all("table", id="masters")


def test_the_boards_table_says_which_boards_are_affected(built):
    base, out = built
    page = parse(page_of(out, "acme,plat"))
    assert section(page, "Boards") is not None
    caption, heads, rows = table(page, "boards")
    assert (caption, heads) == ("3 boards", ["Board", "Affected"])
    assert texts(rows) == [["plat-evk.dtb", "yes"], ["plat-mini.dtb", "yes"],
                           ["plat-zero.dtb", "no"]]
    assert [r[1].all("span") and r[1].one("span").classes for r in rows] == [["bad"], ["bad"], []]
    assert all(r[0].one("code").text() == r[0].text() for r in rows)
    caption, _, rows = table(parse(page_of(out, "acme,fine")), "boards")
    assert caption == "1 board" and texts(rows) == [["fine-evk.dtb", "no"]]


def test_the_verdicts_section_charts_the_socs_links_and_names_the_evidence(built):
    base, out = built
    page = parse(page_of(out, "acme,pci"))
    verdicts = section(page, "Verdicts")
    svg = verdicts.one("svg")
    assert svg.one("title").text() == "Links by verdict: rescued-by-device 1, " \
                                      "broken-bridge-coherent 1"
    assert verdicts.one("p").text() == "Evidence that the SMMU lacks dma-coherent: " \
                                       "rescued-by-device, broken-bridge-coherent."
    # A SoC whose links accuse nothing has no such sentence.
    assert not section(parse(page_of(out, "acme,fine")), "Verdicts").all("p")


def test_a_soc_page_shows_the_boot_logs_of_its_boards_and_of_its_name(built):
    base, out = built
    page = parse(page_of(out, "acme,plat"))
    assert section(page, "Boot logs") is not None
    caption, heads, rows = table(page, "bootlogs")
    assert caption == "What each boot log says of the SMMU's coherency register"
    assert heads == ["Log", "Model", "Kernel", "Device", "Node", "DT", "Register", "Finding",
                     "Note"]
    assert texts(rows) == [
        ["evk.log", "Acme Plat EVK", "7.2.0", "5000000.iommu", "/soc/iommu@5000000",
         "not coherent", "coherent", "dt-lacks-coherent", "the register says coherent"],
        ["evk.log", "Acme Plat EVK", "7.2.0", "6000000.iommu", "", "coherent", "unknown",
         "agree", ""],
        ["by-name.log", "", "", "6000000.iommu", "", "coherent", "unknown", "agree", ""]]
    assert [r[7].one("span").classes for r in rows] == [["finding", "bad"], ["finding"],
                                                       ["finding"]]
    assert [r[3].one("code").text() for r in rows] == ["5000000.iommu", "6000000.iommu",
                                                       "6000000.iommu"]
    _, _, rows = table(parse(page_of(out, "acme,fine")), "bootlogs")
    assert [r[0].text() for r in rows] == ["other.log"]
    none = section(parse(page_of(out, "acme,noirq")), "Boot logs")
    assert none.one("p").text() == "No boot log of this SoC's boards."
    assert none.one("p").classes == ["muted"] and not none.all("table")


def test_without_bootlog_or_history_a_soc_page_has_neither_section(tmp_path):
    out = plain(tmp_path, current(tmp_path))
    page = parse(page_of(out, "acme,plat"))
    assert section(page, "Boot logs") is None and section(page, "History") is None
    assert [s.one("h2").text() for s in page.all("section")] == ["SMMUs", "Broken masters",
                                                                 "Verdicts", "Boards"]


# -- the history line of a SoC page ---------------------------------------------------------

def timeline(out, soc):
    return section(parse(page_of(out, soc)), "History").one("svg")


def number(node, attr):
    return float(node.attrs[attr])


def test_the_history_line_says_each_versions_verdict_and_smmu(built):
    base, out = built
    svg = timeline(out, "acme,plat")
    assert svg.one("title").text() == ("linux-7.0 DTBs: absent; linux-7.1 DTBs: unaffected; "
                                       "linux-7.2 DTBs: affected")
    assert svg.attrs["role"] == "img" and svg.attrs["aria-labelledby"] == \
        svg.one("title").attrs["id"]
    boxes = svg.all("rect")
    words = [t.text() for t in svg.all("text")]
    assert len(boxes) == 3
    # per version: the verdict in its box, the version's short name, the SMMU state
    assert words == ["absent", "linux-7.0 DTBs", "SMMU -",
                     "unaffected", "linux-7.1 DTBs", "SMMU coherent",
                     "affected", "linux-7.2 DTBs", "SMMU non-coherent"]
    fills = [b.attrs["fill"] for b in boxes]
    assert fills[2] == CSS_BAD and len(set(fills)) == 3
    other = timeline(out, "acme,fine")
    assert [t.text() for t in other.all("text")][::3] == ["affected", "affected", "unaffected"]
    assert [b.attrs["fill"] for b in other.all("rect")] == [CSS_BAD, CSS_BAD, fills[1]]
    assert [t.text() for t in other.all("text")][2::3] == ["SMMU non-coherent", "SMMU mixed",
                                                          "SMMU coherent"]


def test_the_history_line_is_drawn_inside_its_picture_left_to_right(built):
    base, out = built
    svg = timeline(out, "acme,plat")
    width, height = number(svg, "width"), number(svg, "height")
    assert svg.attrs["viewbox"] == f"0 0 {svg.attrs['width']} {svg.attrs['height']}"
    boxes, lines = svg.all("rect"), svg.all("line")
    lefts = [number(b, "x") for b in boxes]
    rights = [number(b, "x") + number(b, "width") for b in boxes]
    assert lefts == sorted(lefts) and all(r < n for r, n in zip(rights, lefts[1:]))
    assert lefts[0] > 0 and rights[-1] < width
    # one line from each box to the next, at the boxes' middle
    assert len(lines) == len(boxes) - 1
    for line, right, left, box in zip(lines, rights, lefts[1:], boxes):
        assert (number(line, "x1"), number(line, "x2")) == (right, left)
        middle = number(box, "y") + number(box, "height") / 2
        assert number(line, "y1") == number(line, "y2") == middle
    for box, words in zip(boxes, zip(*[iter(svg.all("text"))] * 3)):
        inside, name, state = words
        x, w = number(box, "x"), number(box, "width")
        assert number(inside, "x") == x + w / 2 and inside.attrs["text-anchor"] == "middle"
        top, bottom = number(box, "y"), number(box, "y") + number(box, "height")
        assert top < number(inside, "y") <= bottom
        assert number(name, "x") == number(state, "x") == x
        assert bottom < number(name, "y") < number(state, "y") <= height - 10
        assert 0 < top


def test_a_long_version_name_is_cut_on_the_line(tmp_path):
    doc = history()
    doc["versions"] = ["a-very-long-name-of-a-sweep-of-dtbs", "v2 (x)", "v3"]
    out = plain(tmp_path, current(tmp_path), "--history", write(tmp_path, "h.json", doc))
    svg = timeline(out, "acme,plat")
    assert [t.text() for t in svg.all("text")][1::3] == ["a-very-long-name-of-a-", "v2", "v3"]
    assert svg.one("title").text() == ("a-very-long-name-of-a-sweep-of-dtbs: absent; "
                                       "v2: unaffected; v3: affected")
    boxes = svg.all("rect")
    step = number(boxes[1], "x") - number(boxes[0], "x")
    assert number(boxes[2], "x") - number(boxes[1], "x") == step
    right = number(boxes[2], "x") + number(boxes[2], "width")
    assert right < number(svg, "width") <= right + step


def test_a_soc_not_in_the_history_says_so(built):
    base, out = built
    history_ = section(parse(page_of(out, "acme,mc")), "History")
    assert not history_.all("svg")
    assert history_.one("p").text() == "Not in the history." and \
        history_.one("p").classes == ["muted"]


# -- the verdict chart -------------------------------------------------------------------------

def bars(svg):
    """[(label, bar, number)] of a verdict chart."""
    words, rects = svg.all("text"), svg.all("rect")
    assert len(words) == 2 * len(rects)
    return list(zip(words[::2], rects, words[1::2]))


def test_the_chart_draws_each_verdict_as_a_bar_as_long_as_its_count(tmp_path):
    doc = current(tmp_path)
    pci = soc_of(doc, "acme,pci")
    pci["verdict_counts"] = {"no-iommu": 3, "broken": 12, "capable": 7, "not-a-device": 0}
    out = plain(tmp_path, doc)
    svg = section(parse(page_of(out, "acme,pci")), "Verdicts").one("svg")
    assert svg.one("title").text() == "Links by verdict: capable 7, broken 12, no-iommu 3"
    shown = bars(svg)
    assert [(a.text(), c.text()) for a, _, c in shown] == [("capable", "7"), ("broken", "12"),
                                                           ("no-iommu", "3")]
    widths = [number(r, "width") for _, r, _ in shown]
    assert widths[1] == max(widths) and widths == [round(widths[1] * n / 12) for n in (7, 12, 3)]
    width, height = number(svg, "width"), number(svg, "height")
    assert svg.attrs["viewbox"] == f"0 0 {svg.attrs['width']} {svg.attrs['height']}"
    tops = []
    for label, rect, count in shown:
        x, y, h = number(rect, "x"), number(rect, "y"), number(rect, "height")
        tops.append(y)
        assert label.attrs["text-anchor"] == "end" and number(label, "x") < x
        assert y < number(label, "y") <= y + h and y < number(count, "y") <= y + h
        assert number(count, "x") > x + number(rect, "width")
        assert number(label, "y") == number(count, "y")      # one baseline a row
        assert 0 < y and y + h < height and number(count, "x") < width - 20
    gaps = {b - a for a, b in zip(tops, tops[1:])}
    assert len(gaps) == 1 and gaps.pop() > number(shown[0][1], "height")
    # broken links in the page's colour for bad, each verdict its own colour
    fills = [r.attrs["fill"] for _, r, _ in shown]
    assert fills[1] == CSS_BAD and len(set(fills)) == 3


def test_a_count_far_below_the_most_still_shows_a_bar(tmp_path):
    doc = current(tmp_path)
    soc_of(doc, "acme,pci")["verdict_counts"] = {"capable": 10000, "broken": 1}
    out = plain(tmp_path, doc)
    shown = bars(section(parse(page_of(out, "acme,pci")), "Verdicts").one("svg"))
    assert [number(r, "width") for _, r, _ in shown][1] == 1


def test_a_soc_without_links_has_no_chart(tmp_path):
    doc = current(tmp_path)
    soc_of(doc, "acme,pci")["verdict_counts"] = {}
    out = plain(tmp_path, doc)
    verdicts = section(parse(page_of(out, "acme,pci")), "Verdicts")
    assert not verdicts.all("svg") and verdicts.one("p").text() == "No links."
    assert verdicts.one("p").classes == ["muted"]


# -- index.html ---------------------------------------------------------------------------------

def test_the_index_states_the_corpus_target_rule_size_and_affected(built):
    base, out = built
    page = parse(out / "index.html")
    assert page.one("head").one("title").text() == "dtb-audit: linux-7.2 DTBs"
    assert page.one("h1").text() == "SMMU coherency: linux-7.2 DTBs"
    doc = current(base)
    boards = sum(len(s["boards"]) for s in doc["socs"])
    shown = facts(page)
    assert [(k, v.text()) for k, v in shown] == [
        ("Corpus", "linux-7.2 DTBs"), ("Target kernel", TARGET), ("Rule", "walk-or-device"),
        ("Corpus size", f"{boards} boards of 8 SoCs, {len(doc['links'])} links"),
        ("Affected", "4 SoCs, 2 with PCI or fsl-mc passthrough refused"),
        ("Since", "linux-7.1 DTBs: 2 newly affected, 1 no longer affected")]
    assert shown[4][1].one("strong").text() == "4 SoCs"
    assert shown[5][1].one("a").attrs["href"] == "#changes"
    figure = page.one("figure")
    assert figure.one("figcaption").text() == f"Verdicts of all {len(doc['links'])} links"
    totals = {}
    for s in doc["socs"]:
        for verdict, n in s["verdict_counts"].items():
            totals[verdict] = totals.get(verdict, 0) + n
    assert {a.text(): int(c.text()) for a, _, c in bars(figure.one("svg"))} == totals
    footer = [(a.attrs["href"], a.text()) for a in page.one("footer").all("a")]
    assert footer == [(f"data/{n}", n) for n in ("sweep.json", "diff.json", "history.json",
                                                 "bootlog.json", "index.json")]
    for name in ("sweep.json", "history.json", "bootlog.json"):
        assert (out / "data" / name).is_file()
    assert json.loads((out / "data" / "history.json").read_text())["versions"] == \
        HISTORY_VERSIONS
    assert json.loads((out / "data" / "bootlog.json").read_text()) == bootlog()


def test_the_index_of_a_partial_corpus_without_legacy_bindings_says_both(tmp_path):
    doc = current(tmp_path)
    doc["corpus"]["partial"] = True
    doc["legacy_dt_bindings"] = False
    doc["target_assumed"] = False
    soc_of(doc, "acme,pci")["passthrough"] = False
    out = plain(tmp_path, doc)
    page = parse(out / "index.html")
    shown = dict((k, v) for k, v in facts(page))
    assert shown["Corpus"].text() == "linux-7.2 DTBs (partial: its build was interrupted)"
    assert shown["Corpus"].one("span").classes == ["bad"]
    assert shown["Rule"].text() == "walk-or-device (without the legacy mmu-masters binding)"
    assert shown["Target kernel"].text() == "7.2"
    assert shown["Affected"].text() == "4 SoCs, 1 with PCI or fsl-mc passthrough refused"
    assert "Since" not in shown and page.one("section", id="changes") is None \
        if page.all("section", id="changes") else "Since" not in shown
    assert [(a.attrs["href"]) for a in page.one("footer").all("a")] == ["data/sweep.json",
                                                                       "data/index.json"]
    assert sorted(p.name for p in (out / "data").iterdir()) == ["index.json", "sweep.json"]


def test_a_sweep_of_one_board_is_counted_in_the_singular(tmp_path):
    doc = current(tmp_path)
    doc["socs"] = [soc_of(doc, "acme,mc")]
    doc["links"] = doc["links"][:1]
    out = plain(tmp_path, doc)
    shown = dict((k, v.text()) for k, v in facts(parse(out / "index.html")))
    assert shown["Corpus size"] == "1 board of 1 SoC, 1 link"
    assert shown["Affected"] == "1 SoC, 1 with PCI or fsl-mc passthrough refused"


def test_the_affected_table_has_a_row_per_affected_soc_with_sort_keys(built):
    base, out = built
    page = parse(out / "index.html")
    caption, heads, rows = table(page, "affected")
    assert caption == "4 SoCs affected"
    assert heads == ["SoC", "Boards affected", "Passthrough", "SMMU node", "Written at",
                     "Evidence"]
    t = page.one("table", id="affected")
    assert t.classes == ["sortable"]
    assert [th.attrs.get("data-type") for th in t.one("thead").all("th")] == \
        [None, "number", None, None, None, None]
    assert [th.one("button").text() for th in t.one("thead").all("th")] == heads
    assert texts(rows) == [
        ["acme,mc", "1 / 1", "PCI / fsl-mc refused", "/soc/iommu@5000000 (smmu)",
         "position not recorded", "coherent-masters"],
        ["acme,pci", "1 / 1", "PCI / fsl-mc refused", "/soc/iommu@5000000 (smmu)",
         "position not recorded", "coherent-masters"],
        ["acme,plat", "2 / 3", "platform devices only", "/soc/iommu@5000000 (smmu)",
         "arch/arm64/boot/dts/acme/plat #1.dtsi:42", "coherent-masters"],
        ["evil\\x0asoc\\x1b[31m", "1 / 1", "platform devices only",
         "/soc/iommu-\\x0a\\x1b[m@5000000 (smmu)", "position not recorded", "no-evidence"]]
    assert [r[0].attrs.get("data-sort") for r in rows] == ["acme,mc", "acme,pci", "acme,plat",
                                                          "evil\\x0asoc\\x1b[31m"]
    assert [r[1].attrs.get("data-sort") for r in rows] == ["1", "1", "2", "1"]
    assert all(r[1].classes == ["num"] for r in rows)
    assert [r[2].attrs.get("data-sort") for r in rows] == ["1", "1", "0", "0"]
    assert rows[0][2].one("span").classes == ["bad", "nowrap"] and not rows[2][2].all("span")
    assert [r[4].attrs.get("data-sort") for r in rows] == [
        "~", "~", "arch/arm64/boot/dts/acme/plat #1.dtsi:00000042", "~"]
    assert rows[2][4].one("a").attrs["href"] == ("https://src.example/linux/v7.2/source/arch/"
                                                 "arm64/boot/dts/acme/plat%20%231.dtsi#L42")
    for row in rows:
        link = row[0].one("a")
        assert link.attrs["href"] == page_of(out, link.text().replace("\\x0a", "\n")
                                             .replace("\\x1b", "\x1b")).relative_to(out).as_posix()
        assert [li.text() for li in row[3].all("li")] == [row[3].text()]
        assert row[3].one("code").text() == row[3].text().removesuffix(" (smmu)")
        assert row[5].one("span").classes == ["evidence"]


def test_the_written_at_sort_key_of_an_smmu_without_a_line_is_its_file(tmp_path):
    doc = current(tmp_path)
    plat = soc_of(doc, "acme,plat")
    plat["providers"][0].update(source_line=None)
    pci = soc_of(doc, "acme,pci")
    pci["providers"].insert(0, smmu("/soc/iommu@1000", False, True, ["pci-rdb.dtb"],
                                    source_file=None))
    pci["providers"].append(smmu("/soc/iommu@2000", False, True, ["pci-rdb.dtb"],
                                 source_file="b.dtsi", source_line=9))
    out = plain(tmp_path, doc)
    _, _, rows = table(parse(out / "index.html"), "affected")
    keys = {r[0].text(): r[4].attrs["data-sort"] for r in rows}
    assert keys["acme,plat"] == "arch/arm64/boot/dts/acme/plat #1.dtsi"
    assert keys["acme,pci"] == "b.dtsi:00000009"       # the first SMMU written somewhere
    pci_row = next(r for r in rows if r[0].text() == "acme,pci")
    assert [li.text() for li in pci_row[3].all("li")] == [
        "/soc/iommu@1000", "/soc/iommu@5000000 (smmu)", "/soc/iommu@2000"]
    assert [li.text() for li in pci_row[4].all("li")] == [
        "position not recorded", "position not recorded", "b.dtsi:9"]
    # without --source-url, a position is text, not a link
    assert not pci_row[4].all("a") and pci_row[4].all("code")[0].text() == "b.dtsi:9"


def test_socs_with_an_smmu_not_affected_have_their_own_table(built):
    base, out = built
    page = parse(out / "index.html")
    assert section(page, "SoCs with an SMMU, not affected") is not None
    caption, heads, rows = table(page, "unaffected")
    assert (caption, heads) == ("2 SoCs", ["SoC", "Boards", "SMMUs"])
    assert texts(rows) == [["acme,fine", "1", "1 SMMU, all dma-coherent"],
                           ["acme,noirq", "1", "1 SMMU, none dma-coherent"]]
    assert all(r[1].classes == ["num"] and r[0].one("a") for r in rows)


def test_an_unaffected_soc_with_some_smmus_coherent_says_some(tmp_path):
    doc = current(tmp_path)
    fine = soc_of(doc, "acme,fine")
    fine["providers"].append(smmu("/soc/iommu@9000", False, False, ["fine-evk.dtb"]))
    fine["boards"].append("fine-mini.dtb")
    out = plain(tmp_path, doc)
    caption, _, rows = table(parse(out / "index.html"), "unaffected")
    assert caption == "2 SoCs"
    assert texts(rows)[0] == ["acme,fine", "2", "2 SMMUs, some dma-coherent"]


def test_without_unaffected_socs_there_is_no_such_table(tmp_path):
    doc = current(tmp_path)
    doc["socs"] = [s for s in doc["socs"] if s["affected"] or not s["providers"]]
    out = plain(tmp_path, doc)
    page = parse(out / "index.html")
    assert section(page, "SoCs with an SMMU, not affected") is None
    assert not page.all("table", id="unaffected")


def test_the_changes_since_the_previous_sweep(built):
    base, out = built
    page = parse(out / "index.html")
    changes = page.one("section", id="changes")
    assert changes.one("h2").text() == "Since linux-7.1 DTBs"
    parts = {}
    heading = None
    for node in changes.nodes():
        if node.tag == "h3":
            heading = node.text()
        elif node.tag in ("ul", "p"):
            parts[heading] = node
    assert list(parts) == ["Newly affected (2)", "No longer affected (1)",
                           "Affected before, gone from the corpus (1)",
                           "SMMUs that gained dma-coherent (1)",
                           "SMMUs that lost dma-coherent (2)"]
    items = {k: [li.text() for li in v.all("li")] for k, v in parts.items()}
    assert items == {
        "Newly affected (2)": ["acme,mc: 1 of 1 board (new SoC)", "acme,pci: 1 of 1 board"],
        "No longer affected (1)": ["acme,fine: 1 affected boards before"],
        "Affected before, gone from the corpus (1)": ["acme,gone: 2 affected boards before"],
        "SMMUs that gained dma-coherent (1)": [
            "acme,fine: /soc/iommu@5000000 arch/arm64/boot/dts/acme/fine.dtsi:7"],
        "SMMUs that lost dma-coherent (2)": ["acme,noirq: /soc/iommu@5000000",
                                             "acme,pci: /soc/iommu@5000000"]}
    assert all(v.tag == "ul" and v.classes == ["changes"] for v in parts.values())
    # SoCs with a page are linked to it; a SoC gone from the corpus is text
    links = {a.text(): a.attrs["href"] for a in changes.all("a")}
    assert set(links) == {"acme,mc", "acme,pci", "acme,fine", "acme,noirq"}
    assert links["acme,pci"] == page_of(out, "acme,pci").relative_to(out).as_posix()
    gained = parts["SMMUs that gained dma-coherent (1)"].one("li")
    assert [c.text() for c in gained.all("code")] == ["/soc/iommu@5000000",
                                                      "arch/arm64/boot/dts/acme/fine.dtsi:7"]
    # the index's own facts say the same numbers, the section follows the affected table
    order = [s.one("h2").text() for s in page.all("section")]
    assert order == ["Affected SoCs", "Since linux-7.1 DTBs", "SoCs with an SMMU, not affected"]
    assert (out / "data" / "diff.json").is_file()


def test_no_changes_say_none(tmp_path):
    doc = current(tmp_path)
    out = plain(tmp_path, doc, "--previous", write(tmp_path, "same.json", current(tmp_path)))
    changes = parse(out / "index.html").one("section", id="changes")
    assert [h.text() for h in changes.all("h3")] == [
        "Newly affected (0)", "No longer affected (0)", "SMMUs that gained dma-coherent (0)",
        "SMMUs that lost dma-coherent (0)"]
    paragraphs = changes.all("p")
    assert [p.text() for p in paragraphs] == ["None."] * 4
    assert all(p.classes == ["muted"] for p in paragraphs) and not changes.all("ul")


def test_the_index_json_maps_pages_and_lists_the_affected(built):
    base, out = built
    index = json.loads((out / "data" / "index.json").read_text())
    doc = current(base)
    assert {k: index[k] for k in ("tool", "kind", "corpus", "target_kernel", "rule")} == {
        "tool": "dtb-audit", "kind": "site", "corpus": "linux-7.2 DTBs", "target_kernel": "7.2",
        "rule": "walk-or-device"}
    with_smmu = [s["soc"] for s in doc["socs"] if s["providers"]]
    assert sorted(index["pages"].values()) == sorted(with_smmu)
    assert all((out / name).is_file() for name in index["pages"])
    totals = {}
    for s in doc["socs"]:
        for verdict, n in s["verdict_counts"].items():
            totals[verdict] = totals.get(verdict, 0) + n
    assert index["verdict_counts"] == totals
    plat = next(a for a in index["affected"] if a["soc"] == "acme,plat")
    assert plat == {"soc": "acme,plat", "page": page_of(out, "acme,plat").relative_to(out)
                    .as_posix(), "passthrough": False, "boards": 3, "affected_boards": 2,
                    "smmus": [{"path": "/soc/iommu@5000000", "label": "smmu",
                               "source_file": "arch/arm64/boot/dts/acme/plat #1.dtsi",
                               "source_line": 42,
                               "url": "https://src.example/linux/v7.2/source/arch/arm64/boot/"
                                      "dts/acme/plat%20%231.dtsi#L42"}]}
    assert [a["soc"] for a in index["affected"]] == [s["soc"] for s in doc["socs"]
                                                     if s["affected"]]
    mc = next(a for a in index["affected"] if a["soc"] == "acme,mc")
    assert mc["passthrough"] is True and mc["smmus"][0]["url"] is None


@pytest.mark.parametrize("template, url", [
    ("https://x.example/{path}", "https://x.example/arch/arm64/boot/dts/acme/plat%20%231.dtsi"),
    ("https://x.example/{version}/{path}?line={line}",
     "https://x.example/7.2/arch/arm64/boot/dts/acme/plat%20%231.dtsi?line=42"),
    ("file:///srv/linux/{path}#{line}", "file:///srv/linux/arch/arm64/boot/dts/acme/"
                                         "plat%20%231.dtsi#42"),
    ("https://x.example/{path}/{path}", "https://x.example/arch/arm64/boot/dts/acme/"
                                        "plat%20%231.dtsi/arch/arm64/boot/dts/acme/"
                                        "plat%20%231.dtsi"),
])
def test_each_source_url_form(tmp_path, template, url):
    doc = current(tmp_path)
    out = plain(tmp_path, doc, "--source-url", template)
    index = json.loads((out / "data" / "index.json").read_text())
    plat = next(a for a in index["affected"] if a["soc"] == "acme,plat")
    assert plat["smmus"][0]["url"] == url
    _, _, rows = table(parse(page_of(out, "acme,plat")), "smmus")
    assert rows[0][6].one("a").attrs["href"] == url


def test_without_a_source_url_nothing_is_linked_to_sources(tmp_path):
    out = plain(tmp_path, current(tmp_path))
    index = json.loads((out / "data" / "index.json").read_text())
    assert all(p["url"] is None for a in index["affected"] for p in a["smmus"])
    _, _, rows = table(parse(page_of(out, "acme,plat")), "smmus")
    assert [r[6].text() for r in rows] == ["arch/arm64/boot/dts/acme/plat #1.dtsi:42",
                                           "arch/arm64/boot/dts/acme/plat.dtsi:3"]
    assert not rows[0][6].all("a") and rows[0][6].one("code")


def test_a_source_url_of_an_smmu_without_a_line_leaves_line_empty(tmp_path):
    doc = current(tmp_path)
    soc_of(doc, "acme,plat")["providers"][0].update(source_line=None)
    out = plain(tmp_path, doc, "--source-url", SOURCE_URL)
    index = json.loads((out / "data" / "index.json").read_text())
    plat = next(a for a in index["affected"] if a["soc"] == "acme,plat")
    assert plat["smmus"][0]["url"] == ("https://src.example/linux/v7.2/source/arch/arm64/boot/"
                                       "dts/acme/plat%20%231.dtsi#L")


STRUCTURE = {"main", "section", "dl", "ul", "table", "thead", "tbody", "tr", "figure", "svg",
             "div", "header", "footer"}


def stray_text(node):
    """Text standing directly in an element that only holds elements."""
    found = [c for c in node.children if isinstance(c, str) and c.strip()] \
        if node.tag in STRUCTURE else []
    return found + [t for c in node.nodes() for t in stray_text(c)]


def test_no_text_stands_between_the_pieces_of_a_page(built):
    base, out = built
    for path in [out / "index.html", *sorted((out / "soc").glob("*.html"))]:
        page = parse(path)
        assert stray_text(page.one("body")) == [], path.name


def test_the_chart_has_the_same_margin_above_and_below_its_bars(built):
    base, out = built
    for path in [out / "index.html", page_of(out, "acme,plat"), page_of(out, "acme,mc")]:
        svg = parse(path).all("svg")[0]
        rects = svg.all("rect")
        top = number(rects[0], "y")
        bottom = number(svg, "height") - number(rects[-1], "y") - number(rects[-1], "height")
        assert top == bottom > 0, path.name


def test_a_soc_without_a_compatible_is_shown_as_a_question_mark(tmp_path):
    """A board whose root has no compatible: its SoC is null in the sweep,
    "?" on the pages (as in every human format), still linked and paged."""
    doc = current(tmp_path)
    soc_of(doc, "acme,mc")["soc"] = None
    out = plain(tmp_path, doc)
    index = json.loads((out / "data" / "index.json").read_text())
    name, = [n for n, s in index["pages"].items() if s is None]
    page = parse(out / name)
    assert page.one("h1").text() == "?" and page.one("head").one("title").text() == \
        "?: dtb-audit"
    _, _, rows = table(parse(out / "index.html"), "affected")
    first = rows[0]
    assert (first[0].text(), first[0].attrs["data-sort"]) == ("?", "?")
    assert first[0].one("a").attrs["href"] == name
    assert next(a for a in index["affected"] if a["soc"] is None)["page"] == name


@pytest.mark.parametrize("template, message", [
    ("https://x/{file}", "needs {path} (and may use {line} and {version})"),
    ("https://x/{path}#{lines}", "unknown placeholder {lines} (use {path}, {line}, {version})"),
    ("https://x/{path}{a}{b}", "unknown placeholder {a} (use {path}, {line}, {version})"),
    ("javascript:alert('{path}')", "not an http, https or file URL"),
    ("ftp://x/{path}", "not an http, https or file URL"),
    ("x/{path}", "not an http, https or file URL"),
])
def test_a_bad_source_url_is_one_whole_line(tmp_path, capsys, template, message):
    status = main(["site", str(tmp_path / "out"), "--sweep",
                   str(write(tmp_path, "s.json", current(tmp_path))), "--source-url", template])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err == f"--source-url {template!r}: error: {message}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("template", ["http://x/{path}", "HTTPS://x/{path}#L{line}",
                                      "file:///srv/{version}/{path}"])
def test_each_allowed_source_url_scheme(tmp_path, template):
    out = plain(tmp_path, current(tmp_path), "--source-url", template)
    assert (out / "index.html").is_file()


def test_a_version_in_the_source_url_needs_the_sweeps_target_kernel(tmp_path, capsys):
    doc = current(tmp_path)
    del doc["schema"]           # schema 1: no target kernel
    template = "https://x/v{version}/{path}"
    status = main(["site", str(tmp_path / "out"), "--sweep", str(write(tmp_path, "s.json", doc)),
                   "--source-url", template])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err == (f"--source-url {template!r}: error: the sweep names no target kernel for "
                   f"{{version}} (sweep again)\n")
    # without {version} the same sweep makes its site
    assert plain(tmp_path, doc, "--source-url", "https://x/{path}").is_dir()


def test_the_data_folder_holds_the_documents_the_site_was_made_from(built, capsys):
    """data/: the sweep as `sweep --format json` saves it, what changed since
    --previous as `diff --format json` writes it, the history and boot logs
    as given."""
    base, out = built
    assert main(["diff", str(base / "before.json"), str(base / "now.json"), "--format",
                 "json"]) in (0, 1)
    assert json.loads((out / "data" / "diff.json").read_text()) == \
        json.loads(capsys.readouterr().out)
    assert json.loads((out / "data" / "sweep.json").read_text()) == \
        json.loads((base / "now.json").read_text())
    assert json.loads((out / "data" / "history.json").read_text()) == history()
    assert json.loads((out / "data" / "bootlog.json").read_text()) == bootlog()


@pytest.mark.parametrize("option, text, message", [
    ("--bootlog", "[]", "not a bootlog document (write one with `dtb-audit bootlog --format "
                        "json`)"),
    ("--bootlog", '"bootlog"', "not a bootlog document (write one with `dtb-audit bootlog "
                               "--format json`)"),
    ("--bootlog", '{"tool": "dtb-audit", "kind": "history"}',
     "not a bootlog document (write one with `dtb-audit bootlog --format json`)"),
    ("--bootlog", '{"tool": "other", "kind": "bootlog"}',
     "not a bootlog document (write one with `dtb-audit bootlog --format json`)"),
    ("--bootlog", "{", "not a bootlog document (not JSON text: Expecting property name "
                       "enclosed in double quotes: line 1 column 2 (char 1))"),
    ("--bootlog", None, "cannot read: No such file or directory"),
    ("--history", None, "cannot read: No such file or directory"),
    ("--bootlog", "", "cannot read: doc.json is a folder, not a regular file"),
    ("--history", "", "cannot read: doc.json is a folder, not a regular file"),
])
def test_a_document_the_site_cannot_read_is_one_whole_line(tmp_path, capsys, option, text,
                                                          message):
    path = tmp_path / "doc.json"
    if text == "":
        path.mkdir()
    elif text is not None:
        path.write_text(text)
    status = main(["site", str(tmp_path / "out"), "--sweep",
                   str(write(tmp_path, "s.json", current(tmp_path))), option, str(path)])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err == f"{path}: error: {message}\n"
    assert not (tmp_path / "out").exists()


def test_only_the_affected_table_sorts(built):
    """The page's script sorts tables of class "sortable" by their header
    buttons: the affected SoCs; the other tables are plain."""
    base, out = built
    index = parse(out / "index.html")
    assert [t.attrs["id"] for t in index.all("table") if "sortable" in t.classes] == ["affected"]
    assert not index.one("table", id="unaffected").all("button")
    page = parse(page_of(out, "acme,plat"))
    for t in page.all("table"):
        assert t.classes == [] and not t.all("button"), t.attrs["id"]
        assert all(th.text() for th in t.one("thead").all("th"))
