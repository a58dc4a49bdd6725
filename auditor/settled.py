"""SMMUs whose coherency upstream settled, as data.

Each entry names one SMMU node of one SoC (the SoC's root `compatible`, the
node's `name@unit-address`, its label as the upstream .dtsi writes it) and
what upstream decided about the hardware, with the commit that says so:

  coherent        the IDR0 register and the boards tried agree: the SMMU
                  walks its tables coherently (`dma-coherent` is right)
  noncoherent     upstream took `dma-coherent` back: not coherent on every
                  board, whatever one board's register says (a patch adding
                  it is refused, and a refusal by VFIO is correct)
  register-wrong  the hardware is coherent but its IDR0 register says not
                  (the integration tied the signal off wrongly): the DT
                  overriding the register is right

Commit ids are upstream's (torvalds/linux), read from the maintainers'
"Applied" mails and the mainline shortlogs; None where none was found.
The table is checked when this module is imported: a malformed entry is a
bug of the project, not of the user's input.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

VERDICTS = ("coherent", "noncoherent", "register-wrong")


@dataclass(frozen=True)
class Settled:
    soc: str                  # the SoC's root compatible, e.g. "qcom,sdm845"
    node: str                 # "iommu@15000000"
    label: str | None         # "apps_smmu"
    verdict: str              # VERDICTS
    subject: str | None       # the commit's subject line
    release: str | None       # the first release with it, "v6.13"; None when not known
    commit: str | None        # 40 hex digits, upstream
    note: str = ""

    @property
    def reference(self) -> str:
        """`12-char-sha ("subject"), vX.Y` or what of it is known."""
        words = []
        if self.commit:
            words.append(self.commit[:12])
        if self.subject:
            words.append(f'("{self.subject}")')
        if self.release:
            words.append(f"in {self.release}")
        return " ".join(words) or "(no commit identified)"


_AFFIRM = "arm64: dts: qcom: {}: Affirm IDR0.CCTW on apps_smmu"
# v6.13: the apps SMMU of eleven SoCs marked coherent because IDR0.CTTW says so.
_AFFIRMED = {
    "qdu1000": "7a52db70c8c5f4e2f6cf404b6cac10beae43f2bd",
    "sc7180": "3d89c1984000171665d8091c7fdf20f9cf814786",
    "sc8180x": "57222f077bd05b6ef8c5b2998400122f3c202e51",
    "sc8280xp": "2b73b83cb82aefb6c907ea91a9977641bbcae683",
    "sdm670": "e009473c5f5d62d4e0f093a3126cf98e319d8cd0",
    "sm6350": "7abe72765d9f6a900a1c2b6c12b9dd70010a8b0b",
    "sm8150": "05bd9923d15e8508cd0fa4f3d03437df1a9362aa",
    "sm8350": "051ff563cb3d87c631c8997d9b3636a7b59a12b9",
    "sm8450": "c9ab6652769d331e39f7489241e8b3427f7e8608",
    "x1e80100": "5207d9c75f18db46ce42074f6585c7ca8e4aca75",
}
SDM845_AFFIRM = "6b31a9744b8726c69bb0af290f8475a368a4b805"

SETTLED = tuple(
    [Settled(f"qcom,{soc}", "iommu@15000000", "apps_smmu", "coherent",
             _AFFIRM.format(soc), "v6.13", sha) for soc, sha in _AFFIRMED.items()]
    + [
        Settled("qcom,sdm845", "iommu@15000000", "apps_smmu", "noncoherent",
                'Revert "arm64: dts: qcom: sdm845: Affirm IDR0.CCTW on apps_smmu"', "v6.14",
                "f00db31d235946853fb430de8c6aa1295efc8353",
                f"CVE-2025-22012: {SDM845_AFFIRM[:12]} (v6.13) made it coherent; lock-ups "
                f"and resets on the Lenovo Yoga C630 while the Dragonboard 845c was fine: "
                f"not coherent on every board"),
        Settled("qcom,sm8250", "iommu@15000000", "apps_smmu", "coherent",
                "arm64: dts: qcom: sm8250: Mark SMMUs as DMA coherent", "v6.6",
                "4cb19bd7c6329c4702f92c6dd4e7c02eb903ca13"),
        Settled("qcom,sm8250", "iommu@3da0000", "adreno_smmu", "coherent",
                "arm64: dts: qcom: sm8250: Mark SMMUs as DMA coherent", "v6.6",
                "4cb19bd7c6329c4702f92c6dd4e7c02eb903ca13"),
        Settled("qcom,sc7280", "iommu@3da0000", "adreno_smmu", "coherent",
                "arm64: dts: qcom: sc7280: Mark Adreno SMMU as DMA coherent", "v6.8",
                "31edad478534186a2718be9206ce7b19f2735f6e"),
        Settled("qcom,sm8550", "iommu@15000000", "apps_smmu", "coherent",
                "arm64: dts: qcom: sm8550: Mark APPS SMMU as dma-coherent", "v6.7",
                "93395f9a8d52b89868d75e278adaf002f99dec22",
                "applied for v6.7 (September 2023); issue 18 says v6.10"),
        Settled("qcom,sa8775p", "iommu@15000000", "apps_smmu", "coherent",
                "arm64: dts: qcom: sa8775p: Mark APPS and PCIe SMMUs as DMA coherent", "v6.12",
                "421688265d7f5d3ff4211982e7231765378bb64f"),
        Settled("qcom,sa8775p", "iommu@15200000", "pcie_smmu", "coherent",
                "arm64: dts: qcom: sa8775p: Mark APPS and PCIe SMMUs as DMA coherent", "v6.12",
                "421688265d7f5d3ff4211982e7231765378bb64f"),
        # The seed thread: "[RFC PATCH] arm64: dts: ls1028a: mark ARM SMMU as DMA
        # coherent" (Vladimir Oltean, 2022-12-08,
        # <20221208151514.3840720-1-vladimir.oltean@nxp.com>), Robin Murphy's answers.
        Settled("fsl,ls1028a", "iommu@5000000", "smmu", "register-wrong", None, None, None,
                "IDR0.CTTW says non-coherent (cfg_cttw tied off wrongly at integration) "
                "while the hardware is coherent (the 2022 RFC thread); dma-coherent is in "
                "Debian's 6.12 .dtsi, not in 6.1's: the commit was not identified"),
        Settled("fsl,ls1088a", "iommu@5000000", "smmu", "register-wrong", None, None, None,
                "the register is wrong as on LS1028A, the hardware coherent; dma-coherent "
                "is in Debian's 6.12 .dtsi, not in 6.1's: the commit was not identified"),
    ])

_SOC = re.compile(r"^[a-z0-9-]+,[a-z0-9-]+$")
_NODE = re.compile(r"^[a-z][a-z0-9,._+-]*@[0-9a-f]+$")
_RELEASE = re.compile(r"^v\d+\.\d+$")
_SHA = re.compile(r"^[0-9a-f]{40}$")


def _require(condition, message):
    # Not assert: the table is checked under python -O too.
    if not condition:
        raise ValueError(message)


def _check(table):
    seen = set()
    for e in table:
        where = f"settled {e.soc} {e.node}"
        _require(_SOC.match(e.soc), f"{where}: soc is not a compatible")
        _require(_NODE.match(e.node), f"{where}: node is not name@unit-address")
        _require(e.verdict in VERDICTS, f"{where}: verdict {e.verdict!r}")
        _require(e.release is None or _RELEASE.match(e.release), f"{where}: release "
                 f"{e.release!r}")
        _require(e.commit is None or _SHA.match(e.commit), f"{where}: commit {e.commit!r}")
        _require(e.subject or e.note, f"{where}: neither a subject nor a note")
        _require((e.soc, e.node) not in seen, f"{where}: twice")
        seen.add((e.soc, e.node))


_check(SETTLED)
_BY_NODE = {(e.soc, e.node): e for e in SETTLED}


def unit_name(name: str) -> str:
    """`iommu@0x15000000` or `iommu@015000000` as the table writes it."""
    base, _, unit = name.partition("@")
    unit = unit.lower().removeprefix("0x").lstrip("0") or "0"
    return f"{base}@{unit}"


def settled_for(compatibles, node_name) -> Settled | None:
    """What upstream settled about the SMMU node `node_name` of a board whose
    root compatible is `compatibles` (any of them may name the SoC)."""
    node = unit_name(node_name)
    for soc in reversed(tuple(compatibles)):
        entry = _BY_NODE.get((soc, node))
        if entry is not None:
            return entry
    return None
