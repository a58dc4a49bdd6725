"""Building a corpus (corpus/build.py, corpus/sources.py, the CLI) on small
trees the tests write: counts, the cache and what invalidates it, atomic
writes, the error path, sources, source positions."""

import json
import os
import re
import shutil
import subprocess
import tarfile

import pytest

from auditor.cli import main
from corpus import compile as corpus_compile
from corpus import sources
from corpus.build import MANIFEST, build_corpus, open_corpus, source_positions
from corpus import debian
from corpus.errors import UserError
from tests.conftest import SMALL_TREE

ALL = {"acme/acme-a.dtb", "acme/acme-b.dtb", "acme/acme-a-extra.dtbo", "acme/acme-a-more.dtbo",
       "acme/acme-a-third.dtbo", "acme/acme-a-plus.dtb", "acme/acme-a-plus-third.dtb",
       "beta/beta-1.dtb", "beta/beta-ov.dtbo", "beta/beta-unlisted.dtb"}


def fdtget(dtb, node, prop):
    """A property as the system's fdtget reads it, None when absent."""
    proc = subprocess.run(["fdtget", "-t", "s", str(dtb), node, prop], capture_output=True,
                          text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def mtimes(root):
    return {dtb: (root / dtb).stat().st_mtime_ns for dtb in ALL}


def touch(path):
    """A new modification time, as an edit gives (even within one clock tick).

    Set back, not forward: a time after the build's start is racy, and a
    racy stamp is never trusted (the build would be redone every time).
    """
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 1_000_000_000))


def test_builds_every_kind(small_tree, tmp_path):
    corpus = build_corpus(kernel=small_tree, out=tmp_path / "out")
    assert {e.dtb for e in corpus.entries} == ALL
    assert [e.error for e in corpus.entries] == [None] * len(ALL)
    assert (corpus.built, corpus.failed, corpus.reused) == (len(ALL), 0, 0)
    assert corpus.kernel_dir == small_tree.resolve()
    assert corpus.identity.startswith("linux-6.12.0-test (")
    assert {e.dtb for e in corpus.boards} == {
        "acme/acme-a.dtb", "acme/acme-b.dtb", "acme/acme-a-plus.dtb",
        "acme/acme-a-plus-third.dtb", "beta/beta-1.dtb", "beta/beta-unlisted.dtb"}
    root = corpus.root
    assert fdtget(root / "acme/acme-a.dtb", "/soc/iommu@1000", "reg") is not None
    # the base got -@, so the overlay could find `smmu`; the nested composite has all three
    third = root / "acme/acme-a-plus-third.dtb"
    assert fdtget(third, "/soc/iommu@1000", "acme,extra") == ""
    assert fdtget(third, "/soc", "acme,more") == ""
    assert fdtget(third, "/", "acme,third") == ""
    assert fdtget(root / "acme/acme-a.dtb", "/soc/iommu@1000", "acme,extra") is None
    # the per-folder -@ of beta/Makefile
    assert fdtget(root / "beta/beta-1.dtb", "/__symbols__", "smmu") == "/soc/iommu@1000"
    assert fdtget(root / "acme/acme-b.dtb", "/__symbols__", "smmu") is None


def test_second_run_reuses_everything(small_tree, tmp_path):
    first = build_corpus(kernel=small_tree, out=tmp_path / "out")
    before = mtimes(first.root)
    second = build_corpus(kernel=small_tree, out=tmp_path / "out")
    assert (second.built, second.failed, second.reused) == (0, 0, len(ALL))
    assert mtimes(second.root) == before


def test_default_output_is_in_the_cache(small_tree, isolated_cache):
    corpus = build_corpus(kernel=small_tree)
    assert corpus.root.is_relative_to(isolated_cache / "dtbs")
    assert build_corpus(kernel=small_tree).root == corpus.root


def test_touched_dtsi_rebuilds_only_its_boards(small_tree, tmp_path):
    corpus = build_corpus(kernel=small_tree, out=tmp_path / "out")
    before = mtimes(corpus.root)
    touch(small_tree / "arch/arm64/boot/dts/acme/acme.dtsi")
    again = build_corpus(kernel=small_tree, out=tmp_path / "out")
    after = mtimes(again.root)
    changed = {dtb for dtb in ALL if after[dtb] != before[dtb]}
    # beta-1 includes it through include-prefixes; composites follow their base
    assert changed == {"acme/acme-a.dtb", "acme/acme-b.dtb", "beta/beta-1.dtb",
                       "acme/acme-a-plus.dtb", "acme/acme-a-plus-third.dtb"}
    assert (again.built, again.reused) == (5, len(ALL) - 5)


def test_touched_header_and_overlay(small_tree, tmp_path):
    build_corpus(kernel=small_tree, out=tmp_path / "out")
    touch(small_tree / "include/dt-bindings/acme.h")
    assert build_corpus(kernel=small_tree, out=tmp_path / "out").built == 5
    touch(small_tree / "arch/arm64/boot/dts/acme/acme-a-third.dtso")
    again = build_corpus(kernel=small_tree, out=tmp_path / "out")
    assert again.built == 2   # the overlay and the one composite using it


def test_changed_flags_rebuild_that_target(small_tree, tmp_path):
    build_corpus(kernel=small_tree, out=tmp_path / "out")
    makefile = small_tree / "arch/arm64/boot/dts/acme/Makefile"
    makefile.write_text(makefile.read_text() + "DTC_FLAGS_acme-b += -Wno-avoid_default_addr_size\n")
    again = build_corpus(kernel=small_tree, out=tmp_path / "out")
    assert again.built == 1


def test_broken_dts_is_reported_and_the_rest_builds(small_tree, tmp_path, capsys):
    broken = small_tree / "arch/arm64/boot/dts/acme/acme-b.dts"
    broken.write_text(broken.read_text() + "\n/ { oops = <1 ;\n")
    missing = small_tree / "arch/arm64/boot/dts/beta/beta-unlisted.dts"
    missing.write_text('#include "no-such.dtsi"\n' + missing.read_text())
    status = main(["corpus", "build", "--kernel", str(small_tree), "--out", str(tmp_path / "out")])
    assert status == 1
    err = capsys.readouterr().err.splitlines()
    src = "arch/arm64/boot/dts"
    # GNU style, the file, then the compiler's first error line (dtc, then cpp)
    dtc_error = re.compile(rf"{src}/acme/acme-b.dts: error: {src}/acme/acme-b.dts:13\.\d+-\d+ "
                           rf"syntax error$")
    assert [line for line in err if dtc_error.match(line)]
    assert (f"{src}/beta/beta-unlisted.dts: error: {src}/beta/beta-unlisted.dts:1:10: "
            f"fatal error: no-such.dtsi: No such file or directory") in err
    assert "built 8, failed 2, reused 0" in err[-1]
    corpus = open_corpus(tmp_path / "out")
    errors = {e.dtb: e.error for e in corpus.entries if e.error}
    assert set(errors) == {"acme/acme-b.dtb", "beta/beta-unlisted.dtb"}
    assert not (tmp_path / "out/acme/acme-b.dtb").exists()
    # a failure is tried again; once fixed it builds and nothing else does
    broken.write_text(SMALL_TREE["arch/arm64/boot/dts/acme/acme-b.dts"])
    again = build_corpus(kernel=small_tree, out=tmp_path / "out")
    assert (again.built, again.failed, again.reused) == (1, 1, 8)


def test_failed_base_fails_its_composites(small_tree, tmp_path, capsys):
    base = small_tree / "arch/arm64/boot/dts/acme/acme-a.dts"
    base.write_text(base.read_text().replace("/ {", "/ {{", 1))
    corpus = build_corpus(kernel=small_tree, out=tmp_path / "out")
    errors = {e.dtb: e.error for e in corpus.entries if e.error}
    assert errors["acme/acme-a-plus.dtb"] == "acme/acme-a.dtb did not build"
    assert errors["acme/acme-a-plus-third.dtb"] == "acme/acme-a-plus.dtb did not build"
    assert corpus.failed == 3


def test_interrupted_build_is_finished_by_the_next(small_tree, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real_compile = corpus_compile.compile_one
    calls, finished = [], []

    def compile_then_interrupt(*args):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        record = real_compile(*args)
        finished.append(args[4].dtb)
        return record

    monkeypatch.setattr(corpus_compile, "compile_one", compile_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        build_corpus(kernel=small_tree, out=out, jobs=1)
    monkeypatch.setattr(corpus_compile, "compile_one", real_compile)
    manifest = json.loads((out / MANIFEST).read_text())
    records = manifest["records"]
    # What finished before Ctrl-C is recorded (the one running then too), and no more.
    assert len(finished) >= 2 and set(records) == set(finished)
    assert manifest["complete"] is False and manifest["tried"] == len(finished)
    # A half-written DTB of a killed dtc, and one with no record: neither is trusted.
    (out / "acme/.acme-b.dtb.tmp-999999999").write_bytes(b"\xd0\x0d")
    unrecorded = sorted(ALL - set(records) - {"acme/acme-a-plus.dtb", "acme/acme-a-plus-third.dtb"})
    (out / unrecorded[0]).parent.mkdir(parents=True, exist_ok=True)
    (out / unrecorded[0]).write_bytes(b"\xd0\x0d\xfe")
    again = build_corpus(kernel=small_tree, out=out)
    assert (again.built, again.failed, again.reused) == (len(ALL) - len(records), 0, len(records))
    assert not (out / "acme/.acme-b.dtb.tmp-999999999").exists()
    assert fdtget(out / unrecorded[0], "/", "compatible") is not None or \
        unrecorded[0].endswith(".dtbo")


def test_select_builds_selected_and_what_composites_need(small_tree, tmp_path):
    corpus = build_corpus(kernel=small_tree, out=tmp_path / "out", select=["acme/*-third.dtb"])
    assert {e.dtb for e in corpus.entries} == {
        "acme/acme-a-plus-third.dtb", "acme/acme-a-plus.dtb", "acme/acme-a.dtb",
        "acme/acme-a-extra.dtbo", "acme/acme-a-more.dtbo", "acme/acme-a-third.dtbo"}
    assert not (tmp_path / "out/beta").exists()
    # a later full build reuses what the selective one made
    full = build_corpus(kernel=small_tree, out=tmp_path / "out")
    assert (full.built, full.reused) == (4, 6)
    with pytest.raises(UserError, match="no DTB matches gamma/"):
        build_corpus(kernel=small_tree, out=tmp_path / "out", select=["gamma/*"])


def test_removed_dts_leaves_the_corpus(small_tree, tmp_path):
    build_corpus(kernel=small_tree, out=tmp_path / "out")
    (small_tree / "arch/arm64/boot/dts/beta/beta-unlisted.dts").unlink()
    corpus = build_corpus(kernel=small_tree, out=tmp_path / "out")
    assert "beta/beta-unlisted.dtb" not in {e.dtb for e in corpus.entries}
    assert not (tmp_path / "out/beta/beta-unlisted.dtb").exists()


# -- sources -------------------------------------------------------------------

@pytest.mark.parametrize("gnu_tar", [True, False], ids=["gnu-tar", "python-tarfile"])
def test_tarball_reads_only_what_the_build_needs(small_tree, tmp_path, isolated_cache,
                                                 monkeypatch, gnu_tar):
    if not gnu_tar:
        monkeypatch.setattr(sources, "_extract_with_gnu_tar", lambda tarball, work: False)
    (small_tree / "drivers").mkdir()
    (small_tree / "drivers/big.c").write_text("int x;\n")
    tarball = tmp_path / "linux-6.12.0-test.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(small_tree, arcname="linux-6.12.0-test")
    corpus = build_corpus(tarball=tarball)
    assert {e.dtb for e in corpus.entries} == ALL and corpus.failed == 0
    tree = corpus.kernel_dir
    assert tree.is_relative_to(isolated_cache / "trees")
    assert not (tree / "drivers").exists()
    assert (tree / "scripts/dtc/include-prefixes/arm64").is_symlink()
    assert corpus.identity == f"linux-6.12.0-test ({tarball})"
    # the second time, the extracted tree is reused (the tarball is not read)
    tarball_mtime = tarball.stat().st_mtime_ns
    again = build_corpus(tarball=tarball)
    assert again.kernel_dir == tree and again.reused == len(ALL)
    assert tarball.stat().st_mtime_ns == tarball_mtime


def _linux_source_deb(tree, folder, compression):
    """Debian's linux-source-6.12 package as dpkg-deb builds it: the tree as
    usr/src/linux-source-6.12.tar.xz, the data member compressed so."""
    pkg = folder / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN/control").write_text(
        "Package: linux-source-6.12\nVersion: 6.12.0-1\nArchitecture: all\n"
        "Maintainer: T <t@example.org>\nDescription: the kernel's sources\n")
    (pkg / "usr/src").mkdir(parents=True)
    with tarfile.open(pkg / "usr/src/linux-source-6.12.tar.xz", "w:xz") as tar:
        tar.add(tree, arcname="linux-source-6.12")
    deb = folder / "linux-source-6.12_6.12.0-1_all.deb"
    subprocess.run(["dpkg-deb", f"-Z{compression}", "--root-owner-group", "--build", str(pkg),
                    str(deb)], check=True, capture_output=True)
    return deb


@pytest.mark.skipif(not shutil.which("dpkg-deb"), reason="needs dpkg-deb")
@pytest.mark.parametrize("compression", ["xz", "zstd", "none"])
def test_a_debian_package_is_read_whatever_its_compression(small_tree, tmp_path, isolated_cache,
                                                           monkeypatch, compression):
    """Debian's packages hold data.tar.xz, Ubuntu's data.tar.zst, dpkg-deb -Znone a
    plain data.tar: the kernel tarball under usr/src is read out of each."""
    deb = _linux_source_deb(small_tree, tmp_path, compression)
    monkeypatch.setattr(debian, "fetch_debian", lambda spec: deb)
    corpus = build_corpus(debian="linux-source-6.12")
    assert {e.dtb for e in corpus.entries} == ALL and corpus.failed == 0
    assert corpus.identity == "linux-6.12.0-test (debian linux-source-6.12)"


def test_a_file_that_is_no_debian_package_is_one_line(tmp_path, isolated_cache, monkeypatch,
                                                      capsys):
    deb = tmp_path / "linux-source-6.12_6.12.0-1_all.deb"
    deb.write_bytes(b"!<arch>\n")           # an ar archive with nothing in it
    monkeypatch.setattr(debian, "fetch_debian", lambda spec: deb)
    assert main(["corpus", "build", "--debian", "linux-source-6.12"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{deb}: error: not a Debian package (")


def test_a_source_that_cannot_be_used_is_a_user_error_naming_it(tmp_path):
    """What the user got wrong carries the path and the message apart
    (UserError), printed as one line PATH: error: MESSAGE."""
    missing = tmp_path / "linux.tar.xz"
    with pytest.raises(UserError) as caught:
        build_corpus(tarball=missing)
    assert (caught.value.path, caught.value.message) == (str(missing), "no such file")
    assert caught.value.line() == f"{missing}: error: no such file"
    with pytest.raises(UserError) as caught:
        build_corpus(kernel=tmp_path, jobs=0)
    assert (caught.value.path, caught.value.line()) == (None, "dtb-audit: error: -j: must be at least 1")


def test_bad_tarball(tmp_path):
    bad = tmp_path / "linux.tar.xz"
    bad.write_bytes(b"not xz at all")
    with pytest.raises(UserError, match=f"{bad}: error: "):
        build_corpus(tarball=bad)


def test_dtb_folder_as_it_is(small_tree, tmp_path):
    built = build_corpus(kernel=small_tree, out=tmp_path / "out")
    plain = tmp_path / "plain"
    for dtb in ("acme/acme-a.dtb", "beta/beta-ov.dtbo"):
        (plain / dtb).parent.mkdir(parents=True, exist_ok=True)
        (plain / dtb).write_bytes((built.root / dtb).read_bytes())
    corpus = build_corpus(dtbs=plain)
    assert corpus.kernel_dir is None
    assert [(e.dtb, e.kind, e.source) for e in corpus.entries] == [
        ("acme/acme-a.dtb", "board", None), ("beta/beta-ov.dtbo", "overlay", None)]
    # with the manifest, kinds and sources come back
    reopened = open_corpus(built.root)
    assert reopened.kernel_dir == small_tree.resolve()
    assert reopened.entry("acme/acme-a-plus.dtb").kind == "composite"
    single = open_corpus(built.root / "acme/acme-b.dtb")
    assert single.root == built.root and single.kernel_dir == small_tree.resolve()
    assert [(e.dtb, e.source) for e in single.entries] == [
        ("acme/acme-b.dtb", "arch/arm64/boot/dts/acme/acme-b.dts")]
    lone = open_corpus(plain / "acme/acme-a.dtb")
    assert lone.root == plain / "acme" and [e.dtb for e in lone.entries] == ["acme-a.dtb"]


def test_open_corpus_builds_a_kernel_tree(small_tree):
    corpus = open_corpus(small_tree)
    assert corpus.kernel_dir == small_tree.resolve() and len(corpus.entries) == len(ALL)


def test_open_corpus_rejects_other_things(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(UserError, match="notes.txt: error: "):
        open_corpus(other)
    with pytest.raises(UserError, match="no .dtb files"):
        open_corpus(tmp_path)


# -- tools -----------------------------------------------------------------------

def test_missing_cpp_is_one_line_naming_the_package(small_tree, tmp_path, monkeypatch, capsys):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    status = main(["corpus", "build", "--kernel", str(small_tree), "--out", str(tmp_path / "o")])
    assert status == 2
    assert capsys.readouterr().err == (
        "dtb-audit: error: cpp not found: install it with `apt-get install cpp`\n")


def test_debian_without_apt_get(tmp_path, monkeypatch, capsys, isolated_cache):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    status = main(["corpus", "build", "--debian", "linux-source-6.12"])
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt-get" in err and "--tarball" in err


def test_two_sources_is_a_usage_error(small_tree, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["corpus", "build", "--kernel", str(small_tree), "--dtbs", str(tmp_path)])
    assert exit_.value.code == 2


# -- source positions ------------------------------------------------------------

def line_of(path, text):
    return path.read_text().splitlines().index(text) + 1


def test_source_positions_point_at_the_dtsi(small_tree, tmp_path):
    corpus = build_corpus(kernel=small_tree, out=tmp_path / "out")
    dtsi = small_tree / "arch/arm64/boot/dts/acme/acme.dtsi"
    smmu_line = line_of(dtsi, "\t\tsmmu: iommu@1000 {")
    where = ("arch/arm64/boot/dts/acme/acme.dtsi", smmu_line)
    # acme-b overrides &smmu in the board file: still the .dtsi line
    assert source_positions(corpus, corpus.entry("acme/acme-b.dtb"))["/soc/iommu@1000"] == where
    # reached through scripts/dtc/include-prefixes/arm64: named by where it is
    assert source_positions(corpus, corpus.entry("beta/beta-1.dtb"))["/soc/iommu@1000"] == where
    # a composite answers for its base
    positions = source_positions(corpus, corpus.entry("acme/acme-a-plus-third.dtb"))
    assert positions["/soc"] == ("arch/arm64/boot/dts/acme/acme.dtsi", line_of(dtsi, "\tsoc: soc {"))
    cached = list((corpus.root / ".positions").rglob("*.json"))
    assert {p.name for p in cached} == {"acme-b.dtb.json", "beta-1.dtb.json", "acme-a.dtb.json"}


def test_source_positions_follow_an_edit(small_tree, tmp_path):
    corpus = build_corpus(kernel=small_tree, out=tmp_path / "out")
    entry = corpus.entry("acme/acme-b.dtb")
    first = source_positions(corpus, entry)["/soc/iommu@1000"]
    dtsi = small_tree / "arch/arm64/boot/dts/acme/acme.dtsi"
    dtsi.write_text("/* a new first line */\n" + dtsi.read_text())
    corpus = build_corpus(kernel=small_tree, out=tmp_path / "out")
    assert source_positions(corpus, entry)["/soc/iommu@1000"] == (first[0], first[1] + 1)


def test_source_positions_need_a_source(small_tree, tmp_path):
    built = build_corpus(kernel=small_tree, out=tmp_path / "out")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.dtb").write_bytes((built.root / "acme/acme-a.dtb").read_bytes())
    corpus = build_corpus(dtbs=plain)
    with pytest.raises(UserError, match="no kernel source"):
        source_positions(corpus, corpus.entries[0])


def test_a_tree_with_no_dtb_says_so(small_tree, tmp_path):
    """No vendor folder holds a DTB (a tree whose DT folders are elsewhere,
    or empty): one line, not a traceback."""
    dts = small_tree / "arch/arm64/boot/dts"
    for vendor in [p for p in dts.iterdir() if p.is_dir()]:
        shutil.rmtree(vendor)
    with pytest.raises(UserError) as raised:
        build_corpus(kernel=small_tree, out=tmp_path / "out")
    assert str(raised.value) == f"{small_tree.resolve()}: error: no DTB to build " \
                                "(arch/arm64/boot/dts has none)"
