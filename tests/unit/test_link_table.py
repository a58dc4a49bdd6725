"""The table of links has named columns (docs/links.md: the table of links),
one row a link, whatever binding made it."""
from kernels import codes
from snippets import device, smmu, soc, sweep_dts

COLUMNS = {"dtb", "provider", "master", "via", "kind", "bridge", "bridge_function", "enabled",
           "attach", "note", "diag", "diag_arg", "rid", "diag_arg2", "diag_node"}

BRIDGE = "/soc/pcie@1f0000000"
PCIE = """
		pcie@1f0000000 {
			compatible = "pci-host-ecam-generic";
			device_type = "pci";
			#address-cells = <3>;
			#size-cells = <2>;
			reg = <0x01 0xf0000000 0x0 0x100000>;
			bus-range = <0x2 0x3>;
			iommu-map = <0 &smmu 0x17 0x1000>;
			ethernet@0,1 { reg = <0x000100 0 0 0 0>; status = "disabled"; };
		};
"""


def test_links_are_rows_of_named_columns(tmp_path):
    doc = sweep_dts(tmp_path, soc(smmu(), device("dev@1", ""), PCIE))
    ev = doc["ev"]
    assert set(ev.links.dtype.names) == COLUMNS
    assert len(ev.links) == len(doc["links"]) == 3
    rows = {(r["master_path"], r["master_kind"]): ev.links[k] for k, r in enumerate(doc["links"])}
    dev = rows["/soc/dev@1", "platform"]
    assert (dev["via"], dev["rid"], dev["bridge"], bool(dev["enabled"])) == \
        (codes.VIA_IOMMUS, -1, -1, True)
    fn = rows[BRIDGE + "/ethernet@0,1", "pci-dt-child"]
    # of_pci_get_devfn(): devfn is reg's bits 15:8; a root-bus function sits
    # on bus-range's first bus: requester ID 0x0201.
    assert (fn["via"], fn["rid"], fn["attach"]) == (codes.VIA_IOMMU_MAP, 0x0201, codes.ATTACHED)
    # 6.12: a function whose node is disabled is bound by no driver.
    assert not fn["enabled"] and not fn["bridge_function"]
    found = rows[BRIDGE, "pci-discovered"]
    assert found["master"] == fn["bridge"] == found["bridge"]
    assert dev["provider"] == fn["provider"] == found["provider"] >= 0
    assert dev["dtb"] == fn["dtb"] == 0 and fn["diag"] == codes.D_NONE
