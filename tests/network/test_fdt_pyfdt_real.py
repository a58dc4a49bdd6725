"""The numba parser against pyfdt (corpus/pyfdt_check.py) on real boards,
composites and overlays of Debian's Linux 6.12 and 6.1: they agree, node for
node and property for property."""
from corpus import pyfdt_check
from corpus.flat import flatten

# Boards, composites (base + overlay by fdtoverlay) and overlays alone, from
# SoC families whose DTBs use many property types and -@ symbols.
SAMPLE = ["freescale/fsl-ls1028a-*", "amlogic/meson-g12a-fbx8am*", "ti/k3-am642-*",
          "rockchip/rk3399-rock-pi-4*", "apple/t8103-j274.dtb", "qcom/sm8550-qrd.dtb"]


def test_real_boards_agree_with_pyfdt(real_corpus_factory):
    corpus = real_corpus_factory("linux-source-6.12", SAMPLE)
    files = [corpus.root / e.dtb for e in corpus.entries]
    kinds = {e.kind for e in corpus.entries}
    assert kinds == {"board", "composite", "overlay"} and len(files) >= 20
    fc = flatten(files, corpus.root, cache=False)
    assert fc.errors() == []
    assert pyfdt_check.check(fc) == []
    # Something was compared: every node and property of every DTB.
    n = sum(len(pyfdt_check.pyfdt_records(f)) for f in files[:3])
    assert n == sum(len(pyfdt_check.flat_records(fc, d)) for d in range(3)) > 1000


def test_older_kernel_agrees_too(real_corpus_factory):
    corpus = real_corpus_factory("linux-source-6.1", ["freescale/fsl-ls1028a-*"])
    fc = flatten([corpus.root / e.dtb for e in corpus.entries], corpus.root, cache=False)
    assert fc.errors() == [] and pyfdt_check.check(fc) == []
