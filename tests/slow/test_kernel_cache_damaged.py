"""The compiled-code cache (kernels/jit.py): damaged files are compiled
again, one warning each, without a traceback."""
import re
import shutil

import pytest

pytestmark = pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc")


def test_corrupt_cache_files_are_compiled_again(scratch):
    """Half the compiled files truncated, the other half with bytes changed
    at the same length: each is one warning and compiled again."""
    root, numba_cache, run = scratch
    assert run() == ("available", "")
    # (numba's own cache, in kernels/__pycache__, is looked at too: there a
    # damaged file is a traceback)
    files = [f for f in [*numba_cache.glob("*/*"), *root.glob("kernels/__pycache__/*")]
             if f.suffix in (".nbi", ".nbc")]
    assert any(f.suffix == ".nbc" for f in files)
    for k, f in enumerate(sorted(files)):
        b = bytearray(f.read_bytes())
        if k % 2:
            b = b[:len(b) // 2]
        else:
            for i in range(len(b) // 2, min(len(b), len(b) // 2 + 64)):
                b[i] ^= 0x5A
        f.write_bytes(bytes(b))
    verdict, stderr = run()
    assert verdict == "available"
    lines = stderr.splitlines()
    assert lines and all(
        re.fullmatch(r"\S+\.nb[ic]: warning: compiled kernel cache file truncated or corrupt; "
                     r"compiling it again", line) for line in lines), stderr
    assert run() == ("available", "")           # compiled again and written back
