"""The version strings a target kernel is read from (kernels/target.py), at
the bounds docs/target-kernel.md gives: a minor above 30 is no kernel (no
major had more than 21), a major more than two beyond the newest modelled
(7.2) is a typo; the message says which bound, and names where the
string came from."""
import pytest

from kernels.judging import Judging
from kernels.target import TargetError, TargetKernel


def test_minor_30_is_read_31_is_not():
    assert TargetKernel.parse("6.30").version == (6, 30, 0)
    with pytest.raises(TargetError) as why:
        TargetKernel.parse("6.31")
    assert str(why.value) == ("6.31: no kernel has this version (majors up to 9, minors up to "
                              "30; the newest modelled is 7.2)")


def test_refusal_names_where_the_string_came_from():
    with pytest.raises(TargetError) as why:
        TargetKernel.parse("six", where="--target-kernel")
    assert str(why.value) == ("--target-kernel: 'six' is not a kernel version (as 6.1, "
                              "6.12.117, 7.3-rc1 or 6.1.0-28-arm64)")


def test_a_trees_version_without_a_source_named_says_the_tree():
    """Judging.target_of() of a Makefile's version names "the tree" when
    the caller names no source."""
    with pytest.raises(TargetError) as why:
        Judging().target_of("99.9")
    assert str(why.value).startswith("the tree: its Makefile's version: 99.9: no kernel has")
