"""Where a kernel tree comes from: a folder or a tarball (Debian's packages:
corpus/debian.py).

A tarball is read as a stream and only the members the DT build needs are
written out (the device-tree folders of every architecture, because arm64
files include arm/ and riscv/ ones through scripts/dtc/include-prefixes;
include/dt-bindings and include/uapi, which some dt-bindings headers link
into; scripts/dtc; the DT Makefiles; the top Makefile for the version),
and MAINTAINER_FILES, which address `patch`'s mails. An extracted tree lives
in the cache (trees/), keyed so that a second run finds it without reading
the tarball again.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from corpus.console import diagnostic, status
from corpus.errors import UserError
from corpus.kbuild import DTS_DIR, kernel_release
from store.durable import place, remove_dead, temporary_folder
from store.folders import cache_dir, short_hash


class SourceError(UserError):
    """A kernel source that cannot be used: its path, and why."""


@dataclass(frozen=True)
class Source:
    tree: Path        # the kernel tree (possibly a partial one in the cache)
    identity: str     # "linux-6.12.117 (debian linux-source-6.12)"
    version: str      # "6.12.117", "7.3.0-rc1": the top Makefile's VERSION.PATCHLEVEL.SUBLEVEL
                      # and EXTRAVERSION (the target kernel reads the -rcN)


# -- a tree on disk ----------------------------------------------------------

def from_kernel_dir(path: Path, origin: str | None = None) -> Source:
    tree = Path(path).resolve()
    if not (tree / DTS_DIR).is_dir() or not (tree / "Makefile").is_file():
        raise SourceError(path, f"not a kernel tree (no Makefile or {DTS_DIR})")
    version, extra = kernel_release(tree)
    return Source(tree, f"linux-{version}{extra} ({origin or tree})", version + extra)


# -- a tarball ---------------------------------------------------------------

_TOP_LEVEL = ("arch", "include", "scripts", "Makefile")


def dt_input(rel: str) -> bool:
    """Whether a DT build reads the file at `rel` (relative to the top of a kernel tree)."""
    parts = rel.split("/")
    if rel == "Makefile" or rel in ("scripts/Makefile.lib", "scripts/Makefile.dtbs"):
        return True
    if parts[0] == "arch":
        return len(parts) >= 4 and parts[2:4] == ["boot", "dts"]
    if parts[:2] in (["include", "dt-bindings"], ["include", "uapi"], ["scripts", "dtc"]):
        return len(parts) > 2
    return False


# Kept beyond the DT build's inputs: what `patch` runs to address its mails.
MAINTAINER_FILES = ("MAINTAINERS", "scripts/get_maintainer.pl")
# In an extracted tree: written once the tree holds MAINTAINER_FILES (or its
# tarball has none). A tree extracted before they were kept lacks it, and
# gets them from its tarball once (_complete).
COMPLETE = ".maintainer-files"


def kept(rel: str) -> bool:
    """Whether an extraction writes the file at `rel`: dt_input, or MAINTAINER_FILES."""
    return dt_input(rel) or rel in MAINTAINER_FILES


_DECOMPRESSORS = {".xz": ["xz", "-T0", "-dc"], ".gz": ["gzip", "-dc"], ".tgz": ["gzip", "-dc"],
                  ".bz2": ["bzip2", "-dc"], ".zst": ["zstd", "-dc"]}
# What GNU tar is asked for, below the tarball's top folder; every kernel has
# each of these (Makefile.* covers Makefile.lib, and Makefile.dtbs since v6.11).
_TAR_PATTERNS = ("arch/*/boot/dts/*", "include/dt-bindings/*", "include/uapi/*",
                 "scripts/dtc/*", "scripts/Makefile.*", "Makefile", *MAINTAINER_FILES)


def _decompressor(tarball: Path) -> list[str] | None:
    suffix = next((s for s in _DECOMPRESSORS if tarball.name.endswith(s)), None)
    if suffix and shutil.which(_DECOMPRESSORS[suffix][0]):
        # `xz -T0` also decodes the blocks of kernel tarballs on all cores.
        return _DECOMPRESSORS[suffix] + [str(tarball)]
    return None


def _top_folder(tarball: Path) -> str:
    """"linux-6.12/" for a kernel.org or Debian tarball, "" for a bare `git archive`."""
    with tarfile.open(tarball, mode="r|*") as archive:
        first = archive.next()
    name = first.name.removeprefix("./") if first else ""
    top = name.split("/", 1)[0]
    return "" if top in _TOP_LEVEL else top + "/"


def _extract_with_gnu_tar(tarball: Path, work: Path, patterns=_TAR_PATTERNS) -> bool:
    """The fast way: GNU tar picks the members (about 7 s for Linux 6.12 on 2 cores)."""
    unpack = _decompressor(tarball)
    tar = shutil.which("tar")
    if not unpack or not tar:
        return False
    version = subprocess.run([tar, "--version"], capture_output=True, text=True,
                             errors="backslashreplace").stdout
    if "GNU tar" not in version:
        return False
    top = _top_folder(tarball)
    strip = [f"--strip-components={top.count('/')}"] if top else []
    source = subprocess.Popen(unpack, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    proc = subprocess.run([tar, "-x", "-f", "-", "-C", str(work), "--wildcards",
                           "--no-same-owner", *strip, *[top + p for p in patterns]],
                          stdin=source.stdout, capture_output=True, text=True,
                          errors="backslashreplace", env=dict(os.environ, LC_ALL="C"))
    source.stdout.close()
    source.wait()
    # A tarball without MAINTAINER_FILES (not a whole kernel's) is still read.
    missing = {top + f + ": Not found in archive" for f in MAINTAINER_FILES}
    errors = [line.split(": ", 1)[-1] for line in proc.stderr.splitlines()]
    tolerated = proc.returncode == 2 and all(
        e in missing or e == "Exiting with failure status due to previous errors" for e in errors)
    return (proc.returncode == 0 or tolerated) and source.returncode == 0


def _extract_with_python(tarball: Path, work: Path, keep=kept) -> None:
    """The portable way: Python's tarfile reads the stream and keeps what `keep` says."""
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    unpack = _decompressor(tarball)
    proc = subprocess.Popen(unpack, stdout=subprocess.PIPE, stderr=subprocess.PIPE) if unpack else None
    archive = tarfile.open(fileobj=proc.stdout, mode="r|") if proc else tarfile.open(tarball, "r|*")
    with archive:
        for member in archive:
            rel = member.name.removeprefix("./")
            # Kernel tarballs hold one top folder (linux-6.12/,
            # linux-source-6.12/); `git archive` output may not.
            if rel.split("/", 1)[0] not in _TOP_LEVEL:
                rel = rel.split("/", 1)[1] if "/" in rel else ""
            if not rel or not keep(rel) or member.isdir():
                continue
            member.name = rel
            if member.islnk():  # hard links name another member, prefix and all
                link = member.linkname.removeprefix("./")
                if link.split("/", 1)[0] not in _TOP_LEVEL and "/" in link:
                    member.linkname = link.split("/", 1)[1]
            archive.extract(member, work, **safe)
    if proc:
        proc.stdout.close()
        if proc.wait():
            raise SourceError(tarball, proc.stderr.read().decode().strip())


def _extract(tarball: Path, dest: Path) -> None:
    """Write the members the DT build needs into dest, atomically."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_dead(dest.parent)
    work = temporary_folder(dest.parent, "extract")
    work.chmod(0o755)  # mkdtemp makes it private; the result is not
    try:
        try:
            if not _extract_with_gnu_tar(tarball, work):
                shutil.rmtree(work)
                work.mkdir()
                _extract_with_python(tarball, work)
        except (tarfile.TarError, EOFError, OSError) as why:
            raise SourceError(tarball, f"cannot read the tarball: {why}") from None
        if not (work / DTS_DIR).is_dir() or not (work / "Makefile").is_file():
            raise SourceError(tarball, f"not a kernel tarball (no Makefile or {DTS_DIR})")
        (work / COMPLETE).touch()
        place(work, dest, replace=False)   # or another process extracted it first
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def from_tarball(tarball: Path, origin: str | None = None, key: str | None = None) -> Source:
    """The tree inside a kernel tarball, extracted (the needed members) into the cache.

    `key` names the extracted tree; by default the tarball's path, size and
    modification time, so a changed tarball is read again.
    """
    tarball = Path(tarball).resolve()
    if not tarball.is_file():
        raise SourceError(tarball, "not a regular file" if tarball.exists() else "no such file")
    if key is None:
        stat = tarball.stat()
        stem = re.sub(r"\.(tar(\.\w+)?|tgz)$", "", tarball.name)
        key = f"{stem}-{short_hash(tarball, stat.st_size, stat.st_mtime_ns)}"
    dest = cache_dir() / "trees" / key
    if not dest.is_dir():
        status(f"reading the device-tree files of {tarball.name}")
        _extract(tarball, dest)
    elif not (dest / COMPLETE).exists():
        _complete(tarball, dest)
    return from_kernel_dir(dest, origin or str(tarball))


def _complete(tarball: Path, dest: Path) -> None:
    """Add MAINTAINER_FILES to a tree extracted before they were kept (only
    adding files: a process reading the tree meanwhile is not disturbed).
    The tree serves the DT build without them: a failure is a warning."""
    status(f"reading {' and '.join(MAINTAINER_FILES)} of {tarball.name}")
    work = temporary_folder(dest.parent, "extract")
    try:
        if not _extract_with_gnu_tar(tarball, work, MAINTAINER_FILES):
            shutil.rmtree(work)
            work.mkdir()
            _extract_with_python(tarball, work, keep=MAINTAINER_FILES.__contains__)
        for rel in MAINTAINER_FILES:
            if (work / rel).is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                place(work / rel, dest / rel)
        (dest / COMPLETE).touch()
    except (tarfile.TarError, EOFError, OSError, SourceError) as why:
        diagnostic(f"{tarball}: warning: cannot add {' and '.join(MAINTAINER_FILES)} to "
                   f"{dest}: {why}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def copy_dt_tree(src, dst) -> None:
    """Copy what a DT build reads of a kernel tree (dt_input) from src to
    dst, symlinks as symlinks."""
    def may_hold(rel):
        parts = rel.split("/")
        return dt_input(rel + "/x") or (parts[0] in ("arch", "include", "scripts")
                                        and len(parts) <= 3)

    for folder, dirs, files in os.walk(src):
        rel_folder = os.path.relpath(folder, src)
        rel_folder = "" if rel_folder == "." else rel_folder + "/"
        keep = []
        for name in dirs:
            rel = rel_folder + name
            if os.path.islink(os.path.join(folder, name)):
                files.append(name)          # a symlinked folder is copied as the link
            elif may_hold(rel):
                keep.append(name)
        dirs[:] = keep
        for name in files:
            rel = rel_folder + name
            if not dt_input(rel):
                continue
            target = os.path.join(dst, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            source = os.path.join(folder, name)
            if os.path.islink(source):
                os.symlink(os.readlink(source), target)
            else:
                shutil.copy2(source, target)
