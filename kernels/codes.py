"""The vocabulary of the rule: every code the kernels write into their
arrays, with its name and what it means, in one place.

Plain Python (no numba, no numpy): the kernels import the integer codes
(numba folds module-level integers into constants), the model and the
reports import the names and descriptions, and a command that only reads a
saved sweep never loads the compiler.  Names are the ones the JSON
document and the reports print; they are part of the interface.
"""
from enum import Enum

# -- the rule: what arm-smmu's capable(IOMMU_CAP_CACHE_COHERENCY) answers ----

# Rule ids, most recent first (docs/rule.md).  NO_CHECK is no
# rule of the SMMU driver: before v5.19 VFIO never asked.
RULES = {
    "walk-or-device": "arm-smmu: the SMMU is coherent (dma-coherent), or the device itself is "
                      "(ac9c5e92dd15: v6.2-rc4, 6.1.7)",
    "walk-only": "arm-smmu: the SMMU is coherent (dma-coherent) (df198b37e72c, v6.1.0)",
    "legacy-true": "arm-smmu and arm-smmu-v3 always answer true (v5.19 to v6.0)",
    "no-check": "VFIO does not ask for IOMMU_CAP_CACHE_COHERENCY before v5.19 "
                "(e8ae0e140c05): no device is refused for coherency",
}


class Rule(Enum):
    """A rule of RULES; its value is the name the JSON documents and --rule use."""
    WALK_OR_DEVICE = "walk-or-device"
    WALK_ONLY = "walk-only"
    LEGACY_TRUE = "legacy-true"
    NO_CHECK = "no-check"

    def __str__(self) -> str:
        return self.value

    @property
    def code(self) -> int:
        """The integer the kernels compare with (WALK_OR_DEVICE ... NO_CHECK below)."""
        return RULE_NAMES.index(self.value)


RULE_NAMES = tuple(rule.value for rule in Rule)
assert RULE_NAMES == tuple(RULES)
WALK_OR_DEVICE, WALK_ONLY, LEGACY_TRUE, NO_CHECK = range(len(RULE_NAMES))

# -- verdicts of a link (docs/rule.md) -------------------------------------------

VERDICTS = {
    "capable": "VFIO binds",
    "rescued-by-device": "capable only through the device's own coherency (walk-or-device); "
                         "the SMMU node most likely lacks dma-coherent",
    "broken": "not capable: VFIO refuses this device",
    "broken-bridge-coherent": "broken, while the host bridge or fsl-mc node above the device is "
                              "dma-coherent: almost surely a missing dma-coherent on the SMMU",
    "no-iommu": "the device ends up with no IOMMU",
    "unsupported-iommu": "the IOMMU's driver has no .capable op (or no driver binds it)",
    "not-a-device": "the master is disabled: no device, no driver",
}
VERDICT_NAMES = tuple(VERDICTS)
CAPABLE, RESCUED_BY_DEVICE, BROKEN, BROKEN_BRIDGE_COHERENT, NO_IOMMU, \
    UNSUPPORTED_IOMMU, NOT_A_DEVICE = range(len(VERDICT_NAMES))
# VFIO refuses the device.
BROKEN_VERDICTS = frozenset({"broken", "broken-bridge-coherent"})
# The verdicts that accuse the SMMU node of lacking dma-coherent: what a patch rests on.
EVIDENCE_VERDICTS = ("rescued-by-device", "broken-bridge-coherent")

# -- device_get_dma_attr() of a master ------------------------------------------

DMA_ATTR_NAMES = ("coherent", "non-coherent", "not-supported")
DEV_DMA_COHERENT, DEV_DMA_NON_COHERENT, DEV_DMA_NOT_SUPPORTED = range(3)

# -- masters: how a master names its IOMMU, and what it is ---------------------

VIA_NAMES = ("iommus", "iommu-map", "mmu-masters")
VIA_IOMMUS, VIA_IOMMU_MAP, VIA_MMU_MASTERS = range(3)

KINDS = {
    "platform": "a platform device with a DT node (vfio-platform)",
    "pci-dt-child": "a PCI function with a DT node below its host bridge (vfio-pci)",
    "pci-discovered": "PCI devices found on the bus, with no DT node (vfio-pci)",
    "fsl-mc": "fsl-mc objects of a DPRC (vfio-fsl-mc)",
    "host1x-context": "a Tegra host1x memory context (not passed through)",
    "gpcdma-channel": "a Tegra GPC DMA channel (not passed through)",
    "cdx": "CDX devices (vfio-cdx)",
}
KIND_NAMES = tuple(KINDS)
PLATFORM, PCI_DT_CHILD, PCI_DISCOVERED, FSL_MC_OBJECT, HOST1X_CONTEXT, \
    GPCDMA_CHANNEL, CDX_DEVICE = range(len(KIND_NAMES))
# What people pass through, most wanted first in the reports (docs/rule.md).
PASSTHROUGH_KINDS = frozenset({"pci-dt-child", "pci-discovered", "fsl-mc", "cdx"})
# Devices VFIO could be asked to bind (PCI-PCI bridge functions excepted, per link).
VFIO_KINDS = frozenset(KIND_NAMES) - {"host1x-context", "gpcdma-channel"}

# -- providers: which driver binds a node (roles), and whether it probes ---------

# 1-5 are IOMMU drivers, 10-13 the buses whose nodes carry an `iommu-map`
# that kernel code reads (besides PCI host bridges).
ROLE_NONE, ARM_SMMU, ARM_SMMU_V3, QCOM_IOMMU, NO_CAPABLE, UNKNOWN = 0, 1, 2, 3, 4, 5
FSL_MC, HOST1X, CDX, GPCDMA = 10, 11, 12, 13
DRIVER_NAMES = {ARM_SMMU: "arm-smmu", ARM_SMMU_V3: "arm-smmu-v3", QCOM_IOMMU: "qcom-iommu",
                NO_CAPABLE: "no-capable", UNKNOWN: "unknown", ROLE_NONE: "unknown"}
# The drivers whose capable() reads the DT: the SMMUs a patch may touch.
SMMU_DRIVERS = frozenset({"arm-smmu", "arm-smmu-v3"})

PROBE_STATES = {
    "probed": "probes",
    "not-a-provider": "not an IOMMU",
    "disabled": "disabled (status, or a disabled ancestor)",
    "no-global-interrupts": "missing #global-interrupts property: arm-smmu does not probe",
    "bad-iommu-cells": "#iommu-cells is not 1: arm-smmu-v3 does not probe",
    "mismatched-binding": "not probing due to mismatched DT properties (mmu-masters vs iommus)",
}
PROBE_STATE_NAMES = tuple(PROBE_STATES)
PROBED, NOT_A_PROVIDER, PROVIDER_DISABLED, NO_GLOBAL_INTERRUPTS, BAD_IOMMU_CELLS, \
    MISMATCHED_BINDING = range(len(PROBE_STATE_NAMES))

# -- why a link has no IOMMU (link attach) ------------------------------------------

ATTACH_REASONS = (
    None,                                                           # ATTACHED
    "the IOMMU node is disabled",
    "the IOMMU driver does not probe",
    "the first iommus entry does not parse",
    "an iommus entry names an IOMMU of another driver (-EINVAL)",
    "requester ID {rid:#06x} is in no iommu-map entry",
    "the iommu-map is malformed",
    "an iommu-map phandle points nowhere",
    "mmu-masters needs CONFIG_ARM_SMMU_LEGACY_DT_BINDINGS",
    "the arm-smmu driver runs the legacy mmu-masters binding; iommus is ignored",
    "the iommus target is not an IOMMU",
    "the IOMMU driver refuses the entry's number of cells (of_xlate: -EINVAL)",
)
(ATTACHED, A_PROVIDER_DISABLED, A_NOT_PROBED, A_BAD_ENTRY, A_OTHER_DRIVER, A_UNCOVERED_ID,
 A_BAD_MAP, A_NO_TARGET, A_LEGACY_UNSUPPORTED, A_LEGACY_SYSTEM,
 A_NOT_A_PROVIDER, A_XLATE_CELLS) = range(len(ATTACH_REASONS))

# -- remarks that do not change the verdict (link note; Evaluation.target_note) ------

NOTES = (
    None,                                                           # N_NONE
    "placeholder iommu-map (every entry has length 0): firmware fills it in at boot",
    "below a root port: bus number guessed from reg",
    "below a root port: guessed requester ID in no iommu-map entry; "
    "judged against the map's providers",
    "iommus parsing stopped at a malformed entry; earlier entries stand",
    # Evaluation.target_note: the target kernel, not the DT, decided.
    "VFIO does not ask for IOMMU_CAP_CACHE_COHERENCY before v5.19 (e8ae0e140c05): "
    "no device is refused for coherency",
)
N_NONE, N_PLACEHOLDER, N_GUESSED_BUS, N_GUESS_UNMATCHED, N_TRUNCATED, N_NO_CHECK = \
    range(len(NOTES))

# -- diagnostics about the DT itself (link diag, with its arguments) -------------------
#
# Fields: {prop} the property (VIA_NAMES[via]); {arg}, {arg2} the link's diag_arg
# and diag_arg2; {target} the path of node diag_arg (D_NO_IOMMU_CELLS,
# D_MIXED_DRIVERS); {node} the path of node diag_node; {cells} "#iommu-cells" or
# "#stream-id-cells" (mmu-masters); {target_kernel} the sweep's target kernel;
# {reader} the kernel that reads the map (kernels.evaluate.diagnostic_text fills
# them all).

DIAGNOSTICS = (
    None,                                                           # D_NONE
    "{prop}: phandle {arg:#x} points nowhere",
    "{prop}: target {target} has no {cells}",
    "{prop}: arguments run past the end of the property",
    "{prop}: empty entry (phandle 0)",
    "iommu-map: length {arg} bytes is not a non-zero multiple of 16",
    "iommu-map: id-base {arg:#x} is outside iommu-map-mask",
    "iommus: entry for {target} is of another IOMMU driver than the first",
    # of_map_id() of 7.2: entries of 3 + #iommu-cells cells.
    "iommu-map: length {arg} bytes ends inside an entry",
    "iommu-map: #iommu-cells = {arg2} of {node} is more than MAX_PHANDLE_ARGS (16)",
    "iommu-map: an entry maps {arg} IDs to a {arg2}-cell specifier of {node}: "
    "Linux {target_kernel} refuses it (-EINVAL)",
    # A map written for another kernel's of_map_id() than the target's.
    "iommu-map: length {arg} bytes is not a multiple of 16: Linux {target_kernel} cannot "
    "read this map; {reader} reads it with #iommu-cells = {arg2} of {node}",
    "iommu-map: Linux {target_kernel} reads this map as 4-cell entries, but it is written "
    "for #iommu-cells = {arg2} of {node}, as {reader} reads it",
    "iommu-map: Linux {target_kernel} cannot read this map with #iommu-cells = {arg2} of "
    "{node}; kernels before {reader} read it as 4-cell entries",
)
(D_NONE, D_PHANDLE_NOWHERE, D_NO_IOMMU_CELLS, D_SHORT_LIST, D_EMPTY_ENTRY, D_MAP_LENGTH,
 D_MAP_MASK, D_MIXED_DRIVERS, D_MAP_TRUNCATED, D_MAP_CELLS_MAX, D_MAP_WIDE_RANGE,
 D_MAP_NEEDS_TARGET_CELLS, D_MAP_MISREAD, D_MAP_NEEDS_FOUR_CELLS) = range(len(DIAGNOSTICS))

# -- problems of a DTB that belong to no link (Evaluation.problems) ---------------------
#
# Rows (dtb, node, code, arg, other).  Fields: {node} and {other} the paths of
# those nodes, {arg} the row's arg, {limit} MAX_LINKS_PER_DTB.

PROBLEMS = (
    None,                                                           # P_NONE
    "interconnects: the DMA parents of {node} loop back to {other} (dma-mem): "
    "of_dma_is_coherent() would never return; judged not coherent",
    "phandle {arg:#x} of {node} is also the phandle of {other}: every reference "
    "resolves to {other}",
    "{arg} links in one DTB, more than {limit}: its links are left out",
)
P_NONE, P_DMA_PARENT_LOOP, P_DUPLICATE_PHANDLE, P_TOO_MANY_LINKS = range(len(PROBLEMS))

# -- the tables the kernels return ---------------------------------------------------

# The columns of the table of links: kernels/table.py (LINK_DTYPE).

# The columns of the table of problems (Evaluation.problems), one row a problem.
PROBLEM_COLUMNS = ("dtb", "node", "code", "arg", "other")
PR_DTB, PR_NODE, PR_CODE, PR_ARG, PR_OTHER = range(len(PROBLEM_COLUMNS))

# Above this many links in one DTB, its links are left out and reported
# (P_TOO_MANY_LINKS).  Real boards have far fewer (at most 43 on 6.12, 70 on 7.2).
MAX_LINKS_PER_DTB = 100_000
