"""The figures of bench/bench_all.py under airspeed velocity, so that a
regression shows against the history of commits (asv.conf.json says how to
run them).  Each calls the function bench_all.py times: the numbers follow
the CLI and the public functions, whatever they become.

Wall times of whole processes and of the reference are `track_` results
(measured here, in seconds); in-process ones are asv `time_` benchmarks.
"""
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import bench_all  # noqa: E402


def _corpora():
    (ref, ref_target), (corpus, target, debian) = bench_all.corpora()
    return {"ref_root": str(ref.root), "ref_dtbs": bench_all.board_paths(ref)[1],
            "ref_target": str(ref_target), "root": str(corpus.root),
            "dtbs": bench_all.board_paths(corpus)[1], "target": str(target), "debian": debian}


def _target(text):
    from kernels.target import TargetKernel
    return TargetKernel.parse(text)


class FirstSweep:
    """(a) the first sweep of one board with nothing compiled, against the
    reference over all of Linux 6.12."""
    timeout = 1800

    def setup_cache(self):
        return _corpora()

    def track_first_sweep_nothing_compiled(self, c):
        return bench_all.cold_first_sweep(Path(c["ref_root"]) / bench_all.COLD_BOARD)[0]
    track_first_sweep_nothing_compiled.unit = "seconds"

    def track_reference_sweep_6_12(self, c):
        seconds, _ = bench_all.best(lambda: bench_all.reference_sweep(
            Path(c["ref_root"]), c["ref_dtbs"], _target(c["ref_target"])), 1)
        return seconds
    track_reference_sweep_6_12.unit = "seconds"


class Sweep:
    """(b) the warm whole-process sweep and (c) flatten + evaluate in process."""
    timeout = 1800

    def setup_cache(self):
        c = _corpora()
        out = Path(tempfile.gettempdir()) / "dtb-audit-asv-sweep.jsonl"
        bench_all.warm_process_sweep(c["debian"], out)      # caches and compiled code
        return c

    def setup(self, c):
        self.root, self.dtbs, self.target = Path(c["root"]), c["dtbs"], _target(c["target"])
        bench_all.flatten_and_evaluate(self.root, self.dtbs, self.target)

    def track_process_sweep_jsonl(self, c):
        out = Path(tempfile.gettempdir()) / "dtb-audit-asv-sweep.jsonl"
        return bench_all.best(lambda: bench_all.warm_process_sweep(c["debian"], out), 3)[0]
    track_process_sweep_jsonl.unit = "seconds"

    def track_process_sweep_jsonl_kernels_run(self, c):
        """The same with the kept results dropped: the kernels load and run."""
        out = Path(tempfile.gettempdir()) / "dtb-audit-asv-sweep.jsonl"
        dropped = bench_all.results_folder(self.root, self.dtbs)
        return bench_all.best(lambda: bench_all.warm_process_sweep(c["debian"], out, dropped),
                              3)[0]
    track_process_sweep_jsonl_kernels_run.unit = "seconds"

    def time_flatten_and_evaluate(self, c):
        bench_all.flatten_and_evaluate(self.root, self.dtbs, self.target)

    def track_reference_sweep(self, c):
        return bench_all.best(lambda: bench_all.reference_sweep(
            self.root, self.dtbs, self.target), 1)[0]
    track_reference_sweep.unit = "seconds"


class NoNumba:
    """(d) commands that judge nothing: how many numba and compiled-kernel
    modules they load (0 wanted), and their time."""

    def setup_cache(self):
        c = _corpora()
        board = Path(c["ref_root"]) / bench_all.COLD_BOARD
        folder = Path(tempfile.mkdtemp(prefix="dtb-audit-asv-"))
        bench_all.cli("sweep", board, "--format", "json", "-o", folder / "a.json")
        bench_all.cli("sweep", board, "--format", "json", "--rule", "walk-only",
                      "-o", folder / "b.json")
        return str(folder)

    def track_help_modules(self, folder):
        return len(bench_all.modules_loaded("--help")[2])
    track_help_modules.unit = "modules"

    def track_diff_modules(self, folder):
        return len(bench_all.modules_loaded("diff", Path(folder) / "a.json",
                                            Path(folder) / "b.json")[2])
    track_diff_modules.unit = "modules"

    def track_help_seconds(self, folder):
        return min(bench_all.modules_loaded("--help")[0] for _ in range(3))
    track_help_seconds.unit = "seconds"


class Masters:
    """(e) one SMMU with many masters: the sweep in process, warm."""
    params = list(bench_all.MASTERS)
    param_names = ["masters"]
    timeout = 600

    def setup(self, n):
        self.folder = Path(tempfile.mkdtemp(prefix="dtb-audit-asv-masters-"))
        self.dtb = bench_all.masters_dtb(n, self.folder)
        self.out = self.folder / "out.json"
        bench_all.sweep_in_process(self.dtb, self.out)

    def time_sweep(self, n):
        bench_all.sweep_in_process(self.dtb, self.out)
