"""IOMMU_CAP_CACHE_COHERENCY for every link at once, under one kernel era's rule."""
import numpy as np
from numba import njit

from .config import NJIT
from .links import (ATTACHED, L_ATTACH, L_BRIDGE, L_ENABLED, L_KIND, L_MASTER,
                    L_PROVIDER, PCI_DT_CHILD, PLATFORM)
from .providers import ARM_SMMU, ARM_SMMU_V3, QCOM_IOMMU

RULES = ("walk-or-device", "walk-only", "legacy-true")
WALK_OR_DEVICE, WALK_ONLY, LEGACY_TRUE = range(3)

VERDICTS = ("capable", "rescued-by-device", "broken", "broken-bridge-coherent",
            "no-iommu", "unsupported-iommu", "not-a-device")
CAPABLE, RESCUED_BY_DEVICE, BROKEN, BROKEN_BRIDGE_COHERENT, NO_IOMMU, \
    UNSUPPORTED_IOMMU, NOT_A_DEVICE = range(len(VERDICTS))

# device_get_dma_attr() of the master.
DMA_ATTRS = ("coherent", "non-coherent", "not-supported")
DEV_DMA_COHERENT, DEV_DMA_NON_COHERENT, DEV_DMA_NOT_SUPPORTED = range(3)


@njit(**NJIT)
def dma_attr(links, coherent):
    """Masters with a DT node answer of_dma_is_coherent(node); devices found
    on a bus (PCI without a node, fsl-mc objects, contexts) have no fwnode:
    DEV_DMA_NOT_SUPPORTED."""
    out = np.empty(links.shape[0], dtype=np.int8)
    for k in range(links.shape[0]):
        kind = links[k, L_KIND]
        if kind == PLATFORM or kind == PCI_DT_CHILD:
            out[k] = DEV_DMA_COHERENT if coherent[links[k, L_MASTER]] else DEV_DMA_NON_COHERENT
        else:
            out[k] = DEV_DMA_NOT_SUPPORTED
    return out


@njit(**NJIT)
def verdicts(links, attr, role, coherent, rule):
    """The verdict of every link (../shared/SPEC.md section 4)."""
    out = np.empty(links.shape[0], dtype=np.int8)
    for k in range(links.shape[0]):
        provider = links[k, L_PROVIDER]
        if not links[k, L_ENABLED]:
            out[k] = NOT_A_DEVICE
        elif links[k, L_ATTACH] != ATTACHED or provider < 0:
            out[k] = NO_IOMMU
        else:
            r = role[provider]
            if r != ARM_SMMU and r != ARM_SMMU_V3 and r != QCOM_IOMMU:
                out[k] = UNSUPPORTED_IOMMU      # no .capable op, or unknown
            elif r == QCOM_IOMMU or rule == LEGACY_TRUE or coherent[provider]:
                out[k] = CAPABLE
            elif rule == WALK_OR_DEVICE and r == ARM_SMMU and attr[k] == DEV_DMA_COHERENT:
                out[k] = RESCUED_BY_DEVICE
            elif links[k, L_BRIDGE] >= 0 and coherent[links[k, L_BRIDGE]]:
                out[k] = BROKEN_BRIDGE_COHERENT
            else:
                out[k] = BROKEN
    return out
