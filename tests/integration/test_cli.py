"""The command line as scripts and nightly jobs meet it (issue 9): only
machine output on stdout, diagnostics that never block or lose the report,
every input error one line naming the file (exit 2, no traceback), DTB
text escaped in every human format.  Most run `python -m auditor.cli` in a
subprocess, with a private cache, as a user would."""
import json
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.cli import main
from corpora import private_cache, snippet_corpus
from minikernel import VENDOR_DIR, make_minikernel
from testpaths import GOLDEN, ROOT

# What a DTB forged: a raw newline or escape byte in human output.
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def cli(*argv, cache, stderr=subprocess.PIPE, preexec_fn=None, timeout=300):
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), PYTHONPATH=str(ROOT))
    env.pop("DTB_AUDIT_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "auditor.cli", *map(str, argv)], cwd=ROOT,
                          env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=stderr, preexec_fn=preexec_fn, timeout=timeout, text=True)


def one_line(text):
    """The text's only line (and that it is one, and no traceback)."""
    assert "Traceback" not in text
    lines = text.split("\n")
    assert len(lines) == 2 and lines[1] == "", text
    return lines[0]


@pytest.fixture(scope="module")
def snippets(tmp_path_factory):
    return snippet_corpus(tmp_path_factory.mktemp("cli") / "dtbs")


@pytest.fixture
def cache(tmp_path):
    return private_cache(tmp_path / "cache")


@pytest.fixture
def clean(tmp_path, snippets):
    """Two affected boards that parse, with no diagnostic."""
    folder = tmp_path / "clean"
    folder.mkdir()
    for name in ("plat-evk.dtb", "pci-rdb.dtb"):
        shutil.copy(snippets / name, folder / name)
    return folder


# -- stdout carries only machine output ----------------------------------------------

@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "sarif"])
def test_diagnostics_never_on_stdout(snippets, cache, fmt):
    proc = cli("sweep", snippets, "--format", fmt, cache=cache)
    assert proc.returncode == 0
    if fmt == "json":
        assert len(json.loads(proc.stdout)["links"]) == 14
    elif fmt == "jsonl":
        assert len([json.loads(line) for line in proc.stdout.splitlines()]) == 14
    elif fmt == "csv":
        assert proc.stdout.startswith("dtb,board,soc,")
        assert "points nowhere" not in proc.stdout and "broken.dtb" not in proc.stdout
    else:
        assert json.loads(proc.stdout)["version"] == "2.1.0"
    assert proc.stderr.splitlines()[:2] == [
        "diag-evk.dtb: warning: /soc/dma@1000: iommus: phandle 0x999 points nowhere",
        "broken.dtb: error: file too short for an FDT header (at offset 25)"]


def test_source_position_warnings_go_to_stderr(tmp_path, cache):
    """A tree changed since the build (its .dtsi no longer compiles): the
    sweep reports without lines and says so on stderr, never on stdout."""
    tree = make_minikernel(tmp_path / "linux")
    dtbs = tmp_path / "dtbs"
    assert cli("corpus", "build", "--kernel", tree, "--out", dtbs, cache=cache).returncode == 0
    dtsi = Path(tree, VENDOR_DIR, "a100.dtsi")
    dtsi.write_text(dtsi.read_text() + "\nthis is not DTS {\n")
    proc = cli("sweep", dtbs, "--format", "json", cache=cache)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    (a100,) = [p for s in doc["socs"] if s["soc"] == "acme,a100" for p in s["providers"]]
    assert (a100["source_file"], a100["source_line"]) == (None, None)
    warnings = [l for l in proc.stderr.splitlines() if "no source positions" in l]
    assert [w.split(": ")[0:2] for w in warnings] == [["acme/a100-evk.dtb", "warning"]]


# -- a reader of stderr that goes away ----------------------------------------------

def test_stderr_reader_gone_still_writes_the_report_and_the_status(snippets, cache, tmp_path):
    """`2>&1 | head -1` made certain: stderr's reader is gone before the first line."""
    report = tmp_path / "report.json"
    read, write = os.pipe()
    os.close(read)
    try:
        proc = cli("sweep", snippets, "--format", "json", "-o", report, "--fail-on-affected",
                   cache=cache, stderr=write)
    finally:
        os.close(write)
    assert proc.returncode == 1
    assert proc.stdout == ""
    doc = json.loads(report.read_text())
    assert len(doc["links"]) == 14 and len(doc["diagnostics"]) == 2


def test_head_of_stderr_in_a_shell_pipeline(snippets, cache, tmp_path):
    report = tmp_path / "report.json"
    script = (f"{sys.executable} -m auditor.cli sweep {snippets} --format json -o {report} "
              "--fail-on-affected 2>&1 | head -1; exit ${PIPESTATUS[0]}")
    proc = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, XDG_CACHE_HOME=str(cache), PYTHONPATH=str(ROOT)),
                          timeout=300)
    assert proc.returncode == 1
    assert proc.stdout == "diag-evk.dtb: warning: /soc/dma@1000: iommus: phandle 0x999 points nowhere\n"
    assert len(json.loads(report.read_text())["links"]) == 14


# -- -o where a report cannot go --------------------------------------------------------

@pytest.mark.parametrize("where", ["missing-folder", "folder", "full-device"])
def test_output_that_cannot_be_written(clean, cache, tmp_path, where):
    target = {"missing-folder": tmp_path / "nowhere" / "r.json", "folder": tmp_path,
              "full-device": tmp_path / "full"}[where]
    if where == "full-device":
        # A private /dev/full: a broken write_report must never replace the machine's.
        try:
            os.mknod(target, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        except PermissionError:
            pytest.skip("making a device node needs root")
    proc = cli("sweep", clean, "--format", "json", "-o", target, cache=cache)
    assert proc.returncode == 2
    why = {"missing-folder": f"no folder {tmp_path / 'nowhere'}", "folder": "it is a folder",
           "full-device": os.strerror(28)}[where]
    assert one_line(proc.stderr) == f"{target}: error: cannot write the report: {why}"
    assert proc.stdout == ""


def test_a_failed_write_leaves_the_old_report(clean, cache, tmp_path):
    """A disk that fills up mid-write (here: a file size limit) leaves the
    previous report whole, for the next `diff` to read."""
    report = tmp_path / "report.json"
    assert cli("sweep", clean, "--format", "json", "-o", report, cache=cache).returncode == 0
    before = report.read_bytes()
    assert len(before) > 4096

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    proc = cli("sweep", clean, "--format", "json", "-o", report, cache=cache,
               preexec_fn=small_files)
    assert proc.returncode == 2
    assert one_line(proc.stderr) == f"{report}: error: cannot write the report: File too large"
    assert report.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["cache", "clean", "report.json"]


# -- saved documents that are not sweeps ------------------------------------------------------

def _bad_documents(folder):
    """{kind: (path, the one line expected)} of files that are not saved sweeps."""
    sweep = json.loads((GOLDEN / "snippets/sweep.json").read_text())
    wrong_verdict = json.loads(json.dumps(sweep))
    wrong_verdict["links"][3]["verdict"] = 7
    wrong_boards = json.loads(json.dumps(sweep))
    wrong_boards["socs"][1]["boards"] = "mc-rdb.dtb"
    texts = {
        "list": ("[1, 2]", "not a dtb-audit sweep (the JSON is a list, not an object)"),
        "null": ("null", "not a dtb-audit sweep (the JSON is null, not an object)"),
        "diff": ((GOLDEN / "snippets/diff.json").read_text(),
                 "a dtb-audit diff document, not a sweep (write one with "
                 "`dtb-audit sweep --format json`)"),
        "truncated": ((GOLDEN / "snippets/sweep.json").read_text()[:5000],
                      "not a saved sweep (not JSON: "),
        "verdict": (json.dumps(wrong_verdict), "not a valid sweep: links[3].verdict is not one "
                    "of capable, rescued-by-device, broken, broken-bridge-coherent, no-iommu, "
                    "unsupported-iommu, not-a-device"),
        "boards": (json.dumps(wrong_boards), "not a valid sweep: socs[1].boards is not a list"),
        "schema": (json.dumps(dict(sweep, schema=99)),
                   "sweep schema 99 is not one this version reads (1 or 2): sweep again"),
    }
    out = {}
    for kind, (text, message) in texts.items():
        path = folder / f"{kind}.json"
        path.write_text(text)
        out[kind] = (path, f"{path}: error: {message}")
    return out


BAD = ["list", "null", "diff", "truncated", "verdict", "boards", "schema"]


@pytest.mark.parametrize("kind", BAD)
@pytest.mark.parametrize("command", ["diff", "history", "patch"])
def test_saved_documents_that_are_not_sweeps(tmp_path, capsys, command, kind):
    path, expected = _bad_documents(tmp_path)[kind]
    good = GOLDEN / "snippets/sweep.json"
    argv = {"diff": ["diff", good, path], "history": ["history", path],
            "patch": ["patch", "--sweep", path, "-o", tmp_path / "series"]}[command]
    assert main([str(a) for a in argv]) == 2
    out, err = capsys.readouterr()
    line = one_line(err)
    assert line.startswith(expected) if kind == "truncated" else line == expected
    assert out == "" and not (tmp_path / "series").exists()


def test_history_goes_on_past_a_document_that_is_not_a_sweep(tmp_path, capsys):
    path, expected = _bad_documents(tmp_path)["list"]
    assert main(["history", str(GOLDEN / "snippets/sweep.json"), str(path)]) == 1
    out, err = capsys.readouterr()
    assert one_line(err) == expected
    assert out.startswith("SoC ")


# -- explain --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["missing.dtb", "no/such/board"])
def test_explain_of_a_missing_path_builds_nothing(tmp_path, cache, name):
    proc = cli("explain", tmp_path / name, cache=cache, timeout=60)
    assert proc.returncode == 2
    assert one_line(proc.stderr) == f"{tmp_path / name}: error: no such file"
    assert os.listdir(cache / "dtb-audit") == ["numba"]


# -- DTBs that do not parse -------------------------------------------------------------------

def test_a_dtb_that_does_not_parse_is_named_once(snippets, cache):
    proc = cli("sweep", snippets, "--format", "jsonl", cache=cache)
    assert proc.returncode == 0
    assert [l for l in proc.stderr.splitlines() if "broken.dtb" in l] == [
        "broken.dtb: error: file too short for an FDT header (at offset 25)"]


def test_the_sweep_fails_when_every_input_failed(tmp_path, snippets, cache):
    folder = tmp_path / "bad"
    folder.mkdir()
    shutil.copy(snippets / "broken.dtb", folder)
    (folder / "empty.dtb").write_bytes(b"")
    proc = cli("sweep", folder, "--format", "json", cache=cache)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "broken.dtb: error: file too short for an FDT header (at offset 25)",
        "empty.dtb: error: empty file, not a DTB (at offset 0)",
        f"DTBs in {folder}: target 7.2 (assumed: the newest modelled; give --target-kernel): "
        "rule walk-or-device: 0 links on 0 boards of 0 SoCs; 0 SoCs affected "
        "(0 with PCI/fsl-mc passthrough broken)",
        f"dtb-audit: error: no DTB of DTBs in {folder} could be read"]


def test_one_folder_twice_is_one_corpus(snippets, capsys):
    assert main(["sweep", str(snippets), "--format", "json"]) == 0
    once = json.loads(capsys.readouterr().out)
    assert main(["sweep", str(snippets), str(snippets), "--format", "json"]) == 0
    twice = json.loads(capsys.readouterr().out)
    assert twice == once
    assert [s["soc"] for s in twice["socs"]].count("acme,plat") == 1


# -- text from a DTB, escaped --------------------------------------------------------------------

EVIL_SOC = "evil\\x0asoc\\x1b[31m"
EVIL_SMMU = "/soc/iommu-\\x0a\\x1b[m@5000000"


@pytest.mark.parametrize("fmt", ["table", "md", "gcc"])
def test_dtb_text_escaped_in_human_formats(snippets, capsys, fmt):
    assert main(["sweep", str(snippets), "--format", fmt]) == 0
    out, err = capsys.readouterr()
    assert not CONTROL.search(out) and not CONTROL.search(err)
    lines = [l for l in out.splitlines() if "evil\\" in l]
    assert lines and all(EVIL_SOC in line for line in lines)
    lines = [l for l in out.splitlines() if "iommu-" in l]
    assert lines and all(EVIL_SMMU in line for line in lines)


def test_dtb_text_escaped_in_explain(snippets, capsys):
    assert main(["explain", str(snippets / "evil-evk.dtb")]) == 0
    out, _ = capsys.readouterr()
    assert not CONTROL.search(out)
    assert out.splitlines()[0].startswith(
        f"evil-evk.dtb: board evil,board\\x0a\\x1b[2J, SoC {EVIL_SOC}, ")
    # its provider line, its two links, and its evidence class
    assert len([l for l in out.splitlines() if EVIL_SMMU in l]) == 4


def test_dtb_text_escaped_in_diff_and_history(tmp_path, snippets, capsys):
    before = tmp_path / "before"
    shutil.copytree(snippets, before)
    (before / "evil-evk.dtb").unlink()
    for name, folder in (("old", before), ("new", snippets)):
        assert main(["sweep", str(folder), "--format", "json",
                     "-o", str(tmp_path / f"{name}.json")]) == 0
    capsys.readouterr()
    assert main(["diff", str(tmp_path / "old.json"), str(tmp_path / "new.json")]) == 0
    out, _ = capsys.readouterr()
    assert not CONTROL.search(out)
    assert f"  {EVIL_SOC}: 1 of 1 boards (new SoC)\n" in out
    assert f"  evil-evk.dtb: /soc/dma@1000 (platform) -> {EVIL_SMMU}: new link -> broken\n" in out
    assert main(["history", str(tmp_path / "old.json"), str(tmp_path / "new.json")]) == 0
    out, _ = capsys.readouterr()
    assert not CONTROL.search(out)
    (row,) = [l for l in out.splitlines() if l.startswith("evil")]
    assert row.split() == [EVIL_SOC, "-", "affected", "non-coherent", "throughout"]


# -- history: the arguments of each way -------------------------------------------------------

def _fake_judge_git(monkeypatch):
    """Replace the history's run on Dask with a recorder that takes exactly
    what the real one takes (a keyword it does not know is a TypeError, as
    it would be) and judged no revision."""
    import inspect

    from auditor.documents import GitSource, History
    from auditor.history import cluster
    real = inspect.signature(cluster.judge_git)
    calls = []

    def fake(*args, **kwargs):
        real.bind(*args, **kwargs)
        calls.append((args, kwargs))
        history = History((), (), GitSource(args[0], "kernel", None, True), ())
        return cluster.GitRun(history, None, [], [])

    monkeypatch.setattr(cluster, "judge_git", fake)
    return calls


def test_history_git_hands_every_option_over(monkeypatch, tmp_path):
    from kernels.judging import Judging, Rule
    from kernels.target import TargetKernel
    calls = _fake_judge_git(monkeypatch)
    assert main(["history", "--git", "linux", "v6.1..v6.12", "v6.12..v6.13", "--all-commits",
                 "--scheduler", "tcp://h:8786", "--plot", str(tmp_path / "p.svg"),
                 "--mails", str(tmp_path / "mails"), "--format", "json", "--fail-on-new",
                 "-o", str(tmp_path / "h.json"), "-j", "3", "--target-kernel", "6.1.192",
                 "--rule", "walk-only", "--no-legacy-dt-bindings"]) == 0
    assert calls == [(("linux", ["v6.1..v6.12", "v6.12..v6.13"],
                       Judging(TargetKernel.parse("6.1.192"), Rule.WALK_ONLY, False)),
                      dict(all_commits=True, scheduler="tcp://h:8786", jobs=3))]
    assert json.loads((tmp_path / "h.json").read_text())["repo"] == "linux"
    assert (tmp_path / "p.svg").read_text().lstrip().startswith("<?xml")
    assert list((tmp_path / "mails").iterdir()) == []


def test_history_git_defaults(monkeypatch, capsys):
    from kernels.judging import Judging
    calls = _fake_judge_git(monkeypatch)
    assert main(["history", "--git", "linux"]) == 0
    assert calls == [(("linux", [], Judging()),
                      dict(all_commits=False, scheduler=None, jobs=None))]
    assert capsys.readouterr().out == "dtb-audit history: linux: 0 revisions, 0 SoCs changed\n\n"


@pytest.mark.parametrize("option", [["--all-commits"], ["--scheduler", "tcp://h:1"],
                                    ["--plot", "p.svg"], ["--mails", "m"]])
def test_history_git_options_need_git(capsys, option):
    assert main(["history", str(GOLDEN / "snippets/sweep.json"), *option]) == 2
    out, err = capsys.readouterr()
    assert (out, one_line(err)) == ("", f"dtb-audit: error: {option[0]} needs --git REPO")


def test_history_needs_something(capsys):
    assert main(["history"]) == 2
    assert one_line(capsys.readouterr().err) == \
        "dtb-audit: error: history: give saved sweeps or corpora, oldest first (or --git REPO)"


def test_history_of_saved_sweeps_fail_on_new_and_names(capsys, tmp_path):
    snippets, mini = GOLDEN / "snippets/sweep.json", GOLDEN / "minikernel/sweep.json"
    assert main(["history", str(snippets), str(mini), "--fail-on-new"]) == 1
    assert main(["history", str(snippets), str(mini)]) == 0
    capsys.readouterr()
    # The same sweep twice: no SoC is new at the end, and the columns are
    # named by the files given (the sweeps' own names are the same).
    again = tmp_path / "again.json"
    shutil.copy(snippets, again)
    assert main(["history", str(snippets), str(again), "--fail-on-new", "--format", "json"]) == 0
    h = json.loads(capsys.readouterr().out)
    assert h["versions"] == [str(snippets), str(again)]
    # --changed: only the SoCs whose verdict or SMMU changed (here none).
    assert main(["history", str(snippets), str(again)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + 6
    assert main(["history", str(snippets), str(again), "--changed"]) == 0
    (header,) = capsys.readouterr().out.splitlines()
    assert header.split() == ["SoC", str(snippets), str(again), "SMMU"]


def test_history_warns_of_each_change_of_rule_and_compares_the_last_with_the_first(
        capsys, tmp_path):
    snippets, mini = GOLDEN / "snippets/sweep.json", GOLDEN / "minikernel/sweep.json"
    doc = json.loads(mini.read_text())
    doc["legacy_dt_bindings"] = False
    mini_bare = tmp_path / "mini-bare.json"
    mini_bare.write_text(json.dumps(doc))
    # snippets (7.2) -> mini (6.1.192): another kernel, no warning; mini -> the same
    # under the bare bindings, and back: a warning each. The last is the first again.
    assert main(["history", str(snippets), str(mini), str(mini_bare), str(snippets),
                 "--fail-on-new", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert err == (
        "dtb-audit: warning: the sweeps use different rules (walk-or-device, legacy True -> "
        "walk-or-device, legacy False): changes may come from the rule, not the trees\n"
        "dtb-audit: warning: the sweeps use different rules (walk-or-device, legacy False -> "
        "walk-or-device, legacy True): changes may come from the rule, not the trees\n")
    assert json.loads(out)["versions"] == [str(snippets), str(mini), str(mini_bare),
                                           str(snippets)]


def test_history_of_a_corpus_folder_and_a_saved_sweep(clean, capsys):
    assert main(["history", str(clean), str(GOLDEN / "snippets/sweep.json"), "--format",
                 "json"]) == 0
    h = json.loads(capsys.readouterr().out)
    assert len(h["versions"]) == 2 and h["versions"][1] != h["versions"][0]


# -- explain, in this process -----------------------------------------------------------------

def test_explain_a_board_of_a_corpus_by_name(snippets, capsys):
    assert main(["explain", "plat-evk", "--dtbs", str(snippets)]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out == (GOLDEN / "snippets/explain.plat-evk").read_text()


@pytest.mark.parametrize("given", ["acme/plat-evk.dtb", "acme/plat-evk"])
def test_explain_a_board_of_a_corpus_by_its_path_in_it(tmp_path, snippets, capsys, monkeypatch,
                                                       given):
    """A DTB path inside the corpus given (not a file where the command runs)."""
    nested = tmp_path / "nested"
    shutil.copytree(snippets, nested / "acme")
    monkeypatch.chdir(tmp_path)
    assert main(["explain", given, "--dtbs", str(nested)]) == 0
    out, err = capsys.readouterr()
    expected = (GOLDEN / "snippets/explain.plat-evk").read_text()
    assert err == "" and out == expected.replace("plat-evk.dtb", "acme/plat-evk.dtb")


def test_explain_a_name_that_is_no_board(snippets, capsys):
    assert main(["explain", "nope", "--dtbs", str(snippets)]) == 2
    assert one_line(capsys.readouterr().err) == f"nope: error: no such board in {snippets}"


@pytest.mark.parametrize("name", ["missing.dtb", "missing.dtbo", "no/such/board"])
def test_explain_of_a_missing_path_says_so_first(tmp_path, capsys, monkeypatch, name):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert main(["explain", name]) == 2
    assert one_line(capsys.readouterr().err) == f"{name}: error: no such file"
    assert not (tmp_path / "cache").exists()


def test_explain_a_dtb_that_does_not_parse(snippets, capsys):
    assert main(["explain", str(snippets / "broken.dtb")]) == 2
    assert one_line(capsys.readouterr().err) == \
        f"{snippets / 'broken.dtb'}: error: file too short for an FDT header (at offset 25)"


def test_explain_under_another_target_and_rule(snippets, capsys):
    board = str(snippets / "plat-evk.dtb")
    assert main(["explain", board, "--target-kernel", "6.1.0"]) == 0
    out = capsys.readouterr().out
    assert out.split("\n")[0].endswith(", target 6.1.0, rule walk-only")
    assert "  /soc/crypto@2000 (platform) via iommus -> /soc/iommu@5000000: BROKEN\n" in out
    assert main(["explain", board, "--rule", "legacy-true"]) == 0
    out = capsys.readouterr().out
    assert out.split("\n")[0].endswith(", target 7.2 (assumed: the newest modelled; give "
                                       "--target-kernel), rule legacy-true")
    assert "  /soc/dma@1000 (platform) via iommus -> /soc/iommu@5000000: CAPABLE\n" in out


def test_explain_without_legacy_bindings(tmp_path, capsys):
    from snippets import compile_dts, smmu, soc
    legacy = smmu(extra="mmu-masters = <&ldev 0x1>;")
    dtb = compile_dts(tmp_path, "legacy", soc(legacy, "\t\tldev: ldev@2 { compatible = "
                                                      "\"test,dev\"; #stream-id-cells = <1>; };\n"))
    assert main(["explain", str(dtb)]) == 0
    assert "  /soc/ldev@2 (platform) via mmu-masters -> /soc/iommu@5000000: BROKEN\n" in \
        capsys.readouterr().out
    assert main(["explain", str(dtb), "--no-legacy-dt-bindings"]) == 0
    out = capsys.readouterr().out
    assert ("  /soc/ldev@2 (platform) via mmu-masters -> /soc/iommu@5000000: NO-IOMMU\n"
            "    device:    enabled (status okay up to the root)\n"
            "    dma attr:  /soc/ldev@2 -> /soc -> / (past the root: not coherent)\n"
            "    note:      mmu-masters needs CONFIG_ARM_SMMU_LEGACY_DT_BINDINGS\n") in out


# -- the same faults, in this process (what mutation testing sees) ------------------------------

@pytest.mark.parametrize("where", ["missing-folder", "folder"])
def test_output_errors_in_process(clean, tmp_path, capsys, where):
    target = tmp_path / "nowhere" / "r.json" if where == "missing-folder" else tmp_path
    why = f"no folder {tmp_path / 'nowhere'}" if where == "missing-folder" else "it is a folder"
    assert main(["sweep", str(clean), "--format", "json", "-o", str(target)]) == 2
    out, err = capsys.readouterr()
    assert (out, one_line(err)) == ("", f"{target}: error: cannot write the report: {why}")


def test_report_then_diagnostics_then_summary(snippets, tmp_path, capsys):
    report = tmp_path / "r.csv"
    assert main(["sweep", str(snippets), "--format", "csv", "-o", str(report),
                 "--fail-on-affected"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and report.read_text().startswith("dtb,board,soc,")
    assert err.splitlines() == [
        "diag-evk.dtb: warning: /soc/dma@1000: iommus: phandle 0x999 points nowhere",
        "broken.dtb: error: file too short for an FDT header (at offset 25)",
        f"DTBs in {snippets}: target 7.2 (assumed: the newest modelled; give --target-kernel): "
        "rule walk-or-device: 14 links on 9 boards of 8 SoCs; 4 SoCs affected "
        "(2 with PCI/fsl-mc passthrough broken)"]
    # The table on stdout carries its own summary: stderr has the diagnostics only.
    assert main(["sweep", str(snippets), "--format", "table"]) == 0
    assert len(capsys.readouterr().err.splitlines()) == 2
    # ... but a table written to a file leaves the summary to stderr.
    assert main(["sweep", str(snippets), "--format", "table", "-o", str(report)]) == 0
    assert len(capsys.readouterr().err.splitlines()) == 3


def test_default_format_off_a_terminal_is_jsonl(clean, capsys):
    assert main(["sweep", str(clean)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and json.loads(lines[0])["dtb"] == "pci-rdb.dtb"


def test_every_input_failed_in_process(tmp_path, snippets, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    shutil.copy(snippets / "broken.dtb", folder)
    assert main(["sweep", str(folder), "--format", "jsonl"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1] == f"dtb-audit: error: no DTB of DTBs in {folder} could be read"


def test_sweep_paths_and_a_source_option_together(clean, capsys):
    assert main(["sweep", str(clean), "--dtbs", str(clean)]) == 2
    assert one_line(capsys.readouterr().err) == \
        "dtb-audit: error: give PATHs or one source option, not both"


def test_diff_reads_saved_sweeps_by_content_and_names_what_is_neither(tmp_path, capsys):
    saved = tmp_path / "tonight.sweep"
    shutil.copy(GOLDEN / "snippets/sweep.json", saved)
    assert main(["diff", str(saved), str(saved), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["regression"] is False
    for text, message in (("null", "not a dtb-audit sweep (the JSON is null, not an object)"),
                          ("[]", "not a dtb-audit sweep (the JSON is a list, not an object)")):
        other = tmp_path / "other.out"
        other.write_text("  " + text)
        assert main(["diff", str(saved), str(other)]) == 2
        assert one_line(capsys.readouterr().err) == f"{other}: error: {message}"
    assert main(["diff", str(saved), "nonsense"]) == 2
    assert one_line(capsys.readouterr().err) == ("nonsense: error: no such file or folder, and "
                                                 "not a Debian [suite/]linux-source-X package name")


def test_diff_to_a_file_and_fail_on_new(tmp_path, capsys):
    snippets, mini = GOLDEN / "snippets/sweep.json", GOLDEN / "minikernel/sweep.json"
    out = tmp_path / "d.txt"
    assert main(["diff", str(snippets), str(mini), "-o", str(out), "--fail-on-new"]) == 1
    assert capsys.readouterr() == ("", "")
    assert out.read_text().startswith("dtb-audit diff: DTBs in ")
    assert main(["diff", str(mini), str(mini), "--fail-on-new"]) == 0


# -- patch and corpus build: what reaches the modules ------------------------------------------

@pytest.fixture
def patch_calls(monkeypatch):
    """auditor.patch.run replaced by a recorder that takes what the real one takes."""
    import inspect

    from auditor import patch as patches
    real = inspect.signature(patches.run)
    calls = []

    def fake(*args, **kwargs):
        real.bind(*args, **kwargs)
        calls.append(real.bind(*args, **kwargs).arguments)
        return 5

    monkeypatch.setattr(patches, "run", fake)
    return calls


def test_patch_hands_every_option_over(tmp_path, isolated_cache, patch_calls):
    tree = make_minikernel(tmp_path / "linux", git=True)
    assert main(["patch", "--kernel", str(tree), "-o", str(tmp_path / "series"), "--verify",
                 "--from", "A U Thor <a@example.com>", "-s", "-j", "1",
                 "--target-kernel", "6.1.0"]) == 5
    (call,) = patch_calls
    assert (call["kernel_dir"], call["out_dir"], call["verify"], call["author"], call["signoff"],
            call["jobs"]) == (tree, str(tmp_path / "series"), True, "A U Thor <a@example.com>",
                              True, 1)
    assert (str(call["sweep"].target_kernel), call["sweep"].rule.value) == ("6.1.0", "walk-only")
    assert call["dependencies"]["acme/a300-lite.dtb"] == (
        f"{VENDOR_DIR}/a300-lite.dts", f"{VENDOR_DIR}/a300.dtsi",
        "include/dt-bindings/interrupt-controller/arm-gic.h")
    # A git checkout: Fixes: names the commit that wrote the line.
    (sha, subject) = call["fixes"](f"{VENDOR_DIR}/a100.dtsi", 27)
    head = subprocess.run(["git", "-C", tree, "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert (sha[:12], subject) == (head[:12], "mini kernel")


def test_patch_defaults_and_a_tree_that_is_no_checkout(tmp_path, isolated_cache, patch_calls):
    tree = make_minikernel(tmp_path / "linux")
    assert main(["patch", "--kernel", str(tree), "-o", str(tmp_path / "series")]) == 5
    (call,) = patch_calls
    assert (call["verify"], call["author"], call["signoff"], call["fixes"], call["jobs"]) == \
        (False, None, False, None, None)
    assert str(call["sweep"].target_kernel) == "6.1.192"


def test_patch_from_a_saved_sweep(tmp_path, isolated_cache, patch_calls, capsys):
    tree = make_minikernel(tmp_path / "linux")
    saved = tmp_path / "sweep.json"
    assert main(["sweep", "--kernel", str(tree), "--format", "json", "-o", str(saved)]) == 0
    assert main(["patch", "--sweep", str(saved), "-o", str(tmp_path / "s")]) == 5
    (call,) = patch_calls
    assert call["kernel_dir"] == tree
    assert sorted(call["dependencies"]) == [f"acme/{b}.dtb" for b in (
        "a100-evk", "a100-mini", "a200-rdb", "a300-evk", "a300-lite", "a400-evk")]
    # The corpus folder gone: the series is made without the manifest's dependencies.
    doc = json.loads(saved.read_text())
    doc["corpus"]["root"] = str(tmp_path / "gone")
    saved.write_text(json.dumps(doc))
    assert main(["patch", "--sweep", str(saved), "-o", str(tmp_path / "s")]) == 5
    assert patch_calls[1]["dependencies"] is None
    # The kernel tree gone: one line, and --kernel is the way out.
    doc["corpus"]["kernel_dir"] = str(tmp_path / "nowhere")
    saved.write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(["patch", "--sweep", str(saved), "-o", str(tmp_path / "s")]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"{saved}: error: the sweep names no kernel tree that is here: give --kernel DIR")
    assert main(["patch", "--sweep", str(saved), "--kernel", str(tree),
                 "-o", str(tmp_path / "s")]) == 5
    assert patch_calls[2]["kernel_dir"] == str(tree)


def test_corpus_build_hands_jobs_over(tmp_path, isolated_cache, monkeypatch, capsys):
    import corpus.build
    real, seen = corpus.build.build_corpus, []
    monkeypatch.setattr(corpus.build, "build_corpus",
                        lambda **kw: (seen.append(kw), real(**kw))[1])
    tree = make_minikernel(tmp_path / "linux")
    assert main(["corpus", "build", "--kernel", str(tree), "-j", "1",
                 "--out", str(tmp_path / "dtbs")]) == 0
    assert seen == [dict(kernel=str(tree), tarball=None, debian=None, dtbs=None, jobs=1,
                         out=str(tmp_path / "dtbs"), select=None)]
    assert capsys.readouterr().out == f"{tmp_path / 'dtbs'}\n"


def test_corpus_build_counts_what_it_built_and_fails_for_a_board(tmp_path, isolated_cache,
                                                                capsys):
    tree = make_minikernel(tmp_path / "linux")
    summary = (rf"dtb-audit: linux-6\.1\.192 \({re.escape(str(tree))}\): (\d+) boards, 0 overlays, "
               rf"0 composites: built (\d+), failed (\d+), reused (\d+) in (\d+\.\d) s\n")
    assert main(["corpus", "build", "--kernel", str(tree), "--out", str(tmp_path / "two"),
                 "--select", "acme/a100-*"]) == 0
    out, err = capsys.readouterr()
    assert out == f"{tmp_path / 'two'}\n"
    found = re.fullmatch(summary, err)
    assert found and found.groups()[:4] == ("2", "2", "0", "0") and float(found[5]) < 60
    with open(os.path.join(tree, VENDOR_DIR, "a200-rdb.dts"), "a") as f:
        f.write("this is not DTS\n")
    assert main(["corpus", "build", "--kernel", str(tree), "--out", str(tmp_path / "all")]) == 1
    found = re.fullmatch(summary, capsys.readouterr().err.splitlines(keepends=True)[-1])
    assert found and found.groups()[:4] == ("6", "5", "1", "0")


@pytest.mark.parametrize("argv, message", [
    (["corpus", "build", "-j", "x"], "dtb-audit corpus build: error: argument -j/--jobs: "
                                     "'x' is not a number"),
    (["corpus", "build", "-j", "0"], "dtb-audit corpus build: error: argument -j/--jobs: "
                                     "must be at least 1"),
    # --target-kernel: tests/test_target_cli.py (one line, without the usage).
])
def test_option_values_refused_in_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == message


def test_explain_a_dtb_of_a_built_corpus_judges_as_its_kernel(tmp_path, isolated_cache,
                                                              capsys):
    """A DTB file of a corpus folder is judged as the corpus's kernel (6.1.192
    here, not the default target) and nothing is kept in the cache for it."""
    tree = make_minikernel(tmp_path / "linux")
    assert main(["corpus", "build", "--kernel", str(tree), "--out", str(tmp_path / "d")]) == 0
    capsys.readouterr()
    flat_cache = isolated_cache / "flat"
    before = sorted(flat_cache.iterdir()) if flat_cache.exists() else []
    assert main(["explain", str(tmp_path / "d" / "acme" / "a100-evk.dtb")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "a100-evk.dtb: board acme,a100-evk, SoC acme,a100, target 6.1.192, rule walk-or-device")
    assert (sorted(flat_cache.iterdir()) if flat_cache.exists() else []) == before


def test_explain_says_a_disabled_root_disables_nothing(tmp_path, capsys):
    from snippets import compile_dts, device, smmu, soc
    root_disabled = '\tstatus = "disabled";\n' + soc(smmu(), device("dev@1", ""))
    dtb = compile_dts(tmp_path, "root-off", root_disabled)
    assert main(["explain", str(dtb)]) == 0
    out = capsys.readouterr().out
    assert out.count("available: enabled (status okay up to the root)") == 1
    assert out.count("device:    enabled (status okay up to the root)") == 1


# -- check-parser ------------------------------------------------------------------------------

def test_check_parser_compares_every_dtb_with_pyfdt(clean, capsys):
    from corpus.flat import flatten
    flat = flatten(sorted(clean.glob("*.dtb")), clean, cache=False)
    assert main(["check-parser", "--dtbs", str(clean)]) == 0
    assert capsys.readouterr() == (
        f"DTBs in {clean}: 2 DTBs, {flat.node_dtb.size} nodes, {flat.prop_node.size} "
        f"properties compared with pyfdt: 0 mismatches\n", "")


def test_check_parser_names_a_dtb_pyfdt_cannot_read(snippets, capsys):
    # evil-evk's node names carry control bytes: pyfdt refuses them, the parser reads them
    assert main(["check-parser", "--dtbs", str(snippets)]) == 1
    out, err = capsys.readouterr()
    assert out.endswith(" properties compared with pyfdt: 1 mismatches\n")
    assert err.startswith(f"{snippets / 'evil-evk.dtb'}: error: mismatch with pyfdt: pyfdt "
                          f"cannot read it (") and err.count("\n") == 1


def test_check_parser_reports_each_mismatch_on_every_core(clean, capsys, monkeypatch):
    import corpus.pyfdt_check
    asked = []

    def two_mismatches(flat, jobs):
        asked.append((flat.n_dtb, jobs))
        return ["a.dtb: error: mismatch with pyfdt: x", "b.dtb: error: mismatch with pyfdt: y"]

    monkeypatch.setattr(corpus.pyfdt_check, "check", two_mismatches)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert main(["check-parser", "--dtbs", str(clean)]) == 1
    out, err = capsys.readouterr()
    assert out.endswith(" properties compared with pyfdt: 2 mismatches\n")
    assert err == "a.dtb: error: mismatch with pyfdt: x\nb.dtb: error: mismatch with pyfdt: y\n"
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert main(["check-parser", "--dtbs", str(clean)]) == 1
    assert asked == [(2, 3), (2, 1)]
