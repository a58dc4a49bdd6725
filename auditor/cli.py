"""The `dtb-audit` command line: the arguments read (their options are
defined in auditor/arguments.py), every message and exit status.

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
import sys
import time

from corpus.errors import UserError

from auditor.arguments import (add_bootlog_arguments, add_check_parser_arguments,
                               add_corpus_build_arguments, add_diff_arguments,
                               add_explain_arguments, add_history_arguments,
                               add_patch_arguments, add_site_arguments, add_sweep_arguments)
from auditor.text import shown

# -- what several commands read ---------------------------------------------------

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


def _with_evidence(result, corpus, args, board=None):
    """The Sweep with its evidence classified again with the boot logs of
    --boot-logs, when given (a log that cannot be used is one line on
    stderr); board: explain's (flat, Evaluation)."""
    if not args.boot_logs:
        return result                  # the DT's and upstream's word (auditor.sweep)
    from auditor.bootlog import with_boot_logs
    from auditor.output import Stderr
    return with_boot_logs(result, corpus, args.boot_logs, args.judging, Stderr().line, board)


def _source(args) -> dict:
    return {"kernel": args.kernel, "tarball": args.tarball, "debian": args.debian,
            "dtbs": args.dtbs}


def _build(args, **more):
    from auditor.corpora import build
    return build(_source(args), getattr(args, "jobs", None), **more)


def _corpus_of(args):
    from auditor.corpora import corpus_of
    return corpus_of(args.paths, _source(args), args.partial, getattr(args, "jobs", None))


def _swept(corpus, args):
    from auditor.corpora import swept
    return swept(corpus, args.judging, _warn_newer)


# -- dtb-audit corpus build ---------------------------------------------------

def corpus_build_command(args) -> int:
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

def sweep_command(args) -> int:
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
    result = _with_evidence(_swept(corpus, args), corpus, args)
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

def explain_command(args) -> int:
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

def check_parser_command(args) -> int:
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

def _sweeps(names, args):
    """(sweeps, the arguments they came from, whether one failed); each
    failure is one line on stderr naming the argument, and the rest go on."""
    from auditor.corpora import sweep_of
    sweeps, loaded, failed = [], [], False
    for arg in names:
        try:
            sweeps.append(sweep_of(arg, args.judging, args.jobs, _warn_newer))
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


def diff_command(args) -> int:
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


def history_command(args) -> int:
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
            elif r.not_built:
                more = f" (and {len(r.not_built) - 1} more)" if len(r.not_built) > 1 else ""
                sys.stderr.write(f"{r.name[:12]}: {r.not_built[0]}{more}\n")
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

def patch_command(args) -> int:
    from auditor import patch as patches
    from auditor.patch.inputs import fixes, saved_sweep_and_tree

    if args.dtbs:
        raise UserError(None, "patch needs the kernel sources: give --kernel, --tarball or "
                              "--debian, not --dtbs")
    if args.sweep:
        result, kernel_dir, corpus = saved_sweep_and_tree(args.sweep, args.kernel)
    else:
        corpus = _build(args)
        result = _swept(corpus, args)
        kernel_dir = os.fspath(corpus.kernel_dir)
    if args.boot_logs and corpus is None:
        raise UserError(args.sweep, "--boot-logs needs the sweep's corpus, which is not here")
    result = _with_evidence(result, corpus, args)
    dependencies = ({e.dtb: corpus.dependencies(e.dtb) for e in corpus.entries}
                    if corpus is not None else None)
    return patches.run(result, kernel_dir, args.output_directory, dependencies,
                       verify=args.verify, author=args.author, signoff=args.signoff,
                       fixes=fixes(kernel_dir), jobs=args.jobs, recipients=args.recipients)


# -- dtb-audit bootlog ------------------------------------------------------------------

def bootlog_command(args) -> int:
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

def site_command(args) -> int:
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
     add_corpus_build_arguments, corpus_build_command),
    (("sweep",), "list every SoC whose devices VFIO refuses (IOMMU_CAP_CACHE_COHERENCY)",
     add_sweep_arguments, sweep_command),
    (("explain",), "every provider and link of one board, with the nodes that decided",
     add_explain_arguments, explain_command),
    (("check-parser",), "compare the numba DTB parser with pyfdt on every DTB of a corpus",
     add_check_parser_arguments, check_parser_command),
    (("diff",), "what became or stopped being affected between two sweeps or corpora",
     add_diff_arguments, diff_command),
    (("history",), "each SoC's verdict across kernel versions, or across the commits of a "
                   "git repository (--git)",
     add_history_arguments, history_command),
    (("patch",), "a git format-patch series adding dma-coherent to SMMUs the evidence accuses",
     add_patch_arguments, patch_command),
    (("bootlog",), "what kernel boot logs say of each SMMU's coherency register, against the DT",
     add_bootlog_arguments, bootlog_command),
    (("site",), "a static site of a saved sweep: the affected SoCs, what changed, one page a SoC",
     add_site_arguments, site_command),
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
