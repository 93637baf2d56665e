"""The one error that every reader raises on malformed input, and the warning for dropped qrels."""
from __future__ import annotations

import os


class FormatError(ValueError):
    """A file does not follow its format.

    The message names the file, the 1-based line number, what was found there and what the
    format expects, so a researcher can open the file at that line and fix it.

    Args:
      path: the file.
      line: 1-based line number (1 for a file that is empty).
      found: what the line holds, in words.
      expected: what the format wants there, in words.
    """

    def __init__(self, path: str | os.PathLike, line: int, found: str, expected: str):
        self.path = os.fspath(path)
        self.line = int(line)
        self.found = found
        self.expected = expected
        super().__init__(f"{self.path}:{self.line}: found {found}; expected {expected}")

    def __reduce__(self):
        # Exceptions pickle their args; ours differ from the message, so say how to rebuild.
        return (type(self), (self.path, self.line, self.found, self.expected))


class DroppedQrelsWarning(UserWarning):
    """Qrels naming unknown queries or documents were dropped (on_unknown="drop"); counted."""


def snippet(text: str, width: int = 60) -> str:
    """`text` quoted and cut to `width` characters, for error messages."""
    return repr(text if len(text) <= width else text[:width] + "...")
