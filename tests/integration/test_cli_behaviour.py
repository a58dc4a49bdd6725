"""The CLI's behaviour as a user sees it (stdout, stderr lines, exit status,
files written), where the other tests leave it open: which argument of
`diff` and `history` is a saved sweep and which a corpus, what reaches the
corpus builder, where -o puts JSON, what reaches the top of `main`, the
collector and the default format of `sweep`, `--partial`, the legacy
binding; and the diff document on edge cases (link keys holding None,
labels on one side only, each kind of newly affected thing alone, when two
sweeps' rules are worth a warning).  All in process, on the golden snippet
sweep and Sweeps derived from it, snippet DTBs and a mini kernel; nothing
is downloaded (a Debian package name reaches a recorder)."""
import dataclasses
import json
import os
import sys

import pytest

from auditor.cli import main
from auditor.diff import diff_sweeps as diff_of, rule_mismatch
from auditor.history.stitching import of_sweeps
from kernels.codes import Rule
from kernels.target import TargetKernel


def diff_sweeps(old, new):
    return diff_of(old, new).to_json()
from auditor.model import load_sweep
from corpus.errors import UserError
from testpaths import GOLDEN

SAVED = GOLDEN / "snippets/sweep.json"
NEITHER = "not a .dtb, a folder of DTBs, a kernel tree or a tarball"


@pytest.fixture(scope="module")
def saved():
    return load_sweep(SAVED)


def _soc(sweep, name):
    (s,) = [s for s in sweep.socs if s.soc == name]
    return s


def _link(sweep, dtb, master_path):
    (link,) = [l for l in sweep.links if l.dtb == dtb and l.master_path == master_path]
    return link


def _err_lines(capsys):
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return out, err.splitlines()


# -- which argument is a saved sweep ---------------------------------------------------

def test_a_json_name_is_read_as_a_saved_sweep_whatever_it_holds(tmp_path, capsys):
    """Named .json: load_sweep says what is wrong with it, not the corpus reader."""
    bad = tmp_path / "tonight.json"
    bad.write_text("garbage")
    assert main(["diff", str(SAVED), str(bad)]) == 2
    assert _err_lines(capsys)[1] == [
        f"{bad}: error: not a saved sweep (not JSON: Expecting value: line 1 column 1 (char 0))"]


def test_a_folder_named_json_is_a_corpus(tmp_path, capsys):
    folder = tmp_path / "dtbs.json"
    folder.mkdir()
    assert main(["diff", str(SAVED), str(folder)]) == 2
    assert _err_lines(capsys)[1] == [f"{folder}: error: no .dtb files in this folder"]


@pytest.mark.parametrize("blanks, sweep", [(0, True), (63, True), (64, False)])
def test_content_sniffed_in_the_first_64_bytes(tmp_path, capsys, blanks, sweep):
    """Without the .json suffix a file is a saved sweep when its first 64
    bytes, blanks left out, start a JSON value."""
    other = tmp_path / "tonight.sweep"
    other.write_text(" " * blanks + SAVED.read_text())
    status = main(["diff", str(SAVED), str(other), "--format", "json"])
    out, err = _err_lines(capsys)
    if sweep:
        assert (status, err, json.loads(out)["regression"]) == (0, [], False)
    else:
        assert (status, out, err) == (2, "", [f"{other}: error: {NEITHER}"])


@pytest.mark.skipif(not os.path.isfile("/proc/self/mem"), reason="needs Linux's /proc")
def test_a_file_that_cannot_be_read_is_not_taken_for_a_sweep(capsys):
    """/proc/self/mem opens but cannot be read at 0 (EIO), even for root:
    not known to be JSON, so it is handed to the corpus reader."""
    assert main(["diff", str(SAVED), "/proc/self/mem"]) == 2
    assert _err_lines(capsys)[1] == [f"/proc/self/mem: error: {NEITHER}"]


# -- a Debian package name goes to the corpus builder ------------------------------------

def test_debian_package_names_reach_build_corpus_with_jobs(monkeypatch, capsys):
    """No network: the builder is replaced by a recorder that fails the way
    the real one does, with and without the argument in its message."""
    import corpus.build
    seen = []

    def refuse(**kw):
        seen.append(kw)
        if kw["debian"].startswith("sid/"):
            raise UserError(kw['debian'], "not in the mirror")
        raise UserError(None, "apt-get download failed")

    monkeypatch.setattr(corpus.build, "build_corpus", refuse)
    assert main(["diff", "linux-source-6.1", "sid/linux-source-7.2", "-j", "3"]) == 2
    assert seen == [dict(debian="linux-source-6.1", jobs=3),
                    dict(debian="sid/linux-source-7.2", jobs=3)]
    out, err = _err_lines(capsys)
    assert (out, err) == ("", ["linux-source-6.1: error: apt-get download failed",
                               "sid/linux-source-7.2: error: not in the mirror"])
    seen.clear()
    assert main(["history", "linux-source-6.12", str(SAVED)]) == 1
    assert seen == [dict(debian="linux-source-6.12", jobs=None)]
    out, err = _err_lines(capsys)
    assert err == ["linux-source-6.12: error: apt-get download failed"]
    assert out.startswith("SoC ")


# -- -o FILE with --format json ------------------------------------------------------

@pytest.mark.parametrize("command, kind", [("diff", "diff"), ("history", "history")])
def test_json_to_a_file(tmp_path, capsys, command, kind):
    out = tmp_path / f"{command}.json"
    assert main([command, str(SAVED), str(SAVED), "--format", "json", "-o", str(out)]) == 0
    assert capsys.readouterr() == ("", "")
    text = out.read_text()
    assert text.endswith("}\n") and json.loads(text)["kind"] == kind


# -- the diff document -------------------------------------------------------------------

def test_link_keys_holding_none_sort_first(saved):
    """A link without a provider path (None) sorts before one with, in both
    newly affected and fixed; keys are never compared None against str."""
    dma = _link(saved, "plat-evk.dtb", "/soc/dma@1000")
    assert dma.affected
    keyless = dma._replace(provider_path=None)
    broken = dataclasses.replace(saved, links=(dma, keyless))
    fixed = dataclasses.replace(saved, links=tuple(l._replace(verdict="capable")
                                                   for l in (dma, keyless)))
    empty = dataclasses.replace(saved, links=())
    d = diff_sweeps(empty, broken)
    assert [l["provider_path"] for l in d["links"]["newly_affected"]] == [
        None, "/soc/iommu@5000000"]
    assert [l["old_verdict"] for l in d["links"]["newly_affected"]] == [None, None]
    d = diff_sweeps(broken, fixed)
    assert [(l["provider_path"], l["old_verdict"], l["new_verdict"])
            for l in d["links"]["fixed"]] == [(None, "broken", "capable"),
                                             ("/soc/iommu@5000000", "broken", "capable")]


def test_smmu_label_and_source_taken_from_either_side(saved):
    plat = _soc(saved, "acme,plat")
    (p,) = plat.providers
    bare = dataclasses.replace(p, label=None, source_file=None, source_line=None,
                               coherent=False)
    written = dataclasses.replace(p, label="smmu0", source_file="arch/arm64/x.dtsi",
                                  source_line=7, coherent=True)

    def change(before, after):
        def having(p):
            return dataclasses.replace(saved, socs=(dataclasses.replace(plat, providers=(p,)),))
        d = diff_sweeps(having(before), having(after))
        (row,) = d["smmu_coherency"]["added"] + d["smmu_coherency"]["removed"]
        return row["label"], row["source_file"], row["source_line"]

    assert change(bare, written) == ("smmu0", "arch/arm64/x.dtsi", 7)
    assert change(written, bare) == ("smmu0", "arch/arm64/x.dtsi", 7)


def test_each_kind_of_newly_affected_thing_alone_is_a_regression(saved):
    plat = _soc(saved, "acme,plat")
    one_board = dataclasses.replace(plat, affected_boards=("plat-evk.dtb",))
    quiet = dataclasses.replace(plat, affected=False)
    dma = _link(saved, "plat-evk.dtb", "/soc/dma@1000")
    others = tuple(s for s in saved.socs if s.soc != "acme,plat")

    def regression(old, new):
        d = diff_sweeps(old, new)
        counts = tuple(len(d[k]["newly_affected"]) for k in ("socs", "boards", "links"))
        return counts, d["regression"]

    def with_plat(soc, links=saved.links):
        return dataclasses.replace(saved, socs=others + (soc,), links=links)

    assert regression(saved, saved) == ((0, 0, 0), False)
    # A board only (its SoC already affected, no link new).
    assert regression(with_plat(one_board), saved) == ((0, 1, 0), True)
    # A SoC only (same boards, same links).
    assert regression(with_plat(quiet), saved) == ((1, 0, 0), True)
    # A link only.
    without = tuple(l for l in saved.links if l != dma)
    assert regression(with_plat(plat, without), saved) == ((0, 0, 1), True)


@pytest.mark.parametrize("old, new, warned", [
    (("walk-or-device", True, "6.12.0"), ("walk-or-device", True, "6.12.0"), False),
    (("walk-or-device", True, "6.12.0"), ("walk-or-device", True, "6.1.0"), False),
    # Each version judged by its own kernel: a change of rule is expected.
    (("walk-only", True, "6.1.0"), ("walk-or-device", True, "6.12.0"), False),
    # The same kernel judged by two rules, or the legacy binding changed.
    (("walk-only", True, "6.12.0"), ("walk-or-device", True, "6.12.0"), True),
    (("walk-or-device", True, "6.12.0"), ("walk-or-device", False, "6.12.0"), True),
    (("walk-or-device", False, "6.1.0"), ("walk-or-device", True, "6.12.0"), True),
    (("walk-only", False, "6.1.0"), ("walk-or-device", True, "6.12.0"), True),
])
def test_rule_mismatch(saved, old, new, warned):
    def judged(rule, legacy, target):
        return dataclasses.replace(saved, rule=Rule(rule), legacy_dt_bindings=legacy,
                                   target_kernel=TargetKernel.parse(target))
    expected = (f"the sweeps use different rules ({old[0]}, legacy {old[1]} -> {new[0]}, "
                f"legacy {new[1]}): changes may come from the rule, not the trees")
    assert rule_mismatch(judged(*old), judged(*new)) == (expected if warned else None)


def test_history_puts_a_nameless_soc_before_named_ones(saved):
    """Same changes, same verdicts: by name, no name first (even before
    names that sort before letters' lower case)."""
    plat = _soc(saved, "acme,plat")
    socs = tuple(dataclasses.replace(plat, soc=n) for n in ("Acme,x", None, "0acme"))
    h = of_sweeps([dataclasses.replace(saved, socs=socs)], ["one"]).to_json()
    assert [r["soc"] for r in h["socs"]] == [None, "0acme", "Acme,x"]


# -- what reaches the top: one line and an exit status ------------------------------------

def _failing_diff(monkeypatch, error):
    import auditor.diff

    def fail(old, new):
        raise error
    monkeypatch.setattr(auditor.diff, "diff_sweeps", fail)


@pytest.mark.parametrize("error, status, line", [
    (ValueError("bad value"), 70, "dtb-audit: internal error: ValueError: bad value (set "
                                  "DTB_AUDIT_DEBUG=1 for the traceback, and please report it)"),
    (MemoryError(), 2, "dtb-audit: error: out of memory"),
    (KeyboardInterrupt(), 130, "dtb-audit: interrupted"),
    (UserError(None, "the sky fell"), 2, "dtb-audit: error: the sky fell"),
    (UserError("x.dtb", "the sky fell"), 2, "x.dtb: error: the sky fell"),
])
def test_what_a_command_raises_becomes_one_line(monkeypatch, capsys, error, status, line):
    monkeypatch.delenv("DTB_AUDIT_DEBUG", raising=False)
    _failing_diff(monkeypatch, error)
    assert main(["diff", str(SAVED), str(SAVED)]) == status
    assert _err_lines(capsys) == ("", [line])


def test_a_reader_gone_from_stdout_is_no_failure(monkeypatch, capsys):
    _failing_diff(monkeypatch, BrokenPipeError(32, "Broken pipe"))
    assert main(["diff", str(SAVED), str(SAVED)]) == 0
    assert _err_lines(capsys) == ("", [])


@pytest.mark.parametrize("debug, raised", [("1", True), ("", False)])
def test_the_traceback_of_a_bug_on_request(monkeypatch, capsys, debug, raised):
    monkeypatch.setenv("DTB_AUDIT_DEBUG", debug)
    _failing_diff(monkeypatch, ValueError("bad value"))
    if raised:
        with pytest.raises(ValueError, match="bad value"):
            main(["diff", str(SAVED), str(SAVED)])
        assert capsys.readouterr() == ("", "")
    else:
        assert main(["diff", str(SAVED), str(SAVED)]) == 70
        assert len(_err_lines(capsys)[1]) == 1


# -- sweep: the collector, the default format ----------------------------------------------

@pytest.fixture(scope="module")
def snippets(tmp_path_factory):
    from corpora import snippet_corpus
    return snippet_corpus(tmp_path_factory.mktemp("behaviour") / "dtbs")


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_off_during_a_sweep_and_as_it_was_after(snippets, monkeypatch, capsys,
                                                                  enabled):
    import gc

    from auditor import report
    real, during = report.write, []
    monkeypatch.setattr(report, "write",
                        lambda *a: (during.append(gc.isenabled()), real(*a))[1])
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        assert main(["sweep", str(snippets), "--format", "json"]) == 0
        assert (during, gc.isenabled()) == ([False], enabled)
    finally:
        (gc.enable if was else gc.disable)()
    capsys.readouterr()


def test_a_terminal_gets_the_table_and_no_summary_line(snippets, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["sweep", str(snippets)]) == 0
    out, err = _err_lines(capsys)
    assert out.endswith("\nnot affected: 4 SoCs\n2 diagnostics (on stderr)\n")
    assert len(err) == 2 and not err[-1].startswith("DTBs in ")
    # Another format on the terminal: the summary goes to stderr.
    assert main(["sweep", str(snippets), "--format", "jsonl"]) == 0
    out, err = _err_lines(capsys)
    assert json.loads(out.splitlines()[0])["dtb"]
    assert len(err) == 3 and err[-1].startswith(f"DTBs in {snippets}: ")
    # -o FILE: not the terminal, so jsonl, and the summary on stderr.
    report = tmp_path / "r"
    assert main(["sweep", str(snippets), "-o", str(report)]) == 0
    out, err = _err_lines(capsys)
    assert out == "" and json.loads(report.read_text().splitlines()[0])["dtb"]
    assert len(err) == 3 and err[-1].startswith(f"DTBs in {snippets}: ")


# -- sweep --partial -------------------------------------------------------------------

@pytest.fixture
def interrupted(tmp_path, isolated_cache):
    """The DTB folder of a mini kernel's build interrupted after 2 compiles."""
    import corpus.compile
    from corpus.build import build_corpus
    from minikernel import make_minikernel
    tree, out = make_minikernel(tmp_path / "linux"), tmp_path / "dtbs"
    real, calls = corpus.compile.compile_one, []

    def compile_then_interrupt(*args):
        calls.append(args)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real(*args)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(corpus.compile, "compile_one", compile_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            build_corpus(kernel=tree, out=out, jobs=1)
    return out.resolve()


@pytest.mark.parametrize("given", [["PATH"], ["--dtbs", "PATH"]])
def test_an_interrupted_build_is_swept_only_with_partial(interrupted, capsys, given):
    argv = ["sweep", *(str(interrupted) if a == "PATH" else a for a in given),
            "--format", "jsonl"]
    assert main(argv) == 2
    out, err = _err_lines(capsys)
    assert out == "" and len(err) == 1
    assert err[0].startswith(f"{interrupted}: error: incomplete corpus (the build was "
                             f"interrupted: 2 of ")
    assert err[0].endswith(" or sweep it with --partial")
    assert main([*argv, "--partial"]) == 0
    out, err = _err_lines(capsys)
    assert {json.loads(line)["dtb"].split("/")[0] for line in out.splitlines()} == {"acme"}
    assert " (PARTIAL corpus: its build was interrupted): " in err[-1]


# -- sweep: the legacy binding, the rule, the target ------------------------------------------

def test_sweep_without_legacy_bindings(tmp_path, capsys):
    """An SMMU listing its master in mmu-masters: broken (so affected) under
    the legacy binding, no-iommu without it; the document says which."""
    from snippets import compile_dts, smmu, soc
    legacy = smmu(extra="mmu-masters = <&ldev 0x1>;")
    compile_dts(tmp_path, "legacy", soc(legacy, "\t\tldev: ldev@2 { compatible = "
                                                "\"test,dev\"; #stream-id-cells = <1>; };\n"))
    runs = {}
    for extra in ([], ["--no-legacy-dt-bindings"]):
        assert main(["sweep", str(tmp_path), "--format", "json", "--fail-on-affected",
                     "--target-kernel", "6.12", "--rule", "walk-only", *extra]) == \
            (0 if extra else 1)
        out, err = _err_lines(capsys)
        doc = json.loads(out)
        assert err == [f"DTBs in {tmp_path}: target 6.12: rule walk-only: 1 link on 1 board of "
                       f"1 SoC; {'0 SoCs' if extra else '1 SoC'} affected (0 with PCI/fsl-mc "
                       f"passthrough broken)"]
        runs[bool(extra)] = (doc["legacy_dt_bindings"], doc["target_kernel"], doc["rule"],
                             [(l["master_path"], l["verdict"]) for l in doc["links"]])
    assert runs == {False: (True, "6.12", "walk-only", [("/soc/ldev@2", "broken")]),
                    True: (False, "6.12", "walk-only", [("/soc/ldev@2", "no-iommu")])}


@pytest.mark.parametrize("argv, prog", [([], "dtb-audit"), (["corpus"], "dtb-audit corpus")])
def test_a_command_is_required(capsys, argv, prog):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    out, err = _err_lines(capsys)
    assert (out, err[-1]) == ("", f"{prog}: error: the following arguments are required: COMMAND")
    assert err[0].startswith(f"usage: {prog} [-h] COMMAND ...")


# -- a saved sweep's fields the model tests leave out ---------------------------------------

@pytest.mark.parametrize("path, value, message", [
    (("socs",), {}, "sweep.socs is not a list"),
    (("corpus", "kernel_dir"), 5, "corpus.kernel_dir is not a string or null"),
    (("corpus", "root"), "DELETE", "corpus has no 'root'"),
    (("socs", 0, "soc"), 5, "socs[0].soc is not a string or null"),
    (("socs", 0, "providers"), "DELETE", "socs[0] has no 'providers'"),
    (("links", 1, "provider_enabled"), None, "links[1].provider_enabled is not true or false"),
])
def test_a_saved_sweep_names_the_field_that_is_wrong(tmp_path, capsys, path, value, message):
    doc = json.loads(SAVED.read_text())
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value == "DELETE":
        del target[path[-1]]
    else:
        target[path[-1]] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert main(["diff", str(SAVED), str(bad)]) == 2
    assert _err_lines(capsys) == ("", [f"{bad}: error: not a valid sweep: {message}"])


def test_a_document_without_a_file_is_named_sweep_in_its_errors():
    from auditor.model import SweepFileError, sweep_from_json
    with pytest.raises(SweepFileError) as why:
        sweep_from_json([])
    assert str(why.value) == ("<sweep>: error: not a dtb-audit sweep (the JSON is a list, "
                              "not an object)")


def test_history_fail_on_new_counts_a_soc_without_a_name(saved, tmp_path, capsys):
    """--fail-on-new of saved sweeps: a SoC of no name (no root compatible)
    affected at the end and not at the start is new, beside named ones."""
    plat = _soc(saved, "acme,plat")
    fine = _soc(saved, "acme,fine")
    first, last = tmp_path / "one.json", tmp_path / "two.json"
    first.write_text(json.dumps(dataclasses.replace(saved, socs=(fine,)).to_json()))
    last.write_text(json.dumps(dataclasses.replace(saved, socs=(
        dataclasses.replace(plat, soc=None), plat)).to_json()))
    assert main(["history", str(first), str(last), "--fail-on-new"]) == 1
    out, err = capsys.readouterr()
    assert err == "" and out.splitlines()[1].startswith("?")
