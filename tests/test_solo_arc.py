"""scripts/solo_arc.py: a solo's notes a beat and mean pitch per stretch of 48 beats from its start."""

import importlib.util
from pathlib import Path

import numpy as np

from ganmusic import encoding as enc

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "solo_arc.py"
spec = importlib.util.spec_from_file_location("solo_arc", SCRIPT)
solo_arc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(solo_arc)
VOCAB = enc.Vocab(enc.EncodingConfig())
SPB = VOCAB.config.steps_per_beat


def steady_then_dense(start_beat: float, beats: int, dense_from: int):
    """Onsets (grid steps): one a beat, two a beat from beat `dense_from` on."""
    beat = np.arange(beats)
    one = beat * SPB
    two = beat[beat >= dense_from] * SPB + SPB // 2
    return np.sort(np.r_[one, two]) + int(start_beat * SPB)


def test_the_arc_counts_notes_a_beat_per_stretch_from_the_first_onset_or_the_given_origin():
    onsets = steady_then_dense(5, 144, 48)
    np.testing.assert_allclose(solo_arc.arc(onsets, SPB, 3), [1, 2, 2])
    np.testing.assert_allclose(solo_arc.arc(onsets, SPB, 4), [1, 2, 2, 0])  # past the end: no notes
    # From the form's start: the 5 silent beats before the first note count in the first stretch.
    np.testing.assert_allclose(solo_arc.arc(onsets, SPB, 2, origin=0), [43 / 48, (5 + 2 * 43) / 48])
    np.testing.assert_array_equal(solo_arc.arc([], SPB, 2), [0, 0])


def test_real_arcs_average_each_stretch_over_the_solos_of_a_length_that_last_through_it():
    def tokens(onsets):
        return enc.notes_to_tokens([enc.Note(int(o), 60, 2) for o in onsets], VOCAB)

    short = tokens(steady_then_dense(0, 60, 0))  # 59 beats: two a beat throughout
    long_a, long_b = tokens(steady_then_dense(2, 300, 96)), tokens(steady_then_dense(0, 300, 1000))
    rows = solo_arc.real_arcs([short, long_a, long_b], VOCAB)
    assert [r["count"] for r in rows] == [1, 0, 0, 2]
    np.testing.assert_allclose(rows[0]["arc"], [2])  # only the stretch it lasts through
    assert rows[1]["arc"] == [] and rows[1]["solos"] == "96-192 beats" and rows[3]["solos"] == "288+ beats"
    np.testing.assert_allclose(rows[3]["arc"], [1, 1, 1.5, 1.5, 1.5, 1.5])


def test_registers_are_each_stretchs_mean_pitch_and_real_arcs_say_how_far_they_move_and_how_scattered_they_start():
    onsets = np.arange(144) * SPB  # one note a beat for 144 beats
    pitches = np.r_[np.full(48, 60), np.full(48, 64), np.full(48, 58)]
    np.testing.assert_allclose(solo_arc.registers(onsets, pitches, SPB, 3), [60, 64, 58])
    np.testing.assert_allclose(solo_arc.registers(onsets[:48], pitches[:48] + np.arange(48) % 2, SPB, 2), [60.5, np.nan])
    assert np.isnan(solo_arc.registers([], [], SPB, 2)).all()

    def tokens(pitch_of_stretch, beats=300):  # one note a beat, each 48-beat stretch at its pitch
        return enc.notes_to_tokens([enc.Note(b * SPB, pitch_of_stretch[min(b // 48, 5)], 2) for b in range(beats)], VOCAB)

    # Two long solos: one steps 4 up then back, one holds; they start 10 semitones apart.
    rows = solo_arc.real_arcs([tokens([60, 64, 60, 64, 60, 64]), tokens([70] * 6)], VOCAB)
    long = rows[3]
    assert long["count"] == 2 and long["register_spread"] == 5.0  # sd of 60 and 70
    np.testing.assert_allclose(long["register_moved"], [0, 2, 0, 2, 0, 2])  # (4 + 0) / 2 where the first moved
    np.testing.assert_allclose(long["arc"], [1] * 6)
    assert rows[0]["register_spread"] is None and rows[0]["register_moved"] == []  # a group with no solos


def test_summary_leaves_out_a_stretch_without_notes_and_stops_where_no_solo_lasts():
    a = (150, np.array([1.0, 0.0, 1.0, 1.0]), np.array([60.0, np.nan, 66.0, np.nan]))  # silent 48-96
    b = (100, np.array([1.0, 1.0, 1.0, 1.0]), np.array([62.0, 63.0, 70.0, np.nan]))
    got = solo_arc.summary([a, b], 4)
    np.testing.assert_allclose(got["arc"], [1, 0.5, 1])  # 144-192: neither lasts through it
    assert got["register_moved"] == [0.0, 1.0, 6.0] and got["register_spread"] == 1.0
