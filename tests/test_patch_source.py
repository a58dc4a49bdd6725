"""The source side of the patch series: finding the node, placing
`dma-coherent;`, finding boards that remove it, and diffs git accepts."""
import os
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.patch import PatchError, check_series
from auditor.patch.dts import _lines, add_dma_coherent, node_at, parse_dts, removals_of
from auditor.patch.series import _diff
from minikernel import VENDOR_DIR, make_minikernel, smmu_line

DTC = shutil.which("dtc")
needs_dtc = pytest.mark.skipif(DTC is None, reason="dtc not installed (device-tree-compiler)")


def _dts_out(text):
    """dtc's canonical DTS of a source: what the tree means, not how it is written."""
    proc = subprocess.run([DTC, "-q", "-I", "dts", "-O", "dts", "-o", "-", "-"],
                          input=text, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


NODE = """\
/dts-v1/;
/ {
	soc {
		#address-cells = <1>;
		#size-cells = <1>;

		smmu: iommu@1000 {
%s		};
	};
};
"""


def _with_body(body):
    return NODE % "".join("\t\t\t" + line + "\n" if line else "\n" for line in body)


def _added(before, after):
    """The lines `after` has that `before` has not (both as lists of lines)."""
    import difflib
    return [line[2:] for line in difflib.ndiff(before, after) if line.startswith("+ ")]


def test_after_iommu_cells_with_sibling_indentation():
    text = _with_body(['compatible = "arm,mmu-500";', "#iommu-cells = <1>;",
                       "stream-match-mask = <0x7c00>;", 'status = "okay";'])
    new = add_dma_coherent(text, 7)
    lines = _lines(new)
    at = lines.index("\t\t\t#iommu-cells = <1>;\n")
    assert lines[at + 1] == "\t\t\tdma-coherent;\n"
    assert _added(_lines(text), lines) == ["\t\t\tdma-coherent;\n"]


def test_without_iommu_cells_goes_before_status_and_children():
    text = _with_body(['compatible = "arm,smmu-v2";', "mmu-masters = <&a 0x1>;",
                       'status = "disabled";', "", "child {", "};"])
    lines = _lines(add_dma_coherent(text, 7))
    at = lines.index("\t\t\tmmu-masters = <&a 0x1>;\n")
    assert lines[at + 1] == "\t\t\tdma-coherent;\n"
    assert lines[at + 2] == '\t\t\tstatus = "disabled";\n'


def test_multiline_property_and_comments_with_braces():
    text = _with_body(["#iommu-cells = <1 /* } ; { */>", "\t\t   ;",
                       "// a { comment ;", 'label = "a;b{c}";',
                       "interrupts = <0 13 4>,", "\t     <0 14 4>;"])
    lines = _lines(add_dma_coherent(text, 7))
    at = lines.index("\t\t\t\t\t   ;\n")
    assert lines[at + 1] == "\t\t\tdma-coherent;\n"


def test_cpp_lines_are_not_properties():
    text = _with_body(["#if 1", "compatible = \"arm,mmu-500\";", "#endif",
                       "#global-interrupts = <1>;"])
    node = node_at(parse_dts(text), 7)
    assert [s.name for s in node.body] == ["compatible", "#global-interrupts"]
    lines = _lines(add_dma_coherent(text, 7))
    assert lines[lines.index("\t\t\t#global-interrupts = <1>;\n") + 1] == "\t\t\tdma-coherent;\n"


def test_empty_node_gets_one_more_tab():
    lines = _lines(add_dma_coherent(_with_body([]), 7))
    assert lines[7] == "\t\t\tdma-coherent;\n"


@pytest.mark.parametrize("body, message", [
    (["#iommu-cells = <1>;", "dma-coherent;"], "already has dma-coherent"),
    (["#iommu-cells = <1>;", "dma-noncoherent;"], "says dma-noncoherent"),
])
def test_refuses_nodes_that_state_their_coherency(body, message):
    with pytest.raises(PatchError, match=message):
        add_dma_coherent(_with_body(body), 7, "x.dtsi")


def test_errors_name_file_and_line():
    with pytest.raises(PatchError, match=r"^x\.dtsi:4: no node opens here"):
        add_dma_coherent(_with_body(["#iommu-cells = <1>;"]), 4, "x.dtsi")
    with pytest.raises(PatchError, match=r"^x\.dtsi:3: unmatched"):
        parse_dts("/ {\n};\n};\n", "x.dtsi")
    one_line = "/ {\n\tsmmu: iommu@1 { #iommu-cells = <1>; };\n};\n"
    with pytest.raises(PatchError, match=r"^x\.dtsi:2: .* written on one line"):
        add_dma_coherent(one_line, 2, "x.dtsi")


def test_crlf_and_missing_final_newline_kept():
    text = _with_body(["#iommu-cells = <1>;"]).replace("\n", "\r\n").rstrip("\r\n")
    new = add_dma_coherent(text, 7)
    assert "\t\t\t#iommu-cells = <1>;\r\n\t\t\tdma-coherent;\r\n" in new
    assert not new.endswith("\n")


# Random node bodies: properties (one or several lines), comments, child
# nodes; whatever the shape, the patched source must mean exactly the
# original plus `dma-coherent` in that node.
_names = st.sampled_from(["compatible", "reg", "#iommu-cells", "#global-interrupts",
                          "interrupts", "stream-match-mask", "status", "power-domains",
                          "acme,quirk", "clocks"])
_prop = st.builds(lambda name, n, split: (
    [f"{name} = <{' '.join(['0x1'] * n)}>;"] if not split
    else [f"{name} = <0x1>,", f"\t<0x2>;"]), _names, st.integers(1, 3), st.booleans())
_comment = st.sampled_from([["/* { ; } */"], ["// };"], ["/*", " * text", " */"]])
_child = st.builds(lambda k: [f"child@{k} {{", "\treg = <0x%x 0x4>;" % k, "};"],
                   st.integers(0, 9))


@needs_dtc
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_prop, _comment), max_size=7), st.lists(_child, max_size=2))
def test_patched_source_means_original_plus_dma_coherent(parts, children):
    body, names = [], set()
    for part in parts + children:       # dtc wants properties before subnodes
        if part[0].endswith("{"):
            if part[0] in names:
                continue
            names.add(part[0])
        elif "=" in part[0]:
            name = part[0].split(" =")[0]
            if name in names:
                continue                    # dtc would merge duplicates
            names.add(name)
        body += part
    text = _with_body(body)
    new = add_dma_coherent(text, 7)
    assert _added(_lines(text), _lines(new)) == ["\t\t\tdma-coherent;\n"]
    before, after = _lines(_dts_out(text)), _lines(_dts_out(new))
    assert _added(before, after) == ["\t\t\tdma-coherent;\n"]
    assert len(after) == len(before) + 1


def _chain(soc, *boards):
    """The files that go into the boards of one mini kernel SoC."""
    return [f"{VENDOR_DIR}/{soc}.dtsi"] + [f"{VENDOR_DIR}/{soc}-{b}.dts" for b in boards]


def test_minikernel_removals_found_in_the_files_given(tmp_path):
    root = make_minikernel(tmp_path / "k")
    found = removals_of(root, _chain("a300", "evk", "lite"), "/soc/iommu@5000000", ["smmu"])
    assert [f for f, _ in found] == [f"{VENDOR_DIR}/a300-lite.dts"]
    f, line = found[0]
    assert _lines(open(os.path.join(root, f)).read())[line - 1] == \
        "\t/delete-property/ dma-coherent;\n"
    # The other SoCs' files remove nothing; a reference to another label
    # is another node.
    assert removals_of(root, _chain("a100", "evk", "mini"), "/soc/iommu@5000000", ["smmu"]) == []
    assert removals_of(root, _chain("a300", "evk", "lite"), "/soc/iommu@5000000",
                       ["other"]) == []


def test_removal_by_full_path_counts(tmp_path):
    root = make_minikernel(tmp_path / "k")
    board = os.path.join(root, VENDOR_DIR, "a100-mini.dts")
    with open(board, "a") as f:
        f.write("\n/ {\n\tsoc {\n\t\tiommu@5000000 {\n\t\t\t/delete-property/ dma-coherent;\n"
                "\t\t};\n\t};\n};\n"
                "&{/soc/iommu@5000000} {\n\t/delete-property/ dma-coherent;\n};\n")
    found = removals_of(root, _chain("a100", "evk", "mini"), "/soc/iommu@5000000", [])
    lines = _lines(open(board).read())
    assert [f for f, _ in found] == [f"{VENDOR_DIR}/a100-mini.dts"] * 2
    assert all("/delete-property/ dma-coherent;" in lines[n - 1] for _, n in found)
    assert found[0][1] < found[1][1]


def test_diff_applies_with_git_and_twice_does_not(tmp_path):
    root = make_minikernel(tmp_path / "k")
    rel = f"{VENDOR_DIR}/a100.dtsi"
    old = open(os.path.join(root, rel)).read()
    new = add_dma_coherent(old, smmu_line(root, "a100"), rel)
    patch = tmp_path / "p.patch"
    patch.write_text(_diff(root, rel, old, new))
    assert check_series(root, [patch]) == []
    subprocess.run(["git", "apply", str(patch)], cwd=root, check=True,
                   env=dict(os.environ, GIT_CEILING_DIRECTORIES=str(tmp_path)))
    assert open(os.path.join(root, rel)).read() == new
    failed = check_series(root, [patch])
    assert len(failed) == 1 and "patch does not apply" in failed[0][1]


def test_index_line_names_git_blobs(tmp_path):
    root = make_minikernel(tmp_path / "k", git=True)
    rel = f"{VENDOR_DIR}/a200.dtsi"
    old = open(os.path.join(root, rel)).read()
    diff = _diff(root, rel, old, add_dma_coherent(old, smmu_line(root, "a200"), rel))
    blob = subprocess.run(["git", "-C", root, "rev-parse", f"HEAD:{rel}"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert f"index {blob[:12]}.." in diff
