"""Snippet corpora: folders of small DTBs, built with dtc from DTS, that
together hold one case of everything a report shows (the golden files,
the report, SARIF and CLI tests sweep them).

One SoC per case, named for it (the last root `compatible`):

  acme,plat     a non-coherent arm,mmu-500 with a platform device that is
                broken, one that is rescued-by-device (dma-coherent) and one
                that is disabled (not-a-device); two boards
  acme,pci      an ECAM host bridge, dma-coherent, mapped to a non-coherent
                SMMU: its discovered devices broken-bridge-coherent, a
                function node rescued-by-device
  acme,mc       an LS1088A-like fsl-mc node, dma-coherent, with the
                placeholder map `<0 &smmu 0 0>` (broken-bridge-coherent)
  acme,noirq    an arm,mmu-500 without #global-interrupts: does not probe,
                its master no-iommu
  acme,rk       a rockchip,iommu (no .capable op): unsupported-iommu
  acme,fine     a dma-coherent SMMU: capable, never affected
  acme,diag     a master whose `iommus` phandle points nowhere (a diagnostic)
  evil\\nsoc..  `compatible` strings and a SMMU node name with a newline and
                an ESC byte (escaping in every human format)
  broken.dtb    not a device tree (a parse error, and no SoC)

`snippet_corpus(folder, version)` writes the corpus of one "version":
"old" is the above; "new" fixes acme,pci (its SMMU gains dma-coherent),
breaks acme,fine (it loses it), drops the board plat-mini and adds
mc-qds, so that `diff` and `history` have something of every kind.
"""
import subprocess
from pathlib import Path

from snippets import compile_dts

VERSIONS = ("old", "new")
# The bytes the evil SoC's node name gets in place of EVIL_MARK: same
# length, so the blob stays valid (dtc refuses such names in the source).
EVIL_MARK = b"QQQQ"
EVIL_BYTES = b"\n\x1b[m"


def board_header(*compatible, extra=""):
    return ("/dts-v1/;\n/ {\n"
            "\tcompatible = " + ", ".join(f'"{c}"' for c in compatible) + ";\n"
            "\t#address-cells = <2>;\n\t#size-cells = <2>;\n" + extra)


def soc_node(*nodes):
    return ("\tsoc {\n\t\tcompatible = \"simple-bus\";\n\t\t#address-cells = <2>;\n"
            "\t\t#size-cells = <2>;\n\t\tranges;\n\n" + "".join(nodes) + "\t};\n")


def smmu_node(compatible='"arm,mmu-500"', extra="", name="iommu@5000000", irqs=True):
    return (f"\t\tsmmu: {name} {{\n"
            f"\t\t\tcompatible = {compatible};\n"
            "\t\t\treg = <0 0x5000000 0 0x10000>;\n"
            + ("\t\t\t#global-interrupts = <1>;\n" if irqs else "")
            + "\t\t\t#iommu-cells = <1>;\n"
            + (f"\t\t\t{extra}\n" if extra else "")
            + "\t\t};\n")


def device_node(name, extra="", iommus="<&smmu 0x10>"):
    return (f"\t\t{name} {{\n\t\t\tcompatible = \"acme,dev\";\n\t\t\tiommus = {iommus};\n"
            + (f"\t\t\t{extra}\n" if extra else "") + "\t\t};\n")


PCIE = """\
		pcie@1f0000000 {
			compatible = "pci-host-ecam-generic";
			device_type = "pci";
			#address-cells = <3>;
			#size-cells = <2>;
			reg = <0x01 0xf0000000 0x0 0x100000>;
			bus-range = <0x0 0x0>;
			dma-coherent;
			iommu-map = <0 &smmu 0x17 0x80>;
			ethernet@0,0 { compatible = "acme,enetc"; reg = <0x000000 0 0 0 0>; };
		};
"""

FSL_MC = """\
		fsl-mc@80c000000 {
			compatible = "fsl,qoriq-mc";
			reg = <0x8 0x0c000000 0 0x40>;
			dma-coherent;
			iommu-map = <0 &smmu 0 0>;
		};
"""


def boards(version="old"):
    """{dtb name: (header, body)} of one version of the snippet corpus."""
    new = version == "new"
    coherent = "dma-coherent;"
    plat = soc_node(smmu_node(), device_node("dma@1000"), device_node("crypto@2000", coherent),
                device_node("serial@3000", 'status = "disabled";'))
    out = {
        "plat-evk": (board_header("acme,plat-evk", "acme,plat"), plat),
        "pci-rdb": (board_header("acme,pci-rdb", "acme,pci"),
                    soc_node(smmu_node(extra=coherent if new else ""), PCIE)),
        "mc-rdb": (board_header("acme,mc-rdb", "acme,mc"), soc_node(smmu_node(), FSL_MC)),
        "noirq-evk": (board_header("acme,noirq-evk", "acme,noirq"),
                      soc_node(smmu_node(irqs=False), device_node("dma@1000"))),
        "rk-evk": (board_header("acme,rk-evk", "acme,rk"),
                   soc_node(smmu_node('"rockchip,iommu"'), device_node("vpu@1000"))),
        "fine-evk": (board_header("acme,fine-evk", "acme,fine"),
                     soc_node(smmu_node(extra="" if new else coherent), device_node("dma@1000"))),
        "diag-evk": (board_header("acme,diag-evk", "acme,diag"),
                     soc_node(smmu_node(), device_node("dma@1000", iommus="<0x999 1>"))),
        "evil-evk": (board_header("evil,board\\n\\x1b[2J", "evil\\nsoc\\x1b[31m"),
                     soc_node(smmu_node(name=f"iommu-{EVIL_MARK.decode()}@5000000"),
                          device_node("dma@1000"))),
    }
    if not new:
        out["plat-mini"] = (board_header("acme,plat-mini", "acme,plat"), plat)
    else:
        out["mc-qds"] = (board_header("acme,mc-qds", "acme,mc"), soc_node(smmu_node(), FSL_MC))
    return out


def snippet_corpus(folder, version="old"):
    """Write the DTBs of `version` (VERSIONS) into `folder`; returns it.

    The .dts sources are written beside them (dtc's input), and
    `broken.dtb`, which is not a device tree."""
    assert version in VERSIONS, version
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, (header, body) in boards(version).items():
        dtb = compile_dts(folder, name, body, header=header)
        if EVIL_MARK.decode() in body:
            blob = dtb.read_bytes()
            assert blob.count(EVIL_MARK) >= 1
            dtb.write_bytes(blob.replace(EVIL_MARK, EVIL_BYTES))
        (folder / f"{name}.dts").unlink()
    (folder / "broken.dtb").write_bytes(b"\xd0\x0d\xfe\xed" + b"\0" * 4 + b"not a device tree")
    return folder


# Boards for `explain`'s chains, apart from the snippet corpus (whose
# counts the reports' tests pin): a master and an SMMU disabled by an
# ancestor, a master that says dma-noncoherent, an SMMU with two compatible
# strings whose DMA parents loop (dma-mem interconnects); an SMMU with no
# master at all; and a board with no root compatible and no labels.
CHAINS = soc_node(
    "\t\tnoc1: noc@1 { compatible = \"acme,noc\"; #interconnect-cells = <0>;"
    " interconnects = <&noc2>; interconnect-names = \"dma-mem\"; };\n"
    "\t\tnoc2: noc@2 { compatible = \"acme,noc\"; #interconnect-cells = <0>;"
    " interconnects = <&noc1>; interconnect-names = \"dma-mem\"; };\n",
    smmu_node('"acme,chains-smmu", "arm,mmu-500"',
          extra='interconnects = <&noc1>; interconnect-names = "dma-mem";'),
    "\t\tbus@4000 {\n\t\t\tcompatible = \"simple-bus\";\n\t\t\t#address-cells = <2>;\n"
    "\t\t\t#size-cells = <2>;\n\t\t\tranges;\n\t\t\tstatus = \"disabled\";\n"
    "\t\t\tusb@4000 { compatible = \"acme,dev\"; iommus = <&smmu 0x20>; };\n"
    "\t\t\tiommu@4100 { compatible = \"arm,mmu-500\"; #global-interrupts = <1>;"
    " #iommu-cells = <1>; };\n\t\t};\n",
    device_node("gpu@5000", "dma-noncoherent;"))


def explain_boards(folder):
    """Write chains.dtb, idle.dtb and bare.dtb into `folder`; returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    compile_dts(folder, "chains", CHAINS,
                header=board_header("acme,chains-evk", "acme,chains-som", "acme,chains"))
    compile_dts(folder, "idle", soc_node(smmu_node()), header=board_header("acme,idle-evk", "acme,idle"))
    bare = folder / "bare.dts"
    bare.write_text("/dts-v1/;\n/ {\n\t#address-cells = <2>;\n\t#size-cells = <2>;\n"
                    + soc_node(smmu_node(), device_node("dma@1000")) + "};\n")
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(folder / "bare.dtb"),
                    str(bare)], check=True)     # no -@: no labels
    for name in ("chains", "idle", "bare"):
        (folder / f"{name}.dts").unlink()
    return folder

def private_cache(folder):
    """A $XDG_CACHE_HOME for a `dtb-audit` subprocess that shares only the
    compiled kernels with the user's cache (kernels/jit.py keeps them there;
    compiling them again for every test would take a minute each)."""
    from kernels.jit import cache_root
    cache = Path(folder)
    (cache / "dtb-audit").mkdir(parents=True)
    shared = cache_root()
    shared.mkdir(parents=True, exist_ok=True)
    (cache / "dtb-audit" / "numba").symlink_to(shared)
    return cache
