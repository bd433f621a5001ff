"""Shared fixtures: small hand-made MIDI files, and the real corpus when it is present."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

# One XLA compilation cache for the test session, its subprocesses included (they inherit the
# environment): the tiny models of many tests compile to the same programs, so each is compiled
# once. Set before anything imports JAX; emptied when the session ends, so no run sees another's.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="ganmusic-tests-xla-")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], True)
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"

REAL_DATA = Path(os.environ.get("GANMUSIC_TEST_DATA",
                                Path(__file__).resolve().parents[1].parent / "shared" / "data" / "jazz-vs-folk"))


def write_midi(path: Path, notes, tempo=120.0, drum=False, program=0):
    """notes: (start_beat, duration_beats, pitch) triples; written by the project's one MIDI writer."""
    from ganmusic import midi_writer
    from ganmusic.encoding import beats_to_midi

    path.parent.mkdir(parents=True, exist_ok=True)
    return midi_writer.write_midi(beats_to_midi(notes, tempo, program=program, drum=drum), path)


def swing_line(seed: int, n: int = 48):
    rng = np.random.default_rng(seed)
    t, out, pitch = 0.0, [], 62
    for i in range(n):
        dur = 2 / 3 if i % 2 == 0 else 1 / 3
        pitch = int(np.clip(pitch + rng.choice([-3, -2, -1, 1, 2, 4]), 50, 80))
        out.append((t, dur * 0.9, pitch))
        t += dur
    return out


def straight_tune(seed: int, n: int = 48):
    rng = np.random.default_rng(seed)
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    return [(i * 0.5, 0.45, int(rng.choice(scale))) for i in range(n)]


def make_tiny_corpus(root: Path) -> Path:
    """A folder-per-label corpus: 6 swung 'jazz' lines and 6 straight 'folk' tunes."""
    for i in range(6):
        write_midi(root / "jazz" / f"swing{i}.mid", swing_line(i))
        write_midi(root / "not_jazz" / f"folk{i}.mid", straight_tune(100 + i))
    return root


def make_tiny_chord_corpus(root: Path) -> Path:
    """`make_tiny_corpus` with chord changes beside every file (`.chords.txt` sidecars)."""
    make_tiny_corpus(root)
    for i, path in enumerate(sorted(root.glob("*/*.mid"))):
        path.with_name(path.stem + ".chords.txt").write_text(["| Dm7 G7 | Cmaj7 | A7 | D7 |", "| F7 | Bb7 |"][i % 2] * 8)
    return root


# The suite's tiny classifier and generator as command-line options: the tests that train through
# the CLI share them, so their programs are compiled once per session (the cache above).
TINY_CLASSIFIER = ["--window", "24", "--steps", "6", "--batch-size", "8", "--hidden", "8", "--layers", "2", "--seed", "1"]
TINY_GAN = ["--layers", "16", "--embed-dim", "8", "--window", "24", "--batch-size", "4", "--lr", "5e-3", "--calibrate", "0"]


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    return make_tiny_corpus(tmp_path / "corpus")


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def real_corpus_path() -> Path:
    if not (REAL_DATA / "manifest.csv").is_file():
        pytest.skip(f"real corpus not found at {REAL_DATA} (set GANMUSIC_TEST_DATA to jazz-vs-folk/)")
    return REAL_DATA


@pytest.fixture(scope="session")
def real_corpus(real_corpus_path, tmp_path_factory):
    from ganmusic.data import load_corpus

    return load_corpus(real_corpus_path, cache_dir=tmp_path_factory.mktemp("real-cache"), progress=False)


class CliResult:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_cli(*args, cwd=None, env=None) -> CliResult:
    """Run `ganmusic ARGS` in this process (JAX is imported and compiled once for the whole
    test session); exit codes and stdout/stderr as a user would see them."""
    from typer.testing import CliRunner

    from ganmusic.cli import app

    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    finally:
        os.chdir(old)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)
