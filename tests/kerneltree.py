"""The one writer of small kernel trees for the tests (tests/conftest.py's
SMALL_TREE, tests/minikernel.py's SoCs, tests/gitrepo.py's histories): files
where a kernel tree has them, and kbuild's include-prefixes links."""
import os
from pathlib import Path

INCLUDE_PREFIXES = {"arm64": "../../../arch/arm64/boot/dts",
                    "dt-bindings": "../../../include/dt-bindings"}


def write_tree(root, files):
    """Write {relative path: text} under root (text None: remove the file), with
    the include-prefixes links; returns root as a Path."""
    root = Path(root)
    for rel, text in files.items():
        path = root / rel
        if text is None:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    prefixes = root / "scripts/dtc/include-prefixes"
    prefixes.mkdir(parents=True, exist_ok=True)
    for name, target in INCLUDE_PREFIXES.items():
        if not os.path.lexists(prefixes / name):
            os.symlink(target, prefixes / name)
    return root
