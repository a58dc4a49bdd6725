"""The corpus of real kernels, from Debian's linux-source packages as the
product fetches them (cached in $XDG_CACHE_HOME/dtb-audit between runs):
this machine's suite, and other suites through the private apt
configuration (sid's Linux 7.2, bullseye's Linux 5.10)."""

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from corpus.build import build_corpus, open_corpus, source_positions
from corpus.dtc import accepts_flags, tree_tools
from corpus.kbuild import DTS_DIR
from store.folders import cache_dir

pytestmark = pytest.mark.network

LAYERSCAPE = ["freescale/fsl-ls1028a-*", "freescale/fsl-ls1088a-*"]


def test_default_corpus_is_all_of_linux_6_12():
    """The newcomer's corpus: every .dts, .dtso and composite of v6.12 (SPEC 5)."""
    corpus = build_corpus()
    assert corpus.identity.startswith("linux-6.12.") and "debian linux-source-6.12" in corpus.identity
    kinds = {kind: sum(e.kind == kind for e in corpus.entries)
             for kind in ("board", "overlay", "composite")}
    # 1,118 boards, 99 overlays and 101 composites in 6.12.117; any point
    # release of the series stays near that.
    assert 1100 <= kinds["board"] <= 1150 and 95 <= kinds["overlay"] <= 110, kinds
    assert 95 <= kinds["composite"] <= 110, kinds
    assert [f"{e.dtb}: {e.error}" for e in corpus.entries if e.error] == []
    assert len(corpus.boards) == kinds["board"] + kinds["composite"]
    # a second run compiles nothing
    again = build_corpus()
    assert (again.root, again.built, again.failed, again.reused) == (
        corpus.root, 0, 0, len(corpus.entries))


def test_layerscape_boards_of_6_1(real_corpus_factory):
    corpus = real_corpus_factory("linux-source-6.1", LAYERSCAPE)
    names = {e.dtb for e in corpus.boards}
    assert {"freescale/fsl-ls1028a-rdb.dtb", "freescale/fsl-ls1088a-rdb.dtb",
            "freescale/fsl-ls1028a-qds-65bb.dtb"} <= names
    assert all(n.startswith(("freescale/fsl-ls1028a-", "freescale/fsl-ls1088a-")) for n in names)
    # v6.1 overlays are .dts files named .dtbo
    overlay = next(e for e in corpus.entries if e.dtb == "freescale/fsl-ls1028a-qds-65bb.dtbo")
    assert overlay.kind == "overlay" and overlay.source.endswith("fsl-ls1028a-qds-65bb.dts")


def test_tree_dtc_builds_what_debian_dtc_cannot(real_corpus_factory):
    """v6.12's LS1088A boards pass -Wno-interrupt_map, unknown to dtc 1.6.1."""
    corpus = real_corpus_factory("linux-source-6.12", ["freescale/fsl-ls1088a-rdb.dtb"])
    assert corpus.entry("freescale/fsl-ls1088a-rdb.dtb").error is None
    tools = tree_tools(corpus.kernel_dir, cache_dir(), set())
    assert "DTC 1.7" in tools.dtc_version and "the tree's scripts/dtc" in tools.dtc_version
    system = shutil.which("dtc")
    if system and "1.6." in subprocess.run([system, "--version"], capture_output=True,
                                           text=True).stdout:
        assert not accepts_flags(system, {"-Wno-interrupt_map"})


def test_smmu_is_written_in_the_soc_dtsi(real_corpus_factory):
    for package in ("linux-source-6.1", "linux-source-6.12"):
        corpus = real_corpus_factory(package, LAYERSCAPE)
        dtsi = "arch/arm64/boot/dts/freescale/fsl-ls1028a.dtsi"
        text = (corpus.kernel_dir / dtsi).read_text().splitlines()
        line = next(i for i, t in enumerate(text, 1) if "smmu: iommu@5000000 {" in t)
        for board in ("freescale/fsl-ls1028a-rdb.dtb", "freescale/fsl-ls1028a-qds-65bb.dtb"):
            positions = source_positions(corpus, corpus.entry(board))
            assert positions["/soc/iommu@5000000"] == (dtsi, line), (package, board)


# -- other suites of the machine's Debian mirror ------------------------------------

def system_apt_state() -> str:
    """A digest of the system's apt configuration and package lists: never changed."""
    digest = hashlib.sha256()
    for top in ("/etc/apt", "/var/lib/apt/lists"):
        for folder, dirs, files in sorted(os.walk(top)):
            dirs.sort()
            for name in sorted(files):
                path = Path(folder, name)
                if path.name == "lock" or not path.is_file():
                    continue
                st = path.stat()
                digest.update(f"{path} {st.st_size} {st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def sources_in(tree: Path) -> int:
    """How many .dts and .dtso files the tree has: one output each."""
    return sum(name.endswith((".dts", ".dtso"))
               for _, _, files in os.walk(tree / DTS_DIR) for name in files)


@pytest.mark.parametrize("suite,package,version", [
    ("sid", "linux-source-7.2", "7.2"), ("bullseye", "linux-source-5.10", "5.10")])
def test_another_suite_builds_whole(suite, package, version):
    """Every DT file of Linux 7.2 (sid) and 5.10 (bullseye) compiles with the tree's dtc."""
    before = system_apt_state()
    corpus = build_corpus(debian=f"{suite}/{package}")
    assert system_apt_state() == before
    assert re.fullmatch(rf"{re.escape(version)}\.\d+", corpus.kernel_version)
    assert corpus.identity == f"linux-{corpus.kernel_version} (debian {suite}/{package})"
    assert corpus.kernel_dir.is_relative_to(cache_dir() / "trees")
    assert (cache_dir() / "apt" / suite / "sources.list").is_file()
    assert [f"{e.dtb}: {e.error}" for e in corpus.entries if e.error] == []
    kinds = {kind: sum(e.kind == kind for e in corpus.entries)
             for kind in ("board", "overlay", "composite")}
    assert kinds["board"] + kinds["overlay"] == sources_in(corpus.kernel_dir)
    if version == "5.10":
        assert kinds["overlay"] == kinds["composite"] == 0   # 5.10 has no arm64 overlays yet
    else:
        assert kinds["overlay"] > 200 and kinds["composite"] > 300
    assert open_corpus(corpus.root).kernel_version == corpus.kernel_version
    again = build_corpus(debian=f"{suite}/{package}")
    assert (again.root, again.built, again.reused) == (corpus.root, 0, len(corpus.entries))


def test_damaged_tools_are_compiled_again(real_corpus_factory, tmp_path, capsys):
    """The tree's dtc, compiled into the cache, is checked before each use."""
    tree = real_corpus_factory("linux-source-6.12", ["freescale/fsl-ls1088a-rdb.dtb"]).kernel_dir
    tools = tree_tools(tree, tmp_path, set())
    dtc = Path(tools.dtc)
    good = dtc.read_bytes()
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 0x10
    dtc.write_bytes(bytes(damaged))
    capsys.readouterr()
    again = tree_tools(tree, tmp_path, set())
    err = capsys.readouterr().err
    assert err == (f"{dtc.parent}: warning: dtc or fdtoverlay changed since they were compiled "
                   f"(checksum); compiling them again\n")
    assert again.dtc == tools.dtc and Path(again.dtc).read_bytes() == good
    assert tree_tools(tree, tmp_path, set()) == again and capsys.readouterr().err == ""
