"""Where the caches live: $XDG_CACHE_HOME/dtb-audit (~/.cache/dtb-audit),
one folder per cache below it (docs/store.md lists them)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/dtb-audit, ~/.cache/dtb-audit by default."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dtb-audit"


def short_hash(*parts: object) -> str:
    """12 hex digits of SHA-256 over the parts' text: a key in a folder's or file's name."""
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:12]
