"""The IOMMU_CAP_CACHE_COHERENCY rule the plain way: pylibfdt queries, one
DTB at a time, each step named after the kernel function it stands for.

This is the reference ("naive") version of kernels.evaluate.evaluate(), as
stumpy keeps slow, obvious versions beside its kernels: written from the
project's domain reference (docs/rule.md, docs/links.md, docs/target-kernel.md)
and the kernel sources, sharing no code with
kernels/, its tables of versions and drivers included.  bench/
times it beside the numba sweep; tests/unit/test_naive_agrees.py checks that the
two give the same links and verdicts.

    sweep_dtb(path, rule=None, legacy_dt_bindings=True, dtb=None, target=None)
        -> [{"dtb", "provider_path", "master_path", "link", "master_kind",
             "verdict"}, ...]

`target` is the kernel version judged: a (major, minor, sublevel) tuple or
anything with a `.version` one (a kernels.target.TargetKernel); default the
newest modelled, 7.2.  The facts of each version (which rule, which
of_map_id, which drivers and buses exist, whether a disabled PCI function
gets a driver) are this module's own reading of the kernel sources, in the
tables below, so that tests/test_naive_agrees.py compares two independent
readings; nothing of them is imported from kernels/.  `rule` overrides
only the capable() rule.

A node is its libfdt offset.  A DTB that libfdt cannot read raises
NaiveError("file: error: what").
"""
import struct
from pathlib import Path

import libfdt

RULES = ("walk-or-device", "walk-only", "legacy-true", "no-check")
# A DTB with more links than this keeps none (a link explosion).
LINK_LIMIT = 100_000
NEWEST = (7, 2, 0)


# -- what each kernel version decides ---------------------------------------------
# Read from Debian's linux-source 6.1.192, 6.12.118 and 7.2.13 (and 5.10.223
# for the oldest rows), file and line given for each.

def capable_rule(version):
    """What arm-smmu's capable(IOMMU_CAP_CACHE_COHERENCY) answers.
    - before 5.19 VFIO never asks (e8ae0e140c05 adds the check: 6.1
      drivers/vfio/vfio_main.c:513);
    - 5.19 to 6.0: arm-smmu and arm-smmu-v3 answer true;
    - 6.1.0 (df198b37e72c): the SMMU's coherent walk only;
    - 6.1.7 and v6.2 (ac9c5e92dd15, "Report IOMMU_CAP_CACHE_COHERENCY even
      betterer", under ChangeLog-6.1.7 in Debian's 6.1 changelog): or the
      device's own coherency (6.12 arm-smmu.c:1401)."""
    if version < (5, 19, 0):
        return "no-check"
    if version < (6, 1, 0):
        return "legacy-true"
    if version < (6, 1, 7):
        return "walk-only"
    return "walk-or-device"


def map_reads_target_cells(version):
    """7.2 drivers/of/base.c:2186 of_map_id(): out-specifiers of each
    target's #iommu-cells; 6.12 :2049 and 6.1 :2183 read 4-cell entries."""
    return version >= (7, 2, 0)


def disabled_pci_function_unbound(version):
    """drivers/pci/bus.c: match_driver = !dn || of_device_is_available(dn) in
    6.12; 6.1 sets it true."""
    return version >= (6, 12, 0)


def dma_noncoherent_honoured(version):
    """6.1 drivers/of/address.c:1110 stops at dma-noncoherent; 5.10 looks
    for dma-coherent only."""
    return version >= (6, 1, 0)


# The match tables of the IOMMU drivers (drivers/iommu/) and of the buses
# whose code reads an iommu-map: (compatible, driver, kind, since), kind
# being what the driver is for this rule.  `since`: the first version read
# whose table has it.  The 6.1, 6.12 and 7.2 columns were checked against
# those sources' of_match tables; the 5.10 column follows the project's first
# reading of 5.10.223 (not re-read for this table).
_5_10, _6_1, _6_5, _6_12, _7_2 = (5, 10, 0), (6, 1, 0), (6, 5, 0), (6, 12, 0), (7, 2, 0)
DRIVER_TABLE = [
    # arm-smmu.c arm_smmu_of_match (7.2 :1957), .capable = arm_smmu_capable
    *[(c, "arm-smmu", "arm-smmu", _5_10) for c in (
        "arm,smmu-v1", "arm,smmu-v2", "arm,mmu-400", "arm,mmu-401", "arm,mmu-500",
        "cavium,smmu-v2", "nvidia,smmu-500", "qcom,smmu-v2")],
    # arm-smmu-v3.c arm_smmu_of_match
    ("arm,smmu-v3", "arm-smmu-v3", "arm-smmu-v3", _5_10),
    # qcom_iommu.c qcom_iommu_of_match: v2 in 6.12 (:931), not in 6.1 (:900)
    ("qcom,msm-iommu-v1", "qcom-iommu", "qcom-iommu", _5_10),
    ("qcom,msm-iommu-v2", "qcom-iommu", "qcom-iommu", _6_5),
    # drivers whose iommu_ops have no .capable
    ("samsung,exynos-sysmmu", "exynos-sysmmu", "no-capable", _5_10),
    ("apple,t8103-dart", "apple-dart", "no-capable", _6_1),
    ("apple,t6000-dart", "apple-dart", "no-capable", _6_1),
    ("apple,t8103-usb4-dart", "apple-dart", "no-capable", _6_12),
    ("apple,t8110-dart", "apple-dart", "no-capable", _6_12),
    ("mediatek,mt2701-m4u", "mtk-iommu-v1", "no-capable", _5_10),
    *[(c, "mtk-iommu", "no-capable", _5_10) for c in (
        "mediatek,mt2712-m4u", "mediatek,mt6779-m4u", "mediatek,mt8167-m4u",
        "mediatek,mt8173-m4u", "mediatek,mt8183-m4u")],
    *[(c, "mtk-iommu", "no-capable", _6_1) for c in (
        "mediatek,mt6795-m4u", "mediatek,mt8186-iommu-mm", "mediatek,mt8192-m4u",
        "mediatek,mt8195-iommu-infra", "mediatek,mt8195-iommu-vdo",
        "mediatek,mt8195-iommu-vpp")],
    *[(c, "mtk-iommu", "no-capable", _6_12) for c in (
        "mediatek,mt8188-iommu-infra", "mediatek,mt8188-iommu-vdo",
        "mediatek,mt8188-iommu-vpp", "mediatek,mt8365-m4u")],
    *[(c, "mtk-iommu", "no-capable", _7_2) for c in (
        "mediatek,mt6893-iommu-mm", "mediatek,mt8189-iommu-apu",
        "mediatek,mt8189-iommu-infra", "mediatek,mt8189-iommu-mm")],
    ("rockchip,iommu", "rockchip-iommu", "no-capable", _5_10),
    ("rockchip,rk3568-iommu", "rockchip-iommu", "no-capable", _6_1),
    ("allwinner,sun50i-h6-iommu", "sun50i-iommu", "no-capable", _5_10),
    ("allwinner,sun50i-h616-iommu", "sun50i-iommu", "no-capable", _6_12),
    ("sprd,iommu-v1", "sprd-iommu", "no-capable", _6_1),
    *[(c, "ipmmu-vmsa", "no-capable", _5_10) for c in (
        "renesas,ipmmu-vmsa", "renesas,ipmmu-r8a774a1", "renesas,ipmmu-r8a774b1",
        "renesas,ipmmu-r8a774c0", "renesas,ipmmu-r8a774e1", "renesas,ipmmu-r8a7795",
        "renesas,ipmmu-r8a7796", "renesas,ipmmu-r8a77961", "renesas,ipmmu-r8a77965",
        "renesas,ipmmu-r8a77970", "renesas,ipmmu-r8a77990", "renesas,ipmmu-r8a77995")],
    *[(c, "ipmmu-vmsa", "no-capable", _6_1) for c in (
        "renesas,ipmmu-r8a77980", "renesas,ipmmu-r8a779a0", "renesas,rcar-gen4-ipmmu-vmsa")],
    ("verisilicon,iommu-1.2", "vsi-iommu", "no-capable", _7_2),
    # tegra-smmu lives in the memory controller (drivers/memory/tegra/mc.c)
    *[(c, "tegra-smmu", "no-capable", _5_10) for c in (
        "nvidia,tegra30-mc", "nvidia,tegra114-mc", "nvidia,tegra124-mc",
        "nvidia,tegra132-mc", "nvidia,tegra210-mc")],
    ("qcom,apq8064-iommu", "msm-iommu", "no-capable", _5_10),
    # buses that hand an iommu-map to of_dma_configure_id() for their devices
    ("fsl,qoriq-mc", "fsl-mc", "fsl-mc", _5_10),
    *[(f"nvidia,tegra{n}-host1x", "host1x", "host1x-context", _6_1)
      for n in (20, 30, 114, 124, 210, 186, 194, 234)],
    ("xlnx,versal-net-cdx", "cdx", "cdx", _6_12),
    # 7.2 tegra186-gpc-dma.c:1455 reads its iommu-map for the channels
    *[(f"nvidia,tegra{n}-gpcdma", "tegra186-gpc-dma", "gpcdma-channel", _7_2)
      for n in (186, 194, 234, 264)],
]
IOMMU_DRIVERS = ("arm-smmu", "arm-smmu-v3", "qcom-iommu", "no-capable")
MAP_READERS = ("fsl-mc", "host1x-context", "cdx", "gpcdma-channel")


def driver_tables(version):
    """(compatible -> kind, compatible -> driver name) of the match table
    entries the kernel `version` has, compatibles in lower case."""
    kinds, names = {}, {}
    for compatible, name, kind, since in DRIVER_TABLE:
        if version >= since:
            kinds[compatible.lower().encode()] = kind
            names[compatible.lower().encode()] = name
    return kinds, names


class NaiveError(Exception):
    pass


class _DT:
    """One DTB: libfdt for properties and phandles, plus the node order,
    parents, children and paths from one walk."""

    def __init__(self, path):
        self.fdt = libfdt.Fdt(Path(path).read_bytes())
        self.nodes = []             # depth-first, as in the structure block
        self.parent = {}
        self.children = {}
        self.path = {}
        stack = []                  # stack[d]: the open node at depth d
        node, depth = 0, 0
        while True:
            del stack[depth:]
            self.nodes.append(node)
            self.children[node] = []
            if stack:
                up = stack[-1]
                self.parent[node] = up
                self.children[up].append(node)
                self.path[node] = self.path[up].rstrip("/") + "/" + self.fdt.get_name(node)
            else:
                self.parent[node] = None
                self.path[node] = "/"
            stack.append(node)
            node, depth = self.fdt.next_node(node, depth, quiet=(libfdt.NOTFOUND,))
            if node < 0 or depth < 0:      # depth -1: past the root's end
                break

    def prop(self, node, name):
        value = self.fdt.getprop(node, name, quiet=(libfdt.NOTFOUND,))
        return None if isinstance(value, int) else value

    def has(self, node, name):
        return self.prop(node, name) is not None

    def cells(self, node, name):
        value = self.prop(node, name)
        if value is None:
            return []
        return list(struct.unpack(f">{len(value) // 4}I", value[:len(value) // 4 * 4]))

    def read_u32(self, node, name):
        """of_property_read_u32(): None when absent or shorter than a cell."""
        value = self.prop(node, name)
        if value is None or len(value) < 4:
            return None
        return struct.unpack_from(">I", value)[0]

    def strings(self, node, name):
        """The NUL-terminated strings of a string-list property."""
        value = self.prop(node, name)
        return [] if value is None else bytes(value).split(b"\0")[:-1]

    def by_phandle(self, phandle):
        """of_find_node_by_phandle()."""
        node = self.fdt.node_offset_by_phandle(phandle, quiet=(libfdt.NOTFOUND, libfdt.BADPHANDLE))
        return None if node < 0 else node

    def name(self, node):
        return self.fdt.get_name(node)


# -- availability and coherency ------------------------------------------------

def of_device_is_available(dt, node):
    """`status` absent, "okay" or "ok" (strcmp: up to the first NUL)."""
    status = dt.prop(node, "status")
    if status is None:
        return True
    return b"\0" in status and bytes(status).split(b"\0")[0] in (b"okay", b"ok")


def is_device(dt, node):
    """A node under a disabled ancestor is never created as a device; the
    root's own status counts for nothing (of_platform_populate starts at its
    children)."""
    while node is not None and dt.parent[node] is not None:
        if not of_device_is_available(dt, node):
            return False
        node = dt.parent[node]
    return True


def of_phandle_iterator(dt, node, list_name, cells_name):
    """The entries of a phandle list: (status, target, next cell).  status is
    "ok" (target None for an empty phandle-0 entry), or the failure that
    ends the list: "no-node", "no-cells", "overrun"."""
    cells = dt.cells(node, list_name)
    cur = 0
    while cur < len(cells):
        if cells[cur] == 0:
            cur += 1
            yield "ok", None, cur
            continue
        target = dt.by_phandle(cells[cur])
        if target is None:
            yield "no-node", None, cur
            return
        count = dt.read_u32(target, cells_name)
        if count is None:
            yield "no-cells", target, cur
            return
        if cur + 1 + count > len(cells):
            yield "overrun", target, cur
            return
        cur += 1 + count
        yield "ok", target, cur


def of_get_next_dma_parent(dt, node):
    names = dt.strings(node, "interconnect-names")
    if b"dma-mem" in names:
        index = names.index(b"dma-mem")
        for i, (status, target, _) in enumerate(of_phandle_iterator(
                dt, node, "interconnects", "#interconnect-cells")):
            if status != "ok":
                break
            if i == index:
                if target is not None:
                    return target
                break
    return dt.parent[node]


def of_dma_is_coherent(dt, node):
    seen = set()
    while node is not None:
        if node in seen:            # a DMA-parent loop: the kernel would spin
            return False
        seen.add(node)
        if dt.has(node, "dma-coherent"):
            return True
        # 5.10 looks for dma-coherent only
        if dma_noncoherent_honoured(dt.version) and dt.has(node, "dma-noncoherent"):
            return False
        node = of_get_next_dma_parent(dt, node)
    return False                    # dma_default_coherent is false on arm64


# -- drivers -------------------------------------------------------------------

def driver_of(dt, node):
    """The first `compatible` entry a driver table of the target knows
    (case-insensitive)."""
    for c in dt.strings(node, "compatible"):
        driver = dt.drivers.get(c.lower())
        if driver:
            return driver
    return None


def own_driver(dt, node):
    """The name of the driver that binds the node: two IOMMUs of one role
    (say, no .capable op) may still be two drivers."""
    for c in dt.strings(node, "compatible"):
        name = dt.driver_names.get(c.lower())
        if name:
            return name
    return None


def probe_iommus(dt):
    """Which IOMMU providers probe, and whether arm-smmu runs the legacy
    `mmu-masters` binding: the first arm-smmu to probe fixes the style."""
    probed = {}
    generic = legacy = False
    for node in dt.nodes:
        driver = driver_of(dt, node)
        if driver not in IOMMU_DRIVERS:
            continue
        if not is_device(dt, node):
            probed[node] = False
        elif driver == "arm-smmu":
            if dt.read_u32(node, "#global-interrupts") is None:
                probed[node] = False
                continue
            uses_legacy = dt.has(node, "mmu-masters")
            if uses_legacy and not generic:
                legacy = probed[node] = True
            elif not uses_legacy and not legacy:
                generic = probed[node] = True
            else:
                probed[node] = False     # "not probing due to mismatched DT properties"
        elif driver == "arm-smmu-v3":
            probed[node] = dt.read_u32(node, "#iommu-cells") == 1
        else:
            probed[node] = True
    return probed, legacy


def of_iommu_xlate(dt, target, probed, legacy_system):
    """Whether the device gets this IOMMU."""
    if not of_device_is_available(dt, target):
        return False
    driver = driver_of(dt, target)
    if driver not in IOMMU_DRIVERS:
        return True                 # no driver we know: judged unsupported-iommu
    if not probed[target]:
        return False
    # A generic-binding master of an arm-smmu running the legacy binding.
    return not (driver == "arm-smmu" and legacy_system)


# -- PCI -----------------------------------------------------------------------

def is_pci(dt, node):
    device_type = dt.prop(node, "device_type")
    return device_type is not None and bytes(device_type[:4]) == b"pci\0"


def is_host_bridge(dt, node):
    parent = dt.parent[node]
    return is_pci(dt, node) and (parent is None or not is_pci(dt, parent))


def of_pci_get_devfn(dt, node):
    """devfn from a `reg` of at least 5 cells, else None."""
    reg = dt.cells(node, "reg")
    return (reg[0] >> 8) & 0xff if len(reg) >= 5 else None


def child_functions(dt, parent):
    """devfn -> function node for the bus below `parent`, as
    of_pci_find_child_device() finds them: children in order, the first of
    a devfn winning, looking into `multifunc-device` children on the way."""
    found = {}
    for child in dt.children[parent]:
        candidates = [child]
        if dt.name(child).split("@")[0] == "multifunc-device":    # of_node_name_eq()
            candidates += dt.children[child]
        for node in candidates:
            devfn = of_pci_get_devfn(dt, node)
            if devfn is not None and devfn not in found:
                found[devfn] = node
    return found


def pci_functions(dt, bridge):
    """(node, requester ID, bus guessed) of every PCI function with a node
    below a host bridge.  The root bus number is bus-range's first cell;
    below a root port the bus is numbered at enumeration: guess it from
    reg's bus field."""
    bus_range = dt.read_u32(bridge, "bus-range")
    root_bus = 0 if bus_range is None else bus_range
    out = []
    todo = [(bridge, False)]
    while todo:
        parent, below_port = todo.pop()
        for devfn, node in child_functions(dt, parent).items():
            bus = (dt.cells(node, "reg")[0] >> 16) & 0xff if below_port else root_bus
            out.append((node, bus << 8 | devfn, below_port))
            todo.append((node, True))
    return out


# -- iommu-map: of_map_id() ------------------------------------------------------

class MapEntry:
    """One entry: id-base, target node (None: its phandle points nowhere),
    out-specifier cells, length."""

    def __init__(self, base, target, cells, length):
        self.base, self.target, self.cells, self.length = base, target, cells, length


def read_map(dt, node, target_cells):
    """The entries of the node's iommu-map as of_map_id() walks them, and
    the failure that stops the walk ("error" or "no-target") or None.
    Up to 7.1 (target_cells False): 4-cell entries, a length that is not a
    non-zero multiple of 16 bytes fails before any entry.  From 7.2: each
    entry is id-base, phandle, #iommu-cells of the target (1 when absent)
    out cells, length; a phandle to nowhere, more than 16 cells or a short
    tail fails at that entry; 1-cell entries aimed at a 2-cell target, all
    of one phandle and length 1, are read as 1-cell (of_check_bad_map)."""
    value = dt.prop(node, "iommu-map")
    cells = dt.cells(node, "iommu-map")
    if not target_cells:
        if len(value) == 0 or len(value) % 16:
            return [], "error"
        return [MapEntry(cells[k], dt.by_phandle(cells[k + 1]), 1, cells[k + 3])
                for k in range(0, len(cells), 4)], None
    if len(value) % 4:
        return [], "error"
    one_cell_map = len(cells) % 4 == 0 and all(
        cells[k + 1] == cells[1] and cells[k + 3] == 1 for k in range(0, len(cells), 4))
    one_cell = False
    entries = []
    at = 0
    while at < len(cells):
        if len(cells) - at < 2:
            return entries, "error"
        target = dt.by_phandle(cells[at + 1])
        if target is None:
            return entries, "no-target"
        n = dt.read_u32(target, "#iommu-cells")
        n = 1 if n is None or one_cell else n
        if n > 16:
            return entries, "error"
        if at == 0 and n == 2 and one_cell_map:
            one_cell, n = True, 1
        if len(cells) - at < 3 + n:
            return entries, "error"
        entries.append(MapEntry(cells[at], target, n, cells[at + 2 + n]))
        at += 3 + n
    return entries, None


def of_map_id(entries, failure, mask, rid, target_cells):
    """("ok", target), ("uncovered", None) or ("error", None) for one ID."""
    masked = rid & mask
    for e in entries:
        if e.base & ~mask & 0xffffffff:
            return "error", None        # the mask ignores id-base
        if target_cells:
            covered = e.base <= masked and masked - e.base < e.length
        else:
            covered = e.base <= masked < (e.base + e.length) & 0xffffffff   # u32 sum
        if not covered:
            continue
        if e.target is None:
            return "error", None
        if target_cells and e.length > 1 and e.cells > 1:
            return "error", None        # a range of IDs onto a wider specifier
        return "ok", e.target
    return ("error", None) if failure else ("uncovered", None)


def map_providers(entries):
    """The distinct targets of a map in entry order, and whether it is a
    placeholder (every entry of length 0: firmware fills it in at boot)."""
    targets = list(dict.fromkeys(e.target for e in entries if e.target is not None))
    return targets, bool(entries) and all(e.length == 0 for e in entries)


# -- verdicts ------------------------------------------------------------------

def device_get_dma_attr(dt, kind, master):
    """Devices with a DT node answer of_dma_is_coherent(); devices found on a
    bus (PCI without a node, fsl-mc objects, contexts) have no fwnode."""
    if kind in ("platform", "pci-dt-child"):
        return "coherent" if of_dma_is_coherent(dt, master) else "non-coherent"
    return "not-supported"


def judge(dt, rule, enabled, attached, provider, kind, master, bridge):
    if not enabled:
        return "not-a-device"
    if not attached or provider is None:
        return "no-iommu"
    driver = driver_of(dt, provider)
    if rule == "no-check":          # VFIO before v5.19 asks nothing
        return "capable" if driver in IOMMU_DRIVERS else "unsupported-iommu"
    if driver not in ("arm-smmu", "arm-smmu-v3", "qcom-iommu"):
        return "unsupported-iommu"
    if driver == "qcom-iommu" or rule == "legacy-true" or of_dma_is_coherent(dt, provider):
        return "capable"
    if rule == "walk-or-device" and driver == "arm-smmu" and \
            device_get_dma_attr(dt, kind, master) == "coherent":
        return "rescued-by-device"
    if bridge is not None and of_dma_is_coherent(dt, bridge):
        return "broken-bridge-coherent"
    return "broken"


# -- links ---------------------------------------------------------------------

class _Sweep:
    """The links of one DTB under one rule."""

    def __init__(self, dt, name, rule, legacy_dt_bindings):
        self.dt, self.name, self.rule = dt, name, rule
        self.legacy_dt_bindings = legacy_dt_bindings
        self.target_cells = map_reads_target_cells(dt.version)
        self.probed, self.legacy_system = probe_iommus(dt)
        self.records = []

    def xlate(self, target):
        return of_iommu_xlate(self.dt, target, self.probed, self.legacy_system)

    def xlate_iommus(self, target):
        """An iommus entry: its specifier has the target's #iommu-cells, and
        qcom_iommu_of_xlate() (qcom_iommu.c 6.12 :555) takes only one."""
        if driver_of(self.dt, target) == "qcom-iommu" and \
                self.dt.read_u32(target, "#iommu-cells") != 1:
            return False
        return self.xlate(target)

    def link(self, provider, master, via, kind, enabled, attached, bridge=None):
        dt = self.dt
        self.records.append({
            "dtb": self.name,
            "provider_path": None if provider is None else dt.path[provider],
            "master_path": None if master is None else dt.path[master],
            "link": via,
            "master_kind": kind,
            "verdict": judge(dt, self.rule, enabled, attached, provider, kind, master, bridge),
        })

    def function_enabled(self, host, node):
        """From 6.12 a PCI function whose node is disabled gets no driver
        (bus.c: match_driver); before, only the host bridge matters."""
        return is_device(self.dt, host) and (
            of_device_is_available(self.dt, node) or not disabled_pci_function_unbound(self.dt.version))

    def iommus(self, node):
        """of_iommu_configure_dev(): the device is attached to the first
        entry's IOMMU; each entry is translated, one of another driver is
        refused and any failure leaves it with none.  Parsing stops at the
        first entry that does not parse, the earlier ones standing."""
        dt = self.dt
        first, attached = None, False
        for i, (status, target, _) in enumerate(of_phandle_iterator(dt, node, "iommus", "#iommu-cells")):
            if status != "ok" or target is None:
                if i == 0 and status == "no-cells":
                    first = target       # named, but no IOMMU
                break
            if i == 0:
                first, attached = target, self.xlate_iommus(target)
            elif not self.xlate_iommus(target) or own_driver(dt, target) != own_driver(dt, first):
                attached = False
            if not attached:
                break
        self.link(first, node, "iommus", "platform", is_device(dt, node), attached)

    def bus_map(self, node, kind):
        """Devices found at run time on a bus whose node has an iommu-map:
        one link per (bus node, provider of the map); from 7.2 a provider
        whose every entry maps a range of IDs onto a wider specifier
        translates none of them."""
        dt = self.dt
        enabled = is_device(dt, node)
        entries, failure = read_map(dt, node, self.target_cells)
        if failure and not entries:
            self.link(None, node, "iommu-map", kind, enabled, False, node)
            return
        if failure or any(e.target is None for e in entries):
            self.link(None, node, "iommu-map", kind, enabled, False, node)
        for target in map_providers(entries)[0]:
            mine = [e for e in entries if e.target == target and e.length > 0]
            refused = self.target_cells and mine and all(
                e.length > 1 and e.cells > 1 for e in mine)
            self.link(target, node, "iommu-map", kind, enabled,
                      self.xlate(target) and not refused, node)

    def host_bridge(self, bridge):
        """pci_dma_configure(): every function node by its requester ID, then
        the devices discovered on the bus."""
        dt = self.dt
        entries, failure = read_map(dt, bridge, self.target_cells)
        mask = dt.read_u32(bridge, "iommu-map-mask")
        mask = 0xffffffff if mask is None else mask
        targets, placeholder = map_providers(entries)
        for node, rid, guessed in pci_functions(dt, bridge):
            enabled = self.function_enabled(bridge, node)
            found, target = of_map_id(entries, failure, mask, rid, self.target_cells)
            if not failure and (placeholder or (found == "uncovered" and guessed)):
                for t in targets:
                    self.link(t, node, "iommu-map", "pci-dt-child", enabled, self.xlate(t), bridge)
            else:
                attached = found == "ok" and self.xlate(target)
                self.link(target, node, "iommu-map", "pci-dt-child", enabled, attached, bridge)
        self.bus_map(bridge, "pci-discovered")

    def mmu_masters(self):
        """The legacy binding: a master belongs to the first probed arm-smmu
        that lists it; a PCI host bridge listed stands for its whole bus."""
        dt = self.dt
        smmus = [n for n in dt.nodes if driver_of(dt, n) == "arm-smmu"]
        claimed = set()
        for smmu in [s for s in smmus if self.probed[s]] + [s for s in smmus if not self.probed[s]]:
            if not dt.has(smmu, "mmu-masters"):
                continue
            attached = of_device_is_available(dt, smmu) and self.probed[smmu] and \
                self.legacy_dt_bindings
            for status, master, _ in of_phandle_iterator(dt, smmu, "mmu-masters", "#stream-id-cells"):
                if status != "ok" or master is None:
                    # reported (as no device) so the broken entry shows
                    self.link(smmu, master, "mmu-masters", "platform", False, False)
                    break
                if master in claimed:
                    continue
                claimed.add(master)
                if is_host_bridge(dt, master):
                    for node, _, _ in pci_functions(dt, master):
                        self.link(smmu, node, "mmu-masters", "pci-dt-child",
                                  self.function_enabled(master, node), attached, master)
                    self.link(smmu, master, "mmu-masters", "pci-discovered",
                              is_device(dt, master), attached, master)
                else:
                    self.link(smmu, master, "mmu-masters", "platform", is_device(dt, master), attached)

    def run(self):
        dt = self.dt
        inside = set()              # nodes below a host bridge: PCI functions, not platform devices
        for node in dt.nodes:
            if dt.parent[node] in inside:
                inside.add(node)
                continue
            if is_host_bridge(dt, node):
                inside.add(node)
                if dt.has(node, "iommu-map"):
                    self.host_bridge(node)
                # The controller itself is a platform device.
                if dt.has(node, "iommus"):
                    self.iommus(node)
                continue
            driver = driver_of(dt, node)
            if driver in MAP_READERS and dt.has(node, "iommu-map"):
                self.bus_map(node, driver)
            if dt.has(node, "iommus"):
                self.iommus(node)
        self.mmu_masters()
        if len(self.records) > LINK_LIMIT:
            return []               # a link explosion: the DTB keeps no links
        return self.records


def sweep_dtb(path, rule=None, legacy_dt_bindings=True, dtb=None, target=None):
    """Every (provider, master) link of one DTB with its verdict, as the
    kernel `target` (a version tuple or an object with `.version`; default
    the newest modelled) judges it; `rule` overrides its capable() rule;
    `dtb` names the file in the records (default: `path`)."""
    version = NEWEST if target is None else tuple(getattr(target, "version", target))
    rule = capable_rule(version) if rule is None else rule
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}: one of {', '.join(RULES)}")
    try:
        dt = _DT(path)
        dt.version = version
        dt.drivers, dt.driver_names = driver_tables(version)
        return _Sweep(dt, str(path) if dtb is None else dtb, rule, legacy_dt_bindings).run()
    except libfdt.FdtException as exc:
        raise NaiveError(f"{path}: error: {exc}") from None
    except OSError as exc:
        raise NaiveError(f"{path}: error: {exc.strerror or exc}") from None
