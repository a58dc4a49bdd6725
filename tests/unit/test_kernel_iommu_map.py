"""of_map_id() on a PCI host bridge's iommu-map (kernels/iommu_map.py), the
cases tests/unit/test_kernel_links.py leaves open, with the verdict read
from the kernel's C source (Debian's linux-source-6.12 6.12.118 and sid's
-7.2 7.2.13, drivers/of/base.c; line numbers in each test), not from
kernels/: what a failed lookup leaves in the sweep's report, a phandle
that finds the root node, and 7.2's one-cell reading of a map aimed at a
2-cell target.

Snippets are judged through kernels.evaluate (snippets.sweep_dts); the
SMMUs are those of test_kernel_links (a: 1 cell and coherent, b: 2 cells,
z: 0 cells, c: 1 cell), non-coherent unless said otherwise.
"""
import pytest

from snippets import by_master, reported, smmu, soc, sweep_dts
from test_kernel_links import HOST, SMMUS, B, C, Z, fn, host, link

ROOT_PHANDLE = "\tphandle = <0x77>;\n"


# === a failed lookup, as the sweep reports it ======================================
# A function whose requester ID of_map_id() cannot translate gets no IOMMU:
# an id-base outside the mask (-EFAULT, 6.12 :2042, 7.2 :2237; checked on
# each entry the walk reaches, before its range), a phandle that finds no
# node (-ENODEV, 6.12 :2052, 7.2 :2244), a range onto a wide specifier
# (7.2 :2286), a map that ends inside an entry before the ID is reached
# (7.2 :2235/:2272), or an ID no entry covers ("no translation", 6.12
# :2075, 7.2 :2316: the bypass id, then of_iommu_xlate() of no node,
# drivers/iommu/of_iommu.c 6.12 :28).  The report names no IOMMU for it,
# and its other links stand.

@pytest.mark.parametrize("target, map, extra, expected", [
    ("6.12", "<1 &c 0x200 4>", "iommu-map-mask = <0xfffe>;",
     [(None, "no-iommu", "iommu-map: id-base 0x1 is outside iommu-map-mask")] * 3),
    ("6.12", "<0 &c 0x100 1>, <1 0x999 0x200 2>", "",
     [(C, "broken", None)] + [(None, "no-iommu", "iommu-map: phandle 0x999 points nowhere")] * 2),
    ("7.2", "<0 &b 0x200 0 2>, <2 &c 0x100 1>", "",
     [(None, "no-iommu", f"iommu-map: an entry maps 2 IDs to a 2-cell specifier of {B}: "
       "Linux 7.2 refuses it (-EINVAL)")] * 2 + [(C, "broken", None)]),
    ("7.2", "<0 &c 0x100 1 5>", "",
     [(C, "broken", None)]
     + [(None, "no-iommu", "iommu-map: length 20 bytes ends inside an entry")] * 2),
    ("6.12", "<0 &c 0x100 1>", "", [(C, "broken", None)] + [(None, "no-iommu", None)] * 2),
])
def test_failed_lookup_in_the_report(tmp_path, target, map, extra, expected):
    doc = sweep_dts(tmp_path, soc(SMMUS, host(map, extra)), target=target)
    links = {r.master_path: r for r in reported(doc)}
    assert [(links[f"{HOST}/fn@0,{n}"].provider_path, links[f"{HOST}/fn@0,{n}"].verdict,
             links[f"{HOST}/fn@0,{n}"].diagnostic) for n in range(3)] == expected


def test_7_2_map_that_ends_in_one_stray_cell(tmp_path):
    """7.2 :2232: a walk that finds fewer than two cells left fails with the
    map's length (err_map_len) before it reads any phandle there; nothing
    after the property counts (here the next property, iommu-map-mask,
    whose FDT_PROP token, 3, is no phandle of this tree: SMMU c is its only
    node with one).  The entry before still translates ID 0."""
    only_c = smmu(label="c", unit="7000000")
    doc = sweep_dts(tmp_path, soc(only_c, host("<0 &c 0x100 1 5>", "iommu-map-mask = <0xffff>;")),
                    target="7.2")
    got = [(link(doc, f"{HOST}/fn@0,{n}")["provider_path"],
            link(doc, f"{HOST}/fn@0,{n}")["diagnostic"]) for n in range(3)]
    assert got == [(C, None)] + [(None, "iommu-map: length 20 bytes ends inside an entry")] * 2


# === a phandle that finds the root node =============================================
# of_find_node_by_phandle() (6.12 :1115) looks through every node, the root
# included: an entry aimed at the root's phandle finds it, and no "points
# nowhere" follows.  The root is no IOMMU: no driver binds it
# (unsupported-iommu, docs/rule.md).

@pytest.mark.parametrize("target", ["6.12", "7.2"])
def test_map_aimed_at_the_root(tmp_path, target):
    doc = sweep_dts(tmp_path, ROOT_PHANDLE + soc(SMMUS, host("<0 0x77 0x100 3>")), target=target)
    rows = sorted((r["master_path"], r["provider_path"], r["verdict"], r["diagnostic"])
                  for r in doc["links"])
    assert rows == [(HOST, "/", "unsupported-iommu", None)] + [
        (f"{HOST}/fn@0,{n}", "/", "unsupported-iommu", None) for n in range(3)]


def test_7_2_root_too_wide_for_an_out_specifier(tmp_path):
    """7.2 reads the root's #iommu-cells like any target's: 17 is more than
    MAX_PHANDLE_ARGS (:2256), and the message names the root."""
    body = ROOT_PHANDLE + "\t#iommu-cells = <17>;\n" + soc(
        SMMUS, host("<0 0x77 " + " ".join(["0"] * 17) + " 1>"))
    doc = sweep_dts(tmp_path, body, target="7.2")
    r = link(doc, f"{HOST}/fn@0,0")
    assert (r["provider_path"], r["verdict"], r["diagnostic"]) == \
        (None, "no-iommu", "iommu-map: #iommu-cells = 17 of / is more than MAX_PHANDLE_ARGS (16)")


def test_7_2_four_cell_map_aimed_at_a_two_cell_root(tmp_path):
    """A map of 4-cell entries whose first target is the root with
    #iommu-cells = <2>: 7.2 reads a 5-cell first entry (:2263 finds the
    map is not all of one phandle), then takes an out-specifier cell for a
    phandle (-ENODEV); the map is a clean 4-cell one of known targets, so
    the message says it was written for kernels before 7.2, naming the root."""
    body = ROOT_PHANDLE + "\t#iommu-cells = <2>;\n" + soc(
        SMMUS, host("<0 0x77 0x100 2>, <2 &b 0x200 1>"))
    doc = sweep_dts(tmp_path, body, target="7.2")
    r = link(doc, f"{HOST}/fn@0,2")
    assert (r["provider_path"], r["verdict"], r["diagnostic"]) == (
        None, "no-iommu", "iommu-map: Linux 7.2 cannot read this map with #iommu-cells = 2 of /; "
        "kernels before 7.2 read it as 4-cell entries")


# === 7.2: the one-cell reading of of_check_bad_map() ================================
# 7.2 :2263: only when the FIRST entry's target has #iommu-cells = 2 does
# of_check_bad_map() (:2149) decide to read every entry as 1-cell.  A map
# of the same shape aimed at a 0-cell target is read with 0 cells: its
# first entry <0 &z 5> covers IDs 0 to 4, and the last cell is a tail too
# short for an entry (-EINVAL once the walk reaches it).

def test_7_2_one_cell_reading_only_for_two_cell_targets(tmp_path):
    doc = sweep_dts(tmp_path, soc(SMMUS, host("<0 &z 5 1>")), target="7.2")
    assert [fn(doc, n)[:2] for n in range(3)] == [(Z, "broken")] * 3
    rows = by_master(doc)[HOST]
    assert sorted((r["provider_path"] or "", r["verdict"]) for r in rows) == \
        [("", "no-iommu"), (Z, "broken")]


# === a disabled host bridge ===========================================================
# of_platform_populate() makes no device of a disabled node
# (of_platform_bus_create(), drivers/of/platform.c): no host bridge probes,
# no bus is enumerated, none of its links is a device (not-a-device,
# docs/rule.md), whatever its map says.

DISABLED = 'status = "disabled";'


@pytest.mark.parametrize("target, map", [
    ("6.12", "<0 &b 0 0>"),                   # a placeholder map
    ("7.2", "<0 &b 0 0 0>"),
    ("6.12", "<0 &c>"),                       # a map that does not parse
    ("6.12", "<0 0x999 0x100 1>"),            # a phandle to nowhere
])
def test_disabled_host_bridge(tmp_path, target, map):
    doc = sweep_dts(tmp_path, soc(SMMUS, host(map, DISABLED)), target=target)
    assert doc["links"] and {r["verdict"] for r in doc["links"]} == {"not-a-device"}


def test_placeholder_map_functions_are_vfio_candidates(tmp_path):
    """A placeholder map's function nodes are endpoints (no device_type
    "pci"): what vfio-pci would be asked to bind."""
    doc = sweep_dts(tmp_path, soc(SMMUS, host("<0 &b 0 0>")))
    assert [(link(doc, f"{HOST}/fn@0,{n}")["vfio_candidate"],
             link(doc, f"{HOST}/fn@0,{n}")["placeholder_map"]) for n in range(3)] == \
        [(True, True)] * 3


def test_map_that_does_not_parse_in_the_report(tmp_path):
    """The devices found on the bus of a map too short for one entry: one
    link with no IOMMU, in the report too."""
    doc = sweep_dts(tmp_path, soc(SMMUS, host("<0 &c>")))
    (r,) = [r for r in reported(doc) if r.master_path == HOST]
    assert (r.provider_path, r.bridge_path, r.verdict, r.diagnostic) == \
        (None, HOST, "no-iommu", "iommu-map: length 8 bytes is not a non-zero multiple of 16")
