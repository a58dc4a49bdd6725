"""auditor.output.write_folder, each way it can fail: one line naming the
folder and what is wrong, the folder that was there left as it was, and
nothing left beside it (the `.NAME.*.new` it fills); and write_report's
text in UTF-8 whatever the locale says.
"""
import errno
import os
import subprocess
import sys
import tempfile

import pytest

from auditor.output import OutputError, write_folder
from testpaths import ROOT

MARKER = ".dtb-audit-site"


def site(text):
    """A render that writes a page saying `text` and the marker."""
    def render(folder):
        with open(os.path.join(folder, MARKER), "w") as f:
            f.write("ours\n")
        with open(os.path.join(folder, "index.html"), "w") as f:
            f.write(text)
    return render


def error_line(path, render):
    with pytest.raises(OutputError) as caught:
        write_folder(path, render, MARKER)
    return caught.value.line()


def test_a_new_folder_and_its_replacement(tmp_path):
    out = tmp_path / "out"
    write_folder(out, site("one"), MARKER)
    assert (out / "index.html").read_text() == "one"
    write_folder(str(out), site("two"), MARKER)
    assert (out / "index.html").read_text() == "two"
    assert os.listdir(tmp_path) == ["out"]


def test_an_empty_folder_is_taken(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    write_folder(out, site("one"), MARKER)
    assert sorted(os.listdir(out)) == [MARKER, "index.html"]


def test_a_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_folder("out", site("one"), MARKER)
    assert (tmp_path / "out" / "index.html").read_text() == "one"
    assert os.listdir(tmp_path) == ["out"]


def test_a_file_where_the_folder_should_be(tmp_path):
    path = tmp_path / "out"
    path.write_text("a report\n")
    assert error_line(path, site("x")) == f"{path}: error: cannot write the site: not a folder"
    assert path.read_text() == "a report\n" and os.listdir(tmp_path) == ["out"]


def test_a_link_to_a_folder_is_not_replaced(tmp_path):
    real = tmp_path / "real"
    write_folder(real, site("mine"), MARKER)
    link = tmp_path / "out"
    link.symlink_to(real)
    assert error_line(link, site("x")) == f"{link}: error: cannot write the site: not a folder"
    assert (real / "index.html").read_text() == "mine" and link.is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["out", "real"]


def test_no_parent_folder(tmp_path):
    path = tmp_path / "nowhere" / "out"
    assert error_line(path, site("x")) == (f"{path}: error: cannot write the site: "
                                           f"no folder {tmp_path / 'nowhere'}")
    assert os.listdir(tmp_path) == []


def test_no_room_for_the_new_folder(tmp_path, monkeypatch):
    def full(**how):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(tempfile, "mkdtemp", full)
    path = tmp_path / "out"
    assert error_line(path, site("x")) == (f"{path}: error: cannot write the site: "
                                           f"No space left on device")


@pytest.mark.parametrize("failure", [
    OSError(errno.EIO, "Input/output error"), OSError("no errno"), RuntimeError("a bug"),
    KeyboardInterrupt()])
def test_a_render_that_fails_leaves_the_old_site_and_nothing_beside(tmp_path, failure):
    out = tmp_path / "out"
    write_folder(out, site("old"), MARKER)

    def fails(folder):
        site("half")(folder)
        raise failure
    if isinstance(failure, OSError):
        message = failure.strerror or str(failure)
        assert error_line(out, fails) == f"{out}: error: cannot write the site: {message}"
    else:
        with pytest.raises(type(failure)):
            write_folder(out, fails, MARKER)
    assert (out / "index.html").read_text() == "old"
    assert os.listdir(tmp_path) == ["out"]


def test_a_render_that_forgets_the_marker_is_a_bug_and_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    write_folder(out, site("old"), MARKER)

    def unmarked(folder):
        with open(os.path.join(folder, "index.html"), "w") as f:
            f.write("new")
    with pytest.raises(AssertionError, match=MARKER):
        write_folder(out, unmarked, MARKER)
    assert (out / "index.html").read_text() == "old"
    assert os.listdir(tmp_path) == ["out"]


def test_a_failed_swap_leaves_the_old_site_and_nothing_beside(tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_folder(out, site("old"), MARKER)

    def refused(fresh, path):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
    monkeypatch.setattr("auditor.output.replace_folder", refused)
    assert error_line(out, site("new")) == (f"{out}: error: cannot write the site: "
                                            f"{os.strerror(errno.EXDEV)}")
    assert (out / "index.html").read_text() == "old"
    assert os.listdir(tmp_path) == ["out"]


def test_a_report_is_utf8_under_an_ascii_locale(tmp_path):
    """LC_ALL=C without Python's UTF-8 mode: open()'s default would be ASCII."""
    path = tmp_path / "report.txt"
    code = ("import sys; from auditor.output import write_report; "
            "write_report(sys.argv[1], lambda f: f.write('SoC \\u00e9 \\u2028\\n'))")
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0")
    done = subprocess.run([sys.executable, "-X", "utf8=0", "-c", code, str(path)], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert path.read_bytes() == "SoC \u00e9 \u2028\n".encode("utf-8")
