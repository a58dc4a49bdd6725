"""Git plumbing for the history over commits: the repository, its revisions,
worktrees the tool owns, and who wrote a line.

A repository is a kernel tree or a checkout of devicetree-rebasing (the
DT-only mirror of the kernel: `src/<arch>/...` and `include/`, no kbuild
Makefiles, no scripts/dtc). open_repo() says which; revisions() lists the
commits of some ranges that touched the DT inputs, each with the parent it
is compared with and the first release that contains it (with_releases()); owned_worktree() lends a worktree of the repository under
$XDG_CACHE_HOME/dtb-audit/git/<repo>/<slot>/, moved from commit to commit
with `git checkout` so files that did not change keep their modification
times (what makes corpus.build incremental); introducing_commit() is the
commit that wrote a line, for a `Fixes:` tag.

The user's checkout, index and configuration are never touched: the
worktree is checked out sparsely (only the DT inputs) with the sparse
patterns in the worktree's own git folder and `-c core.sparseCheckout=true`
on the command line. A slot is held with flock() while a process uses it, so
the kernel frees it when that process dies; the next process takes the slot
over, worktree, corpus and all.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from contextlib import contextmanager
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from corpus.errors import UserError
from corpus.kbuild import DTS_DIR
from corpus.remote import is_url, mirror
from store.durable import write_atomically
from store.folders import cache_dir, short_hash
from store.lock import taking_turns, try_lock

KERNEL = "kernel"
REBASING = "devicetree-rebasing"

# What the DT build reads: a commit touching none of these changes no DTB.
# The top Makefile is there for the version (the target kernel) and the
# scripts/Makefile.* for the dtc flags.
DT_INPUTS = {
    KERNEL: (":(glob)arch/*/boot/dts/**", "include/dt-bindings", "scripts/dtc",
             "scripts/Makefile.lib", "scripts/Makefile.dtbs", "Makefile"),
    REBASING: ("src", "include"),
}
# What an arm64 build reads whatever the DTBs include: the arm64 DTS folder
# (sources, Makefiles, new boards) and the build's own machinery. The rest
# of a build's inputs are its DTBs' dependencies (the manifest's).
# A path ending in "/" is a folder.
ARM64_BUILD = {
    KERNEL: (f"{DTS_DIR}/", "Makefile", "scripts/Makefile.lib", "scripts/Makefile.dtbs",
             "scripts/dtc/"),
    REBASING: ("src/arm64/",),
}
# What a worktree checks out (sparse patterns, gitignore syntax): the DT
# inputs, and include/uapi where some dt-bindings headers link to.
_SPARSE = {
    KERNEL: ("/Makefile", "/arch/*/boot/dts/", "/include/dt-bindings/", "/include/uapi/",
             "/scripts/dtc/", "/scripts/Makefile.*"),
    REBASING: ("/src/", "/include/", "/Makefile"),
}
_RELEASE_TAG = {KERNEL: re.compile(r"^v\d+\.\d+(\.\d+)?$"),
                REBASING: re.compile(r"^v\d+\.\d+(\.\d+)?-dts$")}
# The tags that name a commit's release (its target kernel in history):
# v6.12, v6.12-rc3, v6.1.7 in a kernel tree; v6.12-dts, v6.12-rc3-dts in
# devicetree-rebasing, where they sit on the merges that bring each release in.
# Group 1 is the version. The globs narrow `git name-rev`'s starting tags.
_CONTAINING_TAG = {KERNEL: re.compile(r"v(\d+\.\d+(?:\.\d+)?(?:-rc\d+)?)"),
                   REBASING: re.compile(r"v(\d+\.\d+(?:\.\d+)?(?:-rc\d+)?)-dts")}
_CONTAINING_GLOBS = {KERNEL: ("--refs=v[0-9]*", "--exclude=*[!0-9]"),
                     REBASING: ("--refs=v[0-9]*-dts",)}
_VERSION = re.compile(r"v(\d+)\.(\d+)(?:\.(\d+))?")
_FIELDS = "%H%x1f%P%x1f%cI%x1f%s"


class GitError(UserError):
    """A repository or revision git cannot use; the message names it and why."""


def git(repo, *args: str, check: bool = True) -> str:
    """stdout of `git -C repo args...`; GitError with git's first line when it fails."""
    if not shutil.which("git"):
        raise GitError(None, "git not found: install it with `apt-get install git`")
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          errors="backslashreplace",
                          env=dict(os.environ, LC_ALL="C", GIT_TERMINAL_PROMPT="0"))
    if check and proc.returncode:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        message = (lines[0] if lines else f"exit status {proc.returncode}")
        raise GitError(repo, f"git {args[0]}: {message.removeprefix('fatal: ')}")
    return proc.stdout


# -- the repository -------------------------------------------------------------

@dataclass(frozen=True)
class Repo:
    path: Path          # the top of the user's checkout
    layout: str         # KERNEL or REBASING
    common_dir: Path    # the .git folder all its worktrees share
    key: str            # names its folder in the cache
    url: str | None = None   # given as a URL: path is this machine's mirror of it

    @property
    def name(self) -> str:
        """The repository as the user named it (in messages and documents)."""
        return self.url or str(self.path)

    @property
    def dt_inputs(self) -> tuple[str, ...]:
        return DT_INPUTS[self.layout]

    def reads_arm64_build(self, path: str, dependencies) -> bool:
        """Whether a change to `path` (as the repository names it) can change an
        arm64 DTB whose build read `dependencies` (repository paths)."""
        return path in dependencies or any(
            path.startswith(p) if p.endswith("/") else path == p
            for p in ARM64_BUILD[self.layout])

    def changed_paths(self, old: str, new: str) -> list[str]:
        """The files that differ between two commits (both names of a rename)."""
        out = git(self.path, "diff", "--name-only", "-z", "--no-renames", "--no-ext-diff",
                  old, new, "--")
        return [p for p in out.split("\0") if p]


def open_repo(path, need=()) -> Repo:
    """The git repository at `path`: a kernel tree or devicetree-rebasing, at HEAD.

    A URL (corpus.remote) is this machine's mirror of it, holding the
    commits of `need` (a worker's chunk); without `need` (the client, which
    lists the revisions) fetched afresh."""
    if is_url(path):
        url = str(path)
        top = mirror(url, need, refresh=not need)
        return Repo(top, _layout(top, url), top, short_hash(url), url)
    path = Path(path)
    if not path.is_dir():
        raise GitError(path, "no such folder")
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel",
                           "--git-common-dir"], capture_output=True, text=True,
                          errors="backslashreplace")
    if proc.returncode or len(proc.stdout.splitlines()) < 2:
        raise GitError(path, "not a git repository")
    top, common = proc.stdout.splitlines()[:2]
    top = Path(top).resolve()
    common_dir = (top / common).resolve()
    return Repo(top, _layout(top, path), common_dir, short_hash(common_dir))


def _layout(top: Path, name) -> str:
    """KERNEL or REBASING, from what HEAD holds."""
    if not git(top, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False).strip():
        raise GitError(name, "the repository has no commits")
    for layout, folder in ((KERNEL, DTS_DIR), (REBASING, "src/arm64")):
        if git(top, "cat-file", "-t", f"HEAD:{folder}", check=False).strip() == "tree":
            return layout
    raise GitError(name, f"neither a kernel tree ({DTS_DIR}) nor devicetree-rebasing "
                   f"(src/arm64) at HEAD")


# -- revisions ------------------------------------------------------------------

@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    date: str                  # committer date, ISO 8601
    parent: str | None = None  # the listed commit it is compared with; None: the one before it
    release: str | None = None  # "6.12-rc3": the first release that contains it; None: none yet


def _commits(repo: Repo, args: list[str]) -> list[Commit]:
    out = git(repo.path, "log", f"--format={_FIELDS}", *args)
    commits = []
    for line in out.splitlines():
        sha, parents, date, subject = line.split("\x1f", 3)
        commits.append(Commit(sha, subject, date, (parents.split() or [None])[0]))
    return commits


def _verify(repo: Repo, rev: str) -> str:
    sha = git(repo.path, "rev-parse", "--verify", "-q", "--end-of-options", f"{rev}^{{commit}}",
              check=False).strip()
    if not sha:
        raise GitError(repo.name, f"{rev}: no such revision")
    return sha


def revisions(repo: Repo, ranges=(), all_commits: bool = False) -> list[Commit]:
    """The commits to judge, oldest first.

    `ranges`: git ranges ("v6.1..v6.12", "A...B", "v6.12.."); a lone
    revision is that one commit. A..B starts with A, what the commits after
    it are compared with; then every commit of the range that touched the DT
    inputs, along the first parents (every such commit with all_commits,
    each compared with its nearest listed ancestor: git rewrites the parents
    of a path-limited history). No ranges: the release tags reachable from
    HEAD, by version, each compared with the one before.
    """
    if not ranges:
        return release_tags(repo)
    listed: dict[str, Commit] = {}
    for text in ranges:
        if text.startswith("-"):
            raise GitError(repo.name, f"{text}: not a revision range")
        ends = re.split(r"(\.\.\.?)", text, maxsplit=1)
        for end in ends[::2]:
            if end:
                _verify(repo, end)
        commits = []
        if len(ends) == 1 or ends[1] == "..":
            # The commit alone, or the bottom of A..B: what the first commit is compared with.
            bottom = _verify(repo, ends[0] or "HEAD")
            commits = [Commit(c.sha, c.subject, c.date, None)
                       for c in _commits(repo, ["--no-walk", bottom])]
        if len(ends) == 3:
            walk = ["--topo-order", "--reverse", "--parents"]
            if not all_commits:
                walk.append("--first-parent")
            commits += _commits(repo, [*walk, "--end-of-options", text, "--", *repo.dt_inputs])
        for commit in commits:
            listed.setdefault(commit.sha, commit)
    # A parent outside the list: compared with the revision before it instead.
    return with_releases(repo, [c if c.parent in listed else Commit(c.sha, c.subject, c.date, None)
                                for c in listed.values()])


def with_releases(repo: Repo, commits: list[Commit]) -> list[Commit]:
    """`commits` with their `release`: the first release tag whose ancestry
    holds each one (what `git describe --contains` names). One `git name-rev`
    walk for them all; name-rev prefers the oldest tag, however far away."""
    pattern = _CONTAINING_TAG[repo.layout]
    named: list[str] = []
    for i in range(0, len(commits), 1000):       # the command line's length
        named += git(repo.path, "name-rev", "--tags", "--name-only",
                     *_CONTAINING_GLOBS[repo.layout],
                     *(c.sha for c in commits[i:i + 1000])).splitlines()
    out = []
    for commit, name in zip(commits, named):
        match = pattern.fullmatch(re.split(r"[~^]", name, maxsplit=1)[0])
        out.append(dataclasses.replace(commit, release=match.group(1) if match else None))
    return out


def release_tags(repo: Repo) -> list[Commit]:
    """The release tags reachable from HEAD (v6.12, v6.12.3; v6.12-dts in devicetree-rebasing)."""
    names = git(repo.path, "tag", "--merged", "HEAD", "--list", "v*.*").split()
    names = [n for n in names if _RELEASE_TAG[repo.layout].match(n)]
    names.sort(key=lambda n: tuple(int(x or 0) for x in _VERSION.match(n).groups()))
    if not names:
        raise GitError(repo.name, "no release tags (v*.*) reachable from HEAD: "
                       "give a revision range")
    commits, seen = [], set()
    for name in names:
        sha = _verify(repo, name)
        if sha in seen:
            continue
        seen.add(sha)
        (commit,) = _commits(repo, ["--no-walk", sha])
        commits.append(Commit(sha, commit.subject, commit.date, None))
    return with_releases(repo, commits)


# -- worktrees the tool owns ----------------------------------------------------

class Worktree:
    """A sparse worktree of `repo` in a slot of the cache, held while in use.

    `tree` is what corpus.build builds: the worktree itself for a kernel,
    a kernel-shaped shim of links into it for devicetree-rebasing, whose
    Makefile carries the version checkout() is given (devicetree-rebasing
    has none of its own).
    `corpus_dir` is where the DTBs of this slot are built.
    """

    def __init__(self, repo: Repo, slot: Path):
        self.repo = repo
        self.slot = slot
        self.path = slot / "tree"
        self.corpus_dir = slot / "corpus"
        self.tree = slot / "shim" if repo.layout == REBASING else self.path
        self.commit: str | None = None

    def checkout(self, sha: str, version: str | None = None) -> None:
        """Move to `sha`; files that do not change keep their modification times.
        `version` ("4.15-rc2"): what the shim's Makefile says (devicetree-rebasing,
        where it is needed)."""
        if self.repo.layout == REBASING and not version:
            raise ValueError("checkout: a devicetree-rebasing worktree needs the version")
        git(self.path, "-c", "core.sparseCheckout=true", "-c", "core.sparseCheckoutCone=false",
            "checkout", "-q", "--detach", "-f", sha)
        self.commit = sha
        if self.repo.layout == REBASING:
            _write_shim(self.path, self.tree, version)

    def in_repo(self, message: str) -> str:
        """A message about the worktree, about the repository instead (no cache paths)."""
        for path in (self.tree, self.path):
            message = message.replace(str(path), self.repo.name)
        return message

    def repo_path(self, name: str) -> str:
        """A file as the build names it, as the repository does (shim paths mapped back)."""
        if self.repo.layout != REBASING:
            return name
        match = re.match(r"^(?:arch/([^/]+)/boot/dts|scripts/dtc/include-prefixes/([^/]+))/(.*)$",
                         name)
        if not match:
            return name
        arch = match.group(1) or match.group(2)
        if arch == "dt-bindings":
            return f"include/dt-bindings/{match.group(3)}"
        return f"src/{arch}/{match.group(3)}"


@contextmanager
def owned_worktree(repo: Repo) -> Iterator[Worktree]:
    """The first free slot's worktree of `repo`, made when missing, held until exit.

    A slot whose holder died is free again (flock); its worktree is taken
    over as it is, with a lock file the dead git may have left removed.
    """
    base = cache_dir() / "git" / repo.key
    base.mkdir(parents=True, exist_ok=True)
    number = 0
    while True:
        slot = base / str(number)
        slot.mkdir(exist_ok=True)
        handle = try_lock(slot / "lock")
        if handle is not None:
            break
        number += 1
    try:
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        worktree = Worktree(repo, slot)
        _prepare(repo, worktree, base)
        yield worktree
    finally:
        handle.close()   # releases the slot


def _prepare(repo: Repo, worktree: Worktree, base: Path) -> None:
    """A usable worktree in the slot: the one there, or a new one."""
    git_dir = None
    if (worktree.path / ".git").is_file():
        out = git(worktree.path, "rev-parse", "--git-dir", "--git-common-dir", check=False)
        lines = out.splitlines()
        if len(lines) == 2 and (worktree.path / lines[1]).resolve() == repo.common_dir:
            git_dir = (worktree.path / lines[0]).resolve()
    if git_dir is None:
        with taking_turns(base / ".lock"):   # git worktree add/prune pick admin folder names
            shutil.rmtree(worktree.path, ignore_errors=True)
            git(repo.path, "worktree", "prune")
            git(repo.path, "worktree", "add", "-q", "--detach", "--no-checkout",
                str(worktree.path), "HEAD")
        git_dir = Path(git(worktree.path, "rev-parse", "--absolute-git-dir").strip())
    # We hold the slot: a lock file here is a dead git's, which would stop checkout.
    (git_dir / "index.lock").unlink(missing_ok=True)
    sparse = git_dir / "info" / "sparse-checkout"
    sparse.parent.mkdir(exist_ok=True)
    sparse.write_text("\n".join(_SPARSE[repo.layout]) + "\n")


# -- devicetree-rebasing --------------------------------------------------------

_REBASING_MAKEFILE_LIB = """\
# Written by dtb-audit: what kbuild passes, for a tree without kbuild.
DTC_FLAGS += -Wno-unit_address_vs_reg -Wno-avoid_unnecessary_addr_size -Wno-unique_unit_address
DTC_INCLUDE := $(srctree)/scripts/dtc/include-prefixes
dtc_cpp_flags = -Wp,-MMD,$(depfile).pre.tmp -nostdinc -I $(DTC_INCLUDE) -undef -D__DTS__
"""


def _write_shim(checkout: Path, shim: Path, version: str) -> None:
    """A kernel-shaped tree of links into a devicetree-rebasing checkout.

    arch/<arch>/boot/dts -> src/<arch>, include/dt-bindings, the
    include-prefixes links, a top Makefile with the version and a
    scripts/Makefile.lib with kbuild's flags. Files are written only when
    their text changes, so the build sees no change where there is none.
    """
    def link(name: str, target: Path) -> None:
        path = shim / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if os.path.islink(path) and os.readlink(path) == str(target):
            return
        if os.path.lexists(path):
            path.unlink()
        os.symlink(target, path)

    def write(name: str, text: str) -> None:
        path = shim / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            write_atomically(path, text.encode())

    source = checkout / "src"
    arches = sorted(p.name for p in source.iterdir() if p.is_dir()) if source.is_dir() else []
    for arch in arches:
        link(f"arch/{arch}/boot/dts", source / arch)
        link(f"scripts/dtc/include-prefixes/{arch}", source / arch)
    link("include/dt-bindings", checkout / "include" / "dt-bindings")
    link("scripts/dtc/include-prefixes/dt-bindings", checkout / "include" / "dt-bindings")
    major, minor, sublevel, extra = re.fullmatch(r"(\d+)\.(\d+)(?:\.(\d+))?(.*)", version).groups()
    write("Makefile", "# Written by dtb-audit: the version of this devicetree-rebasing commit.\n"
                      f"VERSION = {major}\nPATCHLEVEL = {minor}\nSUBLEVEL = {sublevel or 0}\n"
                      f"EXTRAVERSION = {extra}\n")
    write("scripts/Makefile.lib", _REBASING_MAKEFILE_LIB)


# -- who wrote a line -------------------------------------------------------------

def is_checkout(path) -> bool:
    """Whether `path` is a folder inside a git working tree (with commits)."""
    if path is None or not Path(path).is_dir() or not shutil.which("git"):
        return False
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "--is-inside-work-tree",
                           "--verify", "-q", "HEAD"], capture_output=True, text=True,
                          errors="backslashreplace")
    return proc.returncode == 0 and proc.stdout.startswith("true")


def introducing_commit(repo, path, line: int, rev: str = "HEAD") -> tuple[str, str] | None:
    """(12-character sha, subject) of the commit that wrote `line` of `path`, for

        Fixes: <sha> ("<subject>")

    `repo`: the checkout (any folder inside it); `path` relative to its
    top. None when it is not a git checkout, or git does not know the file
    or the line (a file outside git, a line past its end).
    """
    top = subprocess.run(["git", "-C", str(repo), "rev-parse", "--show-toplevel"],
                         capture_output=True, text=True, errors="backslashreplace")
    if top.returncode:
        return None
    proc = subprocess.run(["git", "-C", top.stdout.strip(), "blame", "--porcelain",
                           "-L", f"{line},{line}", rev, "--", str(path)],
                          capture_output=True, text=True, errors="backslashreplace")
    if proc.returncode or not proc.stdout:
        return None
    lines = proc.stdout.splitlines()
    sha = lines[0].split()[0]
    if set(sha) == {"0"}:
        return None     # not committed yet
    subject = next((x[len("summary "):] for x in lines if x.startswith("summary ")), "")
    return sha[:12], subject
