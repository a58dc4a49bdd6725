"""`dtb-audit bootlog` over a generated folder of boot logs.

    python -m bench.bench_bootlog [--logs 2000] [--lines 1500] [--debian linux-source-6.12]

Writes --logs logs of --lines lines each (the SMMU probe lines of
tests/bootlogs.py among filler lines shaped like a real arm64 boot: dmesg
timestamps, every tenth log gzipped) for boards of the corpus that have an
arm-smmu, then times, one process, files in the page cache:

  corpus     the corpus opened and judged (cached flat arrays and results)
  logs       audit() over the folder: read, parse, match, classify, aggregate
  command    the whole `python -m auditor.cli bootlog ... -o FILE` process
"""
import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import bootlogs  # noqa: E402  (the one generator of logs, shared with the tests)

FILLER = ("usb 1-1: new high-speed USB device number 2 using xhci-hcd",
          "random: crng init done", "EXT4-fs (mmcblk0p2): mounted filesystem with ordered "
          "data mode. Quota mode: none.", "NET: Registered PF_INET6 protocol family",
          "clk: Disabling unused clocks", "systemd[1]: Started Journal Service.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--logs", type=int, default=2000)
    ap.add_argument("--lines", type=int, default=1500)
    ap.add_argument("--debian", default="linux-source-6.12")
    args = ap.parse_args()

    from auditor.bootlog import audit, board_index
    from auditor.sweep import target_of
    from kernels.judging import Judging
    from corpus.build import build_corpus

    started = time.perf_counter()
    corpus = build_corpus(debian=args.debian)
    boards = board_index(corpus, target_of(corpus, Judging()))
    corpus_s = time.perf_counter() - started
    chosen = [(model, ds[0]) for model, ds in sorted(boards.by_model.items())
              if any(n.driver == "arm-smmu" for n in boards.smmus(ds[0]))]
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as folder:
        size = 0
        for k in range(args.logs):
            model, d = chosen[k % len(chosen)]
            smmus = [("arm-smmu", f"{n.name.split('@')[1].lstrip('0')}.{n.name.split('@')[0]}",
                      n.coherent, rng.random() < 0.5)
                     for n in boards.smmus(d) if n.driver == "arm-smmu"]
            lines = bootlogs.boot(rng.choice(bootlogs.VERSIONS), model, smmus)
            lines[5:5] = [rng.choice(FILLER) for _ in range(max(0, args.lines - len(lines)))]
            path = Path(folder) / (f"{k:05}.log" + ("" if k % 10 else ".gz"))
            bootlogs.write(Path(path), bootlogs.dmesg(lines), gz=not k % 10)
            size += Path(path).stat().st_size
        started = time.perf_counter()
        doc = audit([folder], boards, problem=print)
        logs_s = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "auditor.cli", "bootlog", "--debian", args.debian,
                        folder, "--format", "json", "-o", str(Path(folder) / "out.json")],
                       check=True)
        command_s = time.perf_counter() - started
    smmus = sum(len(log["smmus"]) for log in doc["logs"])
    print(f"{args.logs} logs ({size / 1e6:.0f} MB on disk, {len(chosen)} boards), "
          f"{smmus} SMMUs classified")
    print(f"  corpus   {corpus_s:6.2f} s")
    print(f"  logs     {logs_s:6.2f} s  ({args.logs / logs_s:.0f} logs/s)")
    print(f"  command  {command_s:6.2f} s")


if __name__ == "__main__":
    main()
