"""The command line's arguments: each command's options and their help.

auditor/cli.py builds the parser from COMMANDS with these; what an option
means is read there (--target-kernel, --rule and --no-legacy-dt-bindings
into one kernels.judging.Judging).
"""
from __future__ import annotations

import argparse

from kernels.codes import RULE_NAMES

DEFAULT_DEBIAN_HELP = "linux-source-6.12"


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the DTBs come from: one of these, Linux 6.12 from Debian when none."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--kernel", metavar="DIR", help="a kernel source tree")
    group.add_argument("--tarball", metavar="FILE", help="a kernel tarball (.tar.xz, .tar.gz)")
    group.add_argument("--debian", metavar="[SUITE/]PACKAGE",
                       help="Debian's kernel source package, e.g. linux-source-6.1 or "
                            "sid/linux-source-7.2 (another suite: the machine's own mirror, "
                            f"kept in the cache); default {DEFAULT_DEBIAN_HELP}")
    group.add_argument("--dtbs", metavar="DIR", help="a folder of built .dtb files, used as it is")


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_jobs_argument(parser: argparse.ArgumentParser, what="compilers run at once") -> None:
    parser.add_argument("-j", "--jobs", type=_jobs, metavar="N",
                        help=f"{what} (default: all cores)")


def add_rule_arguments(parser: argparse.ArgumentParser) -> None:
    from kernels.target import NEWEST, OLDEST, version_text   # plain Python, no numba
    oldest, newest = version_text(OLDEST), version_text(NEWEST)
    parser.add_argument("--target-kernel", metavar="VERSION",    # read by cli._judging
                        help=f"judge as this kernel does (e.g. 6.1, 6.12.117, 7.3-rc1, "
                             f"6.1.0-27-arm64; modelled: {oldest} to {newest}, older ask "
                             f"nothing, newer get {newest}'s decisions); default: the version "
                             "of the tree "
                             "the corpus was built from (in history, each commit's release), "
                             "the newest modelled for a bare folder of DTBs")
    parser.add_argument("--rule", choices=RULE_NAMES,
                        help="override the target kernel's IOMMU_CAP_CACHE_COHERENCY rule "
                             "(a what-if; everything else still follows the target kernel)")
    parser.add_argument("--no-legacy-dt-bindings", action="store_true",
                        help="model a kernel built without CONFIG_ARM_SMMU_LEGACY_DT_BINDINGS")


def add_boot_logs_argument(parser) -> None:
    parser.add_argument("--boot-logs", metavar="DIR",
                        help="kernel boot logs of the corpus's boards (as `dtb-audit bootlog` "
                             "reads them): each affected SMMU's evidence class, from what "
                             "they say of its register")


def add_corpus_build_arguments(parser):
    add_source_arguments(parser)
    parser.add_argument("--out", metavar="DIR",
                        help="build into this folder (default: a folder in the cache, "
                             "$XDG_CACHE_HOME/dtb-audit)")
    add_jobs_argument(parser)
    parser.add_argument("--select", metavar="GLOB", action="append",
                        help="build only DTBs whose path matches, e.g. 'freescale/fsl-ls10*' "
                             "(repeatable)")


def add_sweep_arguments(parser):
    from auditor.report import FORMATS
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="a DTB, a folder of DTBs or a kernel tree (default: the default corpus)")
    add_source_arguments(parser)
    add_rule_arguments(parser)
    parser.add_argument("--format", choices=FORMATS,
                        help="output format (default: table on a terminal, jsonl otherwise)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write the report here (whole or not at all)")
    parser.add_argument("--fail-on-affected", action="store_true",
                        help="exit 1 when any SoC is affected")
    parser.add_argument("--partial", action="store_true",
                        help="sweep a corpus whose build was interrupted, saying so "
                             "(refused otherwise)")
    add_boot_logs_argument(parser)


def add_explain_arguments(parser):
    parser.add_argument("board", metavar="BOARD",
                        help="a DTB file, or a board's DTB path or name in the corpus "
                             "(e.g. fsl-ls1028a-rdb)")
    add_source_arguments(parser)
    add_rule_arguments(parser)
    add_boot_logs_argument(parser)


def add_check_parser_arguments(parser):
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="a DTB folder or a kernel tree (default: the default corpus)")
    add_source_arguments(parser)
    parser.set_defaults(partial=False)


def add_compare_arguments(parser):
    add_rule_arguments(parser)
    add_jobs_argument(parser, "compilers run at once when a corpus is built")


def add_diff_arguments(parser):
    parser.add_argument("old", metavar="OLD",
                        help="a saved sweep (--format json), a kernel tree, a tarball, "
                             "a Debian [suite/]linux-source-X package or a DTB folder")
    parser.add_argument("new", metavar="NEW", help="the same kinds as OLD")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the diff here")
    parser.add_argument("--fail-on-new", action="store_true",
                        help="exit 1 when a SoC, board or link became affected (and only then)")
    add_compare_arguments(parser)


def add_history_arguments(parser):
    parser.add_argument("corpora", metavar="CORPUS|REVISION", nargs="*",
                        help="saved sweeps or corpora (as for diff), oldest first; with --git, "
                             "git revision ranges (v6.1..v6.12; default: the release tags "
                             "reachable from HEAD)")
    parser.add_argument("--git", metavar="REPO",
                        help="a git checkout of a kernel tree or of devicetree-rebasing: every "
                             "commit of REVISIONS that touched the DT inputs")
    parser.add_argument("--all-commits", action="store_true",
                        help="with --git: every commit, not only the first-parent ones")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="with --git: a dask.distributed scheduler (tcp://HOST:PORT) to "
                             "send the work to; default: this machine's cores")
    parser.add_argument("--plot", metavar="FILE",
                        help="with --git: affected SoCs over the revisions (SVG or PNG)")
    parser.add_argument("--mails", metavar="DIR",
                        help="with --git: one robot-style message per newly affected SoC")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the history here")
    parser.add_argument("--changed", action="store_true",
                        help="only the SoCs whose verdict or SMMU coherency changed")
    parser.add_argument("--fail-on-new", action="store_true",
                        help="exit 1 when a SoC is affected at the end and was not at the start")
    add_compare_arguments(parser)


def add_patch_arguments(parser):
    add_source_arguments(parser)
    parser.add_argument("--sweep", metavar="FILE",
                        help="a saved sweep (--format json) of a corpus built from the tree, "
                             "instead of sweeping now")
    parser.add_argument("-o", "--output-directory", metavar="DIR", required=True,
                        help="write the series here (earlier NNNN-*.patch files in it are removed)")
    parser.add_argument("--verify", action="store_true",
                        help="apply the series to a copy of the tree, rebuild the boards "
                             "it touches, sweep them again and report what is still affected")
    parser.add_argument("--from", dest="author", metavar="'NAME <EMAIL>'",
                        help="the author (default: git config user.name and user.email)")
    parser.add_argument("-s", "--signoff", action="store_true",
                        help="add Signed-off-by: with the author (only once you have "
                             "confirmed the change on hardware)")
    parser.add_argument("--no-recipients", dest="recipients", action="store_false",
                        help="no To: and Cc: (by default, each patch's as the tree's "
                             "scripts/get_maintainer.pl names them, the cover letter's all of "
                             "them)")
    add_boot_logs_argument(parser)
    add_rule_arguments(parser)
    add_jobs_argument(parser)


def add_bootlog_arguments(parser):
    parser.add_argument("logs", nargs="+", metavar="LOG|DIR",
                        help="kernel boot logs (dmesg, serial captures, KernelCI logs; "
                             "gzip too), or folders of them")
    add_source_arguments(parser)
    parser.add_argument("--target-kernel", metavar="VERSION",    # read by cli._judging
                        help="judge the DT's coherency as this kernel does (default: the "
                             "version of the tree the corpus was built from)")
    parser.add_argument("--board", metavar="BOARD",
                        help="the board of logs that print no `Machine model:` line "
                             "(a DTB path or name of the corpus)")
    parser.add_argument("--format", choices=("table", "json"),
                        help="output format (default: table on a terminal, json otherwise)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write the report here (whole or not at all)")
    parser.add_argument("--partial", action="store_true",
                        help="use a corpus whose build was interrupted")
    add_jobs_argument(parser)


def add_site_arguments(parser):
    parser.add_argument("out_dir", metavar="OUT_DIR",
                        help="the site's folder, replaced whole (a folder written by an earlier "
                             "run, an empty one, or none)")
    parser.add_argument("--sweep", metavar="FILE", required=True,
                        help="the saved sweep to show (sweep --format json)")
    parser.add_argument("--previous", metavar="FILE",
                        help="an earlier saved sweep: what became or stopped being affected since")
    parser.add_argument("--history", metavar="FILE",
                        help="a history of saved sweeps (history --format json): each SoC's "
                             "line across the versions")
    parser.add_argument("--bootlog", metavar="FILE",
                        help="boot-log findings (bootlog --format json), shown on SoC pages")
    parser.add_argument("--source-url", metavar="TEMPLATE",
                        help="link each file:line through this URL, with {path}, {line} and "
                             "{version} (the target kernel), e.g. "
                             "https://elixir.bootlin.com/linux/v{version}/source/{path}#L{line}")
