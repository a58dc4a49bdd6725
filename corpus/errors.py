"""What a user did wrong, told the user one way."""


class UserError(Exception):
    """A file, source, option or tool the user gave that cannot be used.

    `path` names it (a file, a folder, a revision, an option such as
    "--target-kernel"; None when the command line as a whole is wrong) and
    `message` says what is wrong. The CLI prints line() once, on stderr."""

    def __init__(self, path: str | None, message: str):
        super().__init__(path, message)
        self.path = path
        self.message = message

    def line(self, where: str = "dtb-audit") -> str:
        """`PATH: error: MESSAGE`; `where` stands in for a missing path."""
        return f"{self.path if self.path is not None else where}: error: {self.message}"

    def __str__(self) -> str:
        return self.line()


class CorpusError(UserError):
    """Transitional: a whole diagnostic in one string, `PATH: error: ...` or
    a bare message. Being replaced by UserError(path, message)."""

    def __init__(self, text: str):
        super().__init__(None, text)
        self.args = (text,)

    def line(self, where: str = "dtb-audit") -> str:
        return self.message if ": error: " in self.message else f"{where}: error: {self.message}"

    def __str__(self) -> str:
        return self.message


class CorpusUserError(CorpusError):
    """Transitional base of what corpus/ raises: a UserError(path, message),
    which auditor's `except CorpusError` still catches. Once auditor catches
    UserError, the corpus errors derive from UserError and this goes.

    str() is what a CorpusError said (the whole line, or the bare message
    when there is no path), so auditor's handlers print the same bytes."""

    def __init__(self, path: str | None, message: str):
        UserError.__init__(self, None if path is None else str(path), message)

    line = UserError.line

    def __str__(self) -> str:
        return self.message if self.path is None else self.line()
