"""history's pure functions, without git or Dask: a SoC's state from its
boards, the stitching of revisions into changes, and what people and robots
read (text, the robot mail, its file name).  Exact outputs, built by hand."""

import re
from pathlib import Path

import pytest

from auditor.documents import (AFFECTED, UNAFFECTED, CommitChange, GitSource, History, Revision,
                                SmmuChange, SocLine)
from auditor.history.mail import mail_name, robot_message, write_mails
from auditor.history.plot import write_plot
from auditor.history.revisions import DtbResult, RevisionResult, Smmu, SocState, soc_states
from auditor.history.stitching import stitch as stitch_history
from auditor.history.text import format_history
from corpus.errors import UserError
from corpus.git import KERNEL, Commit, Repo
from kernels.judging import Judging, Rule
from kernels.target import TargetKernel

REPO = Repo(Path("/src/linux"), KERNEL, Path("/src/linux/.git"), "linux-key")
SHA = {k: f"{k}" * 40 for k in "0123456789abcdef"}


def stitch(repo, commits, results, judging=Judging()):
    """The History's JSON form and the affected SoCs of each revision."""
    h = stitch_history(repo, commits, results, judging)
    return h.to_json(), [list(a) for a in h.affected]


def T(version):
    return TargetKernel.parse(version)


def git_history(revisions, socs=(), affected=None, repo="/src/linux"):
    """A History of commits made by hand: revisions (sha, error) or Revision."""
    revisions = tuple(r if isinstance(r, Revision) else Revision(r[0], None, error=r[1])
                      for r in revisions)
    return History(revisions, tuple(socs), GitSource(repo, KERNEL, None, True),
                   None if affected is None else tuple(tuple(a) for a in affected))


def change(sha, new=AFFECTED, old="absent", boards=1, affected_boards=(), smmu=(),
           subject="s", date="d"):
    return CommitChange(sha, subject, date, old, new, boards, tuple(affected_boards),
                        tuple(smmu), False, None)


def commit(k, parent=None):
    """Commit number k (sha "kkk...", subject "commit k", 2024-01-0k)."""
    return Commit(SHA[str(k)], f"commit {k}", f"2024-01-0{k + 1}T12:00:00+00:00", parent)


def smmu(path, coherent, source_file=None, source_line=None):
    return Smmu(path, coherent, source_file, source_line)


def state(affected_boards, boards, *smmus):
    return SocState(AFFECTED if affected_boards else UNAFFECTED, boards,
                    tuple(affected_boards), tuple(smmus))


# -- soc_states -----------------------------------------------------------------------

def test_soc_states_groups_boards_and_merges_their_smmu_nodes():
    boards = {
        "acme/b-evk.dtb": DtbResult("acme,a", True, (smmu("/soc/iommu@1", False, "a.dtsi", 10),)),
        "acme/a-rdb.dtb": DtbResult("acme,a", False, (smmu("/soc/iommu@1", True),
                                                      smmu("/soc/iommu@0", True, "a.dtsi", 5))),
        # A later board (path order) that writes the node elsewhere: the first
        # known position stays.
        "acme/c-lite.dtb": DtbResult("acme,a", True, (smmu("/soc/iommu@1", True, "c.dts", 99),)),
        "acme/z.dtb": DtbResult("acme,z", False, (smmu("/soc/iommu@9", True, "z.dtsi", 3),)),
        "acme/none.dtb": DtbResult(None, True, (smmu("/soc/iommu@7", False, "n.dtsi", 1),)),
    }
    assert soc_states(boards) == {
        "acme,a": SocState(AFFECTED, 3, ("acme/b-evk.dtb", "acme/c-lite.dtb"),
                           (smmu("/soc/iommu@0", True, "a.dtsi", 5),
                            smmu("/soc/iommu@1", False, "a.dtsi", 10))),
        "acme,z": SocState(UNAFFECTED, 1, (), (smmu("/soc/iommu@9", True, "z.dtsi", 3),)),
    }


def test_soc_states_an_smmu_coherent_on_one_board_and_not_the_next_is_not_coherent():
    boards = {"x/1.dtb": DtbResult("acme,a", False, (smmu("/s", True, "a.dtsi", 4),)),
              "x/2.dtb": DtbResult("acme,a", False, (smmu("/s", False, None, None),))}
    assert soc_states(boards)["acme,a"].smmus == (smmu("/s", False, "a.dtsi", 4),)


def test_soc_states_of_no_board():
    assert soc_states({}) == {}
    assert soc_states({"x.dtb": DtbResult(None, False, ())}) == {}


# -- stitch -----------------------------------------------------------------------------

S_OFF = smmu("/soc/iommu@5000000", False, "arch/arm64/boot/dts/acme/a100.dtsi", 40)
S_ON = smmu("/soc/iommu@5000000", True, "arch/arm64/boot/dts/acme/a100.dtsi", 40)
B_SMMU = smmu("/soc/iommu@6000000", True, "arch/arm64/boot/dts/acme/b.dtsi", 7)


def _story():
    """Five revisions, each compared with the one before it:
    0  a100 affected (one of two boards), b unaffected
    1  a100's board a-evk does not build: a100 keeps its state; d's board
       d-new fails too, d is judged first in 3: d is left out here
    2  a100 fixed (its SMMU gains dma-coherent); d appears: absent -> unaffected
    3  nothing judged (a lost worker): every state kept
    4  b gone (absent), c newly affected, d unchanged"""
    commits = [commit(k) for k in range(5)]
    a_before = state(["acme/a-evk.dtb"], 2, S_OFF)
    a_after = state([], 2, S_ON)
    b = state([], 1, B_SMMU)
    c = state(["acme/c.dtb"], 1)
    d = state([], 2)
    results = [
        RevisionResult(SHA["0"], T("6.1.0"), socs={"acme,a100": a_before, "acme,b": b},
                       judged={"acme/a-evk.dtb": "acme,a100", "acme/a-mini.dtb": "acme,a100",
                               "acme/b.dtb": "acme,b"}),
        RevisionResult(SHA["1"], T("6.1.0"), error="acme/a-evk.dts: error: syntax error",
                       failed=("acme/a-evk.dtb", "acme/d-new.dtb"),
                       socs={"acme,a100": state([], 1, S_OFF), "acme,b": b,
                             "acme,d": state([], 1)},
                       judged={"acme/d-old.dtb": "acme,d"}),
        RevisionResult(SHA["2"], T("6.1.0"), socs={"acme,a100": a_after, "acme,b": b, "acme,d": d},
                       judged={"acme/a-evk.dtb": "acme,a100", "acme/d-new.dtb": "acme,d"}),
        RevisionResult(SHA["3"], error="not judged: KilledWorker: lost", judged_all=False),
        RevisionResult(SHA["4"], T("6.2.0"), socs={"acme,a100": a_after, "acme,c": c, "acme,d": d},
                       judged={"acme/c.dtb": "acme,c"}),
    ]
    return commits, results


def test_stitch_the_document_and_the_affected_socs():
    commits, results = _story()
    doc, affected = stitch(REPO, commits, results, Judging(None, Rule.WALK_ONLY, False))
    assert affected == [["acme,a100"], ["acme,a100"], [], [], ["acme,c"]]
    assert doc == {
        "tool": "dtb-audit",
        "kind": "history",
        "repo": "/src/linux",
        "layout": "kernel",
        "rule": "walk-only",
        "legacy_dt_bindings": False,
        "revisions": [
            {"commit": SHA["0"], "subject": "commit 0", "date": "2024-01-01T12:00:00+00:00",
             "target_kernel": "6.1.0", "target_from": None, "release": None,
             "error": None},
            {"commit": SHA["1"], "subject": "commit 1", "date": "2024-01-02T12:00:00+00:00",
             "target_kernel": "6.1.0", "target_from": None, "release": None,
             "error": "acme/a-evk.dts: error: syntax error"},
            {"commit": SHA["2"], "subject": "commit 2", "date": "2024-01-03T12:00:00+00:00",
             "target_kernel": "6.1.0", "target_from": None, "release": None,
             "error": None},
            {"commit": SHA["3"], "subject": "commit 3", "date": "2024-01-04T12:00:00+00:00",
             "target_kernel": None, "target_from": None, "release": None,
             "error": "not judged: KilledWorker: lost"},
            {"commit": SHA["4"], "subject": "commit 4", "date": "2024-01-05T12:00:00+00:00",
             "target_kernel": "6.2.0", "target_from": None, "release": None,
             "error": None},
        ],
        "socs": [
            {"soc": "acme,a100", "changes": [
                {"commit": SHA["2"], "subject": "commit 2", "date": "2024-01-03T12:00:00+00:00",
                 "from": "affected", "to": "unaffected", "boards": 2, "affected_boards": [],
                 "smmu": [{"path": "/soc/iommu@5000000", "coherent_before": False,
                           "coherent_after": True,
                           "source_file": "arch/arm64/boot/dts/acme/a100.dtsi",
                           "source_line": 40}],
                 "removes_dma_coherent": False, "upstream": None}]},
            {"soc": "acme,b", "changes": [
                {"commit": SHA["4"], "subject": "commit 4", "date": "2024-01-05T12:00:00+00:00",
                 "from": "unaffected", "to": "absent", "boards": 0, "affected_boards": [],
                 "smmu": [{"path": "/soc/iommu@6000000", "coherent_before": True,
                           "coherent_after": None,
                           "source_file": "arch/arm64/boot/dts/acme/b.dtsi",
                           "source_line": 7}],
                 "removes_dma_coherent": False, "upstream": None}]},
            {"soc": "acme,c", "changes": [
                {"commit": SHA["4"], "subject": "commit 4", "date": "2024-01-05T12:00:00+00:00",
                 "from": "absent", "to": "affected", "boards": 1,
                 "affected_boards": ["acme/c.dtb"], "smmu": [],
                 "removes_dma_coherent": False, "upstream": None}]},
            {"soc": "acme,d", "changes": [
                {"commit": SHA["2"], "subject": "commit 2", "date": "2024-01-03T12:00:00+00:00",
                 "from": "absent", "to": "unaffected", "boards": 2, "affected_boards": [],
                 "smmu": [], "removes_dma_coherent": False, "upstream": None}]},
        ],
    }


def test_a_commit_removing_dma_coherent_is_marked_as_a_revert_and_upstream_named():
    """sdm845's apps SMMU loses dma-coherent (upstream's revert in v6.14,
    CVE-2025-22012): the change says it removes dma-coherent, names what
    upstream settled, and the text and the robot's mail say so; an SMMU no
    table knows is marked without a name."""
    apps_on = smmu("/soc@0/iommu@15000000", True, "arch/arm64/boot/dts/qcom/sdm845.dtsi", 5092)
    apps_off = smmu("/soc@0/iommu@15000000", False, "arch/arm64/boot/dts/qcom/sdm845.dtsi", 5092)
    commits = [commit(0), commit(1)]
    results = [RevisionResult(SHA["0"], T("6.13.0"), socs={"qcom,sdm845": state([], 1, apps_on),
                                                         "acme,a100": state([], 1, S_ON)}),
               RevisionResult(SHA["1"], T("6.14.0"), socs={
                   "qcom,sdm845": state(["qcom/sdm845-mtp.dtb"], 1, apps_off),
                   "acme,a100": state(["acme/a.dtb"], 1, S_OFF)})]
    h = stitch_history(REPO, commits, results)
    doc = h.to_json()
    changes = {s["soc"]: s["changes"] for s in doc["socs"]}
    (sdm845,) = changes["qcom,sdm845"]
    assert sdm845["removes_dma_coherent"] is True
    assert sdm845["upstream"].startswith("f00db31d2359 (\"Revert ")
    assert "CVE-2025-22012" in sdm845["upstream"]
    (a100,) = changes["acme,a100"]
    assert (a100["removes_dma_coherent"], a100["upstream"]) == (True, None)
    text = format_history(h)
    assert text.count("a revert: this commit removes dma-coherent from an SMMU node") == 4
    assert text.count("upstream: f00db31d2359") == 2       # the change and the robot's mail
    assert "if the hardware is not coherent on every board, VFIO's refusal is right" in text


def test_stitch_compares_a_revision_with_its_listed_parent():
    # 2's parent is 0 (a merge listed along first parents; 1 is on the side
    # branch): 2 is compared with 0, not with 1.
    commits = [commit(0), commit(1, SHA["0"]), commit(2, SHA["0"]), commit(3, SHA["f"])]
    on, off = state([], 1, S_ON), state(["acme/a.dtb"], 1, S_OFF)
    results = [RevisionResult(SHA["0"], socs={"acme,a100": on}),
               RevisionResult(SHA["1"], socs={"acme,a100": off}),
               RevisionResult(SHA["2"], socs={"acme,a100": on}),
               RevisionResult(SHA["3"], socs={"acme,a100": off})]
    doc, affected = stitch(REPO, commits, results)
    assert affected == [[], ["acme,a100"], [], ["acme,a100"]]
    (a100,) = doc["socs"]
    # 3's parent is not listed: it is compared with 2, the revision before it.
    assert [(c["commit"], c["from"], c["to"]) for c in a100["changes"]] == [
        (SHA["1"], "unaffected", "affected"), (SHA["3"], "unaffected", "affected")]
    assert doc["rule"] is None and doc["legacy_dt_bindings"] is True


def test_stitch_a_listed_parent_after_the_commit_is_not_its_base():
    commits = [commit(0), commit(1, SHA["2"]), commit(2)]
    results = [RevisionResult(SHA["0"], socs={"acme,a100": state([], 1, S_ON)}),
               RevisionResult(SHA["1"], socs={"acme,a100": state(["x.dtb"], 1, S_OFF)}),
               RevisionResult(SHA["2"], socs={"acme,a100": state(["x.dtb"], 1, S_OFF)})]
    doc, _ = stitch(REPO, commits, results)
    assert [(c["commit"], c["from"], c["to"]) for c in doc["socs"][0]["changes"]] == [
        (SHA["1"], "unaffected", "affected")]


def test_stitch_a_failed_board_of_a_soc_that_had_no_state_removes_it():
    # The SoC of x.dtb is known from a later revision only; in 0 it failed, so
    # its SoC (judged through another board) is not counted there.
    commits = [commit(0), commit(1)]
    results = [RevisionResult(SHA["0"], failed=("x.dtb",),
                              socs={"acme,a100": state(["y.dtb"], 1, S_OFF)},
                              judged={"y.dtb": "acme,a100"}),
               RevisionResult(SHA["1"], socs={"acme,a100": state(["x.dtb", "y.dtb"], 2, S_OFF)},
                              judged={"x.dtb": "acme,a100"})]
    doc, affected = stitch(REPO, commits, results)
    assert affected == [[], ["acme,a100"]]
    assert [(c["commit"], c["from"], c["to"], c["affected_boards"])
            for c in doc["socs"][0]["changes"]] == [
        (SHA["1"], "absent", "affected", ["x.dtb", "y.dtb"])]


def test_stitch_a_failed_board_never_judged_changes_nothing():
    commits = [commit(0), commit(1)]
    results = [RevisionResult(SHA["0"], socs={"acme,a100": state(["y.dtb"], 1, S_OFF)}),
               RevisionResult(SHA["1"], failed=("unknown.dtb",),
                              socs={"acme,a100": state(["y.dtb"], 1, S_OFF)})]
    doc, affected = stitch(REPO, commits, results)
    assert affected == [["acme,a100"], ["acme,a100"]]
    assert doc["socs"] == []


def test_stitch_the_state_of_the_last_judging_wins_over_a_later_one():
    # x.dtb was acme,a100's in 0 and is acme,b's from 2 on: its failure in 1
    # keeps acme,a100 (the SoC it had when last judged), not acme,b.
    commits = [commit(0), commit(1), commit(2)]
    results = [RevisionResult(SHA["0"], socs={"acme,a100": state(["x.dtb"], 1, S_OFF),
                                              "acme,b": state([], 1)},
                              judged={"x.dtb": "acme,a100"}),
               RevisionResult(SHA["1"], failed=("x.dtb",), socs={"acme,b": state([], 1)}),
               RevisionResult(SHA["2"], socs={"acme,b": state(["x.dtb"], 1)},
                              judged={"x.dtb": "acme,b"})]
    _, affected = stitch(REPO, commits, results)
    assert affected == [["acme,a100"], ["acme,a100"], ["acme,b"]]


def test_a_change_shows_only_the_smmus_that_flipped():
    other = smmu("/soc/iommu@7000000", False, "arch/arm64/boot/dts/acme/a100.dtsi", 60)
    commits = [commit(0), commit(1)]
    results = [RevisionResult(SHA["0"], socs={"acme,a100": state([], 1, S_ON, other)}),
               RevisionResult(SHA["1"], socs={"acme,a100": state([], 1, S_OFF, other)})]
    doc, _ = stitch(REPO, commits, results)
    # The state did not change, an SMMU lost dma-coherent: a change all the same.
    assert doc["socs"] == [{"soc": "acme,a100", "changes": [
        {"commit": SHA["1"], "subject": "commit 1", "date": "2024-01-02T12:00:00+00:00",
         "from": "unaffected", "to": "unaffected", "boards": 1, "affected_boards": [],
         "smmu": [{"path": "/soc/iommu@5000000", "coherent_before": True,
                   "coherent_after": False,
                   "source_file": "arch/arm64/boot/dts/acme/a100.dtsi", "source_line": 40}],
         "removes_dma_coherent": True, "upstream": None}]}]


def test_a_change_places_each_smmu_where_a_side_knows_it():
    # After: the position the new revision gives; else the old one; else none.
    new_only = smmu("/n", False, "new.dtsi", 2)
    old_pos, old_none = smmu("/o", False, "old.dtsi", 3), smmu("/o", False)
    unknown = smmu("/u", False)
    moved_before, moved_after = smmu("/m", False, "before.dtsi", 4), smmu("/m", False,
                                                                           "after.dtsi", 5)
    commits = [commit(0), commit(1)]
    results = [RevisionResult(SHA["0"], socs={"acme,a100": state([], 1, old_pos, unknown,
                                                                 moved_before)}),
               RevisionResult(SHA["1"], socs={"acme,a100": state(["a.dtb"], 1, new_only,
                                                                 old_none, moved_after)})]
    doc, _ = stitch(REPO, commits, results)
    (change,) = doc["socs"][0]["changes"]
    assert change["smmu"] == [
        {"path": "/m", "coherent_before": False, "coherent_after": False,
         "source_file": "after.dtsi", "source_line": 5},
        {"path": "/n", "coherent_before": None, "coherent_after": False,
         "source_file": "new.dtsi", "source_line": 2},
        {"path": "/o", "coherent_before": False, "coherent_after": False,
         "source_file": "old.dtsi", "source_line": 3},
        {"path": "/u", "coherent_before": False, "coherent_after": None,
         "source_file": None, "source_line": None},
    ]


# -- what people and robots read ------------------------------------------------------

def _history():
    commits, results = _story()
    return stitch_history(REPO, commits, results)


def test_newly_affected_in_revision_order_then_by_soc():
    h = git_history([("b" * 40, None), ("a" * 40, None)],
                    [SocLine("acme,x", (change("a" * 40), change("b" * 40))),
                     SocLine("acme,w", (change("a" * 40), change("b" * 40, UNAFFECTED)))])
    assert [(soc, c.commit[0]) for soc, c in h.newly_affected()] == [
        ("acme,x", "b"), ("acme,w", "a"), ("acme,x", "a")]


def test_new_since_first():
    assert git_history([]).new_since_first() == []
    assert git_history([], affected=[["acme,a"], ["acme,c", "acme,b", "acme,a"]]) \
        .new_since_first() == ["acme,b", "acme,c"]
    assert git_history([], affected=[["acme,a", "acme,b"], ["acme,b"]]) \
        .new_since_first() == []


ROBOT_C = f"""\
Subject: [dtb-audit] acme,c: VFIO refuses its devices since {SHA['4'][:12]}

tree:   /src/linux
commit: {SHA['4']} (commit 4)
date:   2024-01-05T12:00:00+00:00
target kernel: 6.2.0

If you fix the issue in a separate patch/commit (i.e. not just a new version of
the same patch/commit), kindly add the following tag
| Fixes: {SHA['4'][:12]} ("commit 4")

acme,c went from absent to affected: on 1 of its 1 boards,
VFIO (vfio-pci, vfio-platform, vfio-fsl-mc) and iommufd refuse a device because
its IOMMU does not report IOMMU_CAP_CACHE_COHERENCY.

SMMU nodes:
   (none)

boards:
   acme/c.dtb

If the SMMU's page-table walk is coherent (IDR0.CTTW), the node lacks
`dma-coherent;`: confirm it on hardware before patching.
"""


def test_format_text_without_mails():
    assert format_history(_history(), mails=False) == f"""\
dtb-audit history: /src/linux: 5 revisions, 4 SoCs changed

  {SHA['0'][:12]}  2024-01-01  6.1.0        1 affected  commit 0
  {SHA['1'][:12]}  2024-01-02  6.1.0        1 affected  commit 1  [error: acme/a-evk.dts: error: syntax error]
  {SHA['2'][:12]}  2024-01-03  6.1.0        0 affected  commit 2
  {SHA['3'][:12]}  2024-01-04  -            0 affected  commit 3  [error: not judged: KilledWorker: lost]
  {SHA['4'][:12]}  2024-01-05  6.2.0        1 affected  commit 4

acme,a100
  {SHA['2'][:12]}  2024-01-03  affected -> unaffected  commit 2
      arch/arm64/boot/dts/acme/a100.dtsi:40: /soc/iommu@5000000: dma-coherent added

acme,b
  {SHA['4'][:12]}  2024-01-05  unaffected -> absent  commit 4
      arch/arm64/boot/dts/acme/b.dtsi:7: /soc/iommu@6000000: no longer on any board

acme,c
  {SHA['4'][:12]}  2024-01-05  absent -> affected (1/1 boards)  commit 4

acme,d
  {SHA['2'][:12]}  2024-01-03  absent -> unaffected  commit 2
"""


def test_format_text_ends_with_the_robot_mails():
    h = _history()
    text = format_history(h)
    assert text == format_history(h, mails=False) + "\n" + "-" * 72 + "\n" + ROBOT_C


def test_robot_message_smmu_lines_and_many_boards():
    boards = [f"acme/b{k:02d}.dtb" for k in range(14)]
    made = change(SHA["7"], old="unaffected", boards=20, affected_boards=boards,
                  subject="arm64: dts: acme: drop dma-coherent",
                  date="2024-02-01T00:00:00+00:00",
                  smmu=[SmmuChange("/soc/iommu@1", True, False,
                                   "arch/arm64/boot/dts/acme/a.dtsi", 12),
                        SmmuChange("/soc/iommu@2", None, True, None, None),
                        SmmuChange("/soc/iommu@3", False, False, None, None),
                        SmmuChange("/soc/iommu@4", True, True, "x.dtsi", 1)])
    h = git_history([Revision(SHA["6"], T("6.9.0")), Revision(SHA["7"], None)])
    message = robot_message(h, "acme,a", made)
    assert "\ntarget kernel: unknown\n" in message
    assert "\nacme,a went from unaffected to affected: on 14 of its 20 boards,\n" in message
    smmus = message.split("SMMU nodes:\n", 1)[1].split("\n\nboards:\n", 1)
    assert smmus[0] == (">> arch/arm64/boot/dts/acme/a.dtsi:12: /soc/iommu@1: "
                        "dma-coherent removed\n"
                        ">> /soc/iommu@2: dma-coherent\n"
                        ">> /soc/iommu@3: not dma-coherent\n"
                        ">> x.dtsi:1: /soc/iommu@4: dma-coherent")
    assert smmus[1].split("\n\n")[0] == "\n".join(
        [f"   acme/b{k:02d}.dtb" for k in range(12)] + ["   ... and 2 more"])


def test_robot_message_twelve_boards_are_all_listed():
    made = change(SHA["7"], boards=12, affected_boards=[f"b{k:02d}.dtb" for k in range(12)])
    message = robot_message(git_history([], repo="r"), "acme,a", made)
    assert message.split("\nboards:\n", 1)[1].split("\n\n")[0] == "\n".join(
        f"   b{k:02d}.dtb" for k in range(12))


def test_mail_name():
    made = change(SHA["c"])
    assert mail_name(3, "fsl,ls1028a", made) == f"0003-fsl_ls1028a-{SHA['c'][:12]}.txt"
    assert mail_name(12, "v+1.x-y z/w", made) == f"0012-v+1.x-y_z_w-{SHA['c'][:12]}.txt"
    assert mail_name(1, "Acme,A100-Z9", made) == f"0001-Acme_A100-Z9-{SHA['c'][:12]}.txt"


def test_write_mails_one_file_per_newly_affected_soc(tmp_path):
    h = _history()
    folder = tmp_path / "mails" / "new"
    written = write_mails(h, folder)
    assert written == [folder / f"0001-acme_c-{SHA['4'][:12]}.txt"]
    assert written[0].read_text() == ROBOT_C
    # Again into the same folder (a nightly run): the same file, rewritten.
    assert write_mails(h, folder) == written
    assert sorted(folder.iterdir()) == written
    assert write_mails(git_history([]), tmp_path / "none") == []
    assert list((tmp_path / "none").iterdir()) == []


@pytest.mark.parametrize("before,after,what", [
    (False, True, "dma-coherent added"), (True, False, "dma-coherent removed"),
    (True, None, "no longer on any board"), (None, None, "no longer on any board"),
    (True, True, "dma-coherent"), (None, False, "not dma-coherent")])
def test_smmu_lines(before, after, what):
    made = change(SHA["1"], affected_boards=["a.dtb"],
                  smmu=[SmmuChange("/soc/iommu@1", before, after, "f.dtsi", 9)])
    message = robot_message(git_history([], repo="r"), "acme,a", made)
    assert f"\n>> f.dtsi:9: /soc/iommu@1: {what}\n" in message


# -- the plot ---------------------------------------------------------------------------
# Text stays text in the SVG (svg.fonttype none): every word on it is compared.

def _svg(history, path):
    write_plot(history, path)
    svg = path.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    size = re.search(r'<svg[^>]* width="([0-9.]+pt)" height="([0-9.]+pt)"', svg).groups()
    return (size, re.findall(r"<text[^>]*>([^<]*)</text>", svg),
            sorted(set(re.findall(r"#[0-9a-f]{6}", svg))))


# the marks, the errors, the black text, the grid, the frame, the background: and
# no colour of matplotlib's default cycle
COLOURS = ["#000000", "#27ae60", "#444444", "#888888", "#b0b0b0", "#c0392b", "#cccccc", "#ffffff"]


def test_plot_svg(tmp_path):
    h = _history()
    path = tmp_path / "History.SVG"       # the suffix in any case
    size, texts, colours = _svg(h, path)
    assert size == ("576pt", "360pt")       # 8 x 5 inches at least
    assert texts == [SHA[str(k)][:12] for k in range(5)] + [
        "revision", "0", "1", "2", "affected SoCs", f"+1 {SHA['4'][:12]}", "acme,c",
        f"-1 {SHA['2'][:12]}", "acme,a100",
        "SoCs VFIO refuses (IOMMU_CAP_CACHE_COHERENCY) over 5 revisions of linux",
        "affected SoCs", "newly affected", "no longer affected", "build errors"]
    assert colours == COLOURS
    assert [p.name for p in tmp_path.iterdir()] == ["History.SVG"]


def _revisions(n):
    return [(f"{k:02d}" * 20, None) for k in range(n)]


def test_plot_of_45_revisions_names_three_socs_and_counts_the_rest(tmp_path):
    revisions = _revisions(45)
    socs = [SocLine(f"acme,s{k}", (change(revisions[3][0]),)) for k in range(5)]
    affected = [[] for _ in range(3)] + [[s.soc for s in socs]] * 42
    size, texts, colours = _svg(git_history(revisions, socs, affected,
                                            "/src/devicetree-rebasing"), tmp_path / "h.svg")
    # Wider with more revisions: 0.35 inch each and 4 more.
    assert size == ("1422pt", "360pt")
    # Over 40 revisions: numbers under the axis, not commits; no build errors to show.
    assert texts == ["0", "10", "20", "30", "40", "revision", "0", "1", "2", "3", "4", "5", "6",
                     "7", "affected SoCs", "+5 030303030303", "acme,s0, acme,s1, acme,s2 +2",
                     "SoCs VFIO refuses (IOMMU_CAP_CACHE_COHERENCY) over 45 revisions of "
                     "devicetree-rebasing", "affected SoCs", "newly affected", "no longer affected"]
    assert colours == [c for c in COLOURS if c != "#888888"]


def test_plot_of_40_revisions_shows_their_commits(tmp_path):
    revisions = _revisions(40)
    up = [SocLine(f"acme,u{k}", (change(revisions[1][0]),)) for k in range(3)]
    down = [SocLine(f"acme,d{k}", (change(revisions[2][0], UNAFFECTED, AFFECTED),))
            for k in range(4)]
    size, texts, _ = _svg(git_history(revisions, up + down,
                                      [["x"] * 4, ["x"] * 7] + [["x"] * 3] * 38),
                          tmp_path / "h.svg")
    assert size == ("1296pt", "360pt")
    assert texts == [f"{k:02d}" * 6 for k in range(40)] + [
        "revision", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "affected SoCs",
        "+3 010101010101", "acme,u0, acme,u1, acme,u2",
        "-4 020202020202", "acme,d0, acme,d1, acme,d2 +1",
        "SoCs VFIO refuses (IOMMU_CAP_CACHE_COHERENCY) over 40 revisions of linux",
        "affected SoCs", "newly affected", "no longer affected"]


def test_plot_of_41_revisions_does_not(tmp_path):
    _, texts, _ = _svg(git_history(_revisions(41), affected=[[]] * 41), tmp_path / "h.svg")
    assert not [t for t in texts if len(t) == 12]


def test_plot_width_stops_at_24_inches(tmp_path):
    revisions = _revisions(70)
    revisions[7] = (revisions[7][0], "acme/a.dts: error: syntax error")
    size, texts, colours = _svg(git_history(revisions, affected=[[]] * 70), tmp_path / "h.svg")
    assert size == ("1728pt", "360pt")
    assert texts[-4:] == ["affected SoCs", "newly affected", "no longer affected", "build errors"]
    assert colours == COLOURS


def test_plot_png_and_a_name_that_is_neither(tmp_path):
    h = _history()
    write_plot(h, tmp_path / "h.png")
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(UserError) as raised:
        write_plot(h, tmp_path / "h.pdf")
    assert str(raised.value) == f"{tmp_path / 'h.pdf'}: error: the plot is written as .svg or .png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.png"]


# -- one chunk in this process (a small git repository) ---------------------------------

def test_a_chunk_gives_one_result_per_commit_named_by_its_sha(tmp_path, isolated_cache):
    from auditor.history.revisions import history_chunk
    from corpus.git import open_repo, revisions
    from gitrepo import story_repo

    root, shas = story_repo(tmp_path / "linux")
    commits = revisions(open_repo(root.root), [f"{shas['initial']}..{shas['master']}"])
    results = history_chunk(str(root.root), commits, Judging(), jobs=1)
    # A range starts at its bottom; the README commit touches no DT source.
    assert [r.commit for r in results] == [c.sha for c in commits] == [
        shas["initial"], shas["smmu"], shas["master"]]
    assert [str(r.target_kernel) for r in results] == ["6.11", "6.12", "6.12"]  # releases
    assert [sorted(r.socs) for r in results] == [["acme,a200", "acme,a400"]] + [
        ["acme,a100", "acme,a200", "acme,a400"]] * 2


def test_stitch_a_failed_board_keeps_the_soc_it_had_last():
    # x.dtb was acme,a100's, then acme,b's; when it fails, acme,b keeps its state.
    commits = [commit(0), commit(1), commit(2)]
    results = [RevisionResult(SHA["0"], socs={"acme,a100": state(["x.dtb"], 2, S_OFF)},
                              judged={"x.dtb": "acme,a100", "y.dtb": "acme,a100"}),
               RevisionResult(SHA["1"], socs={"acme,a100": state([], 1, S_ON),
                                              "acme,b": state(["x.dtb"], 1)},
                              judged={"x.dtb": "acme,b", "y.dtb": "acme,a100"}),
               RevisionResult(SHA["2"], failed=("x.dtb",),
                              socs={"acme,a100": state([], 1, S_ON)})]
    _, affected = stitch(REPO, commits, results)
    assert affected == [["acme,a100"], ["acme,b"], ["acme,b"]]


def test_stitch_every_failed_board_is_looked_at():
    # The first failed board has no known SoC, the second is acme,a100's, the
    # third's SoC (known later) has no state on either side.
    commits = [commit(0), commit(1), commit(2)]
    results = [RevisionResult(SHA["0"], socs={"acme,a100": state(["y.dtb"], 1, S_OFF)},
                              judged={"y.dtb": "acme,a100"}),
               RevisionResult(SHA["1"], failed=("a-unknown.dtb", "y.dtb", "z.dtb")),
               RevisionResult(SHA["2"], socs={"acme,a100": state(["y.dtb"], 1, S_OFF),
                                              "acme,z": state([], 1)},
                              judged={"z.dtb": "acme,z"})]
    doc, affected = stitch(REPO, commits, results)
    assert affected == [["acme,a100"], ["acme,a100"], ["acme,a100"]]
    assert [(s["soc"], [(c["commit"], c["from"], c["to"]) for c in s["changes"]])
            for s in doc["socs"]] == [("acme,z", [(SHA["2"], "absent", "unaffected")])]


def test_a_change_places_a_new_smmu_without_a_position_nowhere():
    commits = [commit(0), commit(1)]
    results = [RevisionResult(SHA["0"], socs={"acme,a100": state([], 1)}),
               RevisionResult(SHA["1"], socs={"acme,a100": state(["a.dtb"], 1, smmu("/w", False))})]
    doc, _ = stitch(REPO, commits, results)
    assert doc["socs"][0]["changes"][0]["smmu"] == [
        {"path": "/w", "coherent_before": None, "coherent_after": False, "source_file": None,
         "source_line": None}]


def test_plot_labels_of_forged_soc_names_are_escaped_text(tmp_path):
    """A SoC name is DTB text: its control characters are shown escaped (an
    SVG holding a raw ESC is not XML) and a `$` is a dollar, not the start of
    matplotlib's mathtext (which would fail or print something else)."""
    import xml.etree.ElementTree as ET
    revisions = _revisions(3)
    forged = "evil\x1b[31m,$x^2$"
    h = git_history(revisions, [SocLine(forged, (change(revisions[1][0]),))],
                    [[], [forged], [forged]])
    path = tmp_path / "h.svg"
    write_plot(h, path)
    ET.parse(path)                                   # well-formed XML
    svg = path.read_text()
    assert "\x1b" not in svg
    assert "evil\\x1b[31m,$x^2$" in re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_plot_title_names_a_repository_with_dollars_as_it_is(tmp_path):
    """The folder name is the user's text: `$...$` in it is dollars, not
    matplotlib's mathtext."""
    h = git_history(_revisions(2), [], [[], []], repo="/src/l$x^2$")
    _, texts, _ = _svg(h, tmp_path / "h.svg")
    assert "SoCs VFIO refuses (IOMMU_CAP_CACHE_COHERENCY) over 2 revisions of l$x^2$" in texts


def test_plot_marks_each_revision_at_its_count(tmp_path):
    """A dot per revision on the line of affected SoCs: one SoC affected in
    every revision puts the four dots at one height, that of the +1 mark."""
    revisions = _revisions(4)
    h = git_history(revisions, [SocLine("acme,a", (change(revisions[0][0]),))],
                    [["acme,a"]] * 4)
    path = tmp_path / "h.svg"
    write_plot(h, path)
    svg = path.read_text()
    styles = dict(re.findall(r'<path id="(m\w+)" d="[^"]*" style="([^"]*)"', svg))
    uses = re.findall(r'<use xlink:href="#(\w+)" x="([\d.]+)" y="([\d.]+)"', svg)
    dots = [(x, y) for m, x, y in uses if "#444444" in styles[m]]    # the line's colour
    ups = [(x, y) for m, x, y in uses if "#c0392b" in styles[m]]     # newly affected
    assert len({x for x, _ in dots}) == 4 and len({y for _, y in dots}) == 1
    assert ups[0] == dots[0]
