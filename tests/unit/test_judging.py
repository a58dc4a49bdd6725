"""The one Judging a command asks every DTB (kernels/judging.py): which
kernel's decisions, which rule, which bindings; and the rule's names."""
import pytest

from kernels.codes import RULE_NAMES, WALK_ONLY, Rule
from kernels.judging import Judging
from kernels.target import TargetError, TargetKernel


def test_the_rules_are_named_as_the_documents_name_them():
    assert [r.value for r in Rule] == ["walk-or-device", "walk-only", "legacy-true", "no-check"]
    assert tuple(r.value for r in Rule) == RULE_NAMES
    assert Rule("walk-only") is Rule.WALK_ONLY and Rule.WALK_ONLY.code == WALK_ONLY
    assert f"rule {Rule.LEGACY_TRUE}" == "rule legacy-true"
    with pytest.raises(ValueError):
        Rule("sometimes")


def test_the_target_is_the_given_one_else_the_trees_else_the_newest_assumed():
    given = TargetKernel.parse("6.1.192")
    assert Judging(given).target_of("6.12.117") is given
    assert Judging().target_of("6.12.117") == TargetKernel.parse("6.12.117")
    newest = Judging().target_of(None)
    assert (newest, newest.assumed) == (TargetKernel.newest(), True)


def test_a_makefile_version_that_names_no_kernel_says_where_it_came_from():
    with pytest.raises(TargetError) as why:
        Judging().target_of("99.9", "linux-99.9 (/src/linux)")
    assert str(why.value).startswith("linux-99.9 (/src/linux): its Makefile's version: 99.9: "
                                     "no kernel has this version")


@pytest.mark.parametrize("version, rule", [("5.10", Rule.NO_CHECK), ("6.1", Rule.WALK_ONLY),
                                           ("6.12", Rule.WALK_OR_DEVICE)])
def test_the_rule_is_the_targets_unless_one_is_given(version, rule):
    target = TargetKernel.parse(version)
    assert Judging().rule_under(target) is rule
    assert Judging(rule=Rule.LEGACY_TRUE).rule_under(target) is Rule.LEGACY_TRUE


def test_a_judging_is_a_value():
    """The same question is equal and hashes alike (a Dask task's argument,
    a cache key's part)."""
    a = Judging(TargetKernel.parse("6.1"), Rule.WALK_ONLY, False)
    b = Judging(TargetKernel.parse("6.1"), Rule("walk-only"), False)
    assert a == b and hash(a) == hash(b)
    assert a != Judging(TargetKernel.parse("6.1"), Rule.WALK_ONLY, True)
