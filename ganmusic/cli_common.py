"""What every `ganmusic` command shares: one-line user errors, results on stdout, option
defaults read from the config dataclasses."""

from __future__ import annotations

import functools
import inspect
import os
import sys
from pathlib import Path

import typer
from rich.markup import escape

from ganmusic import data
from ganmusic.configs import EncodingConfig, default
from ganmusic.errors import GanmusicError
from ganmusic.ui import console

EXIT_USER_ERROR = 2
COMPILED_CACHE_BYTES = 2 << 30
# Set once this process joined a jax.distributed run: a failing process then exits at once, so the
# others stop within JAX's heartbeat timeout instead of waiting for it at a barrier or collective.
_distributed = False

# Help and usage errors: rich panels on a terminal, plain click text when redirected (no
# box-drawing characters in a log).
MARKUP_MODE = "rich" if sys.stdout.isatty() and sys.stderr.isatty() else None


def cache_compiled_programs() -> None:
    """On a GPU or TPU, every command keeps what XLA compiles for it in CACHE/xla (GANMUSIC_CACHE,
    by default ~/.cache/ganmusic; JAX's persistent compilation cache, at most COMPILED_CACHE_BYTES,
    the least recently used going first): a later command that compiles the same program (the same
    generator sampled at the same sizes, the same model trained or scored again) loads it instead.
    Not on the CPU alone: there XLA rejects its own cached programs on many x86 CPUs and logs an
    error line for each (jax-ml/jax#38445). Set through the environment, which JAX reads when
    imported; where JAX_COMPILATION_CACHE_DIR is set, or JAX was imported first (a notebook, the
    tests), JAX's settings are left as they are. JAX_ENABLE_COMPILATION_CACHE=false turns it off."""
    if "JAX_COMPILATION_CACHE_DIR" in os.environ or "jax" in sys.modules or not accelerator_plugin_installed():
        return
    folder = data.default_cache_dir() / "xla"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # nowhere to keep them: every command compiles, as without the cache
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(folder)  # JAX keeps programs that took 1 s or more
    # JAX holds the size with filelock, a dependency of ours for that
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(COMPILED_CACHE_BYTES))


def accelerator_plugin_installed() -> bool:
    """Whether JAX will run on a GPU or TPU, as far as can be told without importing it: a PJRT
    plugin is installed (an entry point or module in `jax_plugins`, e.g. jax[cuda12]; libtpu) and
    JAX_PLATFORMS does not ask for the CPU alone."""
    import importlib.util
    from importlib.metadata import entry_points

    if set(filter(None, os.environ.get("JAX_PLATFORMS", "").lower().split(","))) == {"cpu"}:
        return False
    return bool(entry_points(group="jax_plugins")) or any(
        importlib.util.find_spec(name) is not None for name in ("jax_plugins", "libtpu"))


def allocate_on_demand() -> None:
    """Let XLA take GPU memory as arrays need it instead of 75% of the card at the first array:
    `sample` needs little of it, and should leave the rest of a shared card to others (on an H200
    that first array took 1.4 s with the preallocation; the call as a whole was not measurably
    faster without it, its sampling then allocating as it went). Only where JAX is not yet
    imported (a notebook keeps its own settings) and no XLA_PYTHON_CLIENT_* variable says
    otherwise."""
    if "jax" not in sys.modules and not any(name.startswith("XLA_PYTHON_CLIENT_") for name in os.environ):
        os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"


def param_default(func, name: str):
    """A library function's default for parameter `name`, so an option shows and uses the
    library's own default (one source, as `configs.default` is for config fields)."""
    return inspect.signature(func).parameters[name].default

def _type_tag(self, ctx):
    """Typer tags every option with its type, flags (even --help) with `<bool>`: flags take no
    value, so they get no tag."""
    return None if self.is_flag else _typer_type_tag(self, ctx)


# A private hook of recent typer (0.29); older releases draw no such tag and are left alone.
_typer_type_tag = getattr(typer.core.TyperOption, "display_type_rich", None)
if _typer_type_tag is not None:
    typer.core.TyperOption.display_type_rich = _type_tag


class UserError(GanmusicError):
    """A problem with the command line itself (options that cannot go together)."""


def fail(message: str, code: int = EXIT_USER_ERROR):
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
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
    """Results go to stdout (progress and messages go to stderr). Piped, the width is what the
    content needs, so file names are never cut, and tables lose their box-drawing frame (ASCII
    rules instead) so a redirected output reads as plain lines."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    out = Console(width=None if sys.stdout.isatty() else 100_000, highlight=False)
    if isinstance(renderable, Table) and not out.is_terminal:
        renderable.box, renderable.safe_box = box.ASCII2, True
    out.print(renderable)


def shown(path) -> str:
    """A file name as text that can always be printed: bytes that are not UTF-8 as \\xNN."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def folder_name(name: str | None, root: Path, option: str = "--name") -> str | None:
    """A run or classifier name is one visible folder name under --root: never a path that
    leaves it, never hidden (hidden folders are work in progress)."""
    if name is None:
        return None
    if not name.strip() or name in (".", "..") or name.startswith(".") or "/" in name or os.sep in name \
            or "\0" in name:
        raise UserError(f"{option} {name!r}: give a plain folder name (no '/', not hidden, not '..'); "
                        f"it goes under {root}/")
    return name


ALLOW_OUTSIDE_HELP = "Read manifest rows whose paths leave the folder of the manifest (absolute or ../ paths)."
