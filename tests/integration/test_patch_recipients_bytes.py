"""auditor.patch.recipients.recipients() with a stand-in get_maintainer.pl:
the bytes of a patch reach the script as they are (a .dts is not always
UTF-8: its text is read with surrogateescape), its answer comes back byte
for byte, and a script that fails says why in one warning whatever bytes
its stderr holds (module docstring: how b4 runs the script)."""
import shutil

import pytest

from auditor.patch.recipients import Recipients, recipients

pytestmark = pytest.mark.skipif(shutil.which("perl") is None, reason="needs perl")

OPTIONS = "--nogit --nogit-fallback --nogit-chief-penguins --norolestats --notree"

# Answers from the bytes of the patch on stdin; logs its arguments.
ECHO = r"""#!/usr/bin/perl
use strict;
binmode(STDIN); binmode(STDOUT);
die "not run from the top of the tree\n" unless -f "MAINTAINERS";
open(my $log, '>>', 'args.log'); print $log join(' ', @ARGV) . "\n"; close($log);
local $/; my $patch = <STDIN>;
my $to = grep { $_ eq '--nol' } @ARGV;
if ($patch =~ /\xe9/) {
    print $to ? "J\xf6rg <jorg\@example.org>\nnot an address\nAnn <ANN\@example.org>\n"
              : "ann\@example.org\nList <list\@lists.example.org>\nAnn <ann\@Example.org>\n";
} else {
    print "plain\@example.org\n";
}
"""

FAILS = r"""#!/usr/bin/perl
binmode(STDERR);
print STDERR "first line\n  the reason: bad \xff\xfe byte  \n\n";
exit 3;
"""

QUIET_FAIL = "#!/usr/bin/perl\nexit 4;\n"


def tree(tmp_path, script):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "get_maintainer.pl").write_text(script, encoding="latin-1")
    (tmp_path / "MAINTAINERS").write_text("THE REST\nF:\t*\n")
    return tmp_path


PATCH = ("diff --git a/arch/arm64/boot/dts/acme/a100.dtsi b/arch/arm64/boot/dts/acme/"
         "a100.dtsi\n--- a/x\n+++ b/x\n@@ -1 +1,2 @@\n /* Ren\udce9 */\n+\tdma-coherent;\n")


def test_the_patchs_bytes_reach_the_script_and_its_answer_comes_back(tmp_path):
    found, warning = recipients(tree(tmp_path, ECHO), [PATCH, "diff --git a/b b/b\n"])
    assert warning is None
    first, second = found
    # To: as printed, a line that is not one address left out; Cc: without the
    # To: addresses (of any case), the first of the same address kept.
    assert first == Recipients(to=("J\udcf6rg <jorg@example.org>", "Ann <ANN@example.org>"),
                               cc=("List <list@lists.example.org>",))
    assert second == Recipients(to=("plain@example.org",), cc=())
    runs = sorted((tmp_path / "args.log").read_text().splitlines())
    assert runs == [f"{OPTIONS} --nol"] * 2 + [f"{OPTIONS} --nom"] * 2


def test_a_failing_script_names_its_status_and_last_line(tmp_path):
    folder = tree(tmp_path, FAILS)
    found, warning = recipients(folder, [PATCH, PATCH])
    assert found == [Recipients(), Recipients()]
    assert warning == (f"{folder}/scripts/get_maintainer.pl: warning: exited with status 3 "
                       f"(the reason: bad \ufffd\ufffd byte), so the mails name no recipients")


def test_a_failing_script_that_says_nothing(tmp_path):
    folder = tree(tmp_path, QUIET_FAIL)
    found, warning = recipients(folder, [PATCH])
    assert found == [Recipients()]
    assert warning == (f"{folder}/scripts/get_maintainer.pl: warning: exited with status 4, "
                       f"so the mails name no recipients")
