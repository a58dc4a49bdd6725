"""The tools a kernel tree is built with: cpp, the tree's own dtc and fdtoverlay.

Debian 12's dtc 1.6.1 rejects flags and syntax that recent trees use
(`-Wno-interrupt_map`, `/delete-node/ &{label/path}`), so, as kbuild does,
the tree's scripts/dtc is compiled (C, flex, bison) and cached under a key
made from its sources. A system dtc is used only when that build is not
possible and it accepts every flag the tree passes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from corpus.console import diagnostic, status
from corpus.errors import UserError
from corpus.kbuild import Makefile
from store.durable import place, remove_dead, temporary_folder, write_atomically
from store.kept import read_kept


class MissingTool(UserError):
    """A program the build needs is not installed; the message says what to install."""


@dataclass(frozen=True)
class Tools:
    cpp: str
    dtc: str
    fdtoverlay: str
    dtc_version: str     # "DTC 1.7.0-gbcd02b52 (linux scripts/dtc)"
    key: str             # changes whenever any of the tools would build differently


def _which(name: str, package: str) -> str:
    path = shutil.which(name)
    if not path:
        raise MissingTool(None, f"{name} not found: install it with `apt-get install {package}`")
    return path


def _version_line(program: str) -> str:
    """The first line of `program --version`: "DTC 1.7.0-gbcd02b52", "cpp (Debian 12.2.0-14) 12.2.0"."""
    out = subprocess.run([program, "--version"], capture_output=True, text=True,
                         errors="backslashreplace")
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].removeprefix("Version: ") if lines else program


def _sources_hash(dtc_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(dtc_dir.rglob("*")):
        if path.suffix in (".c", ".h", ".l", ".y") and path.is_file():
            digest.update(str(path.relative_to(dtc_dir)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _compile_tree_dtc(dtc_dir: Path, dest: Path) -> None:
    """Compile dtc and fdtoverlay from the tree's scripts/dtc into dest (atomically)."""
    gcc = _which("gcc", "gcc")
    flex = _which("flex", "flex")
    bison = _which("bison", "bison")
    mk = Makefile.read(dtc_dir / "Makefile")
    # The object lists come from the tree's own Makefile (yamltree.o only
    # when libyaml is there: this reader takes the NO_YAML branch).
    dtc_objs = [o for o in mk.words("dtc-objs") if not o.startswith(("dtc-lexer", "dtc-parser"))]
    overlay_objs = [o for o in mk.words("fdtoverlay-objs")]
    if not dtc_objs or not overlay_objs:
        raise MissingTool(None, f"{dtc_dir}/Makefile: no dtc-objs or fdtoverlay-objs")

    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_dead(dest.parent)
    work = temporary_folder(dest.parent, "build")
    work.chmod(0o755)  # mkdtemp makes it private; the result is not
    try:
        steps = [
            [flex, "-o", work / "dtc-lexer.lex.c", dtc_dir / "dtc-lexer.l"],
            [bison, "-o", work / "dtc-parser.tab.c", f"--defines={work / 'dtc-parser.tab.h'}",
             "-t", "-l", dtc_dir / "dtc-parser.y"],
        ]
        for cmd in steps:
            _run_tool(cmd)
        cflags = ["-O2", "-w", "-DNO_YAML", "-I", dtc_dir, "-I", dtc_dir / "libfdt", "-I", work]
        builds = [
            [gcc, *cflags, "-o", work / "dtc", *[dtc_dir / (o[:-2] + ".c") for o in dtc_objs],
             work / "dtc-lexer.lex.c", work / "dtc-parser.tab.c"],
            [gcc, *cflags, "-o", work / "fdtoverlay",
             *[dtc_dir / (o[:-2] + ".c") for o in overlay_objs]],
        ]
        # Both links at once: this is most of the few seconds a fresh tree costs.
        procs = [subprocess.Popen([str(a) for a in cmd], stderr=subprocess.PIPE, text=True,
                                  errors="backslashreplace")
                 for cmd in builds]
        for cmd, proc in zip(builds, procs):
            _, err = proc.communicate()
            if proc.returncode:
                built = Path(cmd[cmd.index('-o') + 1]).name
                raise MissingTool(None, f"{dtc_dir}: building {built} failed: "
                                        f"{_first_line(err)}")
        for name in ("dtc-lexer.lex.c", "dtc-parser.tab.c", "dtc-parser.tab.h"):
            (work / name).unlink()
        write_atomically(work / _CHECKSUMS, json.dumps(_tool_digests(work)).encode())
        place(work, dest, replace=False)   # or another process finished first
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


_CHECKSUMS = "checksums.json"


def _tool_digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256(read_kept(folder / name)).hexdigest()
            for name in ("dtc", "fdtoverlay")}


def _tools_problem(dest: Path) -> str | None:
    """Why the compiled tools in dest cannot be used as they are (None when they can)."""
    try:
        recorded = json.loads(read_kept(dest / _CHECKSUMS))
        if recorded == _tool_digests(dest):
            return None
        return "dtc or fdtoverlay changed since they were compiled (checksum)"
    except FileNotFoundError:
        return "no dtc compiled yet" if not dest.exists() else "dtc compiled without checksums"
    except (OSError, ValueError) as why:
        return f"unreadable tools ({why})"


def _set_aside(dest: Path) -> None:
    """Move damaged tools out of the way (a process may be running them) and remove them."""
    aside = temporary_folder(dest.parent, "damaged")
    try:
        os.rename(dest, aside / dest.name)
    except OSError:
        pass  # another process did it first
    shutil.rmtree(aside, ignore_errors=True)


def _run_tool(cmd) -> None:
    proc = subprocess.run([str(a) for a in cmd], capture_output=True, text=True,
                          errors="backslashreplace")
    if proc.returncode:
        raise MissingTool(None, f"{Path(str(cmd[0])).name} failed: {_first_line(proc.stderr)}")


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower():
            return line.strip()
    return lines[0].strip() if lines else "no message"


def accepts_flags(dtc: str, flags: set[str]) -> bool:
    """Whether this dtc knows every -W/-E switch (an unknown one is a fatal error)."""
    proc = subprocess.run([dtc, *sorted(flags), "-I", "dts", "-O", "dtb", "-o", os.devnull, "-"],
                          input="/dts-v1/; / { };", capture_output=True, text=True,
                          errors="backslashreplace")
    return proc.returncode == 0


def tree_tools(tree: Path, cache: Path, flags: set[str]) -> Tools:
    """cpp, dtc and fdtoverlay for this kernel tree, building its dtc when needed.

    `flags`: every dtc flag the tree's Makefiles pass, to vet a system dtc.
    """
    cpp = _which("cpp", "cpp")
    dtc_dir = Path(tree) / "scripts" / "dtc"
    reason = ""
    if (dtc_dir / "dtc.c").is_file():
        dest = Path(cache) / "tools" / f"dtc-{_sources_hash(dtc_dir)}"
        try:
            problem = _tools_problem(dest)
            if problem and dest.exists():
                diagnostic(f"{dest}: warning: {problem}; compiling them again")
                _set_aside(dest)
            if problem:
                status(f"compiling the tree's dtc and fdtoverlay ({dtc_dir})")
                _compile_tree_dtc(dtc_dir, dest)
            dtc, fdtoverlay = str(dest / "dtc"), str(dest / "fdtoverlay")
            version = f"{_version_line(dtc)} (built from the tree's scripts/dtc)"
            return Tools(cpp, dtc, fdtoverlay, version,
                         key=f"{dest.name} {_version_line(cpp)}")
        except MissingTool as why:
            reason = why.message
    else:
        reason = f"{dtc_dir}: no dtc sources"
    system_dtc = shutil.which("dtc")
    if system_dtc and accepts_flags(system_dtc, flags):
        fdtoverlay = _which("fdtoverlay", "device-tree-compiler")
        version = _version_line(system_dtc)
        return Tools(cpp, system_dtc, fdtoverlay, f"{version} (system)",
                     key=f"{system_dtc} {version} {_version_line(cpp)}")
    if system_dtc:
        raise MissingTool(None, f"{reason}; the system dtc ({_version_line(system_dtc)}) rejects "
                                f"this tree's flags: install gcc, flex and bison to build the "
                                f"tree's own dtc")
    raise MissingTool(None, f"{reason}; install gcc, flex and bison (or device-tree-compiler)")
