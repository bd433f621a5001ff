"""Terminal output shared by the library and the CLI: one console, one progress style.

On a terminal progress is a rich bar; written to a file or a pipe it is plain text, one line every
few seconds (step/total, rate, ETA, the latest metrics), so a log reads as lines."""

from __future__ import annotations

import contextlib
import time

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

console = Console(stderr=True, soft_wrap=True)  # messages on stderr, unwrapped (paths stay whole); results on stdout

PLAIN_EVERY_S = 5.0  # seconds between plain-text progress lines
ESTIMATE_AFTER_S = 3.0  # steps timed (after the first) before saying how long a job will take


def progress_bar(*, transient: bool = False) -> Progress:
    """A rich progress bar with count, elapsed time and ETA, plus a free-text status field."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=transient,
    )


def duration(seconds: float) -> str:
    """`42s`, `3m05s`, `1h02m`."""
    seconds = int(round(max(seconds, 0)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class PlainProgress:
    """Progress as plain lines: `DESCRIPTION: 150/1000 (15%) 3.2 it/s, eta 4m25s, STATUS`, the first
    after the first step, then at most one every `every` seconds, and one at the end."""

    def __init__(self, description: str, total: int, every: float = PLAIN_EVERY_S, clock=time.monotonic):
        self.description, self.total, self.every, self.clock = description, total, every, clock
        self.done = self.base = 0  # the rate counts steps after `base`, timed from `start`
        self.status = ""
        self.began = self.start = clock()
        self.calls, self.timed = 0, False
        self.last_line = None
        self.last_done = None

    def line(self) -> str:
        now = self.clock()
        made, elapsed = self.done - self.base, now - self.began
        rate = made / (now - self.start) if now > self.start and made > 0 else 0.0
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        parts = [f"{self.description}: {self.done}/{self.total}{pct}"]
        if rate:
            parts.append(f"{rate:.3g} it/s" if rate >= 1 else f"{1 / rate:.3g} s/it")
            if self.done < self.total:
                parts.append(f"eta {duration((self.total - self.done) / rate)}")
        parts.append(f"elapsed {duration(elapsed)}")
        if self.status:
            parts.append(self.status)
        return ", ".join(parts)

    def emit(self):
        console.print(self.line(), highlight=False, markup=False, soft_wrap=True)
        self.last_line, self.last_done = self.clock(), self.done

    def advance(self, n: int = 1, status: str = ""):
        self.calls += 1
        self.done += n
        if status:
            self.status = status
        if self.calls == 1 and n != 1:  # `advance(start)`: where a resumed run starts, not progress
            self.base = self.done
            return
        if not self.timed:  # the first step includes compilation: the rate is timed from after it
            self.timed, self.base, self.start = True, self.done, self.clock()
        if self.last_line is None or self.clock() - self.last_line >= self.every:
            self.emit()

    def finish(self):
        if self.last_done != self.done:
            self.emit()


def about(seconds: float) -> str:
    """`under a minute`, `about 1 minute`, `about 45 minutes`, `about 3.5 hours`."""
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    return f"about {seconds / 3600:.1f} hours"


class Estimate:
    """Says once, early, how long the whole job will take: the first step (compilation) is timed
    apart, then the next steps for at least `min_seconds`; the line reads `DESCRIPTION: about N
    minutes on this machine`. Nothing is said for jobs done before that."""

    def __init__(self, description: str, total: int, min_seconds: float = ESTIMATE_AFTER_S, clock=time.monotonic):
        self.description, self.total, self.min_seconds, self.clock = description, total, min_seconds, clock
        self.began, self.done, self.calls = clock(), 0, 0
        self.base = self.start = None  # steps done and time when the timing began (after the first step)
        self.said = None

    def advance(self, n: int = 1) -> str | None:
        self.calls += 1
        self.done += n
        now = self.clock()
        if self.said is not None:
            return None
        if self.calls == 1 and n != 1:  # `advance(start)`: where a resumed run starts
            self.began = now
            return None
        if self.start is None:
            self.base, self.start = self.done, now
            return None
        if now - self.start < self.min_seconds or self.done >= self.total:
            return None
        rate = (self.done - self.base) / (now - self.start)
        total = now - self.began + (self.total - self.done) / rate
        self.said = f"{self.description}: {about(total)} on this machine ({self.total} steps, timed from the first ones)"
        console.print(self.said, highlight=False, markup=False, soft_wrap=True)
        return self.said


@contextlib.contextmanager
def maybe_progress(enabled: bool, description: str, total: int, estimate: bool = False):
    """Yield `advance(n=1, status="")`; a no-op when `enabled` is False. The latest non-empty
    status stays shown until a new one comes. `estimate`: say early how long it will take
    (`Estimate`)."""
    if not enabled:
        yield lambda n=1, status="": None
        return
    guess = Estimate(description, total) if estimate else None
    if not console.is_terminal:
        plain = PlainProgress(description, total)

        def advance_plain(n=1, status=""):
            plain.advance(n, status)
            if guess:
                guess.advance(n)

        yield advance_plain
        plain.finish()
        return
    with progress_bar() as bar:
        task = bar.add_task(description, total=total, status="")

        def advance(n=1, status=""):
            if status:
                bar.update(task, advance=n, status=status)
            else:
                bar.update(task, advance=n)
            if guess:
                guess.advance(n)

        yield advance
