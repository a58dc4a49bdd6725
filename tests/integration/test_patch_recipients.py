"""The series' To: and Cc: (issue 18, item 4), offline: what `b4 prep
--auto-to-cc` does with the tree's scripts/get_maintainer.pl (b4/ez.py:
the patch on stdin, from the top of the tree; `--nol` for To:, `--nom` for
Cc:), written as `git format-patch --to --cc` writes them; a tree without
the script or MAINTAINERS, a script that fails or hangs: one warning, the
series still written, no recipients. The real get_maintainer.pl is not
here offline (kernel sources are never committed): a script written here
stands in for it, answering as it does (one address a line; names with
other than letters, digits, spaces and '-' in double quotes); the real one
runs in tests/test_patch_recipients_real.py."""
import contextlib
import io
import os
import subprocess
import time
from pathlib import Path

import pytest

from auditor.cli import main
from minikernel import make_minikernel

# Per file of the mini tree, as get_maintainer.pl would print them for an
# ARM/ACME SUPPORT entry (M:, R:, L:) and the device-tree entry (M:, L:):
# with --nol the maintainers and reviewers, with --nom the reviewers and lists.
FAKE = r"""#!/usr/bin/perl
use strict;
my %role = map { $_ => 1 } @ARGV;
open(my $log, '>>', $ENV{FAKE_LOG}) if $ENV{FAKE_LOG};
print $log join(' ', @ARGV) . "\n" if $log;
die "not run from the top of the tree\n" unless -f "MAINTAINERS";
my @files;
while (<STDIN>) { push(@files, $1) if m{^diff --git a/(\S+) b/}; }
die "no patch on stdin\n" unless @files;
my %m = (a100 => ['"Jörg Müller" <jm@example.org>', 'Ann Acme <ann@example.org>'],
         a200 => ['Bob Acme <bob@example.org>', 'Ann Acme <ann@example.org>']);
my @out;
for my $f (@files) {
    my ($soc) = $f =~ m{/(a\d00)\.dtsi$};
    push(@out, @{$m{$soc}}) if !$role{'--nom'};
    push(@out, 'Rita Review <rita@example.org>');               # R: in both
    push(@out, 'acme-soc@lists.example.org') if !$role{'--nol'};
}
push(@out, 'Dee Tee <dt@example.org>') if !$role{'--nom'};
push(@out, 'devicetree@vger.kernel.org', 'linux-kernel@vger.kernel.org') if !$role{'--nol'};
my %seen;
print join("\n", grep { !$seen{$_}++ } @out) . "\n";
"""


def _tree(tmp_path, script=FAKE, maintainers=True):
    tree = Path(make_minikernel(tmp_path / "linux"))
    if script is not None:
        (tree / "scripts").mkdir(exist_ok=True)
        (tree / "scripts/get_maintainer.pl").write_text(script, encoding="utf-8")
    if maintainers:
        (tree / "MAINTAINERS").write_text("THE REST\nL:\tlinux-kernel@vger.kernel.org\n"
                                          "S:\tBuried alive in reporters\nF:\t*\nF:\t*/\n")
    return tree


def _patch(tree, out, *options):
    """(exit status, {file name: text}, stderr) of `dtb-audit patch` on the tree."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(["patch", "--kernel", str(tree), "-o", str(out), "--from",
                       "Test <test@example.com>", *options])
    files = {n: (out / n).read_text(encoding="utf-8") for n in sorted(os.listdir(out))} \
        if out.is_dir() else {}
    return status, files, err.getvalue()


def _headers(mail):
    """The header lines of a mail (continuations included), without the From line."""
    return mail.split("\n\n", 1)[0].split("\n")[1:]


def _addressed(mail):
    head = "\n".join(_headers(mail))
    return "\nTo: " in "\n" + head or "\nCc: " in "\n" + head


def _warnings(err):
    return [line for line in err.splitlines() if ": warning: " in line
            and "not patched" not in line]


def test_each_patch_to_its_maintainers_the_cover_to_all(tmp_path, isolated_cache, monkeypatch):
    tree = _tree(tmp_path)
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "runs"))
    status, files, err = _patch(tree, tmp_path / "out")
    assert status == 0 and _warnings(err) == []
    cover, a100, a200 = files.values()
    assert _headers(a100)[3:] == [
        'To: "Jörg Müller" <jm@example.org>,', "    Ann Acme <ann@example.org>,",
        "    Rita Review <rita@example.org>,", "    Dee Tee <dt@example.org>",
        "Cc: acme-soc@lists.example.org,", "    devicetree@vger.kernel.org,",
        "    linux-kernel@vger.kernel.org"]
    assert _headers(a200)[3:] == [
        "To: Bob Acme <bob@example.org>,", "    Ann Acme <ann@example.org>,",
        "    Rita Review <rita@example.org>,", "    Dee Tee <dt@example.org>",
        "Cc: acme-soc@lists.example.org,", "    devicetree@vger.kernel.org,",
        "    linux-kernel@vger.kernel.org"]
    # The cover letter: every To:, then every Cc: not among them, each once.
    assert _headers(cover)[3:] == [
        'To: "Jörg Müller" <jm@example.org>,', "    Ann Acme <ann@example.org>,",
        "    Rita Review <rita@example.org>,", "    Dee Tee <dt@example.org>,",
        "    Bob Acme <bob@example.org>",
        "Cc: acme-soc@lists.example.org,", "    devicetree@vger.kernel.org,",
        "    linux-kernel@vger.kernel.org"]
    # b4's options, To: from --nol and Cc: from --nom, once each per patch.
    runs = sorted((tmp_path / "runs").read_text().splitlines())
    b4 = "--nogit --nogit-fallback --nogit-chief-penguins --norolestats"
    assert len(runs) == 4 and all(r.startswith(b4) for r in runs)
    assert [r.split()[-1] for r in runs] == ["--nol", "--nol", "--nom", "--nom"]


@pytest.mark.parametrize("author, signoff", [("Test <test@example.com>", ()),
                                             ("Zoë Tëst <zt@example.org>", ()),
                                             ("Zoë Tëst <zt@example.org>", ("--signoff",))])
def test_recipients_are_written_as_git_format_patch_writes_to_and_cc(tmp_path, isolated_cache,
                                                                      author, signoff):
    """Each patch's headers, To: and Cc: with them, are those git format-patch
    --to --cc writes for the same commit (an author that is not ASCII, signing
    off or not: the body is ASCII or not, the MIME headers with it)."""
    tree = _tree(tmp_path)
    status, files, err = _patch(tree, tmp_path / "out", "--from", author, *signoff)
    assert status == 0 and _warnings(err) == []
    name, address = author[:-1].split(" <")
    env = dict(os.environ, GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=address,
               GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=address, HOME=str(tmp_path),
               GIT_CEILING_DIRECTORIES=str(tmp_path))
    repo = tmp_path / "r"
    git = lambda *a: subprocess.run(["git", "-C", str(repo), *a], env=env, check=True,
                                    capture_output=True, text=True).stdout
    repo.mkdir()
    git("init", "-q")
    for n, mail in enumerate([m for f, m in files.items() if not f.startswith("0000-")]):
        head, body = mail.split("\n\n", 1)
        lines = head.replace("\n    ", " ").split("\n")     # continuation lines joined
        field = lambda name: next(l[len(name) + 2:] for l in lines if l.startswith(name + ": "))
        subject = field("Subject").split("] ", 1)[1]
        (repo / "f").write_text(f"{n}\n")
        git("add", "f")
        git("commit", "-q", "-m", f"{subject}\n\n" + body.split("\n---\n")[0] + "\n")
        theirs = git("format-patch", "-1", "--stdout", "--subject-prefix",
                     field("Subject").split("] ")[0][1:],
                     *[f"--to={a}" for a in field("To").split(", ")],
                     *[f"--cc={a}" for a in field("Cc").split(", ")])
        drop = lambda text: [line for line in _headers(text) if not line.startswith("Date: ")]
        assert drop(mail) == drop(theirs)


@pytest.mark.parametrize("missing", ["scripts/get_maintainer.pl", "MAINTAINERS"])
def test_tree_without_script_or_maintainers_one_warning_no_recipients(tmp_path, isolated_cache,
                                                                       missing):
    tree = _tree(tmp_path, script=None if missing != "MAINTAINERS" else FAKE,
                 maintainers=missing != "MAINTAINERS")
    status, files, err = _patch(tree, tmp_path / "out")
    assert status == 0 and len(files) == 3
    assert _warnings(err) == [f"{tree / missing}: warning: no such file, so the mails name no "
                              f"recipients (add them with git send-email --to and --cc)"]
    assert not any(_addressed(text) for text in files.values())


FAILS = "#!/usr/bin/perl\nprint STDERR \"get_maintainer.pl: something broke\\n\";\nexit 1;\n"
HANGS = "#!/usr/bin/perl\nsleep 60;\nprint \"late\\@example.org\\n\";\n"


def test_failing_script_one_warning_series_still_written(tmp_path, isolated_cache):
    tree = _tree(tmp_path, script=FAILS)
    status, files, err = _patch(tree, tmp_path / "out")
    assert status == 0 and len(files) == 3
    assert _warnings(err) == [
        f"{tree / 'scripts/get_maintainer.pl'}: warning: exited with status 1 "
        f"(get_maintainer.pl: something broke), so the mails name no recipients"]
    assert not any(_addressed(text) for text in files.values())


def test_hanging_script_is_given_up_one_warning(tmp_path, isolated_cache, monkeypatch):
    from auditor.patch import recipients
    tree = _tree(tmp_path, script=HANGS)
    monkeypatch.setattr(recipients, "TIMEOUT_S", 0.5)
    started = time.monotonic()
    status, files, err = _patch(tree, tmp_path / "out")
    assert time.monotonic() - started < 20
    assert status == 0 and len(files) == 3
    assert _warnings(err) == [f"{tree / 'scripts/get_maintainer.pl'}: warning: no answer "
                              f"within 0.5 s, so the mails name no recipients"]
    assert not any(_addressed(text) for text in files.values())


def test_without_perl_one_warning(tmp_path, isolated_cache, monkeypatch):
    tree = _tree(tmp_path)
    real_run = subprocess.run

    def no_perl(argv, *args, **kwargs):
        if argv[0] == "perl":
            raise FileNotFoundError(2, "No such file or directory", "perl")
        return real_run(argv, *args, **kwargs)
    monkeypatch.setattr(subprocess, "run", no_perl)
    status, files, err = _patch(tree, tmp_path / "out")
    assert status == 0 and len(files) == 3
    assert _warnings(err) == [
        f"{tree / 'scripts/get_maintainer.pl'}: warning: perl not found (install it with "
        f"`apt-get install perl`), so the mails name no recipients"]


def test_no_recipients_runs_nothing(tmp_path, isolated_cache, monkeypatch):
    tree = _tree(tmp_path)
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "runs"))
    status, files, err = _patch(tree, tmp_path / "out", "--no-recipients")
    assert status == 0 and len(files) == 3 and _warnings(err) == []
    assert not any(_addressed(text) for text in files.values())
    assert not (tmp_path / "runs").exists()
