"""The source side of the patch series: finding the node, placing
`dma-coherent;`, and finding boards that remove it (the diffs git takes:
tests/test_patch_series_mails.py)."""
import os
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.patch.dts import DtsError
from auditor.patch.dts import add_dma_coherent, node_at, parse_dts, removals_of
from minikernel import VENDOR_DIR, make_minikernel

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


def _lines(text):
    """Lines with their ends (the texts here have no form feed for
    str.splitlines to split at)."""
    return text.splitlines(keepends=True)


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
    with pytest.raises(DtsError, match=message):
        add_dma_coherent(_with_body(body), 7, "x.dtsi")


def test_errors_name_file_and_line():
    with pytest.raises(DtsError, match=r"^x\.dtsi:4: no node opens here"):
        add_dma_coherent(_with_body(["#iommu-cells = <1>;"]), 4, "x.dtsi")
    with pytest.raises(DtsError, match=r"^x\.dtsi:3: unmatched"):
        parse_dts("/ {\n};\n};\n", "x.dtsi")
    one_line = "/ {\n\tsmmu: iommu@1 { #iommu-cells = <1>; };\n};\n"
    with pytest.raises(DtsError, match=r"^x\.dtsi:2: .* written on one line"):
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
    else [f"{name} = <0x1>,", "\t<0x2>;"]), _names, st.integers(1, 3), st.booleans())
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


# -- the tokenizer and the statements, exactly ----------------------------------------

def _kinds(statements):
    return [(s.kind, s.name, s.first + 1, s.last + 1, s.labels, s.words, _kinds(s.body))
            for s in statements]


def test_statements_through_comments_strings_and_cpp_lines():
    text = ('/dts-v1/;\r\n'
            '#include "a.dtsi" /* ; */\r\n'
            '#define X(a) \\\r\n'                          # continued: two lines
            '\t{ a }\r\n'
            '/ {\r\n'
            '\tlbl: p = "x;{\\"}", <&{/soc/a@1} 2>; /* two\r\nlines */ q;\r\n'
            '\t#iommu-cells = <1>; // c { }\r\n'
            '\ta: b:n@1 {\u00a0r=<2>; };;\r\n'             # any space is a space
            '};\r\n'
            '  #if 0\n'                                     # a cpp line, indented
            '/* never closed ; }')
    assert _kinds(parse_dts(text)) == [
        ("directive", "/dts-v1/", 1, 1, [], ["/dts-v1/"], []),
        ("node", "/", 5, 10, [], ["/"], [
            ("property", "p", 6, 6, ["lbl"],
             ["lbl:", "p", "=", '"x;{\\"}"', ",", "<&{/soc/a@1}", "2>"], []),
            ("property", "q", 7, 7, [], ["q"], []),
            ("property", "#iommu-cells", 8, 8, [], ["#iommu-cells", "=", "<1>"], []),
            ("node", "n@1", 9, 9, ["a", "b"], ["a:", "b:n@1"], [
                ("property", "r", 9, 9, [], ["r=<2>"], [])])])]


def test_a_directive_not_first_on_its_line_is_words_and_one_at_the_end_ends():
    assert _kinds(parse_dts("x; #include y;\n")) == [
        ("property", "x", 1, 1, [], ["x"], []),
        ("property", "#include", 1, 1, [], ["#include", "y"], [])]
    assert _kinds(parse_dts("x;\n#define A \\\n")) == [("property", "x", 1, 1, [], ["x"], [])]
    assert _kinds(parse_dts("x;\n#endif")) == [("property", "x", 1, 1, [], ["x"], [])]
    # a string ends at its line's end when it is not closed
    assert _kinds(parse_dts('"open\nb;')) == [
        ("property", '"open', 1, 2, [], ['"open', "b"], [])]


def test_statements_of_every_kind():
    text = ("/dts-v1/;\n"
            "/ {\n"
            "\tlbl: phys = <&{/padctl@7009f000/pads/pcie/lanes/pcie-1}>,\n"
            "\t       <&{/padctl@7009f000/pads/pcie/lanes/pcie-2}>;\n"
            "\t;\n"
            "\ta: b: n@1\n"
            "\t{\n"
            "\t\tr=<2>;\n"
            "\t}\n"
            "\t/delete-property/ dma-coherent;\n"
            "};\n"
            "&{/soc} { };\n")
    assert _kinds(parse_dts(text)) == [
        ("directive", "/dts-v1/", 1, 1, [], ["/dts-v1/"], []),
        ("node", "/", 2, 11, [], ["/"], [
            ("property", "phys", 3, 4, ["lbl"],
             ["lbl:", "phys", "=", "<&{/padctl@7009f000/pads/pcie/lanes/pcie-1}>,",
              "<&{/padctl@7009f000/pads/pcie/lanes/pcie-2}>"], []),
            ("node", "n@1", 6, 9, ["a", "b"], ["a:", "b:", "n@1"], [
                ("property", "r", 8, 8, [], ["r=<2>"], [])]),
            ("directive", "/delete-property/", 10, 10, [], ["/delete-property/",
                                                           "dma-coherent"], [])]),
        ("node", "&{/soc}", 12, 12, [], ["&{/soc}"], [])]
    statements = parse_dts(text)
    n = statements[1].body[1]
    assert n.open == 6                      # 0-based: the `{` on its own line
    assert repr(n) == "<node 'n@1' 6-9>"   # 1-based, as in the messages
    assert node_at(statements, 6) is n and node_at(statements, 7) is n
    assert node_at(statements, 8) is None


def test_dma_coherent_after_a_property_of_path_references():
    # tegra234.dtsi writes `phys = <&{/padctl@.../lanes/pcie-1}>;`: one property
    text = ("/ {\n\tpcie@1 {\n\t\treg = <1>;\n"
            "\t\tphys = <&{/padctl/pads/pcie/lanes/pcie-1}>,\n"
            "\t\t       <&{/padctl/pads/pcie/lanes/pcie-2}>;\n"
            "\t\tstatus = \"okay\";\n\t};\n};\n")
    assert add_dma_coherent(text, 2, "t.dtsi") == text.replace(
        "pcie-2}>;\n", "pcie-2}>;\n\t\tdma-coherent;\n")


def test_removals_under_every_kind_of_top_node(tmp_path):
    files = {
        "root.dts": "/ {\n\tsoc {\n\t\tiommu@1 {\n\t\t\t/delete-property/ dma-coherent;\n"
                    "\t\t};\n\t};\n};\n",
        "path.dts": "&{/soc} {\n\tiommu@1 {\n\t\t/delete-property/ dma-coherent;\n\t};\n};\n",
        "label.dts": "&smmu {\n\t/delete-property/ dma-coherent;\n};\n",
        "other.dts": "&mmu {\n\t/delete-property/ dma-coherent;\n};\n"
                     "&{/soc/iommu@2} {\n\t/delete-property/ dma-coherent;\n};\n"
                     "/ {\n\tsoc {\n\t\tiommu@1 {\n\t\t\t/delete-property/ dma-noncoherent;\n"
                     "\t\t\t/delete-property/ dma-coherent-x;\n\t\t};\n\t};\n};\n",
        "labelled.dts": "/ {\n\tbus {\n\t\tsmmu: mmu@1 {\n\t\t\tx;\n\t\t};\n\t};\n};\n"
                        "/ {\n\tbus {\n\t\tsmmu: mmu@1 {\n"
                        "\t\t\t/delete-property/ dma-coherent;\n\t\t};\n\t};\n};\n",
        "nested.dts": "&soc {\n\tiommu@1 {\n\t\t/delete-property/ dma-coherent;\n\t};\n};\n",
        "broken.dts": "/ {\n\t/delete-property/ dma-coherent;\n",
        # a fragment included inside a node: its own top nodes have no path here
        "fragment.dtsi": "iommu@1 {\n\t/delete-property/ dma-coherent;\n};\n"
                         "&smmu {\n\t/delete-property/ dma-coherent;\n};\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert removals_of(str(tmp_path), list(files) + ["missing.dts"], "/soc/iommu@1",
                       ["smmu"]) == [
        ("fragment.dtsi", 5), ("label.dts", 2), ("labelled.dts", 11), ("path.dts", 3),
        ("root.dts", 4)]


def test_statements_at_the_edges_of_cpp_lines():
    # a directive on the very first line; a continued one followed by an empty line
    assert _kinds(parse_dts("#include <x.h>\n/ { };")) == [("node", "/", 2, 2, [], ["/"], [])]
    assert _kinds(parse_dts("#define A \\\n\n/ {\n};")) == [
        ("node", "/", 3, 4, [], ["/"], [])]
    # a `#` after a word on the same line is a word (a property such as #size-cells)
    assert _kinds(parse_dts("x #if y;\n")) == [
        ("property", "x", 1, 1, [], ["x", "#if", "y"], [])]


def test_statements_at_the_edges():
    assert [(s.name, s.last) for s in parse_dts("{ };\n/ {\n}\n;\n")] == [("", 0), ("/", 3)]
    (prop,) = parse_dts('/ { compatible = "acme:x"; };')[0].body
    assert (prop.name, prop.labels) == ("compatible", [])
    with pytest.raises(DtsError) as raised:
        parse_dts("};")
    assert str(raised.value) == "<dts>:1: unmatched '}'"
    with pytest.raises(DtsError) as raised:
        parse_dts("/ {\n", "x.dtsi")
    assert str(raised.value) == "x.dtsi: unterminated node at end of file"
    with pytest.raises(DtsError) as raised:
        add_dma_coherent("/ {\n\tsmmu: iommu@1 { };\n};\n", 2)
    assert str(raised.value) == "<dts>:2: node iommu@1 is written on one line"
