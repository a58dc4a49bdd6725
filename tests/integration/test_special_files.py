"""A file the user names that is not a regular file (a FIFO, which would
wait for a writer forever; /dev/zero, which never ends; a link to either)
is never read as one: one line names it and what it is, and the command
exits without waiting.  Each command runs in a process of its own, with a
time limit, so that a regression fails instead of hanging the suite."""
import os
import subprocess
import sys

import pytest

from testpaths import ROOT

LIMIT_S = 60


@pytest.fixture
def specials(tmp_path):
    fifo = tmp_path / "saved.json"
    os.mkfifo(fifo)
    link = tmp_path / "link.json"
    link.symlink_to("/dev/zero")
    return {"fifo": (fifo, "a FIFO"), "zero": (link, "a character device")}


def dtb_folder(tmp_path):
    from snippets import compile_dts
    dtbs = tmp_path / "dtbs"
    dtbs.mkdir()
    compile_dts(dtbs, "board", "")
    return dtbs


def dtb_audit(*argv, cwd):
    return subprocess.run([sys.executable, "-m", "auditor.cli", *map(str, argv)], cwd=cwd,
                          capture_output=True, text=True, timeout=LIMIT_S,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


@pytest.mark.parametrize("kind", ["fifo", "zero"])
@pytest.mark.parametrize("command", [
    ("site", "{out}", "--sweep", "{file}"),
    ("patch", "--sweep", "{file}", "-o", "{out}"),
    ("bootlog", "{file}", "--dtbs", "{dtbs}"),
])
def test_a_file_given_that_is_not_regular_is_one_line_unread(specials, tmp_path, kind, command):
    path, what = specials[kind]
    dtbs = dtb_folder(tmp_path)
    argv = [a.format(file=path, out=tmp_path / "out", dtbs=dtbs) for a in command]
    run = dtb_audit(*argv, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    first = run.stderr.splitlines()[0]
    assert first.startswith(f"{path}: error: ") and f"is {what}, not a regular file" in first
    assert "Traceback" not in run.stderr


def test_a_fifo_among_boot_logs_is_one_line_and_the_others_are_read(tmp_path):
    import bootlogs
    dtbs = dtb_folder(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    os.mkfifo(logs / "stuck.log")
    bootlogs.write(logs / "x86.log", bootlogs.dmesg(bootlogs.boot("6.12", None, [], x86=True)))
    run = dtb_audit("bootlog", logs, "--dtbs", dtbs, "--format", "json", cwd=tmp_path)
    said = sorted(line.split(": error: ")[0] for line in run.stderr.splitlines()
                  if ": error: " in line and line.startswith(str(logs)))
    assert said == [str(logs / "stuck.log"), str(logs / "x86.log")], run.stderr
    assert f"{logs / 'stuck.log'}: error: cannot read: stuck.log is a FIFO, not a regular " \
           f"file" in run.stderr.splitlines()
