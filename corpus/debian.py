"""Debian's linux-source-X, as a kernel tree: the package fetched with apt
into the cache (debian/), its tarball read out of the .deb with
python-debian, then extracted as any tarball (corpus/sources.py).

`linux-source-6.12` comes from the machine's own apt configuration, as
`apt-get download` sees it. `SUITE/linux-source-X` (sid/linux-source-7.2,
bullseye/linux-source-5.10) comes from another suite of the same mirror
through a private apt configuration under the cache (apt/SUITE/: its own
sources list, package lists and caches, nothing of the system's read but
the mirror's address and keyring, nothing of the system's changed). apt's
answer to "which version" is remembered with the stamps of every file it
depends on, so a second run does not ask apt either.
"""

from __future__ import annotations

import contextlib
import lzma
import os
import re
import shutil
import subprocess
import tarfile
import time
import zlib
from pathlib import Path

from debian.arfile import ArError
from debian.deb822 import Deb822
from debian.debfile import DebFile

from corpus.console import diagnostic, status
from corpus.dtc import MissingTool
from corpus.sources import (MAINTAINER_FILES, COMPLETE, Source, SourceError, from_kernel_dir,
                            from_tarball)
from store.durable import adopt, remove_dead, temporary_folder, write_atomically
from store.folders import cache_dir
from store.kept import NotKept, open_kept, read_kept
from store.lock import taking_turns
from store.sealed import read_sealed, sealed
from store.stamps import stamps, unchanged

DEFAULT_DEBIAN = "linux-source-6.12"

_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# Suites with no -updates or -security companions.
_NO_COMPANIONS = {"sid", "unstable", "experimental", "rc-buggy"}
# Private package lists older than this are refreshed before a download.
_LISTS_MAX_AGE_S = 24 * 3600
_ANSWER_FORMAT = 1   # of apt's remembered answer (.PACKAGE.candidate.json)


def parse_debian(spec: str) -> tuple[str | None, str]:
    """"sid/linux-source-7.2" -> ("sid", "linux-source-7.2"); "linux-source-6.12" -> (None, ...)."""
    suite, _, package = spec.rpartition("/")
    if suite and not re.fullmatch(r"[a-z][a-z0-9.-]*", suite):
        raise SourceError(spec, f"not a Debian suite name: {suite!r}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", package):
        raise SourceError(spec, "not a Debian package name")
    return suite or None, package


def system_mirrors(etc: Path = Path("/etc/apt")) -> list[tuple[str, list[str], list[str], str]]:
    """(URI, suites, components, keyring) of every enabled `deb` source of this machine."""
    mirrors = []
    parts = sorted((etc / "sources.list.d").glob("*.sources")) if (etc / "sources.list.d").is_dir() else []
    for path in parts:
        for stanza in Deb822.iter_paragraphs(path.read_text(errors="replace").splitlines()):
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
        raise SourceError(etc, "no Debian mirror of this machine's suite "
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
            raise SourceError(self.suite, failure)
        errors = [line for line in proc.stderr.splitlines() if line.startswith(("E:", "Err:"))]
        if proc.returncode or errors:
            raise SourceError(self.suite, "apt-get update failed: "
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
            answer = dict(question, format=_ANSWER_FORMAT, inputs=before, asked_ns=asked_ns,
                          candidate=version)
            try:
                write_atomically(remember, sealed(answer))
            except OSError:
                pass  # not remembered: apt is asked again next time
        return version


def _remembered(path: Path, question: dict, inputs: list[str]) -> str | None:
    """The candidate kept in path for this question, None unless every file
    it depends on (inputs) has the stamp it had then, and not a racy one."""
    try:
        answer = read_sealed(path, _ANSWER_FORMAT)
        if not (answer is not None and all(answer.get(k) == v for k, v in question.items())
                and isinstance(answer.get("candidate"), str)
                and unchanged(answer["inputs"], stamps(inputs), answer["asked_ns"])):
            return None
    except NotKept as why:
        diagnostic(f"{path}: warning: apt's answer kept there is unusable ({why}); asking apt again")
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None    # OtherFormat and Damaged included: apt is asked again
    return answer["candidate"]


def _tarball_from_deb(deb: Path, dest_dir: Path) -> Path:
    """Copy the usr/src/linux-source-*.tar.* out of a .deb into dest_dir."""
    try:
        with open_kept(deb) as f, DebFile(fileobj=f) as package:
            data = package.data.tgz()
            for member in data:
                if re.search(r"usr/src/linux-source-[^/]*\.tar\.\w+$", member.name):
                    out = dest_dir / Path(member.name).name
                    with data.extractfile(member) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    return out
    except ArError as why:      # python-debian's DebError too
        raise SourceError(deb, f"not a Debian package ({why})") from None
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as why:
        raise SourceError(deb, f"cannot read the package: {why}") from None
    raise SourceError(deb, "no usr/src/linux-source-*.tar.* inside")


def fetch_debian(spec: str) -> Path:
    """The .deb of `[SUITE/]package` in the cache, downloaded with `apt-get download` when missing."""
    suite, package = parse_debian(spec)
    folder = cache_dir() / "debian" / suite if suite else cache_dir() / "debian"
    folder.mkdir(parents=True, exist_ok=True)
    # One process at a time fetches into a folder (apt's own lists lock refuses a second).
    waiting = f"waiting for another download into {folder}"
    with taking_turns(folder / ".lock", lambda: status(waiting)):
        remove_dead(folder)
        cached = sorted(_downloaded(folder, package), key=lambda p: p.stat().st_mtime)
        if not shutil.which("apt-get"):
            if cached:
                return cached[-1]  # what we fetched before
            raise MissingTool(None, "--debian needs apt-get (Debian or Ubuntu): use --tarball or "
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
        raise SourceError(spec, f"no such package {where}: {hint}")
    status(f"fetching {package} {version} with apt-get download")
    # Download into a private folder so an interrupted download is never taken for a package.
    work = temporary_folder(folder, "download")
    try:
        proc = apt.run("download", package, cwd=work)
        debs = list(work.glob("*.deb"))
        if proc.returncode or not debs:
            failure = fetch_failure(proc.stderr)
            if failure:
                raise SourceError(spec, failure)
            message = [line for line in proc.stderr.splitlines() if line.startswith("E:")]
            raise SourceError(spec, "apt-get download failed: "
                              f"{(message or proc.stderr.splitlines() or ['no .deb'])[0]}")
        final = folder / debs[0].name
        adopt(debs[0], final)
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
    if dest.is_dir() and (dest / COMPLETE).exists():
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

