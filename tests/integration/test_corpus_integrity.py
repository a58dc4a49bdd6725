"""Nothing in a corpus folder is trusted unless verified (issue 9, corpus side):
racy timestamps, outputs changed after the build, a damaged manifest, the
"complete" marker and partial corpora, the source-positions cache, the
kernel version, temporaries of killed processes, bad options and names,
several PATHs as one corpus, and Debian suites (issue 8)."""

import json
import os
import subprocess
import sys

import pytest

from corpus import compile as corpus_compile
from corpus import debian
from corpus.build import MANIFEST, build_corpus, open_corpora, open_corpus, source_positions
from corpus.errors import UserError
from corpus.flat import flatten
from store.durable import remove_dead
from tests.conftest import SMALL_TREE, write_tree

N_TARGETS = 10           # every output of SMALL_TREE
DTSI = "arch/arm64/boot/dts/acme/acme.dtsi"


def outputs(root):
    """{dtb: bytes} of every output in a corpus folder."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*.dtb*")) if not p.name.startswith(".")}


def clean_build(tree, tmp_path, name="clean"):
    """The outputs of a build from nothing, in a folder of their own."""
    return outputs(build_corpus(kernel=tree, out=tmp_path / name).root)


def age(tree, seconds=10):
    """Set every file of a tree back in time, as an unpacked tarball is."""
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 10**9))


# -- racy timestamps ----------------------------------------------------------

def test_header_edited_while_building_is_not_trusted(small_tree, tmp_path, monkeypatch):
    # The .dtsi changes after cpp read it for acme-a and before the build
    # took its dependency stamps: the stamp then matches the new file while
    # the DTB holds the old one. It must be built again next time.
    age(small_tree)
    out = tmp_path / "out"
    dtsi = small_tree / DTSI
    real_depfile = corpus_compile._depfile
    edited = []

    def edit_after_cpp(path):
        if not edited and "acme-a.dtb" in path.name:
            dtsi.write_text(dtsi.read_text().replace("ranges;", "ranges;\n\t\tacme,edited;"))
            edited.append(path)
        return real_depfile(path)

    monkeypatch.setattr(corpus_compile, "_depfile", edit_after_cpp)
    build_corpus(kernel=small_tree, out=out, jobs=1)
    monkeypatch.setattr(corpus_compile, "_depfile", real_depfile)
    assert edited
    records = json.loads((out / MANIFEST).read_text())["records"]
    assert records["acme/acme-a.dtb"]["racy"] is True
    again = build_corpus(kernel=small_tree, out=out)
    assert "acme/acme-a.dtb" not in {e.dtb for e in again.entries if e.error}
    assert outputs(again.root) == clean_build(small_tree, tmp_path)
    # The edit is older than that second build: its stamps are trusted.
    third = build_corpus(kernel=small_tree, out=out)
    assert (third.built, third.reused) == (0, N_TARGETS)


def test_future_timestamp_is_never_trusted(small_tree, tmp_path):
    # A file dated after the build's start (a clock step, `touch -d`): its
    # stamp could match after a later edit within the same tick.
    age(small_tree)
    header = small_tree / "include/dt-bindings/acme.h"
    st = header.stat()
    os.utime(header, ns=(st.st_atime_ns, st.st_mtime_ns + 3600 * 10**9))
    out = tmp_path / "out"
    build_corpus(kernel=small_tree, out=out)
    assert build_corpus(kernel=small_tree, out=out).built == 5   # what includes it
    os.utime(header, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = build_corpus(kernel=small_tree, out=out)
    assert again.built == 5
    assert build_corpus(kernel=small_tree, out=out).built == 0


# -- outputs and the manifest are verified on reuse ------------------------------

def test_changed_outputs_are_built_again(small_tree, tmp_path, capsys):
    age(small_tree)
    corpus = build_corpus(kernel=small_tree, out=tmp_path / "out")
    root = corpus.root
    clean = outputs(root)
    other = (root / "acme/acme-b.dtb").read_bytes()
    damage = {
        "acme/acme-b.dtb": clean["acme/acme-b.dtb"][:-7],             # truncated
        "beta/beta-unlisted.dtb": b"",                                 # emptied
        "beta/beta-1.dtb": other,                                      # replaced
        # a composite whose parts did not change: its own bytes are checked
        "acme/acme-a-plus-third.dtb": bytes(len(clean["acme/acme-a-plus-third.dtb"])),
    }
    for dtb, data in damage.items():
        path = root / dtb
        st = path.stat()
        path.write_bytes(data)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the stamp cannot tell
    capsys.readouterr()
    again = build_corpus(kernel=small_tree, out=tmp_path / "out")
    warnings = sorted(capsys.readouterr().err.splitlines())
    size = {dtb: len(data) for dtb, data in clean.items()}
    assert warnings == sorted([
        f"{root}/acme/acme-b.dtb: warning: changed since it was built "
        f"({size['acme/acme-b.dtb'] - 7} bytes, {size['acme/acme-b.dtb']} when built); "
        f"building it again",
        f"{root}/beta/beta-unlisted.dtb: warning: changed since it was built (0 bytes, "
        f"{size['beta/beta-unlisted.dtb']} when built); building it again",
        f"{root}/beta/beta-1.dtb: warning: changed since it was built ("
        f"{len(other)} bytes, {size['beta/beta-1.dtb']} when built); building it again",
        f"{root}/acme/acme-a-plus-third.dtb: warning: changed since it was built (checksum); "
        f"building it again",
    ])
    assert again.built == 4 and outputs(root) == clean


def test_deleted_output_is_built_again(small_tree, tmp_path, capsys):
    age(small_tree)
    root = build_corpus(kernel=small_tree, out=tmp_path / "out").root
    clean = outputs(root)
    (root / "acme/acme-b.dtb").unlink()
    again = build_corpus(kernel=small_tree, out=tmp_path / "out")
    assert f"{root}/acme/acme-b.dtb: warning: missing since it was built; building it again" \
        in capsys.readouterr().err
    assert again.built == 1 and outputs(root) == clean


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "not-a-dict", "old-format"])
def test_damaged_manifest_builds_everything_again(small_tree, tmp_path, capsys, damage):
    age(small_tree)
    root = build_corpus(kernel=small_tree, out=tmp_path / "out").root
    clean = outputs(root)
    manifest = root / MANIFEST
    text = manifest.read_text()
    if damage == "flip":
        # one digit of one dependency stamp: valid JSON, a different meaning
        at = text.index('"deps"')
        at = next(i for i in range(at, len(text)) if text[i].isdigit())
        text = text[:at] + str((int(text[at]) + 1) % 10) + text[at + 1:]
    elif damage == "truncate":
        text = text[:len(text) // 2]
    elif damage == "empty":
        text = ""
    elif damage == "not-a-dict":
        text = "[]"
    else:
        data = json.loads(text)
        data["format"] = 1
        text = json.dumps(data)
    manifest.write_text(text)
    capsys.readouterr()
    again = build_corpus(kernel=small_tree, out=tmp_path / "out")
    err = capsys.readouterr().err.splitlines()
    expected = {"flip": "damaged manifest (checksum)", "truncate": "unreadable manifest (",
                "empty": "unreadable manifest (", "not-a-dict": "unreadable manifest (not a JSON",
                "old-format": "manifest of another dtb-audit version (format 1)"}[damage]
    assert len(err) == 1 and err[0].startswith(f"{manifest}: warning: {expected}")
    assert err[0].endswith("; building everything again")
    assert again.built == N_TARGETS and outputs(root) == clean
    # ... and opening a folder with such a manifest refuses it unless partial
    manifest.write_text(text)
    with pytest.raises(UserError, match=rf"^{root}: error: .*; run `dtb-audit corpus build` "
                                          rf"again, or sweep it with --partial$"):
        open_corpus(root)
    assert open_corpus(root, partial=True).partial


# -- complete, incomplete, partial ----------------------------------------------

def interrupt_after(monkeypatch, n):
    real = corpus_compile.compile_one
    calls = []

    def compile_then_interrupt(*args):
        calls.append(args)
        if len(calls) > n:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(corpus_compile, "compile_one", compile_then_interrupt)
    return lambda: monkeypatch.setattr(corpus_compile, "compile_one", real)


def test_incomplete_corpus_is_refused_unless_partial(small_tree, tmp_path, monkeypatch):
    out = tmp_path / "out"
    restore = interrupt_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        build_corpus(kernel=small_tree, out=out, jobs=1)
    restore()
    manifest = json.loads((out / MANIFEST).read_text())
    tried = manifest["tried"]
    assert manifest["complete"] is False and manifest["targets"] == N_TARGETS
    assert 3 <= tried < N_TARGETS and len(manifest["records"]) == tried
    with pytest.raises(UserError) as refused:
        open_corpus(out)
    assert str(refused.value) == (
        f"{out.resolve()}: error: incomplete corpus (the build was interrupted: {tried} of "
        f"{N_TARGETS} outputs); run `dtb-audit corpus build` again, or sweep it with --partial")
    with pytest.raises(UserError, match="incomplete corpus"):
        build_corpus(dtbs=out)
    with pytest.raises(UserError, match="incomplete corpus"):
        open_corpus(next(p for p in out.rglob("*.dtb*") if not p.name.startswith(".")))
    partial = open_corpus(out, partial=True)
    assert partial.partial and len(partial.entries) == tried
    # the next build resumes: what finished is reused, the rest is built
    again = build_corpus(kernel=small_tree, out=out)
    assert (again.reused, again.built) == (tried, N_TARGETS - tried)
    whole = open_corpus(out)
    assert not whole.partial and len(whole.entries) == N_TARGETS
    assert json.loads((out / MANIFEST).read_text())["complete"] is True


def test_failures_still_make_a_complete_corpus(small_tree, tmp_path):
    broken = small_tree / "arch/arm64/boot/dts/beta/beta-1.dts"
    broken.write_text(broken.read_text() + "\n/ { oops = <1 ;\n")
    corpus = build_corpus(kernel=small_tree, out=tmp_path / "out")
    assert corpus.failed == 1
    opened = open_corpus(tmp_path / "out")
    assert not opened.partial and opened.entry("beta/beta-1.dtb").error


def test_selective_build_is_complete_for_what_it_chose(small_tree, tmp_path):
    build_corpus(kernel=small_tree, out=tmp_path / "out", select=["beta/*"])
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert (manifest["complete"], manifest["targets"], manifest["tried"]) == (True, 3, 3)
    assert {e.dtb for e in open_corpus(tmp_path / "out").entries} == {
        "beta/beta-1.dtb", "beta/beta-ov.dtbo", "beta/beta-unlisted.dtb"}


def test_sigterm_takes_the_interrupt_path(small_tree, tmp_path, monkeypatch):
    # In the process itself: SIGTERM raises KeyboardInterrupt in the main
    # thread, so the manifest of what finished is written.
    import signal
    real = corpus_compile.compile_one
    calls = []

    def compile_then_terminate(*args):
        calls.append(args)
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args)

    monkeypatch.setattr(corpus_compile, "compile_one", compile_then_terminate)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        build_corpus(kernel=small_tree, out=tmp_path / "out", jobs=1)
    assert signal.getsignal(signal.SIGTERM) == before     # put back afterwards
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["complete"] is False and manifest["tried"] >= 3


# -- the kernel version ----------------------------------------------------------

def test_kernel_version(small_tree, tmp_path):
    corpus = build_corpus(kernel=small_tree, out=tmp_path / "out")
    # EXTRAVERSION too: a -rcN is part of the version (the target kernel drops "-test").
    assert corpus.kernel_version == "6.12.0-test"
    assert corpus.identity.startswith("linux-6.12.0-test (")
    assert open_corpus(tmp_path / "out").kernel_version == "6.12.0-test"
    assert open_corpus(tmp_path / "out" / "acme/acme-a.dtb").kernel_version == "6.12.0-test"
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.dtb").write_bytes((corpus.root / "acme/acme-a.dtb").read_bytes())
    assert open_corpus(plain).kernel_version is None
    assert open_corpus(plain / "a.dtb").kernel_version is None


# -- the source-positions cache ----------------------------------------------------

def test_damaged_positions_cache_is_computed_again(small_tree, tmp_path, capsys):
    corpus = build_corpus(kernel=small_tree, out=tmp_path / "out")
    entry = corpus.entry("acme/acme-b.dtb")
    right = source_positions(corpus, entry)
    cache = corpus.root / ".positions/acme/acme-b.dtb.json"
    text = cache.read_text()
    line = right["/soc/iommu@1000"][1]
    assert f", {line}]" in text
    cache.write_text(text.replace(f", {line}]", f", {line + 1}]"))     # another line
    capsys.readouterr()
    assert source_positions(corpus, entry) == right
    assert capsys.readouterr().err == (f"{cache}: warning: source positions cache damaged "
                                       f"(checksum); computing them again\n")
    cache.write_text("{")
    assert source_positions(corpus, entry) == right
    assert "source positions cache unreadable" in capsys.readouterr().err
    assert source_positions(corpus, entry) == right                    # written again
    assert capsys.readouterr().err == ""


def test_positions_of_a_dtb_replaced_with_same_size_and_mtime_are_computed_again(
        small_tree, tmp_path):
    """The cache is keyed by the DTB's whole stamp (inode and ctime too), not by
    its size and mtime alone: a DTB put back under the same size and mtime is
    another file, and its positions are not taken on trust."""
    import json, os, shutil
    from store.sealed import checksum
    corpus = build_corpus(kernel=small_tree, out=tmp_path / "out")
    entry = corpus.entry("acme/acme-b.dtb")
    right = source_positions(corpus, entry)
    cache = corpus.root / ".positions/acme/acme-b.dtb.json"
    data = json.loads(cache.read_text())
    where = data["positions"]["/soc/iommu@1000"]
    data["positions"]["/soc/iommu@1000"] = [where[0], where[1] + 1]      # resealed, wrong
    del data["checksum"]
    data["checksum"] = checksum(data)
    cache.write_text(json.dumps(data))
    assert source_positions(corpus, entry)["/soc/iommu@1000"][1] == where[1] + 1  # trusted
    dtb = corpus.root / entry.dtb
    st = dtb.stat()
    shutil.copy(dtb, tmp_path / "copy.dtb")
    os.replace(tmp_path / "copy.dtb", dtb)
    os.utime(dtb, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (dtb.stat().st_size, dtb.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert source_positions(corpus, entry) == right


# -- options and names --------------------------------------------------------------

@pytest.mark.parametrize("jobs", [0, -1])
def test_jobs_must_be_positive(small_tree, tmp_path, jobs):
    with pytest.raises(UserError) as refused:
        build_corpus(kernel=small_tree, out=tmp_path / "out", jobs=jobs)
    assert refused.value.line() == "dtb-audit: error: -j: must be at least 1"
    assert not (tmp_path / "out").exists()


def test_out_naming_a_file(small_tree, tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(UserError) as refused:
        build_corpus(kernel=small_tree, out=tmp_path / "out")
    assert str(refused.value) == f"{tmp_path / 'out'}: error: not a folder"
    with pytest.raises(UserError) as refused:
        build_corpus(kernel=small_tree, out=tmp_path / "out" / "below")
    assert str(refused.value) == f"{tmp_path / 'out' / 'below'}: error: Not a directory"


def test_file_name_not_utf8_is_skipped_with_a_warning(small_tree, tmp_path, capsys):
    corpus = build_corpus(kernel=small_tree, out=tmp_path / "out")
    plain = tmp_path / "plain"
    plain.mkdir()
    good = (corpus.root / "acme/acme-a.dtb").read_bytes()
    (plain / "a.dtb").write_bytes(good)
    odd = os.path.join(os.fsencode(plain), b"caf\xe9.dtb")
    with open(odd, "wb") as f:
        f.write(good)
    opened = open_corpus(plain)
    assert [e.dtb for e in opened.entries] == ["a.dtb"]
    assert capsys.readouterr().err == f"{plain}/caf\\xe9.dtb: warning: file name is not UTF-8; skipped\n"
    # the flat cache keeps such a name in its JSON without an error
    fc = flatten([os.fsdecode(odd), plain / "a.dtb"], plain)
    assert fc.root_compatible(0) == fc.root_compatible(1) == ["acme,a", "acme,soc"]
    again = flatten([os.fsdecode(odd), plain / "a.dtb"], plain)
    assert again.root_compatible(0) == ["acme,a", "acme,soc"]
    assert capsys.readouterr().err == ""


def test_missing_path(tmp_path):
    with pytest.raises(UserError) as refused:
        open_corpus(tmp_path / "nothing-here")
    assert str(refused.value) == f"{tmp_path / 'nothing-here'}: error: no such file or folder"


# -- several PATHs as one corpus ------------------------------------------------------

def test_open_corpora_keeps_names_unique_and_drops_repeats(small_tree, tmp_path):
    built = build_corpus(kernel=small_tree, out=tmp_path / "out")
    a, b = tmp_path / "x" / "a", tmp_path / "x" / "b"
    for folder, dtb in ((a, "acme/acme-a.dtb"), (b, "acme/acme-b.dtb")):
        (folder / "soc").mkdir(parents=True)
        (folder / "soc" / "board.dtb").write_bytes((built.root / dtb).read_bytes())
    merged = open_corpora([a, b, a, a / "soc" / "board.dtb"])
    assert [e.dtb for e in merged.entries] == ["a/soc/board.dtb", "b/soc/board.dtb"]
    assert merged.root == tmp_path / "x"
    assert [(merged.root / e.dtb).read_bytes() for e in merged.entries] == [
        (built.root / "acme/acme-a.dtb").read_bytes(), (built.root / "acme/acme-b.dtb").read_bytes()]
    member, entry = merged.origin(merged.entries[1])
    assert member.root == b and entry.dtb == "soc/board.dtb"
    # one folder, given twice: itself
    again = open_corpora([built.root, built.root])
    assert again.root == built.root and len(again.entries) == N_TARGETS and not again.members


def test_open_corpora_of_two_built_corpora_finds_sources(small_tree, tmp_path):
    one = build_corpus(kernel=small_tree, out=tmp_path / "one")
    other_tree = write_tree(tmp_path / "linux2", SMALL_TREE)
    two = build_corpus(kernel=other_tree, out=tmp_path / "two")
    merged = open_corpora([one.root, two.root])
    assert len(merged.entries) == 2 * N_TARGETS and merged.kernel_dir is None
    assert merged.kernel_version == "6.12.0-test"
    composite = merged.entry("two/acme/acme-a-plus.dtb")
    assert composite.parts == ["two/acme/acme-a.dtb", "two/acme/acme-a-extra.dtbo",
                               "two/acme/acme-a-more.dtbo"]
    positions = source_positions(merged, merged.entry("two/acme/acme-b.dtb"))
    assert positions["/soc/iommu@1000"][0] == DTSI


# -- temporaries of killed processes ----------------------------------------------------

def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporaries_of_dead_processes_are_removed(small_tree, tmp_path, isolated_cache):
    out = tmp_path / "out"
    build_corpus(kernel=small_tree, out=out)
    dead, live = dead_pid(), os.getppid()
    left = [out / f"acme/.acme-a.dtb.tmp-{dead}", out / f".dtb-audit-corpus.json.tmp-{dead}",
            out / f".build.tmp-{dead}-x1y2/acme__acme-a.dtb.tmp"]
    kept = [out / f"acme/.acme-b.dtb.tmp-{live}", out / f".build.tmp-{live}-abcd/f.tmp"]
    for path in left + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 1000)
    build_corpus(kernel=small_tree, out=out)
    assert [p for p in left if p.exists()] == []
    assert [p for p in kept if not p.exists()] == []
    # the same rule in each cache folder (downloads, trees, tools, flat)
    folder = isolated_cache / "debian"
    (folder / f".download.tmp-{dead}-q").mkdir(parents=True)
    (folder / f".download.tmp-{live}-q").mkdir(parents=True)
    (folder / "linux-source-9.9_9.9-1_all.deb").write_bytes(b"")   # a name, not a temporary
    assert remove_dead(folder) == 1
    assert sorted(p.name for p in folder.iterdir()) == [
        f".download.tmp-{live}-q", "linux-source-9.9_9.9-1_all.deb"]


# -- Debian suites ------------------------------------------------------------------

def test_debian_spec():
    assert debian.parse_debian("sid/linux-source-7.2") == ("sid", "linux-source-7.2")
    assert debian.parse_debian("bullseye/linux-source-5.10") == ("bullseye", "linux-source-5.10")
    assert debian.parse_debian("linux-source-6.12") == (None, "linux-source-6.12")
    for bad in ("sid/", "Sid/linux-source-7.2", "sid/linux source", "../x/linux-source-1"):
        with pytest.raises(UserError, match=r": error: not a Debian (suite|package) name"):
            debian.parse_debian(bad)


def test_suite_sources_follow_the_machines_mirror(tmp_path):
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list.d/debian.sources").write_text("""\
Types: deb deb-src
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
Enabled: no
URIs: http://elsewhere.example/debian
Suites: bookworm
Components: main
""")
    (etc / "sources.list").write_text("deb [arch=amd64] http://old.example/debian bookworm main\n")
    key = "[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
    assert debian.suite_sources("sid", etc, own="bookworm") == [
        f"deb {key} http://mirror.example/debian sid main contrib",
        f"deb {key} http://old.example/debian sid main"]
    assert debian.suite_sources("bullseye", etc, own="bookworm") == [
        f"deb {key} http://mirror.example/debian bullseye main contrib",
        f"deb {key} http://mirror.example/debian bullseye-updates main contrib",
        f"deb {key} http://mirror.example/debian-security bullseye-security main",
        f"deb {key} http://old.example/debian bullseye main"]
    with pytest.raises(UserError, match="no Debian mirror of this machine's suite"):
        debian.suite_sources("sid", etc, own="jammy")


def test_source_name_not_utf8_is_skipped_with_a_warning(small_tree, tmp_path, capsys):
    folder = small_tree / "arch/arm64/boot/dts/beta"
    odd = os.path.join(os.fsencode(folder), b"beta-\xff.dts")
    with open(odd, "wb") as f:
        f.write((folder / "beta-unlisted.dts").read_bytes())
    corpus = build_corpus(kernel=small_tree, out=tmp_path / "out")
    assert len(corpus.entries) == N_TARGETS and corpus.failed == 0
    assert capsys.readouterr().err == f"{folder}/beta-\\xff.dts: warning: file name is not UTF-8; skipped\n"
