"""The revisions of a git repository judged on a Dask cluster.

judge_git() lists the revisions (corpus/git.py), cuts them into contiguous
chunks, runs each chunk on one Dask worker (revisions.history_chunk()) and
stitches what comes back into the History (stitching.py). Without a
scheduler address the run starts a LocalCluster on 127.0.0.1 with this
machine's cores: one code path. A chunk whose worker died is retried by the
scheduler; when it cannot be, its revisions are marked as not judged, never
dropped (docs/history.md).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import uuid
from dataclasses import dataclass, field

from corpus.console import progress_wanted
from corpus.errors import UserError
from corpus.git import Repo, open_repo, revisions as list_revisions
from kernels.judging import Judging

from ..documents import History
from .revisions import RevisionResult, history_chunk
from .stitching import stitch


@dataclass
class GitRun:
    """A history of commits and how it was made."""
    history: History
    repo: Repo
    commits: list                # Commit, oldest first
    results: list                # RevisionResult, one per commit
    chunks: list = field(default_factory=list)   # how the commits were cut


def judge_git(repo, revisions=(), judging: Judging = Judging(), *, all_commits=False,
              scheduler=None, jobs=None, chunk_size=None, on_event=None) -> GitRun:
    """Judge the revisions of `repo` on a Dask cluster and stitch the history.

    revisions: git ranges (see corpus.git.revisions); none: the release tags.
    judging: the same for every revision (its target: instead of each
    revision's own).
    scheduler: "tcp://host:port" of a dask scheduler; None: a LocalCluster
    on 127.0.0.1 with `jobs` worker processes (this machine's cores).
    chunk_size: revisions per chunk (default: spread over the workers).
    on_event: called on the client with each progress message of a worker
    ({"chunk", "pid", and "commit" after each revision or "started"}).
    Raises UserError for a repository or revision that cannot be used.
    """
    repo = open_repo(repo)
    commits = list_revisions(repo, revisions, all_commits=all_commits)
    if not commits:
        raise UserError(repo.name, f"no commit in {' '.join(revisions)} touches "
                                        f"the device-tree sources")
    results, chunks = _run(repo, commits, judging, scheduler, jobs, chunk_size, on_event)
    return GitRun(stitch(repo, commits, results, judging), repo, commits, results, chunks)


def _run(repo, commits, judging, scheduler, jobs, chunk_size, on_event):
    """(RevisionResult of each commit, the chunks) from a Dask cluster."""
    from distributed import Client, LocalCluster

    cluster = None
    try:
        if scheduler is None:
            cluster = LocalCluster(n_workers=jobs or os.cpu_count() or 1, threads_per_worker=1,
                                   processes=True, host="127.0.0.1",
                                   # its HTTP server on a free loopback port, never 8787
                                   dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL)
            client = Client(cluster)
        else:
            client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as why:
        if cluster is not None:
            cluster.close()
        raise UserError(scheduler or "LocalCluster",
                        f"cannot reach the Dask scheduler: {why}") from None
    try:
        try:
            client.wait_for_workers(1, timeout=120)
        except TimeoutError:
            raise UserError(scheduler, f"no Dask worker connected to the scheduler "
                                       f"(start some with `dask worker {scheduler}`)") from None
        threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
        size = chunk_size or math.ceil(len(commits) / max(1, threads))
        chunks = [commits[i:i + size] for i in range(0, len(commits), size)]
        return _gather(client, repo, chunks, judging, on_event), chunks
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _gather(client, repo, chunks, judging, on_event) -> list[RevisionResult]:
    from tqdm import tqdm

    topic = f"dtb-audit-history-{uuid.uuid4().hex}"
    bar = tqdm(total=sum(map(len, chunks)), desc="revisions", unit="rev", file=sys.stderr,
               disable=not progress_wanted(), leave=False)

    def event(item):
        message = item[1]
        if "commit" in message:
            bar.update()
        if on_event is not None:
            on_event(message)

    client.subscribe_topic(topic, event)
    futures = [client.submit(history_chunk, repo.name, chunk, judging, None, topic, i,
                             key=f"dtb-audit-chunk-{i}-{topic}", pure=False, retries=1)
               for i, chunk in enumerate(chunks)]
    results = []
    try:
        for chunk, future in zip(chunks, futures):
            try:
                results += future.result()
            except Exception as why:  # a worker that died or failed: reported, never dropped
                reason = f"{type(why).__name__}: {why}".strip().splitlines()[0]
                results += [RevisionResult(c.sha, error=f"not judged: {reason}", judged_all=False)
                            for c in chunk]
    finally:
        client.unsubscribe_topic(topic)
        bar.close()
    return results
