"""One base class for every error the library reports to a user as one line.

Each module keeps its own subclass (`CorpusError`, `MidiError`, `RunError`, ...) so callers can
tell them apart; the CLI catches `GanmusicError` in one place, prints its message and exits with
its `exit_code`. Messages name files and settings, never CLI flags: a notebook user typed none.
"""

from __future__ import annotations


class GanmusicError(ValueError):
    """A problem with the user's input or files, with a one-line reason."""

    exit_code = 2


class ConfigError(GanmusicError):
    """A configuration value out of range or unknown."""


class TrainingDiverged(GanmusicError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""

    exit_code = 1
