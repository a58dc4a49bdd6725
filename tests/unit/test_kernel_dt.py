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
