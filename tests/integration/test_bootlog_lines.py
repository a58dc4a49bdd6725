"""`dtb-audit bootlog`, line by line: each form a log can take around the
SMMU drivers' messages (tests/bootlogs.py writes them from the kernel's
format strings; docs/bootlog.md says what each reveals), what the JSON
document and the table say of each, the notes whole, and --board in each
form `explain` takes a board (a name, a DTB, a path under the folder).
"""
import json

import pytest

import bootlogs
from bootlogs import dts_header as header, dts_smmu as smmu_node, dts_soc as soc_node

from auditor.cli import main
from auditor.settled import settled_for


ACME = soc_node(smmu_node("apps_smmu", "15000000", '"arm,mmu-500"', False),
                smmu_node("smmu3", "2b400000", '"arm,smmu-v3"', True))
BOARDS = {
    "acme-evk": (header("Acme EVK", "acme,evk", "acme,soc"), ACME),
    "vendor/bare": (header(None, "acme,bare", "acme,soc2"),
                    soc_node(smmu_node("smmu", "5000000", '"arm,mmu-500"', False))),
    "sdm845-test": (header("Test SDM845 Board", "test,sdm845-board", "qcom,sdm845"),
                    soc_node(smmu_node("apps_smmu", "15000000",
                                       '"qcom,sdm845-smmu-500", "arm,mmu-500"', False))),
    "quote-evk": (header('Acme EVK \\"Pro\\"', "acme,quote-evk", "acme,soc3"),
                  soc_node(smmu_node("smmu", "5000000", '"arm,mmu-500"', False))),
    # two boards of one model whose DTs differ: the first decides, the note names the other
    "twin-a": (header("Twin EVK", "acme,twin-a", "acme,twin"),
               soc_node(smmu_node("smmu", "5000000", '"arm,mmu-500"', False))),
    "twin-b": (header("Twin EVK", "acme,twin-b", "acme,twin"),
               soc_node(smmu_node("smmu", "5000000", '"arm,mmu-500"', True))),
    "twin-c": (header("Twin EVK", "acme,twin-c", "acme,twin"), soc_node()),
    "sc7180-test": (header("Test SC7180 Board", "test,sc7180-board", "qcom,sc7180"),
                    soc_node(smmu_node("apps_smmu", "15000000",
                                       '"qcom,sc7180-smmu-500", "arm,mmu-500"', True))),
    "ls1028a-test": (header("Test LS1028A Board", "fsl,ls1028a-rdb", "fsl,ls1028a"),
                     soc_node(smmu_node("smmu", "5000000", '"arm,mmu-500"', True))),
}


@pytest.fixture(scope="module")
def dtbs(tmp_path_factory):
    return bootlogs.compile_boards(tmp_path_factory.mktemp("dtbs"), BOARDS)


def run(dtbs, logs, *more, capsys, fmt="json"):
    """(exit status, the document or table, stderr lines) of one bootlog run."""
    status = main(["bootlog", "--dtbs", str(dtbs), *map(str, logs), "--format", fmt, *more])
    out, err = capsys.readouterr()
    return status, (json.loads(out) if out and fmt == "json" else out), err.splitlines()


def log_file(tmp_path, lines, name="board.log", **how):
    return bootlogs.write(tmp_path / name, bootlogs.dmesg(lines, **how))


def head(version="6.12", model="Acme EVK"):
    """A boot's lines up to the SMMUs' probes."""
    return bootlogs.boot(version, model, [])[:-1]


def p(device="15000000.iommu"):
    return f"arm-smmu {device}: "


def the_smmu(doc, device="15000000.iommu"):
    (log,) = doc["logs"]
    return next(s for s in log["smmus"] if s["device"] == device)


# -- arm-smmu: where the log stops --------------------------------------------------------

PROBE = [p() + "probing hardware configuration...", p() + "SMMUv2 with:",
         p() + "\tstage 1 translation", p() + "\tstage 2 translation"]


@pytest.mark.parametrize("lines, fw, reg, note", [
    # cut right after the probe began: nothing known, the log is truncated
    (PROBE, None, None, "the log ends before the coherency lines"),
    # the coherent line and nothing after: the override line may still come
    (PROBE + [p() + "\tcoherent table walk"], True, None,
     "the log ends before the coherency lines; the log's kernel booted a DT that says coherent"),
])
def test_a_log_that_ends_inside_the_probe_is_truncated(dtbs, tmp_path, capsys, lines, fw, reg,
                                                       note):
    path = log_file(tmp_path, head() + lines)
    status, doc, err = run(dtbs, [path], capsys=capsys)
    assert status == 0
    assert err == [f"{path}: warning: truncated: the log ends during the probe of "
                   f"15000000.iommu"]
    s = the_smmu(doc)
    assert (s["log_dt_coherent"], s["hw_coherent"], s["finding"], s["note"]) == \
        (fw, reg, "unknown", note)


@pytest.mark.parametrize("failure", ["no translation support!",
                                     "stream-matching supported, but no SMRs present!"])
def test_a_probe_that_failed_says_why(dtbs, tmp_path, capsys, failure):
    """arm_smmu_device_cfg_probe() returns -ENODEV after these, before the
    coherency lines: nothing is known, and the log is not cut."""
    path = log_file(tmp_path, head() + PROBE + [p() + "\t" + failure,
                                                 "Freeing unused kernel memory: 6592K"])
    status, doc, err = run(dtbs, [path], capsys=capsys)
    assert (status, err) == (0, [])
    s = the_smmu(doc)
    assert (s["hw_coherent"], s["finding"], s["note"]) == (
        None, "unknown", f"the probe stopped: {failure}")


def test_an_smmu_without_its_probe_lines(dtbs, tmp_path, capsys):
    """A device's line that is not of the probe (the driver core's deferred
    probe message): no probe lines for it, nothing cut."""
    path = log_file(tmp_path, head() + [p() + "deferred probe pending: arm-smmu: waiting",
                                        "Freeing unused kernel memory: 6592K"])
    status, doc, err = run(dtbs, [path], capsys=capsys)
    assert (status, err) == (0, [])
    s = the_smmu(doc)
    assert (s["log_dt_coherent"], s["hw_coherent"], s["finding"], s["note"]) == (
        None, None, "unknown", "no probe lines for it in the log")


@pytest.mark.parametrize("fw, reg, after", [
    (fw, reg, after) for fw in (False, True) for reg in (False, True)
    for after in ("stream matching", "context banks", "page sizes", "preserved", "other")
    # nothing printed and a line of no known place: the log may have been cut there
    if fw or reg or after != "other"])
def test_the_register_from_any_line_after_the_coherency_lines(dtbs, tmp_path, capsys, fw, reg,
                                                             after):
    """Whichever later line of the device shows the probe went past the
    coherency lines, the register is known (docs/bootlog.md's table)."""
    full = bootlogs.arm_smmu("15000000.iommu", fw, reg, stream_matching=after ==
                             "stream matching")
    end = next(k for k, line in enumerate(full) if "stream matching" in line
               or "context banks" in line)
    if after == "page sizes":
        full = full[:end] + [line for line in full[end:] if "Supported page sizes" in line]
    elif after == "preserved":       # arm_smmu_rmr_install_bypass_smr()
        full = full[:end] + [p() + "\tpreserved %d boot mapping%s" % (2, "s")]
    elif after == "other":
        full = full[:end] + [p() + "Unexpected global fault, this could be serious"]
    else:
        full = full[:end + 1]
    path = log_file(tmp_path, head() + full + ["Freeing unused kernel memory: 6592K"])
    status, doc, err = run(dtbs, [path], capsys=capsys)
    assert (status, err) == (0, [])
    s = the_smmu(doc)
    assert (s["log_dt_coherent"], s["hw_coherent"]) == (fw, reg)
    assert s["finding"] == ("dt-lacks-coherent" if reg else "agree")
    booted = "; the log's kernel booted a DT that says coherent" if fw else ""
    assert s["note"] == (booted[2:] or None)


# -- arm-smmu-v3 ---------------------------------------------------------------------------

@pytest.mark.parametrize("version", bootlogs.VERSIONS)
def test_v3_cut_before_its_closing_line(dtbs, tmp_path, capsys, version):
    lines = bootlogs.arm_smmu_v3("2b400000.iommu", True, True, version)[:-1]
    path = log_file(tmp_path, head(version) + lines + [
        "arm-smmu-v3 2b400000.iommu: msi_domain absent - falling back to wired irqs"])
    status, doc, err = run(dtbs, [path], capsys=capsys)
    assert (status, err) == (0, [])
    s = the_smmu(doc, "2b400000.iommu")
    assert (s["hw_coherent"], s["finding"], s["note"]) == (
        None, "unknown", "the log ends before the coherency lines")


@pytest.mark.parametrize("version, debian", [("6.1", "6.1.119"), ("6.12", "6.12.117"),
                                             ("7.2", "7.2.13")])
def test_v3_agreeing_under_another_release_says_which(dtbs, tmp_path, capsys, version, debian):
    path = log_file(tmp_path, bootlogs.boot(version, "Acme EVK", [
        ("arm-smmu-v3", "2b400000.iommu", True, True)]))
    status, doc, err = run(dtbs, [path], capsys=capsys)
    (log,) = doc["logs"]
    assert (log["kernel"], log["version"]) == (bootlogs.RELEASES[version][0], debian)
    s = the_smmu(doc, "2b400000.iommu")
    assert (s["hw_coherent"], s["log_dt_coherent"], s["finding"]) == (None, None, "unknown")
    assert s["note"] == f"the register agrees with the DT of {debian}, which this corpus may " \
                        f"not be"


def test_v3_agreeing_in_a_log_without_a_banner(dtbs, tmp_path, capsys):
    lines = [line for line in bootlogs.boot("6.12", "Acme EVK", [
        ("arm-smmu-v3", "2b400000.iommu", True, True)]) if "Linux version" not in line]
    status, doc, err = run(dtbs, [log_file(tmp_path, lines)], capsys=capsys)
    (log,) = doc["logs"]
    assert (log["kernel"], log["version"]) == (None, None)
    assert the_smmu(doc, "2b400000.iommu")["note"] == (
        "the register agrees with the DT of another, which this corpus may not be")


def test_v3_agreeing_under_the_corpus_release_says_so_whole(tmp_path, isolated_cache, capsys):
    """The mini tree is 6.1.192: a 6.1 log booted this DT (not coherent), so
    the register says not coherent too."""
    tree = bootlogs.v3_board_tree(tmp_path / "linux", coherent=False)
    log = log_file(tmp_path, bootlogs.boot("6.1", "ACME v3 board", [
        ("arm-smmu-v3", "2b400000.iommu", False, False)]))
    status = main(["bootlog", "--kernel", str(tree), str(log), "--format", "json"])
    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    s = the_smmu(json.loads(out), "2b400000.iommu")
    assert (s["dt_coherent"], s["log_dt_coherent"], s["hw_coherent"], s["finding"]) == \
        (False, False, False, "agree")
    assert s["note"] == ("the register agrees with the booted DT, taken as this corpus's "
                         "(same release)")


# -- upstream's settled cases, their notes whole ------------------------------------------

def test_settled_notes_name_upstreams_reference(dtbs, tmp_path, capsys):
    sdm845 = log_file(tmp_path, bootlogs.boot("6.12", "Test SDM845 Board", [
        ("arm-smmu", "15000000.iommu", False, True)]), name="sdm845.log")
    ls1028a = log_file(tmp_path, bootlogs.boot("6.1", "Test LS1028A Board", [
        ("arm-smmu", "5000000.iommu", False, False)]), name="ls1028a.log")
    sc7180 = log_file(tmp_path, bootlogs.boot("6.12", "Test SC7180 Board", [
        ("arm-smmu", "15000000.iommu", True, True)]), name="sc7180.log")
    status, doc, err = run(dtbs, [sdm845, ls1028a, sc7180], capsys=capsys)
    assert (status, err) == (0, [])
    by_log = {log["log"]: log["smmus"][0] for log in doc["logs"]}
    known = settled_for(("test,sdm845-board", "qcom,sdm845"), "iommu@15000000")
    s = by_log[str(sdm845)]
    assert (s["finding"], s["note"]) == (
        "known-noncoherent", f"upstream: not coherent on every board, {known.reference}")
    # no commit identified: nothing to name in brackets
    assert settled_for(("fsl,ls1028a-rdb", "fsl,ls1028a"), "iommu@5000000").commit is None
    s = by_log[str(ls1028a)]
    assert (s["finding"], s["note"]) == (
        "dt-overrides-hw", "upstream: the register is wrong here, the hardware coherent; "
                           "the log's kernel booted a DT that says not coherent")
    affirmed = settled_for(("test,sc7180-board", "qcom,sc7180"), "iommu@15000000")
    s = by_log[str(sc7180)]
    assert (s["finding"], s["note"]) == ("agree", f"upstream: coherent, {affirmed.reference}")


# -- boots and banners --------------------------------------------------------------------

def test_a_log_without_a_banner_or_smmu_lines_is_one_boot(dtbs, tmp_path, capsys):
    """No `Linux version` line (a capture started late) and no SMMU line:
    still the one boot of the log, its kernel unknown, its SMMUs none."""
    lines = [line for line in bootlogs.boot("7.2", None, []) if "Linux version" not in line]
    path = log_file(tmp_path, lines)
    status, doc, err = run(dtbs, [path], "--board", "bare", capsys=capsys)
    assert (status, err) == (0, [])
    (log,) = doc["logs"]
    assert (log["boot"], log["model"], log["kernel"], log["version"], log["boards"],
            log["smmus"]) == (1, None, None, None, ["vendor/bare.dtb"], [])
    status, table, err = run(dtbs, [path], "--board", "bare", capsys=capsys, fmt="table")
    assert table.splitlines()[1:] == ["", str(path), "  model    (none: --board)",
                                      "  kernel   ?", "  boards   vendor/bare.dtb",
                                      "  (no SMMU probe lines)"]


def test_a_ring_buffer_that_wrapped_keeps_the_boot_without_its_banner(dtbs, tmp_path, capsys):
    """SMMU lines before the first banner are a boot whose banner was lost;
    text before the first banner that says nothing is no boot."""
    lost = bootlogs.arm_smmu("5000000.iommu", False, True)
    path = log_file(tmp_path, lost + bootlogs.boot("6.1", None, [
        ("arm-smmu", "5000000.iommu", False, False)]))
    status, doc, err = run(dtbs, [path], "--board", "vendor/bare.dtb", capsys=capsys)
    assert (status, err) == (0, [])
    assert [(b["boot"], b["kernel"], b["smmus"][0]["hw_coherent"]) for b in doc["logs"]] == [
        (1, None, True), (2, "6.1.0-28-arm64", False)]
    quiet = log_file(tmp_path, ["random: crng init done"] + bootlogs.boot("6.1", None, [
        ("arm-smmu", "5000000.iommu", False, False)]), name="quiet.log")
    status, doc, err = run(dtbs, [quiet], "--board", "bare", capsys=capsys)
    assert [(b["boot"], b["kernel"]) for b in doc["logs"]] == [(1, "6.1.0-28-arm64")]


# -- the table --------------------------------------------------------------------------

def test_the_table_says_each_smmu_of_each_boot(dtbs, tmp_path, capsys):
    first = log_file(tmp_path, bootlogs.boot("6.12", "Acme EVK", [
        ("arm-smmu", "15000000.iommu", False, True),
        ("arm-smmu-v3", "2b400000.iommu", True, True),
        ("arm-smmu", "16000000.iommu", True, True)]), name="a.log")
    second = log_file(tmp_path, bootlogs.boot("7.2", "Acme EVK", []) + bootlogs.boot(
        "7.2", "Acme EVK", [("arm-smmu-v3", "2b400000.iommu", True, False)]), name="b.log")
    status, table, err = run(dtbs, [first, second], capsys=capsys, fmt="table")
    assert (status, err) == (0, [])
    assert table == "\n".join([
        f"bootlog: 3 boots read against DTBs in {dtbs}",
        "",
        str(first),
        "  model    Acme EVK",
        "  kernel   6.12.117-arm64",
        "  boards   acme-evk.dtb",
        "  15000000.iommu  /soc@0/iommu@15000000 (apps_smmu): DT not coherent, register "
        "coherent: DT-LACKS-COHERENT",
        "  2b400000.iommu  /soc@0/iommu@2b400000 (smmu3): DT coherent, register ?: UNKNOWN",
        "      the register agrees with the DT of 6.12.117, which this corpus may not be",
        "  16000000.iommu  no node: DT ?, register coherent: NO-NODE",
        "      the board's DT has no SMMU node the kernel would name 16000000.iommu",
        "",
        str(second),
        "  model    Acme EVK",
        "  kernel   7.2.13-arm64",
        "  boards   acme-evk.dtb",
        "  (no SMMU probe lines)",
        "",
        f"{second} (boot 2)",
        "  model    Acme EVK",
        "  kernel   7.2.13-arm64",
        "  boards   acme-evk.dtb",
        "  2b400000.iommu  /soc@0/iommu@2b400000 (smmu3): DT coherent, register not coherent: "
        "DT-OVERRIDES-HW",
        "",
        "socs",
        "  acme,soc /soc@0/iommu@15000000 (apps_smmu): DT not coherent; register coherent in "
        "1 log (1 board); dt-lacks-coherent 1",
        "  acme,soc /soc@0/iommu@2b400000 (smmu3): DT coherent; register non-coherent in 1 log "
        "(1 board), unknown in 1 log (1 board); dt-overrides-hw 1, unknown 1",
        "  acme,soc 16000000.iommu: DT ?; register coherent in 1 log (1 board); no-node 1",
    ]) + "\n"


# -- which board ----------------------------------------------------------------------------

@pytest.mark.parametrize("board", ["bare", "bare.dtb", "vendor/bare", "vendor/bare.dtb"])
def test_board_by_name_dtb_or_path(dtbs, tmp_path, capsys, board):
    path = log_file(tmp_path, bootlogs.boot("7.2", None, [
        ("arm-smmu", "5000000.iommu", False, True)]))
    status, doc, err = run(dtbs, [path], "--board", board, capsys=capsys)
    assert (status, err) == (0, [])
    (log,) = doc["logs"]
    assert (log["boards"], log["soc"]) == (["vendor/bare.dtb"], "acme,soc2")
    assert the_smmu(doc, "5000000.iommu")["finding"] == "dt-lacks-coherent"


@pytest.mark.parametrize("board", ["vendor", "bare.dts", "other/bare", "vendor/bare.dtb.dtb"])
def test_a_board_option_naming_no_board(dtbs, tmp_path, capsys, board):
    path = log_file(tmp_path, bootlogs.boot("7.2", None, []))
    status = main(["bootlog", "--dtbs", str(dtbs), str(path), "--board", board])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert f"--board {board}: no such board" in err and err.count("\n") == 1


# -- logs that cannot be used: one whole line each --------------------------------------

def foreign(cpu_line):
    """A 32-bit or other architecture's boot (no arm64 word in it)."""
    return ["Booting Linux on physical CPU 0x0",
            "Linux version 6.1.0-28-armmp (debian-kernel@lists.debian.org) (gcc-12) #1 SMP",
            cpu_line, "Machine model: Acme EVK"]


BROKEN_GZIP = b"\x1f\x8b" + bytes(40)       # gzip's magic, then no valid header


def zlib_says(data):
    """zlib's own words for a broken stream (they vary with its version)."""
    import zlib
    try:
        zlib.decompressobj(wbits=31).decompress(data)
    except zlib.error as why:
        return str(why)
    raise AssertionError("a readable stream")


def test_each_bad_log_is_one_whole_line(dtbs, tmp_path, capsys):
    good = log_file(tmp_path, bootlogs.boot("6.12", "Acme EVK", [
        ("arm-smmu", "15000000.iommu", False, True)]), name="good.log")
    lines = bootlogs.boot("6.12", "Acme EVK", [("arm-smmu", "15000000.iommu", False, True)])
    broken = tmp_path / "bad.log.gz"
    broken.write_bytes(BROKEN_GZIP)
    expected = {
        "empty.log": (bootlogs.write(tmp_path / "empty.log", ""), "error: empty log"),
        "blank.log": (bootlogs.write(tmp_path / "blank.log", " \r\n\n\t\n"), "error: empty log"),
        "x86.log": (log_file(tmp_path, bootlogs.boot("6.12", None, [], x86=True), name="x86.log"),
                    "error: a boot log of another architecture (x86), not arm64"),
        "armv7.log": (log_file(tmp_path, foreign(
            "CPU: ARMv7 Processor [410fc075] revision 5 (ARMv7), cr=10c5387d"), name="armv7.log"),
            "error: a boot log of another architecture (32-bit arm), not arm64"),
        "riscv.log": (log_file(tmp_path, foreign("riscv: base ISA extensions acdfim"),
                               name="riscv.log"),
                      "error: a boot log of another architecture (riscv), not arm64"),
        "sbi.log": (log_file(tmp_path, foreign("SBI specification v0.2 detected"),
                             name="sbi.log"),
                    "error: a boot log of another architecture (riscv), not arm64"),
        "unknown.log": (log_file(tmp_path, bootlogs.boot("6.12", "Nobody's Board", []),
                                 name="unknown.log"),
                        "error: names no board of this corpus (Machine model: Nobody's Board)"),
        "nomodel.log": (log_file(tmp_path, bootlogs.boot("6.12", None, []), name="nomodel.log"),
                        "error: names no board (no `Machine model:` line; give --board)"),
        "cut.log.gz": (bootlogs.write(tmp_path / "cut.log.gz", bootlogs.dmesg(lines), gz=True,
                                      cut=200),
                       "error: truncated: its gzip stream ends early"),
        "bad.log.gz": (broken, f"error: not a readable gzip file ({zlib_says(BROKEN_GZIP)})"),
    }
    status, doc, err = run(dtbs, [tmp_path], capsys=capsys)
    assert status == 0
    assert sorted(err) == sorted(f"{path}: {line}" for path, line in expected.values())
    assert [log["log"] for log in doc["logs"]] == [str(good)]


def test_a_gzip_log_cut_inside_the_probe_is_read_as_far_as_it_goes(dtbs, tmp_path, capsys):
    text = bootlogs.dmesg(bootlogs.boot("6.12", "Acme EVK", [
        ("arm-smmu", "15000000.iommu", True, False)]))
    import gzip
    data = gzip.compress(text[:text.index("(IDR0.CTTW")].encode())
    path = tmp_path / "cut.log.gz"
    path.write_bytes(data[:-8])         # without gzip's trailer: the stream ends early
    status, doc, err = run(dtbs, [path], capsys=capsys)
    assert (status, err) == (0, [f"{path}: warning: truncated: its gzip stream ends early"])
    s = the_smmu(doc)
    assert (s["log_dt_coherent"], s["hw_coherent"], s["finding"]) == (True, None, "unknown")


# -- LAVA records -----------------------------------------------------------------------------

def lava(lines):
    return "".join('- {"dt": "2026-12-07T03:12:44.%06d", "lvl": "target", "msg": %s}\n'
                   % (k, json.dumps(line)) for k, line in enumerate(lines))


def test_a_lava_records_message_is_its_json_string(dtbs, tmp_path, capsys):
    """The console line is a JSON string: its escapes (the model's quotes, the
    message's tab) are read as the kernel printed them."""
    lines = bootlogs.boot("7.2", 'Acme EVK "Pro"', [("arm-smmu", "5000000.iommu", True, True)])
    path = bootlogs.write(tmp_path / "lava.yaml", lava(lines))
    status, doc, err = run(dtbs, [path], capsys=capsys)
    assert (status, err) == (0, [])
    (log,) = doc["logs"]
    assert (log["model"], log["boards"]) == ('Acme EVK "Pro"', ["quote-evk.dtb"])
    assert the_smmu(doc, "5000000.iommu")["hw_coherent"] is True


def test_a_plain_console_after_lava_records_is_read_as_plain(dtbs, tmp_path, capsys):
    """A file holding LAVA's records of one boot and then the raw console of
    the next: each line is read in its own form."""
    first = bootlogs.boot("7.2", "Acme EVK", [("arm-smmu", "15000000.iommu", False, False)])
    second = bootlogs.boot("7.2", 'Acme EVK "Pro"', [("arm-smmu", "5000000.iommu", False,
                                                      True)])
    path = bootlogs.write(tmp_path / "both.log", lava(first) + bootlogs.dmesg(second))
    status, doc, err = run(dtbs, [path], capsys=capsys)
    assert (status, err) == (0, [])
    assert [(log["boot"], log["model"], log["smmus"][0]["hw_coherent"]) for log in
            doc["logs"]] == [(1, "Acme EVK", False), (2, 'Acme EVK "Pro"', True)]


# -- the document's fields (docs/bootlog.md) ---------------------------------------------

def test_the_json_document_has_the_fields_docs_bootlog_md_lists(dtbs, tmp_path, capsys):
    path = log_file(tmp_path, bootlogs.boot("6.12", "Acme EVK", [
        ("arm-smmu", "15000000.iommu", False, True),
        ("arm-smmu-v3", "2b400000.iommu", False, True)]))
    status, doc, err = run(dtbs, [path], capsys=capsys)
    assert (status, err) == (0, [])
    assert list(doc) == ["schema", "tool", "kind", "corpus", "corpus_version", "logs", "socs"]
    assert (doc["schema"], doc["tool"], doc["kind"], doc["corpus"], doc["corpus_version"]) == \
        (1, "dtb-audit", "bootlog", f"DTBs in {dtbs}", None)
    (log,) = doc["logs"]
    assert log == {"log": str(path), "boot": 1, "model": "Acme EVK", "kernel": "6.12.117-arm64",
                   "version": "6.12.117", "boards": ["acme-evk.dtb"], "soc": "acme,soc",
                   "smmus": log["smmus"]}
    assert log["smmus"] == [
        {"device": "15000000.iommu", "driver": "arm-smmu", "node": "/soc@0/iommu@15000000",
         "label": "apps_smmu", "dt_coherent": False, "log_dt_coherent": False,
         "hw_coherent": True, "finding": "dt-lacks-coherent", "note": None},
        {"device": "2b400000.iommu", "driver": "arm-smmu-v3", "node": "/soc@0/iommu@2b400000",
         "label": "smmu3", "dt_coherent": True, "log_dt_coherent": False, "hw_coherent": True,
         "finding": "agree", "note": "the log's kernel booted a DT that says not coherent"}]
    assert doc["socs"] == [
        {"soc": "acme,soc", "node": "/soc@0/iommu@15000000", "device": "15000000.iommu",
         "label": "apps_smmu", "dt_coherent": False, "logs": 1, "boards": ["acme-evk.dtb"],
         "kernels": ["6.12.117-arm64"],
         "register": {"coherent": {"logs": 1, "boards": ["acme-evk.dtb"]}},
         "findings": {"dt-lacks-coherent": 1}},
        {"soc": "acme,soc", "node": "/soc@0/iommu@2b400000", "device": "2b400000.iommu",
         "label": "smmu3", "dt_coherent": True, "logs": 1, "boards": ["acme-evk.dtb"],
         "kernels": ["6.12.117-arm64"],
         "register": {"coherent": {"logs": 1, "boards": ["acme-evk.dtb"]}},
         "findings": {"agree": 1}}]



def test_boards_of_one_model_whose_dts_differ_are_named(dtbs, tmp_path, capsys):
    path = log_file(tmp_path, bootlogs.boot("6.12", "Twin EVK", [
        ("arm-smmu", "5000000.iommu", False, True)]))
    status, doc, err = run(dtbs, [path], capsys=capsys)
    assert (status, err) == (0, [])
    (log,) = doc["logs"]
    assert log["boards"] == ["twin-a.dtb", "twin-b.dtb", "twin-c.dtb"]
    s = the_smmu(doc, "5000000.iommu")
    assert (s["dt_coherent"], s["finding"], s["note"]) == (
        False, "dt-lacks-coherent", "differs on twin-b.dtb, twin-c.dtb")


def test_the_version_of_a_kernel_not_built_by_debian_is_its_release(dtbs, tmp_path, capsys):
    lines = [line if not line.startswith("Linux version") else
             "Linux version 6.12.3-rc1-next (me@host) (gcc (GCC) 14.2.0) #7 SMP PREEMPT "
             "Tue Dec  1 10:00:00 UTC 2026" for line in bootlogs.boot("6.12", "Acme EVK", [])]
    odd = [line if not line.startswith("Linux version") else "Linux version custom-kernel"
           for line in bootlogs.boot("6.12", "Acme EVK", [])]
    status, doc, err = run(dtbs, [log_file(tmp_path, lines, name="a.log"),
                                  log_file(tmp_path, odd, name="b.log")], capsys=capsys)
    assert [(log["kernel"], log["version"]) for log in doc["logs"]] == [
        ("6.12.3-rc1-next", "6.12.3"), ("custom-kernel", None)]


def test_a_sweep_with_boot_logs_tells_each_bad_log_in_one_line(dtbs, tmp_path, capsys):
    logs = tmp_path / "logs"
    logs.mkdir()
    bootlogs.write(logs / "empty.log", "")
    log_file(logs, bootlogs.boot("6.12", "Acme EVK", [("arm-smmu", "15000000.iommu", False,
                                                       True)]), name="good.log")
    status = main(["sweep", str(dtbs), "--boot-logs", str(logs), "--format", "json"])
    out, err = capsys.readouterr()
    assert status in (0, 1)
    assert err.splitlines().count(f"{logs / 'empty.log'}: error: empty log") == 1
    assert json.loads(out)["tool"] == "dtb-audit"
