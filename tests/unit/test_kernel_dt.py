"""The device-tree readers the rule shares (kernels/dt.py) and device
availability (kernels/coherency.py) at their edges, with the verdict read
from the kernel's C source (Debian's linux-source-6.12 6.12.118; file,
function and line named in each case), not from kernels/.

Snippets are judged through kernels.evaluate (snippets.sweep_dts); the
master is a non-coherent device behind a non-coherent arm-smmu unless said
otherwise, so it is "capable" exactly when the SMMU is coherent.
"""
import pytest

from kernels import codes
from snippets import by_master, device, smmu, soc, sweep_dts

DEV = "/soc/dev@1"
PLAIN_DEV = device("dev@1", "dma-noncoherent;")
SMMU_PATH = "/soc/iommu@5000000"


def the_link(doc, master=DEV):
    (r,) = by_master(doc)[master]
    return r


@pytest.mark.parametrize("status, available", [
    ('"ok", "x"', True), ('"okay", "x"', True), ('"ok"', True), ('"okx"', False),
    ('"o"', False), ('"disabled", "okay"', False),
])
def test_status_is_its_first_string(tmp_path, status, available):
    """__of_device_is_available() (drivers/of/base.c :459) compares the
    status value with strcmp() (__of_device_is_status :441): the first
    string decides, whatever follows its NUL."""
    node = smmu(extra=f"status = {status};")
    r = the_link(sweep_dts(tmp_path, soc(node, PLAIN_DEV)))
    assert (r["verdict"], r["attach"]) == (
        ("broken", codes.ATTACHED) if available else ("no-iommu", codes.A_PROVIDER_DISABLED))


@pytest.mark.parametrize("iommus, note", [
    ("<&smmu 1>, [00 00]", codes.N_NONE),
    ("<&smmu 1>, [00 00 00 00 00 00]", codes.N_TRUNCATED),
])
def test_phandle_list_ends_on_a_whole_cell(tmp_path, iommus, note):
    """of_phandle_iterator_init() (drivers/of/base.c 6.12 :1184) sets the
    list's end at size / sizeof(phandle): the bytes of a last, partial
    cell are no entry; a whole cell of 0 is an empty entry, which ends the
    list (of_iommu_configure_dev, drivers/iommu/of_iommu.c :70)."""
    r = the_link(sweep_dts(tmp_path, soc(smmu(), device("dev@1", "", iommus))))
    assert (r["provider_path"], r["verdict"], r["note"]) == (SMMU_PATH, "broken", note)


def test_disabled_bus_under_the_root(tmp_path):
    """of_platform_populate() (drivers/of/platform.c 6.12 :454) creates the
    root's children and goes down only into available buses
    (of_platform_bus_create :335: of_platform_device_create_pdata :171
    refuses an unavailable node, and nothing below it is created): an SMMU in a
    disabled top-level bus is no device, so a master outside it gets no
    IOMMU."""
    body = (soc(smmu(), bus_extra='\t\tstatus = "disabled";\n')
            + '\tdev@1 { compatible = "test,dev"; iommus = <&smmu 1>; };\n')
    r = the_link(sweep_dts(tmp_path, body), "/dev@1")
    assert (r["provider_path"], r["verdict"], r["attach"]) == \
        (SMMU_PATH, "no-iommu", codes.A_NOT_PROBED)


def test_first_of_duplicate_properties_is_read(tmp_path):
    """populate_properties() (drivers/of/fdt.c 6.12 :93) links a node's
    properties in their DTB order and __of_find_property() (drivers/of/base.c
    :193) returns the first of a name: a later duplicate (dtc -f writes one)
    is never read, even when the first is the DTB's very first property.
    Here the root's #stream-id-cells = <2> makes the root's mmu-masters entry
    <root 5 6>, and the next entry is ldev's (__find_legacy_master_phandle,
    arm-smmu.c :130, reads each target's count with of_phandle_iterator_next)."""
    from snippets import HEADER, compile_dts, document, evaluate_dtb
    header = HEADER.replace("/ {\n", "/ {\n\t#stream-id-cells = <2>;\n").replace(
        "#size-cells = <2>;\n", "#size-cells = <2>;\n\t#stream-id-cells = <0>;\n"
        "\tphandle = <0x77>;\n", 1)
    ldev = ('\t\tldev@2 { compatible = "test,dev"; #stream-id-cells = <1>;'
            ' #stream-id-cells = <3>; phandle = <0x78>; };\n')
    body = soc(smmu(extra="mmu-masters = <0x77 5 6>, <0x78 1>, <0x78 2>;"), ldev)
    doc = document(evaluate_dtb(compile_dts(tmp_path, "dup", body, header=header, force=True)))
    r = the_link(doc, "/soc/ldev@2")
    assert (r["provider_path"], r["verdict"], r["diagnostic"]) == (SMMU_PATH, "broken", None)
    assert all(r["diagnostic"] is None for r in doc["links"])


def test_more_properties_than_the_index_numbers():
    """A corpus of more properties than int32 numbers (which the index
    uses) is refused with one line naming it and the count, before any
    work (a view of 2**31 properties, no memory behind it)."""
    from types import SimpleNamespace

    import numpy as np

    from kernels.dt import tree_of
    n = 2 ** 31
    flat = SimpleNamespace(root="/corpus", prop_node=np.broadcast_to(np.int32(0), (n,)))
    with pytest.raises(ValueError) as e:
        tree_of(flat)
    assert str(e.value) == f"/corpus: error: {n} properties, more than the rule's index holds"
