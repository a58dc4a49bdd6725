"""Each decision the kernel makes for IOMMU_CAP_CACHE_COHERENCY, one DTS
snippet a case, with the verdict read from the kernel's C source (Debian's
linux-source-6.1 6.1.192, -6.12 6.12.118 and sid's -7.2 7.2.13; file and
function named in each section), not from kernels/.

Sections: of_dma_is_coherent() (drivers/of/address.c), availability
(of_device_is_available, of_platform_populate), the probe conditions of
each IOMMU driver, the legacy `mmu-masters` binding (arm-smmu.c), of_map_id()
(drivers/of/base.c) and the kernel versions where a decision changes.

Snippets are judged through kernels.evaluate (snippets.sweep_dts) under
snippets.DEFAULT_TARGET (6.12) unless a case names a target.  The master is
a non-coherent device behind an arm-smmu unless said otherwise, so that
under walk-or-device the verdict is "capable" exactly when the SMMU is
coherent and "broken" when it is not.
"""
import pytest

from kernels import codes
from snippets import by_master, device, smmu, soc, sweep_dts, verdict

DEV = "/soc/dev@1"
# Says dma-noncoherent itself, so that no ancestor makes it coherent.
PLAIN_DEV = device("dev@1", "dma-noncoherent;")
SMMU_PATH = "/soc/iommu@5000000"
COH, NONCOH = "dma-coherent;", "dma-noncoherent;"


def links_of(doc, master):
    return by_master(doc).get(master, [])


def provider_and_verdict(doc, master):
    (r,) = by_master(doc)[master]
    return r["provider_path"], r["verdict"]


# === of_dma_is_coherent() =======================================================
# drivers/of/address.c: of_dma_is_coherent() (6.1 :1098, 6.12 :1005, 7.2
# :1017) walks from the node itself through of_get_next_dma_parent() until
# of_get_parent() of the root gives NULL; the first node with
# "dma-coherent" answers true, with "dma-noncoherent" false; past the root
# it answers dma_default_coherent (6.12, 7.2; IS_ENABLED(
# CONFIG_OF_DMA_DEFAULT_COHERENT) in 6.1), false on arm64: arch/arm64/Kconfig
# selects neither ARCH_DMA_DEFAULT_COHERENT nor OF_DMA_DEFAULT_COHERENT.
# arm_smmu_device_dt_probe() sets ARM_SMMU_FEAT_COHERENT_WALK from it
# (arm-smmu.c 6.12 :2086), and arm_smmu_capable() answers with that.

@pytest.mark.parametrize("root, bus, node, expected", [
    ("", "", "", "broken"),              # nobody says: dma_default_coherent, false on arm64
    ("", "", COH, "capable"),
    ("", COH, "", "capable"),            # an ancestor's dma-coherent counts
    ("", COH, NONCOH, "broken"),         # the node's own answer comes first
    ("", NONCOH, COH, "capable"),
    (COH, "", "", "capable"),            # the root node itself is on the walk
    (COH, NONCOH, "", "broken"),         # the nearest node that says decides
    (NONCOH, COH, "", "capable"),
    (NONCOH, "", "", "broken"),
    (COH, "", NONCOH, "broken"),
    (COH, "", COH, "capable"),
])
def test_walk_from_the_node_to_the_root(tmp_path, root, bus, node, expected):
    body = f"\t{root}\n" + soc(smmu(extra=node), PLAIN_DEV, bus_extra=f"\t\t{bus}\n")
    assert verdict(sweep_dts(tmp_path, body), DEV) == expected


@pytest.mark.parametrize("where, expected", [
    ("soc", "capable"), ("outer", "capable"), ("inner", "capable"), ("root", "capable"),
    ("none", "broken"),
])
def test_walk_through_nested_buses(tmp_path, where, expected):
    """An SMMU two buses below `soc`: dma-coherent on any node between it and
    the root (the root included) decides."""
    says = {w: (COH if w == where else "") for w in ("soc", "outer", "inner", "root")}
    nested = (f"\t\touter@1 {{ compatible = \"simple-bus\"; #address-cells = <2>;"
              f" #size-cells = <2>; ranges; {says['outer']}\n"
              f"\t\t\tinner@2 {{ compatible = \"simple-bus\"; #address-cells = <2>;"
              f" #size-cells = <2>; ranges; {says['inner']}\n"
              + smmu() + "\t\t\t};\n\t\t};\n")
    body = f"\t{says['root']}\n" + soc(nested, device("dev@1", "", "<&smmu 1>"),
                                       bus_extra=f"\t\t{says['soc']}\n")
    doc = sweep_dts(tmp_path, body)
    (r,) = doc["links"]
    assert (r["provider_path"], r["verdict"]) == \
        ("/soc/outer@1/inner@2/iommu@5000000", expected)


def test_the_roots_dma_coherent_reaches_every_node(tmp_path):
    """The walk ends only when of_get_parent() returns NULL, past the root:
    a root with dma-coherent makes the SMMU and the master coherent."""
    body = "\tdma-coherent;\n" + soc(smmu(), device("dev@1", ""))
    doc = sweep_dts(tmp_path, body)
    (r,) = doc["links"]
    assert (r["provider_coherent"], r["master_dma_attr"], r["verdict"]) == \
        (True, "coherent", "capable")
    # An SMMU written directly under the root, no bus between.
    top = ("\tdma-coherent;\n" + smmu()
           + "\tdev@1 { compatible = \"test,dev\"; iommus = <&smmu 1>; };\n")
    assert verdict(sweep_dts(tmp_path, top), "/dev@1") == "capable"


# __of_get_dma_parent() (drivers/of/address.c 6.12 :602, same in 6.1 and
# 7.2): when "interconnect-names" holds "dma-mem", the DMA parent is the
# node of that entry of "interconnects" (of_parse_phandle_with_args with
# "#interconnect-cells"), in place of the tree parent; when that entry does
# not parse, the tree parent.  Where the target is written in the tree does
# not matter.

def noc(label="noc", unit="1", says="", cells=1, extra=""):
    return (f'\t\t{label}: interconnect@{unit} {{ compatible = "test,noc";'
            f" #interconnect-cells = <{cells}>; {says} {extra} }};\n")


def via(*entries, names):
    """interconnects/interconnect-names of a node."""
    return (f"interconnects = {', '.join(entries)}; interconnect-names = "
            + ", ".join(f'"{n}"' for n in names) + ";")


DMA_MEM = via("<&noc 7>", names=["dma-mem"])


@pytest.mark.parametrize("order", ["noc-first", "smmu-first"])
@pytest.mark.parametrize("noc_says, soc_says, expected", [
    (COH, "", "capable"),
    (NONCOH, COH, "broken"),             # the interconnect's dma-noncoherent ends the walk
    ("", COH, "capable"),                # the interconnect's own parent is soc
    ("", "", "broken"),
])
def test_dma_mem_target_before_or_after_the_node(tmp_path, order, noc_says, soc_says, expected):
    nodes = [noc(says=noc_says), smmu(extra=DMA_MEM)]
    if order == "smmu-first":
        nodes.reverse()
    doc = sweep_dts(tmp_path, soc(*nodes, PLAIN_DEV, bus_extra=f"\t\t{soc_says}\n"))
    assert verdict(doc, DEV) == expected


@pytest.mark.parametrize("order", ["noc-bus-first", "soc-first"])
@pytest.mark.parametrize("noc_says, noc_bus_says, soc_says, expected", [
    ("", "", COH, "broken"),             # the SMMU's own tree parent is no longer on the walk
    ("", COH, "", "capable"),
    (NONCOH, COH, COH, "broken"),
    ("", NONCOH, COH, "broken"),
    (COH, NONCOH, "", "capable"),
])
def test_dma_mem_target_on_another_branch(tmp_path, order, noc_says, noc_bus_says, soc_says,
                                         expected):
    """The DMA parent is on another bus than the SMMU: the walk goes on from
    there (interconnect, its bus, the root), never through the SMMU's soc."""
    noc_bus = (f"\tnoc-bus {{ compatible = \"simple-bus\"; #address-cells = <1>;"
               f" #size-cells = <0>; {noc_bus_says}\n" + noc(says=noc_says) + "\t};\n")
    soc_bus = soc(smmu(extra=DMA_MEM), PLAIN_DEV, bus_extra=f"\t\t{soc_says}\n")
    body = noc_bus + soc_bus if order == "noc-bus-first" else soc_bus + noc_bus
    assert verdict(sweep_dts(tmp_path, body), DEV) == expected


@pytest.mark.parametrize("order", ["forward", "backward"])
def test_dma_mem_chain_of_interconnects(tmp_path, order):
    """A DMA parent that names its own dma-mem target: the walk follows it
    (of_get_next_dma_parent() at every step), and the last one says
    dma-noncoherent while every tree parent is dma-coherent."""
    first = noc("noc1", "1", extra=via("<&noc2 1>", names=["dma-mem"]))
    second = noc("noc2", "2", says=NONCOH)
    nodes = [smmu(extra=via("<&noc1 3>", names=["dma-mem"])), first, second]
    if order == "backward":
        nodes.reverse()
    body = "\tdma-coherent;\n" + soc(*nodes, PLAIN_DEV, bus_extra="\t\tdma-coherent;\n")
    assert verdict(sweep_dts(tmp_path, body), DEV) == "broken"


@pytest.mark.parametrize("interconnects, names, expected", [
    # the entry at the index of "dma-mem" among the names
    (["<&coh 1>", "<&nc 2>"], ["cpu-cfg", "dma-mem"], "broken"),
    (["<&coh 1>", "<&nc 2>"], ["dma-mem", "cpu-cfg"], "capable"),
    # no "dma-mem" name: the tree parent (soc, dma-coherent)
    (["<&nc 1>"], ["cpu-cfg"], "capable"),
    # the named entry does not parse: the tree parent
    (["<&nc>"], ["dma-mem"], "capable"),
    (["<0>"], ["dma-mem"], "capable"),               # an empty (phandle 0) entry
    (["<&nc 1>", "<0>"], ["cpu-cfg", "dma-mem"], "capable"),
    (["<0x999 1>"], ["dma-mem"], "capable"),          # a phandle to nowhere
    (["<&nocells 1>"], ["dma-mem"], "capable"),       # a target without #interconnect-cells
    # an empty entry before the named one still counts as an entry
    (["<0>", "<&nc 2>"], ["cpu-cfg", "dma-mem"], "broken"),
])
def test_which_interconnects_entry(tmp_path, interconnects, names, expected):
    nodes = [noc("coh", "1", says=COH), noc("nc", "2", says=NONCOH),
             '\t\tnocells: interconnect@3 { compatible = "test,noc"; dma-noncoherent; };\n',
             smmu(extra=via(*interconnects, names=names))]
    doc = sweep_dts(tmp_path, soc(*nodes, PLAIN_DEV, bus_extra="\t\tdma-coherent;\n"))
    assert verdict(doc, DEV) == expected


@pytest.mark.parametrize("entries, names, expected", [
    # no "dma-mem" among the names: the tree parent (dma-coherent), not an entry
    (["<&nc 1>", "<&nc 2>"], ["cpu-cfg", "other"], "capable"),
    # of_property_match_string() compares with strcmp: "DMA-MEM" is another name
    (["<&nc 1>", "<&nc 2>"], ["DMA-MEM", "other"], "capable"),
    (["<&coh 1>", "<&coh 2>", "<&nc 3>"], ["cpu-cfg", "cpu-mem", "dma-mem"], "broken"),
])
def test_interconnect_names_matched_exactly(tmp_path, entries, names, expected):
    nodes = [noc("coh", "1", says=COH), noc("nc", "2", says=NONCOH),
             smmu(extra=via(*entries, names=names))]
    doc = sweep_dts(tmp_path, soc(*nodes, PLAIN_DEV, bus_extra="\t\tdma-coherent;\n"))
    assert verdict(doc, DEV) == expected


def test_the_root_on_a_dma_mem_walk(tmp_path):
    """The root's own dma-mem names its DMA parent too; and a node's dma-mem
    may name the root."""
    from snippets import HEADER, compile_dts, document, evaluate_dtb
    props = ['\tinterconnects = <&noc 1>;\n', '\tinterconnect-names = "dma-mem";\n']
    for first in props, props[::-1]:        # either written first of all properties
        header = HEADER.replace("/ {\n", "/ {\n" + "".join(first))
        dtb = compile_dts(tmp_path, "root", soc(noc(says=COH), smmu(), PLAIN_DEV), header)
        assert verdict(document(evaluate_dtb(dtb)), DEV) == "capable"
    to_root = ("\t#interconnect-cells = <0>;\n\tdma-coherent;\n"
               + soc(smmu(extra=via("<&{/}>", names=["dma-mem"])), PLAIN_DEV,
                     bus_extra="\t\tdma-noncoherent;\n"))
    assert verdict(sweep_dts(tmp_path, to_root), DEV) == "capable"


def test_a_dma_mem_loop_through_the_root(tmp_path):
    """of_dma_is_coherent() would never return: judged not coherent, the loop
    reported once."""
    body = ('\tinterconnects = <&noc 1>;\n\tinterconnect-names = "dma-mem";\n'
            "\t#interconnect-cells = <0>;\n"
            + soc(noc(extra=via("<&{/}>", names=["dma-mem"])), smmu(), PLAIN_DEV))
    doc = sweep_dts(tmp_path, body)
    assert verdict(doc, DEV) == "broken"
    (p,) = doc["problems"]
    assert p["message"] == ("interconnects: the DMA parents of /soc/interconnect@1 loop back to "
                            "/ (dma-mem): of_dma_is_coherent() would never return; judged not "
                            "coherent")


def test_dma_mem_with_wider_interconnect_cells(tmp_path):
    """Arguments are skipped by each target's #interconnect-cells: with two
    cells each, the second entry is the one at cell 3."""
    nodes = [noc("coh", "1", says=COH, cells=2), noc("nc", "2", says=NONCOH, cells=2),
             smmu(extra=via("<&coh 1 2>", "<&nc 3 4>", names=["cpu-cfg", "dma-mem"]))]
    assert verdict(sweep_dts(tmp_path, soc(*nodes, PLAIN_DEV)), DEV) == "broken"
    nodes[2] = smmu(extra=via("<&nc 1 2>", "<&coh 3 4>", names=["cpu-cfg", "dma-mem"]))
    assert verdict(sweep_dts(tmp_path, soc(*nodes, PLAIN_DEV)), DEV) == "capable"


@pytest.mark.parametrize("order", ["noc-first", "dev-first"])
def test_master_coherency_through_dma_mem(tmp_path, order):
    """device_get_dma_attr() of a platform device is of_dma_is_coherent() of
    its node (drivers/of/device.c of_dma_configure_id): its dma-mem target
    decides, and arm_smmu_capable() (6.12 arm-smmu.c :1330) then accepts a
    coherent device behind a non-coherent SMMU."""
    dev = device("dev@1", via("<&noc 1>", names=["dma-mem"]))
    nodes = [noc(says=COH), dev] if order == "noc-first" else [dev, noc(says=COH)]
    doc = sweep_dts(tmp_path, soc(smmu(), *nodes))
    (r,) = doc["links"]
    assert (r["master_dma_attr"], r["verdict"]) == ("coherent", "rescued-by-device")
    nodes = [noc(says=NONCOH), dev] if order == "noc-first" else [dev, noc(says=NONCOH)]
    doc = sweep_dts(tmp_path, soc(smmu(), *nodes, bus_extra="\t\tdma-coherent;\n"))
    (r,) = [x for x in doc["links"] if x["master_path"] == DEV]
    assert (r["provider_coherent"], r["master_dma_attr"], r["verdict"]) == \
        (True, "non-coherent", "capable")


def test_one_interconnect_shared_by_smmu_and_master(tmp_path):
    """Two nodes whose walks meet at one DMA parent get its answer, whichever
    is written first."""
    for nodes in ([smmu(extra=DMA_MEM), device("dev@1", DMA_MEM), noc(says=NONCOH)],
                  [device("dev@1", DMA_MEM), noc(says=NONCOH), smmu(extra=DMA_MEM)]):
        doc = sweep_dts(tmp_path, soc(*nodes, bus_extra="\t\tdma-coherent;\n"))
        (r,) = doc["links"]
        assert (r["provider_coherent"], r["master_dma_attr"], r["verdict"]) == \
            (False, "non-coherent", "broken")


# === availability ===============================================================
# __of_device_is_available() (drivers/of/base.c): "status" absent, "okay" or
# "ok" (strcmp, so up to the first NUL).  of_platform_populate() creates
# devices from the root's children down and skips a disabled node with its
# whole subtree (of_platform_bus_create: of_device_is_available), so a node
# under a disabled ancestor is never a device; the root's own status is
# never read.  An IOMMU that is no device translates nothing:
# of_iommu_xlate() (drivers/iommu/of_iommu.c) fails with -ENODEV when the
# IOMMU node is not available, and a device that is not created probes no
# driver.

def nest(where, status, inner):
    """`inner` two buses below soc, `status` on the node itself ("node"),
    its parent bus ("parent") or its grandparent bus ("grandparent")."""
    st = f'status = "{status}";'
    node = inner.replace("reg = <0 0x5000000 0 0x10000>;",
                         "reg = <0 0x5000000 0 0x10000>; " + (st if where == "node" else ""))
    return (f"\t\tgp@1 {{ compatible = \"simple-bus\"; #address-cells = <2>; #size-cells = <2>;"
            f" ranges; {st if where == 'grandparent' else ''}\n"
            f"\t\t\tp@2 {{ compatible = \"simple-bus\"; #address-cells = <2>; #size-cells = <2>;"
            f" ranges; {st if where == 'parent' else ''}\n" + node + "\t\t\t};\n\t\t};\n")


@pytest.mark.parametrize("where", ["node", "parent", "grandparent"])
@pytest.mark.parametrize("compatible, enabled", [
    ('"arm,mmu-500"', "broken"), ('"arm,smmu-v3"', "broken"),
    ('"qcom,msm-iommu-v1"', "capable"), ('"rockchip,iommu"', "unsupported-iommu"),
])
def test_disabled_provider_or_ancestor(tmp_path, where, compatible, enabled):
    body = soc(nest(where, "disabled", smmu(compatible)), PLAIN_DEV)
    (r,) = sweep_dts(tmp_path, body)["links"]
    assert r["verdict"] == "no-iommu"
    assert r["attach"] in (codes.A_PROVIDER_DISABLED, codes.A_NOT_PROBED)
    body = soc(nest(where, "okay", smmu(compatible)), PLAIN_DEV)
    assert verdict(sweep_dts(tmp_path, body), DEV) == enabled


@pytest.mark.parametrize("status, expected", [
    ('"okay"', "broken"), ('"ok"', "broken"), ('"okay", "extra"', "broken"),
    ('"disabled"', "no-iommu"), ('"fail"', "no-iommu"), ('"fail-sss"', "no-iommu"),
    ('"okay "', "no-iommu"), ('"OKAY"', "no-iommu"), ('"okayish"', "no-iommu"), ('""', "no-iommu"),
])
def test_status_values(tmp_path, status, expected):
    body = soc(smmu(extra=f"status = {status};"), PLAIN_DEV)
    assert verdict(sweep_dts(tmp_path, body), DEV) == expected


@pytest.mark.parametrize("where", ["parent", "grandparent"])
def test_master_under_a_disabled_ancestor_is_no_device(tmp_path, where):
    inner = device("dev@1", "").replace('compatible = "test,dev";',
                                        'compatible = "test,dev"; reg = <0 0x5000000 0 0x10000>;')
    doc = sweep_dts(tmp_path, soc(smmu(unit="6000000"), nest(where, "disabled", inner)))
    (r,) = doc["links"]
    assert (r["master_path"], r["verdict"]) == ("/soc/gp@1/p@2/dev@1", "not-a-device")


@pytest.mark.parametrize("root_status", ['"disabled"', '"fail"'])
def test_the_roots_status_is_never_read(tmp_path, root_status):
    top = (f"\tstatus = {root_status};\n" + smmu()
           + "\tdev@1 { compatible = \"test,dev\"; iommus = <&smmu 1>; };\n")
    assert verdict(sweep_dts(tmp_path, top), "/dev@1") == "broken"


# === probe conditions ===========================================================
# arm-smmu: arm_smmu_device_dt_probe() (arm-smmu.c 6.1 :1982, 6.12 :2056,
# 7.2 :2037) fails with -ENODEV when of_property_read_u32("#global-interrupts")
# fails: absent, or shorter than a cell; any value, 0 included, passes.
# It never reads #iommu-cells.

@pytest.mark.parametrize("global_interrupts, expected", [
    (None, "no-iommu"), ("<0>", "broken"), ("<1>", "broken"), ("<9>", "broken"),
    ("[00 01]", "no-iommu"),               # 2 bytes: of_property_read_u32 gives -EOVERFLOW
    ("<0 1>", "broken"),                   # the first cell is read
])
def test_arm_smmu_global_interrupts(tmp_path, global_interrupts, expected):
    node = smmu().replace("#global-interrupts = <1>;", "" if global_interrupts is None
                          else f"#global-interrupts = {global_interrupts};")
    doc = sweep_dts(tmp_path, soc(node, PLAIN_DEV))
    (r,) = doc["links"]
    assert r["verdict"] == expected
    if expected == "no-iommu":
        assert r["attach"] == codes.A_NOT_PROBED
        assert doc["ev"].probe_state[doc["ev"].links[0]["provider"]] == codes.NO_GLOBAL_INTERRUPTS


@pytest.mark.parametrize("compatible, expected", [
    ('"arm,smmu-v3"', "broken"), ('"qcom,msm-iommu-v1"', "capable"),
])
def test_global_interrupts_is_arm_smmus_alone(tmp_path, compatible, expected):
    """arm-smmu-v3 and qcom_iommu never read #global-interrupts."""
    node = smmu(compatible).replace("#global-interrupts = <1>;", "")
    assert verdict(sweep_dts(tmp_path, soc(node, PLAIN_DEV)), DEV) == expected


BRIDGE = """
		pcie@40000000 {{
			compatible = "test,pcie"; device_type = "pci";
			#address-cells = <3>; #size-cells = <2>;
			reg = <0 0x40000000 0 0x1000>;
			iommu-map = {map};
			{extra}
			fn@0,0 {{ reg = <0x000 0 0 0 0>; }};
			fn@0,1 {{ reg = <0x100 0 0 0 0>; }};
			fn@0,2 {{ reg = <0x200 0 0 0 0>; }};
		}};
"""
BRIDGE_PATH = "/soc/pcie@40000000"


def bridge(map, extra=""):
    """A host bridge with function nodes at requester IDs 0, 1 and 2."""
    return BRIDGE.format(map=map, extra=extra)


def fn(doc, n):
    """(provider, verdict) of function fn@0,n."""
    return provider_and_verdict(doc, f"{BRIDGE_PATH}/fn@0,{n}")


# arm-smmu-v3: arm_smmu_device_dt_probe() (arm-smmu-v3.c 6.1 :3774, 7.2
# :5313) starts from -EINVAL and succeeds only when #iommu-cells reads as 1.
# arm-smmu and qcom_iommu probe whatever #iommu-cells says.  A 4-cell
# iommu-map (6.12) reaches the provider without reading its #iommu-cells.
@pytest.mark.parametrize("compatible, cells, expected", [
    ('"arm,smmu-v3"', None, "no-iommu"), ('"arm,smmu-v3"', "<0>", "no-iommu"),
    ('"arm,smmu-v3"', "<1>", "broken"), ('"arm,smmu-v3"', "<2>", "no-iommu"),
    ('"arm,smmu-v3"', "[00 01]", "no-iommu"),
    ('"arm,mmu-500"', None, "broken"), ('"arm,mmu-500"', "<0>", "broken"),
    ('"arm,mmu-500"', "<2>", "broken"),
    ('"qcom,msm-iommu-v1"', None, "capable"), ('"qcom,msm-iommu-v1"', "<0>", "capable"),
])
def test_iommu_cells_per_driver(tmp_path, compatible, cells, expected):
    node = smmu(compatible).replace("#iommu-cells = <1>;", "" if cells is None
                                    else f"#iommu-cells = {cells};")
    doc = sweep_dts(tmp_path, soc(node, bridge("<0 &smmu 0x100 3>")), target="6.12")
    for n in range(3):
        assert fn(doc, n) == (SMMU_PATH, expected)
    if expected == "no-iommu":
        assert {r["attach"] for r in doc["links"]} == {codes.A_NOT_PROBED}


@pytest.mark.parametrize("compatible, expected", [
    ('"arm,smmu-v3"', "no-iommu"), ('"arm,mmu-500"', "broken"),
])
def test_zero_iommu_cells_through_iommus(tmp_path, compatible, expected):
    """`iommus = <&smmu>` parses with #iommu-cells = <0>; the v3 SMMU did not
    probe, arm-smmu did (arm_smmu_of_xlate takes no argument as stream 0)."""
    node = smmu(compatible).replace("#iommu-cells = <1>;", "#iommu-cells = <0>;")
    doc = sweep_dts(tmp_path, soc(node, device("dev@1", "", "<&smmu>")))
    (r,) = doc["links"]
    assert (r["provider_path"], r["verdict"]) == (SMMU_PATH, expected)


# === the legacy mmu-masters binding ==============================================
# arm-smmu.c (6.12): arm_smmu_device_dt_probe() :2072: the first arm-smmu
# that gets past #global-interrupts fixes the style (using_legacy_binding or
# using_generic_binding, for the whole system); one of the other style fails
# "not probing due to mismatched DT properties".  "mmu-masters" counts by
# of_find_property(), so an empty one too.  arm_smmu_probe_device() :1427:
# on a legacy system every device goes through
# arm_smmu_register_legacy_master(), which finds the first probed SMMU
# (driver_for_each_device, in probe order) whose mmu-masters lists it: an
# `iommus` device listed nowhere gets no IOMMU, and the SMMU is registered
# without a fwnode (iommu_device_register(..., NULL) :2253), so of_iommu_xlate
# finds no driver for it.  Without CONFIG_ARM_SMMU_LEGACY_DT_BINDINGS
# (:110) the legacy master finds none, but the style is fixed the same.

LDEV = '\t\tldev: ldev@2 { compatible = "test,dev"; #stream-id-cells = <1>; };\n'
LDEV_PATH = "/soc/ldev@2"


def legacy_smmu(label, unit, extra=""):
    return smmu(extra="mmu-masters = <&ldev 0x1>; " + extra, label=label, unit=unit)


@pytest.mark.parametrize("legacy_dt_bindings", [True, False])
def test_iommus_device_on_a_legacy_system(tmp_path, legacy_dt_bindings):
    body = soc(legacy_smmu("smmu", "5000000"), LDEV, PLAIN_DEV)
    doc = sweep_dts(tmp_path, body, legacy_dt_bindings=legacy_dt_bindings)
    (r,) = links_of(doc, DEV)
    assert (r["provider_path"], r["verdict"], r["attach"]) == \
        (SMMU_PATH, "no-iommu", codes.A_LEGACY_SYSTEM)
    (lr,) = links_of(doc, LDEV_PATH)
    assert lr["verdict"] == ("broken" if legacy_dt_bindings else "no-iommu")


def test_iommus_to_another_driver_on_a_legacy_system(tmp_path):
    """The legacy style is arm-smmu's: an arm-smmu-v3 or qcom_iommu beside it
    translates its `iommus` devices."""
    body = soc(legacy_smmu("smmu", "5000000"), LDEV,
               smmu('"arm,smmu-v3"', label="v3", unit="6000000"),
               smmu('"qcom,msm-iommu-v1"', label="qc", unit="7000000"),
               device("dev@1", "", "<&v3 1>"), device("dev@3", "", "<&qc 1>"))
    doc = sweep_dts(tmp_path, body)
    assert provider_and_verdict(doc, DEV) == ("/soc/iommu@6000000", "broken")
    assert provider_and_verdict(doc, "/soc/dev@3") == ("/soc/iommu@7000000", "capable")


@pytest.mark.parametrize("first_extra, expected", [
    ("", ("/soc/iommu@4000000", "broken")),                   # the first SMMU lists it
    (COH, ("/soc/iommu@4000000", "capable")),
    ('status = "disabled";', ("/soc/iommu@5000000", "capable")),   # not probed: the next
])
def test_two_smmus_list_one_master(tmp_path, first_extra, expected):
    body = soc(legacy_smmu("a", "4000000", first_extra), legacy_smmu("b", "5000000", COH), LDEV)
    doc = sweep_dts(tmp_path, body)
    assert provider_and_verdict(doc, LDEV_PATH) == expected


def test_two_smmus_list_one_master_the_first_without_global_interrupts(tmp_path):
    first = legacy_smmu("a", "4000000").replace("#global-interrupts = <1>;", "")
    body = soc(first, legacy_smmu("b", "5000000", COH), LDEV)
    assert provider_and_verdict(sweep_dts(tmp_path, body), LDEV_PATH) == \
        ("/soc/iommu@5000000", "capable")


def test_only_smmu_listing_the_master_disabled(tmp_path):
    body = soc(legacy_smmu("a", "4000000", 'status = "disabled";'), LDEV)
    assert verdict(sweep_dts(tmp_path, body), LDEV_PATH) == "no-iommu"


@pytest.mark.parametrize("legacy_dt_bindings", [True, False])
def test_generic_smmu_first_refuses_a_legacy_one(tmp_path, legacy_dt_bindings):
    body = soc(smmu(label="g", unit="4000000"), legacy_smmu("l", "5000000"), LDEV,
               device("dev@1", "", "<&g 1>"))
    doc = sweep_dts(tmp_path, body, legacy_dt_bindings=legacy_dt_bindings)
    assert verdict(doc, DEV) == "broken"
    (r,) = links_of(doc, LDEV_PATH)
    assert (r["verdict"], r["attach"]) == ("no-iommu", codes.A_NOT_PROBED)


@pytest.mark.parametrize("legacy_dt_bindings", [True, False])
def test_legacy_smmu_first_refuses_a_generic_one(tmp_path, legacy_dt_bindings):
    body = soc(legacy_smmu("l", "4000000"), smmu(label="g", unit="5000000"), LDEV,
               device("dev@1", "", "<&g 1>"))
    doc = sweep_dts(tmp_path, body, legacy_dt_bindings=legacy_dt_bindings)
    (r,) = links_of(doc, DEV)
    assert (r["provider_path"], r["verdict"], r["attach"]) == \
        (SMMU_PATH, "no-iommu", codes.A_NOT_PROBED)


def test_an_empty_mmu_masters_is_the_legacy_style(tmp_path):
    body = soc(smmu(extra="mmu-masters;", label="l", unit="4000000"),
               smmu(label="g", unit="5000000"), device("dev@1", "", "<&g 1>"))
    assert verdict(sweep_dts(tmp_path, body), DEV) == "no-iommu"


@pytest.mark.parametrize("why", ['status = "disabled";', "no #global-interrupts"])
def test_a_legacy_smmu_that_does_not_probe_fixes_no_style(tmp_path, why):
    first = legacy_smmu("l", "4000000", why if why.startswith("status") else "")
    if why.startswith("no"):
        first = first.replace("#global-interrupts = <1>;", "")
    body = soc(first, smmu(label="g", unit="5000000"), LDEV, device("dev@1", "", "<&g 1>"))
    doc = sweep_dts(tmp_path, body)
    assert verdict(doc, DEV) == "broken"
    assert verdict(doc, LDEV_PATH) == "no-iommu"


# === of_map_id() =================================================================
# drivers/of/base.c.  6.1 (:2183) and 6.12 (:2049): fixed 4-cell entries
# <id-base phandle out-base length>, `id_base + id_len` summed in u32; the
# map's length must be a non-zero multiple of 16 bytes.  7.2 (:2186): each
# entry's out-specifier has the #iommu-cells of ITS target (1 when absent),
# read entry by entry; of_check_bad_map() reads an all-length-1,
# one-phandle map aimed at a 2-cell target as 1-cell; a range of more than
# one ID onto a specifier of more than one cell is refused (-EINVAL);
# `masked_id - id_base >= id_len` does not wrap.  Both: the ID is masked by
# iommu-map-mask (read as a u32; the default when absent or short), an
# entry whose id-base the mask ignores fails (-EFAULT) when reached.

# a: 1 cell, coherent; b: 2 cells, not coherent; z: 0 cells, not coherent.
MIXED = (smmu(extra=COH, label="a", unit="4000000")
         + smmu(label="b", unit="5000000").replace("#iommu-cells = <1>;", "#iommu-cells = <2>;")
         + smmu(label="z", unit="6000000").replace("#iommu-cells = <1>;", "#iommu-cells = <0>;"))
A, B, Z = "/soc/iommu@4000000", "/soc/iommu@5000000", "/soc/iommu@6000000"


@pytest.mark.parametrize("map, expected", [
    ("<0 &a 0x100 1>, <1 &b 0x200 0 1>, <2 &a 0x300 1>",
     [(A, "capable"), (B, "broken"), (A, "capable")]),
    ("<0 &b 0x200 0 1>, <1 &a 0x100 1>, <2 &b 0x300 0 1>",
     [(B, "broken"), (A, "capable"), (B, "broken")]),
    ("<0 &z 1>, <1 &a 0x100 1>, <2 &b 0x300 0 1>",
     [(Z, "broken"), (A, "capable"), (B, "broken")]),
    ("<0 &a 0x100 2>, <2 &b 0x200 0 1>",
     [(A, "capable"), (A, "capable"), (B, "broken")]),
    # a range onto b's 2-cell specifier: refused; a's single-cell range is not
    ("<0 &b 0x200 0 2>, <2 &a 0x100 1>",
     [(None, "no-iommu"), (None, "no-iommu"), (A, "capable")]),
])
def test_7_2_entries_of_mixed_iommu_cells(tmp_path, map, expected):
    doc = sweep_dts(tmp_path, soc(MIXED, bridge(map)), target="7.2")
    assert [fn(doc, n) for n in range(3)] == expected


def test_7_2_mixed_map_discovered_devices_and_before_7_2(tmp_path):
    """The devices found on the bus get one link per provider of the map;
    before 7.2 the same 14-cell map is no multiple of 16 bytes: nothing."""
    body = soc(MIXED, bridge("<0 &a 0x100 1>, <1 &b 0x200 0 1>, <2 &a 0x300 1>"))
    doc = sweep_dts(tmp_path, body, target="7.2")
    assert sorted((r["provider_path"], r["verdict"]) for r in links_of(doc, BRIDGE_PATH)) == \
        [(A, "capable"), (B, "broken")]
    old = sweep_dts(tmp_path, body, target="7.1")
    assert {r["verdict"] for r in old["links"]} == {"no-iommu"}
    assert {r["attach"] for r in old["links"]} == {codes.A_BAD_MAP}


def test_7_2_one_cell_workaround_needs_a_two_cell_first_target(tmp_path):
    """of_check_bad_map() is tried only when the first entry's target has 2
    cells, and then reads every later entry as 1-cell."""
    two = smmu(label="b", unit="5000000").replace("#iommu-cells = <1>;", "#iommu-cells = <2>;")
    body = soc(two, bridge("<0 &b 0x200 1>, <1 &b 0x201 1>, <2 &b 0x202 1>"))
    doc = sweep_dts(tmp_path, body, target="7.2")
    assert [fn(doc, n) for n in range(3)] == [(B, "broken")] * 3


@pytest.mark.parametrize("target", ["6.12", "7.2"])
@pytest.mark.parametrize("mask, map, expected", [
    # 0xfffe: IDs 0 and 1 both mask to 0
    ("<0xfffe>", "<0 &a 0x100 1>, <2 &c 0x200 1>", [A, A, "/soc/iommu@7000000"]),
    (None, "<0 &a 0x100 1>, <2 &c 0x200 1>", [A, None, "/soc/iommu@7000000"]),
    ("<0>", "<0 &c 0x100 1>", ["/soc/iommu@7000000"] * 3),
    # an id-base the mask ignores fails the IDs that reach its entry
    ("<0xfffe>", "<0 &a 0x100 1>, <1 &c 0x200 1>", [A, A, None]),
    # a mask shorter than a cell is not read: all bits
    ("[00 00]", "<0 &a 0x100 1>, <2 &c 0x200 1>", [A, None, "/soc/iommu@7000000"]),
])
def test_iommu_map_mask(tmp_path, target, mask, map, expected):
    other = smmu(label="c", unit="7000000")
    extra = "" if mask is None else f"iommu-map-mask = {mask};"
    doc = sweep_dts(tmp_path, soc(MIXED, other, bridge(map, extra)), target=target)
    assert [fn(doc, n)[0] for n in range(3)] == expected


@pytest.mark.parametrize("target, covered", [
    ("5.10", False), ("6.1", False), ("6.12", False), ("7.1.9", False), ("7.2", True),
])
def test_32_bit_wrap_of_a_range(tmp_path, target, covered):
    """<0x0 &a 0 0xffffffff> covers IDs 0.. in every version; <0x1 &a 0
    0xffffffff> ends at 1 + 0xffffffff = 0 in u32 before 7.2."""
    doc = sweep_dts(tmp_path, soc(MIXED, bridge("<0x1 &a 0 0xffffffff>")), target=target)
    assert fn(doc, 1) == ((A, "capable") if covered else (None, "no-iommu"))
    doc = sweep_dts(tmp_path, soc(MIXED, bridge("<0x0 &a 0 0xffffffff>")), target=target)
    assert fn(doc, 1) == (A, "capable")


# === the versions where a decision changes (SPEC 1.1) =============================

@pytest.mark.parametrize("target, expected", [
    # e8ae0e140c05: VFIO asks for IOMMU_CAP_CACHE_COHERENCY from v5.19 (6.1
    # drivers/vfio/vfio_main.c :513); before, an IOMMU without .capable is fine
    ("5.18.19", "capable"), ("5.19", "unsupported-iommu"),
])
def test_boundary_5_19(tmp_path, target, expected):
    body = soc(smmu('"rockchip,iommu"'), PLAIN_DEV)
    assert verdict(sweep_dts(tmp_path, body, target=target), DEV) == expected


@pytest.mark.parametrize("target, expected", [
    # v5.19..v6.0: arm_smmu_capable() answers true; 6.1.0 (df198b37e72c):
    # COHERENT_WALK only; ac9c5e92dd15 ("Report IOMMU_CAP_CACHE_COHERENCY
    # even betterer") adds the device's own coherency: in v6.2, and in 6.1.y
    # from 6.1.7 (Debian's 6.1 changelog lists it under ChangeLog-6.1.7)
    ("6.0.19", "capable"), ("6.1", "broken"), ("6.1.2", "broken"), ("6.1.6", "broken"),
    ("6.1.7", "rescued-by-device"), ("6.1.192", "rescued-by-device"),
    ("6.2", "rescued-by-device"),
])
def test_boundary_6_1(tmp_path, target, expected):
    body = soc(smmu(), device("dev@1", COH))
    assert verdict(sweep_dts(tmp_path, body, target=target), DEV) == expected


@pytest.mark.parametrize("target, expected", [
    # qcom_iommu_of_match: "qcom,msm-iommu-v2" in 6.12 (:931), not in 6.1 (:900)
    ("6.4", "unsupported-iommu"), ("6.5", "capable"),
])
def test_boundary_6_5(tmp_path, target, expected):
    assert verdict(sweep_dts(tmp_path, soc(smmu('"qcom,msm-iommu-v2"'), PLAIN_DEV),
                             target=target), DEV) == expected


@pytest.mark.parametrize("target, expected", [
    # drivers/pci/bus.c pci_bus_add_device(): match_driver = !dn ||
    # of_device_is_available(dn) from 6.12; true in 6.1
    ("6.11.11", "broken"), ("6.12", "not-a-device"),
])
def test_boundary_6_12(tmp_path, target, expected):
    body = soc(smmu(), bridge("<0 &smmu 0x100 3>").replace(
        'fn@0,1 { reg = <0x100 0 0 0 0>; }',
        'fn@0,1 { reg = <0x100 0 0 0 0>; status = "disabled"; }'))
    doc = sweep_dts(tmp_path, body, target=target)
    assert fn(doc, 1) == (SMMU_PATH, expected)


@pytest.mark.parametrize("target, expected", [("7.1", "broken"), ("7.2", "no-iommu")])
def test_boundary_7_2(tmp_path, target, expected):
    """A 4-cell map of ranges aimed at a 2-cell SMMU: read by 7.1, refused
    by 7.2's reading of 2-cell out-specifiers (too short a tail)."""
    two = smmu().replace("#iommu-cells = <1>;", "#iommu-cells = <2>;")
    doc = sweep_dts(tmp_path, soc(two, bridge("<0 &smmu 0x100 0x80>")), target=target)
    assert fn(doc, 0)[1] == expected


# === malformed mmu-masters entries ================================================
# __find_legacy_master_phandle() (arm-smmu.c 6.12 :130) walks each SMMU's
# mmu-masters with of_for_each_phandle(..., "#stream-id-cells", -1): the
# masters listed before an entry that does not parse are found; the walk
# ends there, so none after it is.

@pytest.mark.parametrize("entries, diagnostic", [
    ("<&ldev 1>, <0x999 1>, <&late 2>", "mmu-masters: phandle 0x999 points nowhere"),
    ("<&ldev 1>, <&nocells 1>, <&late 2>",
     "mmu-masters: target /soc/nocells@4 has no #stream-id-cells"),
    ("<&ldev 1>, <&late>", "mmu-masters: arguments run past the end of the property"),
])
def test_mmu_masters_entry_that_does_not_parse(tmp_path, entries, diagnostic):
    masters = (LDEV + '\t\tlate: late@3 { compatible = "test,dev"; #stream-id-cells = <1>; };\n'
               '\t\tnocells: nocells@4 { compatible = "test,dev"; };\n')
    doc = sweep_dts(tmp_path, soc(smmu(extra=f"mmu-masters = {entries};"), masters))
    assert provider_and_verdict(doc, LDEV_PATH) == (SMMU_PATH, "broken")
    # late@3 is never attached (a short entry names it, as the broken one)
    assert all(x["attach"] == codes.A_BAD_ENTRY for x in links_of(doc, "/soc/late@3"))
    (r,) = [x for x in doc["links"] if x["attach"] == codes.A_BAD_ENTRY]
    assert (r["provider_path"], r["link"], r["verdict"], r["diagnostic"]) == \
        (SMMU_PATH, "mmu-masters", "not-a-device", diagnostic)
    # the master of the bad entry: none when its phandle points nowhere
    assert (r["master_path"] is None) == ("0x999" in entries)


# === several boards in one sweep ===================================================
# Every decision above is the kernel's for one booted DT: a sweep of many
# DTBs judges each as if alone (phandles, the legacy style, probing and
# coherency are per system).

ALONE_CASES = [
    soc(legacy_smmu("smmu", "5000000"), LDEV, PLAIN_DEV),
    soc(smmu(label="g", unit="4000000"), legacy_smmu("l", "5000000"), LDEV,
        device("dev@1", "", "<&g 1>")),
    "\tdma-coherent;\n" + soc(smmu(), device("dev@1", "")),
    soc(smmu(extra=DMA_MEM), noc(says=NONCOH), PLAIN_DEV, bus_extra="\t\tdma-coherent;\n"),
    soc(MIXED, bridge("<0 &a 0x100 1>, <1 &b 0x200 0 1>, <2 &a 0x300 1>")),
    soc(nest("parent", "disabled", smmu()), PLAIN_DEV),
    soc(legacy_smmu("a", "4000000"), legacy_smmu("b", "5000000", COH), LDEV),
    soc(smmu(extra="mmu-masters = <&ldev 1>, <0x999 1>;"), LDEV),
    soc(smmu('"arm,smmu-v3"').replace("#iommu-cells = <1>;", ""), bridge("<0 &smmu 0x100 3>")),
]


@pytest.mark.parametrize("target", ["6.1", "7.2"])
def test_each_board_of_a_sweep_is_judged_alone(tmp_path, target):
    from corpus.flat import flatten
    from kernels.evaluate import evaluate
    from kernels.target import TargetKernel
    from snippets import compile_dts, document

    def records(doc):
        return sorted((r["dtb"], r["provider_path"] or "", r["master_path"] or "", r["link"],
                       r["master_kind"], r["verdict"], r["attach"]) for r in doc["links"])

    dtbs = [compile_dts(tmp_path, f"b{i}", body) for i, body in enumerate(ALONE_CASES)]
    alone = []
    for dtb in dtbs:
        alone += records(document(evaluate(flatten([dtb], tmp_path, cache=False),
                                           TargetKernel.parse(target))))
    # in reverse order too: no board may lean on one before or after it
    for order in (dtbs, dtbs[::-1]):
        together = document(evaluate(flatten(order, tmp_path, cache=False),
                                     TargetKernel.parse(target)))
        assert records(together) == sorted(alone)


def test_mmu_masters_host_bridge_covers_its_functions(tmp_path):
    """A PCI host bridge in mmu-masters stands for every device of its bus
    (arm_smmu_register_legacy_master() looks up the bridge's node for a PCI
    device: dev_get_dev_node() walks to the root bus's bridge): its function
    nodes by requester ID (bus-range's first bus on the root bus) and the
    devices found on the bus."""
    host = ('\t\tpci: pcie@3 { device_type = "pci"; #stream-id-cells = <1>; reg = <0 3 0 1>;'
            " bus-range = <0x20 0x2f>; #address-cells = <3>; #size-cells = <2>;"
            " fn@1,2 { reg = <0x000a00 0 0 0 0>; dma-coherent; };"
            " port@2,0 { device_type = \"pci\"; reg = <0x001000 0 0 0 0>;"
            " #address-cells = <3>; #size-cells = <2>;"
            " nic@0,0 { reg = <0x210000 0 0 0 0>; }; }; };\n")
    doc = sweep_dts(tmp_path, soc(smmu(extra="mmu-masters = <&pci 0x3>;"), host))
    m = by_master(doc)
    got = {path[len("/soc/pcie@3"):] or "/": (r["master_kind"], r["rid"], r["vfio_candidate"],
                                               r["verdict"], r["bridge_path"])
           for path, (r,) in m.items()}
    assert got == {
        "/fn@1,2": ("pci-dt-child", 0x20 << 8 | 0x0a, True, "rescued-by-device", "/soc/pcie@3"),
        "/port@2,0": ("pci-dt-child", 0x20 << 8 | 0x10, False, "broken", "/soc/pcie@3"),
        "/port@2,0/nic@0,0": ("pci-dt-child", 0x21 << 8, True, "broken", "/soc/pcie@3"),
        "/": ("pci-discovered", -1, True, "broken", "/soc/pcie@3"),
    }


def test_duplicate_phandle_of_the_root(tmp_path):
    """of_find_node_by_phandle() takes the first node in tree order, the
    root too."""
    body = ("\tphandle = <0x42>;\n"
            + soc(smmu(extra="phandle = <0x42>;"), device("dev@1", "", "<0x42 1>")))
    doc = sweep_dts(tmp_path, body, force=True)
    (r,) = doc["links"]
    assert (r["provider_path"], r["verdict"]) == ("/", "no-iommu")
    (p,) = doc["problems"]
    assert (p["node"], p["other"], p["message"]) == (
        SMMU_PATH, "/", "phandle 0x42 of /soc/iommu@5000000 is also the phandle of /: "
        "every reference resolves to /")


def test_explain_shows_the_dma_parent_walk(tmp_path, capsys):
    """`dtb-audit explain` prints the walk of of_dma_is_coherent(): through
    the dma-mem targets, written after the SMMU, to the node that decides."""
    from auditor.cli import main
    from snippets import compile_dts
    body = "\tdma-coherent;\n" + soc(
        smmu(extra=via("<&noc1 3>", names=["dma-mem"])),
        noc("noc1", "1", extra=via("<&noc2 1>", names=["dma-mem"])),
        noc("noc2", "2", says=NONCOH), PLAIN_DEV, bus_extra="\t\tdma-coherent;\n")
    assert main(["explain", str(compile_dts(tmp_path, "board", body))]) == 0
    out = capsys.readouterr().out
    assert "    coherent:  /soc/iommu@5000000 -> /soc/interconnect@1 -> /soc/interconnect@2 " \
           "(dma-noncoherent)\n" in out


# qcom_iommu_of_xlate() (qcom_iommu.c 6.1 :548, 6.12 :555, 7.2 :556) refuses
# a specifier of other than one cell (-EINVAL); arm-smmu's and arm-smmu-v3's
# take any (arm-smmu.c arm_smmu_of_xlate: none is stream 0).  An `iommus`
# entry's specifier has the target's #iommu-cells.
@pytest.mark.parametrize("cells, iommus, expected", [
    ("<1>", "<&smmu 1>", "capable"), ("<0>", "<&smmu>", "no-iommu"),
    ("<2>", "<&smmu 1 2>", "no-iommu"),
])
def test_qcom_iommu_takes_one_cell(tmp_path, cells, iommus, expected):
    node = smmu('"qcom,msm-iommu-v1"').replace("#iommu-cells = <1>;", f"#iommu-cells = {cells};")
    (r,) = sweep_dts(tmp_path, soc(node, device("dev@1", "", iommus)))["links"]
    assert (r["provider_path"], r["verdict"]) == (SMMU_PATH, expected)


# of_iommu_configure_dev() (drivers/iommu/of_iommu.c 6.12): while
# of_parse_phandle_with_args("iommus", idx) succeeds, of_iommu_xlate() each
# entry; an empty (phandle 0) entry ends the loop with -ENOENT, so as the
# first entry it leaves the device with no IOMMU (err stays -ENODEV), later
# the entries before it stand.
@pytest.mark.parametrize("iommus, expected, diagnostic", [
    ("<0>, <&smmu 1>", (None, "no-iommu"), "iommus: empty entry (phandle 0)"),
    ("<&smmu 1>, <0>", (SMMU_PATH, "broken"), "iommus: empty entry (phandle 0)"),
    ("<&smmu 1>, <0x999 1>", (SMMU_PATH, "broken"), "iommus: phandle 0x999 points nowhere"),
])
def test_iommus_empty_or_broken_entry(tmp_path, iommus, expected, diagnostic):
    (r,) = sweep_dts(tmp_path, soc(smmu(), device("dev@1", "", iommus)))["links"]
    assert ((r["provider_path"], r["verdict"]), r["diagnostic"]) == (expected, diagnostic)


@pytest.mark.parametrize("device_type, is_pci", [
    ('"pci"', True), ('"pci", "x"', True),    # of_node_is_type(): strcmp up to the NUL
    ('"pcie"', False), ('"pc"', False), ('"pcx"', False), ('"xci"', False), ('"pxi"', False),
])
def test_device_type_pci(tmp_path, device_type, is_pci):
    """A host bridge is a node with device_type "pci" (the PCI bus binding,
    of_node_is_type(np, "pci")); its function nodes are PCI devices
    matched by requester ID, its iommu-map read for them."""
    host = bridge("<0 &smmu 0x100 3>").replace('device_type = "pci";',
                                               f"device_type = {device_type};")
    doc = sweep_dts(tmp_path, soc(smmu(), host))
    assert (f"{BRIDGE_PATH}/fn@0,0" in by_master(doc)) == is_pci


@pytest.mark.parametrize("body, line", [
    # nobody on the walk says: dma_default_coherent, false on arm64
    (soc(smmu(), PLAIN_DEV),
     "    coherent:  /soc/iommu@5000000 -> /soc -> / (past the root: not coherent)\n"),
    # inherited from the bus
    (soc(smmu(), PLAIN_DEV, bus_extra="\t\tdma-coherent;\n"),
     "    coherent:  /soc/iommu@5000000 -> /soc (dma-coherent)\n"),
    # a DMA-parent loop: of_dma_is_coherent() would spin
    (soc(noc("a", "1", extra=via("<&b 1>", names=["dma-mem"])),
         noc("b", "2", extra=via("<&a 1>", names=["dma-mem"])),
         smmu(extra=via("<&a 1>", names=["dma-mem"])), PLAIN_DEV),
     "(DMA parents loop: not coherent)\n"),
])
def test_explain_says_why_not_coherent(tmp_path, capsys, body, line):
    from auditor.cli import main
    from snippets import compile_dts
    assert main(["explain", str(compile_dts(tmp_path, "board", body))]) == 0
    (coherent,) = [x for x in capsys.readouterr().out.splitlines(keepends=True)
                   if x.startswith("    coherent:  /soc/iommu@5000000")]
    assert coherent.endswith(line)
