"""Logging for workflow scripts and rate-limited progress lines for long loops."""

from __future__ import annotations

import logging
import os
import sys
import time


def log_to_file(log_path: str | os.PathLike, level: int = logging.INFO) -> None:
    """Send all logging, warnings and stderr of the current process to ``log_path``.

    Workflow scripts call this first thing, before heavy imports, so that import
    warnings and tracebacks also end up in the rule's log file.
    """
    os.makedirs(os.path.dirname(os.fspath(log_path)) or ".", exist_ok=True)
    stream = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
    sys.stderr = stream
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=stream,
        force=True,
    )
    logging.captureWarnings(True)


class ProgressLogger:
    """Log progress of a loop at most once every ``interval`` seconds.

    Parameters
    ----------
    logger : logging.Logger
        Where the lines go.
    total : int, optional
        Number of steps, shown as ``step/total`` when given.
    interval : float, default 10.0
        Minimum number of seconds between two lines.
    what : str, default "step"
        Name of one unit of work in the message (``"epoch"``, ``"frame"``).
    """

    def __init__(
        self,
        logger: logging.Logger,
        total: int | None = None,
        interval: float = 10.0,
        what: str = "step",
    ) -> None:
        self.logger = logger
        self.total = total
        self.interval = interval
        self.what = what
        self.start = time.perf_counter()
        self._last = -float("inf")

    @property
    def elapsed(self) -> float:
        """Seconds since the logger was created."""
        return time.perf_counter() - self.start

    def update(self, step: int, message: str = "", force: bool = False) -> None:
        """Log ``step`` with ``message`` if ``interval`` seconds passed since the last line."""
        now = time.perf_counter()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        count = f"{step}/{self.total}" if self.total is not None else f"{step}"
        rate = step / max(now - self.start, 1e-9)
        suffix = f" {message}" if message else ""
        self.logger.info(
            "%s %s%s (%.1f s elapsed, %.2f %s/s)",
            self.what, count, suffix, now - self.start, rate, self.what,
        )
