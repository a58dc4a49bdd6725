"""`dtb-audit site` in a real browser: Debian's chromium driven by
Playwright (the system's browser, never a downloaded one), over sites
built through the CLI from the snippet corpora swept to JSON, with a board
whose compatible holds `<script>`, and from the mini kernel's golden sweep
(source positions).  Skipped where no browser is installed.
"""
import json
import os
import re
from pathlib import Path

import pytest

from auditor.cli import main
from corpora import private_cache, snippet_corpus
from minikernel import soc_dtsi
from snippets import compile_dts
from testpaths import GOLDEN, ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SCRIPT_SOC = "<script>alert(1)</script>"
TEMPLATE = "https://elixir.bootlin.com/linux/v{version}/source/{path}#L{line}"


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no browser: {CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("no browser driver: Playwright for Python is not installed "
                    "(pip install playwright)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def site(browser, tmp_path_factory):
    """The snippet site (5 affected SoCs: the golden four and the <script> one),
    with the "new" version's sweep as --previous and a history of both."""
    base = tmp_path_factory.mktemp("site")
    saved = {}
    # (`browser` first: where there is none, nothing is built before the skip)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("XDG_CACHE_HOME", str(private_cache(base / "cache")))
        for version in ("new", "old"):
            folder = snippet_corpus(base / version, version)
            compile_dts(folder, "script-evk", "\tsoc {\n\t\tcompatible = \"simple-bus\";\n"
                        "\t\t#address-cells = <2>;\n\t\t#size-cells = <2>;\n\t\tranges;\n"
                        "\t\tsmmu: iommu@5000000 { compatible = \"arm,mmu-500\"; "
                        "#global-interrupts = <1>; #iommu-cells = <1>; };\n"
                        "\t\tdma@1000 { compatible = \"acme,dev\"; iommus = <&smmu 1>; };\n"
                        "\t};\n",
                        header="/dts-v1/;\n/ {\n\tcompatible = \"acme,script-evk\", "
                               f"\"{SCRIPT_SOC}\";\n\t#address-cells = <2>;\n"
                               "\t#size-cells = <2>;\n")
            (folder / "script-evk.dts").unlink()
            saved[version] = base / f"{version}.json"
            assert main(["sweep", str(folder), "--format", "json", "-o",
                         str(saved[version])]) == 0
    history = base / "history.json"
    assert main(["history", str(saved["new"]), str(saved["old"]), "--format", "json",
                 "-o", str(history)]) == 0
    out = base / "out"
    assert main(["site", str(out), "--sweep", str(saved["old"]), "--previous",
                 str(saved["new"]), "--history", str(history)]) == 0
    return out, json.loads(saved["old"].read_text())


@pytest.fixture(scope="module")
def source_site(browser, tmp_path_factory):
    """The site of the mini kernel's golden sweep, linked through an Elixir-style URL."""
    base = tmp_path_factory.mktemp("source-site")
    sweep = base / "sweep.json"
    sweep.write_text((GOLDEN / "minikernel" / "sweep.json").read_text()
                     .replace("{TMP}", str(base)))
    assert main(["site", str(base / "out"), "--sweep", str(sweep), "--source-url",
                 TEMPLATE]) == 0
    return base / "out", json.loads(sweep.read_text())


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: m.type in ("error", "warning") and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    yield page
    context.close()


def soc_page(folder, soc):
    index = json.loads((folder / "data" / "index.json").read_text())
    name, = [n for n, s in index["pages"].items() if s == soc]
    return folder / name


def test_the_table_has_a_row_per_affected_soc(site, page):
    out, document = site
    page.goto((out / "index.html").as_uri())
    affected = [s["soc"] for s in document["socs"] if s["affected"]]
    assert len(affected) == 5
    assert page.locator("#affected tbody tr").count() == len(affected)
    shown = page.locator("#affected tbody th").all_inner_texts()
    assert sorted(shown) == sorted(a.replace("\n", "\\x0a").replace("\x1b", "\\x1b")
                                   for a in affected)


def test_typing_in_the_filter_leaves_only_matching_rows(site, page):
    out, document = site
    page.goto((out / "index.html").as_uri())
    page.get_by_label("Filter").fill("acme,p")
    visible = page.locator("#affected tbody tr:visible th")
    assert sorted(visible.all_inner_texts()) == ["acme,pci", "acme,plat"]
    assert page.locator("#affected-shown").inner_text() == "2 of 5 shown"
    page.get_by_label("Filter").fill("")
    assert page.locator("#affected tbody tr:visible").count() == 5


def test_sort_buttons_by_keyboard(site, page):
    out, _ = site
    page.goto((out / "index.html").as_uri())
    button = page.get_by_role("button", name="SoC")
    button.focus()
    page.keyboard.press("Enter")
    names = page.locator("#affected tbody th").all_inner_texts()
    assert names == sorted(names, key=str.lower) or names == sorted(names)
    assert page.locator("#affected thead th").first.get_attribute("aria-sort") == "ascending"
    page.keyboard.press("Enter")
    assert page.locator("#affected tbody th").all_inner_texts() == names[::-1]


def test_a_soc_pages_source_link_names_the_file_and_line(source_site, page):
    out, document = source_site
    page.goto(soc_page(out, "acme,a100").as_uri())
    dtsi = soc_dtsi("a100", False).splitlines()
    line = 1 + next(k for k, text in enumerate(dtsi) if "smmu: iommu@5000000 {" in text)
    link = page.locator("#smmus a")
    assert link.inner_text() == f"arch/arm64/boot/dts/acme/a100.dtsi:{line}"
    assert link.get_attribute("href") == (
        f"https://elixir.bootlin.com/linux/v6.1.192/source/arch/arm64/boot/dts/acme/"
        f"a100.dtsi#L{line}")
    page.goto((out / "index.html").as_uri())
    assert page.locator("#affected a[href*='a100.dtsi']").get_attribute("href").endswith(
        f"#L{line}")


def test_a_dtb_string_holding_script_is_text(site, page):
    out, _ = site
    alerts = []
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    page.goto((out / "index.html").as_uri())
    assert page.get_by_role("link", name=SCRIPT_SOC).count() == 1
    page.get_by_role("link", name=SCRIPT_SOC).click()
    assert page.locator("h1").inner_text() == SCRIPT_SOC
    assert page.locator("script").count() == 1       # the page's own
    assert alerts == []


def test_no_console_errors(site, page):
    out, _ = site
    for path in [out / "index.html", soc_page(out, "acme,pci"), soc_page(out, "acme,fine")]:
        page.goto(path.as_uri())
        if path.name == "index.html":
            page.get_by_label("Filter").fill("x")
            page.get_by_role("button", name="Boards affected").click()
    assert page.problems == []


def test_the_page_is_whole_without_javascript(site, browser):
    out, document = site
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto((out / "index.html").as_uri())
        affected = sum(1 for s in document["socs"] if s["affected"])
        assert page.locator("#affected tbody tr:visible").count() == affected
        assert not page.get_by_label("Filter").is_visible()   # it would do nothing
        assert page.locator("svg").count() == 1
    finally:
        context.close()


def test_print_shows_the_table_without_the_controls(site, page):
    out, _ = site
    page.goto((out / "index.html").as_uri())
    page.emulate_media(media="print")
    assert not page.get_by_label("Filter").is_visible()
    assert page.locator("#affected tbody tr:visible").count() == 5
    assert page.locator("#affected thead th button").first.evaluate(
        "b => getComputedStyle(b, '::after').content") == '""'


def test_changes_and_history_are_shown(site, page):
    out, _ = site
    page.goto((out / "index.html").as_uri())
    changes = page.locator("#changes").inner_text()
    # "new" -> "old" reverses the snippet story: acme,pci's SMMU loses
    # dma-coherent (newly affected), acme,fine's gains it (no longer affected).
    assert re.search(r"Newly affected \(1\)\s+acme,pci", changes)
    assert re.search(r"No longer affected \(1\)\s+acme,fine", changes)
    page.goto(soc_page(out, "acme,fine").as_uri())
    timeline = page.locator("section:has(h2:text('History')) svg")
    assert timeline.locator("title").text_content().endswith("affected; " + "DTBs in "
                                                           + str(out.parent / "old")
                                                           + ": unaffected")


@pytest.mark.skipif(not os.environ.get("DTB_AUDIT_SCREENSHOT"),
                    reason="set DTB_AUDIT_SCREENSHOT=SITE_DIR to remake docs/site-index.png")
def test_screenshot(browser):
    """The README's picture: the top of SITE_DIR/index.html, 1200 pixels wide,
    in 64 colours (a tenth of the size, the same to the eye)."""
    from PIL import Image
    png = ROOT / "docs" / "site-index.png"
    png.parent.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1200, "height": 1400})
    page.goto((Path(os.environ["DTB_AUDIT_SCREENSHOT"]) / "index.html").as_uri())
    page.screenshot(path=png)
    page.close()
    Image.open(png).convert("RGB").quantize(64).save(png, optimize=True)
