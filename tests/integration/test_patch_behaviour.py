"""The patch series' promises that hold through its public behaviour: the
verify loop judges the patched tree as the sweep judged the tree (its
target kernel, its binding style), lists the SoCs it touches in order,
rebuilds with the jobs given, and `git apply` runs with the user's git
configuration; the files are UTF-8 whatever the locale, and a tree that
is only a folder inside someone's checkout names no base commit."""
import dataclasses
import io
import locale
import os
import subprocess

import pytest

from auditor.patch import Series, check_series, format_verification, make_series, run, \
    verify_series, write_series
from auditor.sweep import sweep_corpus
from corpus.build import build_corpus
from corpus.errors import UserError
from kernels.judging import Judging, Rule
from kernels.target import TargetKernel
from minikernel import VENDOR_DIR, dependencies, make_minikernel, smmu_line

AUTHOR = "Test <test@example.com>"
DATE = "Mon, 1 Jan 2024 00:00:00 +0000"


def _add_soc(tree, name, dtsi, boards):
    """Write `name`.dtsi and its boards {board: extra text} into the acme folder."""
    folder = os.path.join(tree, VENDOR_DIR)
    with open(os.path.join(folder, f"{name}.dtsi"), "w") as f:
        f.write(dtsi)
    with open(os.path.join(folder, "Makefile"), "a") as f:
        for board, (compatible, extra) in boards.items():
            with open(os.path.join(folder, f"{board}.dts"), "w") as b:
                b.write(f'// SPDX-License-Identifier: GPL-2.0\n/dts-v1/;\n'
                        f'#include "{name}.dtsi"\n\n'
                        f'/ {{\n\tmodel = "ACME {board}";\n\tcompatible = {compatible};\n}};\n'
                        f"{extra}")
            f.write(f"dtb-$(CONFIG_ARCH_ACME) += {board}.dtb\n")


def _series(tree, sweep, corpus, out):
    series = make_series(sweep, tree, dependencies(corpus), author=AUTHOR, date=DATE)
    write_series(series, out)
    return series


def _after(result):
    """{soc: (after, others)} of a Verification."""
    return {soc: (s["after"], s["others"]) for soc, s in result.socs.items()}


# -- the target kernel ------------------------------------------------------------------

# A second SMMU in a100.dtsi that the series leaves alone: its one master says
# dma-noncoherent under a dma-coherent bus.  From v6.1 of_dma_is_coherent()
# stops at dma-noncoherent (the master is broken: a100 stays affected through
# it); 5.10's looks for dma-coherent only (the master rescues itself).
SECOND_SMMU = """
		smmu2: iommu@7000000 {
			compatible = "arm,mmu-500";
			reg = <0 0x7000000 0 0x800000>;
			#global-interrupts = <1>;
			#iommu-cells = <1>;
			interrupts = <GIC_SPI 15 IRQ_TYPE_LEVEL_HIGH>;
		};

		dma-bus {
			compatible = "simple-bus";
			#address-cells = <2>;
			#size-cells = <2>;
			ranges;
			dma-coherent;

			dma-controller@7800000 {
				compatible = "acme,dma";
				reg = <0 0x7800000 0 0x10000>;
				iommus = <&smmu2 0x40>;
				dma-noncoherent;
			};
		};
	};
};
"""
SMMU2 = "/soc/iommu@7000000"


@pytest.fixture
def old_tree(tmp_path, isolated_cache):
    """(tree, corpus) of a 5.10 mini kernel whose a100 has SECOND_SMMU."""
    tree = make_minikernel(tmp_path / "linux", version=(5, 10, 0))
    dtsi = os.path.join(tree, VENDOR_DIR, "a100.dtsi")
    text = open(dtsi).read()
    assert text.endswith("\t};\n};\n")
    with open(dtsi, "w") as f:
        f.write(text[:-len("\t};\n};\n")] + SECOND_SMMU)
    return tree, build_corpus(kernel=tree, out=tmp_path / "dtbs")


def test_verify_judges_as_the_sweeps_target_kernel_not_the_trees_version(old_tree, tmp_path):
    tree, corpus = old_tree
    # Swept as 6.1.192 although the tree says 5.10: the patched tree is
    # judged as 6.1.192 too, where a100 stays affected through SMMU2.
    sweep = sweep_corpus(corpus, Judging(TargetKernel.parse("6.1.192")))
    assert str(sweep.target_kernel) == "6.1.192" and sweep.rule is Rule.WALK_OR_DEVICE
    series = _series(tree, sweep, corpus, tmp_path / "out")
    assert [[c.path for c in p.candidates] for p in series.patches] == [
        ["/soc/iommu@5000000"], ["/soc/iommu@5000000"]]
    result = verify_series(series, sweep, tree)
    assert _after(result) == {"acme,a100": (True, [SMMU2]), "acme,a200": (False, [])}
    assert format_verification(result) == (
        "acme,a100: affected -> still affected; through SMMUs the series leaves alone: "
        f"{SMMU2}\n"
        "acme,a200: affected -> no longer affected\n")


def test_verify_of_a_sweep_without_a_target_judges_as_the_trees_version(old_tree, tmp_path):
    tree, corpus = old_tree
    sweep = sweep_corpus(corpus, Judging(TargetKernel.parse("6.1.192")))
    series = _series(tree, sweep, corpus, tmp_path / "out")
    # A saved sweep from before target kernels (schema 1) names none: the
    # patched tree is judged as its own version, 5.10, not the newest modelled.
    older = dataclasses.replace(sweep, target_kernel=None)
    result = verify_series(series, older, tree)
    assert _after(result) == {"acme,a100": (False, []), "acme,a200": (False, [])}


# -- the legacy binding (mmu-masters) -----------------------------------------------------

# SoC a500: an SMMU of the old binding written first, a generic one after it.
# The first SMMU probed fixes the binding style for the system, so on a500-evk
# (old one disabled) the generic SMMU works and its coherent master accuses it;
# on a500-lite (generic one disabled) the old SMMU works, and its non-coherent
# master is linked only with CONFIG_ARM_SMMU_LEGACY_DT_BINDINGS.
A500 = """\
// SPDX-License-Identifier: GPL-2.0
#include <dt-bindings/interrupt-controller/arm-gic.h>

/ {
	compatible = "acme,a500";
	interrupt-parent = <&gic>;
	#address-cells = <2>;
	#size-cells = <2>;

	soc {
		compatible = "simple-bus";
		#address-cells = <2>;
		#size-cells = <2>;
		ranges;

		gic: interrupt-controller@6000000 {
			compatible = "arm,gic-v3";
			reg = <0x0 0x06000000 0 0x10000>;
			#interrupt-cells = <3>;
			interrupt-controller;
		};

		old_smmu: iommu@1000000 {
			compatible = "arm,mmu-500";
			reg = <0 0x1000000 0 0x800000>;
			#global-interrupts = <1>;
			interrupts = <GIC_SPI 13 IRQ_TYPE_LEVEL_HIGH>;
			mmu-masters = <&old_master 0x2>;
		};

		new_smmu: iommu@2000000 {
			compatible = "arm,mmu-500";
			reg = <0 0x2000000 0 0x800000>;
			#global-interrupts = <1>;
			#iommu-cells = <1>;
			interrupts = <GIC_SPI 14 IRQ_TYPE_LEVEL_HIGH>;
		};

		old_master: dma-controller@3100000 {
			compatible = "acme,dma";
			reg = <0 0x3100000 0 0x10000>;
			#stream-id-cells = <1>;
		};

		dma-controller@3200000 {
			compatible = "acme,dma";
			reg = <0 0x3200000 0 0x10000>;
			iommus = <&new_smmu 0x3>;
			dma-coherent;
		};
	};
};
"""
A500_BOARDS = {
    "a500-evk": ('"acme,a500-evk", "acme,a500"', '\n&old_smmu {\n\tstatus = "disabled";\n};\n'),
    "a500-lite": ('"acme,a500-lite", "acme,a500"', '\n&new_smmu {\n\tstatus = "disabled";\n};\n'),
}
OLD_SMMU = "/soc/iommu@1000000"


@pytest.fixture
def two_bindings(tmp_path, isolated_cache):
    tree = make_minikernel(tmp_path / "linux")
    _add_soc(tree, "a500", A500, A500_BOARDS)
    return tree, build_corpus(kernel=tree, out=tmp_path / "dtbs")


@pytest.mark.parametrize("legacy", [True, False])
def test_verify_keeps_the_sweeps_legacy_binding_choice(two_bindings, tmp_path, legacy):
    tree, corpus = two_bindings
    sweep = sweep_corpus(corpus, Judging(legacy_dt_bindings=legacy))
    series = _series(tree, sweep, corpus, tmp_path / "out")
    assert [(p.source_file, [c.path for c in p.candidates]) for p in series.patches][-1] == \
        (f"{VENDOR_DIR}/a500.dtsi", ["/soc/iommu@2000000"])
    result = verify_series(series, sweep, tree)
    # With the old binding, a500-lite's master stays behind the old SMMU
    # that the series leaves alone; without it, that master has no IOMMU.
    assert _after(result)["acme,a500"] == ((True, [OLD_SMMU]) if legacy else (False, []))
    assert result.ok


# -- order ----------------------------------------------------------------------------------

def test_verify_lists_the_socs_it_touches_sorted(tmp_path, isolated_cache):
    tree = make_minikernel(tmp_path / "linux")
    # Six more SoCs built from a100.dtsi: one candidate, eight SoCs.
    names = ["b6", "b1", "b5", "b3", "b2", "b4"]
    folder = os.path.join(tree, VENDOR_DIR)
    with open(os.path.join(folder, "Makefile"), "a") as f:
        for n in names:
            with open(os.path.join(folder, f"{n}-evk.dts"), "w") as b:
                b.write(f'// SPDX-License-Identifier: GPL-2.0\n/dts-v1/;\n#include "a100.dtsi"\n\n'
                        f'/ {{\n\tmodel = "ACME {n}";\n\tcompatible = "acme,{n}-evk", '
                        f'"acme,{n}";\n}};\n\n&enetc_port0 {{\n\tstatus = "okay";\n}};\n')
            f.write(f"dtb-$(CONFIG_ARCH_ACME) += {n}-evk.dtb\n")
    corpus = build_corpus(kernel=tree, out=tmp_path / "dtbs")
    sweep = sweep_corpus(corpus)
    series = _series(tree, sweep, corpus, tmp_path / "out")
    result = verify_series(series, sweep, tree)
    assert list(result.socs) == ["acme,a100", "acme,a200", "acme,b1", "acme,b2", "acme,b3",
                                 "acme,b4", "acme,b5", "acme,b6"]
    assert result.ok


# -- jobs -----------------------------------------------------------------------------------

@pytest.fixture
def mini(tmp_path, isolated_cache):
    tree = make_minikernel(tmp_path / "linux")
    corpus = build_corpus(kernel=tree, out=tmp_path / "dtbs")
    return tree, sweep_corpus(corpus), corpus


def test_verify_rebuilds_with_the_jobs_given(mini, tmp_path):
    tree, sweep, corpus = mini
    series = _series(tree, sweep, corpus, tmp_path / "out")
    # The count goes to the build, which refuses it as `corpus build -j 0` does.
    with pytest.raises(UserError) as raised:
        verify_series(series, sweep, tree, jobs=0)
    assert raised.value.line() == "dtb-audit: error: -j: must be at least 1"


def test_run_verify_rebuilds_with_the_jobs_given(mini, tmp_path):
    tree, sweep, corpus = mini
    with pytest.raises(UserError) as raised:
        run(sweep, tree, str(tmp_path / "out"), dependencies(corpus), verify=True, author=AUTHOR,
            jobs=0, out=io.StringIO(), err=io.StringIO())
    assert raised.value.line() == "dtb-audit: error: -j: must be at least 1"


# -- git apply in the user's environment ---------------------------------------------------

def test_check_series_with_the_users_git_configuration(tmp_path, monkeypatch):
    # `git am` will run with the user's configuration: so does the check.
    tree = tmp_path / "linux"
    tree.mkdir()
    (tree / "a.dtsi").write_text("one\ntwo\nthree\n")
    patch = tmp_path / "0001-x.patch"
    patch.write_text("diff --git a/a.dtsi b/a.dtsi\n--- a/a.dtsi\n+++ b/a.dtsi\n"
                     "@@ -1,3 +1,4 @@\n one\n two\n+2 \n three\n")
    config = tmp_path / "gitconfig"
    config.write_text("[apply]\n\twhitespace = error\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    assert check_series(str(tree), [str(patch)]) == [
        (str(patch), f"{patch}:7: trailing whitespace.\n2 \n"
                     "error: 1 line adds whitespace errors.")]
    config.write_text("")
    assert check_series(str(tree), [str(patch)]) == []


# -- the files ------------------------------------------------------------------------------

def test_series_is_written_in_utf8_whatever_the_locale(tmp_path):
    # A cron job's locale may not be UTF-8; git am reads the files as UTF-8.
    series = Series([], [], "From: J\u00f6rg R\u00f6del <joro@example.org>\n", None)
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        write_series(series, str(tmp_path / "out"))
    finally:
        locale.setlocale(locale.LC_CTYPE, before)
    assert (tmp_path / "out" / "0000-cover-letter.patch").read_bytes() == \
        b"From: J\xc3\xb6rg R\xc3\xb6del <joro@example.org>\n"


def test_a_tree_inside_another_checkout_names_no_base_commit(tmp_path, isolated_cache):
    # HEAD of the checkout around the tree is not the tree's commit.
    outer = tmp_path / "home"
    outer.mkdir()
    env = dict(os.environ, GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com",
               GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.com")
    (outer / "notes").write_text("notes\n")
    for cmd in (["init", "-q"], ["add", "notes"], ["commit", "-q", "-m", "notes"]):
        subprocess.run(["git", "-C", str(outer), *cmd], check=True, env=env, capture_output=True)
    tree = make_minikernel(outer / "src" / "linux")
    corpus = build_corpus(kernel=tree, out=tmp_path / "dtbs")
    series = make_series(sweep_corpus(corpus), tree, dependencies(corpus), author=AUTHOR,
                         date=DATE)
    assert len(series.patches) == 2
    assert series.base_commit is None
    assert "base-commit:" not in series.cover


def test_a_node_written_under_a_reference_is_named_from_the_reference(mini):
    tree, sweep, corpus = mini
    # Since the sweep, a100.dtsi writes another node where the SMMU was,
    # inside a `&gic { ... };` block: the skip names it as written.
    line = next(c.source_line for c in make_series(sweep, tree, dependencies(corpus),
                                                    author=AUTHOR, date=DATE).patches[0].candidates)
    with open(os.path.join(tree, VENDOR_DIR, "a100.dtsi"), "w") as f:
        f.write("// moved\n" * (line - 2) + "&gic {\n\tiommu@6000000 {\n\t};\n};\n")
    series = make_series(sweep, tree, dependencies(corpus), author=AUTHOR, date=DATE)
    where = f"{VENDOR_DIR}/a100.dtsi:{line}"
    assert [s.reason for s in series.skips if s.where == where] == [
        f"{where}: the node written here (&gic/iommu@6000000) is not /soc/iommu@5000000: "
        "the tree changed since the sweep; sweep it again"]


# -- two SMMUs in one file ------------------------------------------------------------------

A600 = """\
// SPDX-License-Identifier: GPL-2.0
/ {
	compatible = "acme,a600";
	#address-cells = <2>;
	#size-cells = <2>;

	soc {
		compatible = "simple-bus";
		#address-cells = <2>;
		#size-cells = <2>;
		ranges;

		smmu_a: iommu@1000000 {
			compatible = "arm,mmu-500";
			reg = <0 0x1000000 0 0x800000>;
			#global-interrupts = <1>;
			#iommu-cells = <1>;
			interrupts = <0 13 4>;
		};

		smmu_b: iommu@2000000 {
			compatible = "arm,mmu-500";
			reg = <0 0x2000000 0 0x800000>;
			#global-interrupts = <1>;
			#iommu-cells = <1>;
			interrupts = <0 14 4>;
		};

		dma-controller@3000000 {
			compatible = "acme,dma";
			reg = <0 0x3000000 0 0x10000>;
			iommus = <&smmu_a 0x1>;
			dma-coherent;
		};

		dma-controller@3100000 {
			compatible = "acme,dma";
			reg = <0 0x3100000 0 0x10000>;
			iommus = <&smmu_b 0x2>;
			dma-coherent;
		};
	};
};
"""


def test_two_smmus_of_one_file_in_one_patch(tmp_path, isolated_cache):
    tree = make_minikernel(tmp_path / "linux")
    _add_soc(tree, "a600", A600, {"a600-evk": ('"acme,a600-evk", "acme,a600"', "")})
    corpus = build_corpus(kernel=tree, out=tmp_path / "dtbs")
    series = _series(tree, sweep_corpus(corpus), corpus, tmp_path / "out")
    patch = series.patches[-1]
    assert patch.subject == "arm64: dts: acme: a600: mark SMMUs as DMA coherent"
    assert [(c.source_line, c.path) for c in patch.candidates] == [
        (13, "/soc/iommu@1000000"), (21, "/soc/iommu@2000000")]
    # The DTBs carry no labels (no -@): the message takes them from the source.
    assert "\n\nThe arm,mmu-500 SMMU /soc/iommu@1000000 (smmu_a) and the arm,mmu-500\n" \
        "SMMU /soc/iommu@2000000 (smmu_b) have no dma-coherent property, so\n" in patch.text
    # Each node gets its line, in one hunk each, below its #iommu-cells.
    diff = patch.text.split("\n---\n", 1)[1]
    assert diff.split("\ndiff --git ")[0] == (
        f" {VENDOR_DIR}/a600.dtsi | 2 ++\n 1 file changed, 2 insertions(+)\n")
    hunks = [h.split("\n")[0] for h in diff.split("\n@@ ")[1:]]
    assert hunks == ["-15,6 +15,7 @@", "-23,6 +24,7 @@"]
    assert diff.count("\n+\t\t\tdma-coherent;\n") == 2
    assert check_series(tree, series.files[1:]) == []


# -- what the evidence cannot place ---------------------------------------------------------

@pytest.mark.parametrize("known", ["file", "line"])
def test_an_smmu_known_by_file_or_line_only_is_left_alone(mini, tmp_path, known):
    tree, sweep, corpus = mini
    socs = tuple(dataclasses.replace(s, providers=tuple(
        dataclasses.replace(p, source_file=p.source_file if known == "file" else None,
                            source_line=p.source_line if known == "line" else None)
        for p in s.providers)) for s in sweep.socs)
    err = io.StringIO()
    assert run(dataclasses.replace(sweep, socs=socs), tree, str(tmp_path / "out"),
               dependencies(corpus), out=io.StringIO(), err=err) == 0
    assert err.getvalue() == (
        "/soc/iommu@5000000: warning: /soc/iommu@5000000 (acme,a100, acme,a200, acme,a300) not "
        "patched: no source position (the corpus was not built from a kernel tree)\n"
        "dtb-audit: no SMMU node to patch\n")


def test_sources_are_read_as_utf8_whatever_the_locale(mini):
    tree, sweep, corpus = mini
    # A no-break space (UTF-8 c2 a0) after the label, written since the sweep:
    # read as UTF-8 it is a space, and the node is still the SMMU.
    dtsi = os.path.join(tree, VENDOR_DIR, "a100.dtsi")
    text = open(dtsi, encoding="utf-8").read()
    with open(dtsi, "w", encoding="utf-8") as f:
        f.write(text.replace("smmu: iommu@5000000 {", "smmu:\u00a0iommu@5000000 {"))
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        series = make_series(sweep, tree, dependencies(corpus), author=AUTHOR, date=DATE)
    finally:
        locale.setlocale(locale.LC_CTYPE, before)
    assert [p.source_file for p in series.patches] == [f"{VENDOR_DIR}/a100.dtsi",
                                                       f"{VENDOR_DIR}/a200.dtsi"]
    assert [s.where for s in series.skips] == [f"{VENDOR_DIR}/a300.dtsi:{smmu_line(tree, 'a300')}"]


@pytest.mark.parametrize("change,reason", [
    (lambda text: text + "};\n", "{file}:{end}: unmatched '}}'"),
    (lambda text: "// a line more\n" + text, "{where}: no node opens here"),
], ids=["braces-unbalanced", "lines-shifted"])
def test_a_file_changed_since_the_sweep_is_skipped_and_the_rest_patched(mini, change, reason):
    tree, sweep, corpus = mini
    dtsi = os.path.join(tree, VENDOR_DIR, "a100.dtsi")
    text = open(dtsi).read()
    with open(dtsi, "w") as f:
        f.write(change(text))
    series = make_series(sweep, tree, dependencies(corpus), author=AUTHOR, date=DATE)
    assert [p.source_file for p in series.patches] == [f"{VENDOR_DIR}/a200.dtsi"]
    where = f"{VENDOR_DIR}/a100.dtsi:{smmu_line(tree, 'a300')}"
    assert [(s.where, s.reason) for s in series.skips][0] == (where, reason.format(
        where=where, file=f"{VENDOR_DIR}/a100.dtsi", end=text.count("\n") + 1))


def test_boards_that_remove_dma_coherent_by_path_or_label_are_all_named(mini):
    tree, sweep, corpus = mini
    # Since the sweep, both a100 boards strip the SMMU: one by path, one by label.
    removal = "\n{} {{\n\t/delete-property/ dma-coherent;\n}};\n"
    lines = {}
    for board, ref in (("a100-evk", "&{/soc/iommu@5000000}"), ("a100-mini", "&smmu")):
        path = os.path.join(tree, VENDOR_DIR, f"{board}.dts")
        text = open(path).read() + removal.format(ref)
        with open(path, "w") as f:
            f.write(text)
        lines[board] = text.count("\n") - 1
    series = make_series(sweep, tree, dependencies(corpus), author=AUTHOR, date=DATE)
    assert [p.source_file for p in series.patches] == [f"{VENDOR_DIR}/a200.dtsi"]
    assert series.skips[0].reason == (
        f"board files remove its dma-coherent on purpose: {VENDOR_DIR}/a100-evk.dts:"
        f"{lines['a100-evk']}, {VENDOR_DIR}/a100-mini.dts:{lines['a100-mini']}")


def test_an_smmu_written_as_a_label_reference_is_patched_there(mini):
    tree, sweep, corpus = mini
    # DTBs built with symbols (-@) give the SMMU's label: since the sweep,
    # a100.dtsi writes the SMMU's properties in a `&smmu { ... };` block at
    # the line the sweep recorded.
    labelled = dataclasses.replace(sweep, links=tuple(
        link._replace(provider_label="smmu") if link.soc == "acme,a100" else link
        for link in sweep.links))
    line = smmu_line(tree, "a100")
    with open(os.path.join(tree, VENDOR_DIR, "a100.dtsi"), "w") as f:
        f.write("// moved\n" * (line - 1) + "&smmu {\n\t#iommu-cells = <1>;\n};\n")
    series = make_series(labelled, tree, dependencies(corpus), author=AUTHOR, date=DATE)
    assert [p.source_file for p in series.patches] == [f"{VENDOR_DIR}/a100.dtsi",
                                                       f"{VENDOR_DIR}/a200.dtsi"]
    assert "\n \t#iommu-cells = <1>;\n+\tdma-coherent;\n };\n" in series.patches[0].text


def test_an_smmu_that_says_dma_noncoherent_since_the_sweep_is_left_alone(mini):
    tree, sweep, corpus = mini
    dtsi = os.path.join(tree, VENDOR_DIR, "a100.dtsi")
    text = open(dtsi).read()
    with open(dtsi, "w") as f:
        f.write(text.replace("\t\t\t#iommu-cells = <1>;\n",
                             "\t\t\t#iommu-cells = <1>;\n\t\t\tdma-noncoherent;\n"))
    series = make_series(sweep, tree, dependencies(corpus), author=AUTHOR, date=DATE)
    assert [p.source_file for p in series.patches] == [f"{VENDOR_DIR}/a200.dtsi"]
    where = f"{VENDOR_DIR}/a100.dtsi:{smmu_line(tree, 'a100')}"
    assert [(s.path, s.socs, s.where, s.reason) for s in series.skips
            if s.where == where] == [
        ("/soc/iommu@5000000", ["acme,a100"], where,
         f"{where}: node iommu@5000000 says dma-noncoherent")]


def test_trailers_follow_the_whole_message(mini):
    tree, sweep, corpus = mini

    def fixes(file, line):
        return "0123456789abcdef0123", "arm64: dts: acme: add a100"

    plain = make_series(sweep, tree, dependencies(corpus), author=AUTHOR, date=DATE)
    body = plain.patches[0].text.split("\n---\n")[0]
    signed = make_series(sweep, tree, dependencies(corpus), author=AUTHOR, date=DATE,
                         signoff=True)
    assert signed.patches[0].text.split("\n---\n")[0] == \
        body + f"\n\nSigned-off-by: {AUTHOR}"
    fixed = make_series(sweep, tree, dependencies(corpus), author=AUTHOR, date=DATE, fixes=fixes)
    assert fixed.patches[0].text.split("\n---\n")[0] == \
        body + '\n\nFixes: 0123456789ab ("arm64: dts: acme: add a100")'


def test_a_series_by_an_author_whose_name_is_not_ascii(mini):
    """As git format-patch -s writes it: the patches' From: in RFC 2047 words,
    the Signed-off-by and the cover letter's shortlog in UTF-8, declared."""
    tree, sweep, corpus = mini
    author = "J\u00f6rg R\u00f6del <joro@example.org>"
    series = make_series(sweep, tree, dependencies(corpus), author=author, date=DATE,
                         signoff=True)
    mime = ("MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n"
            "Content-Transfer-Encoding: 8bit\n\n")
    for patch in series.patches:
        head, _, rest = patch.text.partition("\n\n")
        assert head.split("\n")[1] == "From: =?UTF-8?q?J=C3=B6rg=20R=C3=B6del?= <joro@example.org>"
        assert patch.text.startswith(head) and (head + "\n\n").endswith(mime)
        assert f"Signed-off-by: {author}\n" in rest
    assert series.cover.split("\n")[1] == f"From: {author}"     # git leaves it so there
    assert mime in series.cover and "J\u00f6rg R\u00f6del (" in series.cover
    plain = make_series(sweep, tree, dependencies(corpus), author=AUTHOR, date=DATE)
    texts = [plain.cover] + [p.text for p in plain.patches]
    assert all("MIME-Version" not in text for text in texts)
