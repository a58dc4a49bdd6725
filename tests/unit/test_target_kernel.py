"""kernels/target.py: the version a sweep judges as, and the decisions of
SPEC section 1.1 on both sides of each boundary."""
import pytest

from kernels.codes import Rule
from kernels.target import (NEWEST, QCOM_MSM_IOMMU_V2, TargetError, TargetKernel, newer_warning,
                            version_text)


@pytest.mark.parametrize("text, version, given, rc", [
    ("6.12.117", (6, 12, 117), "6.12.117", 0), ("v7.2", (7, 2, 0), "7.2", 0),
    ("6.1.0-28-arm64", (6, 1, 0), "6.1.0", 0), ("5.10", (5, 10, 0), "5.10", 0),
    # Release candidates, linux-next, and what distributions and builders write.
    ("7.3.0-rc1", (7, 3, 0), "7.3.0-rc1", 1), ("7.3-rc1", (7, 3, 0), "7.3-rc1", 1),
    ("7.3.0-rc1-next-20261201", (7, 3, 0), "7.3.0-rc1-next-20261201", 1),
    ("6.1.0-27-arm64", (6, 1, 0), "6.1.0", 0), ("6.12.117-1~bpo12+1", (6, 12, 117), "6.12.117", 0),
    ("6.1.0-rc7+", (6, 1, 0), "6.1.0-rc7", 7), ("6.1~rc8", (6, 1, 0), "6.1-rc8", 8),
    ("6.12.0-test", (6, 12, 0), "6.12.0", 0), ("7.2.13+", (7, 2, 13), "7.2.13", 0),
    # Outside the versions modelled, either side: still kernels.
    ("4.15-rc2", (4, 15, 0), "4.15-rc2", 2), ("2.6.39", (2, 6, 39), "2.6.39", 0),
    ("8.0", (8, 0, 0), "8.0", 0), ("9.20.1", (9, 20, 1), "9.20.1", 0),
])
def test_parse(text, version, given, rc):
    t = TargetKernel.parse(text)
    assert (t.version, str(t), t.assumed, t.rc) == (version, given, False, rc)
    assert TargetKernel.parse(str(t)) == t          # what reports write reads back the same


@pytest.mark.parametrize("text", [
    "", "six", "6", "6.1.-1", "6.12.x", " 6.1", "6.1 ", "6.1\n", "6.1.0000000000000000000000001",
    "6.1." + "1" * 25, "06.1", "6.01", "6.1.", ".6.1", "6.1-", "v", "6.1.2.3", "6,1",
    "99.9", "10.0", "6.31", "7.1000", None, 6.1,
])
def test_parse_refuses_with_one_line(text):
    with pytest.raises(TargetError) as caught:
        TargetKernel.parse(text)
    assert "\n" not in str(caught.value)


def test_a_version_no_kernel_has_is_refused_and_says_so():
    """Majors more than two beyond the newest modelled (7.2) are no kernel yet."""
    with pytest.raises(TargetError, match=r"^99\.9: no kernel has this version .*7\.2"):
        TargetKernel.parse("99.9")
    assert TargetKernel.parse("9.0").version == (9, 0, 0)


@pytest.mark.parametrize("text, newer", [
    ("7.2", False), ("7.2.13", False), ("7.2-rc3", False), ("7.3-rc1", True), ("8.0", True),
    ("5.4", False),
])
def test_newer_than_modelled_and_its_warning(text, newer):
    t = TargetKernel.parse(text)
    assert t.newer_than_modelled is newer
    warning = newer_warning([t])
    if newer:
        assert warning == (f"target kernel {text} is newer than the newest modelled (7.2): "
                           f"judged with 7.2's decisions")
    else:
        assert warning is None


def test_one_warning_names_every_newer_target_once():
    targets = [TargetKernel.parse(v) for v in ("7.2", "7.3-rc1", "7.3-rc2", "7.3-rc1")]
    assert newer_warning(targets) == ("target kernels 7.3-rc1, 7.3-rc2 are newer than the newest "
                                      "modelled (7.2): judged with 7.2's decisions")


@pytest.mark.parametrize("older", ["5.9", "4.15-rc1", "4.14.336", "3.7", "2.6.39"])
def test_older_than_modelled_asks_nothing(older):
    """VFIO asked nothing before v5.19 (e8ae0e140c05), whatever the version."""
    t = TargetKernel.parse(older)
    assert (t.rule, t.vfio_checks_coherency, t.newer_than_modelled) == (Rule.NO_CHECK, False, False)


@pytest.mark.parametrize("newer", ["7.3-rc1", "7.3.0-rc1-next-20261201", "8.0", "9.1.4"])
def test_newer_than_modelled_gets_the_newest_decisions(newer):
    t, newest = TargetKernel.parse(newer), TargetKernel.newest()
    for prop in ("rule", "vfio_checks_coherency",
                 "pci_disabled_function_unbound", "map_reads_target_cells",
                 "dma_noncoherent_honoured"):
        assert getattr(t, prop) == getattr(newest, prop), prop
    assert t.binds(QCOM_MSM_IOMMU_V2) == newest.binds(QCOM_MSM_IOMMU_V2)


def test_newest_is_assumed():
    t = TargetKernel.newest()
    assert (t.version, str(t), t.assumed) == ((7, 2, 0), "7.2", True)


@pytest.mark.parametrize("text, rule", [
    ("5.10", "no-check"), ("5.18.19", "no-check"), ("5.19", "legacy-true"),
    ("6.0.19", "legacy-true"), ("6.1", "walk-only"), ("6.1.1", "walk-only"),
    # ac9c5e92dd15 reached 6.1.y in 6.1.7 (Debian's changelog, ChangeLog-6.1.7) and
    # mainline in v6.2-rc4.
    ("6.1.2", "walk-only"), ("6.1.6", "walk-only"), ("6.1.7", "walk-or-device"),
    ("6.1.192", "walk-or-device"), ("6.2-rc1", "walk-only"), ("6.2-rc3", "walk-only"),
    ("6.2-rc4", "walk-or-device"), ("6.2", "walk-or-device"), ("6.2.1", "walk-or-device"),
    ("7.2", "walk-or-device"),
])
def test_rule_by_version(text, rule):
    assert TargetKernel.parse(text).rule.value == rule


def test_qcom_iommu_binds_msm_iommu_v2_from_6_5():
    assert not TargetKernel.parse("6.4.16").binds(QCOM_MSM_IOMMU_V2)
    assert TargetKernel.parse("6.5").binds(QCOM_MSM_IOMMU_V2)


@pytest.mark.parametrize("prop, before, since", [
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


def test_the_assumed_newest_reads_back_the_same():
    """What a report writes of the newest modelled target (nothing told
    us the kernel) reads back as that same target."""
    newest = TargetKernel.newest()
    assert str(newest) == version_text(NEWEST)
    assert TargetKernel.parse(str(newest), assumed=True) == newest


@pytest.mark.parametrize("version, text", [((6, 12, 0), "6.12"), ((6, 12, 117), "6.12.117")])
def test_a_target_made_from_its_version_is_named_by_it(version, text):
    assert str(TargetKernel(version)) == text
