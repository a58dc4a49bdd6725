"""Properties are found by name wherever they sit in their node
(__of_find_property(), drivers/of/base.c 6.12 :193, walks the node's
list comparing names; __of_device_is_compatible() :321 reads
"compatible" through it): a node whose compatible comes after other
properties, some of names the rule never reads, is matched all the same.
Verdicts read from the kernel's C source, not from kernels/."""
from snippets import soc, sweep_dts, verdict


def test_compatible_after_other_properties(tmp_path):
    node = ('\t\tsmmu: iommu@5000000 { interrupts = <0 1 4>; clock-names = "bus";'
            ' reg = <0 0x5000000 0 0x10000>; compatible = "arm,mmu-500";'
            ' #global-interrupts = <1>; #iommu-cells = <1>; };\n')
    dev = '\t\tdev@1 { iommus = <&smmu 1>; clocks = <1>; compatible = "test,dev"; };\n'
    doc = sweep_dts(tmp_path, soc(node, dev))
    assert verdict(doc, "/soc/dev@1") == "broken"
    assert [r["driver"] for r in doc["links"]] == ["arm-smmu"]
