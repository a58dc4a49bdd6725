"""FDT blobs for the parser tests: DTS compiled with the system dtc, and
blobs written token by token (for what dtc would refuse to write)."""
import struct
import subprocess

from kernels import fdt


def dtc(source, version=17):
    """DTB bytes of a DTS snippet, compiled by the system dtc."""
    return subprocess.run(
        ["dtc", "-q", "-I", "dts", "-O", "dtb", "-V", str(version), "-o", "-", "-"],
        input=source.encode(), capture_output=True, check=True,
    ).stdout


# A hand-made blob: header, reservation block, structure block, strings.
def begin(name):
    b = struct.pack(">I", fdt.FDT_BEGIN_NODE) + name + b"\0"
    return b + b"\0" * (-len(b) % 4)


def prop(nameoff, value=b""):
    b = struct.pack(">III", fdt.FDT_PROP, len(value), nameoff) + value
    return b + b"\0" * (-len(b) % 4)


END_NODE = struct.pack(">I", fdt.FDT_END_NODE)
NOP = struct.pack(">I", fdt.FDT_NOP)
END = struct.pack(">I", fdt.FDT_END)


def blob(structure, strings=b"compatible\0", version=17, rsvmap=b"\0" * 16, **header):
    """An FDT with the blocks in dtc's order; header fields may be overridden."""
    hdr = 40 if version >= 17 else 36
    off_rsvmap = hdr + (-hdr % 8)
    off_struct = off_rsvmap + len(rsvmap)
    off_strings = off_struct + len(structure)
    fields = dict(magic=fdt.FDT_MAGIC, totalsize=off_strings + len(strings),
                  off_dt_struct=off_struct, off_dt_strings=off_strings,
                  off_mem_rsvmap=off_rsvmap, version=version, last_comp_version=16,
                  boot_cpuid_phys=0, size_dt_strings=len(strings),
                  size_dt_struct=len(structure))
    fields.update(header)
    names = list(fields)[:10 if version >= 17 else 9]
    head = struct.pack(f">{len(names)}I", *(fields[n] for n in names))
    head += b"\0" * (off_rsvmap - len(head))
    return head + rsvmap + structure + strings


MINIMAL = begin(b"") + prop(0, b"vendor,board\0") + END_NODE + END


def nodes_and_props(fc, d):
    """DTB d as [(path, [(prop name, value bytes)])]."""
    out = []
    for i in range(fc.dtb_node_start[d], fc.dtb_node_start[d + 1]):
        props = [(fc.prop_names[fc.prop_name[p]], fc.prop_value(p))
                 for p in range(fc.node_prop_start[i], fc.node_prop_start[i + 1])]
        out.append((fc.node_path(i), props))
    return out


BOARD = """/dts-v1/;
/memreserve/ 0x80000000 0x1000;
/ {
    compatible = "fsl,ls1028a-rdb", "fsl,ls1028a";
    #address-cells = <2>;
    #size-cells = <2>;
    soc {
        smmu: iommu@5000000 {
            compatible = "arm,mmu-500";
            #iommu-cells = <1>;
        };
        pcie@1f0000000 {
            dma-coherent;
            iommu-map = <0 &smmu 0 1>;
            ethernet@0,0 { reg = <0 0 0 0 0>; };
        };
    };
    gic: interrupt-controller { linux,phandle = <7>; };
};
"""
