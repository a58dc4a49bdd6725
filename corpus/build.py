"""The corpus layer's entry points, in the order of the flow:

    sources.py, debian.py   a kernel tree from a folder, a tarball, Debian's package
    kbuild.py, dtc.py       the tree's Makefiles; its dtc
    plan.py                 the tree's rules; what to rebuild
    compile.py              cpp, dtc, fdtoverlay on all cores
    manifest.py             what was built, from what
    build_tree.py           one tree's incremental build
    model.py, opening.py    the Corpus; folders of DTBs; several merged
    positions.py            in which .dtsi and line each node is written
    flat.py                 the DTBs as columnar arrays (the kernels' input)
    git.py                  revisions and worktrees (history --git)

build_corpus() takes a kernel tree (a folder, a tarball, Debian's
linux-source-X of this machine's suite or of another, "sid/linux-source-7.2";
Linux 6.12 from Debian when nothing is given) or a folder of built DTBs;
open_corpus() opens a DTB, a folder of DTBs or a kernel tree;
open_corpora() several of them as one corpus. MANIFEST, Corpus, Entry and
source_positions are named here too, where auditor/ imports them from.
docs/corpus.md says how the build trusts what it reuses.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from corpus.build_tree import build_tree, check_jobs
from corpus.debian import DEFAULT_DEBIAN, from_debian
from corpus.errors import UserError
from corpus.kbuild import DTS_DIR
from corpus.manifest import MANIFEST
from corpus.model import Corpus, Entry
from corpus.opening import dtb_folder, merge, one_dtb, readable_name
from corpus.positions import source_positions
from corpus.sources import from_kernel_dir, from_tarball
from store.durable import is_temporary

__all__ = ["MANIFEST", "Corpus", "Entry", "build_corpus", "open_corpora", "open_corpus",
           "source_positions"]


def build_corpus(kernel=None, tarball=None, debian=None, dtbs=None, out=None, jobs=None,
                 select=None, partial=False) -> Corpus:
    """Build (or reuse) the corpus of one source; Debian's linux-source-6.12 by default.

    kernel: a kernel source tree; tarball: a kernel .tar.xz/.tar.gz; debian:
    `linux-source-X` of this machine's Debian suite, or `SUITE/linux-source-X`
    of another one (sid/linux-source-7.2); dtbs: a folder of built DTBs, used
    as it is (partial: accept an incomplete build's folder). out: build into
    this folder instead of the cache. jobs: parallel compilers (all cores by
    default). select: fnmatch globs on DTB paths ("freescale/fsl-ls10*") to
    build only those, plus what selected composites are made of. Raises
    a UserError for an unusable source, a missing tool, a bad option or a
    file system that refuses (full disk); a file that does not compile is an
    Entry with an error.
    """
    given = [name for name, value in (("kernel", kernel), ("tarball", tarball),
                                      ("debian", debian), ("dtbs", dtbs)) if value]
    if len(given) > 1:
        raise UserError(None, f"give one source, not {' and '.join(given)}")
    check_jobs(jobs)  # before any download
    try:
        if dtbs:
            return dtb_folder(Path(dtbs), partial)
        if kernel:
            source = from_kernel_dir(Path(kernel))
        elif tarball:
            source = from_tarball(Path(tarball))
        else:
            source = from_debian(debian or DEFAULT_DEBIAN)
        return build_tree(source, out=out, jobs=jobs, select=select)
    except OSError as why:
        raise _os_error(why) from None


def _os_error(why: OSError, where=None) -> UserError:
    """One line for a file system that refused: the file (the folder, for one of
    our temporaries), what is wrong."""
    name = why.filename if why.filename is not None else where
    if name is not None and is_temporary(Path(os.fsdecode(name))):
        name = Path(os.fsdecode(name)).parent
    return UserError(name, str(why.strerror or why))


def open_corpus(path, partial: bool = False) -> Corpus:
    """A corpus from a .dtb file, a folder of DTBs, a kernel tree (built) or a kernel tarball.

    partial: accept the folder of a build that did not finish (Corpus.partial
    says so); without it such a folder is a UserError.
    """
    path = Path(path)
    try:
        if path.is_file() and path.suffix in (".dtb", ".dtbo"):
            return one_dtb(path, partial)
        if path.is_file() and re.search(r"\.(tar(\.\w+)?|tgz)$", path.name):
            return build_corpus(tarball=path)
        if path.is_dir() and (path / DTS_DIR).is_dir() and not (path / MANIFEST).is_file():
            return build_corpus(kernel=path)
        if path.is_dir():
            return dtb_folder(path, partial)
    except OSError as why:
        raise _os_error(why, path) from None
    if not path.exists():
        raise UserError(readable_name(path), "no such file or folder")
    raise UserError(readable_name(path),
                          "not a .dtb, a folder of DTBs, a kernel tree or a tarball")


def open_corpora(paths, partial: bool = False) -> Corpus:
    """Several PATHs (as open_corpus takes them) as one corpus (opening.merge)."""
    members = [open_corpus(p, partial) for p in paths]
    if not members:
        raise UserError(None, "no PATH given")
    return merge(members)
