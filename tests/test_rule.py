"""Every semantic of ../shared/SPEC.md sections 1-4, each on a DTS snippet."""
import pytest

from snippets import by_master, device, smmu, soc, sweep_dts, verdict

DEV = "/soc/dev@1"
COHERENT_DEV = device("dev@1", "dma-coherent;")
PLAIN_DEV = device("dev@1", "")


# --- Section 1: drivers and the rule of each era -----------------------------

@pytest.mark.parametrize("rule, expected", [
    ("walk-or-device", "rescued-by-device"),
    ("walk-only", "broken"),
    ("legacy-true", "capable"),
])
def test_arm_smmu_device_fallback_by_era(tmp_path, rule, expected):
    doc = sweep_dts(tmp_path, soc(smmu(), COHERENT_DEV), rule=rule)
    assert verdict(doc, DEV) == expected


def test_coherent_smmu_is_capable_under_every_rule(tmp_path):
    for rule in ("walk-or-device", "walk-only", "legacy-true"):
        doc = sweep_dts(tmp_path, soc(smmu(extra="dma-coherent;"), PLAIN_DEV), rule=rule)
        assert verdict(doc, DEV) == "capable"


def test_noncoherent_master_behind_noncoherent_smmu_is_broken(tmp_path):
    doc = sweep_dts(tmp_path, soc(smmu(), PLAIN_DEV))
    (r,) = doc["links"]
    assert (r["verdict"], r["driver"], r["master_dma_attr"]) == ("broken", "arm-smmu", "non-coherent")
    assert doc["socs"][0]["affected"] and doc["socs"][0]["soc"] == "test,soc"


def test_smmu_v3_has_no_device_fallback(tmp_path):
    doc = sweep_dts(tmp_path, soc(smmu('"arm,smmu-v3"'), COHERENT_DEV))
    (r,) = doc["links"]
    assert (r["driver"], r["verdict"]) == ("arm-smmu-v3", "broken")
    assert verdict(sweep_dts(tmp_path, soc(smmu('"arm,smmu-v3"'), COHERENT_DEV),
                             rule="legacy-true"), DEV) == "capable"


def test_vendor_compatible_with_fallback_and_case(tmp_path):
    doc = sweep_dts(tmp_path, soc(smmu('"qcom,sm8250-smmu-500", "ARM,MMU-500"'), PLAIN_DEV))
    assert doc["links"][0]["driver"] == "arm-smmu"


@pytest.mark.parametrize("compatible, driver, expected", [
    ('"qcom,msm-iommu-v1"', "qcom-iommu", "capable"),
    ('"qcom,msm-iommu-v2"', "qcom-iommu", "capable"),
    ('"rockchip,iommu"', "no-capable", "unsupported-iommu"),
    ('"apple,t8103-dart"', "no-capable", "unsupported-iommu"),
    ('"vendor,mystery-iommu"', "unknown", "unsupported-iommu"),
    # A PMU: a substring match on "arm,smmu-v3" would be wrong.
    ('"arm,smmu-v3-pmcg"', "unknown", "unsupported-iommu"),
])
def test_drivers(tmp_path, compatible, driver, expected):
    doc = sweep_dts(tmp_path, soc(smmu(compatible), PLAIN_DEV), rule="walk-only")
    (r,) = doc["links"]
    assert (r["driver"], r["verdict"]) == (driver, expected)


def test_probe_failures(tmp_path):
    no_irqs = smmu().replace("#global-interrupts = <1>;", "")
    assert verdict(sweep_dts(tmp_path, soc(no_irqs, PLAIN_DEV)), DEV) == "no-iommu"
    v3_two_cells = smmu('"arm,smmu-v3"').replace("#iommu-cells = <1>;", "#iommu-cells = <2>;")
    doc = sweep_dts(tmp_path, soc(v3_two_cells, device("dev@1", "", "<&smmu 1 2>")))
    assert verdict(doc, DEV) == "no-iommu"
    assert "#iommu-cells is not 1" in doc["links"][0]["note"]


def test_first_arm_smmu_fixes_the_binding_style(tmp_path):
    legacy = smmu(extra="mmu-masters = <&ldev 0x1>;", label="smmu0", unit="4000000")
    generic = smmu(label="smmu1", unit="5000000")
    body = soc(legacy, generic,
               "\t\tldev: ldev@2 { compatible = \"test,dev\"; #stream-id-cells = <1>; };\n",
               device("dev@1", "", "<&smmu1 0x10>"))
    doc = sweep_dts(tmp_path, body)
    assert verdict(doc, "/soc/ldev@2") == "broken"
    assert doc["links"][0]["link"] == "mmu-masters" or by_master(doc)["/soc/ldev@2"][0]["link"] == "mmu-masters"
    # the generic SMMU does not probe ("mismatched DT properties"): its master has no IOMMU
    assert verdict(doc, DEV) == "no-iommu"


# --- Section 2: of_dma_is_coherent() ------------------------------------------

def test_dma_coherent_on_an_ancestor_counts(tmp_path):
    doc = sweep_dts(tmp_path, soc(smmu(), PLAIN_DEV, bus_extra="\t\tdma-coherent;\n"))
    (r,) = doc["links"]
    assert r["provider_coherent"] and r["verdict"] == "capable"


def test_dma_noncoherent_stops_the_walk(tmp_path):
    doc = sweep_dts(tmp_path, soc(smmu(extra="dma-noncoherent;"), PLAIN_DEV,
                                  bus_extra="\t\tdma-coherent;\n"))
    assert not doc["links"][0]["provider_coherent"]


def test_interconnect_dma_mem_is_the_dma_parent(tmp_path):
    noc = ("\t\tnoc: interconnect@1 { compatible = \"test,noc\"; #interconnect-cells = <1>;"
           " dma-coherent; };\n")
    via_noc = smmu(extra='interconnects = <&noc 7>, <&noc 8>; interconnect-names = "cpu", "dma-mem";')
    doc = sweep_dts(tmp_path, soc(noc, via_noc, PLAIN_DEV))
    assert doc["links"][0]["provider_coherent"]
    # An interconnects entry that does not parse: the tree parent is used.
    bad = smmu(extra='interconnects = <&noc>; interconnect-names = "dma-mem";')
    doc = sweep_dts(tmp_path, soc(noc, bad, PLAIN_DEV))
    assert not doc["links"][0]["provider_coherent"]


def test_dma_parent_cycle_does_not_hang(tmp_path):
    a = ("\t\ta: noc@1 { compatible = \"test,noc\"; #interconnect-cells = <0>;"
         ' interconnects = <&b>; interconnect-names = "dma-mem"; };\n')
    b = ("\t\tb: noc@2 { compatible = \"test,noc\"; #interconnect-cells = <0>;"
         ' interconnects = <&a>; interconnect-names = "dma-mem"; };\n')
    looped = smmu(extra='interconnects = <&a>; interconnect-names = "dma-mem";')
    doc = sweep_dts(tmp_path, soc(a, b, looped, PLAIN_DEV))
    assert doc["links"][0]["verdict"] == "broken"


# --- Section 3: masters --------------------------------------------------------

def test_iommus_attaches_to_the_first_instance(tmp_path):
    two = soc(smmu(label="smmu0", unit="4000000"), smmu(label="smmu1", unit="5000000"),
              device("dev@1", "", "<&smmu0 1>, <&smmu1 2>"))
    (r,) = sweep_dts(tmp_path, two)["links"]
    assert r["provider_path"] == "/soc/iommu@4000000" and r["verdict"] == "broken"


def test_iommus_entry_of_another_driver_is_refused(tmp_path):
    mixed = soc(smmu(label="smmu0", unit="4000000"),
                smmu('"rockchip,iommu"', label="rk", unit="5000000"),
                device("dev@1", "", "<&smmu0 1>, <&rk 2>"))
    doc = sweep_dts(tmp_path, mixed)
    (r,) = doc["links"]
    assert r["verdict"] == "no-iommu" and "another IOMMU driver" in r["diagnostic"]


def test_iommus_disabled_provider_in_any_entry(tmp_path):
    body = soc(smmu(label="smmu0", unit="4000000"),
               smmu(label="smmu1", unit="5000000", extra='status = "disabled";'),
               device("dev@1", "", "<&smmu0 1>, <&smmu1 2>"))
    assert verdict(sweep_dts(tmp_path, body), DEV) == "no-iommu"


def test_iommus_malformed_entries(tmp_path):
    # A phandle to nowhere in the first entry: no IOMMU, and a diagnostic.
    doc = sweep_dts(tmp_path, soc(smmu(), device("dev@1", "", "<0x999 1>")))
    (r,) = doc["links"]
    assert r["verdict"] == "no-iommu" and "points nowhere" in r["diagnostic"]
    assert doc["diagnostics"] and doc["diagnostics"][0]["path"] == DEV
    # ...in a later entry: parsing stops there, the first entry stands.
    doc = sweep_dts(tmp_path, soc(smmu(), device("dev@1", "", "<&smmu 1 0x999 2>")))
    (r,) = doc["links"]
    assert r["verdict"] == "broken" and "parsing stopped" in r["note"]
    # A short list, and a target without #iommu-cells.
    doc = sweep_dts(tmp_path, soc(smmu(), device("dev@1", "", "<&smmu>")))
    assert "past the end" in doc["links"][0]["diagnostic"]
    no_cells = smmu().replace("#iommu-cells = <1>;", "")
    doc = sweep_dts(tmp_path, soc(no_cells, device("dev@1", "", "<&smmu 1>")))
    assert "has no #iommu-cells" in doc["links"][0]["diagnostic"]
    assert doc["links"][0]["verdict"] == "no-iommu"


PCIE = """
		pcie@1f0000000 {{
			compatible = "pci-host-ecam-generic";
			device_type = "pci";
			#address-cells = <3>;
			#size-cells = <2>;
			reg = <0x01 0xf0000000 0x0 0x100000>;
			bus-range = <0x0 0x0>;
			iommu-map = {map};
			{extra}
			ethernet@0,0 {{ compatible = "test,fn"; reg = <0x000000 0 0 0 0>; {fn_extra} }};
			ethernet@0,1 {{ compatible = "test,fn"; reg = <0x000100 0 0 0 0>; status = "disabled"; }};
			rcec@1f,0 {{ reg = <0x00f800 0 0 0 0>; }};
			multifunc-device {{
				ethernet@0,2 {{ compatible = "test,fn"; reg = <0x000200 0 0 0 0>; }};
			}};
		}};
"""
BRIDGE = "/soc/pcie@1f0000000"


def pcie(map="<0 &smmu 0x17 0x80>", extra="dma-coherent;", fn_extra=""):
    return PCIE.format(map=map, extra=extra, fn_extra=fn_extra)


def test_pci_host_bridge_ls1028a_pattern(tmp_path):
    doc = sweep_dts(tmp_path, soc(smmu(), pcie()))
    m = by_master(doc)
    assert m[BRIDGE + "/ethernet@0,0"][0]["verdict"] == "rescued-by-device"
    assert m[BRIDGE + "/ethernet@0,0"][0]["master_kind"] == "pci-dt-child"
    assert m[BRIDGE + "/multifunc-device/ethernet@0,2"][0]["verdict"] == "rescued-by-device"
    # disabled function node: enumerated, but no driver (vfio-pci included) matches
    assert m[BRIDGE + "/ethernet@0,1"][0]["verdict"] == "not-a-device"
    # requester ID 0xf8 is not in the map: no IOMMU
    assert m[BRIDGE + "/rcec@1f,0"][0]["verdict"] == "no-iommu"
    (disc,) = m[BRIDGE]
    assert (disc["master_kind"], disc["master_dma_attr"], disc["bridge_coherent"], disc["verdict"]) == \
        ("pci-discovered", "not-supported", True, "broken-bridge-coherent")
    under_walk_only = by_master(sweep_dts(tmp_path, soc(smmu(), pcie()), rule="walk-only"))
    assert under_walk_only[BRIDGE + "/ethernet@0,0"][0]["verdict"] == "broken-bridge-coherent"


def test_pci_function_node_coherency_and_plain_bridge(tmp_path):
    m = by_master(sweep_dts(tmp_path, soc(smmu(), pcie(extra="", fn_extra="dma-coherent;"))))
    assert m[BRIDGE + "/ethernet@0,0"][0]["verdict"] == "rescued-by-device"
    assert m[BRIDGE][0]["verdict"] == "broken"


def test_iommu_map_mask_and_zero_length_entries(tmp_path):
    # mask 0: every RID maps through entry 0; a length-0 entry never matches.
    m = by_master(sweep_dts(tmp_path, soc(smmu(), pcie(
        map="<0 &smmu 0x17 0x1>", extra="dma-coherent; iommu-map-mask = <0>;"))))
    assert m[BRIDGE + "/rcec@1f,0"][0]["verdict"] == "rescued-by-device"
    m = by_master(sweep_dts(tmp_path, soc(smmu(), pcie(map="<0 &smmu 0x17 0>, <0 &smmu 0 0x80>"))))
    assert m[BRIDGE + "/ethernet@0,0"][0]["verdict"] == "rescued-by-device"


def test_placeholder_map_counts_the_link(tmp_path):
    m = by_master(sweep_dts(tmp_path, soc(smmu(), pcie(map="<0 &smmu 0 0>"))))
    assert m[BRIDGE][0]["placeholder_map"] and "placeholder" in m[BRIDGE][0]["note"]
    assert m[BRIDGE + "/rcec@1f,0"][0]["verdict"] == "rescued-by-device"


def test_bad_map_length(tmp_path):
    doc = sweep_dts(tmp_path, soc(smmu(), pcie(map="<0 &smmu 0x17>")))
    assert {r["verdict"] for r in doc["links"]} <= {"no-iommu", "not-a-device"}
    assert any("not a non-zero multiple of 16" in (r["diagnostic"] or "") for r in doc["links"])


def test_functions_below_a_root_port_guess_the_bus(tmp_path):
    root_port = """
		pcie@40000000 {
			compatible = "test,pcie"; device_type = "pci";
			#address-cells = <3>; #size-cells = <2>;
			reg = <0 0x40000000 0 0x1000>;
			iommu-map = <0x100 &smmu 0x100 0x100>;
			pcie@0,0 {
				device_type = "pci"; reg = <0x0 0 0 0 0>;
				#address-cells = <3>; #size-cells = <2>;
				nic@0,0 { reg = <0x10000 0 0 0 0>; dma-coherent; };
				nic@0,1 { reg = <0x20100 0 0 0 0>; dma-coherent; };
			};
		};
"""
    m = by_master(sweep_dts(tmp_path, soc(smmu(), root_port)))
    port = "/soc/pcie@40000000/pcie@0,0"
    assert m[port][0]["vfio_candidate"] is False          # a PCI-PCI bridge function
    guessed = m[port + "/nic@0,0"][0]
    assert guessed["verdict"] == "rescued-by-device" and "guessed" in guessed["note"]
    unmatched = m[port + "/nic@0,1"][0]                   # bus 2 is not in the map
    assert unmatched["verdict"] == "rescued-by-device" and "judged against" in unmatched["note"]


def test_iommu_map_readers(tmp_path):
    mc = ('\t\tfsl-mc@80c000000 { compatible = "fsl,qoriq-mc"; reg = <0x8 0x0c000000 0 0x40>;'
          " dma-coherent; iommu-map = <0 &smmu 0 0>; };\n")
    host1x = ('\t\thost1x@13e00000 { compatible = "nvidia,tegra234-host1x";'
              " reg = <0 0x13e00000 0 0x10000>; iommu-map = <0 &smmu 0x30 1>, <1 &smmu 0x31 1>; };\n")
    ep = ('\t\tpcie-ep@140e0000 { compatible = "nvidia,tegra234-pcie-ep";'
          " reg = <0 0x140e0000 0 0x10000>; iommu-map = <0 &smmu 0x40 0x1000>; };\n")
    m = by_master(sweep_dts(tmp_path, soc(smmu(), mc, host1x, ep)))
    (r,) = m["/soc/fsl-mc@80c000000"]
    assert (r["master_kind"], r["verdict"], r["placeholder_map"], r["vfio_candidate"]) == \
        ("fsl-mc", "broken-bridge-coherent", True, True)
    (h,) = m["/soc/host1x@13e00000"]       # one link per (node, provider)
    assert (h["master_kind"], h["vfio_candidate"]) == ("host1x-context", False)
    assert "/soc/pcie-ep@140e0000" not in m   # no kernel code reads that map


def test_legacy_mmu_masters(tmp_path):
    body = soc(smmu(extra="mmu-masters = <&ldev 0x1 0x2>, <&pci 0x3>;"),
               "\t\tldev: ldev@2 { compatible = \"test,dev\"; #stream-id-cells = <2>; dma-coherent; };\n",
               "\t\tpci: pcie@3 { device_type = \"pci\"; #stream-id-cells = <1>; reg = <0 3 0 1>;"
               " #address-cells = <3>; #size-cells = <2>; };\n")
    m = by_master(sweep_dts(tmp_path, body))
    assert m["/soc/ldev@2"][0]["verdict"] == "rescued-by-device"
    assert m["/soc/pcie@3"][0]["master_kind"] == "pci-discovered"
    off = by_master(sweep_dts(tmp_path, body, legacy_dt_bindings=False))
    assert off["/soc/ldev@2"][0]["verdict"] == "no-iommu"
    assert "CONFIG_ARM_SMMU_LEGACY_DT_BINDINGS" in off["/soc/ldev@2"][0]["note"]


def test_availability(tmp_path):
    assert verdict(sweep_dts(tmp_path, soc(smmu(extra='status = "disabled";'), PLAIN_DEV)), DEV) == "no-iommu"
    assert verdict(sweep_dts(tmp_path, soc(smmu(extra='status = "ok";'), PLAIN_DEV)), DEV) == "broken"
    assert verdict(sweep_dts(tmp_path, soc(smmu(), device("dev@1", 'status = "fail";'))), DEV) == "not-a-device"
    nested = "\t\tbus@9 {\n\t\t\tstatus = \"disabled\";\n" + device("dev@1", "") + "\t\t};\n"
    assert verdict(sweep_dts(tmp_path, soc(smmu(), nested)), "/soc/bus@9/dev@1") == "not-a-device"
    off_bridge = by_master(sweep_dts(tmp_path, soc(smmu(), pcie(extra='status = "disabled";'))))
    assert off_bridge[BRIDGE][0]["verdict"] == "not-a-device"


def test_soc_summary_ranks_passthrough_first(tmp_path):
    doc = sweep_dts(tmp_path, soc(smmu(), PLAIN_DEV, pcie()))
    (s,) = doc["socs"]
    assert s["affected"] and s["passthrough"]
    assert s["broken_masters"][0]["path"] in (BRIDGE, DEV)
    (p,) = s["providers"]
    assert (p["path"], p["label"], p["coherent"], p["affected"]) == ("/soc/iommu@5000000", "smmu", False, True)


def test_host_bridge_own_iommus_is_a_platform_link(tmp_path):
    # The controller is a platform device (Tegra186's pcie@10003000).
    m = by_master(sweep_dts(tmp_path, soc(smmu(), pcie(extra="dma-coherent; iommus = <&smmu 0x5>;"))))
    kinds = sorted(r["master_kind"] for r in m[BRIDGE])
    assert kinds == ["pci-discovered", "platform"]
    (own,) = [r for r in m[BRIDGE] if r["link"] == "iommus"]
    assert own["verdict"] == "rescued-by-device"


def test_two_drivers_without_capable_are_still_two_drivers(tmp_path):
    mixed = soc(smmu('"rockchip,iommu"', label="rk", unit="4000000"),
                smmu('"apple,t8103-dart"', label="dart", unit="5000000"),
                device("dev@1", "", "<&rk 1>, <&dart 2>"))
    (r,) = sweep_dts(tmp_path, mixed)["links"]
    assert r["verdict"] == "no-iommu" and "another IOMMU driver" in r["diagnostic"]


def test_only_children_of_a_bus_are_pci_functions(tmp_path):
    # A node with a 5-cell reg below a non-function node is no PCI function.
    odd = pcie().replace("rcec@1f,0 {", "ports { nic@0,3 { reg = <0x300 0 0 0 0>; }; }; rcec@1f,0 {")
    m = by_master(sweep_dts(tmp_path, soc(smmu(), odd)))
    assert BRIDGE + "/ports/nic@0,3" not in m
