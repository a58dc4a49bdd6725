"""What `patch` works from: a saved sweep and the kernel tree it names, or
a tree swept now; the commit that wrote a line, for Fixes: tags."""
from __future__ import annotations

import os

from corpus.errors import UserError

from ..text import shown
from .dts import OutsideTree, tree_file


def saved_sweep_and_tree(path, kernel_dir=None):
    """(Sweep, kernel tree, its corpus or None) of a saved sweep: the tree
    given, else the one the sweep names; every source file the sweep names
    is checked to be a file of that tree before any is opened."""
    from corpus.build import MANIFEST, open_corpus

    from ..model import load_sweep
    sweep = load_sweep(path)
    kernel_dir = kernel_dir or sweep.corpus.kernel_dir
    if not kernel_dir or not os.path.isdir(kernel_dir):
        raise UserError(path, "the sweep names no kernel tree that is here: give --kernel DIR")
    for s in sweep.socs:
        for p in s.providers:
            if p.source_file:
                try:
                    tree_file(kernel_dir, p.source_file)
                except OutsideTree as why:
                    raise UserError(path, shown(str(why))) from None
    # Its corpus only when it is one (a manifest says what each board was
    # built from): a saved root such as "/" is not walked.
    root = sweep.corpus.root
    corpus = open_corpus(root) if os.path.isfile(os.path.join(root, MANIFEST)) else None
    return sweep, kernel_dir, corpus


def fixes(kernel_dir):
    """The commit that introduced a line (path, line) -> (sha, subject),
    when the tree is a git checkout; None otherwise."""
    from corpus.git import introducing_commit, is_checkout
    if not is_checkout(kernel_dir):
        return None
    return lambda path, line: introducing_commit(kernel_dir, path, line)
