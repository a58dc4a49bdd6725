"""The patch series against upstream's answer: v6.13's "Affirm IDR0.CCTW on
apps_smmu" series (eleven Qualcomm SoCs marked coherent because the register
says so and boards were tried; sdm845's was reverted in v6.14 as
CVE-2025-22012).

    python -m bench.upstream_precision [--debian linux-source-6.12]

Sweeps the corpus, writes the series without boot logs, then with one boot
log per v6.13 SoC (a board of that SoC, its apps SMMU's IDR0.CTTW coherent
while the DT lacks dma-coherent, as the v6.13 commits report; written from
the kernel's format strings by tests/bootlogs.py), and prints the precision
and recall of each series against the ten standing v6.13 commits, whether
the reverted sdm845 one was proposed, and the recall of the sweep's affected
list. Everything runs through the CLI, as a user would.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import bootlogs  # noqa: E402  (the log writer the tests use: one way to write a log)

AFFIRMED = ("qdu1000", "sc7180", "sc8180x", "sc8280xp", "sdm670", "sdm845", "sm6350", "sm8150",
            "sm8350", "sm8450", "x1e80100")
REVERTED = {"sdm845"}
DTSI = "arch/arm64/boot/dts/qcom/{}.dtsi"


def cli(*argv):
    proc = subprocess.run([sys.executable, "-m", "auditor.cli", *map(str, argv)], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        sys.exit(f"dtb-audit {' '.join(map(str, argv))}: exit {proc.returncode}\n{proc.stderr}")
    return proc


def proposed(series: Path) -> set[str]:
    """The .dtsi files the series patches (from each patch's diff)."""
    files = set()
    for patch in sorted(series.glob("0*.patch")):
        if patch.name.startswith("0000-"):
            continue
        for line in patch.read_text().splitlines():
            if line.startswith("+++ b/"):
                files.add(line[len("+++ b/"):])
    return files


def figures(name: str, files: set[str]) -> str:
    standing = {DTSI.format(s) for s in AFFIRMED if s not in REVERTED}
    reverted = {DTSI.format(s) for s in REVERTED}
    hits = files & standing
    precision = len(hits) / len(files) if files else 0.0
    return (f"{name}: {len(files)} patches; precision {len(hits)}/{len(files)} = "
            f"{precision:.2f}, recall {len(hits)}/{len(standing)} = "
            f"{len(hits) / len(standing):.2f}; reverted sdm845 proposed: "
            f"{bool(files & reverted)}; outside v6.13: {sorted(files - standing - reverted)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--debian", default="linux-source-6.12")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dtb-audit-precision-"))
    cli("sweep", "--debian", args.debian, "--format", "json", "-o", work / "sweep.json")
    sweep = json.loads((work / "sweep.json").read_text())
    root = Path(sweep["corpus"]["root"])
    affected = {s["soc"] for s in sweep["socs"] if s["affected"]}
    found = [s for s in AFFIRMED if f"qcom,{s}" in affected]
    print(f"sweep ({sweep['target_kernel']}): {len(affected)} SoCs affected; v6.13's SoCs "
          f"among them: {len(found)}/{len(AFFIRMED)} (missing: "
          f"{sorted(set(AFFIRMED) - set(found))})")

    cli("patch", "--sweep", work / "sweep.json", "--debian", args.debian, "--no-recipients",
        "-o", work / "series-dt")
    print(figures("series, DT evidence only", proposed(work / "series-dt")))

    logs = work / "logs"
    logs.mkdir()
    series = args.debian.rsplit("-", 1)[-1]
    version = series if series in bootlogs.VERSIONS else "6.12"
    for soc in AFFIRMED:
        entry = next((s for s in sweep["socs"] if s["soc"] == f"qcom,{soc}"), None)
        if entry is None:
            continue
        board = sorted(entry["boards"])[0]
        model = subprocess.run(["fdtget", str(root / board), "/", "model"], capture_output=True,
                               text=True, check=True).stdout.strip()
        lines = bootlogs.boot(version, model, [("arm-smmu", "15000000.iommu", False, True)])
        bootlogs.write(logs / f"{soc}.log", bootlogs.dmesg(lines))
    cli("patch", "--sweep", work / "sweep.json", "--debian", args.debian, "--no-recipients",
        "--boot-logs", logs, "-o", work / "series-logs")
    print(figures("series, with the boot logs", proposed(work / "series-logs")))
    print(f"(outputs in {work})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
