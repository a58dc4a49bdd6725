"""`--debian SUITE/linux-source-X` when the mirror cannot be reached
(issue 22): one line saying which mirror (its URL) could not be reached,
never "no such package"; a mirror that answers without the package is
"no such package".  No network: the suite's sources point at loopback, a
closed port or a tiny mirror served here (real apt-get, private lists)."""
import functools
import hashlib
import http.server
import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

from auditor.cli import main
from corpus import debian
from store.folders import cache_dir

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get")

SPEC = "sid/linux-source-7.2"
DEB = b"!<arch>\n"


@pytest.fixture(autouse=True)
def _no_retries(tmp_path, monkeypatch, loopback_apt_get):
    """apt tries a refused connection again, seconds apart: once is enough here
    (and apt-get only ever reaches the loopback mirrors of these tests)."""
    config = tmp_path / "apt.conf"
    config.write_text('Acquire::Retries "0";\n')
    monkeypatch.setenv("APT_CONFIG", str(config))


def _use_mirror(monkeypatch, url):
    # trusted=yes: the mirror served here signs nothing
    monkeypatch.setattr(debian, "suite_sources",
                        lambda suite: [f"deb [trusted=yes] {url} {suite} main"])


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mirror(tmp_path):
    """start(packages) -> URL of a Debian mirror on loopback whose sid/main
    holds `packages` (Packages stanzas); stop() takes it away."""
    servers = []

    def start(packages=""):
        root = tmp_path / "mirror" / "debian"
        index = packages.encode()
        lines = []
        for arch in ("amd64", "all"):
            path = root / "dists" / "sid" / "main" / f"binary-{arch}" / "Packages"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(index)
            lines.append(f" {hashlib.sha256(index).hexdigest()} {len(index)} "
                         f"main/binary-{arch}/Packages")
        (root / "dists" / "sid" / "Release").write_text(
            "Origin: Test\nSuite: sid\nCodename: sid\nArchitectures: amd64 all\n"
            "Components: main\nDate: Thu, 01 Jan 2026 00:00:00 UTC\nSHA256:\n"
            + "\n".join(lines) + "\n")
        pool = root / "pool" / "main" / "l" / "linux"
        pool.mkdir(parents=True, exist_ok=True)
        handler = functools.partial(_Quiet, directory=str(tmp_path / "mirror"))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/debian", pool

    def stop():
        while servers:
            server = servers.pop()
            server.shutdown()
            server.server_close()

    yield start, stop
    stop()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


STANZA = f"""\
Package: linux-source-7.2
Version: 7.2.13-1
Architecture: all
Filename: pool/main/l/linux/linux-source-7.2_7.2.13-1_all.deb
Size: {len(DEB)}
SHA256: {hashlib.sha256(DEB).hexdigest()}
Description: Linux kernel source

"""


def _build(capsys):
    status = main(["corpus", "build", "--debian", SPEC])
    out, err = capsys.readouterr()
    return status, out, err.splitlines()


def test_an_unreachable_mirror_is_named(monkeypatch, capsys):
    port = _closed_port()
    _use_mirror(monkeypatch, f"http://127.0.0.1:{port}/debian")
    status, out, err = _build(capsys)
    assert status == 2 and out == ""
    (line,) = err
    assert line.startswith(f"sid: error: cannot reach the Debian mirror "
                           f"http://127.0.0.1:{port}/debian (")
    assert "Connection refused" in line or "Could not connect" in line
    # Nothing kept that a later run would take for fetched lists.
    assert not (cache_dir() / "apt" / "sid").exists()
    status, _, again = _build(capsys)
    assert status == 2 and again == err


def test_a_mirror_without_the_package_says_no_such_package(monkeypatch, capsys, mirror):
    start, _ = mirror
    url, _ = start("")
    _use_mirror(monkeypatch, url)
    status, out, err = _build(capsys)
    assert (status, out) == (2, "")
    assert err == [f"{SPEC}: error: no such package in sid: check its name with "
                   f"`apt-cache search linux-source`"]


def test_a_mirror_gone_before_the_download_is_named(monkeypatch, capsys, mirror):
    start, stop = mirror
    url, pool = start(STANZA)
    _use_mirror(monkeypatch, url)
    # Listed but not in the pool: the mirror answers 404, which is not "unreachable".
    status, _, err = _build(capsys)
    assert status == 2
    assert err == [f"{SPEC}: error: the Debian mirror {url} did not give "
                   f"{url}/pool/main/l/linux/linux-source-7.2_7.2.13-1_all.deb (404  File not found "
                   f"[IP: 127.0.0.1 {url.split(':')[2].split('/')[0]}])"]
    # The lists are kept (fetched just now); then the mirror goes away.
    stop()
    status, _, err = _build(capsys)
    assert status == 2
    (line,) = err
    assert line.startswith(f"{SPEC}: error: cannot reach the Debian mirror {url} (")
    assert "no such package" not in line


def test_a_lists_folder_that_holds_nothing_fetched_is_fetched_again(monkeypatch, capsys, mirror):
    """What a failed update of an earlier version left (its `updated` stamp,
    no list): fetched again, not taken for a suite without the package."""
    start, _ = mirror
    url, pool = start(STANZA)
    (pool / "linux-source-7.2_7.2.13-1_all.deb").write_bytes(DEB)
    _use_mirror(monkeypatch, url)
    apt = cache_dir() / "apt" / "sid"
    (apt / "lists" / "partial").mkdir(parents=True)
    (apt / "updated").write_bytes(b"")
    deb = debian.fetch_debian(SPEC)
    assert deb.name == "linux-source-7.2_7.2.13-1_all.deb" and deb.read_bytes() == DEB
    assert os.path.isfile(apt / "updated") and any(Path(apt, "lists").glob("*_dists_*"))


def test_what_apt_says_of_a_download_without_network():
    """The machine's own apt (no suite): what `apt-get download` wrote in
    a network namespace without network (`unshare -n`)."""
    stderr = ("W: Download is performed unsandboxed as root as file '/tmp/dl/x.deb' couldn't be "
              "accessed by user '_apt'. - pkgAcquire::Run (13: Permission denied)\n"
              "E: Failed to fetch http://deb.debian.org/debian-security/pool/updates/main/l/"
              "linux-6.12/linux-source-6.12_6.12.118-1%7edeb12u1_all.deb  Temporary failure "
              "resolving 'deb.debian.org'\n")
    assert debian.fetch_failure(stderr) == (
        "cannot reach the Debian mirror http://deb.debian.org/debian-security "
        "(Temporary failure resolving 'deb.debian.org')")
    assert debian.fetch_failure("E: Unable to locate package linux-source-9.9\n") is None
