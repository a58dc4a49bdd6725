"""Where things are, for test modules in any folder under tests/."""
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent                 # the repository
GOLDEN = TESTS / "golden"           # reviewed outputs (tests/golden/README.md)
