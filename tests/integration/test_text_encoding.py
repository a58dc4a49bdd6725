"""Text from a DTB in every format (issue 22): DT strings are bytes; valid
UTF-8 is shown as UTF-8 (`véndor,söc`, never `vÃ©ndor`), a byte that is not
valid UTF-8 as \\xNN; every output is valid UTF-8.  CSV cells that a
spreadsheet would run (=, +, -, @, tab, CR first) start with a quote, and
no cell holds a raw control character.  docs/text-and-formats.md says it
in words."""
import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest

from corpora import board_header, device_node, smmu_node, soc_node
from minikernel import VENDOR_DIR, make_minikernel
from snippets import compile_dts

from auditor.cli import main
from auditor.report import FORMATS
from testpaths import ROOT

pytestmark = pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc")

UTF8 = "véndor,söc"                 # written in UTF-8 in the DTS
BAD = "v\\xffndor,s\\xf6c"          # bytes ff and f6: not UTF-8, shown as \xNN
MOJIBAKE = re.compile("[ÃÂ]")       # UTF-8 read as latin-1


def _renamed(tree):
    """The mini kernel's SoCs a100 and a200 renamed (every file that names them)."""
    for path in Path(tree, VENDOR_DIR).iterdir():
        text = path.read_text()
        text = text.replace('"acme,a100"', f'"{UTF8}"').replace('"acme,a200"',
                                                                   '"v\\xffndor,s\\xf6c"')
        path.write_text(text, encoding="utf-8")
    return tree


@pytest.fixture
def trees(tmp_path):
    """(before, after): all SMMUs coherent, then a100 and a200 not (affected)."""
    before = _renamed(make_minikernel(tmp_path / "before", coherent=("a100", "a200", "a300",
                                                                     "a400")))
    after = _renamed(make_minikernel(tmp_path / "after"))
    return before, after


def _strings(value):
    """Every string inside a parsed JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _read(path):
    text = Path(path).read_bytes().decode("utf-8")      # strict: any other bytes fail here
    assert not MOJIBAKE.search(text), text
    assert "\udcff" not in text
    return text


def _has_both(text):
    assert UTF8 in text and BAD in text, text


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_sweep_format(trees, tmp_path, fmt):
    out = tmp_path / f"sweep.{fmt}"
    assert main(["sweep", "--kernel", str(trees[1]), "--format", fmt, "-o", str(out)]) == 0
    text = _read(out)
    if fmt in ("json", "sarif"):
        _has_both("\n".join(_strings(json.loads(text))))
    elif fmt == "jsonl":
        _has_both("\n".join(s for line in text.splitlines() for s in _strings(json.loads(line))))
    elif fmt == "csv":
        _has_both("\n".join(cell for row in csv.reader(io.StringIO(text)) for cell in row))
    else:
        _has_both(text)


def test_explain(trees, capsys):
    for board, soc in (("a100-evk", UTF8), ("a200-rdb", BAD)):
        assert main(["explain", board, "--kernel", str(trees[1])]) == 0
        out, _ = capsys.readouterr()
        assert not MOJIBAKE.search(out)
        assert f", SoC {soc}, " in out.splitlines()[0]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_diff_and_history(trees, tmp_path, capsys, fmt):
    saved = []
    for tree in trees:
        saved.append(str(tmp_path / f"{Path(tree).name}.json"))
        assert main(["sweep", "--kernel", str(tree), "--format", "json", "-o", saved[-1]]) == 0
    for command in ("diff", "history"):
        out = tmp_path / f"{command}.{fmt}"
        assert main([command, *saved, "--format", fmt, "-o", str(out)]) == 0
        text = _read(out)
        _has_both("\n".join(_strings(json.loads(text))) if fmt == "json" else text)


def test_patch_texts(trees, tmp_path, capsys):
    series = tmp_path / "series"
    assert main(["patch", "--kernel", str(trees[1]), "-o", str(series),
                 "--from", "A U Thor <author@example.com>"]) == 0
    texts = [_read(p) for p in sorted(series.iterdir())]
    # Subjects name the SoC by what follows the vendor: "söc" and "s\xf6c".
    cover = texts[0]
    assert "söc: mark SMMU" in cover and "s\\xf6c: mark SMMU" in cover


def test_patch_texts_escape_control_characters(tmp_path, capsys):
    """A SoC named with a newline and an ESC: no forged mail header, no raw ESC."""
    tree = make_minikernel(tmp_path / "linux")
    for path in Path(tree, VENDOR_DIR).iterdir():
        path.write_text(path.read_text().replace('"acme,a100"', '"acme,a1\\nX-Evil: 1\\x1b[31m"'))
    series = tmp_path / "series"
    assert main(["patch", "--kernel", str(tree), "-o", str(series),
                 "--from", "A U Thor <author@example.com>"]) == 0
    for path in series.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "\x1b" not in text and "\nX-Evil" not in text, text
    assert any("Subject: [PATCH 1/2] arm64: dts: acme: a1\\x0aX-Evil: 1\\x1b[31m: mark SMMU"
               in path.read_text() for path in series.iterdir())


# -- CSV injection ------------------------------------------------------------------------

# (a SoC's `compatible` as the DTS writes it, the CSV cell it must give)
CELLS = [
    ('=HYPERLINK(\\"http://example.com\\",\\"x\\")', "'=HYPERLINK(\"http://example.com\",\"x\")"),
    ("+1+1,soc", "'+1+1,soc"),
    ("-2+3,soc", "'-2+3,soc"),
    ("@SUM(1),soc", "'@SUM(1),soc"),
    ("\\tacme,tab", "'\\x09acme,tab"),
    ("\\racme,cr", "'\\x0dacme,cr"),
    ("acme,esc\\x1b[31m\\nline", "acme,esc\\x1b[31m\\x0aline"),
    ("acme,plain", "acme,plain"),
]


@pytest.mark.parametrize("written, cell", CELLS)
def test_csv_cells_a_spreadsheet_would_run_are_text(tmp_path, written, cell):
    folder = tmp_path / "dtbs"
    folder.mkdir()
    compile_dts(folder, "cells", soc_node(smmu_node(f'"{written}", "arm,mmu-500"'), device_node("dma@1000")),
                header=board_header(written, written))
    out = tmp_path / "links.csv"
    assert main(["sweep", str(folder), "--format", "csv", "-o", str(out)]) == 0
    raw = out.read_text(encoding="utf-8")
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", raw), raw    # rows end in \n: no other
    (row,) = csv.DictReader(io.StringIO(raw))
    assert (row["board"], row["soc"]) == (cell, cell)
    assert row["provider_compatible"] == cell + ";arm,mmu-500"
    assert (row["master_path"], row["provider_enabled"], row["verdict"]) == (
        "/soc/dma@1000", "True", "broken")


def test_history_text_and_robot_mails_escape_control_characters():
    """`history --git` text and its robot mails: a SoC, an SMMU path and a
    commit subject with a newline and an ESC (DTB and commit text)."""
    from auditor.documents import CommitChange, GitSource, History, Revision, SmmuChange, SocLine
    from auditor.history.mail import robot_message
    from auditor.history.text import format_history
    from kernels.target import TargetKernel
    soc = "acme,a\nSubject: forged\x1b[31m"
    change = CommitChange("a" * 40, "arm64: dts\x1b[2J", "2024-01-01", "unaffected", "affected",
                          1, ("acme/x\n.dtb",),
                          (SmmuChange("/soc/iommu\n@1", True, False, "a.dtsi", 3),), False, None)
    history = History((Revision("a" * 40, TargetKernel.parse("6.9.0"), subject="x\ny",
                                date="2024-01-01"),),
                      (SocLine(soc, (change,)),), GitSource("/src/linux", "kernel", None, True),
                      ((soc,),))
    mail = robot_message(history, soc, change)
    assert mail.splitlines()[0] == ("Subject: [dtb-audit] acme,a\\x0aSubject: forged\\x1b[31m: "
                                    "VFIO refuses its devices since aaaaaaaaaaaa")
    text = format_history(history)
    for out in (mail, text):
        assert "\x1b" not in out and "\nSubject: forged" not in out and "\n@1" not in out
    assert "/soc/iommu\\x0a@1" in text and "x\\x0ay" in text


def test_md_code_spans_hold_backticks(tmp_path):
    """A backtick in a SoC's name does not end its code span in `md` (the
    rest would be read as Markdown: here an image fetched from elsewhere)."""
    folder = tmp_path / "dtbs"
    folder.mkdir()
    soc = "acme,a`![x](http://example.com/x.png)``"
    compile_dts(folder, "tick", soc_node(smmu_node(), device_node("dma@1000")),
                header=board_header("acme,board", soc))
    out = tmp_path / "r.md"
    assert main(["sweep", str(folder), "--format", "md", "-o", str(out)]) == 0
    (row,) = [line for line in out.read_text().splitlines() if line.startswith("| ```")]
    assert row.startswith(f"| ``` {soc} ``` | 1/1 | `/soc/iommu@5000000` |")


def test_a_terminal_that_is_not_utf8(tmp_path):
    """stdout in ASCII (LC_ALL=C without UTF-8 mode): DTB text it cannot
    encode is written \\xNN, not an internal error."""
    import os
    import subprocess
    import sys
    folder = tmp_path / "dtbs"
    folder.mkdir()
    compile_dts(folder, "u", soc_node(smmu_node(), device_node("dma@1000")), header=board_header("acme,b", UTF8))
    env = dict(os.environ, PYTHONIOENCODING="ascii", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "auditor.cli", "sweep", str(folder),
                           "--format", "table"], capture_output=True, env=env, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert b"v\\xe9ndor,s\\xf6c" in proc.stdout


def test_a_report_file_is_utf8_in_a_locale_that_is_not(tmp_path):
    """-o writes UTF-8, as every output is (the module's docstring), also when
    the locale's encoding is ASCII (LC_ALL=C, neither coerced nor UTF-8 mode)."""
    import os
    import subprocess
    import sys
    folder = tmp_path / "dtbs"
    folder.mkdir()
    compile_dts(folder, "u", soc_node(smmu_node(), device_node("dma@1000")),
                header=board_header("acme,b", UTF8))
    out = tmp_path / "r.md"
    env = dict(os.environ, LC_ALL="C", PYTHONCOERCECLOCALE="0", PYTHONUTF8="0",
               PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "auditor.cli", "sweep", str(folder),
                           "--format", "md", "-o", str(out)], capture_output=True, env=env,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert UTF8 in out.read_bytes().decode("utf-8")


def test_a_compiler_message_that_is_not_utf8(tmp_path, capsys):
    """cpp quotes a board's latin-1 bytes in its error: the board fails to
    build with that line (\\xNN), the others build; no internal error."""
    tree = make_minikernel(tmp_path / "linux")
    board = Path(tree, VENDOR_DIR, "a100-evk.dts")
    board.write_bytes(board.read_bytes() + b"\n#error caf\xe9\n")
    status = main(["corpus", "build", "--kernel", str(tree), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 1, err
    (line,) = [line for line in err.splitlines() if ": error: " in line]
    assert line.startswith(f"{VENDOR_DIR}/a100-evk.dts: error: ") and "caf\\xe9" in line
