"""The legacy `mmu-masters` binding (kernels/mmu_masters.py), the cases
tests/unit/test_kernel_links.py leaves open, with the verdict read from the
kernel's C source (Debian's linux-source-6.12 6.12.118 and sid's -7.2
7.2.13), not from kernels/.

arm_smmu_register_legacy_master() (drivers/iommu/arm/arm-smmu/arm-smmu.c
6.12 :146, 7.2 :150) runs for a device being probed: a node that is no
device gets no IOMMU from the list that names it.  of_platform_populate()
makes no device of a node whose status is not okay
(of_platform_bus_create(), drivers/of/platform.c), and a host bridge that
is no device enumerates no bus: those links are not-a-device
(docs/rule.md).  A PCI host bridge listed stands for all of its functions
(docs/links.md).
"""
import pytest

from snippets import compile_dts, document, evaluate_dtb, reported, smmu, soc, sweep_dts

SMMU_PATH = "/soc/iommu@5000000"
LDEV = '\t\tldev: ldev@2 { compatible = "test,dev"; #stream-id-cells = <1>; %s };\n'
PCIE = ('\t\tpcie: pcie@40000000 { compatible = "test,pcie"; device_type = "pci";'
        ' reg = <0 0x40000000 0 0x1000>; #address-cells = <3>; #size-cells = <2>;'
        ' #stream-id-cells = <1>; %s\n'
        '\t\t\tfn@0,0 { reg = <0 0 0 0 0>; };\n\t\t};\n')


def rows(doc):
    return sorted((r["master_path"], r["master_kind"], r["provider_path"], r["verdict"])
                  for r in doc["links"])


def test_disabled_platform_master(tmp_path):
    node = smmu(extra="mmu-masters = <&ldev 1>;")
    doc = sweep_dts(tmp_path, soc(node, LDEV % 'status = "disabled";'))
    assert rows(doc) == [("/soc/ldev@2", "platform", SMMU_PATH, "not-a-device")]


@pytest.mark.parametrize("status, verdict", [('status = "disabled";', "not-a-device"),
                                            ("", "broken")])
def test_host_bridge(tmp_path, status, verdict):
    """Neither the devices found on the bus nor the function nodes are
    devices when the host bridge is disabled."""
    node = smmu(extra="mmu-masters = <&pcie 1>;")
    doc = sweep_dts(tmp_path, soc(node, PCIE % status))
    assert rows(doc) == [
        ("/soc/pcie@40000000", "pci-discovered", SMMU_PATH, verdict),
        ("/soc/pcie@40000000/fn@0,0", "pci-dt-child", SMMU_PATH, verdict)]


def test_legacy_links_in_the_report(tmp_path):
    """As the sweep reports them: a platform master with its IOMMU and no
    host bridge, and an entry that does not parse (a phandle that finds
    no node: of_for_each_phandle() stops, arm-smmu.c 6.12 :136) naming
    neither a master nor a host bridge."""
    node = smmu(extra="mmu-masters = <&ldev 1>, <0x999 1>;")
    doc = sweep_dts(tmp_path, soc(node, LDEV % ""))
    got = sorted(((r.master_path or ""), r.provider_path, r.bridge_path, r.verdict, r.diagnostic)
                 for r in reported(doc))
    assert got == [
        ("", SMMU_PATH, None, "not-a-device", "mmu-masters: phandle 0x999 points nowhere"),
        ("/soc/ldev@2", SMMU_PATH, None, "broken", None)]


def test_mmu_masters_first_property_of_the_dtb(tmp_path):
    """A root without properties and an SMMU whose `mmu-masters` is its
    first property: the list is read all the same (of_for_each_phandle()
    over "mmu-masters", arm-smmu.c 6.12 :136, whatever its place)."""
    body = ("\tiommu@5000000 { mmu-masters = <&ldev 1>; compatible = \"arm,mmu-500\";"
            " reg = <0 0x5000000 0 0x10000>; #global-interrupts = <1>; };\n"
            + LDEV.replace("\t\t", "\t") % "")
    dtb = compile_dts(tmp_path, "board", body, header="/dts-v1/;\n/ {\n")
    doc = document(evaluate_dtb(dtb))
    assert rows(doc) == [("/ldev@2", "platform", "/iommu@5000000", "broken")]


def test_entry_naming_the_root_without_stream_id_cells(tmp_path):
    """An entry naming a node without #stream-id-cells stops the list
    (of_phandle_iterator_next() cannot read the count, drivers/of/base.c):
    the row names that node, the root as any other, and no device."""
    header = ("/dts-v1/;\n/ {\n\tcompatible = \"test,board\";\n\t#address-cells = <2>;\n"
              "\t#size-cells = <2>;\n\tphandle = <0x30>;\n")
    node = smmu(extra="mmu-masters = <&ldev 1>, <0x30 1>;")
    dtb = compile_dts(tmp_path, "board", soc(node, LDEV % ""), header=header)
    doc = document(evaluate_dtb(dtb))
    got = sorted((r.master_path, r.verdict, r.diagnostic) for r in reported(doc))
    assert got == [("/", "not-a-device", "mmu-masters: target / has no #stream-id-cells"),
                   ("/soc/ldev@2", "broken", None)]


@pytest.mark.parametrize("root_extra", ["", 'device_type = "pci";\n'])
def test_a_root_listed_as_a_master_is_no_device(tmp_path, root_extra):
    """The root, listed with its #stream-id-cells: of_platform_populate()
    (drivers/of/platform.c) makes devices of the root's children only, so no
    device ever looks itself up in the list (arm_smmu_register_legacy_master()
    runs for a device being probed): the row is no device, and a root of
    device_type "pci" is no host bridge either (no PCI functions below it)."""
    header = ("/dts-v1/;\n/ {\n\tcompatible = \"test,board\";\n\t#address-cells = <2>;\n"
              "\t#size-cells = <2>;\n\tphandle = <0x30>;\n\t#stream-id-cells = <1>;\n"
              + root_extra)
    node = smmu(extra="mmu-masters = <&ldev 1>, <0x30 1>;")
    dtb = compile_dts(tmp_path, "board", soc(node, LDEV % ""), header=header)
    doc = document(evaluate_dtb(dtb))
    got = sorted((r.master_path, r.verdict, r.diagnostic) for r in reported(doc))
    assert got == [("/", "not-a-device", None), ("/soc/ldev@2", "broken", None)]
