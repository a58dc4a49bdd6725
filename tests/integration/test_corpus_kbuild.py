"""Reading kbuild's DT Makefiles (corpus/kbuild.py): the make subset, and what
`make ARCH=arm64 dtbs` builds from a tree's Makefiles."""

import pytest

from corpus.kbuild import (Makefile, MakefileError, all_bases_get_symbols, cpp_flags,
                           default_dtc_flags, kernel_version, read_targets)
from tests.conftest import SMALL_TREE, write_tree


# -- the make subset -----------------------------------------------------------

def test_continuations_append_and_config_lists():
    mk = Makefile("dtb-$(CONFIG_ARCH_X) += a.dtb \\\n\tb.dtbo\n"
                  "dtb-$(CONFIG_ARCH_Y) += c.dtb # a comment\n"
                  "dtb- += d.dtb\n")
    assert mk.words("dtb-y") == ["a.dtb", "b.dtbo", "c.dtb"]
    assert mk.words("dtb-") == ["d.dtb"]


def test_simple_and_recursive_assignments():
    mk = Makefile("A := one\nB = $(A) two\nC := $(A) two\nA := three\nD ?= x\nD ?= y\n")
    assert mk.value("B") == "three two"      # `=` expands when used
    assert mk.value("C") == "one two"        # `:=` expands when assigned
    assert mk.value("D") == "x"


def test_conditionals_with_empty_extra_warn():
    mk = Makefile("ifeq ($(findstring 1,$(KBUILD_EXTRA_WARN)),)\nF += quiet\nelse\nF += loud\nendif\n"
                  "ifneq ($(findstring 2,$(KBUILD_EXTRA_WARN)),)\nF += strict\nendif\n"
                  "ifdef UNSET\nF += no\nelse ifeq (a,a)\nF += nested-else\nendif\n")
    assert mk.words("F") == ["quiet", "nested-else"]


def test_functions_used_by_dtc_makefiles():
    mk = Makefile("objs := fdt.o fdt_ro.o\nlibfdt = $(addprefix libfdt/,$(objs))\n"
                  "all := $(libfdt) util.o\nstem := $(patsubst %.dtb,%,a.dtb b.dtb)\n"
                  "sub := $(objs:.o=.c)\n")
    assert mk.words("all") == ["libfdt/fdt.o", "libfdt/fdt_ro.o", "util.o"]
    assert mk.words("stem") == ["a", "b"]
    assert mk.words("sub") == ["fdt.c", "fdt_ro.c"]


def test_recipes_and_defines_are_not_assignments():
    mk = Makefile("define cmd\nX := inside\nendef\nrule: dep\n\tX := recipe\nX := outside\n")
    assert mk.value("X") == "outside"


def test_unbalanced_conditional_is_an_error():
    with pytest.raises(MakefileError):
        Makefile("ifeq (a,b)\nX := 1\n")


# -- the tree ------------------------------------------------------------------

def test_version_and_flags_of_small_tree(tmp_path):
    tree = write_tree(tmp_path, SMALL_TREE)
    assert kernel_version(tree) == "6.12.0-test"
    assert default_dtc_flags(tree) == ["-Wno-unique_unit_address", "-Wno-unit_address_vs_reg",
                                       "-Wno-avoid_unnecessary_addr_size"]
    assert cpp_flags(tree) == ["-nostdinc", "-I", "./scripts/dtc/include-prefixes", "-undef",
                               "-D__DTS__", "-x", "assembler-with-cpp"]
    assert all_bases_get_symbols(tree)


def test_targets_of_small_tree(tmp_path):
    tree = write_tree(tmp_path, SMALL_TREE)
    targets = {t.dtb: t for t in read_targets(tree)}
    kinds = {dtb: t.kind for dtb, t in targets.items()}
    assert kinds == {
        "acme/acme-a.dtb": "board", "acme/acme-b.dtb": "board",
        "acme/acme-a-extra.dtbo": "overlay", "acme/acme-a-more.dtbo": "overlay",
        "acme/acme-a-third.dtbo": "overlay",
        "acme/acme-a-plus.dtb": "composite", "acme/acme-a-plus-third.dtb": "composite",
        "beta/beta-1.dtb": "board", "beta/beta-ov.dtbo": "overlay",
        "beta/beta-unlisted.dtb": "board",
    }
    # `:=` with a continuation, then `+=`
    assert targets["acme/acme-a-plus.dtb"].parts == [
        "acme/acme-a.dtb", "acme/acme-a-extra.dtbo", "acme/acme-a-more.dtbo"]
    assert targets["acme/acme-a-plus-third.dtb"].parts == [
        "acme/acme-a-plus.dtb", "acme/acme-a-third.dtbo"]
    assert targets["beta/beta-ov.dtbo"].source == "arch/arm64/boot/dts/beta/beta-ov.dts"
    defaults = default_dtc_flags(tree)
    # a base of a composite gets -@ after the defaults; a per-target flag goes between
    assert targets["acme/acme-a.dtb"].dtc_flags == defaults + ["-@"]
    assert targets["acme/acme-b.dtb"].dtc_flags == defaults + ["-Wno-interrupt_provider"]
    # a folder's DTC_FLAGS comes before the defaults, as kbuild reads it first
    assert targets["beta/beta-1.dtb"].dtc_flags == ["-@"] + defaults
    assert targets["acme/acme-a-extra.dtbo"].dtc_flags == defaults


def test_v6_1_style_bases_and_overlays(tmp_path):
    """Before v6.5 overlays were .dts files named .dtbo; before v6.11 only the
    first part of a composite got -@ (`$(firstword ...)` in Makefile.lib)."""
    files = {k: v for k, v in SMALL_TREE.items() if k != "scripts/Makefile.dtbs"}
    files["scripts/Makefile.lib"] = (
        "DTC_FLAGS += -Wno-interrupt_provider\n"
        "base-dtb-y := $(foreach m, $(multi-dtb-y), $(firstword $(call suffix-search, $m, .dtb, -dtbs)))\n"
        "DTC_INCLUDE    := $(srctree)/scripts/dtc/include-prefixes\n"
        "dtc_cpp_flags  = -Wp,-MMD,$(depfile).pre.tmp -nostdinc $(addprefix -I,$(DTC_INCLUDE)) "
        "-undef -D__DTS__\n")
    files["arch/arm64/boot/dts/old/Makefile"] = (
        "dtb-$(CONFIG_ARCH_OLD) += old-base.dtb old-base-2.dtb\n"
        "old-combo-dtbs := old-base.dtb old-base-2.dtb old-ov.dtbo\n"
        "dtb-$(CONFIG_ARCH_OLD) += old-combo.dtb\n")
    board = "/dts-v1/;\n/ { compatible = \"old\"; };\n"
    files["arch/arm64/boot/dts/old/old-base.dts"] = board
    files["arch/arm64/boot/dts/old/old-base-2.dts"] = board
    files["arch/arm64/boot/dts/old/old-ov.dts"] = "/dts-v1/;\n/plugin/;\n&{/} { x; };\n"
    # v6.1's imx8mm-venice-gw72xx-0x-imx219.dts: an overlay no Makefile names
    # as .dtbo, whose name a composite took
    files["arch/arm64/boot/dts/old/old-combo.dts"] = "/dts-v1/;\n/plugin/;\n&{/} { y; };\n"
    tree = write_tree(tmp_path, files)
    assert not all_bases_get_symbols(tree)
    assert cpp_flags(tree)[:2] == ["-nostdinc", "-I./scripts/dtc/include-prefixes"]
    targets = {t.dtb: t for t in read_targets(tree)}
    assert targets["old/old-ov.dtbo"].kind == "overlay"
    assert targets["old/old-ov.dtbo"].source.endswith("old/old-ov.dts")
    assert targets["old/old-combo.dtbo"].kind == "overlay"
    assert targets["old/old-combo.dtb"].kind == "composite"
    assert "-@" in targets["old/old-base.dtb"].dtc_flags
    assert "-@" not in targets["old/old-base-2.dtb"].dtc_flags


def test_not_a_kernel_tree(tmp_path):
    with pytest.raises(MakefileError, match="not a kernel tree"):
        read_targets(tmp_path)
