"""`iommus` and the root node (kernels/iommus.py, kernels/dt.py), the cases
tests/unit/test_kernel_links.py leaves open, with the verdict read from the
kernel's C source (Debian's linux-source-6.12 6.12.118 and sid's -7.2
7.2.13), not from kernels/.

of_iommu_configure_dev() (drivers/iommu/of_iommu.c 6.12 :64) parses each
entry with of_parse_phandle_with_args("iommus", "#iommu-cells"): the
phandle is looked up among every node, the root included
(of_find_node_by_phandle(), drivers/of/base.c 6.12 :1115), and a target
without #iommu-cells fails the entry (of_phandle_iterator_next() :1220).
The root is no IOMMU: no driver binds it (unsupported-iommu, docs/rule.md);
a target that is no IOMMU provider leaves the device without one.
Properties are read wherever they sit in their node, the first property
of the DTB included.
"""
import pytest

from kernels import codes
from snippets import HEADER, compile_dts, document, evaluate_dtb, reported, smmu, soc, sweep_dts

DEV = '\t\tdev@1 { compatible = "test,dev"; iommus = %s; };\n'


@pytest.mark.parametrize("root, expected", [
    ("\tphandle = <0x77>;\n\t#iommu-cells = <1>;\n",
     ("/", "unsupported-iommu", codes.ATTACHED, None)),
    # as for any target without #iommu-cells (test_kernel_links.test_iommus_list)
    ("\tphandle = <0x77>;\n",
     ("/", "no-iommu", codes.A_NOT_A_PROVIDER, "iommus: target / has no #iommu-cells")),
])
def test_iommus_aimed_at_the_root(tmp_path, root, expected):
    doc = sweep_dts(tmp_path, root + soc(smmu(), DEV % "<0x77 5>"))
    (r,) = doc["links"]
    assert (r["provider_path"], r["verdict"], r["attach"], r["diagnostic"]) == expected


@pytest.mark.parametrize("target", ["6.12", "7.2"])
def test_root_whose_first_property_is_iommu_cells(tmp_path, target):
    """#iommu-cells = <0> as the DTB's very first property: the device's
    one-cell entry and (7.2, :2253) the map's three-cell entry read it."""
    header = HEADER.replace("/ {\n", "/ {\n\t#iommu-cells = <0>;\n\tphandle = <0x77>;\n", 1)
    host = ('\t\tpcie@40000000 { compatible = "test,pcie"; device_type = "pci";'
            ' reg = <0 0x40000000 0 0x1000>; #address-cells = <3>; #size-cells = <2>;'
            ' iommu-map = <0 0x77 3>;\n\t\t\tfn@0,1 { reg = <0x100 0 0 0 0>; };\n\t\t};\n')
    map_ok = target == "7.2"
    dtb = compile_dts(tmp_path, "board", soc(DEV % "<0x77>", host), header=header)
    doc = document(evaluate_dtb(dtb, target))
    got = {r["master_path"]: (r["provider_path"], r["verdict"]) for r in doc["links"]}
    assert got["/soc/dev@1"] == ("/", "unsupported-iommu")
    # 6.12 reads <0 0x77 3> as a 4-cell entry: 12 bytes are no map.
    assert got["/soc/pcie@40000000/fn@0,1"] == \
        (("/", "unsupported-iommu") if map_ok else (None, "no-iommu"))


def test_iommus_to_nowhere_in_the_report(tmp_path):
    doc = sweep_dts(tmp_path, soc(smmu(), DEV % "<0x999 1>"))
    (r,) = reported(doc)
    assert (r.master_path, r.provider_path, r.verdict, r.diagnostic) == \
        ("/soc/dev@1", None, "no-iommu", "iommus: phandle 0x999 points nowhere")


# iommu_fwspec_init() (drivers/iommu/iommu.c 6.12 :2844): a target no IOMMU
# driver has registered (no ops) is -EPROBE_DEFER (:2850), the device waits
# for it and never gets an IOMMU; of_iommu_configure_dev() stops at the
# first entry that fails (of_iommu.c 6.12 :76).  Whichever entry it is, the
# device has no IOMMU, beside an SMMUv3 that probes.

V3 = ('\t\tv3: iommu@6000000 { compatible = "arm,smmu-v3"; reg = <0 0x6000000 0 0x10000>;'
      ' #iommu-cells = <1>; };\n')
NODRIVER = ('\t\tnodriver: iommu@7000000 { compatible = "test,iommu"; reg = <0 0x7000000 0 0x10>;'
            ' #iommu-cells = <1>; };\n')


@pytest.mark.parametrize("iommus", ["<&v3 1>, <&nodriver 1>", "<&nodriver 1>, <&v3 1>"])
def test_second_entry_of_no_driver(tmp_path, iommus):
    doc = sweep_dts(tmp_path, soc(V3, NODRIVER, DEV % iommus))
    (r,) = doc["links"]
    assert r["verdict"] == "no-iommu"


def test_root_then_an_smmu(tmp_path):
    """The root (the DTB's first node) as the first entry, an SMMUv3 that
    probes as the second: the root is no registered IOMMU, so the first
    entry already fails (iommu_fwspec_init(), -EPROBE_DEFER :2850) and the
    device gets no IOMMU, the SMMUv3's least of all (the second entry is
    never taken for the first)."""
    root = "\tphandle = <0x77>;\n\t#iommu-cells = <1>;\n"
    doc = sweep_dts(tmp_path, root + soc(V3, DEV % "<0x77 5>, <&v3 1>"))
    (r,) = doc["links"]
    assert r["verdict"] == "no-iommu"


def test_disabled_root_as_a_target(tmp_path):
    """of_iommu_xlate() (drivers/iommu/of_iommu.c 6.12 :28) refuses a target
    that of_device_is_available() says is not available, the root too
    (its status the DTB's very first property here): no IOMMU, the IOMMU
    node disabled.  (The root's status disables none of its children:
    of_platform_populate() starts below it.)"""
    header = HEADER.replace("/ {\n", '/ {\n\tstatus = "disabled";\n\tphandle = <0x77>;\n'
                            "\t#iommu-cells = <1>;\n", 1)
    dtb = compile_dts(tmp_path, "board", soc(DEV % "<0x77 5>"), header=header)
    (r,) = document(evaluate_dtb(dtb))["links"]
    assert (r["master_path"], r["provider_path"], r["verdict"], r["attach"]) == \
        ("/soc/dev@1", "/", "no-iommu", codes.A_PROVIDER_DISABLED)
