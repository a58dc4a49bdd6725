"""Small DTBs built from DTS snippets with the system dtc, and judged by the
kernels (kernels/evaluate.py) under a target kernel.

sweep_dts() returns {"links": [one dict per link], "problems": [...],
"ev": the Evaluation}; the link dicts carry names (codes.py), not the
report's texts, so these tests pin the kernels' decisions, not a format.
"""
import subprocess
from pathlib import Path

from corpus.flat import flatten
from kernels import codes
from kernels.evaluate import diagnostic_text, evaluate, problem_text
from kernels.judging import Judging
from kernels.target import TargetKernel

# The target of a snippet unless a test names one: the tree the rules of
# SPEC sections 1-4 were first written from.
DEFAULT_TARGET = "6.12"

HEADER = """/dts-v1/;
/ {
	compatible = "test,board", "test,soc";
	#address-cells = <2>;
	#size-cells = <2>;
"""


def compile_dts(tmp_path, name, body, header=HEADER, force=False):
    """Compile `body` (the inside of the root node) to tmp_path/name.dtb.
    force: write the DTB despite dtc's errors (duplicate phandles)."""
    src = Path(tmp_path) / f"{name}.dts"
    src.write_text(header + body + "\n};\n")
    out = Path(tmp_path) / f"{name}.dtb"
    subprocess.run(["dtc", "-q", "-@", *(["-f"] if force else []), "-I", "dts", "-O", "dtb",
                    "-o", str(out), str(src)], check=not force)
    assert out.exists(), f"{src}: dtc wrote nothing"
    return out


def evaluate_dtb(dtb, target=DEFAULT_TARGET, rule=None, legacy_dt_bindings=True):
    flat = flatten([dtb], dtb.parent, cache=False)
    return evaluate(flat, TargetKernel.parse(target),
                    Judging(rule=codes.Rule(rule) if rule else None,
                            legacy_dt_bindings=legacy_dt_bindings))


def sweep_dts(tmp_path, body, rule=None, legacy_dt_bindings=True, name="board",
              target=DEFAULT_TARGET, force=False):
    """The links and problems of one snippet under `target` (and `rule`, an
    override of the target's)."""
    dtb = compile_dts(tmp_path, name, body, force=force)
    return document(evaluate_dtb(dtb, target, rule, legacy_dt_bindings))


def document(ev):
    flat = ev.flat
    path = _paths(flat)
    records = []
    names = ev.links.dtype.names
    for k, values in enumerate(ev.links.tolist()):
        row = dict(zip(names, values))
        d, provider, master, via = row["dtb"], row["provider"], row["master"], row["via"]
        kind, bridge, bridge_fn = row["kind"], row["bridge"], row["bridge_function"]
        compatible = flat.root_compatible(d)
        role = int(ev.role[provider]) if provider >= 0 else codes.ROLE_NONE
        records.append({
            "dtb": flat.paths[d],
            "soc": compatible[-1] if compatible else None,
            "provider_path": path(provider),
            "driver": codes.DRIVER_NAMES.get(role, "unknown") if provider >= 0 else None,
            "provider_coherent": bool(ev.coherent[provider]) if provider >= 0 else False,
            "link": codes.VIA_NAMES[via],
            "master_path": path(master),
            "master_kind": codes.KIND_NAMES[kind],
            "master_enabled": bool(row["enabled"]),
            "master_dma_attr": codes.DMA_ATTR_NAMES[ev.dma_attr[k]],
            "bridge_path": path(bridge),
            "bridge_coherent": bool(ev.coherent[bridge]) if bridge >= 0 else None,
            "vfio_candidate": codes.KIND_NAMES[kind] in codes.VFIO_KINDS and not bridge_fn,
            "rule": ev.rule.value,
            "verdict": codes.VERDICT_NAMES[ev.verdict[k]],
            "attach": row["attach"],
            "note": row["note"],
            "target_note": int(ev.target_note[k]),
            "placeholder_map": row["note"] == codes.N_PLACEHOLDER,
            "diag": row["diag"],
            "diagnostic": diagnostic_text(ev, k, path),
            "rid": row["rid"],
        })
    problems = [{"dtb": flat.paths[int(r[0])], "node": path(int(r[1])), "code": int(r[2]),
                 "arg": int(r[3]), "other": path(int(r[4])),
                 "message": problem_text(ev, i, path)}
                for i, r in enumerate(ev.problems)]
    return {"links": records, "problems": problems, "ev": ev}


def _paths(flat):
    cache = {}

    def path(i):
        if i < 0:
            return None
        if i not in cache:
            cache[i] = flat.node_path(i)
        return cache[i]
    return path


def by_master(doc):
    """master_path -> the link records of that master."""
    out = {}
    for r in doc["links"]:
        out.setdefault(r["master_path"], []).append(r)
    return out


def verdict(doc, master):
    (r,) = by_master(doc)[master]
    return r["verdict"]


def affected_socs(doc):
    """SoCs with a VFIO candidate refused (SPEC section 4)."""
    return {r["soc"] for r in doc["links"]
            if r["vfio_candidate"] and r["verdict"] in codes.BROKEN_VERDICTS}


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


def reported(doc):
    """The links of a sweep_dts() document as the sweep reports them
    (auditor.sweep.build_sweep: model.Link records, paths and texts made)."""
    from auditor.sweep import build_sweep
    return list(build_sweep(doc["ev"]).links)
