"""Small git repositories for the history tests, made with real git.

GitRepo writes files and commits them with fixed authors and dates, so
every run makes the same history. story_repo() is the kernel-shaped story
the history must tell (built from tests/minikernel.py's SoCs):

  initial     a400 (dma-coherent SMMU, PCIe) and a200 (dma-coherent SMMU, fsl-mc)
  smmu        a100 appears: its SMMU without dma-coherent, no masters   absent -> unaffected
  readme      a README only: not a DT commit, never a revision
  master      a100 gains a PCIe root complex behind the SMMU            unaffected -> affected
  comment     a comment in a400.dtsi: a400-evk is rebuilt, its bytes do not change
  coherent    a100's SMMU gets dma-coherent                             affected -> unaffected
  removed     a200-rdb, a200's only board, is removed                   unaffected -> absent
  (tags v6.11 at initial, v6.12 at coherent)

rebasing_repo() is the same first three DT steps in devicetree-rebasing's
layout (src/arm64/acme, include/dt-bindings, tags v6.11-dts and v6.12-dts).
"""

import os
import subprocess
from pathlib import Path

from minikernel import (BOARD, ECAM, ENABLE_ENETC, FSL_MC, GIC_H, MAKEFILE_LIB, SMMU, SOC_HEAD,
                        SOC_TAIL, TOP_MAKEFILE, VENDOR_DIR)

GIC = "include/dt-bindings/interrupt-controller/arm-gic.h"


class GitRepo:
    """A git repository under `root`; each commit one day after the last."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.day = 0
        self.git("init", "-q", "-b", "master")

    def git(self, *args: str) -> str:
        date = f"2024-01-{self.day + 1:02d}T12:00:00Z"
        env = dict(os.environ, GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com",
                   GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.com",
                   GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date, GIT_CONFIG_NOSYSTEM="1",
                   HOME=str(self.root))
        proc = subprocess.run(["git", "-C", str(self.root), *args], env=env,
                              capture_output=True, text=True, check=True)
        return proc.stdout

    def write(self, files: dict) -> None:
        """{path: text} written, {path: None} removed; ("->", target) makes a link."""
        for rel, text in files.items():
            path = self.root / rel
            if text is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(text, tuple):
                if os.path.lexists(path):
                    path.unlink()
                os.symlink(text[1], path)
            else:
                path.write_text(text)

    def commit(self, subject: str, files: dict) -> str:
        self.write(files)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", subject)
        self.day += 1
        return self.git("rev-parse", "HEAD").strip()

    def tag(self, name: str, rev: str = "HEAD") -> None:
        self.git("tag", name, rev)


def soc_dtsi(name: str, coherent: bool, *blocks: str) -> str:
    smmu = SMMU.format(coherent="\n\t\t\tdma-coherent;" if coherent else "")
    return SOC_HEAD.format(name=name) + smmu + "".join(blocks) + SOC_TAIL


def board(soc: str, name: str, extra: str = "") -> str:
    return BOARD.format(soc=soc, board=name, extra=extra)


def vendor_makefile(*boards: str) -> str:
    return "".join(f"dtb-$(CONFIG_ARCH_ACME) += {b}.dtb\n" for b in boards)


def story_repo(root, version=(6, 12, 0)):
    """The story above as a kernel tree; returns (GitRepo, {step: sha})."""
    repo = GitRepo(root)
    v = VENDOR_DIR
    shas = {}
    shas["initial"] = repo.commit("arm64: dts: acme: add the a400 and a200 SoCs", {
        "Makefile": TOP_MAKEFILE.format(major=version[0], minor=version[1], sublevel=version[2]),
        "scripts/Makefile.lib": MAKEFILE_LIB,
        GIC: GIC_H,
        "scripts/dtc/include-prefixes/arm64": ("->", "../../../arch/arm64/boot/dts"),
        "scripts/dtc/include-prefixes/dt-bindings": ("->", "../../../include/dt-bindings"),
        f"{v}/Makefile": vendor_makefile("a400-evk", "a200-rdb"),
        f"{v}/a400.dtsi": soc_dtsi("a400", True, ECAM),
        f"{v}/a400-evk.dts": board("a400", "evk", ENABLE_ENETC),
        f"{v}/a200.dtsi": soc_dtsi("a200", True, FSL_MC),
        f"{v}/a200-rdb.dts": board("a200", "rdb"),
    })
    repo.tag("v6.11")
    shas["smmu"] = repo.commit("arm64: dts: acme: a100: add the SMMU", {
        f"{v}/Makefile": vendor_makefile("a400-evk", "a200-rdb", "a100-evk", "a100-mini"),
        f"{v}/a100.dtsi": soc_dtsi("a100", False),
        f"{v}/a100-evk.dts": board("a100", "evk"),
        f"{v}/a100-mini.dts": board("a100", "mini"),
    })
    shas["readme"] = repo.commit("README: say what the tree is", {"README": "A test tree.\n"})
    shas["master"] = repo.commit("arm64: dts: acme: a100: add the PCIe root complex", {
        f"{v}/a100.dtsi": soc_dtsi("a100", False, ECAM),
        f"{v}/a100-evk.dts": board("a100", "evk", ENABLE_ENETC),
    })
    shas["comment"] = repo.commit("arm64: dts: acme: a400: spell the SoC name out", {
        f"{v}/a400.dtsi": soc_dtsi("a400", True, ECAM).replace(
            "ACME a400 SoC", "ACME a400 (A-four-hundred) SoC"),
    })
    shas["coherent"] = repo.commit("arm64: dts: acme: a100: the SMMU is dma-coherent", {
        f"{v}/a100.dtsi": soc_dtsi("a100", True, ECAM),
    })
    repo.tag("v6.12")
    shas["removed"] = repo.commit("arm64: dts: acme: remove a200-rdb", {
        f"{v}/Makefile": vendor_makefile("a400-evk", "a100-evk", "a100-mini"),
        f"{v}/a200-rdb.dts": None,
    })
    return repo, shas


def smmu_line(text: str) -> int:
    """1-based line of the SMMU node in a .dtsi text."""
    return next(n for n, line in enumerate(text.splitlines(), 1)
                if "smmu: iommu@5000000 {" in line)


def rebasing_repo(root):
    """initial, smmu, master of the story in devicetree-rebasing's layout."""
    repo = GitRepo(root)
    v = "src/arm64/acme"
    shas = {}
    shas["initial"] = repo.commit("arm64: dts: acme: add the a400 SoC", {
        "Makefile": "# devicetree-rebasing's own Makefile: not kbuild\nall:\n",
        GIC: GIC_H,
        f"{v}/a400.dtsi": soc_dtsi("a400", True, ECAM),
        f"{v}/a400-evk.dts": board("a400", "evk", ENABLE_ENETC),
    })
    repo.tag("v6.11-dts")
    shas["smmu"] = repo.commit("arm64: dts: acme: a100: add the SMMU", {
        f"{v}/a100.dtsi": soc_dtsi("a100", False),
        f"{v}/a100-evk.dts": board("a100", "evk"),
    })
    repo.tag("v6.12-dts")
    shas["master"] = repo.commit("arm64: dts: acme: a100: add the PCIe root complex", {
        f"{v}/a100.dtsi": soc_dtsi("a100", False, ECAM),
        f"{v}/a100-evk.dts": board("a100", "evk", ENABLE_ENETC),
    })
    return repo, shas


# -- Debian's DT sources as four commits -------------------------------------------

DEBIAN = (("5.10", "bullseye/linux-source-5.10"), ("6.1", "linux-source-6.1"),
          ("6.12", "linux-source-6.12"), ("7.2", "sid/linux-source-7.2"))
DT_FOLDERS = ("arch/arm64/boot/dts", "arch/arm/boot/dts", "arch/riscv/boot/dts",
              "include/dt-bindings", "scripts/dtc")


def _dt_inputs(tree: Path):
    """The files of a kernel tree the DT build reads, links as links (not followed)."""
    for top in DT_FOLDERS:
        for folder, dirs, files in os.walk(tree / top):
            for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
                yield Path(folder, name)
    yield from tree.glob("scripts/Makefile.*")
    yield tree / "Makefile"
    # dt-bindings headers that link into include/uapi, and what they link to
    uapi = (tree / "include/uapi").resolve()
    for folder, _, files in os.walk(tree / "include/dt-bindings"):
        for name in files:
            path = Path(folder, name)
            if path.is_symlink() and path.resolve().is_relative_to(uapi):
                yield tree / "include/uapi" / path.resolve().relative_to(uapi)


def debian_history_repo() -> Path:
    """A git repository of Debian's DT sources of 5.10, 6.1, 6.12 and 7.2, one commit
    per version tagged as its Makefile says (v6.1.192 ...: a commit's release is
    its target kernel), made once in the cache ($XDG_CACHE_HOME/dtb-audit)."""
    from corpus.debian import from_debian
    from store.folders import cache_dir
    from store.lock import taking_turns

    trees = [(version, from_debian(package).tree) for version, package in DEBIAN]
    root = cache_dir() / "test-repos" / "debian-dt-history"
    # pytest-xdist's workers ask for it at once: one makes it, the others wait.
    with taking_turns(root.parent / "debian-dt-history.lock"):
        return _debian_history_repo(root, trees)


def _debian_history_repo(root, trees) -> Path:
    import shutil

    from corpus.kbuild import kernel_release

    done = root / ".git" / "dtb-audit-complete"
    if done.is_file() and done.read_text() == "complete, full version tags\n":
        return root
    shutil.rmtree(root, ignore_errors=True)
    repo = GitRepo(root)
    for version, tree in trees:
        for path in root.iterdir():
            if path.name == ".git":
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        for path in set(_dt_inputs(tree)):
            dest = root / path.relative_to(tree)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink():
                os.symlink(os.readlink(path), dest)
            else:
                shutil.copy2(path, dest)
        repo.commit(f"Linux {version}: Debian's device-tree sources ({tree.name})", {})
        repo.tag(f"v{kernel_release(tree)[0]}")
    done.write_text("complete, full version tags\n")
    return root


def rebasing_merges_repo(root):
    """devicetree-rebasing as it is laid out: the per-commit history on a side
    branch with no tag in its ancestry, each release brought in by a merge
    that carries the `vX-dts` tag; an untagged commit at the tip.

      base     a400, and a100's SMMU without dma-coherent, no masters   tag v4.15-rc1-dts
      pcie     (side) a100 gains a PCIe root complex behind the SMMU (affected from 6.1)
      board    (side) a100-evk enables it
      merge    brings the side branch in                                 tag v4.15-rc2-dts
      tip      a comment in a400.dtsi                                    no tag
    """
    repo = GitRepo(root)
    v = "src/arm64/acme"
    shas = {}
    shas["base"] = repo.commit("arm64: dts: acme: add the a400 and a100 SoCs", {
        "Makefile": "# devicetree-rebasing's own Makefile: not kbuild\nall:\n",
        GIC: GIC_H,
        f"{v}/a400.dtsi": soc_dtsi("a400", True, ECAM),
        f"{v}/a400-evk.dts": board("a400", "evk", ENABLE_ENETC),
        f"{v}/a100.dtsi": soc_dtsi("a100", False),
        f"{v}/a100-evk.dts": board("a100", "evk"),
    })
    repo.tag("v4.15-rc1-dts")
    repo.git("checkout", "-q", "-b", "upstream")
    shas["pcie"] = repo.commit("arm64: dts: acme: a100: add the PCIe root complex", {
        f"{v}/a100.dtsi": soc_dtsi("a100", False, ECAM),
    })
    shas["board"] = repo.commit("arm64: dts: acme: a100-evk: enable PCIe", {
        f"{v}/a100-evk.dts": board("a100", "evk", ENABLE_ENETC),
    })
    repo.git("checkout", "-q", "master")
    repo.git("merge", "-q", "--no-ff", "upstream", "-m", "Merge tag 'v4.15-rc2-dts-raw'")
    repo.day += 1
    shas["merge"] = repo.git("rev-parse", "HEAD").strip()
    repo.tag("v4.15-rc2-dts")
    shas["tip"] = repo.commit("arm64: dts: acme: a400: spell the SoC name out", {
        f"{v}/a400.dtsi": soc_dtsi("a400", True, ECAM).replace(
            "ACME a400 SoC", "ACME a400 (A-four-hundred) SoC"),
    })
    return repo, shas
