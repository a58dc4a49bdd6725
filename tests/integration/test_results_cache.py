"""The kernels' results kept next to the flattened arrays (kernels/results.py):
reused only for the very same evaluation of the very same arrays, never
when anything they depend on changed or a file is damaged."""
import json
import shutil

import numpy as np
import pytest

from corpora import snippet_corpus
from corpus.flat import flatten
from kernels import evaluate as evaluate_module
from kernels import results
from kernels.codes import Rule
from kernels.evaluate import ARRAYS, evaluate
from kernels.judging import Judging
from kernels.target import TargetKernel
from store import bundle, stamps
from store.sealed import checksum

pytestmark = pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc")

T72 = TargetKernel.parse("7.2")


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    """The flattened snippet corpus, cached under tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = snippet_corpus(tmp_path / "dtbs")
    paths = sorted(root.glob("*.dtb"))
    return lambda: flatten(paths, root)


def _ran(monkeypatch):
    """A list that gets one item each time the kernels run."""
    runs = []
    real = evaluate_module._run_kernels

    def counting(*args):
        runs.append(args[1:])
        return real(*args)
    monkeypatch.setattr(evaluate_module, "_run_kernels", counting)
    return runs


def same(a, b):
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name


def entries(flat):
    return sorted(p.name for p in (flat.cache_folder / "results").iterdir()
                  if not p.name.startswith("."))


def test_the_same_evaluation_is_loaded_not_run(corpus, monkeypatch):
    runs = _ran(monkeypatch)
    first = evaluate(corpus(), T72)
    again = evaluate(corpus(), T72)
    assert len(runs) == 1
    same(first, again)
    assert again.links.shape[0] > 0 and not again.links.flags.writeable
    fresh = evaluate(corpus(), T72, cache=False)
    assert len(runs) == 2
    same(first, fresh)


def test_kept_results_once_old_enough_are_not_read_whole(corpus, monkeypatch):
    """As the flattened arrays: a results file whose stamp was kept, and is
    old enough to vouch for it, is mapped without being read whole."""
    monkeypatch.setattr(stamps, "RACY_NS", 0)
    evaluate(corpus(), T72)
    read_whole = []
    real = bundle._file_crc
    monkeypatch.setattr(bundle, "_file_crc", lambda fh: read_whole.append(fh.name) or real(fh))
    folder = _kept(corpus())
    evaluate(corpus(), T72)
    assert not [f for f in read_whole if str(folder) in f]


@pytest.mark.parametrize("other", [
    dict(target=TargetKernel.parse("6.12")),
    dict(target=TargetKernel.parse("6.1.2")),
    dict(judging=Judging(rule=Rule.WALK_ONLY)),
    dict(judging=Judging(legacy_dt_bindings=False)),
])
def test_another_target_rule_or_binding_runs_the_kernels(corpus, monkeypatch, other):
    evaluate(corpus(), T72)
    runs = _ran(monkeypatch)
    args = {"target": T72, **other}
    ev = evaluate(corpus(), **args)
    assert len(runs) == 1
    same(ev, evaluate(corpus(), **args, cache=False))
    assert len(entries(corpus())) == 2


def test_a_rule_override_changes_the_verdicts_it_keeps(corpus):
    """Not only keyed apart: the kept verdicts are those of each rule."""
    walk = evaluate(corpus(), T72)
    legacy = evaluate(corpus(), T72, Judging(rule=Rule.LEGACY_TRUE))
    assert not np.array_equal(walk.verdict, legacy.verdict)
    assert np.array_equal(evaluate(corpus(), T72, Judging(rule=Rule.LEGACY_TRUE)).verdict, legacy.verdict)


def test_changed_kernel_sources_change_the_key(tmp_path, monkeypatch):
    before = results.key(T72, 0, True)
    scratch = tmp_path / "kernels"
    shutil.copytree(results.KERNELS_DIR, scratch, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(results, "KERNELS_DIR", scratch)
    monkeypatch.setattr(results, "_sources", None)
    assert results.key(T72, 0, True) == before          # the same sources: the same key
    monkeypatch.setattr(results, "_sources", None)
    dt = scratch / "dt.py"
    dt.write_text(dt.read_text().replace('"okay"', '"okey"'))
    assert results.key(T72, 0, True) != before


@pytest.mark.parametrize("package", ["numba", "llvmlite"])
def test_another_compiler_version_changes_the_key(tmp_path, monkeypatch, package):
    """Results computed with another numba or llvmlite are not reused: the
    key follows the installed version (read from the package's metadata)."""
    before = results.key(T72, 0, True)
    monkeypatch.setattr(results, "_sources", None)
    assert results.key(T72, 0, True) == before          # nothing changed: the same key
    info = tmp_path / f"{package}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.0.1\n")
    monkeypatch.syspath_prepend(str(tmp_path))          # found before the installed one
    monkeypatch.setattr(results, "_sources", None)
    assert results.key(T72, 0, True) != before


def test_a_changed_dtb_is_another_flat_entry(corpus, tmp_path, monkeypatch):
    first = evaluate(corpus(), T72)
    board = tmp_path / "dtbs" / "fine-evk.dtb"
    board.write_bytes(board.read_bytes())               # same bytes, new stamps
    runs = _ran(monkeypatch)
    same(first, evaluate(corpus(), T72))
    assert len(runs) == 1


def _kept(flat):
    (folder,) = [p for p in (flat.cache_folder / "results").iterdir()
                 if not p.name.startswith(".")]
    return folder


@pytest.mark.parametrize("damage, problem", [
    (lambda f: f.write_bytes(f.read_bytes()[:-1] + bytes([f.read_bytes()[-1] ^ 1])),
     "has a corrupt verdict.npy (checksum)"),
    (lambda f: f.write_bytes(b""), "is unusable (verdict.npy is 0 bytes, not the "),
    (lambda f: f.unlink(), "is unreadable"),
    (lambda f: (f.parent / "meta.json").write_text(
        (f.parent / "meta.json").read_text().replace('"key": "', '"key": "0')),
     "has a damaged meta.json (checksum)"),
])
def test_damaged_results_are_one_warning_and_evaluated_again(corpus, monkeypatch, capsys,
                                                            damage, problem):
    first = evaluate(corpus(), T72)
    folder = _kept(corpus())
    damage(folder / "verdict.npy")
    capsys.readouterr()
    runs = _ran(monkeypatch)
    again = evaluate(corpus(), T72)
    assert len(runs) == 1
    same(first, again)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{folder}: warning: cached results {problem}")
    assert line.endswith("; evaluating again")
    runs.clear()
    evaluate(corpus(), T72)                              # written afresh, trusted again
    assert runs == []


def test_a_resealed_meta_with_other_arrays_is_not_used(corpus, monkeypatch, capsys):
    """A meta.json with a valid checksum but another key is another evaluation."""
    evaluate(corpus(), T72)
    meta_file = _kept(corpus()) / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta["key"] = "0" * 16
    meta["checksum"] = checksum(meta)
    meta_file.write_text(json.dumps(meta))
    runs = _ran(monkeypatch)
    evaluate(corpus(), T72)
    assert len(runs) == 1
    assert "cached results is for another evaluation" in capsys.readouterr().err


def test_an_unwritable_cache_is_one_warning(corpus, monkeypatch, capsys):
    flat = corpus()
    (flat.cache_folder / "results").write_text("a file where the folder goes")
    capsys.readouterr()
    ev = evaluate(flat, T72)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{flat.cache_folder / 'results'}") and \
        ": warning: cannot keep the results: " in line
    same(ev, evaluate(flat, T72, cache=False))


def test_an_uncached_flatten_keeps_no_results(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = snippet_corpus(tmp_path / "dtbs")
    flat = flatten(sorted(root.glob("*.dtb")), root, cache=False)
    assert flat.cache_folder is None
    runs = _ran(monkeypatch)
    evaluate(flat, T72)
    evaluate(flat, T72)
    assert len(runs) == 2


def test_old_keys_are_pruned(corpus, monkeypatch):
    monkeypatch.setattr(results, "KEEP_OTHER_KEYS", 1)
    for version in ("5.10", "6.1", "6.12", "7.2"):
        evaluate(corpus(), TargetKernel.parse(version))
    assert len(entries(corpus())) == 2
    # The most recent two are kept: 7.2 loads, 5.10 runs again.
    runs = _ran(monkeypatch)
    evaluate(corpus(), TargetKernel.parse("7.2"))
    assert runs == []
    evaluate(corpus(), TargetKernel.parse("5.10"))
    assert len(runs) == 1
