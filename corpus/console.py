"""What the corpus tells a person: progress and status only on a terminal
(and not under CI), diagnostics always, one write() per line on stderr so
parallel output does not interleave."""

import os
import sys


def progress_wanted() -> bool:
    """tqdm bars and status lines only for a person watching: stderr is a terminal, not CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")


def diagnostic(line: str, bar=None) -> None:
    """A GNU-style `file: error: message` line; through the tqdm bar when one is shown."""
    if bar is not None and not bar.disable:
        bar.write(line, file=sys.stderr)
    else:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def status(message: str) -> None:
    """What a long quiet step is doing (a download, a tarball), for a person watching."""
    if progress_wanted():
        sys.stderr.write(f"dtb-audit: {message}\n")
        sys.stderr.flush()
