"""DTS source editing: the statements of a `.dts`/`.dtsi` file, the node
written at a line, and `dma-coherent;` added to it.

Only what the series needs of the syntax: nodes, properties, directives,
labels, comments, strings, `&{/path}` references and cpp lines.  Line
numbers in the API are 1-based (as the sweep's `source_line`); paths are
relative to the kernel tree.
"""
import os
import re
from dataclasses import dataclass, field

class DtsError(ValueError):
    """A DTS source the series cannot edit there; str() names the file and line."""


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


# Every character starts a token: any whitespace, a comment (an unterminated
# one runs to the end), a brace or `;`, or a word. A `&{/path}` reference is
# part of its word wherever it stands (`<&{/padctl/pads/pcie}>` in a cell).
_TOKEN = re.compile(r"""
    (?P<nl>\n) | [^\S\n]+ | /\*.*?(?:\*/|\Z) | //[^\n]*
  | (?P<punct>[{};])
  | (?P<word>"(?:\\.|[^"\\\n])*"? | (?:&\{[^}]*\}? | [^\s{};"/&] | & | /(?![/*]))+ | /)
""", re.S | re.X)


def _tokens(text):
    """(kind, text, line) tokens: '{', '}', ';' and words, line 0-based.

    Comments, strings (as one word), `&{/path}` references (one word) and
    cpp lines are handled; nothing else of the syntax matters here."""
    i, n, line, line_start = 0, len(text), 0, True
    while i < n:
        m = _TOKEN.match(text, i)
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

    Raises DtsError naming `name` and the line when braces do not match."""
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
                    raise DtsError(f"{name}:{line + 1}: unmatched '}}'")
                return out
        if depth:
            raise DtsError(f"{name}: unterminated node at end of file")
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

    Raises DtsError when no node opens there, when the node already has
    `dma-coherent` or says `dma-noncoherent`, or when it is written on one
    line (no place for a property line)."""
    node = node_at(parse_dts(text, name), line)
    if node is None:
        raise DtsError(f"{name}:{line}: no node opens here")
    where = f"{name}:{node.first + 1}"
    names = {s.name for s in node.body if s.kind == "property"}
    if "dma-coherent" in names:
        raise DtsError(f"{where}: node {node.name} already has dma-coherent")
    if "dma-noncoherent" in names:
        raise DtsError(f"{where}: node {node.name} says dma-noncoherent")
    at, indent_line = insertion_point(node)
    lines = _lines(text)
    if at > node.last or (indent_line is None and node.open == node.last):
        raise DtsError(f"{where}: node {node.name} is written on one line")
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


def node_chain(statements, line):
    """The nodes from the top level down to the one whose header spans
    1-based `line` ([] when none opens there)."""
    line -= 1
    for s in statements:
        if s.kind != "node":
            continue
        if s.first <= line <= s.open:
            return [s]
        if s.open < line <= s.last:
            inner = node_chain(s.body, line + 1)
            return [s] + inner if inner else []
    return []


def written_as(chain, path, labels=()):
    """Whether the nodes of `chain` (node_chain) can be the DT node at
    `path`: the node's own name (with unit address) is the path's last
    component and the names of the enclosing nodes match the path above it,
    up to a `&label` or `&{/path}` reference at the top."""
    if not chain:
        return False
    names = [n for n in path.strip("/").split("/") if n]
    top, *inner = [s.name for s in chain]
    if top == "/":
        return inner == names
    if top.startswith("&{"):
        base = [n for n in top[2:].rstrip("}").strip("/").split("/") if n]
        return base + inner == names
    if top.startswith("&"):
        if not inner:
            return top[1:] in labels
        return len(inner) <= len(names) and names[len(names) - len(inner):] == inner
    own = [top] + inner
    return len(own) <= len(names) and names[len(names) - len(own):] == own


def removals_of(kernel_dir, files, path, labels):
    """Where `files` (relative to kernel_dir) do `/delete-property/
    dma-coherent` on the node at DTB `path` (or labelled with one of
    `labels`): [(file, 1-based line)]."""
    found = []
    for rel in sorted(files):
        try:
            text = read_source(kernel_dir, rel)
        except OSError:
            continue
        if "dma-coherent" not in text or "/delete-property/" not in text:
            continue
        try:
            statements = parse_dts(text, rel)
        except DtsError:
            continue                    # not ours to judge; dtc reports it
        for line in _removals(statements, path, set(labels)):
            found.append((rel, line))
    return found


class OutsideTree(OSError):
    """A source path that is not a file of the kernel tree; str() says why."""

    def __str__(self):
        return self.strerror


def tree_file(kernel_dir, rel):
    """The path of `rel` (relative to the kernel tree) in the tree, never a
    file elsewhere: a path that is absolute, has a `..`, or reaches out of
    the tree through a link raises OutsideTree, before anything is opened.
    Paths come from saved sweeps and manifests, which anyone can edit."""
    if not rel or os.path.isabs(rel) or ".." in rel.split("/") or "\0" in rel:
        raise OutsideTree(None, f"{rel}: not a path inside the kernel tree", rel)
    top = os.path.realpath(kernel_dir)
    real = os.path.realpath(os.path.join(top, rel))
    if os.path.commonpath([top, real]) != top:
        raise OutsideTree(None, f"{rel}: leads out of the kernel tree {kernel_dir} "
                                f"(to {real})", rel)
    return real


def read_source(kernel_dir, rel):
    """The text of the tree's file `rel` (see tree_file())."""
    with open(tree_file(kernel_dir, rel), encoding="utf-8", errors="surrogateescape",
              newline="") as f:
        return f.read()


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
