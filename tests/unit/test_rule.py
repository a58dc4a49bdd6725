"""Every semantic of ../shared/SPEC.md sections 1-4, each on a DTS snippet,
under the target kernel snippets.DEFAULT_TARGET (6.12) unless a test names
others; the version-dependent rows of SPEC 1.1 under the versions on both
sides of each change (the second half of this file)."""
import pytest

from kernels import codes, links
from kernels.codes import BAD_IOMMU_CELLS, Rule
from snippets import (affected_socs, by_master, compile_dts, device, evaluate_dtb, smmu, soc,
                      sweep_dts, verdict)

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
    assert affected_socs(doc) == {"test,soc"}


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
    (r,) = doc["links"]
    assert r["attach"] == codes.A_NOT_PROBED
    assert doc["ev"].probe_state[doc["ev"].links[0]["provider"]] == BAD_IOMMU_CELLS


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
    # One problem for the loop, however many nodes walk into it.
    (p,) = doc["problems"]
    assert (p["code"], p["node"], p["other"]) == \
        (codes.P_DMA_PARENT_LOOP, "/soc/noc@2", "/soc/noc@1")
    assert p["message"] == ("interconnects: the DMA parents of /soc/noc@2 loop back to /soc/noc@1 "
                            "(dma-mem): of_dma_is_coherent() would never return; judged not coherent")


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
    assert r["verdict"] == "no-iommu" and r["diagnostic"] == "iommus: phandle 0x999 points nowhere"
    assert r["master_path"] == DEV
    # ...in a later entry: parsing stops there, the first entry stands.
    doc = sweep_dts(tmp_path, soc(smmu(), device("dev@1", "", "<&smmu 1 0x999 2>")))
    (r,) = doc["links"]
    assert r["verdict"] == "broken" and r["note"] == codes.N_TRUNCATED
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
    assert m[BRIDGE][0]["placeholder_map"] and m[BRIDGE][0]["note"] == codes.N_PLACEHOLDER
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
    assert guessed["verdict"] == "rescued-by-device" and guessed["note"] == codes.N_GUESSED_BUS
    unmatched = m[port + "/nic@0,1"][0]                   # bus 2 is not in the map
    assert unmatched["verdict"] == "rescued-by-device"
    assert unmatched["note"] == codes.N_GUESS_UNMATCHED


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
    assert off["/soc/ldev@2"][0]["attach"] == codes.A_LEGACY_UNSUPPORTED


def test_availability(tmp_path):
    assert verdict(sweep_dts(tmp_path, soc(smmu(extra='status = "disabled";'), PLAIN_DEV)), DEV) == "no-iommu"
    assert verdict(sweep_dts(tmp_path, soc(smmu(extra='status = "ok";'), PLAIN_DEV)), DEV) == "broken"
    assert verdict(sweep_dts(tmp_path, soc(smmu(), device("dev@1", 'status = "fail";'))), DEV) == "not-a-device"
    nested = "\t\tbus@9 {\n\t\t\tstatus = \"disabled\";\n" + device("dev@1", "") + "\t\t};\n"
    assert verdict(sweep_dts(tmp_path, soc(smmu(), nested)), "/soc/bus@9/dev@1") == "not-a-device"
    off_bridge = by_master(sweep_dts(tmp_path, soc(smmu(), pcie(extra='status = "disabled";'))))
    assert off_bridge[BRIDGE][0]["verdict"] == "not-a-device"


ROOT_DISABLED = '\tstatus = "disabled";\n' + soc(smmu(), PLAIN_DEV)


def test_the_roots_own_status_disables_nothing(tmp_path):
    """of_platform_populate() creates devices from the root's children on: a
    root written `status = "disabled"` leaves the SMMU and its master devices."""
    assert verdict(sweep_dts(tmp_path, ROOT_DISABLED), DEV) == "broken"


def test_affected_soc_from_a_broken_candidate(tmp_path):
    doc = sweep_dts(tmp_path, soc(smmu(), PLAIN_DEV, pcie()))
    assert affected_socs(doc) == {"test,soc"}
    fixed = sweep_dts(tmp_path, soc(smmu(extra="dma-coherent;"), PLAIN_DEV, pcie()))
    assert affected_socs(fixed) == set()


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


# === SPEC 1.1: the target kernel, on both sides of each change ===============

def test_no_check_before_v5_19(tmp_path):
    """VFIO before e8ae0e140c05 asks nothing: a device behind a non-coherent
    SMMU, or behind an IOMMU without .capable, binds (with a note why)."""
    body = soc(smmu(), PLAIN_DEV, smmu('"rockchip,iommu"', label="rk", unit="6000000"),
               device("dev@2", "", "<&rk 1>"))
    for target in ("5.10", "5.18.19"):
        doc = sweep_dts(tmp_path, body, target=target)
        assert doc["ev"].rule is Rule.NO_CHECK
        for master in (DEV, "/soc/dev@2"):
            (r,) = by_master(doc)[master]
            assert (r["verdict"], r["target_note"]) == ("capable", codes.N_NO_CHECK)
    after = sweep_dts(tmp_path, body, target="5.19")
    assert after["ev"].rule is Rule.LEGACY_TRUE
    assert verdict(after, DEV) == "capable" and verdict(after, "/soc/dev@2") == "unsupported-iommu"
    assert [r["target_note"] for r in after["links"]] == [codes.N_NONE, codes.N_NONE]


def test_no_check_still_needs_an_iommu(tmp_path):
    body = soc(smmu(extra='status = "disabled";'), PLAIN_DEV,
               smmu('"vendor,mystery-iommu"', label="x", unit="6000000"),
               device("dev@2", "", "<&x 1>"))
    doc = sweep_dts(tmp_path, body, target="5.10")
    assert verdict(doc, DEV) == "no-iommu"
    assert verdict(doc, "/soc/dev@2") == "unsupported-iommu"      # no driver binds it


@pytest.mark.parametrize("target, expected", [
    ("6.0.19", "capable"), ("6.1", "broken"), ("6.1.1", "broken"), ("6.1.2", "broken"),
    ("6.1.6", "broken"), ("6.1.7", "rescued-by-device"), ("6.2-rc3", "broken"),
    ("6.2-rc4", "rescued-by-device"), ("6.2", "rescued-by-device"), ("7.2", "rescued-by-device"),
])
def test_arm_smmu_rule_by_target(tmp_path, target, expected):
    """legacy-true until 6.0, walk-only at 6.1.0 (df198b37e72c), walk-or-device
    from 6.1.7 (Debian's 6.1 changelog lists ac9c5e92dd15 under ChangeLog-6.1.7)
    and v6.2-rc4 (ac9c5e92dd15 in mainline)."""
    assert verdict(sweep_dts(tmp_path, soc(smmu(), COHERENT_DEV), target=target), DEV) == expected


@pytest.mark.parametrize("target, expected", [("6.0", "capable"), ("6.1", "broken")])
def test_arm_smmu_v3_rule_by_target(tmp_path, target, expected):
    doc = sweep_dts(tmp_path, soc(smmu('"arm,smmu-v3"'), COHERENT_DEV), target=target)
    assert verdict(doc, DEV) == expected


def test_explicit_rule_overrides_only_capable(tmp_path):
    """--rule changes arm-smmu's answer; the target still decides the rest
    (here: 6.1 gives a disabled PCI function node a driver)."""
    doc = sweep_dts(tmp_path, soc(smmu(), pcie()), target="6.1", rule="walk-or-device")
    m = by_master(doc)
    assert doc["ev"].rule is Rule.WALK_OR_DEVICE
    assert m[BRIDGE + "/ethernet@0,0"][0]["verdict"] == "rescued-by-device"
    # disabled, but a device in 6.1; coherent through the dma-coherent bridge
    assert m[BRIDGE + "/ethernet@0,1"][0]["verdict"] == "rescued-by-device"
    assert by_master(sweep_dts(tmp_path, soc(smmu(), pcie()), target="6.1"))[
        BRIDGE + "/ethernet@0,1"][0]["verdict"] == "broken-bridge-coherent"


@pytest.mark.parametrize("target, driver, expected", [
    ("6.4", "unknown", "unsupported-iommu"), ("6.5", "qcom-iommu", "capable"),
    ("5.10", "unknown", "unsupported-iommu"),
])
def test_qcom_msm_iommu_v2_by_target(tmp_path, target, driver, expected):
    """qcom_iommu binds "qcom,msm-iommu-v2" from 6.5; before, no driver does
    (msm_iommu binds only "qcom,apq8064-iommu")."""
    (r,) = sweep_dts(tmp_path, soc(smmu('"qcom,msm-iommu-v2"'), PLAIN_DEV), target=target)["links"]
    assert (r["driver"], r["verdict"]) == (driver, expected)


def test_driver_tables_by_target(tmp_path):
    """Under 5.10 (no check) a driver that exists binds and VFIO takes the
    device; Apple's DART driver does not exist yet."""
    body = soc(smmu('"rockchip,iommu"', label="rk", unit="4000000"),
               smmu('"apple,t8103-dart"', label="dart", unit="5000000"),
               device("dev@1", "", "<&rk 1>"), device("dev@2", "", "<&dart 2>"))
    doc = sweep_dts(tmp_path, body, target="5.10")
    assert verdict(doc, "/soc/dev@1") == "capable"
    assert verdict(doc, "/soc/dev@2") == "unsupported-iommu"
    assert by_master(doc)["/soc/dev@2"][0]["driver"] == "unknown"
    later = sweep_dts(tmp_path, body, target="6.1")
    assert by_master(later)["/soc/dev@2"][0]["driver"] == "no-capable"


@pytest.mark.parametrize("target, expected", [
    ("6.1", "broken-bridge-coherent"), ("6.11.11", "rescued-by-device"),
    ("6.12", "not-a-device"), ("7.2", "not-a-device"),
])
def test_disabled_pci_function_by_target(tmp_path, target, expected):
    """drivers/pci/bus.c: before 6.12 match_driver is always true, so a PCI
    function whose DT node is disabled still gets a driver (vfio-pci too);
    from 6.12 it gets none."""
    m = by_master(sweep_dts(tmp_path, soc(smmu(), pcie()), target=target))
    (r,) = m[BRIDGE + "/ethernet@0,1"]
    assert r["verdict"] == expected


def test_disabled_pci_function_listed_by_mmu_masters(tmp_path):
    body = soc(smmu(extra="mmu-masters = <&pci 0x3>;"),
               "\t\tpci: pcie@3 { device_type = \"pci\"; #stream-id-cells = <1>; reg = <0 3 0 1>;"
               " #address-cells = <3>; #size-cells = <2>;"
               ' fn@0,0 { reg = <0 0 0 0 0>; status = "disabled"; }; };\n')
    assert verdict(sweep_dts(tmp_path, body, target="6.1"), "/soc/pcie@3/fn@0,0") == "broken"
    assert verdict(sweep_dts(tmp_path, body, target="6.12"), "/soc/pcie@3/fn@0,0") == "not-a-device"


@pytest.mark.parametrize("target, kind", [
    ("5.10", None), ("6.1", "host1x-context"), ("7.2", "host1x-context")])
def test_host1x_map_reader_by_target(tmp_path, target, kind):
    host1x = ('\t\thost1x@13e00000 { compatible = "nvidia,tegra234-host1x";'
              " reg = <0 0x13e00000 0 0x10000>; iommu-map = <0 &smmu 0x30 1>; };\n")
    m = by_master(sweep_dts(tmp_path, soc(smmu(), host1x), target=target))
    assert [r["master_kind"] for r in m.get("/soc/host1x@13e00000", [])] == ([kind] if kind else [])


@pytest.mark.parametrize("target, read", [("6.1", False), ("6.12", True)])
def test_cdx_map_reader_by_target(tmp_path, target, read):
    cdx = ('\t\tcdx@4000000 { compatible = "xlnx,versal-net-cdx";'
           " reg = <0 0x4000000 0 0x1000>; iommu-map = <0 &smmu 0x100 0x100>; };\n")
    m = by_master(sweep_dts(tmp_path, soc(smmu(), cdx), target=target))
    assert ("/soc/cdx@4000000" in m) == read


@pytest.mark.parametrize("target, read", [("6.12", False), ("7.2", True)])
def test_gpcdma_map_reader_by_target(tmp_path, target, read):
    """tegra186-gpc-dma reads its iommu-map for its channels in 7.2; 6.12's
    takes the controller's own stream ID."""
    gpcdma = ('\t\tdma-controller@2600000 { compatible = "nvidia,tegra194-gpcdma";'
              " reg = <0 0x2600000 0 0x210000>; iommu-map = <1 &smmu 0x801 31>; };\n")
    m = by_master(sweep_dts(tmp_path, soc(smmu(), gpcdma), target=target))
    assert [r["master_kind"] for r in m.get("/soc/dma-controller@2600000", [])] == \
        (["gpcdma-channel"] if read else [])


@pytest.mark.parametrize("target, coherent", [("5.10", True), ("6.1", False)])
def test_dma_noncoherent_by_target(tmp_path, target, coherent):
    """5.10's of_dma_is_coherent() looks for dma-coherent only."""
    doc = sweep_dts(tmp_path, soc(smmu(extra="dma-noncoherent;"), PLAIN_DEV,
                                  bus_extra="\t\tdma-coherent;\n"), target=target)
    assert doc["links"][0]["provider_coherent"] is coherent


# --- of_map_id(): 4-cell entries up to 7.1, the target's #iommu-cells in 7.2 ---

HOST = """
		pcie@40000000 {{
			compatible = "test,pcie"; device_type = "pci";
			#address-cells = <3>; #size-cells = <2>;
			reg = <0 0x40000000 0 0x1000>;
			bus-range = <{bus} 0xff>;
			iommu-map = {map};
			fn@0,0 {{ reg = <{reg0} 0 0 0 0>; }};
			fn@0,1 {{ reg = <{reg1} 0 0 0 0>; }};
			fn@0,2 {{ reg = <{reg2} 0 0 0 0>; }};
		}};
"""
HOST_PATH = "/soc/pcie@40000000"
SMMU2 = smmu(extra="#iommu-cells = <2>;").replace("#iommu-cells = <1>;", "")


def host(map, bus=0):
    """A host bridge with functions at requester IDs bus<<8 | 0, 1, 2."""
    return HOST.format(map=map, bus=bus, reg0=hex(bus << 16), reg1=hex(bus << 16 | 0x100),
                       reg2=hex(bus << 16 | 0x200))


def functions(doc):
    """fn@0,N -> (verdict, attach, diag) of its one link."""
    m = by_master(doc)
    out = {}
    for n in range(3):
        (r,) = m[f"{HOST_PATH}/fn@0,{n}"]
        out[n] = (r["verdict"], r["attach"], r["diag"])
    return out


BROKEN_OK = ("broken", codes.ATTACHED, codes.D_NONE)


def test_five_cell_map_by_target(tmp_path):
    """A 2-cell SMMU's map as 7.2 trees write it: <id-base &smmu sid mask length>."""
    body = soc(SMMU2, host("<0 &smmu 0x1c00 0 1>, <1 &smmu 0x1c01 0 1>"))
    now = functions(sweep_dts(tmp_path, body, target="7.2"))
    assert now == {0: BROKEN_OK, 1: BROKEN_OK,
                   2: ("no-iommu", codes.A_UNCOVERED_ID, codes.D_NONE)}
    doc = sweep_dts(tmp_path, body, target="6.12")
    old = functions(doc)
    assert old == {n: ("no-iommu", codes.A_BAD_MAP, codes.D_MAP_NEEDS_TARGET_CELLS)
                   for n in range(3)}
    messages = {r["diagnostic"] for r in doc["links"]}
    assert messages == {"iommu-map: length 40 bytes is not a multiple of 16: Linux 6.12 cannot "
                        "read this map; 7.2 reads it with #iommu-cells = 2 of /soc/iommu@5000000"}


def test_five_cell_map_misread_before_7_2(tmp_path):
    """Four 5-cell entries are 80 bytes: 6.12 reads them as five 4-cell
    entries, wrongly, and says so."""
    body = soc(SMMU2, host("<0 &smmu 0x1c00 0 1>, <1 &smmu 0x1c01 0 1>, "
                           "<2 &smmu 0x1c02 0 1>, <3 &smmu 0x1c03 0 1>"))
    assert functions(sweep_dts(tmp_path, body, target="7.2")) == {n: BROKEN_OK for n in range(3)}
    doc = sweep_dts(tmp_path, body, target="6.12")
    assert {r["diag"] for r in doc["links"]} == {codes.D_MAP_MISREAD}
    assert doc["links"][0]["diagnostic"] == (
        "iommu-map: Linux 6.12 reads this map as 4-cell entries, but it is written for "
        "#iommu-cells = 2 of /soc/iommu@5000000, as 7.2 reads it")


def test_iommu_cells_absent_reads_one_cell(tmp_path):
    no_cells = smmu().replace("#iommu-cells = <1>;", "")
    body = soc(no_cells, host("<0 &smmu 0x100 2>"))
    assert functions(sweep_dts(tmp_path, body, target="7.2")) == \
        {0: BROKEN_OK, 1: BROKEN_OK, 2: ("no-iommu", codes.A_UNCOVERED_ID, codes.D_NONE)}


def test_four_cell_map_to_two_cell_smmu_fails_in_7_2(tmp_path):
    """A 6.12-style map of ranges aimed at a 2-cell SMMU: 7.2 reads a
    2-cell specifier and runs out of cells; the diagnostic names the
    kernels that read it."""
    body = soc(SMMU2, host("<0 &smmu 0x1c00 0x80>"))
    assert functions(sweep_dts(tmp_path, body, target="6.12")) == \
        {n: BROKEN_OK for n in range(3)}
    doc = sweep_dts(tmp_path, body, target="7.2")
    assert functions(doc) == {n: ("no-iommu", codes.A_BAD_MAP, codes.D_MAP_NEEDS_FOUR_CELLS)
                              for n in range(3)}
    assert doc["links"][0]["diagnostic"] == (
        "iommu-map: Linux 7.2 cannot read this map with #iommu-cells = 2 of /soc/iommu@5000000; "
        "kernels before 7.2 read it as 4-cell entries")


def test_one_cell_map_to_two_cell_smmu_workaround(tmp_path):
    """of_check_bad_map(): 4-cell entries of length 1, one phandle, aimed at
    a 2-cell SMMU are read as 1-cell; with one entry of another length they
    are not, and 7.2 reads a 5-cell first entry (taking the next id-base as
    its length) and then a phandle 0x101 that points nowhere."""
    good = soc(SMMU2, host("<0 &smmu 0x100 1>, <1 &smmu 0x101 1>"))
    assert functions(sweep_dts(tmp_path, good, target="7.2")) == \
        {0: BROKEN_OK, 1: BROKEN_OK, 2: ("no-iommu", codes.A_UNCOVERED_ID, codes.D_NONE)}
    bad = soc(SMMU2, host("<0 &smmu 0x100 1>, <1 &smmu 0x101 2>"))
    doc = sweep_dts(tmp_path, bad, target="7.2")
    got = functions(doc)
    assert got[0] == ("broken", codes.ATTACHED, codes.D_MAP_NEEDS_FOUR_CELLS)
    assert got[1][:2] == got[2][:2] == ("no-iommu", codes.A_NO_TARGET)
    assert functions(sweep_dts(tmp_path, bad, target="6.12")) == \
        {n: BROKEN_OK for n in range(3)}


def test_multi_id_range_with_wide_specifier_refused_in_7_2(tmp_path):
    body = soc(SMMU2, host("<0 &smmu 0x1c00 0 2>, <2 &smmu 0x1c02 0 1>"))
    doc = sweep_dts(tmp_path, body, target="7.2")
    assert functions(doc) == {0: ("no-iommu", codes.A_BAD_MAP, codes.D_MAP_WIDE_RANGE),
                              1: ("no-iommu", codes.A_BAD_MAP, codes.D_MAP_WIDE_RANGE),
                              2: BROKEN_OK}
    assert by_master(doc)[HOST_PATH + "/fn@0,0"][0]["diagnostic"] == (
        "iommu-map: an entry maps 2 IDs to a 2-cell specifier of /soc/iommu@5000000: "
        "Linux 7.2 refuses it (-EINVAL)")
    # The discovered devices: the SMMU still translates the length-1 entry.
    (disc,) = by_master(doc)[HOST_PATH]
    assert disc["verdict"] == "broken"
    only_wide = sweep_dts(tmp_path, soc(SMMU2, host("<0 &smmu 0x1c00 0 0x100>")), target="7.2")
    (disc,) = by_master(only_wide)[HOST_PATH]
    assert (disc["verdict"], disc["diag"]) == ("no-iommu", codes.D_MAP_WIDE_RANGE)


def test_map_range_past_0xffffffff(tmp_path):
    """Up to 7.1 `id_base + id_len` is summed in u32: <0x100 &smmu 0x100
    0xffffff00> ends at 0 and covers nothing.  7.2 compares `id - id_base`
    with the length: it covers 0x100 and up."""
    body = soc(smmu(), host("<0x100 &smmu 0x100 0xffffff00>", bus=1))
    for target in ("5.10", "6.1", "6.12"):
        got = functions(sweep_dts(tmp_path, body, target=target))
        assert {a for _, a, _ in got.values()} == {codes.A_UNCOVERED_ID}, target
    assert functions(sweep_dts(tmp_path, body, target="7.2")) == {n: BROKEN_OK for n in range(3)}
    # One below the wrap is an ordinary range in every version.
    below = soc(smmu(), host("<0x100 &smmu 0x100 0xfffffeff>", bus=1))
    for target in ("6.12", "7.2"):
        assert functions(sweep_dts(tmp_path, below, target=target)) == \
            {n: BROKEN_OK for n in range(3)}


def test_phandle_to_nowhere_before_the_match(tmp_path):
    """6.12 resolves a phandle only for the entry that matches; 7.2 reads
    every entry up to the match, so a bad one on the way fails the ID."""
    body = soc(smmu(), host("<0 &smmu 0 1>, <1 0x999 1 1>, <2 &smmu 2 1>"))
    old = functions(sweep_dts(tmp_path, body, target="6.12"))
    assert old[0] == BROKEN_OK and old[2] == BROKEN_OK
    assert old[1] == ("no-iommu", codes.A_NO_TARGET, codes.D_PHANDLE_NOWHERE)
    new = functions(sweep_dts(tmp_path, body, target="7.2"))
    assert new[0] == BROKEN_OK
    assert new[1] == new[2] == ("no-iommu", codes.A_NO_TARGET, codes.D_PHANDLE_NOWHERE)


def test_empty_map_by_target(tmp_path):
    """iommu-map = <>: a bad length up to 7.1, no entry (no IOMMU) in 7.2."""
    body = soc(smmu(), host("[]"))
    old = functions(sweep_dts(tmp_path, body, target="6.12"))
    assert old == {n: ("no-iommu", codes.A_BAD_MAP, codes.D_MAP_LENGTH) for n in range(3)}
    new = functions(sweep_dts(tmp_path, body, target="7.2"))
    assert new == {n: ("no-iommu", codes.A_UNCOVERED_ID, codes.D_NONE) for n in range(3)}


# --- problems of a DTB: duplicate phandles, link explosions ---------------------

def test_duplicate_phandles(tmp_path):
    """dtc refuses them (-f forces the DTB out); the kernel resolves a
    phandle to the first node that has it."""
    body = soc(smmu(extra="phandle = <0x42>;", label="first", unit="4000000"),
               smmu(extra="phandle = <0x42>; dma-coherent;", label="second", unit="5000000"),
               device("dev@1", "", "<0x42 1>"))
    doc = sweep_dts(tmp_path, body, force=True)
    (r,) = doc["links"]
    assert (r["provider_path"], r["verdict"]) == ("/soc/iommu@4000000", "broken")
    (p,) = doc["problems"]
    assert (p["code"], p["node"], p["other"], p["arg"]) == \
        (codes.P_DUPLICATE_PHANDLE, "/soc/iommu@5000000", "/soc/iommu@4000000", 0x42)
    assert p["message"] == ("phandle 0x42 of /soc/iommu@5000000 is also the phandle of "
                            "/soc/iommu@4000000: every reference resolves to /soc/iommu@4000000")


def explosion(n_targets, n_functions):
    """A host bridge whose placeholder map names n_targets SMMUs, with
    n_functions function nodes: one link per (function, SMMU)."""
    smmus = "".join(f"\t\ts{i}: iommu@{i:x} {{ compatible = \"arm,mmu-500\"; reg = <0 {i:#x} 0 1>;"
                    f" #global-interrupts = <1>; #iommu-cells = <1>; }};\n"
                    for i in range(n_targets))
    entries = ", ".join(f"<0 &s{i} 0 0>" for i in range(n_targets))
    fns = "".join(f"\t\t\tfn@{i >> 3:x},{i & 7} {{ reg = <{i << 8:#x} 0 0 0 0>; }};\n"
                  for i in range(n_functions))
    return soc(smmus, "\t\tpcie@f0000000 { device_type = \"pci\"; #address-cells = <3>;"
               " #size-cells = <2>; reg = <0 0xf0000000 0 0x1000>;"
               f" iommu-map = {entries};\n{fns}\t\t}};\n")


def test_link_explosion_is_bounded(tmp_path):
    """Above MAX_LINKS_PER_DTB links a DTB keeps none and is reported with
    its count; the other DTBs of the sweep are judged as usual."""
    from corpus.flat import flatten
    from kernels.evaluate import evaluate
    from kernels.target import TargetKernel
    big = compile_dts(tmp_path, "big", explosion(400, 256))
    small = compile_dts(tmp_path, "small", soc(smmu(), PLAIN_DEV))
    flat = flatten([big, small], tmp_path, cache=False)
    ev = evaluate(flat, TargetKernel.parse("6.12"))
    count = 400 * 256 + 400          # every function and the discovered devices, per SMMU
    assert count > links.MAX_LINKS_PER_DTB
    assert ev.dtb_links.tolist() == [count, 1]
    assert ev.links.shape[0] == 1 and ev.links[0]["dtb"] == 1
    assert ev.problems.tolist() == [[0, -1, codes.P_TOO_MANY_LINKS, count, -1]]
    # Just below the limit the links are kept.
    ok = evaluate_dtb(compile_dts(tmp_path, "ok", explosion(380, 256)), "6.12")
    assert ok.links.shape[0] == 380 * 257 and ok.problems.shape[0] == 0
