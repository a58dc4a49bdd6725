"""A warm run of the corpus layer costs (almost) nothing, and trusts nothing
more than before (issue 10, with issue 9's guarantees): apt is asked only
when something it reads changed, a build with nothing to do neither rewrites
its manifest nor reads its outputs, the Makefiles are read only when one of
them (or a folder) changed, and the flat cache's .npy files are vouched for
by their stamps. Whatever a stamp cannot vouch for (racy, another inode, a
change with its mtime put back) is read whole as before.

Several tests set stamps.RACY_NS to 0: files the test has just written are
otherwise racy (changed within 2 s) and always read whole, which is the
rule, but not what these tests look at."""

import json
import os
import shutil

import pytest

from corpus import compile as corpus_compile
from corpus import manifest as corpus_manifest
from corpus import plan as corpus_plan
from corpus import debian, flat
from store import sealed as sealing
from store import bundle, stamps
from corpus.build import MANIFEST, build_corpus, open_corpus
from corpus.flat import ARRAYS, flatten

N_TARGETS = 10           # every output of SMALL_TREE
DTSI = "arch/arm64/boot/dts/acme/acme.dtsi"


def outputs(root):
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*.dtb*")) if not p.name.startswith(".")}


def age(tree, seconds=10):
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 10**9))


def identity(path):
    """What a rewrite (a new file renamed into place) changes."""
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns


def counting(monkeypatch, module, name):
    """Wrap module.name so that its calls are counted (their first arguments listed)."""
    real = getattr(module, name)
    calls = []

    def counted(*args, **kwargs):
        calls.append(args[0] if args else None)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def change_in_place(path, keep_mtime=True):
    """One byte changed, the size kept and (as `cp -p`, `touch -r` would) the mtime put back."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size


@pytest.fixture
def not_racy(monkeypatch):
    monkeypatch.setattr(stamps, "RACY_NS", 0)


@pytest.fixture
def built(small_tree, tmp_path, not_racy):
    age(small_tree)
    out = tmp_path / "out"
    corpus = build_corpus(kernel=small_tree, out=out)
    assert corpus.built == N_TARGETS
    return small_tree, out


# -- apt is asked once ------------------------------------------------------------

@pytest.fixture
def fake_apt(tmp_path, monkeypatch, isolated_cache):
    """A private suite "sid" whose package is already downloaded, and an
    `apt-cache` on PATH that counts its runs; returns the count's file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    runs = tmp_path / "apt-cache-runs"
    (bin_dir / "apt-cache").write_text(
        f"#!/bin/sh\necho \"$*\" >> {runs}\n"
        "printf 'linux-source-7.2:\\n  Installed: (none)\\n  Candidate: 7.2.13-1\\n'\n")
    (bin_dir / "apt-get").write_text("#!/bin/sh\necho apt-get must not run >&2\nexit 1\n")
    for tool in ("apt-cache", "apt-get"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(debian, "suite_sources", lambda suite: [
        f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        f"http://deb.example/debian {suite} main"])
    apt_dir = isolated_cache / "apt" / "sid"
    (apt_dir / "lists").mkdir(parents=True)
    (apt_dir / "lists" / "deb.example_debian_dists_sid_InRelease").write_text("lists\n")
    (apt_dir / "updated").write_bytes(b"")          # fetched just now: no apt-get update
    deb = isolated_cache / "debian" / "sid" / "linux-source-7.2_7.2.13-1_all.deb"
    deb.parent.mkdir(parents=True)
    deb.write_bytes(b"!<arch>\n")
    return runs, apt_dir, deb


def apt_cache_runs(runs):
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def test_apt_is_asked_again_only_when_what_it_reads_changed(fake_apt, not_racy):
    runs, apt_dir, deb = fake_apt
    assert debian.fetch_debian("sid/linux-source-7.2") == deb
    assert apt_cache_runs(runs) == 1
    assert debian.fetch_debian("sid/linux-source-7.2") == deb
    assert debian.fetch_debian("sid/linux-source-7.2") == deb
    assert apt_cache_runs(runs) == 1                 # remembered
    # Each thing apt reads, changed, asks it again (once).
    changes = [
        lambda: (apt_dir / "lists" / "deb.example_debian_dists_sid_InRelease").write_text("new\n"),
        lambda: (apt_dir / "lists" / "deb.example_debian_dists_sid_main_Packages").write_text("p\n"),
        lambda: (apt_dir / "preferences.d" / "pin").write_text("Package: *\n"),
        lambda: (apt_dir / "sources.list").write_text("deb http://other.example/debian sid main\n"),
        lambda: (apt_dir / "status").write_text("Package: x\n"),
    ]
    for n, change in enumerate(changes, start=2):
        change()
        assert debian.fetch_debian("sid/linux-source-7.2") == deb
        assert debian.fetch_debian("sid/linux-source-7.2") == deb
        assert apt_cache_runs(runs) == n, n


def test_apt_is_asked_while_its_files_are_racy(fake_apt):
    # The package lists changed just now: the same tick could hide another change.
    runs, apt_dir, _ = fake_apt
    for n in (1, 2, 3):
        debian.fetch_debian("sid/linux-source-7.2")
        assert apt_cache_runs(runs) == n


def test_a_damaged_remembered_answer_asks_apt(fake_apt, not_racy, capsys):
    runs, _, deb = fake_apt
    debian.fetch_debian("sid/linux-source-7.2")
    (remembered,) = deb.parent.glob(".*.candidate.json")
    text = remembered.read_text()
    remembered.write_text(text.replace('"candidate": "7.2.13-1"', '"candidate": "7.2.99-1"'))
    assert debian.fetch_debian("sid/linux-source-7.2") == deb
    assert apt_cache_runs(runs) == 2 and capsys.readouterr().err == ""
    assert json.loads(remembered.read_text())["candidate"] == "7.2.13-1"


# -- a build with nothing to do ---------------------------------------------------

def test_nothing_to_do_leaves_the_manifest_and_reads_no_output(built, monkeypatch):
    tree, out = built
    before = identity(out / MANIFEST)
    read = counting(monkeypatch, corpus_manifest, "output_of")
    again = build_corpus(kernel=tree, out=out)
    assert (again.built, again.failed, again.reused) == (0, 0, N_TARGETS)
    assert read == []                                # every output vouched for by its stamp
    assert identity(out / MANIFEST) == before
    assert [p.name for p in out.iterdir() if p.name.startswith(".build.tmp")] == []
    assert open_corpus(out).reused == N_TARGETS and read == []


def test_manifest_is_written_compact(built):
    _, out = built
    text = (out / MANIFEST).read_text()
    assert "\n" not in text and text.startswith('{"checksum": "')
    data = json.loads(text)
    assert data["checksum"] == sealing.checksum(data) and data["complete"] is True
    assert all(len(r["stamp"]) == 4 for r in data["records"].values() if r["error"] is None)


def test_output_changed_with_its_mtime_put_back_is_rebuilt(built, capsys):
    tree, out = built
    clean = outputs(out)
    change_in_place(out / "acme/acme-b.dtb")             # its ctime moved
    capsys.readouterr()
    again = build_corpus(kernel=tree, out=out)
    assert capsys.readouterr().err == (f"{out.resolve()}/acme/acme-b.dtb: warning: changed since "
                                       f"it was built (checksum); building it again\n")
    assert again.built == 1 and outputs(out) == clean


def test_output_replaced_by_a_copy_is_read_whole(built, monkeypatch):
    # Another inode with the same bytes (a restore from a backup): read, and trusted.
    tree, out = built
    path = out / "beta/beta-1.dtb"
    shutil.copy2(path, path.with_name("copy"))
    os.replace(path.with_name("copy"), path)
    read = counting(monkeypatch, corpus_manifest, "output_of")
    again = build_corpus(kernel=tree, out=out)
    assert again.built == 0 and read == [str(path.resolve())]


def test_racy_outputs_are_read_until_their_stamp_is_old(small_tree, tmp_path, monkeypatch):
    # Outputs written within RACY_NS before the manifest: read whole on reuse,
    # and the manifest left alone while they are still that young.
    age(small_tree)
    out = tmp_path / "out"
    monkeypatch.setattr(stamps, "RACY_NS", 3600 * 10**9)
    build_corpus(kernel=small_tree, out=out)
    before = identity(out / MANIFEST)
    read = counting(monkeypatch, corpus_manifest, "output_of")
    assert build_corpus(kernel=small_tree, out=out).reused == N_TARGETS
    assert len(read) == N_TARGETS and identity(out / MANIFEST) == before


def test_stamps_learnt_from_outputs_read_whole(built, monkeypatch):
    # A manifest without output stamps (written before they were kept): every
    # output is read once, the stamps are kept, and then no more.
    tree, out = built
    data = json.loads((out / MANIFEST).read_text())
    for record in data["records"].values():
        record.pop("stamp", None)
    (out / MANIFEST).write_bytes(sealing.sealed(data))
    read = counting(monkeypatch, corpus_manifest, "output_of")
    assert build_corpus(kernel=tree, out=out).reused == N_TARGETS
    assert len(read) == N_TARGETS
    learnt = json.loads((out / MANIFEST).read_text())
    assert learnt["complete"] is True
    assert all(len(r["stamp"]) == 4 for r in learnt["records"].values())
    before = identity(out / MANIFEST)
    read.clear()
    assert build_corpus(kernel=tree, out=out).reused == N_TARGETS
    assert read == [] and identity(out / MANIFEST) == before


def test_work_to_do_marks_the_folder_incomplete_first(built, monkeypatch):
    tree, out = built
    (tree / DTSI).write_text((tree / DTSI).read_text() + "\n/* edited */\n")
    seen = []
    real = corpus_compile.compile_one

    def compile_and_look(*args):
        seen.append(json.loads((out / MANIFEST).read_text())["complete"])
        return real(*args)

    monkeypatch.setattr(corpus_compile, "compile_one", compile_and_look)
    again = build_corpus(kernel=tree, out=out, jobs=1)
    assert again.built == 5 and seen and set(seen) == {False}
    assert json.loads((out / MANIFEST).read_text())["complete"] is True


def test_an_incomplete_manifest_is_completed_with_nothing_to_do(built):
    tree, out = built
    data = json.loads((out / MANIFEST).read_text())
    data["complete"] = False
    (out / MANIFEST).write_bytes(sealing.sealed(data))
    assert build_corpus(kernel=tree, out=out).built == 0
    assert json.loads((out / MANIFEST).read_text())["complete"] is True
    assert not open_corpus(out).partial


def test_a_damaged_compact_manifest_is_found(built, capsys):
    tree, out = built
    text = (out / MANIFEST).read_text()
    at = text.index('"kind": "board"') + len('"kind": "')
    (out / MANIFEST).write_text(text[:at] + "B" + text[at + 1:])   # "Board": valid JSON
    capsys.readouterr()
    assert build_corpus(kernel=tree, out=out).built == N_TARGETS
    assert "damaged manifest (checksum); building everything again" in capsys.readouterr().err


# -- the Makefiles are read when they (or a folder) changed -----------------------------

def test_makefiles_are_read_again_only_when_changed(built, monkeypatch):
    tree, out = built
    read = counting(monkeypatch, corpus_plan, "read_targets")
    assert build_corpus(kernel=tree, out=out).reused == N_TARGETS
    assert read == []
    # a Makefile changed: a new composite
    makefile = tree / "arch/arm64/boot/dts/beta/Makefile"
    makefile.write_text(makefile.read_text() + "beta-1-ov-dtbs := beta-1.dtb beta-ov.dtbo\n"
                                               "dtb-y += beta-1-ov.dtb\n")
    again = build_corpus(kernel=tree, out=out)
    assert len(read) == 1 and again.entry("beta/beta-1-ov.dtb") is not None
    # a new file in a folder (no Makefile names it): a new board
    (tree / "arch/arm64/boot/dts/beta/beta-2.dts").write_text(
        '/dts-v1/;\n/ {\n\tmodel = "Beta 2";\n\tcompatible = "beta,2";\n};\n')
    again = build_corpus(kernel=tree, out=out)
    assert len(read) == 2 and again.entry("beta/beta-2.dtb").error is None
    # the rules file of the tree changed: new flags for every target
    rules = tree / "scripts/Makefile.dtbs"
    rules.write_text(rules.read_text().replace("DTC_FLAGS += -Wno-unique_unit_address",
                                               "DTC_FLAGS += -Wno-unique_unit_address -Wno-reg_format"))
    again = build_corpus(kernel=tree, out=out)
    assert len(read) == 3 and again.built == N_TARGETS + 2
    assert build_corpus(kernel=tree, out=out).built == 0 and len(read) == 3


def test_a_file_read_as_maybe_an_overlay_is_watched(built, monkeypatch):
    # beta-unlisted.dts is read to see whether it is an old-style overlay.
    tree, out = built
    dts = tree / "arch/arm64/boot/dts/beta/beta-unlisted.dts"
    dts.write_text(dts.read_text().replace("/dts-v1/;\n", "/dts-v1/;\n/plugin/;\n"))
    again = build_corpus(kernel=tree, out=out)
    assert again.entry("beta/beta-unlisted.dtbo") is not None
    assert again.entry("beta/beta-unlisted.dtb") is None


def test_makefiles_just_changed_are_read_every_time(small_tree, tmp_path, monkeypatch):
    out = tmp_path / "out"
    build_corpus(kernel=small_tree, out=out)           # the tree was written just now
    read = counting(monkeypatch, corpus_plan, "read_targets")
    build_corpus(kernel=small_tree, out=out)
    build_corpus(kernel=small_tree, out=out)
    assert len(read) == 2


def test_warnings_of_the_makefiles_are_said_again(built, capsys):
    tree, out = built
    folder = tree / "arch/arm64/boot/dts/beta"
    with open(os.path.join(os.fsencode(folder), b"beta-\xff.dts"), "wb") as f:
        f.write((folder / "beta-unlisted.dts").read_bytes())
    warning = f"{folder}/beta-\\xff.dts: warning: file name is not UTF-8; skipped\n"
    for _ in range(2):
        capsys.readouterr()
        assert len(build_corpus(kernel=tree, out=out).entries) == N_TARGETS
        assert capsys.readouterr().err == warning


# -- the flat cache: .npy files vouched for by their stamps -------------------------------

@pytest.fixture
def flat_corpus(built, tmp_path, monkeypatch):
    """(root, paths, the cache entry) of the built corpus, flattened once."""
    _, out = built
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    corpus = open_corpus(out)
    paths = [corpus.root / e.dtb for e in corpus.boards]
    fc = flatten(paths, corpus.root)
    return corpus.root, paths, fc.cache_folder


def no_parse(monkeypatch):
    monkeypatch.setattr(flat, "_parse", lambda *a: pytest.fail("parsed a valid cache again"))


def test_flat_cache_loads_without_reading_the_arrays(flat_corpus, monkeypatch, capsys):
    root, paths, entry = flat_corpus
    no_parse(monkeypatch)
    crc = counting(monkeypatch, bundle, "_file_crc")
    fc = flatten(paths, root)
    assert crc == [] and fc.cache_folder == entry and capsys.readouterr().err == ""


@pytest.mark.parametrize("name", ["data", "prop_name", "node_parent"])
def test_flat_npy_changed_with_its_mtime_put_back_is_found(flat_corpus, monkeypatch, capsys, name):
    root, paths, entry = flat_corpus
    truth = flatten(paths, root, cache=False)
    change_in_place(entry / f"{name}.npy")
    parsed = counting(monkeypatch, flat, "_parse")
    fc = flatten(paths, root)
    assert len(parsed) == 1
    assert capsys.readouterr().err == (f"{entry}: warning: flattened corpus cache has a corrupt "
                                       f"{name}.npy (checksum); parsing again\n")
    for array, _ in ARRAYS:
        assert (getattr(fc, array) == getattr(truth, array)).all(), array


def test_flat_cache_copied_elsewhere_is_read_whole_then_trusted(flat_corpus, tmp_path, monkeypatch):
    # New inodes: every .npy is read and its CRC-32 checked; the stamps then kept.
    root, paths, entry = flat_corpus
    other = tmp_path / "xdg2" / "dtb-audit" / "flat" / entry.name
    shutil.copytree(entry, other)                     # copy2: the mtimes are kept
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg2"))
    no_parse(monkeypatch)
    crc = counting(monkeypatch, bundle, "_file_crc")
    assert flatten(paths, root).cache_folder == other
    assert len(crc) == len(ARRAYS)
    crc.clear()
    flatten(paths, root)
    assert crc == []


def test_flat_npy_files_just_written_are_read(flat_corpus, monkeypatch):
    root, paths, _ = flat_corpus
    monkeypatch.setattr(stamps, "RACY_NS", 3600 * 10**9)
    no_parse(monkeypatch)
    crc = counting(monkeypatch, bundle, "_file_crc")
    flatten(paths, root)
    flatten(paths, root)
    assert len(crc) == 2 * len(ARRAYS)


def test_flat_cache_folder_holds_other_results(flat_corpus, monkeypatch, capsys):
    # The lead keeps the kernels' results in the entry (results/): loading,
    # checking and pruning leave them be, and they go with their entry.
    root, paths, entry = flat_corpus
    assert flatten(paths, root, cache=False).cache_folder is None
    (entry / "results").mkdir()
    (entry / "results" / "verdicts.npy").write_bytes(b"x")
    parse = flat._parse
    no_parse(monkeypatch)
    assert flatten(paths, root).cache_folder == entry
    assert (entry / "results" / "verdicts.npy").exists() and capsys.readouterr().err == ""
    monkeypatch.setattr(flat, "_parse", parse)
    first = paths[0]
    first.write_bytes(first.read_bytes())             # a new ctime: another entry
    again = flatten(paths, root)
    assert again.cache_folder != entry and not entry.exists()
    assert again.cache_folder.is_dir() and capsys.readouterr().err == ""


def test_flat_cache_entry_with_an_inconsistent_parse_is_not_kept(flat_corpus, tmp_path,
                                                                 monkeypatch, capsys):
    # The ranges are checked before an entry is written: a loaded entry whose
    # stamps vouch for it need not be read whole to check them again.
    root, paths, _ = flat_corpus
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg3"))
    real = flat._parse

    def names_lost(*args):
        arrays, names = real(*args)
        return arrays, names[:1]

    monkeypatch.setattr(flat, "_parse", names_lost)
    fc = flatten(paths, root)
    assert fc.cache_folder is None
    err = capsys.readouterr().err
    assert err.endswith(": warning: cannot write the flattened corpus cache: not kept: the "
                        "parsed corpus has property names out of range\n") and err.count("\n") == 1
    assert not (tmp_path / "xdg3" / "dtb-audit" / "flat").exists()
