"""Progress on stderr: a rich progress bar for builds that take more than a moment,
and one for uploads (bytes and rate).

A bar appears only when stderr is a terminal (the build's only when it is still
running after :data:`DELAY` seconds), and clears itself at the end, so quick and
scripted runs print nothing extra. rich is imported only then.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

#: seconds a build runs before the bar appears
DELAY = 0.5


class Reporter:
    """Receives the builder's events; this one ignores them (quiet, or not a terminal)."""

    def begin(self, steps: int) -> None:
        """The build is about to run ``steps`` steps."""

    def started(self, step: Any) -> None:
        """``step`` started running (it was not in the cache)."""

    def finished(self, step: Any, cached: bool) -> None:
        """``step`` is done, from the cache or by running."""

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more uncompressed bytes were compressed."""

    def close(self) -> None:
        """The build is over (or failed): remove any display."""


class LiveReporter(Reporter):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = 0
        self._done = 0
        self._bytes = 0
        self._current = ""
        self._progress: Any = None
        self._task: Any = None
        self._timer: threading.Timer | None = None
        self._closed = False

    def begin(self, steps: int) -> None:
        self._total = steps
        self._timer = threading.Timer(DELAY, self._show)
        self._timer.daemon = True
        self._timer.start()

    def _show(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        with self._lock:
            if self._closed:
                return
            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                      BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[mb]:.1f} MB"), TimeElapsedColumn(),
                                      console=Console(stderr=True), transient=True)
            self._task = self._progress.add_task(self._current or "building",
                                                 total=self._total, completed=self._done,
                                                 mb=self._bytes / 1e6)
            self._progress.start()

    def _refresh(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self._done, mb=self._bytes / 1e6,
                                  description=self._current)

    def started(self, step: Any) -> None:
        with self._lock:
            self._current = f"{step.kind} {step.label}"
            self._refresh()

    def finished(self, step: Any, cached: bool) -> None:
        with self._lock:
            self._done += 1
            self._refresh()

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self._bytes += nbytes
            self._refresh()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._closed = True
            if self._progress is not None:
                self._progress.stop()
                self._progress = None


def reporter(enabled: bool) -> Reporter:
    """A live bar when ``enabled`` and stderr is a terminal; otherwise silence."""
    if enabled and sys.stderr.isatty():
        return LiveReporter()
    return Reporter()


class TransferMeter:
    """Receives an upload's progress; this one ignores it (quiet, JSON, or not a terminal)."""

    def __init__(self, label: str = "") -> None:
        """``label`` says what is uploaded (this one shows nothing)."""

    def update(self, done: int, total: int) -> None:
        """``done`` of ``total`` bytes are sent (``done`` starts again at a retry)."""

    def close(self) -> None:
        """The upload is over (or failed): remove any display."""


class LiveTransferMeter(TransferMeter):
    """A bar with the bytes sent, the total, and the rate."""

    def __init__(self, label: str = "") -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(TextColumn(label), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), TimeRemainingColumn(),
                                  console=Console(stderr=True), transient=True)
        self._task = self._progress.add_task(label, total=None)
        self._progress.start()

    def update(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total)

    def close(self) -> None:
        self._progress.stop()


def transfer_meter(enabled: bool, label: str) -> TransferMeter:
    """A live upload bar when ``enabled`` and stderr is a terminal; otherwise silence."""
    if enabled and sys.stderr.isatty():
        return LiveTransferMeter(label)
    return TransferMeter()
