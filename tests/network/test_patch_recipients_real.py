"""The series' To: and Cc: with the real get_maintainer.pl (issue 18, item
4): Debian's Linux 6.12 tree, whose extraction keeps MAINTAINERS and the
script, addresses a qcom patch to ARM/QUALCOMM SUPPORT's maintainers and
list, the device-tree maintainers and list, and linux-kernel; and the same
script over a MAINTAINERS written here in the real format splits To: and
Cc: as `b4 prep --auto-to-cc` does (maintainers and reviewers To:, lists
Cc:, the chief penguin of THE REST left out)."""
import re
import shutil
import subprocess
from email import message_from_string
from email.utils import getaddresses
from pathlib import Path

import pytest

from auditor.patch import make_series, write_series
from auditor.sweep import sweep_corpus
from corpus.build import build_corpus
from minikernel import dependencies, make_minikernel

pytestmark = pytest.mark.network

SM8450 = "arch/arm64/boot/dts/qcom/sm8450.dtsi"


@pytest.fixture(scope="module")
def linux612(real_corpus_factory):
    return real_corpus_factory("linux-source-6.12", ["qcom/sm8450-hdk.dtb"])


def _addresses(header):
    return [a.lower() for _, a in getaddresses([header or ""])]


def _section(maintainers, title):
    """{letter: [values]} of one MAINTAINERS entry."""
    text = maintainers.split(f"\n{title}\n", 1)[1].split("\n\n", 1)[0]
    found = {}
    for letter, value in re.findall(r"^([A-Z]):\s*(.*)$", text, re.M):
        found.setdefault(letter, []).append(value)
    return found


def test_qcom_patch_to_maintainers_and_lists_of_maintainers(linux612, tmp_path):
    tree = Path(linux612.kernel_dir)
    assert (tree / "MAINTAINERS").is_file() and (tree / "scripts/get_maintainer.pl").is_file()
    series = make_series(sweep_corpus(linux612), tree,
                         {e.dtb: linux612.dependencies(e.dtb) for e in linux612.entries})
    write_series(series, tmp_path)
    assert series.warnings == []
    (patch,) = [p for p in series.patches if p.source_file == SM8450]
    mail = message_from_string(patch.text)
    to, cc = _addresses(mail["To"]), _addresses(mail["Cc"])
    maintainers = (tree / "MAINTAINERS").read_text(encoding="utf-8")
    qcom = _section(maintainers, "ARM/QUALCOMM SUPPORT")
    dt = _section(maintainers, "OPEN FIRMWARE AND FLATTENED DEVICE TREE BINDINGS")
    people = [a for _, a in getaddresses(qcom["M"] + qcom.get("R", []) + dt["M"])]
    lists = [v.split()[0] for v in qcom["L"] + dt["L"]] + ["linux-kernel@vger.kernel.org"]
    assert set(to) == {a.lower() for a in people}
    assert set(cc) == {a.lower() for a in lists}
    # What the script says of the written patch, asked once without b4's split.
    said = subprocess.run(["perl", "scripts/get_maintainer.pl", "--nogit", "--nogit-fallback",
                           "--nogit-chief-penguins", "--norolestats", "--notree",
                           series.files[patch.number]],
                          cwd=tree, capture_output=True, text=True, check=True).stdout
    assert sorted(to + cc) == sorted(_addresses(",".join(said.splitlines())))
    cover = message_from_string(series.cover)
    assert set(to) <= set(_addresses(cover["To"])) and set(cc) <= set(_addresses(cover["Cc"]))


MAINTAINERS = """\
ARM/ACME SUPPORT
M:\tAnn Acme <ann@example.org>
M:\tJörg Müller <jm@example.org>
R:\tRita Review <rita@example.org>
L:\tlinux-acme@lists.example.org
S:\tMaintained
T:\tgit git://git.example.org/acme.git
F:\tarch/arm64/boot/dts/acme/
F:\tdrivers/soc/acme/

OPEN FIRMWARE AND FLATTENED DEVICE TREE BINDINGS
M:\tDee Tee <dt@example.org>
L:\tdevicetree@vger.kernel.org
S:\tMaintained
F:\tDocumentation/devicetree/
F:\tarch/*/boot/dts/
F:\tinclude/dt-bindings/

THE REST
M:\tLinus Torvalds <torvalds@linux-foundation.org>
L:\tlinux-kernel@vger.kernel.org
S:\tBuried alive in reporters
T:\tgit git://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git
F:\t*
F:\t*/
"""


def test_real_script_on_a_small_tree_splits_as_b4(linux612, tmp_path):
    tree = Path(make_minikernel(tmp_path / "linux"))
    (tree / "scripts").mkdir(exist_ok=True)
    shutil.copy(Path(linux612.kernel_dir) / "scripts/get_maintainer.pl", tree / "scripts")
    (tree / "MAINTAINERS").write_text(MAINTAINERS, encoding="utf-8")
    corpus = build_corpus(kernel=tree, out=tmp_path / "dtbs")
    series = make_series(sweep_corpus(corpus), tree, dependencies(corpus),
                         author="Test <test@example.com>")
    assert series.warnings == [] and len(series.patches) == 2
    for p in series.patches:
        head = p.text.split("\n\n", 1)[0]
        # get_maintainer.pl quotes a name with other than letters, digits, spaces and '-'.
        assert head.endswith(
            'To: Ann Acme <ann@example.org>,\n    "Jörg Müller" <jm@example.org>,\n'
            '    Rita Review <rita@example.org>,\n    Dee Tee <dt@example.org>\n'
            'Cc: linux-acme@lists.example.org,\n    devicetree@vger.kernel.org,\n'
            '    linux-kernel@vger.kernel.org'), head
    assert "torvalds" not in series.cover
