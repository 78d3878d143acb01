"""Error types for bad user input.

Every error about input a user controls says which file, which frame or line, which
field, and what to change, so that the message alone is enough to fix the problem.
"""

from __future__ import annotations

import os


class InputError(ValueError):
    """Invalid user input (a data file or a config value), with where and how to fix it.

    Parameters
    ----------
    message : str
        What is wrong, with the offending value.
    path : str or os.PathLike, optional
        File that contains the bad input.
    location : str, optional
        Where in the file: ``"line 12"``, ``"frame 3"``.
    field : str, optional
        Column, key or config entry concerned.
    fix : str, optional
        What the user should change.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike | None = None,
        location: str | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.path = None if path is None else os.fspath(path)
        self.location = location
        self.field = field
        self.fix = fix
        self.reason = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = ", ".join(part for part in (self.path, self.location) if part)
        text = f"{where}: {self.reason}" if where else self.reason
        if self.field:
            text += f" (field {self.field!r})"
        if self.fix:
            text += f". Fix: {self.fix}"
        return text


class ConfigError(InputError):
    """Invalid or inconsistent configuration value."""
