"""`history --git` on a real Dask cluster: a `dask scheduler` and two `dask worker`
subprocesses on 127.0.0.1 give the document of a local run; a worker killed
mid-chunk has its chunk computed again, or reported when the scheduler gives
up on it; never dropped.
"""

import os
import re
import signal
import subprocess
import time
from contextlib import contextmanager

import pytest

from auditor.history.cluster import judge_git
from auditor.history.revisions import history_chunk
from auditor.history.stitching import stitch
from kernels.judging import Judging

from corpus.git import open_repo, revisions
from gitrepo import story_repo
from testpaths import ROOT

LS = ("fsl,ls1028a", "fsl,ls1088a")


class _Judged:
    """A history of commits judged on Dask: its document, chunks and states."""

    def __init__(self, run):
        self.doc = run.history.to_json()
        self.affected = [list(a) for a in run.history.affected]
        self.chunks = run.chunks


def history_git(repo, revisions=(), **kwargs):
    return _Judged(judge_git(repo, revisions, Judging(), **kwargs))


@contextmanager
def dask_cluster(folder, workers=2, scheduler_env=None, own_caches=False):
    """A `dask scheduler` and `workers` single-threaded `dask worker`s on 127.0.0.1,
    each in its own session; the scheduler's address. Logs and the workers' cache
    ($XDG_CACHE_HOME) in `folder`: one for all, or with own_caches one each
    (cache-0, cache-1, ...), as on machines that share no folder. All of them
    are stopped on the way out."""
    from distributed import Client

    folder.mkdir(parents=True, exist_ok=True)
    # PYTHONPATH: the workers run the code under test, not whatever is installed.
    env = dict(os.environ, XDG_CACHE_HOME=str(folder / "cache"), CI="1", PYTHONPATH=str(ROOT))
    started = []

    def start(name, command, extra=None):
        log = open(folder / f"{name}.log", "w")
        started.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                        env=dict(env, **(extra or {})),
                                        start_new_session=True))
        log.close()
        return folder / f"{name}.log"

    try:
        log = start("scheduler", ["dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard"], scheduler_env)
        deadline = time.monotonic() + 60
        while not (found := re.search(r"Scheduler at:\s+(tcp://127\.0\.0\.1:\d+)",
                                      log.read_text())):
            assert started[0].poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no scheduler address in {log.read_text()}"
            time.sleep(0.1)
        address = found.group(1)
        for k in range(workers):
            start(f"worker-{k}", ["dask", "worker", address, "--nthreads", "1", "--nworkers", "1",
                                  "--host", "127.0.0.1", "--no-dashboard"],
                  {"XDG_CACHE_HOME": str(folder / f"cache-{k}")} if own_caches else None)
        with Client(address, timeout="20s") as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(started):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with dask_cluster(tmp_path_factory.mktemp("dask")) as address:
        yield address


@pytest.fixture
def story(tmp_path, isolated_cache):
    return story_repo(tmp_path / "linux")


def reference(root, ranges):
    """The document judged in this process, one chunk, no Dask."""
    repo = open_repo(root)
    commits = revisions(repo, ranges)
    return stitch(repo, commits, history_chunk(str(repo.path), commits)).to_json()


def test_a_scheduler_and_two_workers_give_the_local_document(story, cluster):
    repo, _ = story
    local = history_git(repo.root, ["v6.11..master"], jobs=2)
    pids = set()
    remote = history_git(repo.root, ["v6.11..master"], scheduler=cluster, chunk_size=2,
                         on_event=lambda message: pids.add(message["pid"]))
    assert [len(chunk) for chunk in remote.chunks] == [2, 2, 2]
    assert len(pids) == 2                     # both workers had a chunk
    assert remote.doc == local.doc
    assert remote.doc == reference(repo.root, ["v6.11..master"])
    assert [c["to"] for s in remote.doc["socs"] for c in s["changes"]] == [
        "unaffected", "affected", "unaffected", "absent"]


def test_a_worker_killed_mid_chunk_has_its_chunk_computed_again(story, cluster):
    repo, _ = story
    starts, killed = [], []

    def kill_the_second_chunk_once(message):
        if message["chunk"] == 1 and message.get("started"):
            starts.append(message["pid"])
            if not killed:
                killed.append(message["pid"])
                os.kill(message["pid"], signal.SIGKILL)

    history = history_git(repo.root, ["v6.11..master"], scheduler=cluster, chunk_size=3,
                          on_event=kill_the_second_chunk_once)
    assert killed and len(starts) >= 2       # started again after the kill
    assert all(r["error"] is None for r in history.doc["revisions"])
    assert history.doc == reference(repo.root, ["v6.11..master"])


def test_a_chunk_the_scheduler_gives_up_on_is_reported(story, tmp_path):
    repo, shas = story
    killed = []

    def kill_the_second_chunk(message):
        if message["chunk"] == 1 and message.get("started"):
            killed.append(message["pid"])
            os.kill(message["pid"], signal.SIGKILL)

    # allowed-failures 0: the first worker that dies with the chunk loses it.
    with dask_cluster(tmp_path / "dask", scheduler_env={
            "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}) as address:
        history = history_git(repo.root, ["v6.11..master"], scheduler=address, chunk_size=3,
                              on_event=kill_the_second_chunk)
    assert len(killed) == 1
    errors = [r["error"] for r in history.doc["revisions"]]
    assert errors[:3] == [None, None, None]
    assert all(e.startswith("not judged: KilledWorker: ") for e in errors[3:]), errors
    assert [r["commit"] for r in history.doc["revisions"]] == [
        shas[k] for k in ("initial", "smmu", "master", "comment", "coherent", "removed")]
    # What was not judged keeps the last known state: a100 stays affected.
    assert [len(a) for a in history.affected] == [0, 0, 1, 1, 1, 1]


@contextmanager
def git_daemon(base):
    """`git daemon` on 127.0.0.1 serving the repositories under `base`; its git:// URL."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["git", "daemon", "--listen=127.0.0.1", f"--port={port}",
                             "--reuseaddr", "--export-all", "--informative-errors",
                             f"--base-path={base}", str(base)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, "git daemon did not start"
            time.sleep(0.05)
        yield f"git://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_workers_that_only_have_a_git_url_give_the_local_document(tmp_path, isolated_cache):
    """Workers on machines that share no folder with the client: each gets the
    URL, keeps a mirror in its own cache and fetches what its chunk needs."""
    repo, _ = story_repo(tmp_path / "served" / "linux")
    local = history_git(repo.root, ["v6.11..master"], jobs=1)
    with git_daemon(tmp_path / "served") as base, \
            dask_cluster(tmp_path / "dask", own_caches=True) as address:
        url = f"{base}/linux"
        pids = set()
        remote = history_git(url, ["v6.11..master"], scheduler=address, chunk_size=3,
                             on_event=lambda message: pids.add(message["pid"]))
        # a commit made after the workers' mirrors were taken is fetched
        repo.commit("arm64: dts: acme: a400: a comment", {
            "arch/arm64/boot/dts/acme/a400-evk.dts":
                (repo.root / "arch/arm64/boot/dts/acme/a400-evk.dts").read_text() + "/* */\n"})
        later = history_git(url, ["v6.11..master"], scheduler=address, chunk_size=4)
    assert len(pids) == 2                                 # both workers had a chunk
    assert remote.doc.pop("repo") == url and local.doc.pop("repo") == str(repo.root)
    assert remote.doc == local.doc
    assert len(later.doc["revisions"]) == len(remote.doc["revisions"]) + 1
    assert all(r["error"] is None for r in later.doc["revisions"])
    mirrors = sorted((tmp_path / "dask").glob("cache-*/dtb-audit/git-remote/*/mirror.git"))
    assert [m.parts[-5] for m in mirrors] == ["cache-0", "cache-1"]


@pytest.mark.network
def test_debian_history_on_a_scheduler_and_two_workers(tmp_path, debian_history_repo):
    root = debian_history_repo
    local = history_git(root, [])
    with dask_cluster(tmp_path / "dask") as address:
        remote = history_git(root, [], scheduler=address, chunk_size=2)
    assert [len(chunk) for chunk in remote.chunks] == [2, 2]
    assert remote.doc == local.doc
    shas = [r["commit"] for r in remote.doc["revisions"]]
    for soc in LS:
        (entry,) = [s for s in remote.doc["socs"] if s["soc"] == soc]
        assert [(c["commit"], c["to"]) for c in entry["changes"]] == [
            (shas[1], "affected"), (shas[2], "unaffected")]
