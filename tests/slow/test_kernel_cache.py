"""The compiled-code cache (kernels/jit.py): keyed on every kernel source,
so that editing a callee in another file recompiles its callers; old keys
are bounded (damaged files: test_kernel_cache_damaged.py; the tiers:
test_kernel_tiers.py).

The end-to-end tests run in a scratch copy of the packages (conftest.py), in
fresh processes, with a private $XDG_CACHE_HOME, as a user who edits or
upgrades the package would."""
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from kernels import jit
from store.prune import USED, mark_used, prune
from testpaths import ROOT

pytestmark = pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc")


def _okay_means_disabled(root):
    """Edit status_okay() in the scratch copy's dt.py: "okay" now disables."""
    f = root / "kernels" / "dt.py"
    text, n = re.subn(r'(def status_okay\(data, off, n\):\n    """.*?"""\n)',
                      r'\1    return False  # the test edit\n', f.read_text(), flags=re.S)
    assert n == 1, "status_okay() not found in kernels/dt.py"
    f.write_text(text)


def test_editing_a_callee_in_another_file_recompiles_its_callers(scratch):
    root, numba_cache, run = scratch
    assert run() == ("available", "")
    assert run() == ("available", "")          # loaded from the cache, same answer
    _okay_means_disabled(root)
    assert run()[0] == "disabled"
    assert len(list(numba_cache.iterdir())) == 2   # the edit made a new key


def test_the_key_covers_numba_settings_that_change_machine_code():
    code = "from kernels import jit; jit.install(); print(jit.kernels_key())"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_BOUNDSCHECK"}
    keys = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           text=True, check=True, env=dict(env, **extra)).stdout.strip()
            for extra in ({}, {"NUMBA_BOUNDSCHECK": "1"})]
    assert len(keys[0]) == 16 and keys[0] != keys[1]


def test_old_keys_are_bounded(tmp_path):
    now = time.time()
    for k in range(6):
        (tmp_path / f"old{k}").mkdir()
        (tmp_path / f"old{k}" / USED).touch()
        os.utime(tmp_path / f"old{k}" / USED, (now - 1000 * (k + 1),) * 2)
    (tmp_path / "current").mkdir()
    mark_used(tmp_path / "current")
    prune(tmp_path / "current", jit.KEEP_OTHER_KEYS)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["current"] + [f"old{k}" for k in range(jit.KEEP_OTHER_KEYS)]
    assert (tmp_path / "current" / USED).stat().st_mtime > now - 60   # marked used
