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
from kernels import codes, coherency
from snippets import compile_dts, device, document, evaluate_dtb, smmu, soc, sweep_dts, verdict


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


# of_dma_is_coherent() (drivers/of/address.c 6.12 :1005) tests the node
# itself, then each DMA parent up to and including the root: the first
# `dma-coherent` (:1010) or, from 6.1, `dma-noncoherent` (:1013) decides.
# The root's properties count as any node's, whichever comes first in it.

ROOT_FIRST = "/dts-v1/;\n/ {\n\t%s\n\tcompatible = \"test,board\";\n" \
    "\t#address-cells = <2>;\n\t#size-cells = <2>;\n"


def _board(tmp_path, first_property, body, target="6.12"):
    dtb = compile_dts(tmp_path, "board", body, header=ROOT_FIRST % first_property)
    return document(evaluate_dtb(dtb, target))


def test_root_dma_coherent_as_its_first_property(tmp_path):
    """`dma-coherent` on the root, written before any other property:
    every walk ends there, the SMMU and its master are coherent."""
    doc = _board(tmp_path, "dma-coherent;", soc(smmu(), device("dev@1", "")))
    assert verdict(doc, "/soc/dev@1") == "capable"
    assert [r["provider_coherent"] for r in doc["links"]] == [True]


def test_root_dma_noncoherent_as_its_first_property(tmp_path):
    """`dma-noncoherent` on the root (first property) ends the walk of
    6.12 there: not coherent, decided by the root's property, which
    explain names (not the default past the root)."""
    doc = _board(tmp_path, "dma-noncoherent;", soc(smmu(), device("dev@1", "")))
    ev = doc["ev"]
    master = doc["links"][0]
    assert master["verdict"] == "broken"
    dev = _node(ev.flat, "/soc/dev@1")
    assert not ev.coherent[dev]
    assert ev.coherent_from[dev] == _node(ev.flat, "/")
    assert ev.coherent_why[dev] == coherency.WHY_INHERITED
    assert ev.coherent_why[0] == coherency.WHY_OWN


def test_inherited_coherency_names_the_deciding_ancestor(tmp_path):
    """A master without a property of its own gets its bus's
    `dma-coherent`: inherited from the bus, which decided by itself."""
    doc = sweep_dts(tmp_path, soc(smmu(), device("dev@1", ""), bus_extra="\t\tdma-coherent;\n"))
    ev = doc["ev"]
    dev, bus = _node(ev.flat, "/soc/dev@1"), _node(ev.flat, "/soc")
    assert ev.coherent[dev] and ev.coherent_from[dev] == bus
    assert ev.coherent_why[dev] == coherency.WHY_INHERITED
    assert ev.coherent_why[bus] == coherency.WHY_OWN
    assert verdict(doc, "/soc/dev@1") == "capable"


def test_dma_parent_later_in_the_tree(tmp_path):
    """The SMMU's dma-mem interconnect is a node written after it that
    says dma-coherent (__of_get_dma_parent(), :611): the SMMU inherits
    coherency from that node, which decided by its own property."""
    nodes = ('\t\tiommu@5000000 { compatible = "arm,mmu-500"; reg = <0 0x5000000 0 0x10000>;'
             ' #global-interrupts = <1>; #iommu-cells = <1>; phandle = <0x10>;'
             ' interconnects = <0x20>; interconnect-names = "dma-mem"; };\n'
             '\t\tdev@1 { compatible = "test,dev"; iommus = <0x10 1>; };\n'
             '\t\tnoc@2 { compatible = "test,noc"; #interconnect-cells = <0>;'
             ' dma-coherent; phandle = <0x20>; };\n')
    doc = sweep_dts(tmp_path, soc(nodes))
    ev = doc["ev"]
    iommu, noc = _node(ev.flat, "/soc/iommu@5000000"), _node(ev.flat, "/soc/noc@2")
    assert verdict(doc, "/soc/dev@1") == "capable"
    assert ev.coherent[iommu] and ev.coherent_from[iommu] == noc
    assert ev.coherent_why[iommu] == coherency.WHY_INHERITED
    assert ev.coherent_why[noc] == coherency.WHY_OWN

def test_root_is_its_own_dma_parent(tmp_path):
    """The root names itself as its dma-mem interconnect: every walk
    reaches the root and __of_get_dma_parent() (:602) hands the root back
    forever; the loop is reported once, closed by the root itself."""
    doc = _board(tmp_path, 'interconnect-names = "dma-mem";',
                 "\tinterconnects = <1>;\n\tphandle = <1>;\n\t#interconnect-cells = <0>;\n"
                 + soc(smmu(), device("dev@1", "")))
    assert verdict(doc, "/soc/dev@1") == "broken"
    assert [(p["code"], p["node"], p["other"], p["message"]) for p in doc["problems"]] == [
        (codes.P_DMA_PARENT_LOOP, "/", "/",
         "interconnects: the DMA parents of / loop back to / (dma-mem): "
         "of_dma_is_coherent() would never return; judged not coherent")]


def test_coherent_last_node_after_walks_past_the_root(tmp_path):
    """The DTB's last node (no labels: no __symbols__ after it) is an
    SMMU that says dma-coherent, and the walks of every node before it
    end past the root (not coherent): the SMMU stays coherent."""
    nodes = ('\t\tdev@1 { compatible = "test,dev"; iommus = <0x10 1>; };\n'
             '\t\tiommu@5000000 { compatible = "arm,mmu-500"; reg = <0 0x5000000 0 0x10000>;'
             ' #global-interrupts = <1>; #iommu-cells = <1>; phandle = <0x10>;'
             ' dma-coherent; };\n')
    doc = sweep_dts(tmp_path, soc(nodes))
    assert [(r["provider_coherent"], r["verdict"]) for r in doc["links"]] == [(True, "capable")]


def _node(flat, path):
    (i,) = [i for i in range(len(flat.node_parent)) if flat.node_path(i) == path]
    return i
