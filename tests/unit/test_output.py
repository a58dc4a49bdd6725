"""auditor/output.py: a report appears whole or not at all, errors are one
line naming the file, and diagnostics on stderr never block or lose the
report (issue 9)."""
import errno
import io
import os
import stat
import sys

import pytest

from auditor import output
from auditor.output import OutputError, Stderr, write_report
from corpus.errors import UserError


def render(text):
    return lambda f: f.write(text)


def leftovers(folder, name):
    return sorted(n for n in os.listdir(folder) if n != name)


def test_new_report_whole_with_the_umask_mode(tmp_path):
    path = tmp_path / "report.json"
    umask = os.umask(0o027)
    try:
        assert write_report(path, render("{}\n")) is True
    finally:
        os.umask(umask)
    assert path.read_bytes() == b"{}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert leftovers(tmp_path, "report.json") == []


def test_replacing_keeps_the_mode_and_writes_newlines_as_given(tmp_path):
    path = tmp_path / "report.csv"
    path.write_text("old\n")
    path.chmod(0o600)
    write_report(str(path), render("a\r\nb\n"))
    assert path.read_bytes() == b"a\r\nb\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_text_is_utf8(tmp_path):
    path = tmp_path / "r.txt"
    write_report(path, render("SoC \u00e9\n"))
    assert path.read_bytes() == "SoC \u00e9\n".encode("utf-8")


def test_flushed_to_disk_before_the_rename(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    path.write_text("old\n")
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(output.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(output.os, "replace",
                        lambda a, b: (events.append(("replace", os.path.dirname(a))),
                                      real_replace(a, b)))
    write_report(path, render("new\n"))
    # The temporary file is beside the report: a rename within one file
    # system, then the folder flushed, so that the rename survives a crash.
    assert events == ["fsync", ("replace", str(tmp_path)), "fsync"]
    assert path.read_text() == "new\n"


@pytest.mark.parametrize("crash", [KeyboardInterrupt(), RuntimeError("bug"),
                                   OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))])
def test_a_crash_mid_write_leaves_the_old_report(tmp_path, crash):
    path = tmp_path / "report.json"
    path.write_text('{"old": true}\n')

    def half(f):
        f.write('{"new": ' + "x" * 100000)
        raise crash

    if isinstance(crash, OSError):
        with pytest.raises(OutputError) as why:
            write_report(path, half)
        assert str(why.value) == (f"{path}: error: cannot write the report: "
                                  f"{os.strerror(errno.ENOSPC)}")
    else:
        with pytest.raises(type(crash)):
            write_report(path, half)
    assert path.read_text() == '{"old": true}\n'
    assert leftovers(tmp_path, "report.json") == []


def test_missing_folder(tmp_path):
    path = tmp_path / "nowhere" / "report.json"
    with pytest.raises(OutputError) as why:
        write_report(path, render("x"))
    assert str(why.value) == (f"{path}: error: cannot write the report: "
                              f"no folder {tmp_path / 'nowhere'}")
    assert isinstance(why.value, UserError)         # caught once, at the top of the CLI
    assert not (tmp_path / "nowhere").exists()


def test_a_folder(tmp_path):
    with pytest.raises(OutputError) as why:
        write_report(tmp_path, render("x"))
    assert str(why.value) == f"{tmp_path}: error: cannot write the report: it is a folder"


def test_below_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "report.json"
    with pytest.raises(OutputError) as why:
        write_report(path, render("x"))
    assert str(why.value) == (f"{path}: error: cannot write the report: "
                              f"{os.strerror(errno.ENOTDIR)}")


def device(folder, name, minor):
    """A private copy of /dev/null (minor 3) or /dev/full (7): a mutant of
    write_report that took it for a regular file must replace this one,
    never the machine's."""
    path = folder / name
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("making a device node needs root")
    return path


def test_a_full_device(tmp_path):
    full = device(tmp_path, "full", 7)
    with pytest.raises(OutputError) as why:
        write_report(full, render("x" * 100000))
    assert str(why.value) == f"{full}: error: cannot write the report: {os.strerror(errno.ENOSPC)}"
    assert stat.S_ISCHR(full.stat().st_mode)


def test_special_files_are_written_in_place(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert write_report(fifo, render("through the fifo\n")) is True
        assert os.read(reader, 100) == b"through the fifo\n"
    finally:
        os.close(reader)
    assert leftovers(tmp_path, "fifo") == []
    null = device(tmp_path, "null", 3)
    assert write_report(null, render("gone\n")) is True
    assert stat.S_ISCHR(null.stat().st_mode)
    assert leftovers(tmp_path, "fifo") == ["null"]


def test_stdout(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buffer)
    assert write_report(None, render("to stdout\n")) is True
    assert buffer.getvalue() == "to stdout\n"


def test_stdout_whose_reader_went_away(monkeypatch):
    """`dtb-audit sweep | head`: nothing more to say there, and no complaint."""
    quieted = []
    monkeypatch.setattr(output, "_quiet_stdout", lambda: quieted.append(True))

    def gone(f):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")
    assert write_report(None, gone) is False
    assert quieted == [True]


def test_quieted_stdout_writes_to_dev_null(monkeypatch, tmp_path):
    """After a broken pipe, stdout's descriptor is /dev/null: Python's flush at
    exit finds a file it can write to, and nothing more reaches the old one."""
    with open(tmp_path / "stdout", "w") as f:
        monkeypatch.setattr(sys, "stdout", f)
        output._quiet_stdout()
        assert os.path.samestat(os.fstat(f.fileno()), os.stat(os.devnull))
        assert os.write(f.fileno(), b"more") == 4
    assert (tmp_path / "stdout").read_bytes() == b""


class Recorder:
    """A stream that records each write(), and fails as told."""

    def __init__(self, fail=None, after=0):
        self.writes, self.flushes, self.fail, self.after = [], 0, fail, after

    def write(self, text):
        if self.fail is not None and len(self.writes) >= self.after:
            raise self.fail
        self.writes.append(text)

    def flush(self):
        self.flushes += 1


def test_stderr_one_write_per_line():
    stream = Recorder()
    err = Stderr(stream)
    err.line("a.dtb: warning: one")
    err.line("b.dtb: error: two")
    assert stream.writes == ["a.dtb: warning: one\n", "b.dtb: error: two\n"]
    assert stream.flushes == 2 and not err.gone


@pytest.mark.parametrize("fail", [BrokenPipeError(errno.EPIPE, "Broken pipe"),
                                  ValueError("I/O operation on closed file"),
                                  OSError(errno.EIO, "Input/output error")])
def test_stderr_reader_gone_stops_the_lines_not_the_run(fail):
    stream = Recorder(fail, after=1)
    err = Stderr(stream)
    err.line("first")
    err.line("second")          # fails: the reader went away
    assert err.gone
    stream.fail = None
    err.line("third")           # not even tried
    assert stream.writes == ["first\n"]


def test_stderr_default_stream(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)
    Stderr().line("x")
    assert buffer.getvalue() == "x\n"


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0, 0o666)])
def test_the_umask_is_used_and_left_as_it_was(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_report(tmp_path / "r", render("x"))
        assert os.umask(umask) == umask
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r").stat().st_mode) == mode


def test_no_room_for_the_temporary_name(tmp_path):
    path = tmp_path / ("r" * 250)        # a legal name; its temporary's would not be
    with pytest.raises(OutputError) as why:
        write_report(path, render("x"))
    assert str(why.value) == (f"{path}: error: cannot write the report: "
                              f"{os.strerror(errno.ENAMETOOLONG)}")
    assert os.listdir(tmp_path) == []


# -- JSON written as it is made (issue 19, item 6) ---------------------------------------

# (a document, the keys written item by item)
DOCUMENTS = [
    ({}, ()),
    ({"a": [], "b": {}, "c": None, "d": [[], {}, [1, [2, {"e": ()}]]]}, ()),
    ({"tool": "dtb-audit", "links": [{"dtb": "x.dtb", "compatible": ["arm,smmu-v2"],
                                      "coherent": False, "line": 12, "ratio": 0.5}],
      "socs": [], "text": "caf\u00e9 \u2028 \"quoted\" \\ \x00\n", "big": 10 ** 30},
     ("links", "socs")),
    ({"links": [0, 1, 2], "nested": {"x": {"y": {"z": [True, False]}}}}, ("links",)),
]


@pytest.mark.parametrize("doc, streamed", DOCUMENTS, ids=range(len(DOCUMENTS)))
def test_dump_json_writes_what_json_dump_writes(doc, streamed):
    import json
    out = io.StringIO()
    output.dump_json({k: iter(v) if k in streamed else v for k, v in doc.items()}, out)
    assert out.getvalue() == json.dumps(doc, indent=1)


def test_dump_json_leaves_no_reference_cycles():
    """A sweep runs with the collector off (auditor/cli.py): writing its
    report must leave nothing that only the collector could free.  In a
    process of its own: other tests' threads make garbage meanwhile."""
    import subprocess
    code = ("import gc, io\n"
            "from auditor.output import dump_json\n"
            "doc = {'links': ({'dtb': f'{i}.dtb', 'compatible': ['a', 'b'], 'n': {'x': [i]}}\n"
            "                 for i in range(200)), 'socs': [{'boards': ['x']}]}\n"
            "gc.collect()\n"
            "gc.disable()\n"
            "dump_json(doc, io.StringIO())\n"
            "print(gc.collect())\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0"]


def test_dump_json_refuses_a_key_json_would_rename():
    with pytest.raises(TypeError):
        output.dump_json({"a": {1: "one"}}, io.StringIO())
