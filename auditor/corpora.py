"""What a command's arguments name: a corpus to build or open, or a sweep
(a saved one, or a corpus swept now). The CLI reads the arguments; this
module turns them into a Corpus or a Sweep, and raises UserError for a name
that is neither."""
from __future__ import annotations

import os
import re

from corpus.errors import UserError

# "linux-source-6.1", "sid/linux-source-7.2": a Debian package, possibly of another suite.
DEBIAN_PACKAGE = re.compile(r"^([a-z][a-z0-9-]*/)?linux-source-\d+(\.\d+)*$")


def build(source: dict, jobs=None, **more):
    """The corpus of one source option ({"kernel": DIR, "tarball": ...,
    "debian": ..., "dtbs": ...}, all None: the default), built or reused."""
    from corpus.build import build_corpus
    return build_corpus(**source, jobs=jobs, **more)


def corpus_of(paths, source: dict, partial=False, jobs=None):
    """The corpus named by PATHs (several make one, names kept apart) or by
    a source option; the default corpus when neither is given."""
    if paths and any(source.values()):
        raise UserError(None, "give PATHs or one source option, not both")
    if paths:
        from corpus.build import open_corpora
        return open_corpora(paths, partial=partial)
    return build(source, jobs, partial=partial)


def swept(corpus, judging, warn_newer=None):
    """The Sweep of a corpus under `judging`; warn_newer(targets) is told
    its target kernel first."""
    from .sweep import sweep_corpus, target_of
    if warn_newer is not None:
        warn_newer([target_of(corpus, judging)])
    return sweep_corpus(corpus, judging)


def sweep_of(arg, judging, jobs=None, warn_newer=None):
    """A Sweep from an argument: a saved sweep (read, no numba), or a corpus
    (a kernel tree, a tarball, a Debian package, a DTB folder), swept now."""
    from .model import load_sweep
    if os.path.isfile(arg) and _is_json(arg):
        return load_sweep(arg)
    from corpus.build import build_corpus, open_corpus
    if os.path.exists(arg):
        corpus = open_corpus(arg)
    elif DEBIAN_PACKAGE.match(arg):
        corpus = build_corpus(debian=arg, jobs=jobs)
    else:
        raise UserError(arg, "no such file or folder, and not a Debian "
                             "[suite/]linux-source-X package name")
    return swept(corpus, judging, warn_newer)


def _is_json(path):
    if path.endswith(".json"):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(64).lstrip()[:1] in (b"{", b"[", b"n")
    except OSError:
        return False
