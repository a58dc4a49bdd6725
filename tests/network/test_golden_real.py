"""Golden outputs of real boards of Debian's Linux 6.1 and 6.12 (the seed
thread's LS1028A and LS1088A): every format, `explain`, `diff` and `history`,
with Debian's point release of each series replaced by a placeholder, so a
new upload of the package changes nothing here unless the boards changed.

    DTB_AUDIT_REGENERATE=1 python3 -m pytest -m network tests/network/test_golden_real.py
"""
import json

import pytest

from auditor import report
from auditor.cli import main
from auditor.diff import diff_sweeps, format_diff
from auditor.history.stitching import of_sweeps
from auditor.history.text import format_history
from auditor.sweep import sweep_corpus
from goldenfiles import check, text_file


# -- real boards (Debian's Linux 6.1 and 6.12) ---------------------------------------------

REAL_BOARDS = ["freescale/fsl-ls1028a-rdb.dtb", "freescale/fsl-ls1088a-rdb.dtb"]


@pytest.fixture(scope="module")
def real(real_corpus_factory):
    corpora = {v: real_corpus_factory(f"linux-source-{v}", REAL_BOARDS) for v in ("6.1", "6.12")}
    places = {}
    for v, c in corpora.items():
        places[f"{{CORPUS-{v}}}"] = c.root
        places[f"{{KERNEL-{v}}}"] = c.kernel_dir
        # Debian's point release of the series (6.12.117, then 6.12.118, ...)
        assert c.kernel_version.startswith(f"{v}."), c.kernel_version
        places[f"{{LINUX-{v}}}"] = c.kernel_version
    return corpora, {v: sweep_corpus(c) for v, c in corpora.items()}, places


@pytest.mark.parametrize("v", ["6.1", "6.12"])
@pytest.mark.parametrize("fmt", ["table", "json", "md", "gcc", "sarif"])
def test_real_boards_formats(real, v, fmt):
    _, sweeps, places = real
    out = text_file(lambda f: report.write(sweeps[v], fmt, f))
    check(f"real/linux-{v}.sweep.{fmt}", out, places)


def test_real_boards_explain(real, capsys):
    corpora, _, places = real
    status = main(["explain", str(corpora["6.1"].root / REAL_BOARDS[0])])
    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    check("real/linux-6.1.explain.fsl-ls1028a-rdb", out, places)


def test_real_boards_diff_and_history(real):
    _, sweeps, places = real
    d = diff_sweeps(sweeps["6.1"], sweeps["6.12"])
    check("real/diff.text", format_diff(d), places)
    check("real/diff.json", json.dumps(d.to_json(), indent=1) + "\n", places)
    h = of_sweeps([sweeps["6.1"], sweeps["6.12"]])
    check("real/history.text", format_history(h), places)
    check("real/history.json", json.dumps(h.to_json(), indent=1) + "\n", places)
