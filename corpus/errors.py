"""What a user did wrong, told the user one way."""


class UserError(Exception):
    """A file, source, option or tool the user gave that cannot be used.

    `path` names it (a file, a folder, a revision, an option such as
    "--target-kernel"; None when the command line as a whole is wrong) and
    `message` says what is wrong. The CLI prints line() once, on stderr."""

    def __init__(self, path: str | None, message: str):
        super().__init__(path, message)
        self.path = None if path is None else str(path)
        self.message = message

    def line(self, where: str = "dtb-audit") -> str:
        """`PATH: error: MESSAGE`; `where` stands in for a missing path."""
        return f"{self.path if self.path is not None else where}: error: {self.message}"

    def __str__(self) -> str:
        return self.line()

