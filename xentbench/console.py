"""What the commands write to stderr besides their results: progress, and TensorFlow's start-up, quieted.

Progress goes through rich, which knows whether stderr is a terminal. On a
terminal ``Bar`` draws a progress bar that redraws itself in place; anywhere
else (a file, a pipe, a CI log) it prints a plain line now and then instead,
never a ``\\r``. ``Steps`` prints ``[elapsed] what`` lines, the same on a
terminal and in a log.

TensorFlow prints its start-up messages ("oneDNN custom operations are on",
twice per process, and which CPU instructions it was built for) while it is
imported, before absl's logging is set up, so ``TF_CPP_MIN_LOG_LEVEL`` does
not quiet them. ``import_tensorflow`` imports it with those lines taken out
of stderr, and passes on whatever else is written meanwhile; with
``verbose`` or ``XENTBENCH_TF_LOGS=1`` it leaves them in.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: The lines TensorFlow writes to stderr on import, left out unless asked for.
TF_STARTUP = re.compile(r"All log messages before absl::InitializeLog|oneDNN custom operations are on"
                        r"|cpu_feature_guard|To enable the following instructions"
                        r"|rebuild TensorFlow with the appropriate compiler flags")
#: ``XENTBENCH_TF_LOGS=1`` keeps TensorFlow's start-up messages, for every command.
TF_LOGS = "XENTBENCH_TF_LOGS"


def stderr() -> Console:
    """A console on the current ``sys.stderr`` (looked up at each write, so a redirection is followed)."""
    return Console(stderr=True)


class Steps:
    """``[elapsed] what`` lines on stderr, one a call; nothing when ``quiet``."""

    def __init__(self, quiet: bool = False, console: Console | None = None):
        self.start = time.monotonic()
        self.quiet = quiet
        self.console = console or stderr()

    def __call__(self, what: str) -> None:
        if not self.quiet:
            self.console.out(f"[{time.monotonic() - self.start:5.1f}s] {what}", highlight=False)


class Bar:
    """Progress through ``total`` steps on stderr, as a context manager; ``advance(what)`` after each.

    On a terminal, a rich progress bar with the count, the elapsed time and
    the step; elsewhere a plain line at the first step, then at most every
    ``every_s`` seconds, and at the last.
    """

    def __init__(self, total: int, description: str, every_s: float = 10.0, console: Console | None = None):
        self.total, self.description, self.every_s = total, description, every_s
        self.console = console or stderr()
        self.done, self.start, self.last = 0, time.monotonic(), None
        self.bar: Progress | None = None

    def __enter__(self) -> "Bar":
        if self.console.is_terminal:
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("{task.fields[what]}"), console=self.console)
            self.bar.start()
            self.task = self.bar.add_task(self.description, total=self.total, what="")
        return self

    def advance(self, what: str = "") -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.task, advance=1, what=what)
            return
        now = time.monotonic()
        if self.last is None or now - self.last >= self.every_s or self.done == self.total:
            self.last = now
            self.console.out(f"{self.description}: {self.done}/{self.total} ({now - self.start:.0f} s) {what}",
                             highlight=False)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def track(items, description: str, what=str, every_s: float = 10.0):
    """``items``, one at a time, with a ``Bar`` over them; ``what(item)`` names each step."""
    items = list(items)
    with Bar(len(items), description, every_s) as bar:
        for item in items:
            bar.advance(what(item))
            yield item


def import_tensorflow(verbose: bool = False) -> None:
    """Import TensorFlow, if installed, with its start-up lines left out of stderr (see the module docstring).

    A TensorFlow that fails to import is left for its user to report
    (``impls`` raises ``BackendUnavailable`` with the reason).
    """
    if "tensorflow" in sys.modules:
        return
    quiet = not verbose and os.environ.get(TF_LOGS, "") in ("", "0")
    with filtered_stderr(TF_STARTUP) if quiet else contextlib.nullcontext():
        try:
            import tensorflow  # noqa: F401
        except Exception:  # noqa: BLE001  reported by whoever uses it
            pass


@contextlib.contextmanager
def filtered_stderr(pattern: re.Pattern):
    """File descriptor 2, where C++ libraries write, collected meanwhile and passed on less the lines
    matching ``pattern``; as it is where it cannot be redirected."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as collected:
        os.dup2(collected.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            collected.seek(0)
            text = collected.read().decode(errors="replace")
            kept = "".join(line for line in text.splitlines(keepends=True) if not pattern.search(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()
