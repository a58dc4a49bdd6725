"""Golden files: outputs compared byte for byte with the reviewed files in
tests/golden/, after machine-specific text is replaced by placeholders.

After a change that is meant to change an output, regenerate and review the
difference (`git diff tests/golden/`) before committing:

    DTB_AUDIT_REGENERATE=1 python3 -m pytest tests/integration/test_golden.py
"""
import io
import os
import re
from importlib.metadata import version

from testpaths import GOLDEN

REGENERATE = os.environ.get("DTB_AUDIT_REGENERATE") == "1"


def text_file(render):
    """render(f) into a string: what a writer of reports writes."""
    buffer = io.StringIO()
    render(buffer)
    return buffer.getvalue()


def normalize(text, places):
    """`text` with each path of `places` ({placeholder: path}) replaced by
    its placeholder, longest path first, and the tool's version by {VERSION}."""
    for name, path in sorted(places.items(), key=lambda kv: -len(str(kv[1]))):
        text = text.replace(str(path), name)
    return re.sub(r'("name": "dtb-audit",\s*"version": )"%s"' % re.escape(version("dtb-audit")),
                  r'\1"{VERSION}"', text)


def check(name, text, places):
    """Compare `text` (normalized) with tests/golden/<name>, or write it there
    when regenerating."""
    text = normalize(text, places)
    path = GOLDEN / name
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        return
    assert path.exists(), (f"{path}: no golden file; make it with "
                           f"DTB_AUDIT_REGENERATE=1 python3 -m pytest tests/")
    golden = path.read_bytes().decode("utf-8")
    assert text == golden, f"{name}: output differs from the golden file"
