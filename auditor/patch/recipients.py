"""Whom each mail goes to: the tree's own scripts/get_maintainer.pl, run as
`b4 prep --auto-to-cc` runs it (b4/ez.py, auto_to_cc): the patch on its
standard input, from the top of the tree, with `--nogit --nogit-fallback
--nogit-chief-penguins --norolestats`; `--nol` names the To: (maintainers
and reviewers), `--nom` the Cc: (lists, and anyone not already in To:).
`--notree` because a tree extracted from a tarball holds only part of the
kernel, which the script otherwise refuses; it changes nothing else.

Only perl and that script are run, never another program of the tree. A
tree without the script or MAINTAINERS, a missing perl, a script that
fails or gives no answer within TIMEOUT_S: one warning, and no mail names
a recipient (a partial list would look complete).
"""
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import getaddresses

SCRIPT = "scripts/get_maintainer.pl"
TIMEOUT_S = 60
_OPTIONS = ["--nogit", "--nogit-fallback", "--nogit-chief-penguins", "--norolestats",
            "--notree"]


@dataclass(frozen=True)
class Recipients:
    to: tuple = ()       # "Name <address>" as get_maintainer.pl prints them
    cc: tuple = ()

    def headers(self):
        """To: and Cc: as git format-patch writes --to and --cc: one address a
        line, the next ones indented by four spaces, the text as given."""
        return "".join(f"{name}: " + ",\n    ".join(found) + "\n"
                       for name, found in (("To", self.to), ("Cc", self.cc)) if found)


class _Failed(Exception):
    """get_maintainer.pl gave no usable answer; the message says why."""


def recipients(kernel_dir, messages):
    """([Recipients of each message], warning or None) for mails touching
    kernel_dir's files; on any failure, no recipients at all and one warning."""
    kernel_dir = os.fspath(kernel_dir)
    script = os.path.join(kernel_dir, SCRIPT)
    for rel in (SCRIPT, "MAINTAINERS"):
        if not os.path.exists(os.path.join(kernel_dir, rel)):
            return [Recipients()] * len(messages), (
                f"{os.path.join(kernel_dir, rel)}: warning: no such file, so the mails "
                f"name no recipients (add them with git send-email --to and --cc)")
    runs = [(m, role) for m in messages for role in ("--nol", "--nom")]
    with ThreadPoolExecutor(max_workers=max(1, min(len(runs), os.cpu_count() or 1))) as pool:
        futures = [pool.submit(_run, kernel_dir, script, *run) for run in runs]
        try:
            answers = [f.result() for f in futures]
        except _Failed as why:
            # What fails once fails for every patch: the rest is not waited for.
            pool.shutdown(wait=False, cancel_futures=True)
            return [Recipients()] * len(messages), \
                f"{script}: warning: {why}, so the mails name no recipients"
    found = []
    for to, cc in zip(answers[::2], answers[1::2]):
        to = _unique(to, set())
        found.append(Recipients(tuple(to), tuple(_unique(cc, {_key(a) for a in to}))))
    return found, None


def union(each):
    """The cover letter's Recipients: every patch's To:, then every Cc: not in them."""
    to = _unique([a for r in each for a in r.to], set())
    return Recipients(tuple(to), tuple(_unique([a for r in each for a in r.cc],
                                               {_key(a) for a in to})))


def _run(kernel_dir, script, message, role):
    """The addresses get_maintainer.pl prints for `message` with `role`."""
    try:
        proc = subprocess.run(["perl", script, *_OPTIONS, role], cwd=kernel_dir,
                              input=message.encode("utf-8", "surrogateescape"),
                              capture_output=True, timeout=TIMEOUT_S)
    except FileNotFoundError:
        raise _Failed("perl not found (install it with `apt-get install perl`)") from None
    except subprocess.TimeoutExpired:
        raise _Failed(f"no answer within {TIMEOUT_S} s") from None
    except OSError as why:
        raise _Failed(f"cannot run perl: {why.strerror or why}") from None
    if proc.returncode:
        said = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise _Failed(f"exited with status {proc.returncode}" +
                      (f" ({said[-1].strip()})" if said else ""))
    out = proc.stdout.decode("utf-8", "surrogateescape").splitlines()
    # One address a line; anything else (a warning on stdout) is not one.
    return [line.strip() for line in out if _key(line)]


def _key(line):
    """The address of a printed line, lowercased; None unless it is one address."""
    pairs = getaddresses([line])
    if len(pairs) != 1 or "@" not in pairs[0][1] or any(c in pairs[0][1] for c in " \t<>,"):
        return None
    return pairs[0][1].lower()


def _unique(lines, seen):
    """lines without the addresses in `seen` or met before (the first kept)."""
    out = []
    for line in lines:
        key = _key(line)
        if key not in seen:
            seen.add(key)
            out.append(line)
    return out
