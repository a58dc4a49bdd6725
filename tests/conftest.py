"""Shared fixtures.

real_corpus_factory builds a few real boards of a Debian linux-source
package, the way the product does (apt-get download, the tree's own dtc),
into the user's cache ($XDG_CACHE_HOME/dtb-audit), so a second test run
reuses the package, the extracted tree, the dtc and the DTBs.
"""

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from kerneltree import write_tree

from corpus.build import build_corpus


def _fresh_dask_offload_thread():
    """A process forked after a Dask test ran (mutmut runs each mutant's tests
    so) inherits Dask's offload executor without its thread: every message
    it would decode waits forever.  The child gets an executor of its own."""
    utils = sys.modules.get("distributed.utils")
    if utils is not None:
        utils._offload_executor = ThreadPoolExecutor(1, thread_name_prefix="Dask-Offload")


os.register_at_fork(after_in_child=_fresh_dask_offload_thread)


# Fixtures that reach Debian's packages: a test using one is marked `network`
# by its fixture, so no such test can be left out of the network run.
NETWORK_FIXTURES = {"real_corpus_factory", "debian_tree", "debian_history_repo"}

# Where a test file lives says what kind of test it is (tests/README.md).
KIND_OF_FOLDER = {"unit": "unit", "integration": "integration", "slow": "slow",
                  "network": "network"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        kind = KIND_OF_FOLDER.get(item.path.parent.name)
        if kind is not None:
            item.add_marker(kind)
        if NETWORK_FIXTURES & set(item.fixturenames):
            item.add_marker("network")


_APT_GET_REFUSED = """#!/bin/sh
echo "E: apt-get $1: this test is not marked network; use the real_corpus_factory fixture" >&2
exit 100
"""


@pytest.fixture(autouse=True)
def _private_cache_unless_network(request, tmp_path_factory, monkeypatch):
    """Tests that build nothing from Debian get a private $XDG_CACHE_HOME
    (sharing only the compiled kernels) and an `apt-get` on PATH that
    refuses to run: whatever they need they make themselves, offline, and
    one that reaches for Debian's packages fails at once, in-process or in a
    subprocess.  Tests marked `network` keep the user's cache, where the real
    boards are built once."""
    if request.node.get_closest_marker("network") is not None:
        yield
        return
    from corpora import private_cache
    folder = tmp_path_factory.mktemp("xdg")
    cache = private_cache(folder)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    refusing = folder / "bin"
    refusing.mkdir()
    (refusing / "apt-get").write_text(_APT_GET_REFUSED)
    (refusing / "apt-get").chmod(0o755)
    request.node.stash[_PATH_BEFORE] = os.environ.get("PATH", "")
    monkeypatch.setenv("PATH", f"{refusing}{os.pathsep}{os.environ.get('PATH', '')}")
    yield


_PATH_BEFORE = pytest.StashKey[str]()


@pytest.fixture
def loopback_apt_get(request, monkeypatch):
    """The real apt-get back on PATH, for a test whose apt configuration
    points only at mirrors it serves on loopback (a private suite through
    corpus.debian.suite_sources, APT_CONFIG): the test says so by asking."""
    monkeypatch.setenv("PATH", request.node.stash[_PATH_BEFORE])


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


@pytest.fixture(scope="session")
def debian_tree():
    """callable(package) -> the Path of Debian's extracted linux-source tree
    (DT inputs only), e.g. debian_tree("linux-source-6.12")."""
    from corpus.debian import from_debian
    return lambda package: from_debian(package).tree


@pytest.fixture(scope="session")
def debian_history_repo():
    """A git repository of Debian's 5.10, 6.1, 6.12 and 7.2 DT sources as
    four tagged commits (tests/gitrepo.py), made once in the user's cache."""
    from gitrepo import debian_history_repo as make
    return make()


# -- a small kernel tree the corpus tests write ------------------------------
#
# Shaped like a real one where the corpus builder looks: a top Makefile with
# the version, scripts/Makefile.dtbs with v6.12's DTC rules (the lines that
# matter, copied), include-prefixes links, a dt-bindings header, and two
# vendor folders using what real Makefiles use: CONFIG lists, `dtb-` lists,
# continuations, composites with `:=` and `+=`, a composite made on a
# composite, folder and per-target DTC_FLAGS, an old-style overlay `.dts`
# named `.dtbo`, an unlisted board, and a .dtsi reached through
# include-prefixes. No scripts/dtc: the system dtc builds it.

SMALL_TREE = {
    "Makefile": """\
# SPDX-License-Identifier: GPL-2.0
VERSION = 6
PATCHLEVEL = 12
SUBLEVEL = 0
EXTRAVERSION = -test
NAME = Small Tree
""",
    "scripts/Makefile.dtbs": """\
# SPDX-License-Identifier: GPL-2.0-only
dtb-$(CONFIG_OF_ALL_DTBS) += $(dtb-)
base-dtb-y := $(filter %.dtb, $(call real-search, $(multi-dtb-y), .dtb, -dtbs))

DTC ?= $(objtree)/scripts/dtc/dtc
DTC_FLAGS += -Wno-unique_unit_address

# Disable noisy checks by default
ifeq ($(findstring 1,$(KBUILD_EXTRA_WARN)),)
DTC_FLAGS += -Wno-unit_address_vs_reg \\
             -Wno-avoid_unnecessary_addr_size
else
DTC_FLAGS += -Wunique_unit_address_if_enabled
endif

ifneq ($(findstring 2,$(KBUILD_EXTRA_WARN)),)
DTC_FLAGS += -Wnode_name_chars_strict
endif

DTC_FLAGS += $(DTC_FLAGS_$(target-stem))

# Set -@ if the target is a base DTB that overlay is applied onto
DTC_FLAGS += $(if $(filter $(patsubst $(obj)/%,%,$@), $(base-dtb-y)), -@)

DTC_INCLUDE := $(srctree)/scripts/dtc/include-prefixes

dtc_cpp_flags = -Wp,-MMD,$(depfile).pre.tmp -nostdinc -I $(DTC_INCLUDE) -undef -D__DTS__
""",
    "include/dt-bindings/acme.h": """\
#define ACME_SMMU_BASE 0x1000
""",
    "arch/arm64/boot/dts/Makefile": "subdir-y += acme\nsubdir-y += beta\n",
    "arch/arm64/boot/dts/acme/Makefile": """\
# SPDX-License-Identifier: GPL-2.0
DTC_FLAGS_acme-b := -Wno-interrupt_provider
dtb-$(CONFIG_ARCH_ACME) += acme-a.dtb acme-b.dtb \\
	acme-a-extra.dtbo

acme-a-plus-dtbs := acme-a.dtb \\
	acme-a-extra.dtbo
acme-a-plus-dtbs += acme-a-more.dtbo
dtb-$(CONFIG_ARCH_ACME) += acme-a-plus.dtb
# built with CONFIG_OF_ALL_DTBS only, and made on another composite
dtb- += acme-a-plus-third.dtb
acme-a-plus-third-dtbs := acme-a-plus.dtb acme-a-third.dtbo
""",
    "arch/arm64/boot/dts/acme/acme.dtsi": """\
#include <dt-bindings/acme.h>

/ {
	#address-cells = <1>;
	#size-cells = <1>;

	soc: soc {
		#address-cells = <1>;
		#size-cells = <1>;
		ranges;

		smmu: iommu@1000 {
			compatible = "arm,mmu-500";
			reg = <ACME_SMMU_BASE 0x100>;
			#iommu-cells = <1>;
		};
	};
};
""",
    "arch/arm64/boot/dts/acme/acme-a.dts": """\
/dts-v1/;
#include "acme.dtsi"

/ {
	model = "ACME A";
	compatible = "acme,a", "acme,soc";
};
""",
    "arch/arm64/boot/dts/acme/acme-b.dts": """\
/dts-v1/;
#include "acme.dtsi"

/ {
	model = "ACME B";
	compatible = "acme,b", "acme,soc";
};

&smmu {
	dma-coherent;
};
""",
    "arch/arm64/boot/dts/acme/acme-a-extra.dtso": """\
/dts-v1/;
/plugin/;

&smmu {
	acme,extra;
};
""",
    "arch/arm64/boot/dts/acme/acme-a-more.dtso": """\
/dts-v1/;
/plugin/;

&soc {
	acme,more;
};
""",
    "arch/arm64/boot/dts/acme/acme-a-third.dtso": """\
/dts-v1/;
/plugin/;

&{/} {
	acme,third;
};
""",
    "arch/arm64/boot/dts/beta/Makefile": """\
DTC_FLAGS := -@
dtb-$(CONFIG_ARCH_BETA) += beta-1.dtb beta-ov.dtbo
""",
    "arch/arm64/boot/dts/beta/beta-1.dts": """\
/dts-v1/;
#include <arm64/acme/acme.dtsi>

/ {
	model = "Beta 1";
	compatible = "beta,1", "acme,soc";
};
""",
    "arch/arm64/boot/dts/beta/beta-ov.dts": """\
/dts-v1/;
/plugin/;

&smmu {
	beta,overlay;
};
""",
    "arch/arm64/boot/dts/beta/beta-unlisted.dts": """\
/dts-v1/;

/ {
	model = "Beta unlisted";
	compatible = "beta,unlisted";
};
""",
}


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """A private $XDG_CACHE_HOME, so small trees never touch the user's cache."""
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache / "dtb-audit"


@pytest.fixture
def small_tree(tmp_path, isolated_cache):
    """A fresh copy of SMALL_TREE under tmp_path/linux."""
    return write_tree(tmp_path / "linux", SMALL_TREE)
