"""The two-sample realism test: it tells distinct distributions apart and not equal ones."""

import numpy as np
import pytest

from ganmusic import realism
from ganmusic.encoding import Note

SPB = 12


def swing_piece(rng, n=96):
    """Swung eighths moving by small steps."""
    notes, t, pitch = [], 0, 64
    for i in range(n):
        dur = 8 if i % 2 == 0 else 4
        pitch = int(np.clip(pitch + rng.choice([-2, -1, 1, 2]), 55, 80))
        notes.append(Note(t, pitch, dur))
        t += dur
    return notes


def random_piece(rng, n=96):
    """Straight sixteenths and quarters with wide random leaps."""
    notes, t = [], 0
    for _ in range(n):
        dur = int(rng.choice([3, 12]))
        notes.append(Note(t, int(rng.integers(40, 90)), dur))
        t += dur
    return notes


def chunks_of(pieces, name, n=32):
    return [c for k, p in enumerate(pieces) for c in realism.cut_chunks(p, n, f"{name}{k}")]


def test_cut_chunks_whole_chunks_only():
    notes = [Note(k, 60, 1) for k in range(70)]
    chunks = realism.cut_chunks(notes, 32, "f", chord_masks=np.arange(70), chord_roots=np.zeros(70))
    assert [len(c.notes) for c in chunks] == [32, 32] and chunks[1].notes[0].onset == 32
    assert chunks[1].chord_masks[0] == 32 and all(c.group == "f" for c in chunks)


def test_distinct_distributions_are_told_apart():
    rng = np.random.default_rng(0)
    real = chunks_of([swing_piece(rng) for _ in range(30)], "real")
    fake = chunks_of([random_piece(rng) for _ in range(30)], "gen")
    result = realism.two_sample_test(real, fake, SPB, seed=0)
    assert result["accuracy"] > 0.95
    assert result["chunks_per_side"] == 90 and result["groups"] == [30, 30] and not result["chords"]


def test_same_distribution_is_near_chance():
    rng = np.random.default_rng(1)
    a = chunks_of([swing_piece(rng) for _ in range(40)], "a")
    b = chunks_of([swing_piece(rng) for _ in range(40)], "b")
    assert abs(realism.two_sample_test(a, b, SPB, seed=0)["accuracy"] - 0.5) < 0.12
    floor = realism.real_vs_real(a + b, SPB, seed=0)
    assert abs(floor["accuracy"] - 0.5) < 0.12 and floor["splits"] == realism.FLOOR_SPLITS


def test_chunks_of_one_file_stay_in_one_fold():
    """Each file has its own key signature of pitches: with chunks of a file on both sides of a
    split the classifier would memorise files; grouped folds cannot, so equal files look equal."""
    rng = np.random.default_rng(2)
    pieces = []
    for k in range(40):
        base = 40 + 2 * k  # a register per file: identifies the file, not the side
        pieces.append([Note(6 * i, base + int(rng.integers(0, 5)), 6) for i in range(96)])
    a = chunks_of(pieces[0::2], "a")
    b = chunks_of(pieces[1::2], "b")
    assert abs(realism.two_sample_test(a, b, SPB, seed=0)["accuracy"] - 0.5) < 0.15


def test_chord_features_only_when_both_sides_have_chords():
    rng = np.random.default_rng(3)
    cmaj = sum(1 << p for p in (0, 4, 7))
    inside, outside = [], []
    def melody():
        return [Note(6 * i, int(rng.choice([60, 64, 67, 72])), 6) for i in range(64)]

    for k in range(20):
        inside += realism.cut_chunks(melody(), 32, f"in{k}", np.full(64, cmaj), np.zeros(64, dtype=int))
        # Melodies of the same kind over a chord a semitone up: no note is a chord tone.
        outside += realism.cut_chunks(melody(), 32, f"out{k}", np.full(64, cmaj << 1 | (cmaj >> 11)),
                                      np.ones(64, dtype=int))
    with_chords = realism.two_sample_test(inside, outside, SPB, seed=0)
    assert with_chords["chords"] and with_chords["accuracy"] > 0.95
    no_chords = [realism.Chunk(c.notes, c.group) for c in outside]
    without = realism.two_sample_test(inside, no_chords, SPB, seed=0)
    assert not without["chords"] and abs(without["accuracy"] - 0.5) < 0.2  # the melodies alone are alike


def test_too_few_groups_gives_no_accuracy():
    rng = np.random.default_rng(4)
    one = chunks_of([swing_piece(rng)], "a")
    other = chunks_of([random_piece(rng) for _ in range(5)], "b")
    assert realism.two_sample_test(one, other, SPB)["accuracy"] is None
    assert realism.two_sample_test([], other, SPB)["accuracy"] is None
