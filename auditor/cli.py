"""The `dtb-audit` command line.

One function per subcommand, all listed in COMMANDS: (words, help,
add_arguments, run). `run(args)` returns the exit status: 0 clean, 1 when
something did not go through (a file that did not build, findings when
asked), 2 for a usage or input error. Human text goes to stderr, what a
script would read to stdout.
"""

from __future__ import annotations

import argparse
import sys
import time

from auditor.diff import add_diff_arguments, add_history_arguments, run_diff, run_history
from auditor.patch import add_patch_arguments, run_patch
from corpus.errors import CorpusError


# -- dtb-audit corpus build ---------------------------------------------------

def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the DTBs come from: one of these, Linux 6.12 from Debian when none."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--kernel", metavar="DIR", help="a kernel source tree")
    group.add_argument("--tarball", metavar="FILE", help="a kernel tarball (.tar.xz, .tar.gz)")
    group.add_argument("--debian", metavar="PACKAGE",
                       help="Debian's kernel source package, e.g. linux-source-6.12 "
                            "(fetched with apt-get download; the default)")
    group.add_argument("--dtbs", metavar="DIR", help="a folder of built .dtb files, used as it is")


def add_corpus_build_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser)
    parser.add_argument("--out", metavar="DIR",
                        help="build into this folder (default: a folder in the cache, "
                             "$XDG_CACHE_HOME/dtb-audit)")
    parser.add_argument("-j", "--jobs", type=int, metavar="N",
                        help="compilers run at once (default: all cores)")
    parser.add_argument("--select", metavar="GLOB", action="append",
                        help="build only DTBs whose path matches, e.g. 'freescale/fsl-ls10*' "
                             "(repeatable)")


def corpus_build(args: argparse.Namespace) -> int:
    from corpus.build import build_corpus

    started = time.monotonic()
    corpus = build_corpus(kernel=args.kernel, tarball=args.tarball, debian=args.debian,
                          dtbs=args.dtbs, out=args.out, jobs=args.jobs, select=args.select)
    kinds = {kind: sum(e.kind == kind for e in corpus.entries)
             for kind in ("board", "overlay", "composite")}
    sys.stderr.write(
        f"dtb-audit: {corpus.identity}: {kinds['board']} boards, {kinds['overlay']} overlays, "
        f"{kinds['composite']} composites: built {corpus.built}, failed {corpus.failed}, "
        f"reused {corpus.reused} in {time.monotonic() - started:.1f} s\n")
    print(corpus.root)
    return 1 if corpus.failed else 0


# -- dtb-audit sweep / explain -------------------------------------------------

def open_corpora(args: argparse.Namespace) -> list:
    """The corpora named by PATHs (a DTB, a folder of DTBs, a kernel tree) or
    by a source option; the default corpus when neither is given."""
    from corpus.build import build_corpus, open_corpus

    if args.paths and any((args.kernel, args.tarball, args.debian, args.dtbs)):
        raise CorpusError("give PATHs or one source option, not both")
    if args.paths:
        return [open_corpus(p) for p in args.paths]
    return [build_corpus(kernel=args.kernel, tarball=args.tarball, debian=args.debian,
                         dtbs=args.dtbs)]


def add_rule_arguments(parser: argparse.ArgumentParser) -> None:
    from kernels.rule import RULES

    parser.add_argument("--rule", choices=RULES, default=RULES[0],
                        help="the kernel era's IOMMU_CAP_CACHE_COHERENCY rule (default: %(default)s)")
    parser.add_argument("--no-legacy-dt-bindings", action="store_true",
                        help="model a kernel built without CONFIG_ARM_SMMU_LEGACY_DT_BINDINGS")


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    from auditor.report import FORMATS

    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="a DTB, a folder of DTBs or a kernel tree (default: the default corpus)")
    add_source_arguments(parser)
    add_rule_arguments(parser)
    parser.add_argument("--format", choices=FORMATS,
                        help="output format (default: table on a terminal, jsonl otherwise)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report here")
    parser.add_argument("--fail-on-affected", action="store_true",
                        help="exit 1 when any SoC is affected")


def sweep(args: argparse.Namespace) -> int:
    from auditor import report
    from auditor.sweep import sweep as run_sweep

    docs = [run_sweep(c, args.rule, not args.no_legacy_dt_bindings) for c in open_corpora(args)]
    doc = docs[0]
    for more in docs[1:]:          # several PATHs: one report
        doc["links"] += more["links"]
        doc["socs"] += more["socs"]
        doc["diagnostics"] += more["diagnostics"]
    report.diagnostics(doc, sys.stderr)
    out = open(args.output, "w") if args.output else sys.stdout
    fmt = args.format or ("table" if out.isatty() else "jsonl")
    with out if args.output else _nullcontext():
        report.write(doc, fmt, out)
    if fmt != "table":
        sys.stderr.write(report.summary_line(doc) + "\n")
    affected = any(s["affected"] for s in doc["socs"])
    return 1 if args.fail_on_affected and affected else 0


def _nullcontext():
    import contextlib
    return contextlib.nullcontext()


def add_explain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("board", metavar="BOARD",
                        help="a DTB file, or a board's DTB path or name in the corpus "
                             "(e.g. fsl-ls1028a-rdb)")
    add_source_arguments(parser)
    add_rule_arguments(parser)


def explain(args: argparse.Namespace) -> int:
    from pathlib import Path

    from auditor.explain import explain as write_explanation
    from auditor.sweep import evaluate
    from corpus.flat import flatten

    if Path(args.board).is_file():
        dtb = Path(args.board)
        flat = flatten([dtb], dtb.parent, cache=False)
    else:
        args.paths = []
        (corpus,) = open_corpora(args)
        wanted = args.board.removesuffix(".dtb")
        matches = [e for e in corpus.boards
                   if e.dtb.removesuffix(".dtb") == wanted or Path(e.dtb).stem == wanted]
        if not matches:
            raise CorpusError(f"{args.board}: no such board in {corpus.root}")
        flat = flatten([Path(corpus.root) / matches[0].dtb], corpus.root)
    if flat.dtb_error[0]:
        raise CorpusError(flat.error(0))
    write_explanation(evaluate(flat, args.rule, not args.no_legacy_dt_bindings), 0, sys.stdout)
    return 0


# -- dtb-audit check-parser ----------------------------------------------------

def add_check_parser_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="a DTB folder or a kernel tree (default: the default corpus)")
    add_source_arguments(parser)


def check_parser(args: argparse.Namespace) -> int:
    """The numba parser against pyfdt, node paths, names and raw bytes of
    every DTB (overlays included)."""
    import os
    from pathlib import Path

    from corpus.flat import flatten
    from corpus.pyfdt_check import check

    status = 0
    for corpus in open_corpora(args):
        root = Path(corpus.root)
        flat = flatten([root / e.dtb for e in corpus.entries if not e.error], root, cache=False)
        problems = check(flat, os.cpu_count() or 1)
        for line in problems:
            sys.stderr.write(line + "\n")
        print(f"{corpus.identity}: {flat.n_dtb} DTBs, {flat.node_dtb.size} nodes, "
              f"{flat.prop_node.size} properties compared with pyfdt: {len(problems)} mismatches")
        status = status or (1 if problems else 0)
    return status


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
     add_diff_arguments, run_diff),
    (("history",), "each SoC's verdict and SMMU coherency across kernel versions",
     add_history_arguments, run_history),
    (("patch",), "a git format-patch series adding dma-coherent to SMMUs the evidence accuses",
     add_patch_arguments, run_patch),
]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="dtb-audit",
        description="Batch auditor of arm64 device trees for IOMMU_CAP_CACHE_COHERENCY "
                    "(why VFIO refuses devices behind an SMMU lacking dma-coherent).")
    groups: dict[tuple[str, ...], argparse._SubParsersAction] = {(): top.add_subparsers(
        dest="command", metavar="COMMAND", required=True)}
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
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except CorpusError as why:
        # Errors about a file already read `file: error: ...`; others name the tool.
        message = str(why)
        sys.stderr.write((message if ": error: " in message else f"dtb-audit: error: {message}")
                         + "\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("dtb-audit: interrupted\n")
        return 130
    except BrokenPipeError:        # `dtb-audit sweep | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
