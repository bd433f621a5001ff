import json

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from conftest import write_midi
from ganmusic import encoding as enc
from ganmusic.encoding import BOS, EOS, EncodingConfig, Grammar, Note, Vocab

CONFIG = EncodingConfig()
VOCAB = Vocab(CONFIG)
GRAMMAR = Grammar(VOCAB)


def walk_grammar(choices, grammar=GRAMMAR):
    """A grammatical sequence: BOS, one legal token per choice, completed to a note, EOS."""
    tokens = [BOS]
    state = grammar.initial_state()
    for c in choices:
        legal = np.flatnonzero(grammar.mask(state))
        legal = legal[legal != EOS]
        t = int(legal[c % len(legal)])
        tokens.append(t)
        state = grammar.step(state, t)
    while not grammar.mask(state)[EOS]:
        t = int(np.flatnonzero(grammar.mask(state))[0])
        tokens.append(t)
        state = grammar.step(state, t)
    return np.array(tokens + [EOS], dtype=np.int32)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**6), max_size=120))
def test_encode_decode_roundtrip_on_grammatical_sequences(choices):
    tokens = walk_grammar(choices)
    assert GRAMMAR.is_grammatical(tokens)
    again = enc.notes_to_tokens(enc.tokens_to_notes(tokens, VOCAB), VOCAB)
    np.testing.assert_array_equal(again, tokens)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10**6), max_size=60), st.floats(40, 300))
def test_roundtrip_through_a_midi_file(tmp_path_factory, choices, tempo):
    tokens = walk_grammar(choices)
    notes = enc.tokens_to_notes(tokens, VOCAB)
    # Leading silence is dropped by design (tested elsewhere), and MIDI cannot hold two
    # overlapping notes of one pitch: the writer cuts the first (tested below).
    assume(not notes or notes[0].onset < CONFIG.steps_per_beat)
    assume(not any(a.pitch == b.pitch and b.onset < a.onset + a.duration
                   for i, a in enumerate(notes) for b in notes[i + 1:]))
    path = tmp_path_factory.mktemp("rt") / "x.mid"
    enc.decode_to_midi(tokens, CONFIG, tempo=tempo).write(str(path))
    np.testing.assert_array_equal(enc.encode_file(path, CONFIG), tokens)


note_lists = st.lists(st.tuples(st.integers(0, 24), st.integers(1, 24), st.integers(21, 108)),
                      min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(note_lists, st.floats(-0.4, 0.4))
def test_decode_encode_equals_quantized_notes(gaps_durs_pitches, jitter):
    """Off-grid notes come back snapped to the nearest grid step (independent reference)."""
    spb = CONFIG.steps_per_beat
    onset, notes_beats = 0, []
    for gap, dur, pitch in gaps_durs_pitches:
        onset += gap
        # Expressive timing: up to 0.4 of a step off the grid.
        notes_beats.append(((onset + jitter) / spb + 1.0, dur / spb, pitch))
    # Leading silence is dropped in whole beats; seconds -> beats through the tempo map costs a few
    # ulps, so an onset 2e-13 before beat 1 counts as on it, as in the encoder.
    origin = int(np.floor(min(s for s, _, _ in notes_beats) + 1e-9))
    expected = enc.canonical_notes(
        [Note(int(round(s * spb)) - origin * spb, p, max(int(round(d * spb)), 1)) for s, d, p in notes_beats])
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(0)
    for s, d, p in notes_beats:
        inst.notes.append(pretty_midi.Note(90, p, s * 0.5, (s + d) * 0.5))
    midi.instruments.append(inst)
    got = enc.tokens_to_notes(enc.encode_midi(midi, CONFIG), VOCAB)
    assert got == expected


def test_long_rests_keep_later_notes_on_their_grid_position():
    # A 5.25-beat rest has no exact shift token: the note after it moves earlier, the next is exact.
    notes = [Note(0, 60, 12), Note(63, 62, 6), Note(69, 64, 6)]
    got = enc.tokens_to_notes(enc.notes_to_tokens(notes, VOCAB), VOCAB)
    assert [n.onset for n in got] == [0, 60, 69]


def test_chords_are_stacked_high_to_low_and_grammar_enforces_it():
    notes = [Note(0, 60, 12), Note(0, 64, 12), Note(0, 67, 12), Note(12, 65, 12)]
    tokens = enc.notes_to_tokens(notes, VOCAB)
    assert VOCAB.describe(tokens) == ("BOS SHIFT_0 PITCH_67 DUR_12 SHIFT_0 PITCH_64 DUR_12 "
                                      "SHIFT_0 PITCH_60 DUR_12 SHIFT_12 PITCH_65 DUR_12 EOS")
    state = GRAMMAR.state_after(tokens[:5])  # ... DUR_12 SHIFT_0, previous pitch 67
    legal_pitches = VOCAB.token_value[np.flatnonzero(GRAMMAR.mask(state) & GRAMMAR.is_pitch)]
    assert legal_pitches.max() == 66 and legal_pitches.min() == CONFIG.pitch_min


def test_no_chord_can_start_on_the_lowest_pitch():
    tokens = [BOS, VOCAB.shift_token(0), VOCAB.pitch_token(CONFIG.pitch_min), VOCAB.dur_token(6)]
    mask = GRAMMAR.mask(GRAMMAR.state_after(tokens))
    assert not mask[VOCAB.shift_token(0)] and mask[VOCAB.shift_token(6)] and mask[EOS]


def test_melody_view_keeps_the_highest_note_per_onset():
    cfg = EncodingConfig(melody=True)
    notes = [Note(0, 60, 12), Note(0, 67, 12), Note(12, 62, 6), Note(12, 55, 6)]
    got = enc.tokens_to_notes(enc.notes_to_tokens(notes, Vocab(cfg)), Vocab(cfg))
    assert [n.pitch for n in got] == [67, 62]


def test_any_cut_of_a_sequence_decodes():
    tokens = walk_grammar(list(range(0, 300, 7)))
    for cut in range(len(tokens) + 1):
        notes = enc.tokens_to_notes(tokens[:cut], VOCAB)
        assert len(notes) == (max(cut - 1, 0)) // 3


def test_grammar_mask_is_the_same_in_jax():
    import jax
    import jax.numpy as jnp

    tokens = walk_grammar(list(range(3, 200, 11)))
    states = [GRAMMAR.state_after(tokens[1:i]) for i in range(1, len(tokens))]
    prev = jnp.array([s[0] for s in states])
    pitch = jnp.array([s[1] for s in states])
    got = jax.jit(lambda p, q: GRAMMAR.mask((p, q), xp=jnp))(prev, pitch)
    np.testing.assert_array_equal(np.asarray(got), np.stack([GRAMMAR.mask(s) for s in states]))
    stepped = jax.jit(lambda s, t: GRAMMAR.step(s, t, xp=jnp))(GRAMMAR.initial_state(xp=jnp), tokens[1])
    assert [int(x) for x in stepped] == [int(x) for x in GRAMMAR.state_after(tokens[1:2])]


def test_time_is_in_beats_not_seconds(tmp_path):
    line = [(i * 0.5, 0.5, 60 + i % 5) for i in range(16)]
    slow = enc.encode_file(write_midi(tmp_path / "slow.mid", line, tempo=60), CONFIG)
    fast = enc.encode_file(write_midi(tmp_path / "fast.mid", line, tempo=240), CONFIG)
    np.testing.assert_array_equal(slow, fast)


def test_tempo_changes_are_followed(tmp_path):
    import pretty_midi

    # Write ticks directly: 4 quarter notes at 120 BPM, then 4 at 60 BPM.
    midi = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120)
    midi._tick_scales = [(0, 60.0 / (120 * 480)), (4 * 480, 60.0 / (60 * 480))]
    midi._update_tick_to_time(16 * 480)
    inst = pretty_midi.Instrument(0)
    for beat in range(8):
        start = midi.tick_to_time(beat * 480)
        inst.notes.append(pretty_midi.Note(90, 60 + beat, start, midi.tick_to_time(beat * 480 + 240)))
    midi.instruments.append(inst)
    path = tmp_path / "tempo.mid"
    midi.write(str(path))
    notes = enc.tokens_to_notes(enc.encode_file(path, CONFIG), VOCAB)
    assert [n.onset for n in notes] == [12 * b for b in range(8)]
    assert {n.duration for n in notes} == {6}


def test_drums_and_out_of_range_pitches_are_left_out(tmp_path):
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    drums = pretty_midi.Instrument(0, is_drum=True)
    drums.notes.append(pretty_midi.Note(90, 36, 0.0, 0.1))
    piano = pretty_midi.Instrument(0)
    piano.notes += [pretty_midi.Note(90, 60, 0.0, 0.5), pretty_midi.Note(90, 10, 0.5, 1.0)]
    midi.instruments += [drums, piano]
    stats = enc.EncodeStats()
    notes = enc.midi_to_notes(midi, CONFIG, stats)
    assert [n.pitch for n in notes] == [60]
    assert stats.drum_notes == 1 and stats.dropped_out_of_range == 1


def test_config_json_roundtrip_and_unknown_keys():
    cfg = EncodingConfig(steps_per_beat=4, melody=True, coarse_dur_beats=(4, 8))
    assert EncodingConfig.from_json(cfg.to_json()) == cfg
    assert Vocab(EncodingConfig.from_json(cfg.to_json())).size == Vocab(cfg).size
    with pytest.raises(ValueError):
        EncodingConfig.from_dict({**json.loads(cfg.to_json()), "tempo": 120})


def test_unreadable_file_gives_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_text("hello, not midi")
    with pytest.raises(enc.MidiError) as err:
        enc.encode_file(bad, CONFIG)
    assert "\n" not in str(err.value) and "not a readable MIDI file" in str(err.value)


def test_overlapping_notes_of_one_pitch_are_cut_when_written():
    notes = [Note(0, 60, 24), Note(6, 60, 6)]
    midi = enc.notes_to_midi(notes, CONFIG, tempo=120)
    got = sorted((n.start, n.end) for n in midi.instruments[0].notes)
    assert got == [(0.0, 0.25), (0.25, 0.5)]
