"""Shared fixtures.

real_corpus_factory builds a few real boards of a Debian linux-source
package, the way the product does (apt-get download, the tree's own dtc),
into the user's cache ($XDG_CACHE_HOME/dtb-audit), so a second test run
reuses the package, the extracted tree, the dtc and the DTBs.
"""

import pytest

from corpus.build import build_corpus


@pytest.fixture(scope="session")
def real_corpus_factory():
    """callable(debian, select) -> Corpus of the selected real boards, e.g.
    real_corpus_factory("linux-source-6.1", ["freescale/fsl-ls1028a-*"])."""
    built = {}

    def build(debian: str, select: list[str]):
        key = (debian, tuple(select))
        if key not in built:
            corpus = build_corpus(debian=debian, select=list(select))
            failed = [f"{e.dtb}: {e.error}" for e in corpus.entries if e.error]
            assert not failed, f"{debian}: real boards did not build: {failed}"
            assert corpus.entries, f"{debian}: nothing matches {select}"
            built[key] = corpus
        return built[key]

    return build
