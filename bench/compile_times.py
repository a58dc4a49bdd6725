"""Where numba spends a first run: every compilation of a sweep of one DTB
in a process with no compiled code, timed per kernel (numba's event API).

    python -m bench.compile_times [DTB] [--top 25]

DTB defaults to the LS1028A RDB of the default corpus.  The process runs
with a private, empty $XDG_CACHE_HOME/dtb-audit/numba (the flattened-corpus
cache is not used), compiles every kernel (kernels.jit.compile_all(), then
a sweep of DTB for the kernels compiled on first use) and prints, per
kernel: how many versions numba compiled (more than one: a kernel without
its signature, compiled again for each mix of argument types) and the CPU
seconds spent on it alone (its callees' compilations excluded).  numba's
own helpers (array allocation, sorting) show as numba.*.
"""
import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLD_BOARD = "freescale/fsl-ls1028a-rdb.dtb"


class _Timer:
    """numba:compile events: exclusive CPU time and count per function."""

    def __init__(self):
        self.stack = []
        self.seconds = defaultdict(float)
        self.count = defaultdict(int)

    def listener(self):
        from numba.core import event

        timer = self

        class Listener(event.Listener):
            def on_start(self, ev):
                f = ev.data["dispatcher"].py_func
                timer.stack.append([f"{f.__module__}.{f.__qualname__}", time.process_time(), 0.0])

            def on_end(self, ev):
                name, start, children = timer.stack.pop()
                spent = time.process_time() - start
                timer.seconds[name] += spent - children
                timer.count[name] += 1
                if timer.stack:
                    timer.stack[-1][2] += spent

        return Listener()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dtb", nargs="?", help=f"a DTB (default: {COLD_BOARD} of the default corpus)")
    ap.add_argument("--top", type=int, default=25, help="kernels listed")
    args = ap.parse_args(argv)
    if args.dtb:
        dtb = Path(args.dtb).resolve()
    else:
        from corpus.build import build_corpus
        dtb = Path(build_corpus().root) / COLD_BOARD
    with tempfile.TemporaryDirectory(prefix="dtb-audit-compile-") as xdg:
        os.environ["XDG_CACHE_HOME"] = xdg         # before the kernels: no compiled code
        os.environ.pop("NUMBA_DISABLE_JIT", None)
        started = time.process_time()
        from numba.core import event
        numba_loaded = time.process_time() - started
        timer = _Timer()
        event.register("numba:compile", timer.listener())
        from kernels import jit
        lazy = jit.compile_all()
        ahead = time.process_time() - started
        from corpus.flat import flatten
        from kernels.evaluate import evaluate
        from kernels.target import TargetKernel
        ev = evaluate(flatten([dtb], dtb.parent, cache=False), TargetKernel.newest())
        total = time.process_time() - started
    compiled = sum(timer.seconds.values())
    print(f"{dtb.name}: {len(ev.verdict)} links; CPU seconds: numba import {numba_loaded:.2f}, "
          f"compile_all() {ahead - numba_loaded:.2f}, first sweep {total - ahead:.2f}, "
          f"total {total:.2f}")
    print(f"{sum(timer.count.values())} compilations, {compiled:.2f} s; "
          f"{len(lazy)} kernels without a signature")
    for name in sorted(timer.seconds, key=timer.seconds.get, reverse=True)[:args.top]:
        print(f"  {timer.seconds[name]:6.2f} s  {timer.count[name]:3d}x  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
