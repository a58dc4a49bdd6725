"""What each DTB says, kept by its content (issue 19, item 6): a sweep after
an edit judges again only the DTBs whose bytes changed, identical DTBs of
two corpora are judged once, and a damaged kept judgement is judged again
with one warning line, the report unchanged."""
import os
import shutil
from pathlib import Path

import pytest

from auditor.cli import main
from corpora import snippet_corpus
from kernels import evaluate as evaluate_module

pytestmark = pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc")


@pytest.fixture
def judged_dtbs(monkeypatch):
    """A list that gets the DTB paths the kernels judge, run after run."""
    seen = []
    real = evaluate_module._run_kernels

    def counting(flat, *args):
        seen.extend(flat.paths)
        return real(flat, *args)
    monkeypatch.setattr(evaluate_module, "_run_kernels", counting)
    return seen


def sweep(capsys, *paths, out):
    status = main(["sweep", *map(str, paths), "--format", "json", "-o", str(out)])
    _, err = capsys.readouterr()
    assert status in (0, 1), err
    return out.read_bytes(), err


def test_after_an_edit_only_the_changed_dtb_is_judged(tmp_path, capsys, judged_dtbs,
                                                      monkeypatch):
    root = snippet_corpus(tmp_path / "dtbs")
    n = len(list(root.glob("*.dtb")))
    first, _ = sweep(capsys, root, out=tmp_path / "1.json")
    assert len(judged_dtbs) == n
    judged_dtbs.clear()
    again, _ = sweep(capsys, root, out=tmp_path / "2.json")
    assert judged_dtbs == [] and again == first
    # One board edited: the "new" version's acme,pci board (its SMMU gains dma-coherent).
    new = snippet_corpus(tmp_path / "new", "new")
    changed = [p.name for p in sorted(new.glob("*.dtb"))
               if (root / p.name).is_file() and (root / p.name).read_bytes() != p.read_bytes()]
    assert changed
    shutil.copyfile(new / changed[0], root / changed[0])
    edited, _ = sweep(capsys, root, out=tmp_path / "3.json")
    assert judged_dtbs == [changed[0]]
    judged_dtbs.clear()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other-cache"))   # nothing kept
    fresh, _ = sweep(capsys, root, out=tmp_path / "4.json")
    assert len(judged_dtbs) == n and fresh == edited


def test_identical_dtbs_of_two_corpora_are_judged_once(tmp_path, capsys, judged_dtbs):
    a = snippet_corpus(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    n = len(list(a.glob("*.dtb")))
    both, _ = sweep(capsys, a, b, out=tmp_path / "ab.json")
    assert len(judged_dtbs) == n
    assert both.count(b'"a/') and both.count(b'"b/')
    judged_dtbs.clear()
    sweep(capsys, b, out=tmp_path / "b.json")
    assert judged_dtbs == []


def test_the_links_of_copies_are_each_copys_own_in_any_order(tmp_path, capsys):
    """Two copies swept as one corpus: each copy's DTBs have the links of
    the other's, under their own names; the links read one by one, by index
    (from either end) and back from the saved document are the same."""
    from collections import Counter

    from auditor.corpora import sweep_of
    from auditor.model import load_sweep
    from kernels.judging import Judging
    a, b = snippet_corpus(tmp_path / "a"), tmp_path / "b"
    shutil.copytree(a, b)
    sweep(capsys, a, b, out=tmp_path / "ab.json")
    one = sweep_of(str(a), Judging())
    result = sweep_of(str(tmp_path / "ab.json"), Judging())
    both = main(["sweep", str(a), str(b), "--format", "jsonl", "-o", str(tmp_path / "ab.jsonl")])
    assert both in (0, 1)
    from auditor.sweep import sweep_corpus
    from corpus.build import open_corpora
    live = sweep_corpus(open_corpora([a, b]))
    links = list(live.links)
    assert len(live.links) == len(links) == 2 * len(one.links) > 0
    assert [live.links[k] for k in range(len(links))] == links
    assert [live.links[-k] for k in range(1, len(links) + 1)] == links[::-1]
    with pytest.raises(IndexError):
        live.links[len(links)]
    by_copy = {c: Counter(link._replace(dtb=link.dtb[2:]) for link in links
                          if link.dtb.startswith(c + "/")) for c in "ab"}
    assert by_copy["a"] == by_copy["b"] == Counter(one.links)
    assert live.links == result.links == load_sweep(tmp_path / "ab.json").links
    assert len((tmp_path / "ab.jsonl").read_text().splitlines()) == len(links)


def test_a_sweep_keeps_records_not_flattened_arrays(tmp_path, capsys):
    """docs/store.md: what a sweep keeps is each DTB's records; the
    flattened arrays (flat/) serve explain and bootlog, not the sweep."""
    root = snippet_corpus(tmp_path / "dtbs")
    sweep(capsys, root, out=tmp_path / "1.json")
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "dtb-audit"
    assert len(list(cache.glob("judged/*/*.json"))) == len(list(root.glob("*.dtb")))
    assert not any(cache.glob("flat/*"))


@pytest.mark.parametrize("damage", ["flip", "truncate", "fifo", "symlink"])
def test_a_damaged_kept_judgement_is_judged_again(tmp_path, capsys, judged_dtbs, damage):
    root = snippet_corpus(tmp_path / "dtbs")
    first, _ = sweep(capsys, root, out=tmp_path / "1.json")
    kept = sorted(Path(os.environ["XDG_CACHE_HOME"]).glob("dtb-audit/judged/*/*.json"))
    assert kept, "no judgement kept per DTB"
    entry = kept[0]
    if damage == "flip":
        data = bytearray(open(entry, "rb").read())
        data[len(data) // 2] ^= 0x01
        open(entry, "wb").write(bytes(data))
    elif damage == "truncate":
        os.truncate(entry, os.path.getsize(entry) // 2)
    elif damage == "fifo":
        os.unlink(entry)
        os.mkfifo(entry)
    else:
        target = tmp_path / "elsewhere.json"
        shutil.copyfile(entry, target)
        os.unlink(entry)
        os.symlink(target, entry)
    judged_dtbs.clear()
    again, err = sweep(capsys, root, out=tmp_path / "2.json")
    assert again == first
    assert len(judged_dtbs) == 1
    warnings = [line for line in err.splitlines() if "judged" in line]
    assert len(warnings) == 1 and os.path.basename(entry) in warnings[0], err
    judged_dtbs.clear()
    sweep(capsys, root, out=tmp_path / "3.json")
    assert judged_dtbs == []


def test_kept_judgements_are_pruned_to_the_most_recently_used(tmp_path, capsys, monkeypatch):
    from auditor import judged
    monkeypatch.setattr(judged, "KEEP_ENTRIES", 3)
    root = snippet_corpus(tmp_path / "dtbs")
    sweep(capsys, root, out=tmp_path / "1.json")
    kept = list(Path(os.environ["XDG_CACHE_HOME"]).glob("dtb-audit/judged/*/*.json"))
    assert len(kept) == 3
