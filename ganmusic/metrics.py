"""Musical metrics over note lists (`encoding.Note`): plain functions, tested on hand-made input."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ganmusic.encoding import Note


def melody_pitches(notes: Sequence[Note]) -> np.ndarray:
    """The pitch sequence in time order (the highest note of a chord first)."""
    ordered = sorted(notes, key=lambda n: (n.onset, -n.pitch))
    return np.array([n.pitch for n in ordered], dtype=np.int64)


def longest_pitch_run(notes: Sequence[Note]) -> int:
    """Length of the longest run of consecutive notes on one pitch (the 'AAAAAAA' failure)."""
    pitches = melody_pitches(notes)
    if len(pitches) == 0:
        return 0
    best = run = 1
    for a, b in zip(pitches[:-1], pitches[1:]):
        run = run + 1 if a == b else 1
        best = max(best, run)
    return best


def same_pitch_repeat_rate(notes: Sequence[Note]) -> float:
    """Share of consecutive note pairs that repeat the pitch."""
    pitches = melody_pitches(notes)
    if len(pitches) < 2:
        return 0.0
    return float(np.mean(pitches[1:] == pitches[:-1]))


def summary(notes: Sequence[Note], steps_per_beat: int, tempo: float) -> dict:
    """What `ganmusic sample` prints per sample."""
    if not notes:
        return {"notes": 0, "seconds": 0.0, "beats": 0.0, "pitch_low": None, "pitch_high": None,
                "longest_pitch_run": 0, "same_pitch_repeat_rate": 0.0}
    end = max(n.onset + n.duration for n in notes)
    pitches = [n.pitch for n in notes]
    return {
        "notes": len(notes),
        "beats": end / steps_per_beat,
        "seconds": end / steps_per_beat * 60.0 / tempo,
        "pitch_low": int(min(pitches)),
        "pitch_high": int(max(pitches)),
        "longest_pitch_run": longest_pitch_run(notes),
        "same_pitch_repeat_rate": same_pitch_repeat_rate(notes),
    }
