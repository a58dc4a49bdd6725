"""The candidate patch series: `dma-coherent;` for SMMU nodes that lack it.

    dts.py         DTS source editing: statements, the node at a line, the edit
    candidates.py  which SMMU nodes the evidence accuses (docs/rule.md)
    series.py      the mbox patches and the cover letter
    recipients.py  their To: and Cc:, from the tree's get_maintainer.pl
    verify.py      git apply --check, and apply + rebuild + sweep again
    inputs.py      what a series is made from: a saved sweep and its tree

The loop on a real tree (Debian's 6.1 here; `--kernel DIR` for your own):
    dtb-audit patch --debian linux-source-6.1 -o out/ --verify
"""
from .candidates import Candidate, Skip, candidates
from .recipients import Recipients
from .series import Patch, PatchError, Series, make_series, remove_old_series, write_series
from .verify import Verification, check_series, format_verification, verify_series


def run(sweep, kernel_dir, out_dir, dependencies=None, verify=False, author=None,
        signoff=False, fixes=None, jobs=None, out=None, err=None, recipients=True):
    """`dtb-audit patch`: write the series for `sweep` into out_dir, check it.

    Exit status: 0 with the series written (or nothing to patch), 1 when a
    patch does not apply or --verify finds a patched SMMU not fixed."""
    import sys
    out = out or sys.stdout
    err = err or sys.stderr
    series = make_series(sweep, kernel_dir, dependencies, author=author, signoff=signoff,
                         fixes=fixes, recipients=recipients)
    for skip in series.skips:
        err.write(f"{skip.where or skip.path}: warning: {skip.path} "
                  f"({', '.join(skip.socs)}) not patched: {skip.reason}\n")
    for warning in series.warnings:
        err.write(warning + "\n")
    if not series.patches:
        err.write("dtb-audit: no SMMU node to patch\n")
        return 0
    remove_old_series(out_dir)
    files = write_series(series, out_dir)
    for path in files:
        out.write(path + "\n")
    status = 0
    for path, message in check_series(kernel_dir, files[1:]):
        err.write(f"{path}: error: git apply --check: {message}\n")
        status = 1
    if verify and status == 0:
        result = verify_series(series, sweep, kernel_dir, jobs=jobs)
        err.write(format_verification(result))
        status = 0 if result.ok else 1
    return status


__all__ = ["Candidate", "Patch", "PatchError", "Recipients", "Series", "Skip", "Verification",
           "candidates", "check_series", "format_verification", "make_series", "run",
           "verify_series", "write_series"]
