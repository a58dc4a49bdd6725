"""The candidate patch series: `dma-coherent;` for SMMU nodes that lack it.

SPEC section 4: an SMMU that is not coherent while the masters behind it
are (`rescued-by-device`), or while the host bridge or fsl-mc node above its
broken masters is (`broken-bridge-coherent`), most likely lacks
`dma-coherent`.  For each `.dts(i)` that writes such a node this module
makes one `git format-patch` style mbox patch that adds the property, plus
a cover letter; it checks that every patch applies (`git apply --check`)
and, with `verify_series`, that the patched tree no longer has the SoCs
affected.  It is a hypothesis to confirm on hardware, and every message
says so.

Where the property goes (one rule, so that patches look alike): right
after `#iommu-cells` when the node has it, which is where most arm64 SMMU
nodes have `dma-coherent` and where the upstream fixes for LS1028A and
LS1088A put it; otherwise after the node's last property other than
`status`.  The indentation is that of the property it follows.

The loop on a real tree (Debian's 6.1 here; `--kernel DIR` for your own):
    dtb-audit patch --debian linux-source-6.1 -o out/ --verify
writes out/0000-cover-letter.patch and one NNNN-*.patch per file, checks
each with `git apply --check`, then applies them to a copy of the tree,
rebuilds the boards of the SoCs they touch, sweeps again and prints, per
SoC, whether it is still affected (exit 1 when a patched SMMU is not fixed).

Conventions: no global state; line numbers in the API are 1-based, as in
the sweep's `source_line`; paths are relative to the kernel tree.
"""
import datetime
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
from dataclasses import dataclass, field



# Verdicts that say "the SMMU should be coherent" (SPEC section 4).
EVIDENCE = ("rescued-by-device", "broken-bridge-coherent")
DTS_ROOT = "arch/arm64/boot/dts"
INCLUDE_PREFIXES = "scripts/dtc/include-prefixes"
WIDTH = 72


class PatchError(Exception):
    """A source file that the series cannot be made from; str() names it."""


# --- DTS source structure -------------------------------------------------

@dataclass
class Statement:
    """One statement of a DTS source: a property, a directive or a node.

    `first`/`last` are 0-based lines of its first token and of its `;`
    (for a node, of the `};`); `open` is the line of a node's `{`."""
    kind: str                 # "property", "directive" or "node"
    name: str                 # property name, "/delete-property/", or node name/reference
    words: list               # the words of the statement before `{` or `;`
    first: int
    last: int
    open: int = -1
    labels: list = field(default_factory=list)
    body: list = field(default_factory=list)

    def __repr__(self):
        return f"<{self.kind} {self.name!r} {self.first + 1}-{self.last + 1}>"


# cpp directives (a line-initial `#` that is not a property such as `#iommu-cells`).
_DIRECTIVE = re.compile(
    r"#\s*(include|define|undef|if|ifdef|ifndef|elif|else|endif|error|warning|pragma|line)\b")


_TOKEN = re.compile(r"""
    (?P<nl>\n) | [ \t\r\f\v]+ | /\*.*?\*/ | //[^\n]*
  | (?P<punct>[{};])
  | (?P<word>"(?:\\.|[^"\\\n])*"? | &\{[^}]*\}? | (?:[^\s{};"/]|/(?![/*]))+ | /)
""", re.S | re.X)


def _tokens(text):
    """(kind, text, line) tokens: '{', '}', ';' and words, line 0-based.

    Comments, strings (as one word), `&{/path}` references (one word) and
    cpp lines are handled; nothing else of the syntax matters here."""
    i, n, line, line_start = 0, len(text), 0, True
    while i < n:
        m = _TOKEN.match(text, i)
        if m is None:                   # an unterminated comment: the rest
            return
        tok = m.group()
        if m.group("nl"):
            line, line_start = line + 1, True
        elif m.group("punct"):
            line_start = False
            yield tok, tok, line
        elif m.group("word") is not None:
            if line_start and tok.startswith("#") and _DIRECTIVE.match(text, i):
                while True:             # to the end of the line, with continuations
                    j = text.find("\n", i)
                    if j < 0:
                        return
                    if text[i:j].rstrip("\r").endswith("\\"):
                        i, line = j + 1, line + 1
                        continue
                    break
                i = j
                continue
            line_start = False
            yield "word", tok, line
        line += tok.count("\n") if not m.group("nl") else 0
        i = m.end()


def parse_dts(text, name="<dts>"):
    """The top-level statements of a DTS source (nodes with their bodies).

    Raises PatchError naming `name` and the line when braces do not match."""
    tokens = list(_tokens(text))
    pos = 0

    def block(depth):
        nonlocal pos
        out, words, first = [], [], None
        while pos < len(tokens):
            kind, tok, line = tokens[pos]
            pos += 1
            if kind == "word":
                if first is None:
                    first = line
                words.append(tok)
            elif kind == ";":
                if words:
                    out.append(_statement(words, first, line))
                words, first = [], None
            elif kind == "{":
                labels, rest = _split_labels(words)
                node = Statement("node", rest[-1] if rest else "", words,
                                 line if first is None else first, line, open=line,
                                 labels=labels)
                node.body = block(depth + 1)
                node.last = tokens[pos - 1][2]
                if pos < len(tokens) and tokens[pos][0] == ";":
                    node.last = tokens[pos][2]
                    pos += 1
                out.append(node)
                words, first = [], None
            else:                           # "}"
                if depth == 0:
                    raise PatchError(f"{name}:{line + 1}: unmatched '}}'")
                return out
        if depth:
            raise PatchError(f"{name}: unterminated node at end of file")
        return out

    return block(0)


def _split_labels(words):
    """(labels, other words) of a node header such as `smmu: iommu@5000000`."""
    labels, rest = [], []
    for w in words:
        parts = w.split(":") if not w.startswith(("&", '"')) else [w]
        for k, part in enumerate(parts):
            if k < len(parts) - 1:
                if part:
                    labels.append(part)
            elif part:
                rest.append(part)
    return labels, rest


def _statement(words, first, last):
    head = words[0]
    if len(head) > 1 and head.startswith("/") and head.endswith("/"):
        return Statement("directive", head, words, first, last)
    labels, rest = _split_labels(words)
    name = rest[0].split("=", 1)[0] if rest else ""
    return Statement("property", name, words, first, last, labels=labels)


def node_at(statements, line):
    """The node whose header spans 1-based `line` (innermost first), or None."""
    line -= 1
    for s in statements:
        if s.kind != "node":
            continue
        if s.first <= line <= s.open:
            return s
        if s.open < line <= s.last:
            return node_at(s.body, line + 1)
    return None


def insertion_point(node):
    """(0-based line before which `dma-coherent;` goes, its indentation line).

    After `#iommu-cells`, else after the last property other than `status`
    (see the module docstring); with no property, first in the node."""
    props = [s for s in node.body if s.kind == "property"]
    anchor = next((s for s in props if s.name == "#iommu-cells"), None)
    if anchor is None:
        others = [s for s in props if s.name != "status"]
        anchor = others[-1] if others else None
    if anchor is None:
        return node.open + 1, None
    return anchor.last + 1, anchor.first


def add_dma_coherent(text, line, name="<dts>"):
    """`text` with `dma-coherent;` added to the node opened at 1-based `line`.

    Raises PatchError when no node opens there, when the node already has
    `dma-coherent` or says `dma-noncoherent`, or when it is written on one
    line (no place for a property line)."""
    node = node_at(parse_dts(text, name), line)
    if node is None:
        raise PatchError(f"{name}:{line}: no node opens here")
    where = f"{name}:{node.first + 1}"
    names = {s.name for s in node.body if s.kind == "property"}
    if "dma-coherent" in names:
        raise PatchError(f"{where}: node {node.name} already has dma-coherent")
    if "dma-noncoherent" in names:
        raise PatchError(f"{where}: node {node.name} says dma-noncoherent")
    at, indent_line = insertion_point(node)
    lines = _lines(text)
    if at > node.last or (indent_line is None and node.open == node.last):
        raise PatchError(f"{where}: node {node.name} is written on one line")
    if indent_line is None:
        indent = _indent(lines[node.open]) + "\t"
    else:
        indent = _indent(lines[indent_line])
    eol = "\r\n" if lines[node.open].endswith("\r\n") else "\n"
    if at and not lines[at - 1].endswith("\n"):
        lines[at - 1] += eol
    lines.insert(at, f"{indent}dma-coherent;{eol}")
    return "".join(lines)


def _lines(text):
    """Lines with their ends; only "\n" ends a line (str.splitlines also
    splits at form feeds and the like, which would shift line numbers)."""
    lines = text.split("\n")
    last = lines.pop()
    return [line + "\n" for line in lines] + ([last] if last else [])


def _indent(line):
    return line[:len(line) - len(line.lstrip(" \t"))]


# --- who removes coherency: includes and /delete-property/ ----------------

_INCLUDE = re.compile(r'^\s*(?:#\s*include\s*([<"])([^">]+)[">]|/include/\s*"([^"]+)")', re.M)


def _includes(kernel_dir, rel, cache):
    """Files that `rel` includes directly (cpp and dtc includes), relative
    to kernel_dir, as kbuild searches them: the including file's folder
    (for "..." and /include/), then scripts/dtc/include-prefixes."""
    if rel in cache:
        return cache[rel]
    cache[rel] = []
    try:
        with open(os.path.join(kernel_dir, rel), encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return cache[rel]
    here = os.path.dirname(rel)
    top = os.path.realpath(kernel_dir)
    for m in _INCLUDE.finditer(text):
        target = m.group(2) or m.group(3)
        dirs = [INCLUDE_PREFIXES] if m.group(1) == "<" else [here, INCLUDE_PREFIXES]
        for d in dirs:
            p = os.path.join(kernel_dir, d, target)
            if os.path.isfile(p):
                cache[rel].append(os.path.relpath(os.path.realpath(p), top))
                break
    return cache[rel]


def _closure(kernel_dir, rel, cache):
    seen, todo = set(), [rel]
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo.extend(_includes(kernel_dir, f, cache))
    return seen


def coherency_removals(kernel_dir, source_file, path, labels, cache=None):
    """Where board sources do `/delete-property/ dma-coherent` on a node.

    The node is the one at DTB `path` with source `labels`, written in
    `source_file`.  Searched: every file included by an arm64 .dts/.dtso
    that includes `source_file` (so a label of the same name on another
    SoC's node does not count).  Returns [(file, 1-based line)].

    `cache`: a dict kept between calls on the same tree (the include graph)."""
    cache = {} if cache is None else cache
    if "chains" not in cache:
        includes, cache["chains"] = {}, []
        for folder, _, files in os.walk(os.path.join(kernel_dir, DTS_ROOT)):
            for f in files:
                if f.endswith((".dts", ".dtso")):
                    rel = os.path.relpath(os.path.join(folder, f), kernel_dir)
                    cache["chains"].append(_closure(kernel_dir, rel, includes))
    scan = set()
    for chain in cache["chains"]:
        if source_file in chain:
            scan |= chain
    found = []
    for rel in sorted(scan):
        with open(os.path.join(kernel_dir, rel), encoding="utf-8", errors="replace") as f:
            text = f.read()
        if "dma-coherent" not in text or "/delete-property/" not in text:
            continue
        try:
            statements = parse_dts(text, rel)
        except PatchError:
            continue                    # not ours to judge; dtc reports it
        for line in _removals(statements, path, set(labels)):
            found.append((rel, line))
    return found


def _removals(statements, path, labels, base=None):
    """1-based lines of `/delete-property/ dma-coherent` in the node at
    `path` (or labelled with one of `labels`) among `statements`."""
    for s in statements:
        if s.kind == "directive" and s.name == "/delete-property/" \
                and s.words[1:2] == ["dma-coherent"] and base == path:
            yield s.first + 1
        if s.kind != "node":
            continue
        if base is None:                # top level: "/", "&label", "&{/path}"
            if s.name == "/":
                here = "/"
            elif s.name.startswith("&{"):
                here = s.name[2:-1]
            elif s.name.startswith("&"):
                here = path if s.name[1:] in labels else "&" + s.name[1:]
            else:
                continue
        else:
            here = base.rstrip("/") + "/" + s.name
        if labels.intersection(s.labels):
            here = path
        yield from _removals(s.body, path, labels, here)


# --- candidates: which SMMU nodes the evidence names ----------------------

@dataclass
class Candidate:
    """One SMMU node written in a source file, with the links that accuse it."""
    source_file: str
    source_line: int
    path: str
    label: str | None
    compatible: list
    driver: str
    socs: set = field(default_factory=set)
    links: list = field(default_factory=list)     # sweep link records (EVIDENCE verdicts)
    against: list = field(default_factory=list)   # links to it from non-coherent masters

    @property
    def boards(self):
        return sorted({link["dtb"] for link in self.links})

    @property
    def where(self):
        return f"{self.source_file}:{self.source_line}"


@dataclass
class Skip:
    """A node the evidence names but the series leaves alone, and why."""
    path: str
    socs: list
    where: str | None
    reason: str


def candidates(doc):
    """(candidates, skips) from a sweep document (auditor.sweep schema).

    A provider is a candidate when it is not coherent in a DTB where one of
    its links is `rescued-by-device` or `broken-bridge-coherent`; the same
    node written once in a .dtsi is one candidate for every SoC and board."""
    providers = {}
    for soc in doc.get("socs", []):
        for p in soc.get("providers", []):
            providers[(soc["soc"], p["path"])] = p
    found, skips = {}, {}
    for link in doc.get("links", []):
        if link.get("verdict") not in EVIDENCE or link.get("provider_coherent"):
            continue
        p = providers.get((link["soc"], link["provider_path"]), {})
        source_file, line = p.get("source_file"), p.get("source_line")
        if not source_file or not line:
            skip = skips.setdefault(link["provider_path"], Skip(
                link["provider_path"], [], None,
                "no source position (the corpus was not built from a kernel tree)"))
            if link["soc"] not in skip.socs:
                skip.socs.append(link["soc"])
            continue
        c = found.get((source_file, line))
        if c is None:
            c = found[(source_file, line)] = Candidate(
                source_file, line, link["provider_path"], link.get("provider_label"),
                list(link.get("provider_compatible") or []), link.get("driver") or "")
        c.socs.add(link["soc"])
        c.links.append(link)
    # Robin Murphy's other half (SPEC section 4): a coherent SMMU in front
    # of non-coherent masters is unusual, so the message names them too.
    by_node = {(link["soc"], link["provider_path"]): c for c in found.values() for link in c.links}
    for link in doc.get("links", []):
        c = by_node.get((link["soc"], link["provider_path"]))
        if c is not None and link.get("verdict") == "broken" and not link.get("provider_coherent") \
                and link.get("master_dma_attr") == "non-coherent":
            c.against.append(link)
    ordered = sorted(found.values(), key=lambda c: (c.source_file, c.source_line))
    return ordered, list(skips.values())


# --- the series ------------------------------------------------------------

@dataclass
class Patch:
    number: int
    subject: str
    source_file: str
    candidates: list
    text: str            # the whole mbox message
    filename: str


@dataclass
class Series:
    patches: list
    skips: list
    cover: str           # cover letter text
    base_commit: str | None
    files: list = field(default_factory=list)    # written paths, cover letter first


def make_series(doc, kernel_dir, author=None, date=None, signoff=False):
    """The Series for a sweep document of a corpus built from `kernel_dir`.

    One patch per source file that writes accused SMMU nodes; skipped:
    nodes that a board file strips of `dma-coherent`, nodes that already
    have it or say `dma-noncoherent`, nodes without a source position."""
    kernel_dir = os.fspath(kernel_dir)
    found, skips = candidates(doc)
    author = author or _author(kernel_dir)
    date = date or _date()
    by_file, includes = {}, {}
    for c in found:
        labels = [c.label] if c.label else []
        try:
            text = _read(kernel_dir, c.source_file)
            node = node_at(parse_dts(text, c.source_file), c.source_line)
        except (OSError, PatchError) as why:
            skips.append(Skip(c.path, sorted(c.socs), c.where, str(why)))
            continue
        if node is None:
            skips.append(Skip(c.path, sorted(c.socs), c.where, f"{c.where}: no node opens here"))
            continue
        labels += node.labels
        c.label = c.label or (node.labels[0] if node.labels else None)
        removed = coherency_removals(kernel_dir, c.source_file, c.path, labels, includes)
        if removed:
            skips.append(Skip(c.path, sorted(c.socs), c.where,
                              "board files remove its dma-coherent on purpose: " +
                              ", ".join(f"{f}:{n}" for f, n in removed)))
            continue
        by_file.setdefault(c.source_file, []).append(c)

    made = []
    for source_file, group in sorted(by_file.items()):
        old = _read(kernel_dir, source_file)
        new, kept = old, []
        for c in sorted(group, key=lambda c: -c.source_line):   # bottom up: lines stay valid
            try:
                new = add_dma_coherent(new, c.source_line, source_file)
                kept.append(c)
            except PatchError as why:
                skips.append(Skip(c.path, sorted(c.socs), c.where, str(why)))
        if kept:
            made.append((source_file, old, new, sorted(kept, key=lambda c: c.source_line)))

    total = len(made)
    patches = []
    for i, (source_file, old, new, kept) in enumerate(made, 1):
        subject = _subject(source_file, kept)
        diff = _diff(kernel_dir, source_file, old, new)
        body = _body(kept, doc)
        if signoff:
            body += f"\nSigned-off-by: {author}\n"
        text = _message(author, date, f"[PATCH {i}/{total}] {subject}", body,
                        _diffstat([(source_file, 1 * len(kept))]) + "\n" + diff)
        patches.append(Patch(i, subject, source_file, kept, text,
                             f"{i:04d}-{_slug(subject)}.patch"))
    base = _base_commit(kernel_dir)
    cover = _cover(patches, skips, doc, author, date, base)
    return Series(patches, skips, cover, base)


def write_series(series, out_dir):
    """Write the cover letter and patches into out_dir; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    series.files = []
    for name, text in [("0000-cover-letter.patch", series.cover)] + \
            [(p.filename, p.text) for p in series.patches]:
        path = os.path.join(out_dir, name)
        with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
            f.write(text)
        series.files.append(path)
    return series.files


def check_series(kernel_dir, paths):
    """[(patch path, git's message)] for every patch `git apply --check` refuses."""
    failed = []
    for path in paths:
        proc = _git_apply(kernel_dir, ["--check", os.path.abspath(path)])
        if proc.returncode:
            failed.append((path, proc.stderr.strip() or f"git apply exited {proc.returncode}"))
    return failed


def _git_apply(tree, args):
    # The ceiling keeps git from taking an unrelated repository above the
    # tree as the one to apply in (it would resolve paths against that).
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=os.path.dirname(os.path.abspath(tree)))
    return subprocess.run(["git", "apply", *args], cwd=tree, env=env,
                          capture_output=True, text=True)


def _read(kernel_dir, rel):
    with open(os.path.join(kernel_dir, rel), encoding="utf-8", errors="surrogateescape",
              newline="") as f:
        return f.read()


def _git(kernel_dir, *args):
    proc = subprocess.run(["git", "-C", kernel_dir, *args], capture_output=True, text=True)
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


def _version():
    try:
        from importlib.metadata import version
        return f"dtb-audit {version('dtb-audit')}"
    except Exception:           # not installed (run from a checkout)
        return "dtb-audit"


def _vendor(source_file):
    parts = source_file.split("/")
    root = DTS_ROOT.split("/")
    if parts[:len(root)] == root and len(parts) > len(root) + 1:
        return parts[len(root)]
    return parts[-2] if len(parts) > 1 else "dts"


def _soc_name(soc):
    return soc.split(",", 1)[-1]


def _subject(source_file, kept):
    socs = sorted({_soc_name(s) for c in kept for s in c.socs})
    soc = "/".join(socs) if len(socs) <= 3 else os.path.splitext(os.path.basename(source_file))[0]
    what = "SMMU" if len(kept) == 1 else "SMMUs"
    return f"arm64: dts: {_vendor(source_file)}: {soc}: mark {what} as DMA coherent"


def _slug(subject):
    # As git format-patch names files: runs of other characters become one
    # '-', and the name is cut so that the file name stays within 64.
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", subject).strip("-.")
    return slug[:52].rstrip("-.")


def _blob(text):
    data = text.encode("utf-8", "surrogateescape")
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _diff(kernel_dir, rel, old, new):
    """`git diff` of one file, with the index line, that `git apply` takes."""
    import difflib
    mode = "100755" if os.access(os.path.join(kernel_dir, rel), os.X_OK) else "100644"
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


def _message(author, date, subject, body, rest):
    return (f"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
            f"From: {author}\nDate: {date}\nSubject: {subject}\n\n"
            f"{body}---\n{rest}-- \n{_version()}\n\n")


def _wrap(text, indent=""):
    """A paragraph filled to WIDTH; a list item ("  - ") hangs under its text."""
    return textwrap.fill(text, WIDTH, initial_indent=indent,
                         subsequent_indent=" " * len(indent),
                         break_long_words=False, break_on_hyphens=False) + "\n"


def _kind_rank(kind):
    # SPEC section 4: PCI and fsl-mc devices are what people pass through.
    kind = (kind or "").lower()
    return 0 if "pci" in kind else 1 if "mc" in kind else 2


# What the driver then answers for IOMMU_CAP_CACHE_COHERENCY (SPEC section 1).
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


def _body(kept, doc):
    """The commit message body: what is wrong, the evidence, the caveat."""
    rule = doc.get("rule", "walk-or-device")

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
            out += _listing(rescued, lambda m: f"{m['master_path']} ({m['master_kind']})")
        if bridged:
            out.append(_wrap(f"Masters behind{behind} that VFIO refuses while the bus "
                             f"above them is dma-coherent (broken-bridge-coherent):"))
            out += _listing(bridged, _bridged)
        against = _masters(c, "broken", c.against)
        if against:
            out.append(_wrap(f"But these masters behind{behind} are not DMA coherent "
                             f"themselves, and a coherent SMMU in front of non-coherent "
                             f"masters is unusual: check them too:"))
            out += _listing(against, lambda m: f"{m['master_path']} ({m['master_kind']})", most=6)
    boards = sorted({b for c in kept for b in c.boards})
    out.append(_wrap(f"Boards ({len(boards)}): " + ", ".join(
        os.path.splitext(os.path.basename(b))[0] for b in boards) + "."))
    out.append("\n")
    identity = (doc.get("corpus") or {}).get("identity") or "this tree"
    out.append(_wrap(f"Found by dtb-audit (rule {rule}) over {identity}."))
    out.append("\n")
    out.append(_wrap(CONFIRM.format(this="this patch")))
    return "".join(out)


def _bridged(link):
    kind, bridge = link["master_kind"], link.get("bridge_path") or "its bus"
    if kind == "pci-discovered":
        return f"PCI devices discovered behind {bridge} (no DT node)"
    if kind == "fsl-mc":
        return f"fsl-mc objects of {bridge} (DPRC, DPNI, ...)"
    return f"{link['master_path']} ({kind}) below {bridge}"


def _masters(c, verdict, links=None):
    """One link record per master path with that verdict, PCI/fsl-mc first."""
    seen = {}
    for link in c.links if links is None else links:
        if link["verdict"] == verdict:
            seen.setdefault(link["master_path"], link)
    return sorted(seen.values(), key=lambda m: (_kind_rank(m.get("master_kind")), m["master_path"]))


def _listing(masters, show, most=12):
    lines = [_wrap(show(m), "  - ") for m in masters[:most]]
    if len(masters) > most:
        lines.append(f"  - and {len(masters) - most} more\n")
    lines.append("\n")
    return lines


def _cover(patches, skips, doc, author, date, base):
    total = len(patches)
    identity = (doc.get("corpus") or {}).get("identity") or "the tree"
    body = [_wrap(
        f"dtb-audit (rule {doc.get('rule', 'walk-or-device')}) finds SMMU nodes in "
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
            f"Subject: [PATCH 0/{total}] arm64: dts: mark SMMUs as DMA coherent\n\n"
            f"{text}-- \n{_version()}\n\n")


# --- the check loop: apply, rebuild, sweep again ---------------------------

@dataclass
class Verification:
    """What sweeping the patched tree again showed, per SoC the series touches.

    socs: soc -> {"before": affected before, "after": affected after (None
    when the SoC was not rebuilt), "patched": [{"path", "coherent",
    "affected"}] for its patched SMMUs, "others": [paths of SMMUs that were
    not patched and still have affected links]}.  A SoC may stay affected
    through an SMMU the series leaves alone (a GPU SMMU whose masters are
    not coherent either); the series did its part when every patched SMMU
    is coherent and has no affected link left."""
    socs: dict
    not_applied: list        # [(patch path, git's message)]
    failed_builds: list      # [(dtb, first error line)]

    @property
    def ok(self):
        return not self.not_applied and not self.failed_builds and all(
            s["after"] is not None and all(p["coherent"] and not p["affected"]
                                           for p in s["patched"])
            for s in self.socs.values())


def verify_series(series, doc, kernel_dir, work=None, jobs=None):
    """Apply `series` (written with write_series) to a copy of the DT parts
    of `kernel_dir`, rebuild the boards of the SoCs it touches, sweep them
    under the same rule, and say what is still affected.

    `work`: a folder for the copy and the DTBs (a temporary one by default)."""
    from auditor.sweep import sweep
    from corpus.build import build_corpus

    if series.patches and not series.files:
        raise ValueError("verify_series: write the series first (write_series)")
    touched = sorted({soc for p in series.patches for c in p.candidates for soc in c.socs})
    before = {s["soc"]: s for s in doc.get("socs", [])}
    boards = sorted({b for soc in touched for b in before.get(soc, {}).get("boards", [])})
    with tempfile.TemporaryDirectory(prefix="dtb-audit-verify-") as scratch:
        work = work or scratch
        tree = os.path.join(work, "tree")
        _copy_dt_tree(os.fspath(kernel_dir), tree)
        not_applied = []
        for path in series.files[1:]:
            proc = _git_apply(tree, [os.path.abspath(path)])
            if proc.returncode:
                not_applied.append((path, proc.stderr.strip()))
        corpus = build_corpus(kernel=tree, out=os.path.join(work, "dtbs"), jobs=jobs,
                              select=[_glob_escape(b) for b in boards])
        after = sweep(corpus, rule=doc.get("rule", "walk-or-device"),
                      legacy_dt_bindings=doc.get("legacy_dt_bindings", True))
    now = {s["soc"]: s for s in after["socs"]}
    patched = {(soc, c.path) for p in series.patches for c in p.candidates for soc in c.socs}
    result = {}
    for soc in touched:
        s = now.get(soc)
        providers = s["providers"] if s else []
        result[soc] = {
            "before": bool(before.get(soc, {}).get("affected")),
            "after": s["affected"] if s is not None else None,
            "patched": [{"path": p["path"], "coherent": p["coherent"], "affected": p["affected"]}
                        for p in providers if (soc, p["path"]) in patched],
            "others": [p["path"] for p in providers
                       if (soc, p["path"]) not in patched and p["affected"]],
        }
    failed = [(e.dtb, e.error) for e in corpus.entries if e.error]
    return Verification(result, not_applied, failed)


def format_verification(v):
    """The check loop's outcome for people, one line per SoC."""
    out = []
    for path, message in v.not_applied:
        out.append(f"{path}: error: does not apply: {message.splitlines()[0] if message else ''}\n")
    for dtb, message in v.failed_builds:
        out.append(f"{dtb}: error: {message}\n")
    for soc, s in v.socs.items():
        state = "not rebuilt" if s["after"] is None else \
            "still affected" if s["after"] else "no longer affected"
        bad = [p["path"] for p in s["patched"] if not p["coherent"] or p["affected"]]
        line = f"{soc}: {'affected' if s['before'] else 'unaffected'} -> {state}"
        if bad:
            line += f"; patched SMMU not fixed: {', '.join(bad)}"
        if s["others"]:
            line += f"; through SMMUs the series leaves alone: {', '.join(s['others'])}"
        out.append(line + "\n")
    return "".join(out)


def _glob_escape(name):
    return re.sub(r"([*?[])", r"[\1]", name)


def _copy_dt_tree(src, dst):
    """Copy what a DT build reads of a kernel tree (the files a tarball
    extraction keeps, corpus.sources._wanted), symlinks as symlinks."""
    from corpus.sources import _wanted

    def may_hold(rel):
        parts = rel.split("/")
        return _wanted(rel + "/x") or (parts[0] in ("arch", "include", "scripts")
                                       and len(parts) <= 3)

    for folder, dirs, files in os.walk(src):
        rel_folder = os.path.relpath(folder, src)
        rel_folder = "" if rel_folder == "." else rel_folder + "/"
        keep = []
        for name in dirs:
            rel = rel_folder + name
            if os.path.islink(os.path.join(folder, name)):
                files.append(name)          # a symlinked folder is copied as the link
            elif may_hold(rel):
                keep.append(name)
        dirs[:] = keep
        for name in files:
            rel = rel_folder + name
            if not _wanted(rel):
                continue
            target = os.path.join(dst, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            source = os.path.join(folder, name)
            if os.path.islink(source):
                os.symlink(os.readlink(source), target)
            else:
                shutil.copy2(source, target)


# --- command line -----------------------------------------------------------

def add_patch_arguments(parser):
    from auditor.cli import add_rule_arguments, add_source_arguments
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
    add_rule_arguments(parser)
    parser.add_argument("-j", "--jobs", type=int, metavar="N",
                        help="compilers run at once (default: all cores)")


def run_patch(args):
    """Exit 0 with the series written, 1 when a patch does not apply or
    --verify finds a patched SMMU not fixed, 2 for an input error."""
    import json
    import sys

    from corpus.errors import CorpusError

    if args.dtbs:
        raise CorpusError("patch needs the kernel sources: give --kernel, --tarball or "
                          "--debian, not --dtbs")
    if args.sweep:
        try:
            with open(args.sweep, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError) as why:
            raise CorpusError(f"{args.sweep}: error: not a readable sweep: {why}") from None
        kernel_dir = args.kernel or (doc.get("corpus") or {}).get("kernel_dir")
        if not kernel_dir or not os.path.isdir(kernel_dir):
            raise CorpusError(f"{args.sweep}: error: the sweep names no kernel tree that is "
                              f"here: give --kernel DIR")
    else:
        from auditor.sweep import sweep
        from corpus.build import build_corpus
        corpus = build_corpus(kernel=args.kernel, tarball=args.tarball, debian=args.debian,
                              jobs=args.jobs)
        doc = sweep(corpus, args.rule, not args.no_legacy_dt_bindings)
        kernel_dir = os.fspath(corpus.kernel_dir)

    series = make_series(doc, kernel_dir, author=args.author, signoff=args.signoff)
    for skip in series.skips:
        sys.stderr.write(f"{skip.where or skip.path}: warning: {skip.path} "
                         f"({', '.join(skip.socs)}) not patched: {skip.reason}\n")
    if not series.patches:
        sys.stderr.write("dtb-audit: no SMMU node to patch\n")
        return 0
    _remove_old_series(args.output_directory)
    files = write_series(series, args.output_directory)
    for path in files:
        print(path)
    status = 0
    for path, message in check_series(kernel_dir, files[1:]):
        sys.stderr.write(f"{path}: error: git apply --check: {message}\n")
        status = 1
    if args.verify and status == 0:
        result = verify_series(series, doc, kernel_dir, jobs=args.jobs)
        sys.stderr.write(format_verification(result))
        status = 0 if result.ok else 1
    return status


def _remove_old_series(out_dir):
    # A nightly run into the same folder must not leave last night's extra
    # patches for `git am DIR/*.patch` to pick up.
    if os.path.isdir(out_dir):
        for name in os.listdir(out_dir):
            if re.match(r"^\d{4}-.*\.patch$", name):
                os.remove(os.path.join(out_dir, name))
