"""IOMMU_CAP_CACHE_COHERENCY for every link at once, under one rule: the
target kernel's, or an explicit one (docs/rule.md)."""
import numpy as np
from numba import njit, types

from .codes import (ARM_SMMU, ARM_SMMU_V3, ATTACHED, BROKEN, BROKEN_BRIDGE_COHERENT, CAPABLE,
                    DEV_DMA_COHERENT, DEV_DMA_NON_COHERENT, DEV_DMA_NOT_SUPPORTED,
                    LEGACY_TRUE, N_NO_CHECK, N_NONE, NO_CAPABLE, NO_CHECK,
                    NO_IOMMU, NOT_A_DEVICE, PCI_DT_CHILD, PLATFORM, QCOM_IOMMU,
                    RESCUED_BY_DEVICE, UNSUPPORTED_IOMMU,
                    WALK_OR_DEVICE)
from .config import NJIT
from .dt import B_RO, I8, I8_RO, i64
from .link_rows import LINKS_RO

@njit(types.none(LINKS_RO, I8_RO, B_RO, i64, I8, I8, I8), **NJIT)
def _verdicts(links, role, coherent, rule, attr, out, note):
    for k in range(links.shape[0]):
        link = links[k]
        kind = link["kind"]
        if kind == PLATFORM or kind == PCI_DT_CHILD:
            attr[k] = DEV_DMA_COHERENT if coherent[link["master"]] else DEV_DMA_NON_COHERENT
        else:
            attr[k] = DEV_DMA_NOT_SUPPORTED
        provider = link["provider"]
        if not link["enabled"]:
            out[k] = NOT_A_DEVICE
            continue
        if link["attach"] != ATTACHED or provider < 0:
            out[k] = NO_IOMMU
            continue
        r = role[provider]
        if rule == NO_CHECK:
            if ARM_SMMU <= r <= NO_CAPABLE:
                out[k] = CAPABLE
                note[k] = N_NO_CHECK
            else:
                out[k] = UNSUPPORTED_IOMMU      # no driver binds it
        elif r != ARM_SMMU and r != ARM_SMMU_V3 and r != QCOM_IOMMU:
            out[k] = UNSUPPORTED_IOMMU          # no .capable op, or unknown
        elif r == QCOM_IOMMU or rule == LEGACY_TRUE or coherent[provider]:
            out[k] = CAPABLE
        elif rule == WALK_OR_DEVICE and r == ARM_SMMU and attr[k] == DEV_DMA_COHERENT:
            out[k] = RESCUED_BY_DEVICE
        elif link["bridge"] >= 0 and coherent[link["bridge"]]:
            out[k] = BROKEN_BRIDGE_COHERENT
        else:
            out[k] = BROKEN


def verdicts(links, role, coherent, rule):
    """(dma_attr, verdict, note) of every link (docs/rule.md: verdicts).

    dma_attr: masters with a DT node answer of_dma_is_coherent(node);
    devices found on a bus (PCI without a node, fsl-mc objects, contexts)
    have no fwnode: DEV_DMA_NOT_SUPPORTED.  note (codes.NOTES): where the
    rule rather than the DT decided: under NO_CHECK (before v5.19) VFIO
    asks nothing, so every device with an IOMMU whose driver binds it is
    capable."""
    n = links.shape[0]
    attr = np.empty(n, dtype=np.int8)
    out = np.empty(n, dtype=np.int8)
    note = np.full(n, N_NONE, dtype=np.int8)
    _verdicts(links, role, coherent, rule, attr, out, note)
    return attr, out, note
