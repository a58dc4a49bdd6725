"""Small DTBs built from DTS snippets with the system dtc, and swept."""
import subprocess
from pathlib import Path

from auditor.sweep import document, evaluate
from corpus.flat import flatten

HEADER = """/dts-v1/;
/ {
	compatible = "test,board", "test,soc";
	#address-cells = <2>;
	#size-cells = <2>;
"""


def compile_dts(tmp_path, name, body, header=HEADER):
    """Compile `body` (the inside of the root node) to tmp_path/name.dtb."""
    src = Path(tmp_path) / f"{name}.dts"
    src.write_text(header + body + "\n};\n")
    out = Path(tmp_path) / f"{name}.dtb"
    subprocess.run(["dtc", "-q", "-@", "-I", "dts", "-O", "dtb", "-o", str(out), str(src)],
                   check=True)
    return out


def sweep_dts(tmp_path, body, rule="walk-or-device", legacy_dt_bindings=True, name="board"):
    """The sweep document of one snippet."""
    dtb = compile_dts(tmp_path, name, body)
    flat = flatten([dtb], dtb.parent, cache=False)
    return document(evaluate(flat, rule, legacy_dt_bindings), None, legacy_dt_bindings)


def by_master(doc):
    """master_path -> the link records of that master."""
    out = {}
    for r in doc["links"]:
        out.setdefault(r["master_path"], []).append(r)
    return out


def verdict(doc, master):
    (r,) = by_master(doc)[master]
    return r["verdict"]


SMMU = """
		smmu: iommu@5000000 {{
			compatible = {compatible};
			reg = <0 0x5000000 0 0x10000>;
			#global-interrupts = <1>;
			#iommu-cells = <1>;
			{extra}
		}};
"""


def soc(*nodes, bus_extra=""):
    """A `soc` simple-bus holding `nodes` (DTS text)."""
    return ("\tsoc {\n\t\tcompatible = \"simple-bus\";\n\t\t#address-cells = <2>;\n"
            "\t\t#size-cells = <2>;\n\t\tranges;\n" + bus_extra + "\n" + "".join(nodes) + "\t};\n")


def smmu(compatible='"arm,mmu-500"', extra="", label="smmu", unit="5000000"):
    return SMMU.format(compatible=compatible, extra=extra).replace(
        "smmu: iommu@5000000", f"{label}: iommu@{unit}")


def device(name, extra, iommus="<&smmu 0x10>"):
    return f"\t\t{name} {{\n\t\t\tcompatible = \"test,dev\";\n\t\t\tiommus = {iommus};\n\t\t\t{extra}\n\t\t}};\n"
