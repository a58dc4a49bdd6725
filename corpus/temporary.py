"""Transitional: auditor/history.py imports write_atomically from here; it
is store.durable's (the one durable write). Goes once auditor imports store."""
from store.durable import write_atomically

__all__ = ["write_atomically"]
