"""The pretrained default shipped inside the package: a small classifier and a chord-reading generator.

`ganmusic score` and `ganmusic sample` fall back to them when no classifier or run is given, so
both work right after `pip install` (the generator reads chords: `ganmusic sample --changes`
works with it, and without changes it plays over `changes.DEFAULT_FORM`). They were trained by
`scripts/train_default.py` on the lead-sheets corpus's Weimar Jazz Database solos (ODbL 1.0)
against its POP909 pop melodies (MIT); `about.json` says how, with their held-out results. The
folders are package data and are only read (orbax managers opened read-only; samples go
elsewhere), so an installed, read-only site-packages works.
"""

from __future__ import annotations

import json
from pathlib import Path

from ganmusic.errors import GanmusicError

ROOT = Path(__file__).resolve().parent / "pretrained"
CLASSIFIER = ROOT / "classifier"
GENERATOR = ROOT / "generator"
NAME = "the pretrained default"


def _present(path: Path, what: str) -> Path:
    if not (path / "config.json").is_file():
        raise GanmusicError(f"{path}: {NAME} {what} is missing from this installation "
                            "(rebuild it with scripts/train_default.py)")
    return path


def classifier_path() -> Path:
    """The shipped classifier folder (a classifier folder like any `classifiers/NAME`)."""
    return _present(CLASSIFIER, "classifier")


def generator_path() -> Path:
    """The shipped generator folder (a run folder holding `config.json` and `best/` only)."""
    return _present(GENERATOR, "generator")


def is_pretrained(path: str | Path) -> bool:
    """Whether `path` is one of the shipped folders."""
    try:
        return Path(path).resolve() in (CLASSIFIER, GENERATOR)
    except OSError:
        return False


def about() -> dict:
    """What the default was trained on and how (`about.json`); {} if absent."""
    try:
        return json.loads((ROOT / "about.json").read_text())
    except (OSError, ValueError):
        return {}


def describe(what: str) -> str:
    """One line for the output: which model this is and what it learned from."""
    if what == "classifier":
        return f"{NAME} classifier (timing-blind), trained on Weimar Jazz Database solos against POP909 pop melodies"
    return (f"{NAME} generator (an LSTM that reads chords, trained by maximum likelihood on Weimar Jazz Database "
            "solos over their changes, then calibrated)")
