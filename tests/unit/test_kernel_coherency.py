"""of_dma_is_coherent()'s walk (kernels/coherency.py), a case
tests/unit/test_kernel_decisions.py leaves open, with the verdict read from
the kernel's C source (Debian's linux-source-6.12 6.12.118,
drivers/of/address.c; the same in 6.1 and 7.2).

__of_get_dma_parent() (:602): when "interconnect-names" holds "dma-mem"
but of_parse_phandle_with_args() of "interconnects" fails (:611, -ENOENT
when there is no such property), the DMA parent is the tree parent (:615).
of_dma_is_coherent() (:1005) then walks up the tree: nobody says
dma-coherent, dma_default_coherent is false on arm64.
"""
from snippets import soc, sweep_dts, verdict


def test_dma_mem_named_without_interconnects(tmp_path):
    """The SMMU names a dma-mem interconnect but has no "interconnects":
    its soc parent decides (not coherent), so its master is broken.  A
    dma-coherent interconnect elsewhere in the DTB, named by the DTB's
    last property (no labels: no __symbols__ after it), is no DMA parent."""
    nodes = ('\t\tiommu@5000000 { compatible = "arm,mmu-500"; reg = <0 0x5000000 0 0x10000>;'
             ' #global-interrupts = <1>; #iommu-cells = <1>; phandle = <0x10>;'
             ' interconnect-names = "dma-mem"; };\n'
             '\t\tdev@1 { compatible = "test,dev"; iommus = <0x10 1>; };\n'
             '\t\tinterconnect@2 { compatible = "test,noc"; #interconnect-cells = <0>;'
             ' dma-coherent; phandle = <0x20>; };\n'
             '\t\tuser@3 { compatible = "test,dev"; interconnects = <0x20>; };\n')
    assert verdict(sweep_dts(tmp_path, soc(nodes)), "/soc/dev@1") == "broken"
