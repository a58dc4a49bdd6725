"""What `make ARCH=arm64 dtbs` builds, read from a kernel tree's own Makefiles.

kbuild decides everything that matters here in Makefiles: which DTBs a
folder declares (`dtb-$(CONFIG_X) += a.dtb b.dtbo`), which are composites
(`name-dtbs := base.dtb overlay.dtbo`), and the dtc flags (the tree's
defaults in scripts/Makefile.dtbs or, before v6.11, scripts/Makefile.lib;
a folder's `DTC_FLAGS`; a target's `DTC_FLAGS_<stem>`; `-@` on bases).
Trees differ in all of these, so nothing is hard-coded: a small reader of
the make subset these files use evaluates them as an allyesconfig build
with CONFIG_OF_ALL_DTBS=y and an empty KBUILD_EXTRA_WARN would.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from corpus.console import diagnostic
from corpus.errors import UserError

DTS_DIR = "arch/arm64/boot/dts"

_ASSIGN = re.compile(r"^(?:override\s+|export\s+)?([^:#=\s]+)\s*(::=|:=|\+=|\?=|=)\s*(.*)$")
_CONDITIONAL = re.compile(r"^(ifeq|ifneq|ifdef|ifndef)\b\s*(.*)$")


class MakefileError(UserError):
    """A Makefile this reader cannot follow (unbalanced conditionals)."""


def _logical_lines(text: str):
    """Lines with backslash continuations joined and comments removed."""
    pending = ""
    for raw in text.splitlines():
        if pending == "" and raw.startswith("\t"):
            yield raw  # a recipe line: kept whole so the reader can skip it
            continue
        line = raw
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        # A '#' starts a comment unless escaped; DT Makefiles never escape it.
        hash_at = line.find("#")
        if hash_at >= 0:
            line = line[:hash_at]
        yield line.rstrip()
    if pending:
        yield pending.rstrip()


class Makefile:
    """The variables of one Makefile after reading it top to bottom.

    `$(CONFIG_*)` expands to `y` (every option on); other undefined
    variables are empty, which is what the kernel's DT Makefiles see with
    KBUILD_EXTRA_WARN, CHECK_DTBS and friends unset.
    """

    def __init__(self, text: str, variables: dict[str, str] | None = None):
        # name -> (value, recursive): recursive (`=`) values expand on use.
        self._vars: dict[str, tuple[str, bool]] = {
            name: (value, False) for name, value in (variables or {}).items()}
        self._read(text)

    @classmethod
    def read(cls, path: Path, variables: dict[str, str] | None = None) -> "Makefile":
        return cls(Path(path).read_text(errors="replace"), variables)

    def names(self) -> list[str]:
        return list(self._vars)

    def value(self, name: str) -> str:
        """The expanded value of a variable ('' when undefined)."""
        return self._lookup(name, depth=0)

    def words(self, name: str) -> list[str]:
        return self.value(name).split()

    # -- reading --------------------------------------------------------

    def _read(self, text: str) -> None:
        # Each level: [taking this branch now, some branch already taken, parent taking].
        stack: list[list[bool]] = []
        in_define = False
        for line in _logical_lines(text):
            if line.startswith("\t"):
                continue  # recipe
            stripped = line.strip()
            if in_define:
                in_define = stripped != "endef"
                continue
            if stripped.startswith("define ") or stripped == "define":
                in_define = True
                continue
            active = all(level[0] for level in stack)
            word = stripped.split(None, 1)[0] if stripped else ""
            if word in ("ifeq", "ifneq", "ifdef", "ifndef"):
                parent = active
                truth = parent and self._condition(stripped)
                stack.append([truth, truth, parent])
                continue
            if word == "else":
                if not stack:
                    raise MakefileError(None, "else without if")
                level = stack[-1]
                rest = stripped[4:].strip()
                if rest:  # `else ifeq (...)`
                    truth = level[2] and not level[1] and self._condition(rest)
                else:
                    truth = level[2] and not level[1]
                level[0] = truth
                level[1] = level[1] or truth
                continue
            if word == "endif":
                if not stack:
                    raise MakefileError(None, "endif without if")
                stack.pop()
                continue
            if not active:
                continue
            match = _ASSIGN.match(stripped)
            if match:
                self._assign(self.expand(match.group(1)).strip(), match.group(2), match.group(3))
        if stack:
            raise MakefileError(None, "missing endif")

    def _assign(self, name: str, op: str, value: str) -> None:
        if not name:
            return
        if op in (":=", "::="):
            self._vars[name] = (self.expand(value), False)
        elif op == "=":
            self._vars[name] = (value, True)
        elif op == "?=":
            if name not in self._vars:
                self._vars[name] = (value, True)
        else:  # +=
            old, recursive = self._vars.get(name, ("", False))
            new = value if recursive else self.expand(value)
            self._vars[name] = ((old + " " + new).strip(), recursive)

    def _condition(self, text: str) -> bool:
        match = _CONDITIONAL.match(text)
        if not match:
            raise MakefileError(None, f"cannot read conditional: {text}")
        kind, arg = match.groups()
        if kind in ("ifdef", "ifndef"):
            defined = self.value(self.expand(arg).strip()) != ""
            return defined if kind == "ifdef" else not defined
        arg = arg.strip()
        if arg.startswith("(") and arg.endswith(")"):
            left, right = _split_args(arg[1:-1], 2)
        else:  # ifeq "a" "b"
            quoted = re.findall(r"\"([^\"]*)\"|'([^']*)'", arg)
            left, right = [a or b for a, b in quoted] + ["", ""][len(quoted):]
        equal = self.expand(left).strip() == self.expand(right).strip()
        return equal if kind == "ifeq" else not equal

    # -- expanding ------------------------------------------------------

    def _lookup(self, name: str, depth: int) -> str:
        if name.startswith("CONFIG_") and name not in self._vars:
            return "y"
        value, recursive = self._vars.get(name, ("", False))
        return self.expand(value, depth + 1) if recursive else value

    def expand(self, text: str, depth: int = 0) -> str:
        if depth > 50:
            raise MakefileError(None, "variable expands itself")
        out = []
        i = 0
        while i < len(text):
            dollar = text.find("$", i)
            if dollar < 0 or dollar + 1 >= len(text):
                out.append(text[i:])
                break
            out.append(text[i:dollar])
            opener = text[dollar + 1]
            if opener in "({":
                closer = ")" if opener == "(" else "}"
                end = _matching(text, dollar + 1, opener, closer)
                out.append(self._reference(text[dollar + 2:end], depth))
                i = end + 1
            elif opener == "$":
                out.append("$")
                i = dollar + 2
            else:  # $x: one-letter variable, automatic ones are empty here
                out.append(self._lookup(opener, depth))
                i = dollar + 2
        return "".join(out)

    def _reference(self, inner: str, depth: int) -> str:
        head = re.match(r"([a-z-]+)\s", inner)
        if head and head.group(1) in _FUNCTIONS:
            args = _split_args(inner[head.end():], _FUNCTIONS[head.group(1)])
            return _call(head.group(1), [self.expand(a, depth + 1) for a in args])
        if head:
            return ""  # a function this reader does not know ($(call ...), $(shell ...))
        name = self.expand(inner, depth + 1)
        if ":" in name and "=" in name:  # substitution reference $(var:a=b)
            var, pattern = name.split(":", 1)
            frm, to = pattern.split("=", 1)
            words = self._lookup(var, depth).split()
            return " ".join(_patsubst(frm if "%" in frm else "%" + frm,
                                      to if "%" in to else "%" + to, w) for w in words)
        return self._lookup(name, depth)


# function name -> number of arguments (the last one takes the rest)
_FUNCTIONS = {"findstring": 2, "addprefix": 2, "addsuffix": 2, "strip": 1, "subst": 3,
              "patsubst": 3, "filter": 2, "filter-out": 2, "sort": 1, "firstword": 1,
              "if": 3, "or": 2, "and": 2, "basename": 1, "notdir": 1, "dir": 1}


def _call(name: str, args: list[str]) -> str:
    args = args + [""] * (3 - len(args))
    a, b, c = args[:3]
    if name == "findstring":
        return a if a in b else ""
    if name == "addprefix":
        return " ".join(a + w for w in b.split())
    if name == "addsuffix":
        return " ".join(w + a for w in b.split())
    if name == "strip":
        return " ".join(a.split())
    if name == "subst":
        return c.replace(a, b)
    if name == "patsubst":
        return " ".join(_patsubst(a.strip(), b.strip(), w) for w in c.split())
    if name in ("filter", "filter-out"):
        pats = a.split()
        keep = name == "filter"
        return " ".join(w for w in b.split()
                        if any(_patmatch(p, w) for p in pats) == keep)
    if name == "sort":
        return " ".join(sorted(set(a.split())))
    if name == "firstword":
        return (a.split() or [""])[0]
    if name == "if":
        return b if a.strip() else c
    if name == "or":
        return a if a.strip() else b
    if name == "and":
        return b if a.strip() and b.strip() else ""
    if name == "basename":
        return " ".join(os.path.splitext(w)[0] for w in a.split())
    if name == "notdir":
        return " ".join(os.path.basename(w) for w in a.split())
    if name == "dir":
        return " ".join((os.path.dirname(w) or ".") + "/" for w in a.split())
    return ""


def _patmatch(pattern: str, word: str) -> bool:
    if "%" not in pattern:
        return pattern == word
    pre, post = pattern.split("%", 1)
    return len(word) >= len(pre) + len(post) and word.startswith(pre) and word.endswith(post)


def _patsubst(frm: str, to: str, word: str) -> str:
    if not _patmatch(frm, word):
        return word
    if "%" not in frm:
        return to
    pre, post = frm.split("%", 1)
    stem = word[len(pre):len(word) - len(post)]
    return to.replace("%", stem, 1)


def _matching(text: str, start: int, opener: str, closer: str) -> int:
    depth = 0
    for i in range(start, len(text)):
        if text[i] == opener:
            depth += 1
        elif text[i] == closer:
            depth -= 1
            if depth == 0:
                return i
    raise MakefileError(None, f"unbalanced parenthesis in: {text}")


def _split_args(text: str, count: int) -> list[str]:
    """Split on top-level commas into at most `count` arguments."""
    args, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        elif ch == "," and depth == 0 and len(args) < count - 1:
            args.append(text[start:i])
            start = i + 1
    args.append(text[start:])
    return args


# -- the tree --------------------------------------------------------------

@dataclass
class Target:
    """One file `make dtbs` produces, relative to arch/arm64/boot/dts."""
    dtb: str                 # "freescale/fsl-ls1028a-rdb.dtb", ".dtbo" for overlays
    kind: str                # "board" | "overlay" | "composite"
    source: str | None       # the .dts/.dtso, relative to the kernel tree
    parts: list[str] = field(default_factory=list)   # composite: base, then overlays
    dtc_flags: list[str] = field(default_factory=list)


def kernel_release(tree: Path) -> tuple[str, str]:
    """("6.12.117", "-rc3") from the top Makefile's VERSION, PATCHLEVEL, SUBLEVEL, EXTRAVERSION."""
    path = Path(tree) / "Makefile"
    head = "\n".join(path.read_text(errors="replace").splitlines()[:12])
    mk = Makefile(head)
    if not mk.value("VERSION"):
        raise MakefileError(path, "no VERSION line: not a kernel tree")
    version = ".".join(v for v in (mk.value("VERSION"), mk.value("PATCHLEVEL"),
                                   mk.value("SUBLEVEL")) if v)
    return version, mk.value("EXTRAVERSION")


def kernel_version(tree: Path) -> str:
    """"6.12.0-test": the version as the tree names itself (EXTRAVERSION included)."""
    return "".join(kernel_release(tree))


_DTBS_MAKEFILES = ("scripts/Makefile.dtbs", "scripts/Makefile.lib")


def dtbs_makefile(tree: Path) -> Path:
    """The file holding the tree's DTC rules: Makefile.dtbs since v6.11, Makefile.lib before."""
    for name in _DTBS_MAKEFILES:
        path = Path(tree) / name
        if path.is_file() and "DTC_FLAGS" in path.read_text(errors="replace"):
            return path
    raise MakefileError(None, f"{tree}: no scripts/Makefile.dtbs or scripts/Makefile.lib "
                              f"with DTC_FLAGS")


def default_dtc_flags(tree: Path) -> list[str]:
    """The tree's own default DTC_FLAGS with KBUILD_EXTRA_WARN empty."""
    return Makefile.read(dtbs_makefile(tree)).words("DTC_FLAGS")


def all_bases_get_symbols(tree: Path) -> bool:
    """Whether every .dtb part of a composite gets `-@` (v6.12) or only the first (v6.1).

    Read from the tree's own `base-dtb-y :=` definition.
    """
    text = dtbs_makefile(tree).read_text(errors="replace")
    for line in _logical_lines(text):
        if line.startswith("base-dtb-y"):
            return "firstword" not in line
    return True


_PLUGIN = re.compile(rb"^\s*/plugin/\s*;", re.M)


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_plugin(path: Path) -> bool:
    return bool(_PLUGIN.search(path.read_bytes()))


def read_targets(tree: Path, read: list[str] | None = None, warn=diagnostic) -> list[Target]:
    """Every DTB, overlay and composite of arch/arm64/boot/dts, with its dtc flags.

    Every .dts and .dtso in the folders is built, listed in a Makefile or
    not; a `.dts` named as `.dtbo` in a Makefile (trees before v6.5) is an
    overlay. `dtb-` lists (CONFIG_OF_ALL_DTBS) count like `dtb-y`.

    read: a list that gets the path of every file and folder the answer
    comes from (the folders listed, the files read, the DTC rules' files
    looked for; cpp_flags() and dtc_include() read only these too), for a
    caller that keeps the answer while none of them changes. warn: where
    the warnings go (a file name that is not UTF-8, skipped).
    """
    tree = Path(tree)
    dts_root = tree / DTS_DIR
    if read is None:
        read = []
    read += [str(tree / name) for name in _DTBS_MAKEFILES] + [str(dts_root)]
    if not dts_root.is_dir():
        raise MakefileError(None, f"{tree}: no {DTS_DIR} folder: not a kernel tree")
    defaults = default_dtc_flags(tree)
    every_base = all_bases_get_symbols(tree)

    targets: dict[str, Target] = {}
    for folder, dirs, files in sorted(os.walk(dts_root, followlinks=False)):
        dirs.sort()
        read.append(folder)
        rel_folder = os.path.relpath(folder, dts_root)
        rel_folder = "" if rel_folder == "." else rel_folder + "/"
        if "Makefile" in files:
            read.append(os.path.join(folder, "Makefile"))
        mk = Makefile.read(Path(folder, "Makefile")) if "Makefile" in files else Makefile("")
        listed = mk.words("dtb-y") + mk.words("dtb-")
        composites = {}
        for name in listed:
            if name.endswith(".dtb") and mk.words(name[:-4] + "-dtbs"):
                composites[name] = mk.words(name[:-4] + "-dtbs")
        bases = set()
        for parts in composites.values():
            dtb_parts = [p for p in parts if p.endswith(".dtb")]
            bases.update(dtb_parts if every_base else parts[:1])
        named_overlays = {n[:-5] for n in listed + [p for ps in composites.values() for p in ps]
                          if n.endswith(".dtbo")}

        def flags_for(stem: str, output: str) -> list[str]:
            flags = mk.words("DTC_FLAGS") + defaults + mk.words("DTC_FLAGS_" + stem)
            if output in bases:
                flags.append("-@")
            return flags

        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext in (".dts", ".dtso") and not _utf8(name):
                # Its DTB name would reach every report: say so, and leave it out.
                warn(f"{os.fsencode(os.path.join(folder, name)).decode('utf-8', 'backslashreplace')}"
                     f": warning: file name is not UTF-8; skipped")
                continue
            # Only then is the file itself read: is it an overlay?
            unsure = ext == ".dts" and (stem + ".dtb" not in listed or stem + ".dtb" in composites)
            if unsure:
                read.append(os.path.join(folder, name))
            if ext == ".dtso" or (ext == ".dts" and stem in named_overlays):
                output, kind = stem + ".dtbo", "overlay"
            elif unsure and _is_plugin(Path(folder, name)):
                # An old-style overlay no Makefile names (v6.1's
                # imx8mm-venice-gw72xx-0x-imx219.dts): still an overlay.
                output, kind = stem + ".dtbo", "overlay"
            elif ext == ".dts":
                output, kind = stem + ".dtb", "board"
            else:
                continue
            if output in composites:
                continue  # make builds this name with fdtoverlay, not from the file
            targets[rel_folder + output] = Target(
                dtb=rel_folder + output, kind=kind,
                source=f"{DTS_DIR}/{rel_folder}{name}", dtc_flags=flags_for(stem, output))
        for name, parts in sorted(composites.items()):
            targets[rel_folder + name] = Target(
                dtb=rel_folder + name, kind="composite", source=None,
                parts=[os.path.normpath(rel_folder + p) for p in parts])
    return list(targets.values())


def cpp_flags(tree: Path) -> list[str]:
    """The tree's `dtc_cpp_flags` (run from the top of the tree) plus the rule's -x.

    Its `-Wp,-MMD,<depfile>` is left out: the builder asks cpp for a
    dependency file its own way.
    """
    mk = Makefile.read(dtbs_makefile(tree), {"srctree": ".", "objtree": "."})
    flags = [w for w in mk.words("dtc_cpp_flags") if not w.startswith("-Wp,")]
    # Every kernel since v4.x has these; a cut-down test tree may not say so.
    flags = flags or ["-nostdinc", "-I", dtc_include(tree), "-undef", "-D__DTS__"]
    return flags + ["-x", "assembler-with-cpp"]


def dtc_include(tree: Path) -> str:
    """DTC_INCLUDE relative to the top of the tree: scripts/dtc/include-prefixes."""
    mk = Makefile.read(dtbs_makefile(tree), {"srctree": ".", "objtree": "."})
    return os.path.normpath(mk.value("DTC_INCLUDE") or "scripts/dtc/include-prefixes")
