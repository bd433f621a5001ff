"""Terminal output shared by the library and the CLI: one console, one progress-bar style."""

from __future__ import annotations

import contextlib

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

console = Console(stderr=True)  # progress and messages on stderr; results on stdout


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


@contextlib.contextmanager
def maybe_progress(enabled: bool, description: str, total: int):
    """Yield `advance(n=1, status="")`; a no-op when `enabled` is False."""
    if not enabled:
        yield lambda n=1, status="": None
        return
    with progress_bar() as bar:
        task = bar.add_task(description, total=total, status="")

        def advance(n=1, status=""):
            bar.update(task, advance=n, status=status)

        yield advance
