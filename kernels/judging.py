"""The question a command asks of every DTB: one Judging value, built once
where the command line is read (auditor/cli.py) and handed unchanged to the
sweep, `explain`, the history's Dask workers and `patch --verify`.

Plain Python: the CLI builds it without loading numba.
"""
from __future__ import annotations

from dataclasses import dataclass

from .codes import Rule
from .target import TargetError, TargetKernel


@dataclass(frozen=True)
class Judging:
    """How DTBs are judged (docs/target-kernel.md).

    target: the kernel whose decisions are reproduced (--target-kernel);
    None: each tree's own version (target_of()).
    rule: arm-smmu's capable() rule instead of the target's (--rule, a what-if).
    legacy_dt_bindings: CONFIG_ARM_SMMU_LEGACY_DT_BINDINGS (mmu-masters)."""
    target: TargetKernel | None = None
    rule: Rule | None = None
    legacy_dt_bindings: bool = True

    def target_of(self, version: str | None = None, where: str = "the tree") -> TargetKernel:
        """The target kernel of a tree whose Makefile says `version`: the given
        target, else that version, else the newest modelled (assumed).
        TargetError names `where` the version came from."""
        if self.target is not None:
            return self.target
        if version:
            return TargetKernel.parse(version, where=f"{where}: its Makefile's version")
        return TargetKernel.newest()

    def rule_under(self, target: TargetKernel) -> Rule:
        """The rule the links are judged by under `target`."""
        return self.rule or target.rule


__all__ = ["Judging", "Rule", "TargetError", "TargetKernel"]
