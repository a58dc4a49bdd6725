"""The on-disk cache of the flattened corpus: reused when nothing changed,
never trusted when stale or corrupt."""

import json
import os
import shutil
import time

import numpy as np
import pytest

from corpus import flat
from store import bundle, sealed, stamps
from corpus.flat import ARRAYS, flatten
from fdtblobs import BOARD, MINIMAL, blob, dtc, nodes_and_props

pytestmark = pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc")


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    """(root, paths): three DTBs, one of them bad; the cache under tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "dtbs"
    root.mkdir()
    (root / "a.dtb").write_bytes(dtc(BOARD))
    (root / "b.dtb").write_bytes(blob(MINIMAL))
    (root / "bad.dtb").write_bytes(b"not a dtb")
    return root, [root / "a.dtb", root / "b.dtb", root / "bad.dtb"]


def entries(tmp_path):
    return sorted((tmp_path / "xdg" / "dtb-audit" / "flat").iterdir())


def same(x, y):
    for name, _ in ARRAYS:
        assert np.array_equal(getattr(x, name), getattr(y, name)), name
    assert (x.paths, x.prop_names, x.root) == (y.paths, y.prop_names, y.root)


def no_parse(monkeypatch):
    def fail(*a):
        raise AssertionError("parsed although the cache is valid")
    monkeypatch.setattr(flat, "_parse", fail)


def test_reused_when_unchanged(tmp_path, corpus, monkeypatch, capsys):
    root, paths = corpus
    first = flatten(paths, root)
    (entry,) = entries(tmp_path)
    assert sorted(p.name for p in entry.iterdir()) == sorted(
        [f"{n}.npy" for n, _ in ARRAYS] + ["meta.json"])
    same(first, flatten(paths, root, cache=False))
    no_parse(monkeypatch)
    second = flatten(paths, root)
    same(first, second)
    assert isinstance(second.data.base, np.memmap) or isinstance(second.data, np.memmap)
    assert not second.data.flags.writeable and not first.data.flags.writeable
    assert second.errors() == first.errors() and len(first.errors()) == 1
    assert capsys.readouterr().err == ""


def test_changed_file_is_parsed_again(tmp_path, corpus, monkeypatch):
    root, paths = corpus
    flatten(paths, root)
    (root / "b.dtb").write_bytes(dtc(BOARD))
    again = flatten(paths, root)
    assert nodes_and_props(again, 1) == nodes_and_props(again, 0)
    assert len(entries(tmp_path)) == 1  # the old entry was pruned


def test_same_size_and_mtime_still_detected(tmp_path, corpus, monkeypatch):
    # Content changed, size kept and mtime put back (as `cp -p`, `touch -r`
    # would): the ctime still moves, and it is part of the key.  (Without
    # the byte comparison of recently changed files, to test the key alone.)
    monkeypatch.setattr(stamps, "RACY_NS", -10**18)
    root, paths = corpus
    f = root / "b.dtb"
    before = flatten(paths, root)
    st = os.stat(f)
    data = bytearray(f.read_bytes())
    i = data.index(b"vendor,board")
    data[i:i + 6] = b"VENDOR"
    f.write_bytes(data)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = flatten(paths, root)
    assert before.root_compatible(1) == ["vendor,board"]
    assert after.root_compatible(1) == ["VENDOR,board"]


def test_racy_change_within_a_timestamp_tick(tmp_path, corpus, monkeypatch, capsys):
    # A change the stats cannot see (same tick): the file was modified
    # recently, so its bytes are compared with the cached ones.
    root, paths = corpus
    flatten(paths, root)
    stats = {str(p): flat._stat(p) for p in paths}
    (root / "b.dtb").write_bytes(blob(MINIMAL.replace(b"vendor", b"VENDOR")))
    monkeypatch.setattr(flat, "_stat", lambda f: stats[str(f)])
    again = flatten(paths, root)
    assert again.root_compatible(1) == ["VENDOR,board"]
    assert "flattened corpus cache is stale (b.dtb changed); parsing again" in capsys.readouterr().err


def test_racy_files_checked_once(tmp_path, corpus, monkeypatch):
    # Files written just before the entry are racy: the first reuse compares
    # their bytes and moves the entry's time, so later reuses do not.
    root, paths = corpus
    monkeypatch.setattr(stamps, "RACY_NS", 200_000_000)
    reads = []
    read_kept = flat.read_kept
    monkeypatch.setattr(flat, "read_kept", lambda path, size=None: (
        path.suffix == ".dtb" and reads.append(path.name)) or read_kept(path, size))
    flatten(paths, root)
    time.sleep(0.3)
    no_parse(monkeypatch)
    flatten(paths, root)
    assert sorted(reads) == ["a.dtb", "b.dtb", "bad.dtb"]
    reads.clear()
    flatten(paths, root)
    assert reads == []


def rewrite_meta(entry, change):
    """Change meta.json and seal it again (its checksum and the files' CRCs),
    as a bug rather than a disk would: what is left for the other checks."""
    meta = json.loads((entry / "meta.json").read_text())
    change(meta)
    for name, _ in ARRAYS:
        with open(entry / f"{name}.npy", "rb") as fh:
            meta["arrays"][name][2:] = list(bundle._file_crc(fh)[0])
    meta["checksum"] = sealed.checksum(meta)
    (entry / "meta.json").write_text(json.dumps(meta))


def corrupt_cases():
    def flip(entry):
        f = entry / "node_parent.npy"
        b = bytearray(f.read_bytes())
        b[-1] ^= 1
        f.write_bytes(b)

    def flip_header(entry):
        # A byte of the .npy header's padding: numpy would still read it.
        f = entry / "node_depth.npy"
        b = bytearray(f.read_bytes())
        b[b.index(b"\n") - 1] ^= 0x20   # the space before the newline, now a NUL
        f.write_bytes(b)

    def truncate(entry):
        f = entry / "prop_val_off.npy"
        f.write_bytes(f.read_bytes()[:-5])

    def empty(entry):
        (entry / "dtb_error.npy").write_bytes(b"")

    def missing(entry):
        (entry / "prop_name.npy").unlink()

    def garbage_meta(entry):
        (entry / "meta.json").write_text("{ not json")

    def meta_is_a_list(entry):
        (entry / "meta.json").write_text("[1, 2]")

    def renamed_property(entry):
        # dma-coherent -> dma-aoherent: valid JSON, a different answer.
        text = (entry / "meta.json").read_text()
        assert '"dma-coherent"' in text
        (entry / "meta.json").write_text(text.replace('"dma-coherent"', '"dma-aoherent"'))

    def other_parser(entry):
        rewrite_meta(entry, lambda meta: meta.update(code="0" * 64))

    def wrong_dtype(entry):
        a = np.load(entry / "node_depth.npy")
        np.save(entry / "node_depth.npy", a.astype(np.int64))
        rewrite_meta(entry, lambda meta: None)

    def inconsistent(entry):
        # Consistent checksums, broken ranges: caught by the invariants.
        a = np.load(entry / "dtb_node_start.npy")
        a[-1] += 1
        np.save(entry / "dtb_node_start.npy", a)
        rewrite_meta(entry, lambda meta: None)

    return [
        (flip, "has a corrupt node_parent.npy (checksum)"),
        (flip_header, "has a corrupt node_depth.npy (checksum)"),
        (truncate, "is unusable (prop_val_off.npy is 211 bytes, not the 216 recorded)"),
        (empty, "is unusable (dtb_error.npy is 0 bytes, not the "),
        (missing, "is unreadable (FileNotFoundError"),
        (garbage_meta, "is unreadable (JSONDecodeError"),
        (meta_is_a_list, "has a damaged meta.json (checksum)"),
        (renamed_property, "has a damaged meta.json (checksum)"),
        (other_parser, "is for other files or another parser"),
        (wrong_dtype, "has a wrong node_depth.npy"),
        (inconsistent, "has ranges that do not cover data or nodes"),
    ]


@pytest.mark.parametrize("damage,message", corrupt_cases(), ids=lambda c: getattr(c, "__name__", ""))
def test_corrupt_cache_is_rebuilt(tmp_path, corpus, monkeypatch, capsys, damage, message):
    root, paths = corpus
    good = flatten(paths, root, cache=False)
    flatten(paths, root)
    (entry,) = entries(tmp_path)
    damage(entry)
    rebuilt = flatten(paths, root)
    same(good, rebuilt)
    err = capsys.readouterr().err
    assert err.startswith(f"{entry}: warning: flattened corpus cache {message}")
    assert err.endswith("; parsing again\n") and err.count("\n") == 1
    # ... and written again: the next run uses it, silently.
    no_parse(monkeypatch)
    same(good, flatten(paths, root))
    assert capsys.readouterr().err == ""


def test_unwritable_cache_only_warns(tmp_path, corpus, capsys):
    root, paths = corpus
    (tmp_path / "xdg" / "dtb-audit").mkdir(parents=True)
    (tmp_path / "xdg" / "dtb-audit" / "flat").write_text("a file where the folder goes")
    fc = flatten(paths, root)
    assert fc.root_compatible(0) == ["fsl,ls1028a-rdb", "fsl,ls1028a"]
    err = capsys.readouterr().err
    assert ": warning: cannot write the flattened corpus cache: " in err


def test_interrupted_write_leaves_nothing_trusted(tmp_path, corpus, monkeypatch):
    root, paths = corpus
    real_save = bundle._save_npy

    def crash(path, a):
        if path.name == "prop_node.npy":
            raise KeyboardInterrupt
        real_save(path, a)

    monkeypatch.setattr(bundle, "_save_npy", crash)
    with pytest.raises(KeyboardInterrupt):
        flatten(paths, root)
    assert entries(tmp_path) == []  # the temporary folder is gone too


def test_temporaries_of_killed_processes_inside_an_entry_are_removed(tmp_path, corpus):
    root, paths = corpus
    flatten(paths, root)
    (entry,) = entries(tmp_path)
    dead = 2 ** 22 + 1                      # above the kernel's PID_MAX_LIMIT: never a process
    left = [entry / f".meta.json.tmp-{dead}", entry / "results" / f".k1.tmp-{dead}" / "a.npy"]
    alive = os.getppid()                    # pytest's parent: a live process
    live = [entry / f".meta.json.tmp-{alive}", entry / "results" / f".k2.tmp-{alive}"]
    for path in left + live:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    flatten(paths, root)
    assert [p.exists() for p in left] == [False, False]
    assert not (entry / "results" / f".k1.tmp-{dead}").exists()
    assert [p.exists() for p in live] == [True, True]
