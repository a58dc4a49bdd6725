"""The kernels' results kept next to the flattened arrays
(kernels/results.py): a cache that cannot be written is one warning line
naming the entry and the system's reason, and the sweep goes on (the
project's rule for bad input: one clear line on stderr, no traceback)."""
from corpus.flat import flatten
from kernels.evaluate import evaluate
from kernels.target import TargetKernel
from snippets import compile_dts, smmu, soc


def test_unwritable_cache_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    dtb = compile_dts(tmp_path, "board", soc(smmu(), '\t\tdev@1 { compatible = "test,dev";'
                                                     ' iommus = <&smmu 1>; };\n'))
    flat = flatten([dtb], tmp_path)
    results = flat.cache_folder / "results"
    results.write_text("a file where the folder goes")
    capsys.readouterr()
    ev = evaluate(flat, TargetKernel.parse("6.12"))
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{results}/") and \
        line.endswith(": warning: cannot keep the results: File exists")
    assert ev.links.shape[0] == 1
