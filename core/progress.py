"""Progress of a long step: a bar on a terminal, a log line every few seconds when the output is piped.

A bar redrawn with carriage returns turns a piped log (cron, CI, ``| tee``) into one unreadable line, and no
bar at all leaves minutes of silence; so the same call draws a ``tqdm`` bar when stderr is a terminal and
otherwise logs ``<what>: <done>/<total> <unit> (<rate>/s)[, <note>]`` at most every ``every_s`` seconds, and
once more at the end of a step that logged anything (or always, for a step whose count is its summary).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from tqdm import tqdm

log = logging.getLogger(__name__)


class Progress:
    """Counts ``total`` units of one step; ``with Progress(...) as p: p.update(); p.note("best 0.12")``."""

    def __init__(
        self,
        total: int,
        what: str,
        unit: str,
        enabled: bool = True,
        every_s: float = 10.0,
        terminal: bool | None = None,
        position: int | None = None,
        summary: bool = False,
    ) -> None:
        self.total, self.what, self.unit, self.every_s = total, what, unit, every_s
        # ``--quiet`` (this logger above INFO) hides bars too
        self.enabled, self.summary = enabled and log.isEnabledFor(logging.INFO), summary
        self.done, self._note, self._logged = 0, "", False
        self._started = self._last = time.monotonic()
        terminal = sys.stderr.isatty() if terminal is None else terminal
        self._bar: Any = (
            tqdm(total=total, desc=what, unit=unit, position=position) if self.enabled and terminal else None
        )

    def update(self, n: int = 1) -> None:
        """``n`` more units done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and time.monotonic() - self._last >= self.every_s:
            self._log()

    def note(self, text: str) -> None:
        """A short status shown beside the count (e.g. the best validation loss so far)."""
        self._note = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def line(self) -> str:
        """The count as one line: ``what: done/total unit (rate/s)[, note]``."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = f"{self.done / elapsed:.1f} {self.unit}/s"
        note = f", {self._note}" if self._note else ""
        return f"{self.what}: {self.done}/{self.total} {self.unit} ({rate}){note}"

    def _log(self) -> None:
        log.info("%s", self.line())
        self._last, self._logged = time.monotonic(), True

    def close(self) -> None:
        """End the bar; in a piped log, a last line if the step logged one before or ``summary`` was asked."""
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and (self._logged or self.summary):
            self._log()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
