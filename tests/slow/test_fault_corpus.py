"""Fault injection on the corpus layer (issue 9).

`corpus build` and the flat cache's writing are killed (SIGKILL, SIGTERM,
SIGINT, Ctrl-C to the whole process group) at random points chosen by fixed
seeds; every kind of file a later run reads (the manifest, the DTB outputs,
the flat cache's .npy files and meta.json, the source-positions cache) is
damaged byte by byte; the disk fills up under the output folder and under
$XDG_CACHE_HOME (a small tmpfs, when this machine lets the tests mount one);
builds and flattens run concurrently. Each scenario must end in the answer
of a clean run, byte for byte, or in a refusal of one clear line: never a
traceback, a hang, a wrong answer, or a damaged file trusted.
"""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from corpus import flat
from corpus.build import MANIFEST, build_corpus, open_corpus, source_positions
from corpus.errors import UserError
from corpus.flat import ARRAYS, flatten
from tests.conftest import SMALL_TREE, write_tree
from testpaths import ROOT

HANG = 60                 # seconds: a run that takes longer has hung
N_GAMMA = 40
N_TARGETS = 10 + N_GAMMA  # SMALL_TREE's outputs and the gamma boards

# The CLI, with the manifest's save interval as the first argument (so that
# a SIGKILL lands between saves as well as in one).
CLI = ("import sys, corpus.build as b; b._SAVE_EVERY_S = float(sys.argv[1]); "
       "from auditor.cli import main; sys.exit(main(sys.argv[2:]))")
# flatten() of every DTB under a folder, saying when it is past its imports.
FLATTEN = ("import sys; from pathlib import Path; from corpus.flat import flatten; "
           "print('ready', flush=True); root = Path(sys.argv[1]); "
           "flatten(sorted(root.rglob('*.dtb')), root)")


def tree_files():
    """SMALL_TREE and a folder of 40 boards more, so that a build lasts long enough to kill."""
    files = dict(SMALL_TREE)
    names = [f"gamma-{i:02}" for i in range(N_GAMMA)]
    files["arch/arm64/boot/dts/gamma/Makefile"] = (
        "dtb-$(CONFIG_ARCH_GAMMA) += " + " ".join(n + ".dtb" for n in names) + "\n")
    for i, name in enumerate(names):
        files[f"arch/arm64/boot/dts/gamma/{name}.dts"] = (
            f'/dts-v1/;\n#include <arm64/acme/acme.dtsi>\n\n/ {{\n\tmodel = "Gamma {i}";\n'
            f'\tcompatible = "gamma,{i}", "acme,soc";\n}};\n')
    return files


def outputs(root):
    """{dtb: bytes} of every output in a corpus folder."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(Path(root).rglob("*.dtb*")) if not p.name.startswith(".")}


def temporaries(folder):
    return sorted(str(p) for p in Path(folder).rglob("*") if ".tmp-" in p.name)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = write_tree(tmp_path_factory.mktemp("fault") / "linux", tree_files())
    for path in root.rglob("*"):   # as unpacked from a tarball: older than any build
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 10**10))
    return root


@pytest.fixture(scope="module")
def reference(tree, tmp_path_factory):
    """(outputs of a clean build, seconds its build took once the CLI had started)."""
    out = tmp_path_factory.mktemp("reference") / "out"
    proc = start_cli(["corpus", "build", "--kernel", str(tree), "--out", str(out), "-j", "2"],
                     tmp_path_factory.mktemp("xdg"))
    started = wait_for_the_build(proc, out)
    proc.communicate(timeout=HANG)
    took = time.monotonic() - started
    assert proc.returncode == 0
    clean = outputs(out)
    assert len(clean) == N_TARGETS
    return clean, took


def wait_for_the_build(proc, out):
    """When the build proper starts: its first manifest (Python's start-up is not ours)."""
    deadline = time.monotonic() + HANG
    while not (out / MANIFEST).exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "the build never started"
        time.sleep(0.001)
    return time.monotonic()


def environment(xdg):
    return dict(os.environ, XDG_CACHE_HOME=str(xdg), CI="1",
                PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


def start_cli(args, xdg, save_every=2.0, **kw):
    return subprocess.Popen([sys.executable, "-c", CLI, str(save_every), *args], cwd=ROOT,
                            env=environment(xdg), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def run_cli(args, xdg, save_every=2.0):
    proc = start_cli(args, xdg, save_every)
    proc.stdout_text, proc.stderr = proc.communicate(timeout=HANG)
    return proc


def summary(stderr):
    """(built, failed, reused) from `corpus build`'s summary line."""
    match = re.search(r"built (\d+), failed (\d+), reused (\d+)", stderr)
    assert match, stderr
    return tuple(map(int, match.groups()))


def no_traceback(text):
    assert "Traceback" not in text, text


# -- kills during `corpus build` -------------------------------------------------

SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT,
           "ctrl-c": signal.SIGINT}   # ctrl-c: to the process group, the compilers too


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("how", list(SIGNALS))
def test_kill_during_build(tree, reference, tmp_path, how, seed):
    clean, took = reference
    rng = random.Random(f"{how}-{seed}")
    out, xdg = tmp_path / "out", tmp_path / "xdg"
    args = ["corpus", "build", "--kernel", str(tree), "--out", str(out), "-j", "2"]
    proc = start_cli(args, xdg, save_every=rng.choice([0.0, 0.05, 2.0]),
                     start_new_session=True)
    # A random point of the build itself.
    wait_for_the_build(proc, out)
    time.sleep(rng.uniform(0, took))
    if how == "ctrl-c":
        os.killpg(proc.pid, SIGNALS[how])
    else:
        proc.send_signal(SIGNALS[how])
    _, stderr = proc.communicate(timeout=HANG)
    no_traceback(stderr)
    manifest = json.loads((out / MANIFEST).read_text())
    if manifest["complete"]:
        # The build had finished when the signal came (the process may have been on its way out).
        assert outputs(out) == clean and not open_corpus(out).partial
        resumable = N_TARGETS
    else:
        expected = -signal.SIGKILL if how == "SIGKILL" else 130
        assert proc.returncode == expected, stderr
        if how != "SIGKILL":
            assert stderr.splitlines()[-1] == "dtb-audit: interrupted"
        with pytest.raises(UserError) as refused:
            open_corpus(out)
        assert re.fullmatch(
            rf"{re.escape(str(out))}: error: incomplete corpus \(the build was interrupted: "
            rf"\d+ of {N_TARGETS} outputs\); run `dtb-audit corpus build` again, or sweep it "
            rf"with --partial", str(refused.value))
        resumable = sum(r["error"] is None for r in manifest["records"].values())
        assert all(r["error"] is None for r in manifest["records"].values()), \
            "an interruption was recorded as a compile error"
    # The next build resumes from what the manifest verifies, and ends as a clean one.
    again = build_corpus(kernel=tree, out=out)
    assert (again.built, again.failed, again.reused) == (N_TARGETS - resumable, 0, resumable)
    assert outputs(out) == clean
    assert temporaries(out) == []
    assert not open_corpus(out).partial


def test_sweeping_while_building_is_refused(tree, reference, tmp_path):
    out, xdg = tmp_path / "out", tmp_path / "xdg"
    proc = start_cli(["corpus", "build", "--kernel", str(tree), "--out", str(out), "-j", "1"],
                     xdg, save_every=0.0)
    wait_for_the_build(proc, out)
    with pytest.raises(UserError, match="incomplete corpus"):
        open_corpus(out)
    proc.communicate(timeout=HANG)
    assert proc.returncode == 0
    assert not open_corpus(out).partial and outputs(out) == reference[0]


def test_concurrent_builds_take_turns(tree, reference, tmp_path):
    out, xdg = tmp_path / "out", tmp_path / "xdg"
    args = ["corpus", "build", "--kernel", str(tree), "--out", str(out), "-j", "1"]
    procs = [start_cli(args, xdg) for _ in range(3)]
    results = [p.communicate(timeout=HANG) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    counts = sorted(summary(err) for _, err in results)
    # one built everything; the others waited for it and reused all of it
    assert counts == [(0, 0, N_TARGETS), (0, 0, N_TARGETS), (N_TARGETS, 0, 0)]
    assert outputs(out) == reference[0] and temporaries(out) == []


# -- kills while the flat cache is written ---------------------------------------------

@pytest.fixture(scope="module")
def many_dtbs(reference, tmp_path_factory):
    """1,500 DTBs (copies of the reference outputs), so that writing the cache takes a while."""
    root = tmp_path_factory.mktemp("many")
    boards = [(dtb, data) for dtb, data in sorted(reference[0].items()) if dtb.endswith(".dtb")]
    for i in range(30):
        for dtb, data in boards:
            path = root / f"copy{i:02}" / dtb
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    paths = sorted(root.rglob("*.dtb"))
    return root, paths, flatten(paths, root, cache=False)


def same(x, y):
    for name, _ in ARRAYS:
        assert np.array_equal(getattr(x, name), getattr(y, name)), name
    assert (x.paths, x.prop_names, x.root) == (y.paths, y.prop_names, y.root)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "SIGINT"])
def test_kill_while_flattening(many_dtbs, tmp_path, monkeypatch, capsys, how, seed):
    root, paths, truth = many_dtbs
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    rng = random.Random(f"{how}-{seed}")
    proc = subprocess.Popen([sys.executable, "-c", FLATTEN, str(root)], cwd=ROOT,
                            env=environment(xdg), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    time.sleep(rng.uniform(0, 0.6))
    proc.send_signal(SIGNALS[how])
    proc.communicate(timeout=HANG)
    capsys.readouterr()
    # Whatever the kill left, the next run is right, says at most one line, and leaves no temporaries.
    got = flatten(paths, root)
    same(got, truth)
    err = capsys.readouterr().err
    assert err.count("\n") <= 1 and "Traceback" not in err
    assert temporaries(xdg) == []
    # ... and what it wrote is trusted from then on, silently.
    monkeypatch.setattr(flat, "_parse", lambda *a: pytest.fail("parsed a valid cache again"))
    same(flatten(paths, root), truth)
    assert capsys.readouterr().err == ""


def test_concurrent_flattens(many_dtbs, tmp_path, monkeypatch, capsys):
    root, paths, truth = many_dtbs
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    procs = [subprocess.Popen([sys.executable, "-c", FLATTEN, str(root)], cwd=ROOT,
                              env=environment(xdg), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=HANG) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert [err for _, err in results] == ["", ""]
    monkeypatch.setattr(flat, "_parse", lambda *a: pytest.fail("parsed a valid cache again"))
    same(flatten(paths, root), truth)
    assert capsys.readouterr().err == "" and temporaries(xdg) == []


# -- every kind of cache file damaged -----------------------------------------------

@pytest.fixture
def small_built(small_tree, tmp_path):
    """A built SMALL_TREE (its tree aged), and its clean outputs."""
    for path in small_tree.rglob("*"):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 10**10))
    corpus = build_corpus(kernel=small_tree, out=tmp_path / "out")
    return corpus, outputs(corpus.root)


def flip(path, rng):
    """One bit of one byte, at a random place; returns the offset."""
    data = bytearray(path.read_bytes())
    at = rng.randrange(len(data))
    data[at] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    return at


def test_manifest_bit_flips(small_tree, small_built, capsys):
    corpus, clean = small_built
    manifest = corpus.root / MANIFEST
    good = manifest.read_bytes()
    rng = random.Random(9)
    for _ in range(12):
        manifest.write_bytes(good)
        at = flip(manifest, rng)
        capsys.readouterr()
        again = build_corpus(kernel=small_tree, out=corpus.root)
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(f"{manifest}: warning: "), (at, err)
        assert err[0].endswith("; building everything again"), (at, err)
        assert again.built == 10 and outputs(corpus.root) == clean, at
        good = manifest.read_bytes()


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_every_output_damaged(small_tree, small_built, capsys, damage):
    corpus, clean = small_built
    rng = random.Random(damage)
    for dtb in sorted(clean):
        path = corpus.root / dtb
        st = path.stat()
        if damage == "flip":
            flip(path, rng)
        else:
            path.write_bytes(b"" if damage == "empty" else clean[dtb][:rng.randrange(len(clean[dtb]))])
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        capsys.readouterr()
        again = build_corpus(kernel=small_tree, out=corpus.root)
        err = capsys.readouterr().err.splitlines()
        assert err and err[0].startswith(f"{path}: warning: changed since it was built ("), dtb
        assert len(err) == 1
        assert again.built >= 1 and outputs(corpus.root) == clean, dtb


def test_positions_cache_bit_flips(small_built, capsys):
    corpus, _ = small_built
    entry = corpus.entry("acme/acme-b.dtb")
    right = source_positions(corpus, entry)
    cache = corpus.root / ".positions/acme/acme-b.dtb.json"
    rng = random.Random(5)
    for _ in range(12):
        good = cache.read_bytes()
        at = flip(cache, rng)
        capsys.readouterr()
        assert source_positions(corpus, entry) == right, at
        err = capsys.readouterr().err
        assert err.startswith(f"{cache}: warning: source positions cache ") and err.count("\n") == 1
        assert cache.read_bytes() == good, "not written again"
        assert source_positions(corpus, entry) == right
        assert capsys.readouterr().err == ""


@pytest.fixture
def flat_cached(small_built, tmp_path, monkeypatch):
    corpus, _ = small_built
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    paths = [corpus.root / e.dtb for e in corpus.boards]
    truth = flatten(paths, corpus.root, cache=False)
    flatten(paths, corpus.root)
    (entry,) = (tmp_path / "xdg/dtb-audit/flat").iterdir()
    return corpus.root, paths, truth, entry


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_every_flat_file_damaged(flat_cached, capsys, damage):
    root, paths, truth, entry = flat_cached
    rng = random.Random(damage)
    files = [f"{name}.npy" for name, _ in ARRAYS] + ["meta.json"]
    for name in files:
        path = entry / name
        good = path.read_bytes()
        if damage == "flip":
            flip(path, rng)
        else:
            path.write_bytes(b"" if damage == "empty" else good[:rng.randrange(len(good))])
        capsys.readouterr()
        same(flatten(paths, root), truth)
        err = capsys.readouterr().err
        assert err.startswith(f"{entry}: warning: flattened corpus cache ") and err.count("\n") == 1, \
            (name, err)
        assert "Traceback" not in err
        same(flatten(paths, root), truth)             # written again, and trusted
        assert capsys.readouterr().err == "", name


def test_meta_json_bit_flips(flat_cached, capsys):
    root, paths, truth, entry = flat_cached
    rng = random.Random(17)
    for _ in range(20):
        at = flip(entry / "meta.json", rng)
        capsys.readouterr()
        same(flatten(paths, root), truth)
        err = capsys.readouterr().err
        assert err.startswith(f"{entry}: warning: flattened corpus cache "), (at, err)


# -- a full disk ------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs, and fill(leave) to use all of it but `leave` bytes."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({proc.stderr.strip() or 'not permitted'}): "
                    f"the full-disk cases need one")
    filler = mount / "filler"

    def fill(leave):
        filler.unlink(missing_ok=True)
        st = os.statvfs(mount)
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))

    fill.free = lambda: filler.unlink(missing_ok=True)
    yield mount, fill
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.parametrize("leave", [0, 4096, 12288])
def test_full_disk_under_out(tree, reference, small_disk, tmp_path, leave):
    mount, fill = small_disk
    out = mount / "out"
    fill(leave)
    args = ["corpus", "build", "--kernel", str(tree), "--out", str(out)]
    proc = run_cli(args, tmp_path / "xdg")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stdout_text == ""
    assert re.fullmatch(rf"{re.escape(str(out))}: error: No space left on device\n", proc.stderr)
    fill.free()
    again = build_corpus(kernel=tree, out=out)
    assert again.failed == 0 and outputs(out) == reference[0] and temporaries(out) == []


def test_full_disk_under_the_cache(tree, reference, small_disk):
    mount, fill = small_disk
    xdg = mount / "xdg"
    xdg.mkdir()
    fill(8192)
    args = ["corpus", "build", "--kernel", str(tree)]
    proc = run_cli(args, xdg)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert re.fullmatch(rf"{re.escape(str(xdg / 'dtb-audit' / 'dtbs'))}/[^/:]+: error: "
                        rf"No space left on device\n", proc.stderr)
    fill.free()
    again = run_cli(args, xdg)
    assert again.returncode == 0, again.stderr
    assert outputs(again.stdout_text.strip()) == reference[0]


def test_full_disk_while_saving_the_flat_cache(many_dtbs, small_disk, monkeypatch, capsys):
    root, paths, truth = many_dtbs
    mount, fill = small_disk
    monkeypatch.setenv("XDG_CACHE_HOME", str(mount / "xdg"))
    fill(64 * 1024)
    same(flatten(paths, root), truth)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith(
        ": warning: cannot write the flattened corpus cache: No space left on device\n")
    assert temporaries(mount) == []
    fill.free()
    same(flatten(paths, root), truth)
    assert capsys.readouterr().err == ""
