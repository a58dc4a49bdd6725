"""How a master finds its IOMMU (kernels/links.py), case by case, with the
verdict read from the kernel's C source (Debian's linux-source-6.1 6.1.192,
-6.12 6.12.118 and sid's -7.2 7.2.13; file, function and line named in each
section), not from kernels/: of_map_id() on PCI host bridges (its
entries, its errors and the devices found on the bus), the PCI function
nodes of a host bridge, `iommus` lists and the legacy `mmu-masters`.

Complements tests/unit/test_kernel_decisions.py (one case per decision)
with the edges of each: entry layouts, tails, masks, duplicates, and what
a link that leads nowhere carries.  Snippets are judged through
kernels.evaluate (snippets.sweep_dts); SMMUs are non-coherent arm-smmus
and masters non-coherent unless said otherwise, so an attached master is
"broken" and one with no IOMMU "no-iommu".
"""
import pytest

from kernels import codes
from snippets import (HEADER, by_master, compile_dts, device, document, evaluate_dtb, smmu, soc,
                      sweep_dts)

SMMU_PATH = "/soc/iommu@5000000"
COH = "dma-coherent;"


def cells(node, n):
    """An smmu() node with #iommu-cells = <n> (None: without it)."""
    return node.replace("#iommu-cells = <1>;", "" if n is None else f"#iommu-cells = <{n}>;")


# a: 1 cell, coherent; b: 2 cells; z: 0 cells; c: 1 cell.
A, B, Z, C = "/soc/iommu@4000000", "/soc/iommu@5000000", "/soc/iommu@6000000", \
    "/soc/iommu@7000000"
SMMUS = (smmu(extra=COH, label="a", unit="4000000") + cells(smmu(label="b", unit="5000000"), 2)
         + cells(smmu(label="z", unit="6000000"), 0) + smmu(label="c", unit="7000000"))

HOST = "/soc/pcie@40000000"


def host(map, extra="", functions=None):
    """A PCI host bridge (device_type "pci") with `iommu-map` = map (None:
    none) and function nodes at requester IDs 0, 1 and 2 unless
    `functions` (DTS text) says otherwise."""
    if functions is None:
        functions = "".join(f"\t\t\tfn@0,{n} {{ reg = <0x{n:x}00 0 0 0 0>; }};\n"
                            for n in range(3))
    prop = "" if map is None else f"iommu-map = {map};"
    return ("\t\tpcie@40000000 {\n\t\t\tcompatible = \"test,pcie\"; device_type = \"pci\";\n"
            "\t\t\t#address-cells = <3>; #size-cells = <2>;\n"
            f"\t\t\treg = <0 0x40000000 0 0x1000>;\n\t\t\t{prop}\n\t\t\t{extra}\n"
            + functions + "\t\t};\n")


def link(doc, master):
    (r,) = by_master(doc)[master]
    return r


def fn(doc, n):
    """(provider, verdict) of the function node fn@0,n."""
    r = link(doc, f"{HOST}/fn@0,{n}")
    return r["provider_path"], r["verdict"]


def discovered(doc, path=HOST):
    """(provider, verdict) of each link of the devices found on the bus."""
    return sorted(((r["provider_path"] or ""), r["verdict"])
                  for r in by_master(doc)[path] if r["master_kind"] == "pci-discovered")


# === of_map_id(): the entries ======================================================
# drivers/of/base.c of_map_id(), 7.2 :2186: each entry is <id-base phandle
# out-specifier length> with an out-specifier of the #iommu-cells of ITS
# target (1 when the target has none), read entry by entry (:2230-2273);
# `map_len - offset < 2` (:2235) or `< 3 + cells` (:2270) ends the walk
# with "Bad iommu-map length" (-EINVAL), a phandle that finds no node with
# -ENODEV (:2247), `cells > MAX_PHANDLE_ARGS` (16) with -EINVAL (:2256).
# Entries before the failure still translate the IDs they cover.  6.1
# (:2183) and 6.12 (:2049): fixed 4-cell entries; the map must be a
# non-zero multiple of 16 bytes; a phandle is looked up only for the entry
# that matches.

def test_7_2_map_of_three_cell_entries(tmp_path):
    """#iommu-cells = <0>: entries of three cells, as many as the map holds."""
    map = "<0 &z 1>, <1 &z 1>, <2 &z 1>, <3 &c 0x100 1>"
    doc = sweep_dts(tmp_path, soc(SMMUS, host(map)), target="7.2")
    assert [fn(doc, n) for n in range(3)] == [(Z, "broken")] * 3
    assert discovered(doc) == [(Z, "broken"), (C, "broken")]


@pytest.mark.parametrize("map, diagnostic", [
    # a tail of one cell, then of two: no room for an entry
    ("<0 &a 0x100 1 5>", "iommu-map: length 20 bytes ends inside an entry"),
    ("<0 &a 0x100 1 5 &a>", "iommu-map: length 24 bytes ends inside an entry"),
    ("<0 &a 0x100 1 5 &b 0x200>", "iommu-map: length 28 bytes ends inside an entry"),
    # two cells are enough to look the phandle up
    ("<0 &a 0x100 1 5 0x999>", "iommu-map: phandle 0x999 points nowhere"),
])
def test_7_2_map_tail(tmp_path, map, diagnostic):
    """ID 0 is translated by the whole first entry; ID 1 walks on to the
    tail, which fails."""
    doc = sweep_dts(tmp_path, soc(SMMUS, host(map)), target="7.2")
    assert fn(doc, 0) == (A, "capable")
    r = link(doc, f"{HOST}/fn@0,1")
    assert (r["provider_path"], r["verdict"], r["diagnostic"]) == (None, "no-iommu", diagnostic)


def test_7_2_map_length_not_whole_cells(tmp_path):
    """A map of a length that is no multiple of a cell is refused before
    any entry is read (7.2 :2218, `map_bytes % sizeof(*map)`)."""
    doc = sweep_dts(tmp_path, soc(SMMUS, host("<0 &a 0x100 1>, [00 00]")), target="7.2")
    for n in range(3):
        r = link(doc, f"{HOST}/fn@0,{n}")
        assert (r["provider_path"], r["verdict"], r["diagnostic"]) == \
            (None, "no-iommu", "iommu-map: length 18 bytes ends inside an entry")
    assert [(r["provider_path"], r["verdict"]) for r in by_master(doc)[HOST]] == \
        [(None, "no-iommu")]


@pytest.mark.parametrize("n, expected", [(16, (A, "capable")), (17, (None, "no-iommu"))])
def test_7_2_most_cells_of_an_out_specifier(tmp_path, n, expected):
    """MAX_PHANDLE_ARGS (include/linux/of.h) is 16: a 16-cell specifier is
    read, a 17-cell one refused."""
    wide = cells(smmu(extra=COH, label="a", unit="4000000"), n)
    map = "<0 &a " + " ".join(["0"] * n) + " 1>"
    doc = sweep_dts(tmp_path, soc(wide, host(map)), target="7.2")
    assert fn(doc, 0) == expected


def test_entries_in_any_order(tmp_path):
    """The walk tries every entry: one of a higher id-base first does not
    end it (of_map_id: `continue` when the ID is below id-base)."""
    doc = sweep_dts(tmp_path, soc(SMMUS, host("<2 &a 0x100 1>, <0 &c 0x200 2>")))
    assert [fn(doc, n) for n in range(3)] == [(C, "broken"), (C, "broken"), (A, "capable")]


def test_mask_checked_on_the_entry_that_matches(tmp_path):
    """An id-base outside iommu-map-mask fails (-EFAULT) when the walk
    reaches its entry, even if that entry covers the masked ID (6.12 :2089)."""
    doc = sweep_dts(tmp_path, soc(SMMUS, host("<1 &c 0x200 4>", "iommu-map-mask = <0xfffe>;")))
    r = link(doc, f"{HOST}/fn@0,2")
    assert (r["provider_path"], r["verdict"], r["diagnostic"]) == \
        (None, "no-iommu", "iommu-map: id-base 0x1 is outside iommu-map-mask")


@pytest.mark.parametrize("target", ["6.12", "7.2"])
def test_phandle_to_nowhere(tmp_path, target):
    """IDs of an entry whose phandle finds no node get no IOMMU (-ENODEV);
    the entries before it stand, for the function nodes and for the devices
    found on the bus."""
    doc = sweep_dts(tmp_path, soc(SMMUS, host("<0 &c 0x100 1>, <1 0x999 0x200 2>")),
                    target=target)
    assert [fn(doc, n) for n in range(3)] == [(C, "broken"), (None, "no-iommu"),
                                             (None, "no-iommu")]
    rows = [r for r in by_master(doc)[HOST] if r["provider_path"] is None]
    assert [(r["verdict"], r["diagnostic"], r["vfio_candidate"]) for r in rows] == \
        [("no-iommu", "iommu-map: phandle 0x999 points nowhere", True)]
    assert discovered(doc) == [("", "no-iommu"), (C, "broken")]


@pytest.mark.parametrize("target", ["6.12", "7.2"])
def test_map_that_does_not_parse(tmp_path, target):
    """A map too short for one entry translates nothing: the function
    nodes and the devices found on the bus get no IOMMU, and those devices
    are still what VFIO would be asked to bind."""
    doc = sweep_dts(tmp_path, soc(SMMUS, host("<0 &c>")), target=target)
    assert [fn(doc, n) for n in range(3)] == [(None, "no-iommu")] * 3
    (r,) = [r for r in by_master(doc)[HOST] if r["master_kind"] == "pci-discovered"]
    assert (r["provider_path"], r["verdict"], r["vfio_candidate"], r["bridge_path"]) == \
        (None, "no-iommu", True, HOST)
    assert r["diagnostic"] == ("iommu-map: length 8 bytes is not a non-zero multiple of 16"
                               if target == "6.12" else
                               "iommu-map: length 8 bytes ends inside an entry")


# === of_map_id() of 7.2: ranges onto wide specifiers ===============================
# 7.2 :2279: an entry that covers the ID with `id_len > 1 && cells > 1`
# fails (-EINVAL): the devices found on the bus whose IDs reach only such
# entries of a target get no IOMMU from it.

@pytest.mark.parametrize("map, expected", [
    # b's range is refused, a's single ID is not: in either order
    ("<0 &b 0x200 0 2>, <2 &a 0x100 1>", [(A, "capable"), (B, "no-iommu")]),
    ("<0 &a 0x100 1>, <1 &b 0x200 0 2>", [(A, "capable"), (B, "no-iommu")]),
    # a range onto a 1-cell specifier is fine
    ("<0 &a 0x100 4>", [(A, "capable")]),
    # b's single IDs are fine
    ("<0 &b 0x200 0 1>, <1 &b 0x300 0 1>", [(B, "broken")]),
])
def test_7_2_wide_ranges_for_the_devices_on_the_bus(tmp_path, map, expected):
    doc = sweep_dts(tmp_path, soc(SMMUS, host(map, functions="")), target="7.2")
    assert discovered(doc) == expected


@pytest.mark.parametrize("target", ["6.12", "7.2"])
def test_placeholder_map(tmp_path, target):
    """Every entry of length 0 (filled in by the boot firmware): the link
    stands, with its note; no ID is refused for a range of 0 IDs."""
    doc = sweep_dts(tmp_path, soc(SMMUS, host("<0 &b 0 0 0>" if target == "7.2"
                                              else "<0 &b 0 0>")), target=target)
    rows = by_master(doc)
    for n in range(3):
        (r,) = rows[f"{HOST}/fn@0,{n}"]
        assert (r["provider_path"], r["verdict"], r["placeholder_map"]) == (B, "broken", True)
    assert discovered(doc) == [(B, "broken")]
    assert all(r["placeholder_map"] for r in rows[HOST])


def test_ordinary_map_has_no_note(tmp_path):
    """Function nodes on the root bus carry their bus number (bus-range's
    first); nothing is guessed and no entry is a placeholder."""
    doc = sweep_dts(tmp_path, soc(SMMUS, host("<0 &c 0x100 8>")))
    for r in doc["links"]:
        assert (r["provider_path"], r["note"], r["placeholder_map"]) == (C, codes.N_NONE, False)


@pytest.mark.parametrize("first, first_cells", [("nocells", 1), ("b", 2)])
def test_7_2_needs_four_cell_entries(tmp_path, first, first_cells):
    """A map of 4-cell entries with a 2-cell target that 7.2 cannot read
    (it runs out of cells, or takes an out-specifier cell for a phandle);
    the message names the first entry's target and the #iommu-cells 7.2
    reads for it (1 when it has none: of_map_id :2250)."""
    nocells = cells(smmu(label="nocells", unit="3000000"), None)
    map = f"<0 &{first} 0x100 2>, <2 &b 0x200 1>"
    doc = sweep_dts(tmp_path, soc(nocells, SMMUS, host(map)), target="7.2")
    path = "/soc/iommu@3000000" if first == "nocells" else B
    (r,) = [r for r in by_master(doc)[HOST] if r["provider_path"] is None]
    assert r["diagnostic"] == (
        f"iommu-map: Linux 7.2 cannot read this map with #iommu-cells = {first_cells} of "
        f"{path}; kernels before 7.2 read it as 4-cell entries")


# === PCI function nodes =============================================================
# drivers/pci/of.c: of_pci_find_child_device() (6.12 :116) returns the
# first child whose reg (of_pci_get_devfn(): five cells read as u32s, so
# a shorter reg is none) has the devfn, and looks below a child named
# "multifunc-device" (of_node_name_eq(): the name before any '@') too;
# below a bridge function the same happens on its bus.  A node with
# device_type "pci" is a PCI-PCI bridge, which vfio-pci does not bind
# (vfio_pci_probe(): only normal headers, drivers/vfio/pci/vfio_pci.c
# 6.12 :153).

def functions(doc):
    """master path below the host bridge -> (rid, vfio candidate) of its function link."""
    out = {}
    for path, rows in by_master(doc).items():
        for r in rows:
            if r["master_kind"] == "pci-dt-child":
                assert path not in out
                out[path[len(HOST):]] = (r["rid"], r["vfio_candidate"])
    return out


@pytest.mark.parametrize("name, found", [
    ("multifunc-device", True), ("multifunc-device@0", True), ("MULTIFUNC-DEVICE", False),
    ("multifunc-devices", False), ("multifunc-devic", False), ("multifunc-xevice", False),
    ("xultifunc-device@0", False), ("abcdefghijklmnop@0", False),
])
def test_multifunc_device(tmp_path, name, found):
    below = (f"\t\t\t{name} {{ #address-cells = <3>; #size-cells = <2>;\n"
             "\t\t\t\tfn@1,0 { reg = <0x800 0 0 0 0>; };\n\t\t\t};\n")
    doc = sweep_dts(tmp_path, soc(SMMUS, host("<0 &c 0 0x10000>", functions=below)))
    assert functions(doc) == ({f"/{name}/fn@1,0": (0x08, True)} if found else {})


def test_first_node_of_a_devfn_wins(tmp_path):
    """Two nodes of one devfn on a bus: the first is the function; the
    duplicate neither hides nor ends the others, on any bus."""
    fns = ("\t\t\tfn@0,1 { reg = <0x100 0 0 0 0>; };\n"
           "\t\t\tfn@1,0 { reg = <0x800 0 0 0 0>; };\n"
           "\t\t\tdup@0,1 { reg = <0x100 0 0 0 0>; };\n"
           "\t\t\tfn@4,0 { reg = <0x2000 0 0 0 0>; };\n"      # devfn 32
           "\t\t\tfn@0,0 { reg = <0x000 0 0 0 0>; };\n"
           "\t\t\tport@2,0 { device_type = \"pci\"; reg = <0x1000 0 0 0 0>;\n"
           "\t\t\t\tx@0,1 { reg = <0x10100 0 0 0 0>; }; y@0,1 { reg = <0x10100 0 0 0 0>; };\n"
           "\t\t\t\tz@0,2 { reg = <0x10200 0 0 0 0>; };\n\t\t\t};\n"
           "\t\t\tport@3,0 { device_type = \"pci\"; reg = <0x1800 0 0 0 0>;\n"
           "\t\t\t\tw@0,1 { reg = <0x20100 0 0 0 0>; };\n\t\t\t};\n")
    doc = sweep_dts(tmp_path, soc(SMMUS, host("<0 &c 0 0x10000>", functions=fns)))
    assert functions(doc) == {
        "/fn@0,1": (0x01, True), "/fn@1,0": (0x08, True), "/fn@4,0": (0x20, True),
        "/fn@0,0": (0x00, True), "/port@2,0": (0x10, False), "/port@3,0": (0x18, False),
        "/port@2,0/x@0,1": (0x101, True), "/port@2,0/z@0,2": (0x102, True),
        "/port@3,0/w@0,1": (0x201, True),
    }


def test_what_is_no_function(tmp_path):
    """A reg shorter than five cells, or a node below something that is no
    function (nor multifunc-device), is not a PCI function; the scan goes
    on past them.  A function with functions below is a bridge."""
    fns = ("\t\t\tshort@0,1 { reg = <0x100 0 0 0>; };\n"
           "\t\t\tholder { #address-cells = <3>; #size-cells = <2>;\n"
           "\t\t\t\tdeep@0,3 { reg = <0x300 0 0 0 0>; };\n\t\t\t};\n"
           "\t\t\tfn@0,2 { reg = <0x200 0 0 0 0>; };\n"
           "\t\t\tbr@1,0 { reg = <0x800 0 0 0 0>; #address-cells = <3>; #size-cells = <2>;\n"
           "\t\t\t\tleaf@0,0 { reg = <0x30000 0 0 0 0>; };\n\t\t\t};\n")
    doc = sweep_dts(tmp_path, soc(SMMUS, host("<0 &c 0 0x10000>", functions=fns)))
    assert functions(doc) == {"/fn@0,2": (0x02, True), "/br@1,0": (0x08, False),
                              "/br@1,0/leaf@0,0": (0x300, True)}


def test_functions_stay_with_their_host_bridge(tmp_path):
    """Host bridges side by side, the last one without function nodes and
    followed by a device with two reg ranges (as wide as a function's
    reg): each bridge's functions are its own."""
    one = host("<0 &a 0x100 0x100>", functions="\t\t\tfn@0,1 { reg = <0x100 0 0 0 0>; };\n")
    two = host("<0 &c 0x100 0x100>").replace("pcie@40000000", "pcie@50000000")
    three = host("<0 &b 0x100 1>", functions="").replace("pcie@40000000", "pcie@60000000")
    wide = ('\t\tdev@1000 { compatible = "test,dev"; reg = <0 0x1000 0 0x100>,'
            ' <0 0x2000 0 0x100>; };\n')
    doc = sweep_dts(tmp_path, soc(SMMUS, one, two, three, wide))
    got = sorted((r["master_path"], r["master_kind"], r["provider_path"]) for r in doc["links"])
    assert got == [
        (HOST, "pci-discovered", A), (f"{HOST}/fn@0,1", "pci-dt-child", A),
        ("/soc/pcie@50000000", "pci-discovered", C),
        ("/soc/pcie@50000000/fn@0,0", "pci-dt-child", C),
        ("/soc/pcie@50000000/fn@0,1", "pci-dt-child", C),
        ("/soc/pcie@50000000/fn@0,2", "pci-dt-child", C),
        ("/soc/pcie@60000000", "pci-discovered", B),
    ]


# === iommus ===========================================================================
# of_iommu_configure_dev() (drivers/iommu/of_iommu.c 6.12 :64): while
# of_parse_phandle_with_args("iommus", "#iommu-cells", idx) succeeds,
# of_iommu_xlate() each entry; the first entry that does not parse ends
# the list, the entries before it stand.

NOCELLS = '\t\tnocells: nocells@3 { compatible = "test,dev"; };\n'


@pytest.mark.parametrize("iommus, expected", [
    ("<&smmu 1>, <&smmu 2>", (SMMU_PATH, "broken", codes.ATTACHED, codes.N_NONE, None)),
    ("<&smmu 1>, <0>", (SMMU_PATH, "broken", codes.ATTACHED, codes.N_TRUNCATED,
                        "iommus: empty entry (phandle 0)")),
    ("<&smmu 1>, <&nocells 1>", (SMMU_PATH, "broken", codes.ATTACHED, codes.N_TRUNCATED,
                                 "iommus: target /soc/nocells@3 has no #iommu-cells")),
    # a first entry aimed at a node without #iommu-cells: no IOMMU there
    ("<&nocells 1>", ("/soc/nocells@3", "no-iommu", codes.A_NOT_A_PROVIDER, codes.N_NONE,
                      "iommus: target /soc/nocells@3 has no #iommu-cells")),
])
def test_iommus_list(tmp_path, iommus, expected):
    doc = sweep_dts(tmp_path, soc(smmu(), NOCELLS, device("dev@1", "", iommus)))
    r = link(doc, "/soc/dev@1")
    assert (r["provider_path"], r["verdict"], r["attach"], r["note"], r["diagnostic"]) == \
        expected


# === the legacy mmu-masters binding =================================================
# arm-smmu.c 6.12: arm_smmu_register_legacy_master() (:185) finds the first
# probed SMMU (driver_for_each_device) whose mmu-masters lists the master
# (__find_legacy_master_phandle :130, of_for_each_phandle with
# "#stream-id-cells").  A platform master is no PCI device: it has no
# host bridge.

LDEV = '\t\tldev: ldev@2 { compatible = "test,dev"; #stream-id-cells = <1>; };\n'


def test_legacy_platform_master(tmp_path):
    doc = sweep_dts(tmp_path, soc(smmu(extra="mmu-masters = <&ldev 1>;"), LDEV))
    r = link(doc, "/soc/ldev@2")
    assert (r["provider_path"], r["link"], r["master_kind"], r["bridge_path"],
            r["vfio_candidate"], r["verdict"]) == \
        (SMMU_PATH, "mmu-masters", "platform", None, True, "broken")


def test_legacy_master_listed_twice(tmp_path):
    """A master listed again by the same SMMU is found once; the entries
    after it are still read.  An entry that does not parse names no host
    bridge either."""
    ldev2 = '\t\tldev2: ldev@3 { compatible = "test,dev"; #stream-id-cells = <1>; };\n'
    node = smmu(extra="mmu-masters = <&ldev 1>, <&ldev 2>, <&ldev2 1>, <0x999 1>;")
    doc = sweep_dts(tmp_path, soc(node, LDEV, ldev2))
    assert [(r["master_path"], r["verdict"]) for r in doc["links"]
            if r["attach"] == codes.ATTACHED] == \
        [("/soc/ldev@2", "broken"), ("/soc/ldev@3", "broken")]
    (bad,) = [r for r in doc["links"] if r["attach"] != codes.ATTACHED]
    assert (bad["master_path"], bad["bridge_path"], bad["diagnostic"]) == \
        (None, None, "mmu-masters: phandle 0x999 points nowhere")


def test_legacy_smmus_that_do_not_probe(tmp_path):
    """On a legacy system, an arm-smmu that lists nothing (and does not
    probe) between two that list masters: the later one's masters are
    still found, with no IOMMU when it is disabled."""
    ldev2 = '\t\tldev2: ldev@3 { compatible = "test,dev"; #stream-id-cells = <1>; };\n'
    quiet = smmu(label="q", unit="6000000").replace("#global-interrupts = <1>;", "")
    off = smmu(extra='mmu-masters = <&ldev2 1>; status = "disabled";', label="d",
               unit="7000000")
    doc = sweep_dts(tmp_path, soc(smmu(extra="mmu-masters = <&ldev 1>;"), quiet, off, LDEV,
                                  ldev2))
    r = link(doc, "/soc/ldev@3")
    assert (r["provider_path"], r["verdict"], r["attach"]) == \
        ("/soc/iommu@7000000", "no-iommu", codes.A_PROVIDER_DISABLED)
    assert link(doc, "/soc/ldev@2")["verdict"] == "broken"


def test_legacy_master_below_a_host_bridge(tmp_path):
    """A root port (device_type "pci" below the host bridge) named in
    mmu-masters is no host bridge: it is a master of its own, with no
    functions of its own looked up."""
    pci = ('\t\tpcie@3 { device_type = "pci"; reg = <0 3 0 1>; #address-cells = <3>;'
           ' #size-cells = <2>;\n'
           '\t\t\tport: port@0,0 { device_type = "pci"; reg = <0 0 0 0 0>;'
           ' #stream-id-cells = <1>; #address-cells = <3>; #size-cells = <2>;\n'
           '\t\t\t\tnic@0,0 { reg = <0x10000 0 0 0 0>; }; };\n\t\t};\n')
    doc = sweep_dts(tmp_path, soc(smmu(extra="mmu-masters = <&port 1>;"), pci))
    assert [(r["master_path"], r["master_kind"], r["provider_path"]) for r in doc["links"]] == \
        [("/soc/pcie@3/port@0,0", "platform", SMMU_PATH)]


# === which nodes are masters ==========================================================
# A host bridge's subtree holds PCI functions: of_platform_populate()
# (drivers/of/platform.c) makes no platform device of them, and a PCI
# device's IOMMU comes from the host bridge's iommu-map (of_iommu_configure,
# drivers/iommu/of_iommu.c 6.12 :133, dev_is_pci), never from an `iommus`
# of its own.  The host bridge is the device_type "pci" node whose parent
# is not PCI.

def test_masters_around_a_host_bridge(tmp_path):
    fns = ("\t\t\tfn@0,0 { reg = <0 0 0 0 0>; iommus = <&c 5>; };\n"
           "\t\t\tfn@0,1 { reg = <0x100 0 0 0 0>; };\n")
    after = device("dev@1", "", "<&c 1>")
    doc = sweep_dts(tmp_path, soc(SMMUS, host("<0 &a 0x100 0x100>", functions=fns), after))
    got = sorted((r["master_path"], r["link"], r["provider_path"]) for r in doc["links"])
    assert got == [("/soc/dev@1", "iommus", C), (HOST, "iommu-map", A),
                   (f"{HOST}/fn@0,0", "iommu-map", A), (f"{HOST}/fn@0,1", "iommu-map", A)]


def test_host_bridge_below_a_typed_bus(tmp_path):
    """A bus with a device_type other than "pci" above the host bridge."""
    body = soc(SMMUS, host("<0 &a 0x100 0x100>", functions=""),
               bus_extra='\t\tdevice_type = "soc";\n')
    (r,) = sweep_dts(tmp_path, body)["links"]
    assert (r["master_path"], r["master_kind"], r["provider_path"]) == \
        (HOST, "pci-discovered", A)


# fsl-mc-bus.c (6.12 :133 fsl_mc_dma_configure) reads the DPRC's iommu-map
# through of_dma_configure_id() and of_map_id(), as a host bridge's: the
# 7.2 reading of out-specifiers holds there too.

@pytest.mark.parametrize("target, expected", [("7.2", (B, "broken")), ("7.1", (None, "no-iommu"))])
def test_fsl_mc_map_read_by_the_targets_of_map_id(tmp_path, target, expected):
    mc = ('\t\tfsl-mc@8c000000 { compatible = "fsl,qoriq-mc"; reg = <0 0x8c000000 0 0x40>;'
          " iommu-map = <0 &b 0x200 0 1>; };\n")
    doc = sweep_dts(tmp_path, soc(SMMUS, mc), target=target)
    (r,) = doc["links"]
    assert (r["master_kind"], (r["provider_path"], r["verdict"])) == ("fsl-mc", expected)


def test_every_link_of_a_large_board(tmp_path):
    """More links than nodes / 4 and than a thousand: all are found."""
    n = 1030
    devices = "".join(f'\t\td{k}@{k:x} {{ compatible = "test,dev"; iommus = <&c {k}>; }};\n'
                      for k in range(n))
    doc = sweep_dts(tmp_path, soc(SMMUS, devices))
    assert sorted(r["master_path"] for r in doc["links"]) == \
        sorted(f"/soc/d{k}@{k:x}" for k in range(n))
    assert {(r["provider_path"], r["verdict"]) for r in doc["links"]} == {(C, "broken")}


# === the bound on links per DTB =======================================================
# find_links() keeps the links of a DTB only up to `limit` (MAX_LINKS_PER_DTB
# in a sweep: tests/unit/test_rule.py), counting them per DTB whatever it
# keeps; a DTB above the bound costs the DTBs after it nothing.

def links_under_limit(tmp_path, counts, limit):
    """find_links() over one DTB per count, each with that many masters
    (an `iommus` each) behind one SMMU, its inputs made by the kernels'
    public functions as kernels.evaluate does."""
    from corpus.flat import flatten
    from kernels import coherency, dt, providers
    from kernels.links import find_links
    from kernels.target import TargetKernel
    from snippets import compile_dts
    dtbs = [compile_dts(tmp_path, f"board{d}", soc(smmu(), *(
        device(f"dev@{m}", "") for m in range(n)))) for d, n in enumerate(counts)]
    flat = flatten(dtbs, tmp_path, cache=False)
    assert flat.paths == [f"board{d}.dtb" for d in range(len(counts))]
    target = TargetKernel.parse("6.12")
    t = dt.tree_of(flat)
    own_ok, available = coherency.availability(t)
    role, driver = providers.roles(t, target)
    state, legacy = providers.probe(t, role, available)
    return flat, find_links(t, role, driver, state, own_ok, available, legacy, True,
                            target.map_reads_target_cells,
                            target.pci_disabled_function_unbound, limit=limit)


def test_links_per_dtb_bounded_one_dtb_at_a_time(tmp_path):
    """With a bound of 2: a DTB of exactly 2 links keeps them, one of 3
    keeps none (and is counted 3), and the DTB after it keeps its own,
    counted on their own too."""
    flat, (found, dtb_links) = links_under_limit(tmp_path, [2, 3, 2], limit=2)
    assert dtb_links.tolist() == [2, 3, 2]
    assert [(int(r["dtb"]), flat.node_path(int(r["master"]))) for r in found] == \
        [(0, "/soc/dev@0"), (0, "/soc/dev@1"), (2, "/soc/dev@0"), (2, "/soc/dev@1")]


def test_links_of_a_later_dtb_counted_on_their_own(tmp_path):
    """Kept links of the DTBs before do not count against a DTB's bound."""
    flat, (found, dtb_links) = links_under_limit(tmp_path, [3, 3, 4], limit=3)
    assert dtb_links.tolist() == [3, 3, 4]
    assert [int(r["dtb"]) for r in found] == [0, 0, 0, 1, 1, 1]


def test_corpus_of_no_dtb(tmp_path):
    """An empty corpus: no link, no problem."""
    from corpus.flat import flatten
    from kernels.evaluate import evaluate
    from kernels.target import TargetKernel
    ev = evaluate(flatten([], tmp_path, cache=False), TargetKernel.parse("6.12"), cache=False)
    assert (ev.links.shape[0], ev.dtb_links.tolist(), ev.problems.shape[0]) == (0, [], 0)


# -- the root node is never a device ---------------------------------------------------------
# drivers/of/platform.c, of_platform_populate(): devices are made of the
# root's children (for_each_child_of_node(root, child)), never of the root
# itself, so no driver binds it and it is never a master (6.1, 6.12, 7.2).

def test_iommus_on_the_root_makes_no_master(tmp_path):
    doc = sweep_dts(tmp_path, "iommus = <&smmu 0x10>;\n" + soc(smmu(), device("dma@1000", "")))
    assert {m: [r["provider_path"] for r in rs] for m, rs in by_master(doc).items()} == {
        "/soc/dma@1000": [SMMU_PATH]}


def test_a_root_of_device_type_pci_is_no_host_bridge(tmp_path):
    """Its children stay platform devices: the master below soc keeps its link."""
    doc = sweep_dts(tmp_path, 'device_type = "pci";\n' + soc(smmu(), device("dma@1000", "")))
    assert link(doc, "/soc/dma@1000")["provider_path"] == SMMU_PATH


@pytest.mark.parametrize("compatible", ['"arm,mmu-500"', '"test,no-driver"'])
def test_a_root_with_an_smmus_compatible_is_bound_by_no_driver(tmp_path, compatible):
    """A master whose iommus names the root: the same verdict whether the
    root's compatible is an SMMU's or one no driver has."""
    header = HEADER.replace('compatible = "test,board", "test,soc";',
                            f"compatible = {compatible};\n\t#global-interrupts = <1>;\n"
                            "\t#iommu-cells = <1>;")
    body = soc(device("dma@1000", "", iommus="<&{/} 0x10>"))
    doc = document(evaluate_dtb(compile_dts(tmp_path, "root", body, header=header)))
    r = link(doc, "/soc/dma@1000")
    assert (r["provider_path"], r["verdict"]) == ("/", "unsupported-iommu")
