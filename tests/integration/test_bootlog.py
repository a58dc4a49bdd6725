"""`dtb-audit bootlog`: boot logs written from the kernel's own format
strings (tests/bootlogs.py, quoting Debian's 6.1, 6.12 and 7.2 sources)
against small corpora whose root `model` the tests set.

What a log reveals of the register follows from the C code alone
(docs/bootlog.md): arm-smmu prints "\\t%scoherent table walk" when the DT
(fw) or the register says coherent and the override line when they differ,
nothing when both say no; arm-smmu-v3 prints the override line (with fw)
only when they differ.
"""
import json

import pytest

import bootlogs
from bootlogs import dts_header as _header, dts_smmu as _smmu, dts_soc as _soc

from auditor.cli import main
from auditor.settled import SETTLED, settled_for


ACME = _soc(_smmu("apps_smmu", "15000000", '"arm,mmu-500"', False),
            _smmu("smmu3", "2b400000", '"arm,smmu-v3"', True))
BOARDS = {
    "acme-evk": (_header("Acme EVK", "acme,evk", "acme,soc"), ACME),
    "acme-evk-cam": (_header("Acme EVK", "acme,evk-cam", "acme,evk", "acme,soc"), ACME),
    "bare": (_header(None, "acme,bare", "acme,soc2"),
             _soc(_smmu("smmu", "5000000", '"arm,mmu-500"', False))),
    "sdm845-test": (_header("Test SDM845 Board", "test,sdm845-board", "qcom,sdm845"),
                    _soc(_smmu("apps_smmu", "15000000", '"qcom,sdm845-smmu-500", "arm,mmu-500"',
                               False))),
    "ls1028a-test": (_header("Test LS1028A Board", "fsl,ls1028a-rdb", "fsl,ls1028a"),
                     _soc(_smmu("smmu", "5000000", '"arm,mmu-500"', True))),
}


@pytest.fixture(scope="module")
def dtbs(tmp_path_factory):
    return bootlogs.compile_boards(tmp_path_factory.mktemp("dtbs"), BOARDS)


def run(dtbs, logs, *more, capsys):
    """(exit status, the JSON document, stderr lines) of one bootlog run."""
    status = main(["bootlog", "--dtbs", str(dtbs), *map(str, logs), "--format", "json", *more])
    out, err = capsys.readouterr()
    return status, (json.loads(out) if out else None), err.splitlines()


def smmus(doc, log):
    (entry,) = [e for e in doc["logs"] if e["log"] == str(log)]
    return {s["device"]: s for s in entry["smmus"]}


# -- what the log reveals, version by version -----------------------------------------

COMBINATIONS = [(fw, reg) for fw in (False, True) for reg in (False, True)]


def test_the_register_as_each_version_prints_it(dtbs, tmp_path, capsys):
    """arm-smmu: the register is known in all four cases (nothing printed:
    both false).  arm-smmu-v3: known when it disagrees with the booted DT;
    when they agree the log says nothing of either, and this corpus (a bare
    DTB folder) has no release to take the booted DT from."""
    logs = {}
    for version in bootlogs.VERSIONS:
        for fw, reg in COMBINATIONS:
            lines = bootlogs.boot(version, "Acme EVK", [("arm-smmu", "15000000.iommu", fw, reg),
                                                        ("arm-smmu-v3", "2b400000.iommu", fw,
                                                         reg)])
            path = tmp_path / f"{version}-{int(fw)}{int(reg)}.log"
            logs[path] = (version, fw, reg)
            bootlogs.write(path, bootlogs.dmesg(lines))
    status, doc, err = run(dtbs, [tmp_path], capsys=capsys)
    assert status == 0 and err == []
    for path, (version, fw, reg) in logs.items():
        got = smmus(doc, path)
        v2, v3 = got["15000000.iommu"], got["2b400000.iommu"]
        where = f"{version} fw={fw} reg={reg}"
        # The board's DT: the arm-smmu not coherent, the arm-smmu-v3 coherent.
        assert (v2["node"], v2["dt_coherent"], v2["hw_coherent"]) == \
            ("/soc@0/iommu@15000000", False, reg), where
        assert v2["log_dt_coherent"] is fw, where
        assert v2["finding"] == ("dt-lacks-coherent" if reg else "agree"), where
        assert (v3["node"], v3["dt_coherent"]) == ("/soc@0/iommu@2b400000", True), where
        if fw != reg:
            assert (v3["hw_coherent"], v3["log_dt_coherent"]) == (reg, fw), where
            assert v3["finding"] == ("agree" if reg else "dt-overrides-hw"), where
        else:
            assert v3["hw_coherent"] is None and v3["finding"] == "unknown", where
            assert "agrees with the DT of" in v3["note"], where
        entry = next(e for e in doc["logs"] if e["log"] == str(path))
        assert entry["kernel"] == bootlogs.RELEASES[version][0]
        assert entry["model"] == "Acme EVK"
        assert entry["boards"] == ["acme-evk-cam.dtb", "acme-evk.dtb"]


def _one(dtbs, tmp_path, capsys, text, name="board.log", gz=False, cut=None, more=()):
    path = bootlogs.write(tmp_path / name, text, gz=gz, cut=cut)
    status, doc, err = run(dtbs, [path], *more, capsys=capsys)
    return path, status, doc, err


LINES = bootlogs.boot("6.12", "Acme EVK", [("arm-smmu", "15000000.iommu", False, True)])


@pytest.mark.parametrize("text", [
    bootlogs.dmesg(LINES, timestamps=False),
    bootlogs.dmesg(LINES, prefix="<5>", newline="\r\n"),                     # /proc/kmsg, serial
    bootlogs.dmesg(LINES, prefix="2026-12-07T03:12:44.512331 ", newline="\r\r\n"),   # LAVA
    bootlogs.dmesg(LINES, timestamps=False, prefix="Dec 07 03:12:44 evk kernel: "),  # journal
    bootlogs.dmesg([line.replace("\t", "\\t") for line in LINES]),           # escaped tabs
    bootlogs.dmesg([line.replace("\t", "        ") for line in LINES]),      # tabs expanded
    "".join('- {"dt": "2026-12-07T03:12:44.%06d", "lvl": "target", "msg": %s}\n'
            % (k, json.dumps(line)) for k, line in enumerate(bootlogs.dmesg(LINES).splitlines())),
], ids=["plain", "kmsg-crlf", "lava", "journal", "escaped-tab", "expanded-tab", "lava-yaml"])
def test_logs_as_people_keep_them(dtbs, tmp_path, capsys, text):
    path, status, doc, err = _one(dtbs, tmp_path, capsys, text)
    assert status == 0 and err == []
    s = smmus(doc, path)["15000000.iommu"]
    assert (s["hw_coherent"], s["finding"]) == (True, "dt-lacks-coherent")


def test_a_serial_capture_of_two_boots(dtbs, tmp_path, capsys):
    """A capture across a reboot into another kernel: one record per boot."""
    first = bootlogs.boot("6.1", "Acme EVK", [("arm-smmu", "15000000.iommu", False, False)])
    second = bootlogs.boot("7.2", "Acme EVK", [("arm-smmu", "15000000.iommu", False, True)])
    path, status, doc, err = _one(dtbs, tmp_path, capsys,
                                  bootlogs.dmesg(first + ["reboot: Restarting system"] + second,
                                                 newline="\r\n"))
    assert status == 0 and err == []
    got = [(e["boot"], e["kernel"], e["smmus"][0]["hw_coherent"]) for e in doc["logs"]]
    assert got == [(1, "6.1.0-28-arm64", False), (2, "7.2.13-arm64", True)]


def test_nothing_printed_then_the_context_banks_line(dtbs, tmp_path, capsys):
    """Neither the DT nor the register coherent, an SMMU without stream
    matching: the "\t%u context banks" line shows the probe went past the
    coherency lines (the log ends there)."""
    lines = bootlogs.boot("6.1", "Acme EVK", [])[:-1]
    lines += bootlogs.arm_smmu("15000000.iommu", False, False, stream_matching=False)
    text = bootlogs.dmesg(lines)
    path, status, doc, err = _one(dtbs, tmp_path, capsys, text[:text.index("Supported page")])
    s = smmus(doc, path)["15000000.iommu"]
    assert (s["hw_coherent"], s["log_dt_coherent"], s["finding"]) == (False, False, "agree")


def test_gzip(dtbs, tmp_path, capsys):
    path, status, doc, err = _one(dtbs, tmp_path, capsys, bootlogs.dmesg(LINES),
                                  name="board.log.gz", gz=True)
    assert status == 0 and err == []
    assert smmus(doc, path)["15000000.iommu"]["hw_coherent"] is True


# -- logs that cannot be used, and the rest going on ---------------------------------

def test_bad_logs_are_one_line_each_and_the_rest_goes_on(dtbs, tmp_path, capsys):
    good = bootlogs.write(tmp_path / "good.log", bootlogs.dmesg(LINES))
    text = bootlogs.dmesg(bootlogs.boot("6.12", "Acme EVK", [
        ("arm-smmu", "15000000.iommu", True, False)]))
    cut_at = text.index("(IDR0.CTTW")       # the log ends before the override line
    bad = {
        "x86.log": bootlogs.write(tmp_path / "x86.log",
                                  bootlogs.dmesg(bootlogs.boot("6.12", None, [], x86=True))),
        "unknown.log": bootlogs.write(tmp_path / "unknown.log", bootlogs.dmesg(
            bootlogs.boot("6.12", "Nobody's Board\x1b[2J", []))),
        "nomodel.log": bootlogs.write(tmp_path / "nomodel.log", bootlogs.dmesg(
            bootlogs.boot("6.12", None, [("arm-smmu", "5000000.iommu", False, False)]))),
        "empty.log": bootlogs.write(tmp_path / "empty.log", ""),
        "cut.log.gz": bootlogs.write(tmp_path / "cut.log.gz", bootlogs.dmesg(LINES), gz=True,
                                     cut=200),
        "cut.log": bootlogs.write(tmp_path / "cut.log", text[:cut_at]),
    }
    status, doc, err = run(dtbs, [tmp_path], capsys=capsys)
    assert status == 0
    assert sorted(line.split(":", 1)[0] for line in err) == sorted(str(p) for p in bad.values())
    lines = {line.split(":", 1)[0]: line for line in err}
    assert "another architecture (x86)" in lines[str(bad["x86.log"])]
    assert "names no board" in lines[str(bad["unknown.log"])]
    unknown = lines[str(bad["unknown.log"])]
    assert "\x1b" not in unknown and "\\x1b" in unknown
    assert "--board" in lines[str(bad["nomodel.log"])]
    assert "truncated" in lines[str(bad["cut.log.gz"])]
    assert "truncated" in lines[str(bad["cut.log"])]
    # What a truncated log holds is still read.
    assert {str(good), str(bad["cut.log"])} <= {e["log"] for e in doc["logs"]} <= \
        {str(good), str(bad["cut.log"]), str(bad["cut.log.gz"])}
    cut = smmus(doc, bad["cut.log"])["15000000.iommu"]
    # Cut before the override line could be printed: the register is not known.
    assert (cut["hw_coherent"], cut["finding"]) == (None, "unknown")


def test_nothing_usable_is_exit_2(dtbs, tmp_path, capsys):
    bootlogs.write(tmp_path / "x86.log", bootlogs.dmesg(bootlogs.boot("6.12", None, [], x86=True)))
    status, doc, err = run(dtbs, [tmp_path], capsys=capsys)
    assert status == 2 and doc["logs"] == []
    assert err[-1] == "dtb-audit: error: no boot log could be used"


def test_no_such_log(dtbs, tmp_path, capsys):
    status = main(["bootlog", "--dtbs", str(dtbs), str(tmp_path / "missing.log")])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err == f"{tmp_path / 'missing.log'}: error: no such file or folder\n"


# -- boards ------------------------------------------------------------------------

def test_board_option_and_a_model_taken_from_compatible(dtbs, tmp_path, capsys):
    """--board for a log without `Machine model:`; a board without `model`
    is printed by its first root compatible (of_flat_dt_get_machine_name)."""
    smmu = [("arm-smmu", "5000000.iommu", False, False)]
    nomodel = bootlogs.write(tmp_path / "nomodel.log", bootlogs.dmesg(
        bootlogs.boot("7.2", None, smmu)))
    compat = bootlogs.write(tmp_path / "compat.log", bootlogs.dmesg(
        bootlogs.boot("7.2", "acme,bare", smmu)))
    status, doc, err = run(dtbs, [nomodel, compat], "--board", "bare", capsys=capsys)
    assert status == 0 and err == []
    for log in doc["logs"]:
        assert log["boards"] == ["bare.dtb"] and log["soc"] == "acme,soc2"
        s = log["smmus"][0]
        assert (s["node"], s["hw_coherent"], s["finding"]) == ("/soc@0/iommu@5000000", False,
                                                               "agree")


def test_unknown_board_option(dtbs, tmp_path, capsys):
    log = bootlogs.write(tmp_path / "a.log", bootlogs.dmesg(LINES))
    status = main(["bootlog", "--dtbs", str(dtbs), str(log), "--board", "nope"])
    assert status == 2
    assert "--board nope: no such board" in capsys.readouterr().err


def test_an_smmu_the_dt_lacks(dtbs, tmp_path, capsys):
    log = bootlogs.write(tmp_path / "a.log", bootlogs.dmesg(bootlogs.boot(
        "6.1", "Acme EVK", [("arm-smmu", "16000000.iommu", True, True)])))
    status, doc, err = run(dtbs, [log], capsys=capsys)
    s = smmus(doc, log)["16000000.iommu"]
    assert (s["node"], s["finding"], s["hw_coherent"]) == (None, "no-node", True)


# -- upstream's settled cases ---------------------------------------------------------

def test_settled_cases(dtbs, tmp_path, capsys):
    """sdm845's apps SMMU: upstream reverted dma-coherent (CVE-2025-22012),
    whatever one board's register says.  LS1028A: the register says not
    coherent, the hardware is: the DT overriding it is upstream's fix."""
    sdm845 = bootlogs.write(tmp_path / "sdm845.log", bootlogs.dmesg(bootlogs.boot(
        "6.12", "Test SDM845 Board", [("arm-smmu", "15000000.iommu", False, True)])))
    ls1028a = bootlogs.write(tmp_path / "ls1028a.log", bootlogs.dmesg(bootlogs.boot(
        "6.1", "Test LS1028A Board", [("arm-smmu", "5000000.iommu", False, False)])))
    status, doc, err = run(dtbs, [sdm845, ls1028a], capsys=capsys)
    s = smmus(doc, sdm845)["15000000.iommu"]
    assert (s["hw_coherent"], s["finding"]) == (True, "known-noncoherent")
    assert "f00db31d2359" in s["note"]
    s = smmus(doc, ls1028a)["5000000.iommu"]
    assert (s["dt_coherent"], s["hw_coherent"], s["finding"]) == (True, False, "dt-overrides-hw")
    assert "register is wrong" in s["note"]
    assert "booted a DT that says not coherent" in s["note"]


def test_settled_table():
    entry = settled_for(("lenovo,yoga-c630", "qcom,sdm845"), "iommu@015000000")
    assert entry.verdict == "noncoherent" and entry.release == "v6.14"
    assert entry.commit.startswith("f00db31d2359")
    affirmed = {e.soc.split(",")[1] for e in SETTLED
                if e.release == "v6.13" and "Affirm IDR0.CCTW" in (e.subject or "")}
    assert affirmed == {"qdu1000", "sc7180", "sc8180x", "sc8280xp", "sdm670", "sm6350",
                        "sm8150", "sm8350", "sm8450", "x1e80100"}
    assert settled_for(("qcom,sdm845",), "iommu@5040000") is None


# -- many logs per SoC ------------------------------------------------------------------

def test_socs_count_logs_and_boards(dtbs, tmp_path, capsys):
    for k, (version, reg) in enumerate([("6.1", True), ("6.12", True), ("7.2", False)]):
        bootlogs.write(tmp_path / f"{k}.log", bootlogs.dmesg(bootlogs.boot(
            version, "Acme EVK", [("arm-smmu", "15000000.iommu", False, reg)])))
    status, doc, err = run(dtbs, [tmp_path], capsys=capsys)
    (soc,) = doc["socs"]
    assert (soc["soc"], soc["node"], soc["logs"], soc["dt_coherent"]) == \
        ("acme,soc", "/soc@0/iommu@15000000", 3, False)
    assert soc["register"]["coherent"]["logs"] == 2
    assert soc["register"]["non-coherent"]["logs"] == 1
    assert soc["register"]["coherent"]["boards"] == ["acme-evk-cam.dtb", "acme-evk.dtb"]
    assert soc["findings"] == {"agree": 1, "dt-lacks-coherent": 2}


def test_table_escapes_log_text(dtbs, tmp_path, capsys):
    log = bootlogs.write(tmp_path / "a.log", bootlogs.dmesg(bootlogs.boot(
        "6.12", "Acme EVK", [("arm-smmu", "15000000.iommu\x1b[31m", False, True)])))
    assert main(["bootlog", "--dtbs", str(dtbs), str(log), "--format", "table"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "15000000.iommu\\x1b[31m" in out


# -- arm-smmu-v3 agreeing with the DT: the corpus's release decides ---------------------


def test_v3_agreeing_under_the_corpus_release(tmp_path, isolated_cache, capsys):
    """arm-smmu-v3 prints nothing when the register agrees with the booted
    DT: a log of the corpus's release (6.1, the mini tree's 6.1.192) is
    taken to have booted this DT; a 6.12 log is not."""
    tree = bootlogs.v3_board_tree(tmp_path / "linux", coherent=True)
    logs = tmp_path / "logs"
    logs.mkdir()
    for version in ("6.1", "6.12"):
        bootlogs.write(logs / f"{version}.log", bootlogs.dmesg(bootlogs.boot(
            version, "ACME v3 board", [("arm-smmu-v3", "2b400000.iommu", True, True)])))
    status = main(["bootlog", "--kernel", str(tree), str(logs), "--format", "json"])
    out, err = capsys.readouterr()
    assert status == 0 and err == ""
    doc = json.loads(out)
    got = {e["version"]: e["smmus"][0] for e in doc["logs"]}
    assert (got["6.1.119"]["hw_coherent"], got["6.1.119"]["finding"]) == (True, "agree")
    assert "same release" in got["6.1.119"]["note"]
    assert (got["6.12.117"]["hw_coherent"], got["6.12.117"]["finding"]) == (None, "unknown")
