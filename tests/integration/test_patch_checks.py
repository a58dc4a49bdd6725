"""`dtb-audit patch` checks the tree it patches: the node written at the
recorded line must be the SMMU node (issue 9), and in a git checkout each
patch names the commit that introduced the node (`Fixes:`, issue 12)."""
import os
import re
import subprocess

from auditor.cli import main
from minikernel import VENDOR_DIR, make_minikernel, smmu_line

GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com",
               GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.com")


def _git(tree, *args):
    return subprocess.run(["git", "-C", str(tree), *args], check=True, env=GIT_ENV,
                          capture_output=True, text=True).stdout.strip()


def _saved_sweep(tree, tmp_path, capsys):
    saved = tmp_path / "sweep.json"
    assert main(["sweep", "--kernel", str(tree), "--format", "json", "-o", str(saved)]) == 0
    capsys.readouterr()
    return saved


def test_a_node_moved_since_the_sweep_is_refused(tmp_path, isolated_cache, capsys):
    tree = make_minikernel(tmp_path / "linux")
    saved = _saved_sweep(tree, tmp_path, capsys)
    # Edit the tree after the sweep: a node of the same shape now opens at the
    # recorded line of a100's SMMU (a PCIe-like node pushed up in its place).
    dtsi = os.path.join(tree, VENDOR_DIR, "a100.dtsi")
    line = smmu_line(tree, "a100")
    lines = open(dtsi).read().split("\n")
    lines[line - 1:line - 1] = ["\t\tdecoy: pcie@1f0000000 {", "\t\t\t#iommu-cells = <1>;",
                                "\t\t};"]
    open(dtsi, "w").write("\n".join(lines))
    assert main(["patch", "--sweep", str(saved), "-o", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    # a100's patch is refused with the reason; a200's node did not move.
    assert "a100" not in out and re.search(r"0001-arm64-dts-acme-a200-mark-SMMU", out)
    where = f"{VENDOR_DIR}/a100.dtsi:{line}"
    assert (f"{where}: warning: /soc/iommu@5000000 (acme,a100) not patched: {where}: the node "
            f"written here (/soc/pcie@1f0000000) is not /soc/iommu@5000000: the tree changed "
            f"since the sweep; sweep it again\n") in err
    (patch,) = [p for p in out.split() if not p.endswith("0000-cover-letter.patch")]
    diff = open(patch).read().split("\n---\n", 1)[1]
    assert f"a/{VENDOR_DIR}/a200.dtsi" in diff and "decoy" not in diff


def test_fixes_names_the_commit_that_added_the_node(tmp_path, isolated_cache, capsys):
    tree = make_minikernel(tmp_path / "linux", git=True)
    # A later commit that touches the SMMU's file elsewhere: blame must still
    # name the first commit for the node's line.
    dtsi = os.path.join(tree, VENDOR_DIR, "a100.dtsi")
    with open(dtsi, "a") as f:
        f.write("/* a later comment */\n")
    _git(tree, "commit", "-q", "-am", "arm64: dts: acme: a100: a comment")
    first = _git(tree, "rev-list", "--max-parents=0", "HEAD")
    assert main(["patch", "--kernel", str(tree), "-o", str(tmp_path / "out")]) == 0
    out, _ = capsys.readouterr()
    a100 = [p for p in out.split() if "a100" in p]
    assert len(a100) == 1
    text = open(a100[0]).read()
    assert f'\nFixes: {first[:12]} ("mini kernel")\n' in text
    # The tag stands in the trailer block, before the diffstat.
    assert text.index("Fixes:") < text.index("\n---\n")
