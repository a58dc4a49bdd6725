"""Checking a series: `git apply --check` of every patch, and the loop
that applies it to a copy of the tree, rebuilds the boards of the SoCs it
touches, sweeps them again and says, per SoC, whether it is still affected.
"""
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass

from ..model import NAMELESS


def check_series(kernel_dir, paths):
    """[(patch path, git's message)] for every patch `git apply --check` refuses."""
    failed = []
    for path in paths:
        proc = _git_apply(kernel_dir, ["--check", os.path.abspath(path)])
        if proc.returncode:
            failed.append((path, proc.stderr.strip() or f"git apply exited {proc.returncode}"))
    return failed


def _git_apply(tree, args):
    # The ceiling keeps git from taking an unrelated repository above the
    # tree as the one to apply in (it would resolve paths against that).
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=os.path.dirname(os.path.abspath(tree)))
    return subprocess.run(["git", "apply", *args], cwd=tree, env=env,
                          capture_output=True, text=True, errors="backslashreplace")


@dataclass
class Verification:
    """What sweeping the patched tree again showed, per SoC the series touches.

    socs: soc -> {"before": affected before, "after": affected after (None
    when the SoC was not rebuilt), "patched": [{"path", "coherent",
    "affected"}] for its patched SMMUs, "others": [paths of SMMUs that were
    not patched and still have affected links]}.  A SoC may stay affected
    through an SMMU the series leaves alone (a GPU SMMU whose masters are
    not coherent either); the series did its part when every patched SMMU
    is coherent and has no affected link left."""
    socs: dict
    not_applied: list        # [(patch path, git's message)]
    failed_builds: list      # [(dtb, first error line)]

    @property
    def ok(self):
        return not self.not_applied and not self.failed_builds and all(
            s["after"] is not None and all(p["coherent"] and not p["affected"]
                                           for p in s["patched"])
            for s in self.socs.values())


def verify_series(series, sweep, kernel_dir, work=None, jobs=None):
    """Apply `series` (written with write_series) to a copy of the DT parts
    of `kernel_dir`, rebuild the boards of the SoCs it touches, sweep them
    under the same target kernel and rule, and say what is still affected.

    `work`: a folder for the copy and the DTBs (a temporary one by default)."""
    from auditor.sweep import sweep_corpus
    from corpus.build import build_corpus
    from corpus.sources import copy_dt_tree

    if series.patches and not series.files:
        raise ValueError("verify_series: write the series first (write_series)")
    # None: a SoC without a name (its DTBs have no root compatible), first.
    touched = sorted({soc for p in series.patches for c in p.candidates for soc in c.socs},
                     key=lambda soc: (soc is not None, soc or ""))
    before = {s.soc: s for s in sweep.socs}
    # affected_boards too: a SoC without a name lists no boards of its own.
    boards = sorted({b for soc in touched if soc in before
                     for b in before[soc].boards + before[soc].affected_boards})
    with tempfile.TemporaryDirectory(prefix="dtb-audit-verify-") as scratch:
        work = work or scratch
        tree = os.path.join(work, "tree")
        copy_dt_tree(os.fspath(kernel_dir), tree)
        not_applied = []
        for path in series.files[1:]:
            proc = _git_apply(tree, [os.path.abspath(path)])
            if proc.returncode:
                not_applied.append((path, proc.stderr.strip()))
        corpus = build_corpus(kernel=tree, out=os.path.join(work, "dtbs"), jobs=jobs,
                              select=[_glob_escape(b) for b in boards])
        after = sweep_corpus(corpus, sweep.judging)
    now = {s.soc: s for s in after.socs}
    patched = {(soc, c.path) for p in series.patches for c in p.candidates for soc in c.socs}
    result = {}
    for soc in touched:
        s = now.get(soc)
        providers = s.providers if s else ()
        result[soc] = {
            "before": bool(soc in before and before[soc].affected),
            "after": s.affected if s is not None else None,
            "patched": [{"path": p.path, "coherent": p.coherent, "affected": p.affected}
                        for p in providers if (soc, p.path) in patched],
            "others": [p.path for p in providers if (soc, p.path) not in patched and p.affected],
        }
    failed = [(e.dtb, e.error) for e in corpus.entries if e.error]
    return Verification(result, not_applied, failed)


def format_verification(v):
    """The check loop's outcome for people, one line per SoC."""
    out = []
    for path, message in v.not_applied:
        out.append(f"{path}: error: does not apply: {message.splitlines()[0] if message else ''}\n")
    for dtb, message in v.failed_builds:
        out.append(f"{dtb}: error: {message}\n")
    for soc, s in v.socs.items():
        state = "not rebuilt" if s["after"] is None else \
            "still affected" if s["after"] else "no longer affected"
        bad = [p["path"] for p in s["patched"] if not p["coherent"] or p["affected"]]
        line = f"{soc or NAMELESS}: {'affected' if s['before'] else 'unaffected'} -> {state}"
        if bad:
            line += f"; patched SMMU not fixed: {', '.join(bad)}"
        if s["others"]:
            line += f"; through SMMUs the series leaves alone: {', '.join(s['others'])}"
        out.append(line + "\n")
    return "".join(out)


def _glob_escape(name):
    return re.sub(r"([*?[])", r"[\1]", name)
