"""Where a kernel tree comes from: a folder, a tarball, or Debian's linux-source-X.

A tarball is read as a stream and only the members the DT build needs are
written out (the device-tree folders of every architecture, because arm64
files include arm/ and riscv/ ones through scripts/dtc/include-prefixes;
include/dt-bindings and include/uapi, which some dt-bindings headers link
into; scripts/dtc; the DT Makefiles; the top Makefile for the version),
and MAINTAINERS with scripts/get_maintainer.pl, which address `patch`'s mails.
Extracted trees and downloaded packages live in the cache, keyed so that a
second run finds them without reading the tarball or the network again;
apt's answer to "which version" is remembered with the stamps of every file
it depends on, so a second run does not ask apt either.

Stamps (file_stamp(), racy()) say whether a file changed, and sealed JSON
(sealed(), seal_holds()) whether a document the cache keeps is the one
written, here and for the rest of the corpus layer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import tarfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from corpus.console import diagnostic, status
from corpus.dtc import MissingTool
from corpus.errors import CorpusError
from corpus.kbuild import DTS_DIR, kernel_release
from corpus.temporary import remove_dead, taking_turns, temporary_folder, write_atomically
from kernels.cachefile import NotKept, open_kept, read_kept

DEFAULT_DEBIAN = "linux-source-6.12"


class SourceError(CorpusError):
    """A kernel source that cannot be used; the message names it and why."""


@dataclass(frozen=True)
class Source:
    tree: Path        # the kernel tree (possibly a partial one in the cache)
    identity: str     # "linux-6.12.117 (debian linux-source-6.12)"
    version: str      # "6.12.117", "7.3.0-rc1": the top Makefile's VERSION.PATCHLEVEL.SUBLEVEL
                      # and EXTRAVERSION (the target kernel reads the -rcN)


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/dtb-audit, ~/.cache/dtb-audit by default."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dtb-audit"


def short_hash(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:12]


# -- stamps: what says a file changed -----------------------------------------

# A file changed less than this before its stamp was kept may change again
# within the same timestamp tick, and its stamp would not show it (git's
# racy-clean rule): such a stamp vouches for nothing.
RACY_NS = 2_000_000_000


def file_stamp(st: os.stat_result) -> list[int]:
    """[size, mtime, ctime, inode]: ctime cannot be set back, so a change in
    place (its mtime put back or not) or another file put there moves it."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def stamp(path) -> list[int] | None:
    """The file_stamp of path (links followed), None when there is nothing to stat."""
    try:
        return file_stamp(os.stat(path))
    except OSError:
        return None


def racy(stamp: list[int] | None, kept_ns: int | None) -> bool:
    """Whether a stamp kept at kept_ns (None: unknown) cannot vouch for its file."""
    if stamp is None:
        return False  # nothing there: whatever comes has a stamp
    return kept_ns is None or max(stamp[1], stamp[2]) >= kept_ns - RACY_NS


# -- sealed JSON: a document that carries its own checksum ------------------------

def checksum(data: dict) -> str:
    """SHA-256 of a document without its "checksum", as json.dumps(sort_keys=True) writes it."""
    body = {k: v for k, v in data.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# How a document written by sealed() starts: its checksum, then the text of
# the body the checksum was computed over.
_SEAL = re.compile(rb'\{"checksum": "([0-9a-f]{64})", ')


def sealed(data: dict) -> bytes:
    """data as JSON, its checksum() first (any "checksum" it has is replaced):
    encoded once, by Python's C encoder (no indent)."""
    body = json.dumps({k: v for k, v in data.items() if k != "checksum"}, sort_keys=True)
    digest = hashlib.sha256(body.encode()).hexdigest()
    return f'{{"checksum": "{digest}", {body[1:]}'.encode()


def seal_holds(raw: bytes, data: dict) -> bool:
    """Whether data, read from raw, carries its right checksum().

    Written by sealed(), the bytes after the checksum are the very text it
    covers: hashing them checks it without encoding the data again. Any other
    text (written otherwise, or damaged) is encoded again and checked.
    """
    seal = _SEAL.match(raw)
    if seal and data.get("checksum") == seal.group(1).decode() \
            and hashlib.sha256(b"{" + raw[seal.end():]).hexdigest() == data["checksum"]:
        return True
    return data.get("checksum") == checksum(data)


def stamps(paths) -> dict[str, list[int] | None]:
    """path -> stamp, for files and folders; a folder's entries are stamped
    too (one level), so that a file added, removed or changed in it shows."""
    found = {}
    for path in map(str, paths):
        found[path] = stamp(path)
        if found[path] is not None and os.path.isdir(path):
            try:
                names = sorted(os.listdir(path))
            except OSError:
                continue
            for name in names:
                found[os.path.join(path, name)] = stamp(os.path.join(path, name))
    return found


# -- a tree on disk ----------------------------------------------------------

def from_kernel_dir(path: Path, origin: str | None = None) -> Source:
    tree = Path(path).resolve()
    if not (tree / DTS_DIR).is_dir() or not (tree / "Makefile").is_file():
        raise SourceError(f"{path}: error: not a kernel tree (no Makefile or {DTS_DIR})")
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
_COMPLETE = ".maintainer-files"


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
            raise SourceError(f"{tarball}: error: {proc.stderr.read().decode().strip()}")


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
            raise SourceError(f"{tarball}: error: cannot read the tarball: {why}") from None
        if not (work / DTS_DIR).is_dir() or not (work / "Makefile").is_file():
            raise SourceError(f"{tarball}: error: not a kernel tarball (no Makefile or {DTS_DIR})")
        (work / _COMPLETE).touch()
        try:
            os.rename(work, dest)
        except OSError:
            pass  # another process extracted it first
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
        raise SourceError(f"{tarball}: error: no such file")
    if key is None:
        stat = tarball.stat()
        stem = re.sub(r"\.(tar(\.\w+)?|tgz)$", "", tarball.name)
        key = f"{stem}-{short_hash(tarball, stat.st_size, stat.st_mtime_ns)}"
    dest = cache_dir() / "trees" / key
    if not dest.is_dir():
        status(f"reading the device-tree files of {tarball.name}")
        _extract(tarball, dest)
    elif not (dest / _COMPLETE).exists():
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
                os.replace(work / rel, dest / rel)
        (dest / _COMPLETE).touch()
    except (tarfile.TarError, EOFError, OSError, SourceError) as why:
        diagnostic(f"{tarball}: warning: cannot add {' and '.join(MAINTAINER_FILES)} to "
                   f"{dest}: {why}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- Debian's linux-source-X -------------------------------------------------
#
# `linux-source-6.12` comes from the machine's own apt configuration, as
# `apt-get download` sees it. `SUITE/linux-source-X` (sid/linux-source-7.2,
# bullseye/linux-source-5.10) comes from another suite of the same mirror
# through a private apt configuration under the cache (apt/SUITE/: its own
# sources list, package lists and caches, nothing of the system's read but
# the mirror's address and keyring, nothing of the system's changed).

_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# Suites with no -updates or -security companions.
_NO_COMPANIONS = {"sid", "unstable", "experimental", "rc-buggy"}
# Private package lists older than this are refreshed before a download.
_LISTS_MAX_AGE_S = 24 * 3600


def parse_debian(spec: str) -> tuple[str | None, str]:
    """"sid/linux-source-7.2" -> ("sid", "linux-source-7.2"); "linux-source-6.12" -> (None, ...)."""
    suite, _, package = spec.rpartition("/")
    if suite and not re.fullmatch(r"[a-z][a-z0-9.-]*", suite):
        raise SourceError(f"{spec}: error: not a Debian suite name: {suite!r}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", package):
        raise SourceError(f"{spec}: error: not a Debian package name")
    return suite or None, package


def _deb822_stanzas(text: str):
    """The stanzas of a deb822 .sources file, as {field: value}."""
    stanza: dict[str, str] = {}
    last = None
    for line in text.splitlines() + [""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if stanza:
                yield stanza
            stanza, last = {}, None
        elif line[0] in " \t" and last:
            stanza[last] += " " + line.strip()
        elif ":" in line:
            last, value = line.split(":", 1)
            last = last.strip().lower()
            stanza[last] = value.strip()


def system_mirrors(etc: Path = Path("/etc/apt")) -> list[tuple[str, list[str], list[str], str]]:
    """(URI, suites, components, keyring) of every enabled `deb` source of this machine."""
    mirrors = []
    parts = sorted((etc / "sources.list.d").glob("*.sources")) if (etc / "sources.list.d").is_dir() else []
    for path in parts:
        for stanza in _deb822_stanzas(path.read_text(errors="replace")):
            if "deb" not in stanza.get("types", "").split() or stanza.get("enabled", "yes") == "no":
                continue
            keyring = stanza.get("signed-by", _KEYRING)
            if not keyring.startswith("/"):
                keyring = _KEYRING  # an inline key block: the archive keyring covers Debian
            for uri in stanza.get("uris", "").split():
                mirrors.append((uri, stanza.get("suites", "").split(),
                                stanza.get("components", "main").split(), keyring))
    lists = [etc / "sources.list"]
    if (etc / "sources.list.d").is_dir():
        lists += sorted((etc / "sources.list.d").glob("*.list"))
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            match = re.match(r"^\s*deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$", line)
            if not match:
                continue
            options, uri, suite, components = match.groups()
            keyring = re.search(r"signed-by=(\S+)", options or "")
            mirrors.append((uri, [suite], components.split() or ["main"],
                            keyring.group(1) if keyring else _KEYRING))
    return mirrors


def _machine_codename(mirrors) -> str | None:
    """The machine's own suite ("bookworm"): os-release, else the first plain suite listed."""
    try:
        text = Path("/etc/os-release").read_text()
        match = re.search(r"^VERSION_CODENAME=\"?([a-z]+)\"?$", text, re.M)
        if match:
            return match.group(1)
    except OSError:
        pass
    plain = [s for _, suites, _, _ in mirrors for s in suites if "-" not in s and "/" not in s]
    return plain[0] if plain else None


def suite_sources(suite: str, etc: Path = Path("/etc/apt"), own: str | None = None) -> list[str]:
    """sources.list lines for `suite` on this machine's mirrors.

    Each suite of the machine's own (`own`: "bookworm", "bookworm-updates",
    "bookworm-security") names the same one of the wanted suite, on the
    same mirror with the same keyring; sid has no companions.
    """
    mirrors = system_mirrors(etc)
    own = own or _machine_codename(mirrors)
    lines = []
    for uri, suites, components, keyring in mirrors:
        for name in suites:
            if own is None or not (name == own or name.startswith(own + "-")):
                continue
            companion = name[len(own):]          # "", "-updates", "-security"
            if companion and suite in _NO_COMPANIONS:
                continue
            line = f"deb [signed-by={keyring}] {uri} {suite}{companion} {' '.join(components)}"
            if line not in lines:
                lines.append(line)
    if not lines:
        raise SourceError(f"{etc}: error: no Debian mirror of this machine's suite "
                          f"({own or 'unknown'}) to fetch {suite} from")
    return lines


# What apt says when it could not talk to a mirror at all (name, route,
# connection), as opposed to a mirror that answered with an error.
_UNREACHABLE = re.compile(r"Temporary failure resolving|Could not resolve|Could not connect|"
                          r"Connection (?:refused|failed|timed out)|Unable to connect|"
                          r"No route to host|Network is unreachable|Cannot initiate the connection")
_FAILED_FETCH = re.compile(r"^[WE]: Failed to fetch (\S+)\s+(.*)$")


def fetch_failure(stderr: str) -> str | None:
    """apt's first "Failed to fetch URL  reason" as one message naming the
    mirror (the URL up to /dists/ or /pool/); None when nothing failed so."""
    for line in stderr.splitlines():
        match = _FAILED_FETCH.match(line.strip())
        if match:
            url, reason = match.group(1), match.group(2).strip()
            mirror = re.split(r"/(?:dists|pool)/", url, maxsplit=1)[0]
            if _UNREACHABLE.search(reason):
                return f"cannot reach the Debian mirror {mirror} ({reason})"
            return f"the Debian mirror {mirror} did not give {url} ({reason})"
    return None


class _Apt:
    """apt-get and apt-cache as the system has them, or on a private configuration for a suite."""

    def __init__(self, suite: str | None):
        self.suite = suite
        self.options: list[str] = []
        if suite is None:
            return
        self.dir = cache_dir() / "apt" / suite
        for sub in ("lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        sources = "\n".join(suite_sources(suite)) + "\n"
        listing = self.dir / "sources.list"
        try:
            same = read_kept(listing) == sources.encode()
        except OSError:
            same = False            # missing, or not a file we wrote: written afresh
        if not same:
            write_atomically(listing, sources.encode())
        status_file = self.dir / "status"
        if not status_file.is_file():
            write_atomically(status_file, b"")
        d = self.dir
        self.options = [
            "-o", f"Dir::Etc::SourceList={listing}",
            "-o", f"Dir::Etc::SourceParts={d / 'sources.list.d'}",
            "-o", f"Dir::Etc::Preferences={d / 'preferences'}",
            "-o", f"Dir::Etc::PreferencesParts={d / 'preferences.d'}",
            "-o", f"Dir::State::Lists={d / 'lists'}",
            "-o", f"Dir::State::status={status_file}",
            "-o", f"Dir::Cache={d / 'cache'}",
            # The cache is the user's: apt's _apt sandbox user may not reach it.
            "-o", "APT::Sandbox::User=root",
            "-o", "Acquire::Languages=none",
        ]

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        tool = "apt-cache" if args[0] == "policy" else "apt-get"
        return subprocess.run([tool, *self.options, *args], cwd=cwd, capture_output=True,
                              text=True, errors="backslashreplace")

    def lists_age(self) -> float | None:
        """Seconds since the private package lists were fetched; None when never."""
        stamp = self.dir / "updated"
        try:
            return max(0.0, time.time() - stamp.stat().st_mtime)
        except OSError:
            return None

    def has_lists(self) -> bool:
        """Whether the private configuration holds anything a mirror gave
        (a Release or Packages file): a fetch that reached no mirror leaves
        only apt's own lock and folders."""
        return any(self.dir.glob("lists/*_dists_*"))   # host_path_dists_SUITE_InRelease, ...

    def update(self) -> None:
        """Fetch the suite's package lists into the private configuration."""
        status(f"fetching the package lists of {self.suite} with apt-get update")
        proc = self.run("update")
        # apt-get update exits 0 when a mirror cannot be reached (a warning):
        # the lists would then be taken as fetched, and every package as missing.
        failure = fetch_failure(proc.stderr)
        if failure:
            raise SourceError(f"{self.suite}: error: {failure}")
        errors = [line for line in proc.stderr.splitlines() if line.startswith(("E:", "Err:"))]
        if proc.returncode or errors:
            raise SourceError(f"{self.suite}: error: apt-get update failed: "
                              f"{(errors or proc.stderr.splitlines() or ['no message'])[0]}")
        write_atomically(self.dir / "updated", b"")

    def inputs(self) -> list[str]:
        """Everything `apt-cache policy` reads to answer: its configuration,
        the sources and preferences, the package lists, dpkg's status and
        architectures, and apt-cache itself."""
        etc, d = "/etc/apt", self.dir if self.suite else None
        common = [os.path.join(etc, "apt.conf"), os.path.join(etc, "apt.conf.d"),
                  "/var/lib/dpkg/arch", shutil.which("apt-cache") or "apt-cache"]
        if os.environ.get("APT_CONFIG"):
            common.append(os.environ["APT_CONFIG"])
        if d is None:
            return common + [os.path.join(etc, name) for name in (
                "sources.list", "sources.list.d", "preferences", "preferences.d")] + [
                "/var/lib/apt/lists", "/var/lib/dpkg/status"]
        return common + [str(d / name) for name in (
            "sources.list", "sources.list.d", "preferences", "preferences.d", "lists", "status")]

    def candidate(self, package: str, remember: Path | None = None) -> str | None:
        """The version apt would download, from the package lists (no network).

        remember: a file keeping the answer with the stamps of everything it
        depends on (inputs()); while none of them changed (and none changed
        too close to the question for its stamp to tell), apt is not asked.
        """
        question = {"package": package, "options": self.options,
                    "apt_config": os.environ.get("APT_CONFIG")}
        inputs = self.inputs()
        if remember is not None:
            known = _remembered(remember, question, inputs)
            if known is not None:
                return known
        asked_ns = time.time_ns()
        before = stamps(inputs)  # before apt reads them: a change meanwhile shows
        proc = self.run("policy", package)
        match = re.search(r"Candidate:\s*(\S+)", proc.stdout)
        version = match.group(1) if match and match.group(1) != "(none)" else None
        if remember is not None and version is not None and proc.returncode == 0:
            answer = dict(question, inputs=before, asked_ns=asked_ns, candidate=version)
            try:
                write_atomically(remember, sealed(answer))
            except OSError:
                pass  # not remembered: apt is asked again next time
        return version


def _remembered(path: Path, question: dict, inputs: list[str]) -> str | None:
    """The candidate kept in path for this question, None unless every file
    it depends on (inputs) has the stamp it had then, and not a racy one."""
    try:
        raw = read_kept(path)
        answer = json.loads(raw)
        if not (isinstance(answer, dict) and seal_holds(raw, answer)
                and all(answer.get(k) == v for k, v in question.items())
                and isinstance(answer.get("candidate"), str)):
            return None
        now = stamps(inputs)
        if now != answer["inputs"] or any(racy(s, answer["asked_ns"]) for s in now.values()):
            return None
    except NotKept as why:
        diagnostic(f"{path}: warning: apt's answer kept there is unusable ({why}); asking apt again")
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return answer["candidate"]


def _deb_member(deb: Path, prefix: str):
    """(offset, size) of the first ar member of a .deb whose name starts with prefix."""
    with open_kept(deb) as f:
        if f.read(8) != b"!<arch>\n":
            raise SourceError(f"{deb}: error: not a Debian package (no ar header)")
        while True:
            header = f.read(60)
            if len(header) < 60:
                raise SourceError(f"{deb}: error: no {prefix}* member")
            try:
                name = header[:16].decode("ascii").strip().rstrip("/")
                size = int(header[48:58].decode("ascii").strip())
            except ValueError:
                raise SourceError(f"{deb}: error: not a Debian package (bad ar member header)") \
                    from None
            if name.startswith(prefix):
                return f.tell(), size
            f.seek(size + (size & 1), os.SEEK_CUR)


def _tarball_from_deb(deb: Path, dest_dir: Path) -> Path:
    """Copy the usr/src/linux-source-*.tar.* out of a .deb into dest_dir."""
    offset, size = _deb_member(deb, "data.tar")
    try:
        with open_kept(deb) as f:
            f.seek(offset)
            with tarfile.open(fileobj=_Limited(f, size), mode="r|*") as data:
                for member in data:
                    if re.search(r"usr/src/linux-source-[^/]*\.tar\.\w+$", member.name):
                        out = dest_dir / Path(member.name).name
                        with data.extractfile(member) as src, open(out, "wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 20)
                        return out
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as why:
        raise SourceError(f"{deb}: error: cannot read the package: {why}") from None
    raise SourceError(f"{deb}: error: no usr/src/linux-source-*.tar.* inside")


class _Limited:
    """A read-only view of `size` bytes of a file, for one ar member."""

    def __init__(self, f, size: int):
        self._f, self._left = f, size

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        data = self._f.read(n)
        self._left -= len(data)
        return data


def fetch_debian(spec: str) -> Path:
    """The .deb of `[SUITE/]package` in the cache, downloaded with `apt-get download` when missing."""
    suite, package = parse_debian(spec)
    folder = cache_dir() / "debian" / suite if suite else cache_dir() / "debian"
    folder.mkdir(parents=True, exist_ok=True)
    # One process at a time fetches into a folder (apt's own lists lock refuses a second).
    with taking_turns(folder / ".lock", f"waiting for another download into {folder}"):
        remove_dead(folder)
        cached = sorted(_downloaded(folder, package), key=lambda p: p.stat().st_mtime)
        if not shutil.which("apt-get"):
            if cached:
                return cached[-1]  # what we fetched before
            raise MissingTool("--debian needs apt-get (Debian or Ubuntu): use --tarball or "
                              "--kernel on this system")
        return _fetch(spec, suite, package, folder, cached)


def _downloaded(folder: Path, package: str) -> list[Path]:
    """The package's .deb files in the cache folder: anything else under
    such a name (a FIFO, a link, a folder) is one warning and removed, so
    that the package is downloaded again."""
    found = []
    for path in folder.glob(f"{package}_*.deb"):
        try:
            open_kept(path).close()
            found.append(path)
        except NotKept as why:
            diagnostic(f"{path}: warning: not a downloaded package ({why}); removing it")
            with contextlib.suppress(OSError):
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        except OSError:
            pass                    # gone meanwhile, or unreadable: not one to use
    return found


def _fetch(spec: str, suite: str | None, package: str, folder: Path, cached: list[Path]) -> Path:
    apt = _Apt(suite)
    if suite is not None:
        age = apt.lists_age()
        if age is None or not apt.has_lists():   # never fetched (or a fetch that got nothing)
            try:
                apt.update()
            except SourceError:
                shutil.rmtree(apt.dir, ignore_errors=True)  # no such suite: leave nothing behind
                raise
        elif age > _LISTS_MAX_AGE_S:
            try:
                apt.update()
            except SourceError as why:
                diagnostic(f"{why} (using the package lists fetched {age / 3600:.0f} h ago)"
                           .replace(": error: ", ": warning: ", 1))
    version = apt.candidate(package, folder / f".{package}.candidate.json")
    if version:
        wanted = [p for p in cached if p.name.startswith(f"{package}_{version.replace(':', '%3a')}_")]
        if wanted:
            return wanted[-1]
    elif cached:
        return cached[-1]  # apt does not know the package now; use what we fetched before
    if not version:
        where = f"in {suite}" if suite else "to apt"
        hint = ("" if suite else "run `apt-get update` (and ") + \
            "check its name with `apt-cache search linux-source`" + ("" if suite else ")")
        raise SourceError(f"{spec}: error: no such package {where}: {hint}")
    status(f"fetching {package} {version} with apt-get download")
    # Download into a private folder so an interrupted download is never taken for a package.
    work = temporary_folder(folder, "download")
    try:
        proc = apt.run("download", package, cwd=work)
        debs = list(work.glob("*.deb"))
        if proc.returncode or not debs:
            failure = fetch_failure(proc.stderr)
            if failure:
                raise SourceError(f"{spec}: error: {failure}")
            message = [line for line in proc.stderr.splitlines() if line.startswith("E:")]
            raise SourceError(f"{spec}: error: apt-get download failed: "
                              f"{(message or proc.stderr.splitlines() or ['no .deb'])[0]}")
        final = folder / debs[0].name
        with open(debs[0], "rb") as f:
            os.fsync(f.fileno())
        os.replace(debs[0], final)
        for older in cached:  # superseded by this version (a point release)
            older.unlink(missing_ok=True)
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


def from_debian(spec: str = DEFAULT_DEBIAN) -> Source:
    """The tree of Debian's `[SUITE/]linux-source-X` package, fetched and extracted into the cache."""
    deb = fetch_debian(spec)
    key = deb.name.removesuffix(".deb")
    dest = cache_dir() / "trees" / key
    origin = f"debian {spec}"
    if dest.is_dir() and (dest / _COMPLETE).exists():
        return from_kernel_dir(dest, origin)
    work = temporary_folder(deb.parent, "deb")
    try:
        tarball = _tarball_from_deb(deb, work)
        return from_tarball(tarball, origin, key=key)
    except SourceError as why:
        if not dest.is_dir():
            raise
        diagnostic(str(why).replace(": error: ", ": warning: ", 1) +
                   f" (so {dest} lacks {' and '.join(MAINTAINER_FILES)})")
        return from_kernel_dir(dest, origin)
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
