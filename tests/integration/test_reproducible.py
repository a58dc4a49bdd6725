"""Reports are the same bytes on every run: nothing in them follows Python's
per-process string hashing (PYTHONHASHSEED), so a nightly run can be compared
with the last one by `diff` and a site republished only when it changed."""
import json
import os
import subprocess
import sys

from testpaths import GOLDEN, ROOT

SEEDS = ("0", "1", "2", "3", "4", "5")


def run(seed, *argv, cwd):
    env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "auditor.cli", *map(str, argv)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.stdout


def files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_site_diff_and_history_do_not_depend_on_the_hash_seed(tmp_path):
    # Both verdicts that accuse an SMMU occur in one SoC of the snippet sweep,
    # so its page names them in a sentence.
    old = tmp_path / "old.json"
    old.write_text((GOLDEN / "snippets" / "sweep.json").read_text()
                   .replace("{TMP}", str(tmp_path)))
    new = tmp_path / "new.json"
    new.write_text((GOLDEN / "minikernel" / "sweep.json").read_text()
                   .replace("{TMP}", str(tmp_path)))
    outputs = []
    for seed in SEEDS:
        out = tmp_path / f"site-{seed}"
        run(seed, "site", out, "--sweep", old, "--previous", new, cwd=tmp_path)
        outputs.append((files(out),
                        run(seed, "diff", new, old, "--format", "json", cwd=tmp_path),
                        run(seed, "history", new, old, "--format", "json", cwd=tmp_path)))
    pages = outputs[0][0]
    assert any(b"Evidence that the SMMU lacks dma-coherent: " in page for page in pages.values())
    assert json.loads(outputs[0][1])["kind"] == "diff"
    for seed, other in zip(SEEDS[1:], outputs[1:]):
        assert other == outputs[0], f"PYTHONHASHSEED={seed} wrote other bytes"
