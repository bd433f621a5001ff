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
# Set once this process joined a jax.distributed run: a failing process then exits at once, so the
# others stop within JAX's heartbeat timeout instead of waiting for it at a barrier or collective.
_distributed = False


class UserError(GanmusicError):
    """A problem with the command line itself (options that cannot go together)."""


def fail(message: str, code: int = EXIT_USER_ERROR):
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    if _distributed:
        exit_now(code)
    raise typer.Exit(code)


def joined_distributed() -> None:
    """From now on this process is one of a jax.distributed run (see `fail`)."""
    global _distributed
    _distributed = True


def exit_now(code: int):
    """Leave without JAX's orderly shutdown, which waits for every other process to shut down."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def user_errors(func):
    """Report the library's user-facing errors (`GanmusicError`) as one line with their exit code
    (2, or 1 for a diverged training run), not a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except GanmusicError as exc:
            fail(str(exc), code=exc.exit_code)
        except Exception:
            if _distributed:
                import traceback

                traceback.print_exc()
                exit_now(1)
            raise

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
