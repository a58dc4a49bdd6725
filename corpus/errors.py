"""The one exception type of the corpus package: its message is the whole diagnostic."""


class CorpusError(Exception):
    """A source, tool or file the corpus cannot use; str() names it and says what is wrong."""
