"""The `dtb-audit` command line: the one module that parses arguments.

Each command is a function of the parsed arguments that calls a module
with plain arguments and returns the exit status: 0 clean, 1 when
something did not go through (a file that did not build, findings when
asked), 2 for a usage or input error.  Human text goes to stderr, what a
script would read to stdout.

The question every DTB is asked (--target-kernel, --rule,
--no-legacy-dt-bindings) is read once, into one kernels.judging.Judging
(args.judging), handed unchanged to what judges.

Imports are lazy: `--help`, and commands that only read saved sweeps
(`diff`, `history` of JSON files), never load numba or the kernels.
Every error a user can cause is a corpus.errors.UserError, caught once
here and printed as its line().
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import os
import re
import sys
import time

from corpus.errors import UserError
from kernels.codes import RULE_NAMES

from auditor.text import shown

DEFAULT_DEBIAN_HELP = "linux-source-6.12"
# "linux-source-6.1", "sid/linux-source-7.2": a Debian package, possibly of another suite.
DEBIAN_PACKAGE = re.compile(r"^([a-z][a-z0-9-]*/)?linux-source-\d+(\.\d+)*$")


# -- arguments shared by several commands ------------------------------------

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


def _judging(args):
    """The Judging of the command line: --target-kernel read here, not by
    argparse (a bad one is one line, no usage), --rule and the bindings."""
    from kernels.judging import Judging, Rule, TargetError, TargetKernel   # no numba
    target = None
    if args.target_kernel is not None:
        try:
            target = TargetKernel.parse(args.target_kernel, where="--target-kernel")
        except TargetError as why:
            raise UserError(None, str(why)) from None
    rule = getattr(args, "rule", None)
    return Judging(target, Rule(rule) if rule else None,
                   not getattr(args, "no_legacy_dt_bindings", False))


def _warn_newer(targets) -> None:
    """One warning for the target kernels newer than the newest modelled."""
    from kernels.target import newer_warning
    line = newer_warning(targets)
    if line:
        sys.stderr.write(f"dtb-audit: warning: {line}\n")


def add_rule_arguments(parser: argparse.ArgumentParser) -> None:
    from kernels.target import NEWEST, OLDEST, version_text   # plain Python, no numba
    oldest, newest = version_text(OLDEST), version_text(NEWEST)
    parser.add_argument("--target-kernel", metavar="VERSION",    # read by _judging
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


def _with_evidence(result, corpus, args, flat_ev=None):
    """The Sweep with the evidence class of each SMMU of its affected SoCs:
    upstream's settled cases and the DT's own evidence, and the boot logs of
    --boot-logs when given (logs that cannot be used are one line each on
    stderr)."""
    from dataclasses import replace

    from auditor.evidence import classify
    if not args.boot_logs:
        return result                  # the DT's and upstream's word (auditor.sweep)
    from auditor.bootlog import Boards, audit, board_index
    from auditor.output import Stderr
    from auditor.sweep import target_of
    if flat_ev is not None:        # one board (explain): logs of other boards are not news
        boards = Boards(*flat_ev, corpus)
    else:
        boards = board_index(corpus, target_of(corpus, args.judging))
    err = Stderr()
    doc = audit([args.boot_logs], boards, problem=err.line, others_quiet=flat_ev is not None)
    return replace(result, evidence=classify(result, doc))


def _source(args) -> dict:
    return {"kernel": args.kernel, "tarball": args.tarball, "debian": args.debian,
            "dtbs": args.dtbs}


def _build(args, **more):
    from corpus.build import build_corpus
    return build_corpus(**_source(args), jobs=getattr(args, "jobs", None), **more)


def _sweep_corpus(corpus, args):
    """The Sweep of a corpus under the command's Judging."""
    from auditor.sweep import sweep_corpus, target_of
    _warn_newer([target_of(corpus, args.judging)])
    return sweep_corpus(corpus, args.judging)


# -- dtb-audit corpus build ---------------------------------------------------

def add_corpus_build_arguments(parser):
    add_source_arguments(parser)
    parser.add_argument("--out", metavar="DIR",
                        help="build into this folder (default: a folder in the cache, "
                             "$XDG_CACHE_HOME/dtb-audit)")
    add_jobs_argument(parser)
    parser.add_argument("--select", metavar="GLOB", action="append",
                        help="build only DTBs whose path matches, e.g. 'freescale/fsl-ls10*' "
                             "(repeatable)")


def corpus_build(args) -> int:
    started = time.monotonic()
    corpus = _build(args, out=args.out, select=args.select)
    kinds = {kind: sum(e.kind == kind for e in corpus.entries)
             for kind in ("board", "overlay", "composite")}
    sys.stderr.write(
        f"dtb-audit: {corpus.identity}: {kinds['board']} boards, {kinds['overlay']} overlays, "
        f"{kinds['composite']} composites: built {corpus.built}, failed {corpus.failed}, "
        f"reused {corpus.reused} in {time.monotonic() - started:.1f} s\n")
    print(corpus.root)
    return 1 if corpus.failed else 0


# -- dtb-audit sweep ---------------------------------------------------------------

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


def _corpus_of(args):
    """The corpus named by PATHs (several make one, names kept apart) or by
    a source option; the default corpus when neither is given."""
    if args.paths and any(_source(args).values()):
        raise UserError(None, "give PATHs or one source option, not both")
    if args.paths:
        from corpus.build import open_corpora
        return open_corpora(args.paths, partial=args.partial)
    return _build(args, partial=args.partial)


def sweep(args) -> int:
    # A sweep keeps hundreds of thousands of small objects to its end (the
    # manifest, the link records) and makes few cycles: the collector's
    # repeated passes over them cost more than they could free.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _sweep(args)
    finally:
        if collecting:
            gc.enable()


def _sweep(args) -> int:
    from auditor import report
    from auditor.output import Stderr, write_report

    corpus = _corpus_of(args)
    result = _sweep_corpus(corpus, args)
    result = _with_evidence(result, corpus, args)
    to_terminal = args.output is None and sys.stdout.isatty()
    fmt = args.format or ("table" if to_terminal else "jsonl")
    write_report(args.output, lambda f: report.write(result, fmt, f))
    # After the report: a reader of stderr that went away loses lines, not the report.
    err = Stderr()
    for d in result.diagnostics:
        err.line(report.diagnostic_line(d))
    if fmt != "table" or args.output:
        err.line(report.summary_line(result))
    if not result.socs and any(d.severity == "error" for d in result.diagnostics):
        err.line(f"dtb-audit: error: no DTB of {result.name} could be read")
        return 2
    return 1 if args.fail_on_affected and result.affected else 0


# -- dtb-audit explain ---------------------------------------------------------------

def add_explain_arguments(parser):
    parser.add_argument("board", metavar="BOARD",
                        help="a DTB file, or a board's DTB path or name in the corpus "
                             "(e.g. fsl-ls1028a-rdb)")
    add_source_arguments(parser)
    add_rule_arguments(parser)
    add_boot_logs_argument(parser)


def explain(args) -> int:
    from auditor.evidence import format_text
    from auditor.explain import judge_board, write_explanation
    from auditor.sweep import build_sweep

    corpus, flat, ev = judge_board(args.board, lambda: _build(args),
                                   any(_source(args).values()), args.judging, _warn_newer)
    write_explanation(ev, sys.stdout)
    result = _with_evidence(build_sweep(ev, corpus), corpus, args, (flat, ev))
    sys.stdout.write("\nevidence\n" + (format_text(result.evidence)
                                        or "  (no SMMU of an affected SoC)\n"))
    return 0


# -- dtb-audit check-parser --------------------------------------------------------------

def add_check_parser_arguments(parser):
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="a DTB folder or a kernel tree (default: the default corpus)")
    add_source_arguments(parser)
    parser.set_defaults(partial=False)


def check_parser(args) -> int:
    """The numba parser against pyfdt: node paths, names and raw bytes of
    every DTB (overlays included)."""
    from pathlib import Path

    from corpus.flat import flatten
    from corpus.pyfdt_check import check

    corpus = _corpus_of(args)
    root = Path(corpus.root)
    flat = flatten([root / e.dtb for e in corpus.entries if not e.error], root, cache=False)
    problems = check(flat, os.cpu_count() or 1)
    for line in problems:       # pyfdt's message may quote a forged node name
        sys.stderr.write(shown(line) + "\n")
    print(f"{shown(corpus.identity)}: {flat.n_dtb} DTBs, {flat.node_dtb.size} nodes, "
          f"{flat.prop_node.size} properties compared with pyfdt: {len(problems)} mismatches")
    return 1 if problems else 0


# -- dtb-audit diff / history ----------------------------------------------------------------

def _add_compare_arguments(parser):
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
    _add_compare_arguments(parser)


def sweep_of(arg, args):
    """A Sweep from an argument: a saved sweep (read, no numba), or a corpus
    (a kernel tree, a tarball, a Debian package, a DTB folder), swept now."""
    from auditor.model import load_sweep
    if os.path.isfile(arg) and _is_json(arg):
        return load_sweep(arg)
    from corpus.build import build_corpus, open_corpus
    if os.path.exists(arg):
        corpus = open_corpus(arg)
    elif DEBIAN_PACKAGE.match(arg):
        corpus = build_corpus(debian=arg, jobs=args.jobs)
    else:
        raise UserError(arg, "no such file or folder, and not a Debian "
                             "[suite/]linux-source-X package name")
    return _sweep_corpus(corpus, args)


def _is_json(path):
    if path.endswith(".json"):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(64).lstrip()[:1] in (b"{", b"[", b"n")
    except OSError:
        return False


def _sweeps(names, args):
    """(sweeps, the arguments they came from, whether one failed); each
    failure is one line on stderr naming the argument, and the rest go on."""
    sweeps, loaded, failed = [], [], False
    for arg in names:
        try:
            sweeps.append(sweep_of(arg, args))
            loaded.append(arg)
        except UserError as why:
            sys.stderr.write(why.line(arg) + "\n")
            failed = True
    return sweeps, loaded, failed


def _write_text_or_json(args, document, text):
    """A Diff or History to args.output: its JSON form, or text(document)."""
    import json

    from auditor.output import write_report
    if args.format == "json":
        write_report(args.output,
                     lambda f: (json.dump(document.to_json(), f, indent=1), f.write("\n")))
    else:
        write_report(args.output, lambda f: f.write(text(document)))


def diff(args) -> int:
    from auditor.diff import diff_sweeps, format_diff, rule_mismatch
    sweeps, _, failed = _sweeps([args.old, args.new], args)
    if failed:
        return 2
    old, new = sweeps
    warning = rule_mismatch(old, new)
    if warning:
        sys.stderr.write(f"dtb-audit: warning: {warning}\n")
    d = diff_sweeps(old, new)
    _write_text_or_json(args, d, format_diff)
    return 1 if args.fail_on_new and d.regression else 0


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
    _add_compare_arguments(parser)


def history(args) -> int:
    """Exit 1 when a CORPUS could not be read (the others are shown), 2 when
    none could; 1 with --fail-on-new when a SoC is affected at the end and
    was not at the start."""
    if args.git:
        return _history_of_git(args)
    for option in ("all_commits", "scheduler", "plot", "mails"):
        if getattr(args, option):
            raise UserError(None, f"--{option.replace('_', '-')} needs --git REPO")
    if not args.corpora:
        raise UserError(None, "history: give saved sweeps or corpora, oldest first "
                              "(or --git REPO)")
    from auditor.diff import rule_mismatch
    from auditor.history.stitching import of_sweeps
    from auditor.history.text import format_history
    sweeps, loaded, failed = _sweeps(args.corpora, args)
    if not sweeps:
        return 2
    for a, b in zip(sweeps, sweeps[1:]):
        warning = rule_mismatch(a, b)
        if warning:
            sys.stderr.write(f"dtb-audit: warning: {warning}\n")
    names = [s.name for s in sweeps]
    if len(set(names)) < len(names):        # the same tree twice: tell them apart
        names = loaded
    h = of_sweeps(sweeps, names)
    _write_text_or_json(args, h, lambda h: format_history(h, changed_only=args.changed))
    if args.fail_on_new and h.new_since_first():
        return 1
    return 1 if failed else 0


def _history_of_git(args) -> int:
    """Revisions that did not build are one line each on stderr, and marked
    in the output."""
    from pathlib import Path

    from auditor.history.cluster import judge_git
    from auditor.history.plot import PLOT_SUFFIXES, write_plot
    from auditor.history.text import format_history

    if args.plot is not None and \
            Path(args.plot).suffix.lower().lstrip(".") not in PLOT_SUFFIXES:
        raise UserError(args.plot, "the plot is written as .svg or .png")
    try:
        run = judge_git(args.git, args.corpora, args.judging, all_commits=args.all_commits,
                        scheduler=args.scheduler, jobs=args.jobs)
        h = run.history
        _warn_newer([r.target_kernel for r in h.revisions if r.target_kernel])
        for r in h.revisions:
            if r.error:
                said = r.error if ": error: " in r.error else f"error: {r.error}"
                sys.stderr.write(f"{r.name[:12]}: {said}\n")
        if args.plot is not None:
            write_plot(h, args.plot)
        if args.mails is not None:
            from auditor.history.mail import write_mails
            write_mails(h, args.mails)
        # The robot's mails follow the text unless they were written apart.
        _write_text_or_json(args, h, lambda h: format_history(h, mails=args.mails is None))
    except OSError as why:
        raise UserError(why.filename or None, why.strerror or str(why)) from None
    return 1 if args.fail_on_new and h.new_since_first() else 0


# -- dtb-audit patch ------------------------------------------------------------------

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


def patch(args) -> int:
    from auditor import patch as patches
    from corpus.build import open_corpus

    if args.dtbs:
        raise UserError(None, "patch needs the kernel sources: give --kernel, --tarball or "
                              "--debian, not --dtbs")
    if args.sweep:
        from auditor.model import load_sweep
        result = load_sweep(args.sweep)
        kernel_dir = args.kernel or result.corpus.kernel_dir
        if not kernel_dir or not os.path.isdir(kernel_dir):
            raise UserError(args.sweep, "the sweep names no kernel tree that is "
                                        "here: give --kernel DIR")
        _sources_in_tree(args.sweep, result, kernel_dir)
        # Its corpus only when it is one (a manifest says what each board was
        # built from): a saved root such as "/" is not walked.
        from corpus.build import MANIFEST
        root = result.corpus.root
        corpus = open_corpus(root) if os.path.isfile(os.path.join(root, MANIFEST)) else None
    else:
        corpus = _build(args)
        result = _sweep_corpus(corpus, args)
        kernel_dir = os.fspath(corpus.kernel_dir)
    if args.boot_logs and corpus is None:
        raise UserError(args.sweep, "--boot-logs needs the sweep's corpus, which is not here")
    result = _with_evidence(result, corpus, args)
    dependencies = ({e.dtb: corpus.dependencies(e.dtb) for e in corpus.entries}
                    if corpus is not None else None)
    return patches.run(result, kernel_dir, args.output_directory, dependencies,
                       verify=args.verify, author=args.author, signoff=args.signoff,
                       fixes=_fixes(kernel_dir), jobs=args.jobs, recipients=args.recipients)


def _sources_in_tree(name, result, kernel_dir):
    """Every source file a saved sweep names is a file of the kernel tree,
    or the sweep is refused (one line naming it), before any is opened."""
    from auditor.patch.dts import OutsideTree, tree_file
    for s in result.socs:
        for p in s.providers:
            if p.source_file:
                try:
                    tree_file(kernel_dir, p.source_file)
                except OutsideTree as why:
                    raise UserError(name, shown(str(why))) from None


def _fixes(kernel_dir):
    """The commit that introduced a line, when the tree is a git checkout."""
    from corpus.git import introducing_commit, is_checkout
    if not is_checkout(kernel_dir):
        return None
    return lambda path, line: introducing_commit(kernel_dir, path, line)


# -- dtb-audit bootlog ------------------------------------------------------------------

def add_bootlog_arguments(parser):
    parser.add_argument("logs", nargs="+", metavar="LOG|DIR",
                        help="kernel boot logs (dmesg, serial captures, KernelCI logs; "
                             "gzip too), or folders of them")
    add_source_arguments(parser)
    parser.add_argument("--target-kernel", metavar="VERSION",    # read by _judging
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


def bootlog(args) -> int:
    """Exit 2 when no log could be used, 0 otherwise."""
    import json

    from auditor.bootlog import audit, board_index, format_table
    from auditor.output import Stderr, write_report
    from auditor.sweep import target_of

    corpus = _build(args, partial=args.partial)
    boards = board_index(corpus, target_of(corpus, args.judging))
    err = Stderr()
    problems = []

    def problem(line):
        problems.append(line)
        err.line(line)
    doc = audit(args.logs, boards, args.board, problem)
    to_terminal = args.output is None and sys.stdout.isatty()
    fmt = args.format or ("table" if to_terminal else "json")
    if fmt == "json":
        write_report(args.output, lambda f: (json.dump(doc, f, indent=1), f.write("\n")))
    else:
        write_report(args.output, lambda f: f.write(format_table(doc)))
    if not doc["logs"] and problems:
        err.line("dtb-audit: error: no boot log could be used")
        return 2
    return 0


# -- dtb-audit site ------------------------------------------------------------------

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


def site(args) -> int:
    from auditor.diff import rule_mismatch
    from auditor.model import load_history, load_sweep
    from auditor.site import build_site, check_source_url
    from auditor.site_bootlog import load_bootlog

    if args.source_url:
        check_source_url(args.source_url)
    started = time.monotonic()
    current = load_sweep(args.sweep)
    previous = load_sweep(args.previous) if args.previous else None
    history_doc = load_history(args.history) if args.history else None
    bootlog = load_bootlog(args.bootlog) if args.bootlog else None
    if previous is not None:
        warning = rule_mismatch(previous, current)
        if warning:
            sys.stderr.write(f"dtb-audit: warning: {warning}\n")
    pages = build_site(args.out_dir, current, previous, history_doc, bootlog, args.source_url)
    sys.stderr.write(f"dtb-audit: {args.out_dir}: index.html and {pages} SoC pages in "
                     f"{time.monotonic() - started:.1f} s\n")
    return 0


# -- the table ---------------------------------------------------------------

COMMANDS = [
    (("corpus", "build"), "build every arm64 DTB of a kernel (Linux 6.12 from Debian by default)",
     add_corpus_build_arguments, corpus_build),
    (("sweep",), "list every SoC whose devices VFIO refuses (IOMMU_CAP_CACHE_COHERENCY)",
     add_sweep_arguments, sweep),
    (("explain",), "every provider and link of one board, with the nodes that decided",
     add_explain_arguments, explain),
    (("check-parser",), "compare the numba DTB parser with pyfdt on every DTB of a corpus",
     add_check_parser_arguments, check_parser),
    (("diff",), "what became or stopped being affected between two sweeps or corpora",
     add_diff_arguments, diff),
    (("history",), "each SoC's verdict across kernel versions, or across the commits of a "
                   "git repository (--git)",
     add_history_arguments, history),
    (("patch",), "a git format-patch series adding dma-coherent to SMMUs the evidence accuses",
     add_patch_arguments, patch),
    (("bootlog",), "what kernel boot logs say of each SMMU's coherency register, against the DT",
     add_bootlog_arguments, bootlog),
    (("site",), "a static site of a saved sweep: the affected SoCs, what changed, one page a SoC",
     add_site_arguments, site),
]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="dtb-audit",
        description="Batch auditor of arm64 device trees for IOMMU_CAP_CACHE_COHERENCY "
                    "(why VFIO refuses devices behind an SMMU lacking dma-coherent).")
    groups = {(): top.add_subparsers(dest="command", metavar="COMMAND", required=True)}
    for words, help_text, add_arguments, run in COMMANDS:
        # Two-word commands (`corpus build`) share a parser for their first word.
        for depth in range(1, len(words)):
            prefix = words[:depth]
            if prefix not in groups:
                group = groups[prefix[:-1]].add_parser(prefix[-1], help=f"{prefix[-1]} commands")
                groups[prefix] = group.add_subparsers(dest=f"command{depth}", metavar="COMMAND",
                                                      required=True)
        sub = groups[words[:-1]].add_parser(words[-1], help=help_text, description=help_text)
        add_arguments(sub)
        sub.set_defaults(run=run)
    return top


def main(argv: list[str] | None = None) -> int:
    # A terminal or locale that is not UTF-8 (LC_ALL=C): what it cannot
    # encode of DTB text is written \xNN, as text that is not UTF-8 is.
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="backslashreplace")
    args = parser().parse_args(argv)
    try:
        if hasattr(args, "target_kernel"):
            args.judging = _judging(args)
        return args.run(args)
    except UserError as why:
        _last_words(why.line())
        return 2
    except KeyboardInterrupt:
        _last_words("dtb-audit: interrupted")
        return 130
    except BrokenPipeError:        # `dtb-audit sweep | head`: the reader has what it wanted
        from auditor.output import _quiet_stdout
        _quiet_stdout()
        return 0
    except MemoryError:
        _last_words("dtb-audit: error: out of memory")
        return 2
    except Exception as why:       # a bug: one line, and how to get the traceback
        if os.environ.get("DTB_AUDIT_DEBUG"):
            raise
        _last_words(f"dtb-audit: internal error: {type(why).__name__}: {why} "
                    f"(set DTB_AUDIT_DEBUG=1 for the traceback, and please report it)")
        return 70


def _last_words(line):
    from auditor.output import Stderr
    Stderr().line(line)


if __name__ == "__main__":
    sys.exit(main())
