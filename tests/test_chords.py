"""Chord symbols, timelines, bars and the per-token chord conditioning."""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REAL_DATA
from ganmusic import chord_symbols as cs
from ganmusic import chords as ch
from ganmusic import data
from ganmusic import encoding as enc
from ganmusic import lead_sheets as ls
from ganmusic import parsing, windows
from ganmusic.chord_symbols import ChordSymbolError, parse_chord
from ganmusic.chords import ChordTimeline

LEAD_SHEETS = REAL_DATA.parent / "lead-sheets"
CONFIG = enc.EncodingConfig()
VOCAB = enc.Vocab(CONFIG)
README_QUALITIES = [
    "", "m", "7", "maj7", "m7", "m7b5", "dim", "dim7", "aug", "aug7", "augMaj7", "6", "m6", "69",
    "m69", "sus2", "sus4", "7sus4", "9sus4", "13sus4", "mMaj7", "9", "m9", "maj9", "11", "m11",
    "13", "m13", "7b9", "7#9", "7#11", "7b13", "7b9b13", "7#9#11", "7alt", "maj7#11", "add9",
    "madd9"]


def pcs(symbol: str) -> list[int]:
    return sorted(parse_chord(symbol).pcs)


# ---------------------------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol, root, tones, bass", [
    ("C", 0, [0, 4, 7], 0),
    ("Dm7", 2, [2, 5, 9, 0], 2),
    ("G7", 7, [7, 11, 2, 5], 7),
    ("Bbmaj7", 10, [10, 2, 5, 9], 10),
    ("F#m7b5", 6, [6, 9, 0, 4], 6),
    ("Ebdim7", 3, [3, 6, 9, 0], 3),
    ("Abaug", 8, [8, 0, 4], 8),
    ("AbaugMaj7/C", 8, [8, 0, 4, 7], 0),
    ("C7alt", 0, [0, 4, 10, 1, 3, 6, 8], 0),
    ("C13sus4", 0, [0, 5, 7, 10, 2, 9], 0),
    ("C7b9b13", 0, [0, 4, 7, 10, 1, 8], 0),
    ("C69", 0, [0, 4, 7, 9, 2], 0),
    ("CmMaj7", 0, [0, 3, 7, 11], 0),
    ("Dm7/G", 2, [2, 5, 9, 0, 7], 7),  # the bass sounds: it is in the pitch-class set
    ("C:min7/b3", 0, [0, 3, 7, 10], 3),  # Harte
    ("Bb:hdim7", 10, [10, 1, 4, 8], 10),
    ("D:(1,b3,5)", 2, [2, 5, 9], 2),
    ("G:7(b9,*5)", 7, [7, 11, 5, 8], 7),
    ("C/5", 0, [0, 4, 7], 7),
])
def test_symbols_parse_to_root_pitch_classes_and_bass(symbol, root, tones, bass):
    chord = parse_chord(symbol)
    assert (chord.root, sorted(chord.pcs), chord.bass) == (root, sorted(tones), bass)
    assert chord.pitch_classes == sum(1 << t for t in set(tones))
    assert chord.symbol == symbol


@pytest.mark.parametrize("variant, canonical", [
    ("C-7", "Cm7"), ("Cmin7", "Cm7"), ("Cmi7", "Cm7"), ("C:min7", "Cm7"),
    ("CΔ7", "Cmaj7"), ("CΔ", "Cmaj7"), ("C^7", "Cmaj7"), ("CM7", "Cmaj7"), ("CMaj7", "Cmaj7"),
    ("C:maj7", "Cmaj7"), ("Cø7", "Cm7b5"), ("Cø", "Cm7b5"), ("Cm7-5", "Cm7b5"), ("Cm7(b5)", "Cm7b5"),
    ("C:hdim7", "Cm7b5"), ("Co7", "Cdim7"), ("C°7", "Cdim7"), ("Co", "Cdim"), ("C+", "Caug"),
    ("C7+", "Caug7"), ("C+7", "Caug7"), ("C7#5", "Caug7"), ("C7(b9)", "C7b9"), ("C7(#9,#11)", "C7#9#11"),
    ("C-Δ7", "CmMaj7"), ("Cm(maj7)", "CmMaj7"), ("C6/9", "C69"), ("C7sus", "C7sus4"), ("Csus", "Csus4"),
    ("C-", "Cm"), ("C:min", "Cm"), ("C:maj", "C"), ("C♯m7", "C#m7"), ("D♭7", "Db7"), ("CMaj", "C"),
    ("C-9", "Cm9"), ("Cadd2", "Cadd9"), ("C:sus4", "Csus4"),
])
def test_common_variants_mean_the_same_chord(variant, canonical):
    a, b = parse_chord(variant), parse_chord(canonical)
    assert (a.root, a.pitch_classes, a.bass) == (b.root, b.pitch_classes, b.bass)
    assert a.quality == b.quality


@pytest.mark.parametrize("symbol", ["NC", "N.C.", "N", "X", "nc"])
def test_no_chord_symbols(symbol):
    assert parse_chord(symbol) is None
    assert cs.try_parse(symbol) == (None, True)


@pytest.mark.parametrize("symbol", ["", "H7", "Cfoo", "C7x", "C--", "C:bogus", "c7", "C7/Q", "7"])
def test_unreadable_symbols_raise_a_value_error_naming_the_symbol(symbol):
    with pytest.raises(ChordSymbolError) as err:
        parse_chord(symbol)
    assert isinstance(err.value, ValueError) and repr(symbol) in str(err.value)
    assert cs.try_parse(symbol) == (None, False)


def test_every_readme_quality_parses_on_every_root_with_its_own_name():
    for q in README_QUALITIES:
        for root in cs.NOTE_NAMES:
            chord = parse_chord(root + q)
            assert chord.root == cs.NOTE_NAMES.index(root)
            # Canonical names, except where two spellings are one set of tones.
            if q not in ("11",):
                assert chord.quality == (q or "maj"), (root + q, chord.quality)


def test_chord_from_mask_round_trips_conditioning_values():
    for symbol in ["Cm7", "F#7alt", "Bbmaj9", "E:(1,b3,b7)", "G7sus4"]:
        c = parse_chord(symbol)
        back = cs.chord_from_mask(c.root, c.pitch_classes)
        assert (back.root, back.pitch_classes) == (c.root, c.pitch_classes)
    assert cs.chord_from_mask(-1, 0) is None


# ---------------------------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------------------------

VARIANT_QUALITIES = README_QUALITIES + ["-7", "min7", "Δ7", "ø7", "o7", "+", "7(b9)", "7(b9,#11)",
                                        "m(maj7)", "M7", "6/9", "sus", "7sus", "-Δ7", ":min7", ":hdim7",
                                        ":maj6", ":(1,3,b7)", "5", "7b5", "maj7#5", "9(#11)"]
LETTERS = "CDEFGAB"
root_names = st.builds(lambda letter, acc: letter + acc, st.sampled_from(LETTERS),
                       st.sampled_from(["", "b", "#", "bb", "##", "♭", "♯"]))
symbols = st.builds(lambda r, q, bass: r + q + (("/" + bass) if bass and not q.startswith(":") else ""),
                    st.sampled_from(cs.NOTE_NAMES), st.sampled_from(VARIANT_QUALITIES),
                    st.one_of(st.none(), st.sampled_from(cs.NOTE_NAMES)))


@settings(max_examples=300, deadline=None)
@given(symbols, st.integers(-24, 24))
def test_transposing_a_symbol_transposes_its_chord(symbol, k):
    chord = parse_chord(symbol)
    moved = parse_chord(cs.transpose_symbol(symbol, k))
    assert moved.root == (chord.root + k) % 12
    assert moved.bass == (chord.bass + k) % 12
    assert moved.pcs == {(p + k) % 12 for p in chord.pcs}
    assert moved.quality == chord.quality
    assert chord.transpose(k) == moved
    assert cs.rotate_mask(chord.pitch_classes, k) == moved.pitch_classes


@settings(max_examples=300, deadline=None)
@given(root_names, st.sampled_from(VARIANT_QUALITIES))
def test_enharmonic_spellings_are_one_chord(root, quality):
    chord = parse_chord(root + quality)
    pc = cs.LETTER_PC[root[0]] + sum(cs.ACCIDENTAL[c] for c in root[1:])
    plain = parse_chord(cs.NOTE_NAMES[pc % 12] + quality)
    assert (chord.root, chord.pitch_classes, chord.bass) == (plain.root, plain.pitch_classes, plain.bass)
    # And the other way round: the sharp and the flat spelling of a black key agree.
    for other in {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}.items():
        a, b = parse_chord(other[0] + quality), parse_chord(other[1] + quality)
        assert (a.root, a.pitch_classes) == (b.root, b.pitch_classes)


def midi_bytes(midi: pretty_midi.PrettyMIDI) -> bytes:
    buf = io.BytesIO()
    midi.write(buf)
    return buf.getvalue()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 64 * 12), st.one_of(symbols, st.just("NC"))), min_size=1, max_size=12),
       st.sampled_from([60.0, 97.5, 120.0, 233.0]))
def test_chords_round_trip_through_midi_text_events(changes, tempo):
    timeline = ChordTimeline.from_changes((step / 12, s) for step, s in changes)
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    ch.write_chords(midi, timeline, tempo)
    back, unparsed = ch.read_chords(enc.midi_from_bytes(midi_bytes(midi)))
    assert not unparsed
    assert back.texts == timeline.texts
    np.testing.assert_array_equal(back.steps(12), timeline.steps(12))
    assert back.chords == timeline.chords


# ---------------------------------------------------------------------------------------------
# Timelines, bars, sources
# ---------------------------------------------------------------------------------------------


def test_timeline_lookup_next_and_merging():
    t = ChordTimeline.from_changes([(4, "G7"), (0, "Dm7"), (8, "Cmaj7"), (10, "Cmaj7"), (12, "NC")])
    assert t.texts == ("Dm7", "G7", "Cmaj7", "NC")  # sorted, the repeated Cmaj7 merged
    np.testing.assert_array_equal(t.at([-1, 0, 3.9, 4, 11, 20]), [-1, 0, 0, 1, 2, 3])
    np.testing.assert_array_equal(t.next_after([-1, 0, 11]), [0, 1, 3])
    assert t.chord_at(5).symbol == "G7" and t.chord_at(13) is None and t.chord_at(-2) is None
    shifted = t.shift(-6)
    assert shifted.texts == ("G7", "Cmaj7", "NC") and shifted.beats.tolist() == [0.0, 2.0, 6.0]


def test_bar_format_and_beat_format_of_changes():
    t, bad = ch.parse_changes("| Dm7 G7 | Cmaj7 | % |\n# a comment\nF7 / Bb7 / | Xyz |")
    assert t.texts == ("Dm7", "G7", "Cmaj7", "F7", "Bb7", "Xyz")
    assert t.beats.tolist() == [0, 2, 4, 12, 14, 16]
    assert bad == Counter({"Xyz": 1}) and t.chords[-1] is None
    # Bars follow the given bar lines (3/4 here) and go on at the last bar's length.
    t, _ = ch.parse_changes("C | F G | C |", bars=np.array([0.0, 3.0]))
    assert t.beats.tolist() == [0, 3, 4.5, 6]
    t, bad = ch.parse_changes("0 Dm7\n4 G7\n8.5 C:maj7\n")
    assert t.beats.tolist() == [0, 4, 8.5] and not bad


def write_lead_sheet(path: Path, notes, changes, tempo=120.0, kind="text", time_signatures=()):
    """notes: (beat, dur, pitch); changes: (beat, text), written as text/marker/lyric events
    (UTF-8 bytes, as most tools write `Δ`)."""
    changes = [(b, s.encode("utf-8").decode("latin-1")) for b, s in changes]
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    inst = pretty_midi.Instrument(0)
    spb = 60.0 / tempo
    inst.notes += [pretty_midi.Note(90, p, s * spb, (s + d) * spb) for s, d, p in notes]
    midi.instruments.append(inst)
    midi.time_signature_changes += [pretty_midi.TimeSignature(n, d, b * spb) for b, n, d in time_signatures]
    if kind == "lyric":
        midi.lyrics += [pretty_midi.Lyric(s, b * spb) for b, s in changes]
    elif kind == "text":
        midi.text_events += [pretty_midi.Text(s, b * spb) for b, s in changes]
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.write(str(path))
    if kind == "marker":  # pretty_midi cannot write markers: add them with mido
        import mido

        mf = mido.MidiFile(str(path))
        track = mido.MidiTrack()
        last = 0
        for b, s in changes:
            tick = int(round(b * mf.ticks_per_beat))
            track.append(mido.MetaMessage("marker", text=s, time=tick - last))
            last = tick
        mf.tracks.append(track)
        mf.save(str(path))
    return path


LINE = [(i * 0.5, 0.5, 60 + (i * 5) % 12) for i in range(32)]  # 16 beats of eighths
CHANGES = [(0, "Dm7"), (4, "G7"), (8, "Cmaj7"), (12, "NC")]


@pytest.mark.parametrize("kind", ["text", "marker", "lyric"])
def test_chords_are_read_from_text_marker_or_lyric_events(tmp_path, kind):
    path = write_lead_sheet(tmp_path / "song.mid", LINE, CHANGES, kind=kind)
    timeline, unparsed = ch.read_chords(enc.load_midi(path), path)
    assert timeline.texts == ("Dm7", "G7", "Cmaj7", "NC") and not unparsed
    np.testing.assert_allclose(timeline.beats, [0, 4, 8, 12], atol=1e-6)


def test_lyrics_that_are_words_do_not_hide_text_chords(tmp_path):
    path = write_lead_sheet(tmp_path / "song.mid", LINE, CHANGES, kind="text")
    midi = enc.load_midi(path)
    midi.lyrics = [pretty_midi.Lyric(w, i * 0.5) for i, w in enumerate(["hold", "me", "close", "Am"])]
    src = ch.read_chord_source(midi, path)
    assert src.source == "text" and src.timeline.texts[0] == "Dm7"


@pytest.mark.parametrize("text", ["0 Dm7\n4 G7\n8 Cmaj7\n12 NC\n", "| Dm7 | G7 | Cmaj7 | NC |\n"])
def test_sidecar_chords_where_the_file_has_none(tmp_path, text):
    path = write_lead_sheet(tmp_path / "song.mid", LINE, [], kind="none")
    ch.sidecar_path(path).write_text(text)
    timeline, unparsed = ch.read_chords(enc.load_midi(path), path)
    assert timeline.texts == ("Dm7", "G7", "Cmaj7", "NC") and not unparsed
    np.testing.assert_allclose(timeline.beats, [0, 4, 8, 12])


def test_bar_starts_follow_time_signatures():
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    assert ch.bar_starts(midi, 10).tolist() == [0, 4, 8]  # 4/4 where none is given
    midi.time_signature_changes = [pretty_midi.TimeSignature(3, 4, 0.0), pretty_midi.TimeSignature(6, 8, 3.0)]
    # 3/4 bars at 0, 3 then 6/8 (3 beats) from beat 6 (3 s at 120 BPM)
    assert ch.bar_starts(midi, 13).tolist() == [0, 3, 6, 9, 12]
    midi.time_signature_changes = [pretty_midi.TimeSignature(5, 4, 2.0)]  # 4/4 before the first
    assert ch.bar_starts(midi, 15).tolist() == [0, 4, 9, 14]


# ---------------------------------------------------------------------------------------------
# Conditioning
# ---------------------------------------------------------------------------------------------


def test_every_token_of_a_note_gets_the_chord_at_its_onset_and_the_next_one(tmp_path):
    path = write_lead_sheet(tmp_path / "song.mid", LINE, CHANGES, time_signatures=[(0, 4, 4)])
    lead = ls.encode_lead_sheet(enc.load_midi(path), CONFIG)
    tokens, cond = lead.tokens, lead.cond
    assert cond.shape == (len(tokens), ls.COND_SIZE) and cond.dtype == np.int16
    np.testing.assert_array_equal(cond[0], ls.NO_COND)
    np.testing.assert_array_equal(cond[-1], ls.NO_COND)
    dm7, g7, cmaj7 = parse_chord("Dm7"), parse_chord("G7"), parse_chord("Cmaj7")
    for i, (beat, _, _) in enumerate(LINE):
        rows = cond[1 + 3 * i : 4 + 3 * i]
        assert (rows == rows[0]).all()  # SHIFT, PITCH and DUR of a note: one row
        cur, nxt = [(dm7, g7), (g7, cmaj7), (cmaj7, None), (None, None)][int(beat // 4)]
        assert rows[0, ls.ROOT] == (cur.root if cur else -1)
        assert rows[0, ls.MASK] == (cur.pitch_classes if cur else 0)
        assert rows[0, ls.NEXT_ROOT] == (nxt.root if nxt else -1)
        assert rows[0, ls.BAR_STEP] == round((beat % 4) * 12) and rows[0, ls.BAR_STEPS] == 48
        assert rows[0, ls.TO_NEXT] == (round((4 - beat % 4) * 12) if beat < 12 else -1)
    assert lead.info["notes"] == 32 and lead.info["notes_with_chord"] == 24
    assert lead.info["notes_with_symbol"] == 24 and lead.info["source"] == "text"
    feats = ls.chord_features(cond, 12)
    assert feats.shape == (len(tokens), ls.feature_size(12)) and feats.dtype == np.float32
    assert feats[1, :12].argmax() == 2 and feats[0].sum() == 0


def test_bar_numbers_count_empty_bars(tmp_path):
    notes = [(0.5, 1, 60), (3, 1, 62), (4, 1, 64), (13, 1, 65), (13.5, 0.5, 67)]  # bars 0, 0, 1, 3, 3
    path = write_lead_sheet(tmp_path / "song.mid", notes, [], kind="none")
    lead = ls.encode_lead_sheet(enc.load_midi(path), CONFIG)
    bars = ls.bar_numbers(lead.tokens, lead.cond, VOCAB)
    assert bars[0] == -1 and bars[-1] == -1
    assert bars[1:-1:3].tolist() == [0, 0, 1, 3, 3]
    steps, roots, masks = ChordTimeline.from_changes([(0, "C"), (2, "NC")]).arrays(12)
    assert steps.tolist() == [0, 24] and roots.tolist() == [0, -1] and masks.tolist() == [0b10010001, 0]


def test_files_without_chords_get_no_chord_rows_and_still_bars(tmp_path):
    path = write_lead_sheet(tmp_path / "song.mid", LINE, [], kind="none")
    lead = ls.encode_lead_sheet(enc.load_midi(path), CONFIG)
    assert (lead.cond[:, ls.ROOT] == -1).all() and (lead.cond[:, ls.MASK] == 0).all()
    assert lead.info["source"] == "none" and lead.info["notes_with_chord"] == 0
    assert lead.cond[1:-1, ls.BAR_STEPS].min() == 48


def test_encode_decode_round_trips_tokens_and_chords(tmp_path):
    # A pickup: the first note on beat 2.5, chords from beat 0; tempo not 120.
    notes = [(2.5 + i * 0.5, 0.5, 62 + i % 7) for i in range(40)]
    changes = [(0, "C-7"), (4, "F7(b9)"), (8, "BbΔ7"), (14, "Eø7/Bb"), (18, "NC"), (20, "A7alt")]
    path = write_lead_sheet(tmp_path / "song.mid", notes, changes, tempo=143.0)
    first = ls.encode_lead_sheet(enc.load_midi(path), CONFIG)
    out = tmp_path / "decoded.mid"
    enc.decode_to_midi(first.tokens, CONFIG, tempo=97.0, chords=first.timeline).write(str(out))
    second = ls.encode_lead_sheet(enc.load_midi(out), CONFIG)
    np.testing.assert_array_equal(second.tokens, first.tokens)
    chord_cols = [ls.ROOT, ls.MASK, ls.NEXT_ROOT, ls.NEXT_MASK, ls.TO_NEXT]
    np.testing.assert_array_equal(second.cond[:, chord_cols], first.cond[:, chord_cols])
    assert second.timeline.texts == first.timeline.texts  # symbols exactly as written
    np.testing.assert_array_equal(second.timeline.beats, first.timeline.beats)
    assert first.timeline.texts[0] == "C-7" and first.timeline.beats[0] == 0  # sounding at the origin


def test_transposing_conditioning_moves_chords_with_the_notes():
    cond = np.array([[0, parse_chord("Cmaj7").pitch_classes, 7, parse_chord("G7").pitch_classes, 3, 48, 5],
                     list(ls.NO_COND)], dtype=np.int32)
    up = ls.transpose_conditioning(cond, 3)
    assert up[0, ls.ROOT] == 3 and up[0, ls.MASK] == parse_chord("Ebmaj7").pitch_classes
    assert up[0, ls.NEXT_ROOT] == 10 and up[0, ls.NEXT_MASK] == parse_chord("Bb7").pitch_classes
    np.testing.assert_array_equal(up[0, 4:], cond[0, 4:])
    np.testing.assert_array_equal(up[1], ls.NO_COND)
    down = ls.transpose_conditioning(np.stack([cond, cond]), np.array([-1, 13]))
    assert down[0, 0, ls.ROOT] == 11 and down[1, 0, ls.ROOT] == 1


# ---------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------


def make_chord_corpus(root: Path) -> Path:
    for i in range(4):
        line = [(b, d, p + i) for b, d, p in LINE]
        write_lead_sheet(root / "jazz" / f"j{i}.mid", line, CHANGES + [(14, "Qx7")])
        write_lead_sheet(root / "not_jazz" / f"f{i}.mid", line, [], kind="none")
    ch.sidecar_path(root / "not_jazz" / "f0.mid").write_text("| C | F | G7 | C |\n")
    return root


def test_corpus_stores_conditioning_and_reports_chords(tmp_path):
    root = make_chord_corpus(tmp_path / "c")
    corpus = data.load_corpus(root, cache_dir=tmp_path / "cache", progress=False)
    cached = data.load_corpus(root, cache_dir=tmp_path / "cache", progress=False)
    assert cached.parsed_now == 0
    np.testing.assert_array_equal(cached.cond, corpus.cond)
    assert cached.chord_info == corpus.chord_info
    assert corpus.cond.shape == (len(corpus.tokens), ls.COND_SIZE)
    summary = data.corpus_summary(corpus)["chords"]
    jazz, other = summary["labels"]["jazz"], summary["labels"]["not_jazz"]
    assert jazz["notes_with_chord"] == 4 * 24 and jazz["notes_with_symbol"] == 4 * 28
    assert other["sources"] == {"sidecar": 1, "none": 3} and other["notes_with_chord"] == 32
    assert jazz["qualities"] == {"m7": 4, "7": 4, "maj7": 4}
    assert summary["unparsed"] == [{"symbol": "Qx7", "count": 4,
                                    "files": {f"jazz/j{i}.mid": 1 for i in range(4)}}]
    # A changed sidecar is a changed file: it is parsed again.
    ch.sidecar_path(root / "not_jazz" / "f0.mid").write_text("| Am | Dm | E7 | Am |\n")
    again = data.load_corpus(root, cache_dir=tmp_path / "cache", progress=False)
    assert again.parsed_now == 1


def test_batches_carry_conditioning_transposed_with_the_notes(tmp_path):
    corpus = data.load_corpus(make_chord_corpus(tmp_path / "c"), cache_dir=tmp_path / "cache",
                              progress=False, split_fractions=(1, 0, 0))
    plain = windows.WindowSampler(corpus, "train", 30, 64, seed=1, transpose=0, positive=True).batch(0)
    moved = windows.WindowSampler(corpus, "train", 30, 64, seed=1, transpose=6, positive=True).batch(0)
    assert moved.cond.shape == (64, 30, ls.COND_SIZE)
    np.testing.assert_array_equal(plain.file_index, moved.file_index)
    is_pitch = VOCAB.token_type[plain.tokens] == enc.T_PITCH
    shift = (moved.tokens - plain.tokens)[is_pitch.any(1)].max(1)  # one shift per window
    assert (shift != 0).any()
    # Pitch relative to the chord root is what transposition keeps.
    has = is_pitch & (plain.cond[..., ls.ROOT] >= 0)
    rel_plain = (VOCAB.token_value[plain.tokens] - plain.cond[..., ls.ROOT]) % 12
    rel_moved = (VOCAB.token_value[moved.tokens] - moved.cond[..., ls.ROOT]) % 12
    np.testing.assert_array_equal(rel_plain[has], rel_moved[has])
    evals = windows.eval_windows(corpus, corpus.indices(), 30)
    assert evals.cond.shape == evals.tokens.shape + (ls.COND_SIZE,)
    pad = ~evals.mask
    assert (evals.cond[pad] == ls.NO_COND).all()


def test_data_inspect_lists_chords_and_unparsed_symbols(tmp_path, monkeypatch):
    import subprocess
    import sys

    root = make_chord_corpus(tmp_path / "c")
    monkeypatch.setenv("GANMUSIC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "200")
    result = subprocess.run([sys.executable, "-m", "ganmusic", "data", "inspect", str(root), "--out",
                             str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    shown = result.stdout  # the tables are results: stdout
    assert "chords per label" in shown and "Qx7" in shown and "jazz/j0.mid" in shown
    import json

    report = json.loads((tmp_path / "out" / "c-inspect.json").read_text())
    assert report["chords"]["unparsed"][0]["symbol"] == "Qx7"


# ---------------------------------------------------------------------------------------------
# The shared lead-sheet corpus
# ---------------------------------------------------------------------------------------------


def text_events(data_bytes: bytes) -> list[str]:
    """Text meta-events (FF 01 len text) of a MIDI file, read straight from its bytes: fast
    enough to cover every file of the corpus in a test."""
    out = []
    for m in re.finditer(rb"\xff\x01", data_bytes):
        i, length = m.end(), 0
        while True:
            b = data_bytes[i]
            length = (length << 7) | (b & 0x7F)
            i += 1
            if b < 0x80:
                break
        out.append(data_bytes[i : i + length].decode("latin1"))
    return out


@pytest.fixture(scope="module")
def lead_sheet_symbols() -> Counter:
    if not (LEAD_SHEETS / "manifest.csv").is_file():
        pytest.skip(f"lead-sheet corpus not found at {LEAD_SHEETS} (set GANMUSIC_TEST_DATA to jazz-vs-folk/ beside it)")
    counts: Counter = Counter()
    for path in sorted(LEAD_SHEETS.glob("*/*.mid")):
        counts.update(text_events(path.read_bytes()))
    return counts


def test_every_chord_symbol_of_the_shared_corpus_parses(lead_sheet_symbols):
    assert sum(lead_sheet_symbols.values()) > 100_000  # the corpus's 144,161 chord events
    failed = {s: n for s, n in lead_sheet_symbols.items() if not cs.try_parse(s)[1]}
    assert failed == {}
    qualities = Counter(parse_chord(s).quality for s in lead_sheet_symbols if parse_chord(s))
    assert set(qualities) <= set(README_QUALITIES) | {"maj"}


def test_shared_lead_sheets_encode_with_their_chords():
    if not (LEAD_SHEETS / "manifest.csv").is_file():
        pytest.skip(f"lead-sheet corpus not found at {LEAD_SHEETS}")
    paths = sorted(LEAD_SHEETS.glob("jazz/*.mid"))[:6] + sorted(LEAD_SHEETS.glob("not_jazz/*.mid"))[::400]
    for path in paths:
        parsed = parsing.parse_midi_bytes(path.read_bytes(), CONFIG, 8)
        assert parsed.reason == "" and parsed.info["source"] == "text" and not parsed.info["unparsed"]
        assert parsed.info["notes_with_chord"] == parsed.info["notes_with_symbol"] > 0
        # Bar positions come from the files' time signatures: every note lies inside its bar.
        rows = parsed.cond[1:-1]
        assert ((rows[:, ls.BAR_STEP] >= 0) & (rows[:, ls.BAR_STEP] < rows[:, ls.BAR_STEPS])).all()
