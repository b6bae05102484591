"""Errors that posecore raises for bad input.

Every error names the file it is about and, where it can, the row, frame or key, so that a
user who reads only the last line of a log knows what to fix.
"""

from __future__ import annotations

from pathlib import Path


class PosecoreError(Exception):
    """Base class of posecore's own errors."""


class InputError(PosecoreError, ValueError):
    """Bad input: a file that is missing, malformed or inconsistent with the config.

    Args:
        path: the file the problem is in.
        message: what is wrong, in words a user can act on.
        where: optional location inside the file ("row 12", "frame 300", "key model.name").
    """

    def __init__(self, path: str | Path, message: str, where: str | None = None) -> None:
        self.path = str(path)
        self.where = where
        self.message = message
        location = f"{self.path} ({where})" if where else self.path
        super().__init__(f"{location}: {message}")
