"""What every `ganmusic` command shares: one-line user errors, results on stdout, option
defaults read from the config dataclasses."""

from __future__ import annotations

import functools
import sys

import typer

from ganmusic.configs import EncodingConfig, default
from ganmusic.errors import GanmusicError
from ganmusic.ui import console

EXIT_USER_ERROR = 2


class UserError(GanmusicError):
    """A problem with the command line itself (options that cannot go together)."""


def fail(message: str, code: int = EXIT_USER_ERROR):
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def user_errors(func):
    """Report the library's user-facing errors (`GanmusicError`) as one line with their exit code
    (2, or 1 for a diverged training run), not a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except GanmusicError as exc:
            fail(str(exc), code=exc.exit_code)

    return wrapper


def encoding_options(steps_per_beat: int, melody: bool) -> EncodingConfig:
    return EncodingConfig(steps_per_beat=steps_per_beat, melody=melody)


# Option defaults come from the config dataclasses (configs.py), the one source of defaults and
# ranges; the dataclasses check the values.
SPB = default(EncodingConfig, "steps_per_beat")
MELODY = default(EncodingConfig, "melody")


def print_result(renderable):
    """Results go to stdout (progress and messages go to stderr)."""
    from rich.console import Console

    Console(width=None if sys.stdout.isatty() else 160).print(renderable)
