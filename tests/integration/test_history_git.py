"""`history --git`: revisions, owned worktrees, the incremental chunk, stitching,
outputs, bad input, and the commit that wrote a line.

Real git and a real dtc on small repositories the tests make
(tests/gitrepo.py); the LocalCluster path once; the Debian history
(network) from Debian's DT sources of 5.10, 6.1, 6.12 and 7.2.
"""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.cli import main
from auditor.documents import History
from auditor.history.cluster import judge_git
from auditor.history.mail import write_mails
from auditor.history.plot import write_plot
from auditor.history.revisions import history_chunk
from auditor.history.stitching import stitch
from auditor.history.text import format_history
from corpus.errors import UserError
from corpus.git import (GitError, introducing_commit, is_checkout, open_repo, owned_worktree,
                        release_tags, revisions)
from gitrepo import (GitRepo, board, rebasing_merges_repo, rebasing_repo, smmu_line, soc_dtsi,
                     story_repo)
from kernels.judging import Judging, Rule
from kernels.target import TargetKernel
from minikernel import ECAM, ENABLE_ENETC, VENDOR_DIR

A100_DTSI = f"{VENDOR_DIR}/a100.dtsi"
SMMU = "/soc/iommu@5000000"


@pytest.fixture
def story(tmp_path, isolated_cache):
    repo, shas = story_repo(tmp_path / "linux")
    return repo, shas


def judged_history(repo_root, ranges, judging=Judging(), **kwargs):
    """history_chunk and stitch in this process: (History, results)."""
    repo = open_repo(repo_root)
    commits = revisions(repo, ranges, **kwargs)
    results = history_chunk(str(repo.path), commits, judging)
    return stitch(repo, commits, results, judging), results


def judged(repo_root, ranges, judging=Judging(), **kwargs):
    """(the History's JSON form, the affected SoCs of each revision, results)."""
    history, results = judged_history(repo_root, ranges, judging, **kwargs)
    return history.to_json(), [list(a) for a in history.affected], results


def history_git(repo, revisions=(), **kwargs):
    """The history of commits judged on Dask (what the CLI's --git runs)."""
    return judge_git(repo, revisions, Judging(), **kwargs)


def run_history_git(repo, revisions=(), *, all_commits=False, target_kernel=None, rule=None,
                    legacy_dt_bindings=True, scheduler=None, jobs=None, plot=None, mails=None,
                    fmt="text", fail_on_new=False, output=None):
    """`dtb-audit history --git REPO REVISIONS...`, through the CLI: the exit status."""
    argv = ["history", "--git", str(repo), *revisions, "--format", fmt]
    for option, value in (("--target-kernel", target_kernel), ("--rule", rule),
                          ("--scheduler", scheduler), ("-j", jobs), ("--plot", plot),
                          ("--mails", mails), ("-o", output)):
        if value is not None:
            argv += [option, str(value)]
    argv += ["--all-commits"] * all_commits + ["--fail-on-new"] * fail_on_new \
        + ["--no-legacy-dt-bindings"] * (not legacy_dt_bindings)
    return main(argv)


def changes(doc, soc):
    return next((s["changes"] for s in doc["socs"] if s["soc"] == soc), [])


# -- revisions ----------------------------------------------------------------------

def test_a_range_starts_at_its_bottom_and_lists_only_dt_commits(story):
    repo, shas = story
    commits = revisions(open_repo(repo.root), ["v6.11..master"])
    assert [c.sha for c in commits] == [shas[k] for k in ("initial", "smmu", "master", "comment",
                                                          "coherent", "removed")]
    assert commits[0].parent is None
    # master's parent is the README commit, not a DT one: compared with "smmu"
    assert commits[2].parent == shas["smmu"]
    assert commits[1].subject == "arm64: dts: acme: a100: add the SMMU"
    assert commits[1].date == "2024-01-02T12:00:00+00:00"


def test_first_parent_lists_the_merge_all_commits_the_branch(tmp_path, isolated_cache):
    repo = GitRepo(tmp_path / "linux")
    base = repo.commit("base", {f"{VENDOR_DIR}/x.dts": "/dts-v1/;\n/ { };\n"})
    repo.git("checkout", "-q", "-b", "side")
    side = repo.commit("side: a DT change", {f"{VENDOR_DIR}/y.dts": "/dts-v1/;\n/ { };\n"})
    repo.commit("side: not DT", {"README": "x\n"})
    repo.git("checkout", "-q", "master")
    repo.commit("master: not DT", {"NOTES": "x\n"})
    repo.git("merge", "-q", "--no-ff", "side", "-m", "Merge side")
    merge = repo.git("rev-parse", "HEAD").strip()
    git_repo = open_repo(repo.root)

    first_parent = revisions(git_repo, [f"{base}..master"])
    assert [c.sha for c in first_parent] == [base, merge]
    assert first_parent[1].parent == base

    every = revisions(git_repo, [f"{base}..master"], all_commits=True)
    assert [c.sha for c in every] == [base, side]
    assert every[1].parent == base


def test_release_tags_sorted_by_version_not_by_name(tmp_path, isolated_cache):
    repo = GitRepo(tmp_path / "linux")
    one = repo.commit("one", {f"{VENDOR_DIR}/x.dts": "/dts-v1/;\n/ { };\n"})
    repo.tag("v6.9")
    repo.commit("two", {f"{VENDOR_DIR}/x.dts": "/dts-v1/;\n/ { a; };\n"})
    repo.tag("v6.10-rc2")
    three = repo.commit("three", {f"{VENDOR_DIR}/x.dts": "/dts-v1/;\n/ { b; };\n"})
    repo.tag("v6.10")
    repo.git("checkout", "-q", "-b", "other", one)
    repo.commit("elsewhere", {f"{VENDOR_DIR}/x.dts": "/dts-v1/;\n/ { c; };\n"})
    repo.tag("v6.11")                    # not reachable from master
    repo.git("checkout", "-q", "master")
    tags = release_tags(open_repo(repo.root))
    assert [c.sha for c in tags] == [one, three]
    assert revisions(open_repo(repo.root)) == tags


# -- the incremental chunk and the stitched history --------------------------------------

def test_every_transition_is_attributed_to_its_commit(story):
    repo, shas = story
    doc, affected, results = judged(repo.root, ["v6.11..master"])
    line = smmu_line((repo.root / A100_DTSI).read_text())

    a100 = changes(doc, "acme,a100")
    assert [(c["commit"], c["from"], c["to"]) for c in a100] == [
        (shas["smmu"], "absent", "unaffected"),
        (shas["master"], "unaffected", "affected"),
        (shas["coherent"], "affected", "unaffected")]
    made_affected = a100[1]
    assert made_affected["subject"] == "arm64: dts: acme: a100: add the PCIe root complex"
    assert made_affected["affected_boards"] == ["acme/a100-evk.dtb", "acme/a100-mini.dtb"]
    # The SMMU had no master before: the sweep saw no link to it, so no "before".
    assert made_affected["smmu"] == [{"path": SMMU, "coherent_before": None,
                                      "coherent_after": False, "source_file": A100_DTSI,
                                      "source_line": line}]
    assert a100[2]["smmu"] == [{"path": SMMU, "coherent_before": False, "coherent_after": True,
                                "source_file": A100_DTSI, "source_line": line}]
    assert [(c["commit"], c["from"], c["to"]) for c in changes(doc, "acme,a200")] == [
        (shas["removed"], "unaffected", "absent")]
    assert changes(doc, "acme,a400") == []
    assert [len(a) for a in affected] == [0, 0, 1, 1, 0, 0]
    # Each commit's first release (v6.11, then v6.12); past the last tag, the Makefile.
    assert [(r["target_kernel"], r["target_from"]) for r in doc["revisions"]] == \
        [("6.11", "release")] + [("6.12", "release")] * 4 + [("6.12.0", "makefile")]
    assert all(r["error"] is None for r in doc["revisions"])


def test_a_rule_and_a_target_kernel_given_for_every_revision(story):
    repo, shas = story
    # arm-smmu always answers true before v6.1: a100 is never affected.
    doc, affected, _ = judged(repo.root, ["v6.11..master"], Judging(rule=Rule.LEGACY_TRUE))
    assert doc["rule"] == "legacy-true"
    # The SMMU gaining dma-coherent is still a change, from unaffected to unaffected.
    assert [(c["commit"], c["from"], c["to"]) for c in changes(doc, "acme,a100")] == [
        (shas["smmu"], "absent", "unaffected"), (shas["coherent"], "unaffected", "unaffected")]
    assert affected == [[]] * 6
    # Before v5.19 VFIO never asks; the revisions say which kernel judged them.
    doc, affected, _ = judged(repo.root, ["v6.11..master"], Judging(TargetKernel.parse("5.15")))
    assert [r["target_kernel"] for r in doc["revisions"]] == ["5.15"] * 6
    assert affected == [[]] * 6


def test_only_what_changed_is_rebuilt_and_judged_again(story):
    repo, _ = story
    _, _, results = judged(repo.root, ["v6.11..master"])
    counts = [(r.built, r.reused, r.rejudged, r.kept) for r in results]
    assert counts == [
        (2, 0, 2, 0),   # initial (target 6.11): a400-evk, a200-rdb
        (2, 2, 4, 0),   # smmu: the two a100 boards are new; target 6.12: all judged again
        (2, 2, 2, 2),   # master: a100.dtsi changed
        (1, 3, 0, 4),   # comment: a400-evk rebuilt, same bytes: not judged again
        (2, 2, 2, 2),   # coherent: a100.dtsi changed
        (0, 3, 0, 3)]   # removed: nothing to build; 6.12.0 (Makefile) judges as 6.12


def test_the_users_checkout_index_and_config_are_untouched(story):
    repo, _ = story
    repo.write({"README": "an edit the user has not committed\n"})
    head = repo.git("rev-parse", "HEAD")
    index = (repo.root / ".git" / "index").read_bytes()
    config = (repo.root / ".git" / "config").read_bytes()
    judged(repo.root, ["v6.11..master~3"])
    assert repo.git("rev-parse", "HEAD") == head
    assert (repo.root / ".git" / "index").read_bytes() == index
    assert (repo.root / ".git" / "config").read_bytes() == config
    assert (repo.root / "README").read_text() == "an edit the user has not committed\n"
    assert repo.git("status", "--porcelain") == " M README\n"


def test_a_dead_holders_slot_is_taken_over(story, tmp_path):
    repo, shas = story
    git_repo = open_repo(repo.root)
    # A process that takes a slot, starts moving its worktree and is killed.
    child = subprocess.Popen([sys.executable, "-c", f"""
import os, signal, sys
sys.path[:0] = {sys.path!r}
from corpus.git import open_repo, owned_worktree
with owned_worktree(open_repo({str(repo.root)!r})) as w:
    w.checkout({shas['smmu']!r})
    git_dir = os.popen("git -C " + str(w.path) + " rev-parse --absolute-git-dir").read().strip()
    open(os.path.join(git_dir, "index.lock"), "w").close()   # as a killed checkout leaves it
    print(w.slot, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""], stdout=subprocess.PIPE, text=True)
    dead_slot = Path(child.stdout.readline().strip())
    child.wait()
    assert child.returncode == -signal.SIGKILL
    with owned_worktree(git_repo) as first, owned_worktree(git_repo) as second:
        assert first.slot == dead_slot            # free again, taken over
        assert second.slot != first.slot          # held: the next one
        first.checkout(shas["master"])            # the dead git's index.lock is gone
        assert (first.path / A100_DTSI).read_text() == soc_dtsi("a100", False, ECAM)
        # Sparse: only the DT inputs are checked out.
        second.checkout(shas["readme"])
        assert not (second.path / "README").exists()
        assert (second.path / "Makefile").is_file()


def test_a_revision_that_does_not_compile_is_marked_and_the_history_goes_on(story):
    repo, shas = story
    broken = repo.commit("arm64: dts: acme: a100: a typo, and a board of no SoC", {
        f"{VENDOR_DIR}/a100-evk.dts": board("a100", "evk", ENABLE_ENETC) + "&nowhere {\n",
        f"{VENDOR_DIR}/bare.dts": '/dts-v1/;\n/ {\n\tmodel = "no compatible";\n};\n',
    })
    fixed = repo.commit("arm64: dts: acme: a100: fix the typo", {
        f"{VENDOR_DIR}/a100-evk.dts": board("a100", "evk", ENABLE_ENETC),
        f"{VENDOR_DIR}/a100.dtsi": soc_dtsi("a100", False, ECAM),
    })
    history, _ = judged_history(repo.root, [f"{shas['removed']}..master"])
    doc, affected = history.to_json(), [list(a) for a in history.affected]
    # The revision was judged: the tree's own DTB that does not build is said
    # apart from an error (a revision that could not be judged at all).
    assert all(r["error"] is None for r in doc["revisions"])
    not_built = {r["commit"]: r.get("not_built") for r in doc["revisions"]}
    assert not_built[shas["removed"]] is None and not_built[fixed] is None
    (said,) = not_built[broken]
    assert said.startswith(f"{VENDOR_DIR}/a100-evk.dts: error: ")
    # The text names the one DTB not built, and no "more" when there is none.
    (line,) = [t for t in format_history(history).splitlines() if "[not built: " in t]
    assert line.endswith(f"[not built: {said}]")
    # a100-mini still builds, a100-evk does not: a100 keeps its state, not "absent".
    assert [(c["commit"], c["from"], c["to"]) for c in changes(doc, "acme,a100")] == [
        (fixed, "unaffected", "affected")]
    assert [len(a) for a in affected] == [0, 0, 1]


def test_only_commits_that_change_an_input_of_the_arm64_build_are_built(story):
    """A commit that changes no file an arm64 DTB's build read (cpp's and
    dtc's dependencies, include-prefixes links followed), nor the arm64 DTS
    folder, makes the same DTBs: listed as unchanged, not built. A file of
    arch/arm that an arm64 board includes is an input like any other."""
    repo, shas = story
    fixups = "arch/arm/boot/dts/acme-fixups.dtsi"
    include = "#include <arm/acme-fixups.dtsi>\n"
    shas["broke"] = repo.commit("arm64: dts: acme: a100: the SMMU is not dma-coherent", {
        A100_DTSI: soc_dtsi("a100", False, ECAM)})
    shas["arm"] = repo.commit("ARM: dts: acme: a 32-bit board and a header no DTB reads", {
        "arch/arm/boot/dts/acme-a7.dts": '/dts-v1/;\n/ { compatible = "acme,a7"; };\n',
        "include/dt-bindings/acme-unused.h": "#define ACME_UNUSED 1\n"})
    shas["include"] = repo.commit("arm64: dts: acme: a100: include the shared fixups", {
        "scripts/dtc/include-prefixes/arm": ("->", "../../../arch/arm/boot/dts"),
        fixups: "/ {\n};\n",
        f"{VENDOR_DIR}/a100-evk.dts": board("a100", "evk", ENABLE_ENETC) + include,
        f"{VENDOR_DIR}/a100-mini.dts": board("a100", "mini") + include})
    shas["fixed"] = repo.commit("ARM: dts: acme: fixups: the a100 SMMU is dma-coherent", {
        fixups: "&smmu {\n\tdma-coherent;\n};\n"})
    doc, affected, results = judged(repo.root, [f"{shas['removed']}..master"])
    listed = [r["commit"] for r in doc["revisions"]]
    assert listed == [shas[k] for k in ("removed", "broke", "arm", "include", "fixed")]
    # "arm" is listed, with no change, and was not built (how a run made a
    # revision is not in the document: it depends on how the list was cut).
    assert [r.unchanged for r in results] == [False, False, True, False, False]
    assert [r.commit for r in results] == listed      # an unchanged one says its own commit
    assert [r.built for r in results][2] == 0
    assert [(c["commit"], c["from"], c["to"]) for c in changes(doc, "acme,a100")] == [
        (shas["broke"], "unaffected", "affected"), (shas["fixed"], "affected", "unaffected")]
    assert [("acme,a100" in a) for a in affected] == [False, True, True, True, False]
    assert all(r["error"] is None and "not_built" not in r for r in doc["revisions"])


def test_a_revision_whose_tree_cannot_be_read_keeps_every_state(story):
    repo, shas = story
    broken = repo.commit("scripts: break Makefile.lib", {"scripts/Makefile.lib": "# emptied\n"})
    doc, affected, results = judged(repo.root, [f"{shas['coherent']}..master"])
    error = {r["commit"]: r["error"] for r in doc["revisions"]}[broken]
    assert error == f"{repo.root}: no scripts/Makefile.dtbs or scripts/Makefile.lib with DTC_FLAGS"
    assert [(c["commit"], c["to"]) for c in changes(doc, "acme,a200")] == [
        (shas["removed"], "absent")]
    assert affected[-1] == affected[-2]


# -- outputs ------------------------------------------------------------------------------

def test_text_robot_messages_mails_and_plot(story, tmp_path):
    repo, shas = story
    history, _ = judged_history(repo.root, ["v6.11..master"])
    line = smmu_line((repo.root / A100_DTSI).read_text())
    text = format_history(history)
    assert f"  {shas['master'][:12]}  2024-01-04  unaffected -> affected (2/2 boards)" in text
    assert f"      {A100_DTSI}:{line}: {SMMU}: dma-coherent added\n" in text
    assert text.count("Subject: [dtb-audit]") == 1

    (mail,) = write_mails(history, tmp_path / "mails")
    message = mail.read_text()
    assert mail.name == f"0001-acme_a100-{shas['master'][:12]}.txt"
    assert f"commit: {shas['master']} (arm64: dts: acme: a100: add the PCIe root complex)" \
        in message
    assert f'| Fixes: {shas["master"][:12]} ("arm64: dts: acme: a100: add the PCIe root complex")' \
        in message
    assert f">> {A100_DTSI}:{line}: {SMMU}: not dma-coherent" in message
    assert "   acme/a100-evk.dtb\n   acme/a100-mini.dtb\n" in message

    write_plot(history, tmp_path / "history.svg")
    svg = (tmp_path / "history.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert f"+1 {shas['master'][:12]}" in svg and f"-1 {shas['coherent'][:12]}" in svg
    write_plot(history, tmp_path / "history.png")
    assert (tmp_path / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_run_on_a_local_cluster_json_and_fail_on_new(story, tmp_path, capsys):
    repo, shas = story
    reference, _, _ = judged(repo.root, ["v6.11..master"])
    status = run_history_git(repo.root, ["v6.11..master"], fmt="json", fail_on_new=True,
                             plot=tmp_path / "h.png", output=tmp_path / "h.json", jobs=2)
    out, err = capsys.readouterr()
    assert status == 0            # a100 is fixed again in the last revision
    assert (out, err) == ("", "")
    assert json.loads((tmp_path / "h.json").read_text()) == reference
    assert (tmp_path / "h.png").is_file()

    status = run_history_git(repo.root, [f"v6.11..{shas['comment']}"], fmt="text",
                             fail_on_new=True, mails=tmp_path / "mails", jobs=2)
    out, _ = capsys.readouterr()
    assert status == 1            # a100 affected at the end, not at the start
    assert "Subject:" not in out  # the messages went to files
    assert [p.name for p in (tmp_path / "mails").iterdir()] == [
        f"0001-acme_a100-{shas['master'][:12]}.txt"]


@pytest.fixture
def threaded_cluster():
    """Two single-threaded Dask workers inside this process: the scheduler's code
    path without worker processes (quick enough for mutation testing)."""
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address="127.0.0.1:0",
                      silence_logs=logging.ERROR) as cluster:
        yield cluster


def test_a_scheduler_gets_one_chunk_per_worker_thread_and_reports_progress(story,
                                                                           threaded_cluster):
    repo, shas = story
    reference, reference_affected, _ = judged(repo.root, ["v6.11..master"])
    events = []
    address = threaded_cluster.scheduler_address
    history = history_git(repo.root, ["v6.11..master"], scheduler=address, on_event=events.append)
    assert history.history.to_json() == reference
    assert [list(a) for a in history.history.affected] == reference_affected
    order = [shas[k] for k in ("initial", "smmu", "master", "comment", "coherent", "removed")]
    assert [r.commit for r in history.results] == order
    # six revisions over two worker threads: two chunks of three, in order
    assert [[c.sha for c in chunk] for chunk in history.chunks] == [order[:3], order[3:]]
    # each chunk says it started, then names each revision it judged, from one process
    by_chunk = {k: [m.get("commit", "started") for m in events if m["chunk"] == k] for k in (0, 1)}
    assert by_chunk == {0: ["started"] + order[:3], 1: ["started"] + order[3:]}
    assert {m["pid"] for m in events} == {os.getpid()}

    history = history_git(repo.root, ["v6.11..master"], scheduler=address, chunk_size=4)
    assert [len(chunk) for chunk in history.chunks] == [4, 2]
    assert history.history.to_json() == reference


def test_progress_on_a_terminal_counts_revisions_and_goes_away(story, threaded_cluster, capsys,
                                                               monkeypatch):
    import auditor.history.cluster
    repo, _ = story
    monkeypatch.setattr(auditor.history.cluster, "progress_wanted", lambda: True)
    history_git(repo.root, ["v6.11..master"], scheduler=threaded_cluster.scheduler_address)
    err = capsys.readouterr().err
    assert err.startswith("\rrevisions:   0%|") and " 0/6 [" in err and "rev/s]" in err
    assert "\n" not in err and err.endswith("\r")        # the bar is cleared, not left
    monkeypatch.setattr(auditor.history.cluster, "progress_wanted", lambda: False)
    history_git(repo.root, ["v6.11..master"], scheduler=threaded_cluster.scheduler_address)
    assert capsys.readouterr().err == ""


def test_a_chunk_that_fails_on_its_worker_is_reported_not_dropped(story, threaded_cluster,
                                                                  monkeypatch):
    """Workers that cannot open the repository (as on a machine without it): every
    revision of their chunks is in the history, "not judged" with the worker's error."""
    import auditor.history.revisions

    def unreachable(name, need=()):
        raise GitError(name, "no such folder")
    repo, shas = story
    monkeypatch.setattr(auditor.history.revisions, "open_repo", unreachable)   # workers only
    run = judge_git(repo.root, ["v6.11..master"], scheduler=threaded_cluster.scheduler_address,
                    chunk_size=4)
    order = [shas[k] for k in ("initial", "smmu", "master", "comment", "coherent", "removed")]
    assert [len(chunk) for chunk in run.chunks] == [4, 2]
    assert [r.commit for r in run.results] == order
    assert [r.error for r in run.results] == [
        f"not judged: GitError: {repo.root}: error: no such folder"] * 6
    assert [r.judged_all for r in run.results] == [False] * 6


def test_the_local_cluster_is_on_loopback_with_one_worker_per_job(story, tmp_path, capsys,
                                                                  monkeypatch):
    """history --git's own LocalCluster, its workers made threads (the options it
    is given are recorded): the same document as judged here, and the exit status."""
    import distributed
    repo, shas = story
    real = distributed.LocalCluster
    given = []

    def threaded(**options):
        given.append(options)
        return real(**{**options, "processes": False, "protocol": "tcp://"})

    monkeypatch.setattr(distributed, "LocalCluster", threaded)
    reference, _, _ = judged(repo.root, ["v6.11..master"])
    status = run_history_git(repo.root, ["v6.11..master"], fmt="json", fail_on_new=True,
                             output=tmp_path / "h.json", jobs=2)
    assert status == 0            # a100 is fixed again in the last revision
    assert capsys.readouterr() == ("", "")
    assert json.loads((tmp_path / "h.json").read_text()) == reference
    assert given == [{"n_workers": 2, "threads_per_worker": 1, "processes": True,
                      "host": "127.0.0.1", "dashboard_address": "127.0.0.1:0",
                      "silence_logs": logging.CRITICAL}]

    status = run_history_git(repo.root, [f"v6.11..{shas['comment']}"], fmt="text",
                             fail_on_new=True)
    out, err = capsys.readouterr()
    assert status == 1            # a100 affected at the end, not at the start
    assert err == "" and f"{shas['master'][:12]}" in out
    assert given[1]["n_workers"] == (os.cpu_count() or 1)


def test_run_history_git_hands_the_question_over_and_writes_what_it_is_asked(
        story, threaded_cluster, tmp_path, capsys):
    repo, shas = story
    address = threaded_cluster.scheduler_address
    # the target, the rule and the bindings reach every revision
    asked = Judging(TargetKernel.parse("6.1"), Rule.WALK_ONLY, legacy_dt_bindings=False)
    reference, _, _ = judged(repo.root, ["v6.11..master"], asked)
    assert run_history_git(repo.root, ["v6.11..master"], target_kernel="6.1", rule="walk-only",
                           legacy_dt_bindings=False, scheduler=address, fmt="json",
                           output=tmp_path / "h.json", plot=tmp_path / "h.SVG") == 0
    assert capsys.readouterr() == ("", "")
    assert (tmp_path / "h.json").read_text() == json.dumps(reference, indent=1) + "\n"
    svg = (tmp_path / "h.SVG").read_text()
    assert svg.lstrip().startswith("<?xml") and f"+1 {shas['master'][:12]}" in svg

    # text on stdout, with the robot messages; with a mail folder, the messages go there
    history, _ = judged_history(repo.root, ["v6.11..master"])
    assert run_history_git(repo.root, ["v6.11..master"], scheduler=address) == 0
    assert capsys.readouterr() == (format_history(history, mails=True), "")
    assert run_history_git(repo.root, ["v6.11..master"], scheduler=address,
                           mails=tmp_path / "mails") == 0
    assert capsys.readouterr() == (format_history(history, mails=False), "")
    assert [p.name for p in (tmp_path / "mails").iterdir()] == [
        f"0001-acme_a100-{shas['master'][:12]}.txt"]


def test_run_history_git_names_each_revision_that_failed_on_stderr(story, threaded_cluster,
                                                                   capsys):
    repo, shas = story
    # two boards that do not build: the first is named, the other counted
    broken = repo.commit("arm64: dts: acme: a100: a typo", {
        f"{VENDOR_DIR}/a100-evk.dts": board("a100", "evk", ENABLE_ENETC) + "&nowhere {\n",
        f"{VENDOR_DIR}/a100-mini.dts": board("a100", "mini") + "&nowhere {\n"})
    unreadable = repo.commit("scripts: break Makefile.lib", {"scripts/Makefile.lib": "# no\n"})
    doc, _, _ = judged(repo.root, [f"{shas['removed']}..master"])
    errors = {r["commit"]: r["error"] or r["not_built"][0] for r in doc["revisions"]
              if r["error"] or r.get("not_built")}
    capsys.readouterr()
    assert run_history_git(repo.root, [f"{shas['removed']}..master"],
                           scheduler=threaded_cluster.scheduler_address, fmt="json") == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == doc
    # (the in-process worker's own build diagnostics come first)
    assert err.splitlines(keepends=True)[-2:] == [
        f"{broken[:12]}: {errors[broken]} (and 1 more)\n",   # it says ": error: " itself
        f"{unreadable[:12]}: error: {errors[unreadable]}\n"]
    assert ": error: " in errors[broken] and ": error: " not in errors[unreadable]
    (not_built,) = [r["not_built"] for r in doc["revisions"] if r["commit"] == broken]
    assert len(not_built) == 2


def test_run_history_git_follows_every_commit_of_a_merged_branch_when_asked(
        story, threaded_cluster, capsys):
    repo, shas = story
    repo.git("checkout", "-q", "-b", "side")
    side = repo.commit("arm64: dts: acme: a100: not coherent on the side", {
        f"{VENDOR_DIR}/a100.dtsi": soc_dtsi("a100", False, ECAM)})
    repo.git("checkout", "-q", "master")
    repo.commit("README: more", {"README": "More.\n"})
    repo.git("merge", "-q", "--no-ff", "side", "-m", "Merge side")
    merge = repo.git("rev-parse", "HEAD").strip()
    for every, listed in ((False, [shas["removed"], merge]), (True, [shas["removed"], side])):
        assert run_history_git(repo.root, [f"{shas['removed']}..master"], all_commits=every,
                               scheduler=threaded_cluster.scheduler_address, fmt="json") == 0
        assert [r["commit"] for r in json.loads(capsys.readouterr().out)["revisions"]] == listed


def test_new_since_first_compares_the_last_revision_with_the_first():
    def history(*affected):
        return History((), (), None, affected)
    assert history(["a"], ["a", "b"], ["b", "c"]).new_since_first() == ["b", "c"]
    assert history(["a", "b"], [], ["a"]).new_since_first() == []


# -- bad input ----------------------------------------------------------------------------

def test_not_a_git_repository(tmp_path, isolated_cache, capsys):
    (tmp_path / "plain").mkdir()
    status = run_history_git(tmp_path / "plain", [])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err == f"{tmp_path / 'plain'}: error: not a git repository\n"


def test_a_revision_that_does_not_exist(story, capsys):
    repo, _ = story
    status = run_history_git(repo.root, ["v6.11..v9.99"])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err == f"{repo.root}: error: v9.99: no such revision\n"


def test_a_repository_that_is_no_kernel_tree(tmp_path, isolated_cache):
    repo = GitRepo(tmp_path / "other")
    repo.commit("nothing", {"README": "x\n"})
    with pytest.raises(UserError, match=r": error: neither a kernel tree"):
        history_git(repo.root)


def test_a_plot_name_that_is_neither_svg_nor_png(story, tmp_path, capsys):
    repo, _ = story
    status = run_history_git(repo.root, ["v6.11..master"], plot=tmp_path / "h.pdf")
    assert status == 2
    assert capsys.readouterr().err == f"{tmp_path / 'h.pdf'}: error: the plot is written as " \
                                      f".svg or .png\n"


# -- devicetree-rebasing ------------------------------------------------------------------

def test_devicetree_rebasing_through_a_kernel_shaped_shim(tmp_path, isolated_cache):
    repo, shas = rebasing_repo(tmp_path / "devicetree-rebasing")
    git_repo = open_repo(repo.root)
    assert git_repo.layout == "devicetree-rebasing"
    assert [c.sha for c in release_tags(git_repo)] == [shas["initial"], shas["smmu"]]
    doc, affected, _ = judged(repo.root, ["v6.11-dts..master"])
    # Tagged: the release; past the last tag no version at all (no kernel Makefile).
    assert [(r["target_kernel"], r["target_from"]) for r in doc["revisions"]] == [
        ("6.11", "release"), ("6.12", "release"), ("7.2", "assumed")]
    a100 = changes(doc, "acme,a100")
    assert [(c["commit"], c["from"], c["to"]) for c in a100] == [
        (shas["smmu"], "absent", "unaffected"), (shas["master"], "unaffected", "affected")]
    line = smmu_line((repo.root / "src/arm64/acme/a100.dtsi").read_text())
    assert a100[1]["smmu"][0]["source_file"] == "src/arm64/acme/a100.dtsi"
    assert a100[1]["smmu"][0]["source_line"] == line


@pytest.fixture
def merges(tmp_path, isolated_cache):
    return rebasing_merges_repo(tmp_path / "devicetree-rebasing")


def test_side_branch_commits_take_the_release_whose_merge_brought_them_in(merges):
    """The commits of devicetree-rebasing's side branch have no tag in their
    ancestry: their release is the tagged merge's (the first tag that
    contains them); past the last tag, no release yet."""
    repo, shas = merges
    commits = revisions(open_repo(repo.root), ["v4.15-rc1-dts..master"], all_commits=True)
    assert [(c.sha, c.release) for c in commits] == [
        (shas["base"], "4.15-rc1"), (shas["pcie"], "4.15-rc2"), (shas["board"], "4.15-rc2"),
        (shas["tip"], None)]


def test_old_releases_ask_nothing_and_untagged_rebasing_commits_are_assumed(merges):
    """Without --target-kernel every revision is judged: under 4.15-rcN VFIO
    asked nothing (no-check), so nothing is affected; the untagged tip has no
    version (devicetree-rebasing has no kernel Makefile): the newest, assumed."""
    repo, shas = merges
    history, _ = judged_history(repo.root, ["v4.15-rc1-dts..master"], all_commits=True)
    doc, affected = history.to_json(), [list(a) for a in history.affected]
    assert [(r["commit"], r["target_kernel"], r["target_from"], r["error"])
            for r in doc["revisions"]] == [
        (shas["base"], "4.15-rc1", "release", None), (shas["pcie"], "4.15-rc2", "release", None),
        (shas["board"], "4.15-rc2", "release", None), (shas["tip"], "7.2", "assumed", None)]
    assert affected[:3] == [[], [], []]
    # At the tip the newest decisions apply: a100's PCIe is refused from then on.
    assert affected[3] == ["acme,a100"]
    text = format_history(history, mails=False)
    assert f"  {shas['tip'][:12]}  2024-01-05  7.2?" in text
    assert "(?: no release contains the commit and the tree names no version: " \
           "judged as the newest modelled)" in text


def test_a_given_target_needs_no_tag(merges):
    repo, shas = merges
    doc, affected, _ = judged(repo.root, ["v4.15-rc1-dts..master"],
                              Judging(TargetKernel.parse("7.2")),
                              all_commits=True)
    assert [(r["target_kernel"], r["target_from"], r["error"]) for r in doc["revisions"]] == \
        [("7.2", "given", None)] * 4
    assert [(c["commit"], c["from"], c["to"]) for c in changes(doc, "acme,a100")] == [
        (shas["pcie"], "unaffected", "affected")]


def test_an_untagged_kernel_commit_takes_the_makefile_and_a_newer_one_warns(tmp_path,
                                                                          isolated_cache):
    """Mainline after a release: no tag contains the new commits, the
    Makefile says 7.3.0-rc1; judged with 7.2's decisions and one warning."""
    repo, shas = story_repo(tmp_path / "linux", version=(7, 3, 0))
    doc, _, _ = judged(repo.root, [f"{shas['coherent']}..master"])
    assert [(r["target_kernel"], r["target_from"]) for r in doc["revisions"]] == [
        ("6.12", "release"), ("7.3.0", "makefile")]


def test_run_history_git_warns_once_for_targets_newer_than_modelled(merges, threaded_cluster,
                                                                    capsys):
    repo, _ = merges
    capsys.readouterr()
    assert run_history_git(repo.root, ["v4.15-rc1-dts..master"], all_commits=True,
                           target_kernel="7.3-rc1", scheduler=threaded_cluster.scheduler_address,
                           fmt="json") == 0
    out, err = capsys.readouterr()
    assert err.splitlines()[-1] == ("dtb-audit: warning: target kernel 7.3-rc1 is newer than "
                                    "the newest modelled (7.2): judged with 7.2's decisions")
    assert err.count("dtb-audit: warning:") == 1
    assert {r["target_kernel"] for r in json.loads(out)["revisions"]} == {"7.3-rc1"}


# -- the commit that wrote a line ---------------------------------------------------------

def test_introducing_commit_for_a_fixes_tag(story, tmp_path):
    repo, shas = story
    text = (repo.root / A100_DTSI).read_text()
    node = smmu_line(text)
    coherent = next(n for n, l in enumerate(text.splitlines(), 1) if "dma-coherent;" in l)
    assert introducing_commit(repo.root, A100_DTSI, node) == (
        shas["smmu"][:12], "arm64: dts: acme: a100: add the SMMU")
    assert introducing_commit(repo.root / "arch", A100_DTSI, coherent) == (
        shas["coherent"][:12], "arm64: dts: acme: a100: the SMMU is dma-coherent")
    assert introducing_commit(repo.root, A100_DTSI, 10_000) is None
    assert is_checkout(repo.root) and is_checkout(repo.root / "arch")
    assert not is_checkout(tmp_path)
    repo.write({"untracked.dtsi": "x\n"})
    assert introducing_commit(repo.root, "untracked.dtsi", 1) is None
    (tmp_path / "plain").mkdir()
    shutil.copy(repo.root / A100_DTSI, tmp_path / "plain" / "a100.dtsi")
    assert introducing_commit(tmp_path / "plain", "a100.dtsi", node) is None


# -- Debian's DT sources as four commits (network) ----------------------------------------

LS = {"fsl,ls1028a": "arch/arm64/boot/dts/freescale/fsl-ls1028a.dtsi",
      "fsl,ls1088a": "arch/arm64/boot/dts/freescale/fsl-ls1088a.dtsi"}


@pytest.fixture(scope="module")
def debian_history(debian_history_repo):
    """(repo, doc) of the Debian history, judged once on a LocalCluster."""
    root = debian_history_repo
    history = history_git(root, [])
    return root, history


@pytest.mark.network
def test_debian_ls1028a_and_ls1088a_affected_in_6_1_fixed_in_6_12(debian_history):
    root, history = debian_history
    doc = history.history.to_json()
    shas = [r["commit"] for r in doc["revisions"]]
    assert [r["error"] for r in doc["revisions"]] == [None] * 4
    assert [r["target_kernel"].split(".")[:2] for r in doc["revisions"]] == [
        ["5", "10"], ["6", "1"], ["6", "12"], ["7", "2"]]
    assert {r["target_from"] for r in doc["revisions"]} == {"release"}       # v6.1.192 ...
    for soc, dtsi in LS.items():
        found = [(c["commit"], c["from"], c["to"]) for c in changes(doc, soc)]
        assert found == [(shas[1], "unaffected", "affected"),
                         (shas[2], "affected", "unaffected")], soc
        broke, fixed = changes(doc, soc)
        (smmu,) = broke["smmu"]
        assert smmu["path"] == SMMU and smmu["source_file"] == dtsi
        assert smmu["coherent_before"] is False and smmu["coherent_after"] is False
        (smmu,) = fixed["smmu"]
        assert (smmu["coherent_before"], smmu["coherent_after"]) == (False, True)


@pytest.mark.network
def test_debian_5_10_is_judged_as_5_10_nothing_affected(debian_history):
    """Before v5.19 VFIO never asked for IOMMU_CAP_CACHE_COHERENCY (SPEC 1.1)."""
    _, history = debian_history
    assert list(history.history.affected[0]) == []
    assert len(history.history.affected[1]) > 0


def test_a_url_that_cannot_be_fetched_is_one_line(tmp_path, capsys, isolated_cache):
    """Nothing listens on port 9 of loopback: git's own reason, named by the URL."""
    url = "git://127.0.0.1:9/linux.git"
    assert main(["history", "--git", url, "--format", "json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"{url}: error: git clone: ")
    # A transport that runs commands is no URL of ours: a path that does not exist.
    assert main(["history", "--git", "ext::sh -c touch% /tmp/pwned"]) == 2
    assert capsys.readouterr().err == "ext::sh -c touch% /tmp/pwned: error: no such folder\n"
