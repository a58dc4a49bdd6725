"""Kernel boot logs written from the kernel's own format strings.

The strings and the conditions around them are those of Debian's 6.1,
6.12 and 7.2 sources (docs/bootlog.md quotes them):

  arch/arm64/kernel/setup.c      "Booting Linux on physical CPU 0x%010lx [0x%08x]\\n"
                                 "Machine model: %s\\n"
  init/version-timestamp.c       "Linux version " UTS_RELEASE " (" LINUX_COMPILE_BY "@"
                                 LINUX_COMPILE_HOST ") (" LINUX_COMPILER ") " UTS_VERSION "\\n"
  arm-smmu.c, arm_smmu_device_cfg_probe(), dev_notice():
      "probing hardware configuration...\\n", "SMMUv%d with:\\n",
      "\\tstage 1 translation\\n", "\\tstage 2 translation\\n", "\\tnested translation\\n",
      if (cttw_fw || cttw_reg) "\\t%scoherent table walk\\n" (cttw_fw ? "" : "non-")
      if (cttw_fw != cttw_reg) "\\t(IDR0.CTTW overridden by FW configuration)\\n"
      "\\tstream matching with %u register groups", "\\t%u context banks (%u stage-2 only)\\n",
      "\\tSupported page sizes: 0x%08lx\\n", "\\tStage-1: %lu-bit VA -> %lu-bit IPA\\n",
      "\\tStage-2: %lu-bit IPA -> %lu-bit PA\\n"
  arm-smmu-v3.c, arm_smmu_device_hw_probe():
      if (!!(reg & IDR0_COHACC) != coherent) dev_warn(
          "IDR0.COHACC overridden by FW configuration (%s)\\n", coherent ? "true" : "false")
          (7.2: str_true_false(coherent), the same words)
      6.1, 6.12: dev_info("ias %lu-bit, oas %lu-bit (features 0x%08x)\\n")
      7.2:       dev_info("oas %lu-bit (features 0x%08x)\\n")

dev_printk's prefix is "<driver> <device>: ", the driver "arm-smmu" or
"arm-smmu-v3", the device of_device_make_bus_id()'s "%llx.%pOFn".
"""
import gzip
import os
from pathlib import Path

VERSIONS = ("6.1", "6.12", "7.2")
RELEASES = {"6.1": ("6.1.0-28-arm64", "#1 SMP Debian 6.1.119-1 (2024-11-22)"),
            "6.12": ("6.12.117-arm64", "#1 SMP Debian 6.12.117-1 (2025-11-01)"),
            "7.2": ("7.2.13-arm64", "#1 SMP PREEMPT_DYNAMIC Debian 7.2.13-1 (2026-09-30)")}


def banner(version):
    release, uts = RELEASES[version]
    return (f"Linux version {release} (debian-kernel@lists.debian.org) "
            f"(aarch64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0, GNU ld (GNU Binutils for "
            f"Debian) 2.44) {uts}")


def arm_smmu(device, fw, reg, stream_matching=True):
    """The lines of arm_smmu_device_cfg_probe() for a DT that says `fw` and
    an IDR0.CTTW that says `reg` (SMMUv2, stages 1 and 2, 48-bit); the
    stream matching line only when IDR0.SMS is set (`stream_matching`)."""
    p = f"arm-smmu {device}: "
    out = [p + "probing hardware configuration...", p + "SMMUv%d with:" % 2,
           p + "\tstage 1 translation", p + "\tstage 2 translation",
           p + "\tnested translation"]
    if fw or reg:
        out.append(p + "\t%scoherent table walk" % ("" if fw else "non-"))
    if fw != reg:
        out.append(p + "\t(IDR0.CTTW overridden by FW configuration)")
    if stream_matching:
        out.append(p + "\tstream matching with %u register groups" % 96)
    out += [p + "\t%u context banks (%u stage-2 only)" % (65, 0),
            p + "\tSupported page sizes: 0x%08lx" % 0x61311000,
            p + "\tStage-1: %lu-bit VA -> %lu-bit IPA" % (48, 36),
            p + "\tStage-2: %lu-bit IPA -> %lu-bit PA" % (36, 36)]
    return out


def arm_smmu_v3(device, fw, reg, version):
    p = f"arm-smmu-v3 {device}: "
    out = []
    if reg != fw:
        out.append(p + "IDR0.COHACC overridden by FW configuration (%s)"
                   % ("true" if fw else "false"))
    if version == "7.2":
        out.append(p + "oas %lu-bit (features 0x%08x)" % (48, 0x1c1fef))
    else:
        out.append(p + "ias %lu-bit, oas %lu-bit (features 0x%08x)" % (48, 48, 0x1c1fef))
    return out


def boot(version, model, smmus, x86=False):
    """The kernel's lines of one boot: `smmus` is [(driver, device, fw, reg)];
    model None: no Machine model line."""
    if x86:
        release = RELEASES[version][0].replace("arm64", "amd64")
        return [f"Linux version {release} (debian-kernel@lists.debian.org) (x86_64-linux-gnu"
                f"-gcc-14) #1 SMP", "Command line: BOOT_IMAGE=/vmlinuz root=/dev/sda1",
                "x86/fpu: Supporting XSAVE feature 0x001: 'x87 floating point registers'",
                "BIOS-provided physical RAM map:",
                "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
                "DMI: QEMU Standard PC (i440FX + PIIX, 1996)"]
    lines = ["Booting Linux on physical CPU 0x%010lx [0x%08x]" % (0, 0x517f803c),
             banner(version), "KASLR enabled"]
    if model is not None:
        lines.append("Machine model: %s" % model)
    lines += ["efi: UEFI not found.", "CPU features: detected: GIC system register CPU "
              "interface", "iommu: Default domain type: Translated"]
    for driver, device, fw, reg in smmus:
        lines += (arm_smmu(device, fw, reg) if driver == "arm-smmu"
                  else arm_smmu_v3(device, fw, reg, version))
    lines.append("Freeing unused kernel memory: 6592K")
    return lines


def dmesg(lines, timestamps=True, prefix="", newline="\n"):
    """Lines as `dmesg` (timestamps) or a serial console (`prefix` before
    each line, CRLF) shows them."""
    out = []
    for k, line in enumerate(lines):
        stamp = "[%5lu.%06lu] " % (k // 100, (k % 100) * 10007) if timestamps else ""
        out.append(prefix + stamp + line)
    return newline.join(out) + newline


def write(path, text, gz=False, cut=None):
    """Write a log: gzip when asked, cut to `cut` bytes when asked."""
    data = text.encode()
    if gz:
        data = gzip.compress(data)
    if cut is not None:
        data = data[:cut]
    path.write_bytes(data)
    return path


# -- the boards the logs are of: DTS of a root with a model and SMMUs --------------------

DTS_HEADER = """/dts-v1/;
/ {{
	{model}
	compatible = {compatible};
	#address-cells = <2>;
	#size-cells = <2>;
"""


def dts_header(model, *compatible):
    """The root node's start: `model` (None: no model property) and compatibles."""
    return DTS_HEADER.format(model=f'model = "{model}";' if model else "",
                             compatible=", ".join(f'"{c}"' for c in compatible))


def dts_smmu(label, unit, compatible, coherent):
    """An SMMU node that probes (#global-interrupts, #iommu-cells), dma-coherent or not."""
    return (f"\t\t{label}: iommu@{unit} {{\n\t\t\tcompatible = {compatible};\n"
            f"\t\t\treg = <0 0x{unit} 0 0x10000>;\n\t\t\t#global-interrupts = <1>;\n"
            f"\t\t\t#iommu-cells = <1>;\n" + ("\t\t\tdma-coherent;\n" if coherent else "")
            + "\t\t};\n")


def dts_soc(*nodes):
    """A simple-bus soc@0 holding `nodes`."""
    return ("\tsoc@0 {\n\t\tcompatible = \"simple-bus\";\n\t\t#address-cells = <2>;\n"
            "\t\t#size-cells = <2>;\n\t\tranges;\n" + "".join(nodes) + "\t};\n")


V3_DTSI = """\
// SPDX-License-Identifier: GPL-2.0
/ {
	compatible = "acme,v3";
	#address-cells = <2>;
	#size-cells = <2>;

	soc@0 {
		compatible = "simple-bus";
		#address-cells = <2>;
		#size-cells = <2>;
		ranges;

		smmu: iommu@2b400000 {
			compatible = "arm,smmu-v3";
			reg = <0 0x2b400000 0 0x100000>;
			#iommu-cells = <1>;
%s		};
	};
};
"""


def v3_board_tree(root, coherent):
    """A mini kernel tree (tests/minikernel.py, 6.1.192) with one more board,
    "ACME v3 board", whose arm-smmu-v3 at 2b400000 is dma-coherent or not."""
    from minikernel import add_board, make_minikernel
    tree = make_minikernel(root)
    add_board(tree, "v3", V3_DTSI % ("\t\t\tdma-coherent;\n" if coherent else ""), "v3-board",
              "ACME v3 board", ("acme,v3-board", "acme,v3"))
    return tree


def compile_boards(folder, boards):
    """Compile {name: (header, body)} into folder/name.dtb (a name may hold a
    subfolder), leaving only the DTBs."""
    from snippets import compile_dts
    for name, (head, body) in boards.items():
        where = Path(folder) / os.path.dirname(name)
        where.mkdir(exist_ok=True)
        compile_dts(where, os.path.basename(name), body, header=head)
        (where / f"{os.path.basename(name)}.dts").unlink()
    return folder
