"""A small kernel-like tree for tests: what corpus.build reads of a kernel.

The top Makefile (VERSION...), scripts/Makefile.lib with DTC_FLAGS,
scripts/dtc/include-prefixes, a dt-bindings header, and one vendor folder
arch/arm64/boot/dts/acme with four SoCs shaped like the real cases
(SPEC section 6):

  acme,a100  LS1028A-like: the arm,mmu-500 SMMU lacks dma-coherent; a
             dma-coherent ECAM bridge with ENETC-like function nodes
             (rescued-by-device) and room for discovered functions
             (broken-bridge-coherent).  Boards a100-evk, a100-mini.
  acme,a200  LS1088A-like: a dma-coherent fsl-mc node with the placeholder
             map `<0 &smmu 0 0>` (broken-bridge-coherent).  Board a200-rdb.
  acme,a300  like a100, but a board file strips the SMMU of dma-coherent
             on purpose (`/delete-property/ dma-coherent`): never patched.
  acme,a400  SMMU already dma-coherent: never affected.

`coherent` names the SoCs whose SMMU has dma-coherent (as Linux 6.12 has
for LS1028A and LS1088A); the system dtc builds it (no scripts/dtc).
`version` is the top Makefile's (VERSION, PATCHLEVEL, SUBLEVEL): the target
kernel a sweep of the tree judges as.  The default, 6.1.192, is Debian's
6.1 (walk-or-device: 6.1.y has ac9c5e92dd15); (6, 1, 0) would judge as
v6.1.0 (walk-only).
"""
import os
import subprocess

from kerneltree import write_tree

GIC_H = """\
/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _DT_BINDINGS_ARM_GIC_H
#define _DT_BINDINGS_ARM_GIC_H
#define GIC_SPI 0
#define GIC_PPI 1
#define IRQ_TYPE_LEVEL_HIGH 4
#endif
"""

TOP_MAKEFILE = """\
# SPDX-License-Identifier: GPL-2.0
VERSION = {major}
PATCHLEVEL = {minor}
SUBLEVEL = {sublevel}
EXTRAVERSION =
NAME = Mini Kernel
"""

MAKEFILE_LIB = """\
# SPDX-License-Identifier: GPL-2.0
DTC_INCLUDE    := $(srctree)/scripts/dtc/include-prefixes
DTC_FLAGS += -Wno-interrupt_provider
DTC_FLAGS += -Wno-unit_address_vs_reg -Wno-avoid_unnecessary_addr_size
base-dtb-y := $(foreach m, $(multi-dtb-y), $(firstword $(call suffix-search, $m, .dtb, -dtbs)))
"""

VENDOR_MAKEFILE = """\
# SPDX-License-Identifier: GPL-2.0
dtb-$(CONFIG_ARCH_ACME) += a100-evk.dtb a100-mini.dtb
dtb-$(CONFIG_ARCH_ACME) += a200-rdb.dtb
dtb-$(CONFIG_ARCH_ACME) += a300-evk.dtb a300-lite.dtb
dtb-$(CONFIG_ARCH_ACME) += a400-evk.dtb
"""

# The SMMU node of every SoC: written as the LS1028A one is, tabs and all.
SMMU = """\
		smmu: iommu@5000000 {{
			compatible = "arm,mmu-500";
			reg = <0 0x5000000 0 0x800000>;
			#global-interrupts = <2>;
			#iommu-cells = <1>;{coherent}
			stream-match-mask = <0x7c00>;
			/* global fault */
			interrupts = <GIC_SPI 13 IRQ_TYPE_LEVEL_HIGH>,
				     <GIC_SPI 14 IRQ_TYPE_LEVEL_HIGH>,
			/* per context interrupts */
				     <GIC_SPI 146 IRQ_TYPE_LEVEL_HIGH>;
		}};
"""

SOC_HEAD = """\
// SPDX-License-Identifier: (GPL-2.0+ OR MIT)
/*
 * Device Tree Include file for the ACME {name} SoC (test tree).
 */

#include <dt-bindings/interrupt-controller/arm-gic.h>

/ {{
	compatible = "acme,{name}";
	interrupt-parent = <&gic>;
	#address-cells = <2>;
	#size-cells = <2>;

	soc: soc {{
		compatible = "simple-bus";
		#address-cells = <2>;
		#size-cells = <2>;
		ranges;

		gic: interrupt-controller@6000000 {{
			compatible = "arm,gic-v3";
			reg = <0x0 0x06000000 0 0x10000>;
			#interrupt-cells = <3>;
			interrupt-controller;
		}};

"""

ECAM = """\

		pcie@1f0000000 { /* Integrated Endpoint Root Complex */
			compatible = "pci-host-ecam-generic";
			reg = <0x01 0xf0000000 0x0 0x100000>;
			#address-cells = <3>;
			#size-cells = <2>;
			device_type = "pci";
			bus-range = <0x0 0x0>;
			dma-coherent;
			iommu-map = <0 &smmu 0x17 0xe>;
			ranges = <0x82000000 0x1 0xf8000000  0x1 0xf8000000  0x0 0x160000>;

			enetc_port0: ethernet@0,0 {
				compatible = "fsl,enetc";
				reg = <0x000000 0 0 0 0>;
				status = "disabled";
			};

			enetc_port1: ethernet@0,1 {
				compatible = "fsl,enetc";
				reg = <0x000100 0 0 0 0>;
				status = "disabled";
			};
		};
"""

FSL_MC = """\

		fsl_mc: fsl-mc@80c000000 {
			compatible = "fsl,qoriq-mc";
			reg = <0x00000008 0x0c000000 0 0x40>,	 /* MC portal base */
			      <0x00000000 0x08340000 0 0x40000>; /* MC control reg */
			iommu-map = <0 &smmu 0 0>;	/* This is fixed-up by u-boot */
			dma-coherent;
			#address-cells = <3>;
			#size-cells = <1>;
		};
"""

SOC_TAIL = """\
	};
};
"""

BOARD = """\
// SPDX-License-Identifier: (GPL-2.0+ OR MIT)
/*
 * Device Tree file for the ACME {soc} {board} board (test tree).
 */

/dts-v1/;
#include "{soc}.dtsi"

/ {{
	model = "ACME {soc} {board}";
	compatible = "acme,{soc}-{board}", "acme,{soc}";
}};
{extra}"""

ENABLE_ENETC = """
&enetc_port0 {
	status = "okay";
};
"""

REMOVE_COHERENCY = """
&smmu {
	/* the page-table walk is not coherent with this board's firmware */
	/delete-property/ dma-coherent;
};
"""

SOCS = {
    "a100": ECAM, "a200": FSL_MC, "a300": ECAM, "a400": ECAM,
}
BOARDS = {
    ("a100", "evk"): ENABLE_ENETC, ("a100", "mini"): "",
    ("a200", "rdb"): "",
    ("a300", "evk"): ENABLE_ENETC, ("a300", "lite"): ENABLE_ENETC + REMOVE_COHERENCY,
    ("a400", "evk"): ENABLE_ENETC,
}
VENDOR_DIR = "arch/arm64/boot/dts/acme"


def soc_dtsi(name, coherent):
    smmu = SMMU.format(coherent="\n\t\t\tdma-coherent;" if coherent else "")
    return SOC_HEAD.format(name=name) + smmu + SOCS[name] + SOC_TAIL


def make_minikernel(root, version=(6, 1, 192), coherent=("a400",), git=False):
    """Write the tree under `root` and return its path.

    `version`: (major, minor, sublevel) of the top Makefile.  `coherent`:
    SoCs whose SMMU node has dma-coherent.  `git`: make it a git checkout
    with one commit (for `base-commit:`)."""
    root = os.fspath(root)
    major, minor, sublevel = version
    files = {
        "Makefile": TOP_MAKEFILE.format(major=major, minor=minor, sublevel=sublevel),
        "scripts/Makefile.lib": MAKEFILE_LIB,
        "include/dt-bindings/interrupt-controller/arm-gic.h": GIC_H,
        f"{VENDOR_DIR}/Makefile": VENDOR_MAKEFILE,
    }
    for name in SOCS:
        files[f"{VENDOR_DIR}/{name}.dtsi"] = soc_dtsi(name, name in coherent)
    for (soc, board), extra in BOARDS.items():
        files[f"{VENDOR_DIR}/{soc}-{board}.dts"] = BOARD.format(soc=soc, board=board, extra=extra)
    write_tree(root, files)
    if git:
        env = dict(os.environ, GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com",
                   GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.com",
                   GIT_AUTHOR_DATE="2024-01-01T00:00:00Z",
                   GIT_COMMITTER_DATE="2024-01-01T00:00:00Z")
        for cmd in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "mini kernel"]):
            subprocess.run(["git", "-C", root, *cmd], check=True, env=env,
                           capture_output=True)
    return root


def add_board(tree, soc, dtsi, board, model, compatible):
    """One more SoC and board in the tree's vendor folder: `soc`.dtsi holding
    `dtsi`, `board`.dts including it with `model` and `compatible` (strings),
    built by the folder's Makefile."""
    folder = os.path.join(tree, VENDOR_DIR)
    with open(os.path.join(folder, f"{soc}.dtsi"), "w") as f:
        f.write(dtsi)
    compatible = ", ".join(f'"{c}"' for c in compatible)
    with open(os.path.join(folder, f"{board}.dts"), "w") as f:
        f.write(f'/dts-v1/;\n#include "{soc}.dtsi"\n\n/ {{\n\tmodel = "{model}";\n'
                f'\tcompatible = {compatible};\n}};\n')
    with open(os.path.join(folder, "Makefile"), "a") as f:
        f.write(f"dtb-$(CONFIG_ARCH_ACME) += {board}.dtb\n")


def smmu_line(root, soc):
    """1-based line where the SMMU node of `soc` opens in its .dtsi."""
    with open(os.path.join(root, VENDOR_DIR, f"{soc}.dtsi")) as f:
        for n, line in enumerate(f, 1):
            if "smmu: iommu@5000000 {" in line:
                return n
    raise LookupError(soc)


def dependencies(corpus):
    """{dtb: files it was built from} of a corpus built from a tree, as
    `dtb-audit patch` hands them to make_series()."""
    return {e.dtb: corpus.dependencies(e.dtb) for e in corpus.entries}
