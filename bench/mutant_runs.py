"""Test files run against named mutmut mutants, outside mutmut: the short way
behind bench/mutmut_kernels.py's `quick` and bench/mutmut_sample.py's
`recheck`.

judge() runs, in a mutants/ folder mutmut made, the given test files once
per mutant (MUTANT_UNDER_TEST naming it, as mutmut's trampolines read it),
each in a child forked from a parent that only collected the tests (as
mutmut's forkserver does), after checking that they pass with no mutant;
it yields (name, status). record() writes a kill or a timeout into the
.meta file mutmut keeps for the mutant's module, so that mutmut's results
and the scores count it.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

# pytest's exit codes that mean a mutant was caught (a test failed, or an
# error inside pytest, as mutmut counts them); the mutmut codes recorded.
CAUGHT = (1, 3)
KILLED, TIMEOUT = 1, 36


def _child(files, name):
    """In a forked child: the test files with mutant `name` switched on."""
    import pytest
    os.environ["MUTANT_UNDER_TEST"] = name
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    code = pytest.main(["-q", "-x", "-n", "0", "-p", "no:cacheprovider", "-p", "no:randomly",
                        "-m", "not network", *files])
    os._exit(int(code))


def _run(files, names):
    """In the mutants/ folder: print "name status" for each mutant."""
    import contextlib
    import io
    import signal
    import time
    import pytest
    os.environ.pop("MUTANT_UNDER_TEST", None)
    # Collected once here, so that every child finds the code, the test
    # modules and conftest imported (and no test run: no cache filled).
    with contextlib.redirect_stdout(io.StringIO()):
        pytest.main(["-q", "--collect-only", "-n", "0", "-p", "no:cacheprovider", *files])
    # A mutant that makes a loop spin is stopped after 4 times (and 30 s
    # more than) the unmutated run, as mutmut's timeout_multiplier does.
    limit = None
    for name in [""] + names:           # "" first: the tests must pass unmutated
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(files, name)
        deadline = start + (limit or 3600)
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                code = None
                break
            time.sleep(0.05)
        if not name:
            if code != 0:
                sys.exit(f"the test files fail without a mutant (exit {code})")
            limit = 4 * (time.monotonic() - start) + 30
            continue
        status = "timeout" if code is None else "killed" if code in CAUGHT else \
            "survived" if code == 0 else f"exit-{code}"
        print(name, status, flush=True)


def judge(files, names, mutants, env=None):
    """(name, status) of each mutant of `names` against the test files (paths
    relative to the `mutants` folder): killed, timeout, survived or exit-N.
    Raises SystemExit when the files fail with no mutant."""
    env = dict(os.environ if env is None else env)
    env.pop("MUTANT_UNDER_TEST", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.path[:0] = [sys.argv[1], '.'];"
         " import mutant_runs; mutant_runs._run(sys.argv[2].split(','), sys.argv[3:])",
         str(Path(__file__).resolve().parent), ",".join(files), *names],
        cwd=mutants, env=env, stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        name, status = line.split()
        yield name, status
    if proc.wait():
        raise SystemExit(f"{mutants}: the test files fail without a mutant")


def record(mutants, name, status):
    """Write a "killed" or "timeout" status into the .meta (under `mutants`)
    that holds the mutant; others are not recorded."""
    if status not in ("killed", "timeout"):
        return
    for meta in Path(mutants).rglob("*.py.meta"):
        # Read now: another run (of other mutants) may have written it since.
        data = json.loads(meta.read_text())
        if name in data.get("exit_code_by_key", {}):
            data["exit_code_by_key"][name] = KILLED if status == "killed" else TIMEOUT
            tmp = meta.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=4))
            tmp.replace(meta)
            return
