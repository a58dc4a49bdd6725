"""kernels/target.py: the version a sweep judges as, and the decisions of
SPEC section 1.1 on both sides of each boundary."""
import pytest

from kernels.target import TargetError, TargetKernel, version_text


@pytest.mark.parametrize("text, version, given", [
    ("6.12.117", (6, 12, 117), "6.12.117"), ("v7.2", (7, 2, 0), "7.2"),
    ("6.1.0-28-arm64", (6, 1, 0), "6.1.0"), ("5.10", (5, 10, 0), "5.10"),
])
def test_parse(text, version, given):
    t = TargetKernel.parse(text)
    assert (t.version, str(t), t.assumed) == (version, given, False)


@pytest.mark.parametrize("text, message", [
    ("", "'' is not a kernel version (as 6.1, 6.12.117 or 7.2)"),
    ("six", "'six' is not a kernel version (as 6.1, 6.12.117 or 7.2)"),
    ("4.19", "4.19: only kernels from 5.10 to 7.2 are modelled"),
    ("7.3", "7.3: only kernels from 5.10 to 7.2 are modelled"),
    ("8.0.1", "8.0.1: only kernels from 5.10 to 7.2 are modelled"),
])
def test_parse_refuses(text, message):
    with pytest.raises(TargetError) as e:
        TargetKernel.parse(text)
    assert str(e.value) == message


def test_parse_keeps_assumed():
    assert TargetKernel.parse("7.2.13", assumed=True).assumed is True


def test_newest_is_assumed():
    t = TargetKernel.newest()
    assert (t.version, str(t), t.assumed) == ((7, 2, 0), "7.2", True)


@pytest.mark.parametrize("text, rule", [
    ("5.10", "no-check"), ("5.18.19", "no-check"), ("5.19", "legacy-true"),
    ("6.0.19", "legacy-true"), ("6.1", "walk-only"), ("6.1.1", "walk-only"),
    ("6.1.6", "walk-only"),
    ("6.1.7", "walk-or-device"), ("6.1.192", "walk-or-device"), ("6.2", "walk-or-device"),
    ("7.2", "walk-or-device"),
])
def test_rule_by_version(text, rule):
    assert TargetKernel.parse(text).rule == rule


@pytest.mark.parametrize("prop, before, since", [
    ("qcom_binds_msm_iommu_v2", "6.4.16", "6.5"),
    ("pci_disabled_function_unbound", "6.11.11", "6.12"),
    ("map_reads_target_cells", "6.12.117", "7.2"),
    ("dma_noncoherent_honoured", "5.10.223", "6.1"),
    ("vfio_checks_coherency", "5.18.19", "5.19"),
])
def test_boundaries(prop, before, since):
    assert getattr(TargetKernel.parse(before), prop) is False
    assert getattr(TargetKernel.parse(since), prop) is True


def test_binds_and_version_text():
    t = TargetKernel.parse("6.12")
    assert t.binds(None) and t.binds((6, 12, 0)) and not t.binds((7, 2, 0))
    assert version_text((7, 2, 0)) == "7.2" and version_text((6, 12, 117)) == "6.12.117"
