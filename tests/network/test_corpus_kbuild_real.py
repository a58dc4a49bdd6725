"""What `make ARCH=arm64 dtbs` builds, read from the Makefiles of Debian's
Linux 6.12 and 6.1 trees (corpus/kbuild.py)."""
import pytest

from corpus.kbuild import default_dtc_flags, read_targets


def _kinds(tree):
    targets = read_targets(tree)
    sources = [t.source for t in targets if t.source]
    return {
        "dts": sum(s.endswith(".dts") for s in sources),
        "dtso": sum(s.endswith(".dtso") for s in sources),
        "board": sum(t.kind == "board" for t in targets),
        "overlay": sum(t.kind == "overlay" for t in targets),
        "composite": sum(t.kind == "composite" for t in targets),
    }


# SPEC section 5, counted from what `make ARCH=arm64 dtbs` builds, within
# bounds that any point release of the series keeps (a stable update adds or
# drops a board now and then, never a hundred).
@pytest.mark.parametrize("package, expected", [
    ("linux-source-6.12", {"dts": (1100, 1150), "dtso": (95, 110), "board": (1100, 1150),
                           "overlay": (95, 110), "composite": (95, 110)}),
    ("linux-source-6.1", {"dts": (750, 790), "dtso": (0, 0), "board": (735, 770),
                          "overlay": (15, 25), "composite": (15, 25)}),
])
def test_real_tree_counts(debian_tree, package, expected):
    kinds = _kinds(debian_tree(package))
    assert {k: lo <= kinds[k] <= hi for k, (lo, hi) in expected.items()} == \
        dict.fromkeys(expected, True), kinds
    # v6.1 overlays are .dts files named .dtbo; from v6.2 they are .dtso
    assert kinds["board"] + kinds["overlay"] == kinds["dts"] + kinds["dtso"]


def test_real_tree_default_flags(debian_tree):
    noisy = ["-Wno-unit_address_vs_reg", "-Wno-avoid_unnecessary_addr_size", "-Wno-alias_paths",
             "-Wno-graph_child_address", "-Wno-simple_bus_reg"]
    # v6.12 scripts/Makefile.dtbs; v6.1 scripts/Makefile.lib
    assert default_dtc_flags(debian_tree("linux-source-6.12")) == \
        ["-Wno-unique_unit_address"] + noisy
    assert default_dtc_flags(debian_tree("linux-source-6.1")) == \
        ["-Wno-interrupt_provider"] + noisy + ["-Wno-unique_unit_address"]
