"""A tree extracted from a tarball (or Debian's package) keeps, beyond the
DT build's inputs, MAINTAINERS and scripts/get_maintainer.pl: `patch`
runs them to address its mails (issue 18, item 4). A tree extracted before
they were kept gets them from its tarball once; a tarball without them
(not a whole kernel's) is still read by the fast way."""
import os
import tarfile

import pytest

from corpus import sources
from corpus.build import build_corpus

MAINTAINERS = "THE REST\nL:\tlinux-kernel@vger.kernel.org\nS:\tBuried alive in reporters\n"
SCRIPT = "#!/usr/bin/env perl\nprint \"linux-kernel\\@vger.kernel.org\\n\";\n"


def _tarball(tree, path, with_files=True):
    if with_files:
        (tree / "MAINTAINERS").write_text(MAINTAINERS)
        (tree / "scripts/get_maintainer.pl").write_text(SCRIPT)
        (tree / "scripts/get_maintainer.pl").chmod(0o755)
    (tree / "scripts/checkpatch.pl").write_text("# not kept\n")
    # Every kernel has include/uapi; GNU tar fails on a pattern that finds nothing.
    (tree / "include/uapi/linux").mkdir(parents=True, exist_ok=True)
    (tree / "include/uapi/linux/const.h").write_text("/* uapi */\n")
    with tarfile.open(path, "w:gz") as tar:
        tar.add(tree, arcname="linux-6.12.0-test")
    return path


@pytest.fixture(params=["gnu-tar", "python-tarfile"])
def extractor(request, monkeypatch):
    """Each way of reading a tarball, alone: the other one fails the test if used."""
    def unused(*args, **kwargs):
        raise AssertionError("the other way of reading the tarball was taken")
    if request.param == "gnu-tar":
        monkeypatch.setattr(sources, "_extract_with_python", unused)
    else:
        monkeypatch.setattr(sources, "_extract_with_gnu_tar", lambda *a, **k: False)
    return request.param


def test_extraction_keeps_maintainers_and_get_maintainer(small_tree, tmp_path, extractor):
    tarball = _tarball(small_tree, tmp_path / "linux-6.12.0-test.tar.gz")
    tree = build_corpus(tarball=tarball, select=["acme/acme-a.dtb"]).kernel_dir
    assert (tree / "MAINTAINERS").read_text() == MAINTAINERS
    assert (tree / "scripts/get_maintainer.pl").read_text() == SCRIPT
    assert (tree / "scripts/get_maintainer.pl").stat().st_mode & 0o111
    assert not (tree / "scripts/checkpatch.pl").exists()


def test_tarball_without_them_is_read_all_the_same(small_tree, tmp_path, extractor):
    tarball = _tarball(small_tree, tmp_path / "linux-6.12.0-test.tar.gz", with_files=False)
    corpus = build_corpus(tarball=tarball, select=["acme/acme-a.dtb"])
    assert corpus.failed == 0 and not (corpus.kernel_dir / "MAINTAINERS").exists()


def test_tree_extracted_before_gets_them_once(small_tree, tmp_path, extractor, monkeypatch):
    tarball = _tarball(small_tree, tmp_path / "linux-6.12.0-test.tar.gz")
    tree = build_corpus(tarball=tarball, select=["acme/acme-a.dtb"]).kernel_dir
    # As an older dtb-audit left it: the DT inputs only.
    for rel in ("MAINTAINERS", "scripts/get_maintainer.pl", ".maintainer-files"):
        (tree / rel).unlink()
    again = build_corpus(tarball=tarball, select=["acme/acme-a.dtb"])
    assert again.kernel_dir == tree and again.reused == 1
    assert (tree / "MAINTAINERS").read_text() == MAINTAINERS
    assert (tree / "scripts/get_maintainer.pl").read_text() == SCRIPT
    # Once: the tarball is not read again.
    monkeypatch.setattr(sources, "_extract_with_gnu_tar", None)
    monkeypatch.setattr(sources, "_extract_with_python", None)
    (tree / "MAINTAINERS").unlink()
    assert build_corpus(tarball=tarball, select=["acme/acme-a.dtb"]).kernel_dir == tree


def test_tree_extracted_before_still_serves_when_its_tarball_cannot_be_read(
        small_tree, tmp_path, capsys):
    tarball = _tarball(small_tree, tmp_path / "linux-6.12.0-test.tar.gz")
    tree = build_corpus(tarball=tarball, select=["acme/acme-a.dtb"]).kernel_dir
    for rel in ("MAINTAINERS", "scripts/get_maintainer.pl", ".maintainer-files"):
        (tree / rel).unlink()
    stat = tarball.stat()
    tarball.write_bytes(b"\x1f\x8b" + b"\0" * (stat.st_size - 2))   # damaged, same key
    os.utime(tarball, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    capsys.readouterr()
    again = build_corpus(tarball=tarball, select=["acme/acme-a.dtb"])
    assert again.kernel_dir == tree and again.reused == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{tarball.resolve()}: warning: cannot add MAINTAINERS and "
                           f"scripts/get_maintainer.pl to {tree}: ")
