"""The PCI function nodes below a host bridge (kernels/pci.py), the cases
tests/unit/test_kernel_links.py leaves open, with what the kernel finds
read from its C source (Debian's linux-source-6.12 6.12.118 and sid's
-7.2 7.2.13, drivers/pci/of.c; the same lines in both).

pci_set_of_node() (:34) gives a PCI device the node
of_pci_find_child_device(dev->bus->dev.of_node, devfn) returns (:138):
the first child of ITS bus's node whose reg has the devfn
(__of_pci_pci_compare :126), or such a child of a child named
"multifunc-device" (:151).  Each bus is looked up on its own: a root
port's bus is its node.  A node with device_type "pci" is a PCI-PCI
bridge, which vfio-pci does not bind (vfio_pci_probe(): only normal
headers, drivers/vfio/pci/vfio_pci.c 6.12 :153).
"""
from snippets import soc, sweep_dts
from test_kernel_links import HOST, SMMUS, C, host


def functions(doc, bridge=HOST):
    """master path below `bridge` -> (rid, vfio candidate) of its function link."""
    return {r["master_path"][len(bridge):]: (r["rid"], r["vfio_candidate"])
            for r in doc["links"] if r["master_kind"] == "pci-dt-child"}


def test_buses_nested_three_deep(tmp_path):
    """Root ports below root ports: each bus's devfns are its own, so a
    function of devfn 1 on the outer port's bus is found after the inner
    ports' buses have one of devfn 1 too."""
    fns = ('\t\t\tport@0,0 { device_type = "pci"; reg = <0 0 0 0 0>;\n'
           '\t\t\t\tsub@0,0 { device_type = "pci"; reg = <0x10000 0 0 0 0>;\n'
           '\t\t\t\t\tdeep@0,0 { device_type = "pci"; reg = <0x20000 0 0 0 0>;\n'
           '\t\t\t\t\t\tleaf@0,1 { reg = <0x30100 0 0 0 0>; };\n\t\t\t\t\t};\n'
           '\t\t\t\t};\n'
           '\t\t\t\tleaf@0,1 { reg = <0x10100 0 0 0 0>; };\n'
           '\t\t\t};\n')
    doc = sweep_dts(tmp_path, soc(SMMUS, host("<0 &c 0 0x10000>", functions=fns)))
    assert functions(doc) == {
        "/port@0,0": (0x000, False), "/port@0,0/sub@0,0": (0x100, False),
        "/port@0,0/sub@0,0/deep@0,0": (0x200, False),
        "/port@0,0/sub@0,0/deep@0,0/leaf@0,1": (0x301, True),
        "/port@0,0/leaf@0,1": (0x101, True),
    }


def test_bridge_function_without_child_nodes(tmp_path):
    """A device_type "pci" function is a bridge whether or not the DT
    describes anything behind it."""
    fns = ('\t\t\tfn@0,0 { reg = <0 0 0 0 0>; };\n'
           '\t\t\tport@1,0 { device_type = "pci"; reg = <0x800 0 0 0 0>; };\n')
    doc = sweep_dts(tmp_path, soc(SMMUS, host("<0 &c 0 0x10000>", functions=fns)))
    assert functions(doc) == {"/fn@0,0": (0x00, True), "/port@1,0": (0x08, False)}


def test_host_bridge_named_multifunc_device(tmp_path):
    """"multifunc-device" is looked below for the bus node's CHILDREN
    (:151); a host bridge of that name has its children as functions."""
    bridge = host("<0 &c 0x100 3>").replace("pcie@40000000 {", "multifunc-device@40000000 {")
    doc = sweep_dts(tmp_path, soc(SMMUS, bridge))
    assert functions(doc, "/soc/multifunc-device@40000000") == {
        f"/fn@0,{n}": (n, True) for n in range(3)}


def test_host_bridge_last_in_the_dtb(tmp_path):
    """A host bridge whose function nodes are the last nodes of the DTB
    (no labels: dtc writes no __symbols__ after them), the very last
    property being a bridge function's device_type."""
    node = ('\t\tiommu@7000000 { compatible = "arm,mmu-500"; reg = <0 0x7000000 0 0x10000>;'
            ' #global-interrupts = <1>; #iommu-cells = <1>; phandle = <0x10>; };\n')
    fns = ("\t\t\tfn@0,0 { reg = <0 0 0 0 0>; };\n\t\t\tfn@0,1 { reg = <0x100 0 0 0 0>; };\n"
           '\t\t\tport@1,0 { reg = <0x800 0 0 0 0>; device_type = "pci"; };\n')
    doc = sweep_dts(tmp_path, soc(node, host("<0 0x10 0x100 0x10>", functions=fns)))
    assert sorted((r["master_path"], r["provider_path"], r["verdict"]) for r in doc["links"]) == \
        [(HOST, C, "broken")] + [(f"{HOST}/{f}", C, "broken")
                                 for f in ("fn@0,0", "fn@0,1", "port@1,0")]
    assert functions(doc) == {"/fn@0,0": (0x00, True), "/fn@0,1": (0x01, True),
                              "/port@1,0": (0x08, False)}
