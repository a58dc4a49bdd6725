"""A repository given by URL: this machine's mirror of it, in its cache.

`history --git URL` hands the URL, never a path, to the Dask workers: each
keeps its own mirror (`git clone --mirror`) under its own cache folder and
fetches again when a commit of its chunk is missing there. The client
lists the revisions from its own mirror, fetched afresh. A local path is
not a URL: it is used where it is (corpus.git.open_repo)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from corpus.errors import UserError
from store.durable import place, temporary_folder
from store.folders import cache_dir, short_hash
from store.lock import taking_turns

# The transports a worker reaches on its own.
SCHEMES = ("git", "http", "https", "ssh", "file")
_URL = re.compile(rf"^(?:{'|'.join(SCHEMES)})://\S+$")
# Only these, whatever the user's git configuration allows (ext:: runs commands).
_PROTOCOLS = ["-c", "protocol.allow=never",
              *(arg for s in SCHEMES for arg in ("-c", f"protocol.{s}.allow=always"))]


def is_url(text) -> bool:
    return bool(_URL.match(str(text)))


def mirror(url: str, need=(), refresh: bool = False) -> Path:
    """The mirror of `url` on this machine, made when missing, holding every
    commit of `need`: fetched when one is missing, or when `refresh`."""
    if not is_url(url):
        raise UserError(url, f"not a git URL ({', '.join(s + '://' for s in SCHEMES)})")
    base = cache_dir() / "git-remote" / short_hash(url)
    path = base / "mirror.git"
    with taking_turns(base / "lock"):          # one clone or fetch of a mirror at a time
        if not _is_mirror(path):
            shutil.rmtree(path, ignore_errors=True)
            work = temporary_folder(base, "clone")
            try:
                _git(url, None, "clone", "-q", "--mirror", "--", url, str(work / "mirror.git"))
                place(work / "mirror.git", path)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        elif refresh or _missing(path, need):
            _git(url, path, "fetch", "-q", "--prune", "origin")
        missing = _missing(path, need)
        if missing:
            raise UserError(url, f"{missing[0]}: no such commit in the repository")
    return path


def _is_mirror(path: Path) -> bool:
    """A bare repository we made (not a link, not a stray file)."""
    return path.is_dir() and not path.is_symlink() and (path / "HEAD").is_file() \
        and not (path / "HEAD").is_symlink()


def _missing(path: Path, shas) -> list[str]:
    shas = list(shas)
    if not shas:
        return []
    proc = subprocess.run(["git", "-C", str(path), "cat-file", "--batch-check"],
                          input="".join(f"{sha}^{{commit}}\n" for sha in shas),
                          capture_output=True, text=True, errors="backslashreplace")
    answers = proc.stdout.splitlines()
    if proc.returncode or len(answers) != len(shas):
        return shas
    return [sha for sha, answer in zip(shas, answers) if answer.endswith(" missing")]


def _git(url: str, cwd: Path | None, *args: str) -> None:
    proc = subprocess.run(["git", *_PROTOCOLS, *args], cwd=cwd, capture_output=True, text=True,
                          errors="backslashreplace", stdin=subprocess.DEVNULL,
                          env=dict(os.environ, LC_ALL="C", GIT_TERMINAL_PROMPT="0",
                                   GIT_SSH_COMMAND=os.environ.get("GIT_SSH_COMMAND",
                                                                  "ssh -o BatchMode=yes")))
    if proc.returncode:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        why = lines[-1] if lines else f"exit status {proc.returncode}"
        raise UserError(url, f"git {args[0]}: {why.removeprefix('fatal: ')}")
