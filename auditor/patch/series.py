"""The patch series: one `git format-patch` style mbox patch per source
file that writes accused SMMU nodes, adding `dma-coherent;`, and a cover
letter.  It is a hypothesis to confirm on hardware, and every message
says so.

Where the property goes (one rule, so that patches look alike): right
after `#iommu-cells` when the node has it, which is where most arm64 SMMU
nodes have `dma-coherent` and where the upstream fixes for LS1028A and
LS1088A put it; otherwise after the node's last property other than
`status` (auditor/patch/dts.py).

Before a node is patched it is checked against the tree the patch applies
to: the node written at the recorded line must be the SMMU node (its name
with unit address and the nodes around it), else the patch is refused.

Each patch is addressed (To:, Cc:) as the tree's get_maintainer.pl says for
it (auditor/patch/recipients.py), the cover letter to all of them.
"""
import datetime
import hashlib
import os
import re
import subprocess
import textwrap
from dataclasses import dataclass, field

from corpus.errors import UserError
from kernels.codes import PASSTHROUGH_KINDS

from ..report import tool_version
from ..evidence import classify
from ..text import shown
from .candidates import Skip, candidates, soc_names
from .dts import (DtsError, OutsideTree, _lines, add_dma_coherent, node_chain, parse_dts,
                  read_source, removals_of, tree_file, written_as)
from .recipients import Recipients, recipients as find_recipients, union

DTS_ROOT = "arch/arm64/boot/dts"
WIDTH = 72


class PatchError(UserError):
    """A series that cannot be written where asked."""


@dataclass
class Patch:
    number: int
    subject: str
    source_file: str
    candidates: list
    text: str            # the whole mbox message
    filename: str
    recipients: Recipients = Recipients()


@dataclass
class Series:
    patches: list
    skips: list
    cover: str           # cover letter text
    base_commit: str | None
    files: list = field(default_factory=list)    # written paths, cover letter first
    warnings: list = field(default_factory=list)  # "file: warning: ..." lines


def make_series(sweep, kernel_dir, dependencies=None, author=None, date=None, signoff=False,
                fixes=None, recipients=True):
    """The Series for a Sweep of a corpus built from `kernel_dir`.

    dependencies: {dtb: files it was built from, relative to kernel_dir}
    (the corpus manifest's, corpus.build.Corpus.dependencies): the files
    searched for a board that strips the node of `dma-coherent`.
    fixes: callable(file, line) -> (sha12, subject) or None, the commit that
    introduced the node, for a `Fixes:` tag (a git checkout's history).
    recipients: address the mails as the tree's get_maintainer.pl says
    (False: no To: or Cc:).

    One patch per source file that writes accused SMMU nodes; skipped:
    nodes that a board file strips of `dma-coherent`, nodes that already
    have it or say `dma-noncoherent`, nodes without a source position, and
    nodes the tree no longer writes at the recorded line."""
    kernel_dir = os.fspath(kernel_dir)
    # Upstream's settled cases always; the boot logs' word when they were read.
    evidence = {(e.soc, e.path): e for e in (getattr(sweep, "evidence", ()) or classify(sweep))}
    found, skips = candidates(sweep, {key for key, e in evidence.items()
                                      if e.kind == "hardware-says-coherent"})
    found, refused = _with_evidence(found, evidence, any(e.logs for e in evidence.values()))
    skips += refused
    author = author or _author(kernel_dir)
    date = date or _date()
    dependencies = dependencies or {}
    by_file = {}
    for c in found:
        labels = [c.label] if c.label else []
        try:
            chain = node_chain(parse_dts(read_source(kernel_dir, c.source_file), c.source_file),
                               c.source_line)
        except OutsideTree as why:
            skips.append(Skip(c.path, soc_names(c.socs), c.where, str(why)))
            continue
        except OSError as why:
            skips.append(Skip(c.path, soc_names(c.socs), c.where,
                              f"{c.source_file}: cannot read: {why.strerror or why}"))
            continue
        except DtsError as why:
            skips.append(Skip(c.path, soc_names(c.socs), c.where, str(why)))
            continue
        if not chain:
            skips.append(Skip(c.path, soc_names(c.socs), c.where, f"{c.where}: no node opens here"))
            continue
        node = chain[-1]
        if not written_as(chain, c.path, labels + node.labels):
            names = [s.name for s in chain]
            written = "/" + "/".join(names[1:]) if names[0] == "/" else "/".join(names)
            skips.append(Skip(c.path, soc_names(c.socs), c.where,
                              f"{c.where}: the node written here ({written}) is not {c.path}: "
                              f"the tree changed since the sweep; sweep it again"))
            continue
        labels += node.labels
        c.label = c.label or (node.labels[0] if node.labels else None)
        # Every file that went into a board which includes the node's file.
        files = set()
        for deps in dependencies.values():
            if c.source_file in deps:
                files.update(deps)
        removed = removals_of(kernel_dir, files, c.path, labels)
        if removed:
            skips.append(Skip(c.path, soc_names(c.socs), c.where,
                              "board files remove its dma-coherent on purpose: " +
                              ", ".join(f"{f}:{n}" for f, n in removed)))
            continue
        by_file.setdefault(c.source_file, []).append(c)

    made = []
    for source_file, group in sorted(by_file.items()):
        old = read_source(kernel_dir, source_file)
        new, kept = old, []
        for c in sorted(group, key=lambda c: -c.source_line):   # bottom up: lines stay valid
            try:
                new = add_dma_coherent(new, c.source_line, source_file)
                kept.append(c)
            except DtsError as why:
                skips.append(Skip(c.path, soc_names(c.socs), c.where, str(why)))
        if kept:
            made.append((source_file, old, new, sorted(kept, key=lambda c: c.source_line)))

    total = len(made)
    drafts = []         # (number, subject, file, candidates, body, diffstat and diff)
    for i, (source_file, old, new, kept) in enumerate(made, 1):
        body = _body(kept, sweep)
        tags = _fixes_tags(kept, fixes)
        if tags or signoff:
            body += "\n" + tags + (f"Signed-off-by: {author}\n" if signoff else "")
        drafts.append((i, _subject(source_file, kept), source_file, kept, body,
                       _diffstat([(source_file, 1 * len(kept))]) + "\n" +
                       _diff(kernel_dir, source_file, old, new)))

    def mail(draft, to=Recipients()):
        i, subject, _, _, body, rest = draft
        return _message(author, date, f"[PATCH {i}/{total}] {subject}", body, rest, to)

    # get_maintainer.pl reads the mail as it will be sent, but for its To: and Cc:.
    found, warnings = [Recipients()] * total, []
    if recipients and drafts:
        found, warning = find_recipients(kernel_dir, [mail(d) for d in drafts])
        warnings += [warning] if warning else []
    patches = [Patch(d[0], d[1], d[2], d[3], mail(d, to), f"{d[0]:04d}-{_slug(d[1])}.patch", to)
               for d, to in zip(drafts, found)]
    base = _base_commit(kernel_dir)
    cover = _cover(patches, skips, sweep, author, date, base,
                   union([p.recipients for p in patches]))
    return Series(patches, skips, cover, base, warnings=warnings)


def _with_evidence(found, evidence, logs_read):
    """(the candidates the evidence lets through, skips of the others): never
    an SMMU upstream settled as not coherent on every board; with boot logs,
    none that the logs leave without evidence (their register said no)."""
    kept, skips = [], []
    for c in found:
        classes = [e for soc in sorted(c.socs, key=str)
                   for e in [evidence.get((soc, c.path))] if e is not None]
        refused = [e for e in classes if e.kind == "known-noncoherent"] or \
            [e for e in classes if logs_read and not e.patchable]
        if refused:
            skips.append(Skip(c.path, soc_names(c.socs), c.where,
                              f"{refused[0].kind}: {refused[0].reason}"))
        else:
            kept.append(c)
    return kept, skips


def _log_lines(c, sweep):
    """The boot logs behind a candidate: who said its register is coherent."""
    words = [w for e in getattr(sweep, "evidence", ()) if e.path == c.path and e.soc in c.socs
             for w in e.logs if w.coherent]
    return sorted({(", ".join(os.path.splitext(os.path.basename(b))[0] for b in w.boards),
                    w.kernel or "kernel ?", os.path.basename(w.log)) for w in words})


def _fixes_tags(kept, fixes):
    """`Fixes: <12-char sha> ("subject")` for the commits that introduced the nodes."""
    if fixes is None:
        return ""
    tags = []
    for c in kept:
        found = fixes(c.source_file, c.source_line)
        if found:
            tag = f'Fixes: {found[0][:12]} ("{found[1]}")\n'
            if tag not in tags:
                tags.append(tag)
    return "".join(tags)


def write_series(series, out_dir):
    """Write the cover letter and patches into out_dir; returns their paths."""
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as why:
        raise PatchError(out_dir, f"cannot make the folder: {why.strerror}") from None
    series.files = []
    for name, text in [("0000-cover-letter.patch", series.cover)] + \
            [(p.filename, p.text) for p in series.patches]:
        path = os.path.join(out_dir, name)
        try:
            with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
                f.write(text)
        except OSError as why:
            raise PatchError(path, f"cannot write: {why.strerror}") from None
        series.files.append(path)
    return series.files


def _git(kernel_dir, *args):
    proc = subprocess.run(["git", "-C", kernel_dir, *args], capture_output=True, text=True,
                          errors="backslashreplace")
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _base_commit(kernel_dir):
    """HEAD when kernel_dir is the top of a git checkout (not merely inside one)."""
    top = _git(kernel_dir, "rev-parse", "--show-toplevel")
    if top and os.path.realpath(top) == os.path.realpath(kernel_dir):
        return _git(kernel_dir, "rev-parse", "--verify", "HEAD") or None
    return None


def _author(kernel_dir):
    name, email = _git(kernel_dir, "config", "user.name"), _git(kernel_dir, "config", "user.email")
    return f"{name} <{email}>" if name and email else "dtb-audit <dtb-audit@invalid>"


def _date():
    # SOURCE_DATE_EPOCH makes a series reproducible byte for byte.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch \
        else datetime.datetime.now(datetime.timezone.utc).astimezone()
    # As git writes it (RFC 2822, English names whatever the locale).
    day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[when.weekday()]
    month = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
             "Dec")[when.month - 1]
    return f"{day}, {when.day} {month} {when.year} {when:%H:%M:%S %z}"


def _signature():
    """The mail signature: the tool and its version."""
    version = tool_version()
    return f"dtb-audit {version}" if version else "dtb-audit"


def _vendor(source_file):
    parts = source_file.split("/")
    root = DTS_ROOT.split("/")
    if parts[:len(root)] == root and len(parts) > len(root) + 1:
        return parts[len(root)]
    return parts[-2] if len(parts) > 1 else "dts"


def _soc_name(soc):
    return soc.split(",", 1)[-1]


def _subject(source_file, kept):
    socs = {c_soc for c in kept for c_soc in c.socs}
    # Up to three SoCs by name; more, or one without a name, by the file.
    names = sorted({_soc_name(s) for s in socs if s is not None})
    soc = "/".join(names) if None not in socs and len(names) <= 3 \
        else os.path.splitext(os.path.basename(source_file))[0]
    what = "SMMU" if len(kept) == 1 else "SMMUs"
    # DTB text in a mail header: a newline in it would forge a header line.
    return shown(f"arm64: dts: {_vendor(source_file)}: {soc}: mark {what} as DMA coherent")


def _slug(subject):
    # As git format-patch names files (format_sanitized_subject): runs of
    # characters other than letters, digits, '.' and '_' become one '-',
    # runs of '.' one '.', no '-' first and no '.' or '-' last; then the
    # name is cut so that the file name stays within 64 (git leaves a '-'
    # or '.' at the cut).
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", re.sub(r"\.+", ".", subject))
    return slug.lstrip("-").rstrip("-.")[:52]


def _blob(text):
    data = text.encode("utf-8", "surrogateescape")
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _diff(kernel_dir, rel, old, new):
    """`git diff` of one file, with the index line, that `git apply` takes."""
    import difflib
    mode = "100755" if os.access(tree_file(kernel_dir, rel), os.X_OK) else "100644"
    out = [f"diff --git a/{rel} b/{rel}\n",
           f"index {_blob(old)[:12]}..{_blob(new)[:12]} {mode}\n"]
    for line in difflib.unified_diff(_lines(old), _lines(new), f"a/{rel}", f"b/{rel}", n=3):
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return "".join(out)


def _diffstat(files):
    """git's summary of [(path, inserted lines)]."""
    width = max(len(f) for f, _ in files)
    lines = [f" {f.ljust(width)} | {n} {'+' * n}\n" for f, n in files]
    count, ins = len(files), sum(n for _, n in files)
    lines.append(f" {count} file{'s' if count > 1 else ''} changed, "
                 f"{ins} insertion{'s' if ins > 1 else ''}(+)\n")
    return "".join(lines)


def _message(author, date, subject, body, rest, to=Recipients()):
    prefix, _, words = subject.partition("] ")
    subject = f"{prefix}] " + _header_words(words, len(f"Subject: {prefix}] "))
    return (f"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
            f"From: {_mail_address(author)}\nDate: {date}\nSubject: {subject}\n"
            f"{_MIME if not (words + body).isascii() else ''}{to.headers()}\n"
            f"{body}---\n{rest}-- \n{_signature()}\n\n")


# What git format-patch adds when the message is not ASCII (git send-email
# would otherwise stop to ask which 8-bit encoding to declare).
_MIME = ("MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n"
         "Content-Transfer-Encoding: 8bit\n")


def _mail_address(author):
    """"Name <email>" as git format-patch writes its From: header: a name
    that is not ASCII as RFC 2047 words, one with RFC 822 specials quoted."""
    name, sep, address = author.rpartition(" <")
    if not sep:
        return author
    if not name.isascii():
        name = _rfc2047(name, len("From: "), address=True)
    elif re.search(r'[()<>\[\]:;@\\,."]', name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}"


def _header_words(text, start):
    """A Subject: text as git writes it: as is when ASCII, else RFC 2047 words."""
    return text if text.isascii() and "=?" not in text else _rfc2047(text, start)


def _rfc2047(text, start, address=False):
    """git's add_rfc2047(): =?UTF-8?q?...?= words, a line folded before it
    passes 76 characters (`start` of them already written), a character
    never split; spaces as =20, and in an address everything but letters,
    digits and !*+-/ encoded."""
    out, length = ["=?UTF-8?q?"], start + len("=?UTF-8?q?")
    for ch in text:
        raw = ch.encode("utf-8", "surrogateescape")
        special = len(raw) > 1 or not " " < ch <= "~" or ch in "=?_" or (
            address and not (ch.isalnum() or ch in "!*+-/"))
        piece = "".join(f"={b:02X}" for b in raw) if special else ch
        if length + len(piece) + 2 > 76:
            out.append("?=\n =?UTF-8?q?")
            length = len(" =?UTF-8?q?")
        out.append(piece)
        length += len(piece)
    out.append("?=")
    return "".join(out)


def _wrap(text, indent=""):
    """A paragraph filled to WIDTH; a list item ("  - ") hangs under its text.
    Every paragraph may carry DTB text (paths, labels, SoCs): shown() escapes
    its control characters, so none reaches a mail or a terminal raw."""
    return textwrap.fill(shown(text), WIDTH, initial_indent=indent,
                         subsequent_indent=" " * len(indent),
                         break_long_words=False, break_on_hyphens=False) + "\n"


# What the driver then answers for IOMMU_CAP_CACHE_COHERENCY (docs/rule.md).
_CONSEQUENCE = {
    "arm-smmu": "Since v6.2 (and 6.1.y) arm_smmu_capable() then reports "
                "IOMMU_CAP_CACHE_COHERENCY only for masters that are DMA coherent "
                "themselves, and at v6.1 for none, so VFIO and iommufd refuse the "
                "other devices.",
    "arm-smmu-v3": "Since v6.1 arm_smmu_capable() then reports "
                   "IOMMU_CAP_CACHE_COHERENCY for no master at all, so VFIO and "
                   "iommufd refuse every device.",
}

CONFIRM = (
    "The device tree overrides what the SMMU reports about its page-table "
    "walk, so this is a hypothesis until confirmed on hardware: read back "
    "IDR0.CTTW (coherent translation table walk) on every board and firmware "
    "concerned before sending {this}. Upstream added dma-coherent to "
    "the sdm845 apps SMMU in 2024 and reverted it in 2025 (CVE-2025-22012) "
    "because not every board's firmware agreed.")


def _body(kept, sweep):
    """The commit message body: what is wrong, the evidence, the caveat."""
    rule = sweep.rule

    def name(c):
        compat = c.compatible[0] + " " if c.compatible else ""
        return f"{compat}SMMU {c.path}" + (f" ({c.label})" if c.label else "")

    drivers = sorted({c.driver for c in kept if c.driver}) or ["its driver"]
    if len(kept) == 1:
        what = f"The {name(kept[0])} has no dma-coherent property, so " \
               f"of_dma_is_coherent() is false for it and {drivers[0]} takes its " \
               f"page-table walk to be non-coherent. "
    else:
        verb = "takes" if len(drivers) == 1 else "take"
        what = "The " + ", ".join(name(c) for c in kept[:-1]) + f" and the {name(kept[-1])} " \
               f"have no dma-coherent property, so of_dma_is_coherent() is false for " \
               f"them and {' and '.join(drivers)} {verb} their page-table walks to be " \
               f"non-coherent. "
    out = [_wrap(what + " ".join(_CONSEQUENCE.get(d, _CONSEQUENCE["arm-smmu"])
                                 for d in drivers)), "\n"]
    for c in kept:
        behind = f" {c.path}" if len(kept) > 1 else " it"
        rescued = _masters(c, "rescued-by-device")
        bridged = _masters(c, "broken-bridge-coherent")
        if rescued:
            out.append(_wrap(f"Masters behind{behind} are DMA coherent while the SMMU "
                             f"is not (rescued-by-device):"))
            out += _listing(rescued, lambda m: f"{m.master_path} ({m.master_kind})")
        if bridged:
            out.append(_wrap(f"Masters behind{behind} that VFIO refuses while the bus "
                             f"above them is dma-coherent (broken-bridge-coherent):"))
            out += _listing(bridged, _bridged)
        logs = _log_lines(c, sweep)
        if logs:
            register = ("IDR0.COHACC reports coherent access" if c.driver == "arm-smmu-v3"
                        else "IDR0.CTTW reports coherent table walks")
            out.append(_wrap(f"Its ID register says so: {register} in the boot logs of "
                             f"{len(logs)} boot{'s' if len(logs) != 1 else ''}"
                             f"{' of ' + c.path if len(kept) > 1 else ''}:"))
            out += _listing(logs, lambda w: f"{w[0]} ({w[1]}): {w[2]}")
        against = _masters(c, "broken", c.against)
        if against:
            out.append(_wrap(f"But these masters behind{behind} are not DMA coherent "
                             f"themselves, and a coherent SMMU in front of non-coherent "
                             f"masters is unusual: check them too:"))
            out += _listing(against, lambda m: f"{m.master_path} ({m.master_kind})", most=6)
    boards = sorted({b for c in kept for b in c.boards})
    out.append(_wrap(f"Boards ({len(boards)}): " + ", ".join(
        os.path.splitext(os.path.basename(b))[0] for b in boards) + "."))
    out.append("\n")
    identity = sweep.corpus.identity or "this tree"
    out.append(_wrap(f"Found by dtb-audit (rule {rule}, target {sweep.target_kernel}) "
                     f"over {identity}."))
    out.append("\n")
    out.append(_wrap(CONFIRM.format(this="this patch")))
    return "".join(out)


def _bridged(link):
    kind, bridge = link.master_kind, link.bridge_path or "its bus"
    if kind == "pci-discovered":
        return f"PCI devices discovered behind {bridge} (no DT node)"
    if kind == "fsl-mc":
        return f"fsl-mc objects of {bridge} (DPRC, DPNI, ...)"
    return f"{link.master_path} ({kind}) below {bridge}"


def _masters(c, verdict, links=None):
    """One link record per master path with that verdict, PCI/fsl-mc first."""
    seen = {}
    for link in c.links if links is None else links:
        if link.verdict == verdict:
            seen.setdefault(link.master_path, link)
    # What people pass through first (docs/rule.md).
    return sorted(seen.values(), key=lambda m: (m.master_kind not in PASSTHROUGH_KINDS,
                                                m.master_path or ""))


def _listing(masters, show, most=12):
    lines = [_wrap(show(m), "  - ") for m in masters[:most]]
    if len(masters) > most:
        lines.append(f"  - and {len(masters) - most} more\n")
    lines.append("\n")
    return lines


def _cover(patches, skips, sweep, author, date, base, to=Recipients()):
    total = len(patches)
    identity = sweep.corpus.identity or "the tree"
    body = [_wrap(
        f"dtb-audit (rule {sweep.rule}, target {sweep.target_kernel}) finds SMMU nodes in "
        f"{identity} that lack dma-coherent while the masters behind them, or the "
        f"bridges above those masters, are DMA coherent. Since v6.1, arm-smmu and "
        f"arm-smmu-v3 take the SMMU's coherency from the device tree to answer "
        f"IOMMU_CAP_CACHE_COHERENCY, and VFIO and iommufd refuse devices without it. "
        f"Each patch adds dma-coherent to the SMMU nodes of one file."), "\n",
        _wrap(CONFIRM.format(this="these patches")), "\n"]
    if skips:
        body.append("Left alone:\n")
        for s in skips:
            body.append(_wrap(f"{s.path} ({', '.join(s.socs) or 'no SoC'}"
                              f"{', ' + s.where if s.where else ''}): {s.reason}", "  - "))
        body.append("\n")
    name = author.split(" <")[0]
    body.append(f"{name} ({total}):\n")
    body += [f"  {p.subject}\n" for p in patches]
    body.append("\n")
    if patches:
        body.append(_diffstat([(p.source_file, len(p.candidates)) for p in patches]))
    body.append("\n")
    if base:
        body.append(f"\nbase-commit: {base}\n")
    text = "".join(body)
    return (f"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
            f"From: {author}\nDate: {date}\n"
            f"Subject: [PATCH 0/{total}] arm64: dts: mark SMMUs as DMA coherent\n"
            f"{_MIME if not text.isascii() else ''}{to.headers()}\n"
            f"{text}-- \n{_signature()}\n\n")


def remove_old_series(out_dir):
    """Remove NNNN-*.patch files of an earlier series from out_dir: a nightly
    run into the same folder must not leave last night's extra patches for
    `git am DIR/*.patch` to pick up."""
    if os.path.isdir(out_dir):
        for name in os.listdir(out_dir):
            if re.match(r"^\d{4}-.*\.patch$", name):
                os.remove(os.path.join(out_dir, name))
