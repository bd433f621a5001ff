"""`sample --changes`: reading forms (chord lines, files, shipped forms), songs over them (melody,
comping, chord symbols, time signatures, read back with pretty_midi and mido), the piano roll's
chord strip, and the CLI's one-line refusals."""

from __future__ import annotations

import json

import mido
import numpy as np
import pretty_midi
import pytest

from conftest import run_cli, swing_line, write_midi
from ganmusic import changes as chg
from ganmusic import encoding as enc
from ganmusic import chords as ch
from ganmusic import plots
from ganmusic.chord_symbols import parse_chord
from ganmusic.configs import EncodingConfig, GeneratorConfig, RunConfig
from ganmusic.encoding import Note, Vocab
from ganmusic.runs import load_run_config
from test_robustness import assert_one_line_error

# The bar: a 12-bar blues in F.
BLUES_F = "F7 | Bb7 | F7 | F7 | Bb7 | Bb7 | F7 | D7 | Gm7 | C7 | F7 D7 | Gm7 C7 |"
BLUES_CHANGES = [(0, "F7"), (4, "Bb7"), (8, "F7"), (16, "Bb7"), (24, "F7"), (28, "D7"), (32, "Gm7"),
                 (36, "C7"), (40, "F7"), (42, "D7"), (44, "Gm7"), (46, "C7")]  # identical neighbours merged


def changes_of(form) -> list[tuple[float, str]]:
    return list(zip(form.timeline.beats.tolist(), form.timeline.texts))


# ---------------------------------------------------------------------------------------------
# Reading forms
# ---------------------------------------------------------------------------------------------


def test_a_chord_line_in_bars_with_repeats_and_meters():
    form = chg.load_form(BLUES_F)
    assert changes_of(form) == BLUES_CHANGES and form.n_bars == 12 and form.beats == 48
    assert form.line() == BLUES_F
    # `/` repeats the chord for one more slot, `%` the whole bar, `3/4` sets the meter from there on.
    form = chg.load_form("3/4 Dm7 / G7 | % | 4/4 Cmaj7 | / |")
    assert form.bars.tolist() == [0, 3, 6, 10, 14]
    assert changes_of(form) == [(0, "Dm7"), (2, "G7"), (3, "Dm7"), (5, "G7"), (6, "Cmaj7")]
    assert form.meters() == [(0, 3), (6, 4)]
    # A long line is a chord line, not a file name; `N.C.` is no chord.
    assert chg.load_form(" | ".join(["Dm7 G7 | Cmaj7"] * 60)).n_bars == 120
    assert changes_of(chg.load_form("N.C. | C7 |")) == [(0, "N.C."), (4, "C7")]
    # The corpus's syntax, common variants and Harte all read.
    form = chg.load_form("C7(b9) | C/E | Cø7 | CΔ7 | C:min7/b3 | C-7 |")
    assert [c.pitch_classes for c in form.timeline.chords] == [parse_chord(s).pitch_classes for s in
                                                              ("C7(b9)", "C/E", "Cø7", "CΔ7", "C:min7/b3", "C-7")]


@pytest.mark.parametrize("text, expected", [
    ("F7 | Hm7 | C7 |", "chord line, bar 2, chord 1: chord symbol 'Hm7'"),
    ("F7 Bb7 | C7 Qx |", "chord line, bar 2, chord 2: chord symbol 'Qx'"),
    ("% | F7 |", "'%' repeats a bar, but no bar comes before it"),
    ("/ F7 | C7 |", "'/' repeats a chord, but no chord comes before it"),
    ("0/4 F7 | C7 |", "'0/4' is not a time signature"),
    ("NC | NC |", "no chord symbols"),
    ("blues-g", "not a file or a shipped form either (shipped: blues-f"),
])
def test_an_unreadable_chord_line_is_one_error_naming_the_symbol_and_its_place(text, expected):
    with pytest.raises(chg.ChangesError) as exc:
        chg.load_form(text)
    assert expected in str(exc.value) and "\n" not in str(exc.value)


def test_a_text_file_of_chord_lines_names_the_line_of_a_bad_symbol(tmp_path):
    path = tmp_path / "tune.txt"
    path.write_text("# my tune\nDm7 G7 | Cmaj7 |\n0/0 | Am7 D7 | Gmaj7 |\n")
    with pytest.raises(chg.ChangesError, match=r"tune.txt, line 3, bar 3: '0/0' is not a time signature"):
        chg.load_form(path)
    path.write_text("# my tune\nDm7 G7 | Cmaj7 |\nAm7 D7 | Gmaj77x |\n")
    with pytest.raises(chg.ChangesError, match=r"tune.txt, line 3, bar 4, chord 1: chord symbol 'Gmaj77x'"):
        chg.load_form(str(path))
    path.write_text("Dm7 G7 | Cmaj7 |\nAm7 D7 | Gmaj7 |\n")
    assert changes_of(chg.load_form(path)) == [(0, "Dm7"), (2, "G7"), (4, "Cmaj7"), (8, "Am7"), (10, "D7"),
                                               (12, "Gmaj7")]
    beat_lines = tmp_path / "beats.txt"
    beat_lines.write_text("0 Dm7\n4 G7\n9 Cmaj7\n")  # BEAT SYMBOL lines: whole 4/4 bars through the last change
    assert chg.load_form(beat_lines).bars.tolist() == [0, 4, 8, 12]
    with pytest.raises(chg.ChangesError, match="nope.mid: no such file"):
        chg.load_form(tmp_path / "nope.mid")


def write_lead_sheet(path, changes, time_signatures=(), end_beat=16.0, tempo=100.0):
    """A MIDI file with one note a beat and the changes as text events."""
    write_midi(path, [(b, 1.0, 60 + b % 12) for b in range(int(end_beat))], tempo=tempo)
    midi = pretty_midi.PrettyMIDI(str(path))
    midi.time_signature_changes = [pretty_midi.TimeSignature(n, d, b * 60.0 / tempo) for b, n, d in time_signatures]
    ch.write_chords(midi, ch.ChordTimeline.from_changes(changes), tempo)
    midi.write(str(path))
    return path


def test_a_midi_files_chords_and_bars_make_the_form(tmp_path):
    # A pickup bar without chords, then 3/4 bars from beat 4; the form starts at the first chord's bar.
    path = write_lead_sheet(tmp_path / "waltz.mid", [(4, "Am7"), (7, "D7"), (10, "Gmaj7")],
                            time_signatures=[(0, 4, 4), (4, 3, 4)], end_beat=13)
    form = chg.load_form(path)
    assert changes_of(form) == [(0, "Am7"), (3, "D7"), (6, "Gmaj7")]
    assert form.bars.tolist() == [0, 3, 6, 9] and form.meters() == [(0, 3)]
    bad = write_lead_sheet(tmp_path / "bad.mid", [(0, "C7"), (8, "Zz9")])
    with pytest.raises(chg.ChangesError, match=r"bad.mid: bar 3 \(beat 8\): 'Zz9' is not a chord symbol"):
        chg.load_form(bad)
    none = write_midi(tmp_path / "plain.mid", [(0, 1, 60)])
    with pytest.raises(chg.ChangesError, match="plain.mid: no chord symbols .* no plain.chords.txt beside it"):
        chg.load_form(none)
    ch.sidecar_path(none).write_text("| C | F G |\n")  # a sidecar beside it counts
    assert changes_of(chg.load_form(none)) == [(0, "C"), (4, "F"), (6, "G")]


def test_the_shipped_forms():
    forms = chg.shipped_forms()
    assert set(forms) == {"blues-f", "rhythm-changes-bb", "ii-v-i-cycle"}
    blues = chg.load_form("blues-f")
    assert changes_of(blues) == BLUES_CHANGES and blues.name == "blues-f"
    rhythm = chg.load_form("rhythm-changes-bb")
    assert rhythm.n_bars == 32 and rhythm.timeline.chord_at(0).symbol == "Bb6"
    assert [rhythm.timeline.chord_at(b).symbol for b in (64, 72, 80, 88)] == ["D7", "G7", "C7", "F7"]  # the bridge
    cycle = chg.load_form("ii-v-i-cycle")
    tonics = [c for c in cycle.timeline.chords if c.quality == "maj7"]
    assert cycle.n_bars == 24 and sorted(c.root for c in tonics) == list(range(12))
    assert [(c.root - t.root) % 12 for c, t in zip(tonics[1:], tonics)] == [5] * 11  # up a fourth each time


def test_choruses_repeat_the_form():
    form = chg.load_form(BLUES_F).repeat(3)
    assert form.n_bars == 36 and form.beats == 144 and form.choruses == 3
    assert changes_of(form) == [(b + 48 * k, s) for k in range(3) for b, s in BLUES_CHANGES]
    assert form.line() == BLUES_F  # one chorus
    summary = form.summary()
    assert summary["choruses"] == 3 and summary["bars"] == 36 and summary["changes"][12] == [48.0, "F7"]
    with pytest.raises(chg.ChangesError, match="choruses 0"):
        form.repeat(0)


# ---------------------------------------------------------------------------------------------
# Songs over a form
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["F7", "Bb7", "Gm7", "Cmaj7", "C", "Cø7", "C7(b9)", "C/E", "Csus4", "Cm6"])
def test_a_voicing_is_the_bass_under_close_chord_tones(symbol):
    chord = parse_chord(symbol)
    pitches = chg.voicing(chord)
    bass, upper = pitches[0], pitches[1:]
    assert bass % 12 == chord.bass and chg.BASS_LOW <= bass < chg.BASS_LOW + 12
    assert {p % 12 for p in upper} <= chord.pcs and 3 <= len(upper) <= chg.MAX_VOICING
    assert upper == sorted(upper) and upper[-1] - upper[0] < 12 and upper[0] >= chg.VOICING_LOW  # close position
    rel = {(p - chord.root) % 12 for p in upper}
    thirds, sevenths = {3, 4} & chord_rel(chord), {9, 10, 11} & chord_rel(chord)
    assert thirds <= rel and (not sevenths or sevenths & rel)  # the guide tones are in
    assert chg.voicing(None) == []


def chord_rel(chord) -> set[int]:
    return {(pc - chord.root) % 12 for pc in chord.pcs}


def melody(steps: int, spb: int, seed: int = 0) -> list[Note]:
    rng = np.random.default_rng(seed)
    onsets = np.arange(0, steps + 4 * spb, spb // 2)  # eighths, some past the form's end
    return [Note(int(o), int(p), spb) for o, p in zip(onsets, rng.integers(60, 80, len(onsets)))]


def test_a_song_over_the_blues_reads_back_with_pretty_midi_and_mido(tmp_path):
    encoding = EncodingConfig()
    spb = encoding.steps_per_beat
    form = chg.load_form(BLUES_F).repeat(3)
    path = tmp_path / "song.mid"
    chg.song_midi(melody(form.steps(spb), spb), form, encoding, tempo=150).write(str(path))

    midi = pretty_midi.PrettyMIDI(str(path))
    assert [i.name for i in midi.instruments] == ["melody", "comping"]
    assert abs(midi.get_tempo_changes()[1][0] - 150) < 1e-6
    tl, unparsed = ch.read_chords(midi)
    assert not unparsed and changes_of_timeline(tl) == changes_of(form)  # the changes as given, 3 choruses
    assert [(ts.numerator, ts.denominator) for ts in midi.time_signature_changes] == [(4, 4)]
    melody_notes, comp = midi.instruments
    beat = 60.0 / 150
    assert max(n.end for n in melody_notes.notes) <= 144 * beat + 1e-6  # cut at the form's end
    # Comping: every change's voicing from its beat, struck again at each bar line it lasts over.
    strikes = sorted({round(n.start / beat, 6) for n in comp.notes})
    assert strikes == sorted({float(b) for b in form.bars[:-1]} | {b for b, _ in changes_of(form)})
    for note in comp.notes:
        assert note.pitch % 12 in form.timeline.chord_at(note.start / beat + 1e-6).pcs
    # mido sees two note tracks and the symbols as text meta events, in order.
    tracks = mido.MidiFile(str(path)).tracks
    names = [m.name for t in tracks for m in t if m.type == "track_name"]
    assert "melody" in names and "comping" in names
    texts = [m.text for t in tracks for m in t if m.type == "text"]
    assert texts == [s for _, s in changes_of(form)]
    with_notes = [t for t in tracks if any(m.type == "note_on" for m in t)]
    assert len(with_notes) == 2 and len({m.channel for m in with_notes[1] if m.type == "note_on"}) == 1

    alone = chg.song_midi(melody(form.steps(spb), spb), form, encoding, with_comping=False)
    assert [i.name for i in alone.instruments] == ["melody"] and len(alone.text_events) == len(form.timeline)
    # Read back (to score, evaluate or train on) the song is its melody: the comping is not the line.
    alone.write(str(tmp_path / "alone.mid"))
    line = enc.encode_file(tmp_path / "alone.mid", encoding)
    assert len(line) > 100 and np.array_equal(enc.encode_file(path, encoding), line)
    assert len(enc.midi_to_notes(midi, encoding)) == len(melody_notes.notes)


def changes_of_timeline(tl) -> list[tuple[float, str]]:
    return [(round(b, 6), t) for b, t in zip(tl.beats.tolist(), tl.texts)]


def test_a_song_in_three_four_writes_its_time_signature(tmp_path):
    form = chg.load_form("3/4 Am7 | D7 | Gmaj7 | 7/8 Cmaj7 |")
    midi = chg.song_midi([Note(0, 69, 12)], form, EncodingConfig(), tempo=90)
    midi.write(str(tmp_path / "w.mid"))
    back = pretty_midi.PrettyMIDI(str(tmp_path / "w.mid"))
    assert [(t.numerator, t.denominator) for t in back.time_signature_changes] == [(3, 4), (7, 8)]
    assert ch.bar_starts(back, 12).tolist() == [0, 3, 6, 9]


def test_the_piano_roll_shows_the_chord_symbols_above_the_bars(tmp_path):
    from PIL import Image

    spb = 12
    form = chg.load_form(BLUES_F)
    notes = melody(form.steps(spb), spb)[:40]
    labels = [(int(b * spb), t) for b, t in changes_of(form)]
    plain = np.array(Image.open(plots.piano_roll(notes, spb, tmp_path / "plain.png", "t")))
    over = np.array(Image.open(plots.piano_roll(notes, spb, tmp_path / "over.png", "t", bars=form.bars[:-1] * spb,
                                                chords=labels, end=form.steps(spb))))
    strip, left = over.shape[0] - plain.shape[0], plots.ROLL_LABEL_PX  # note names in the left column
    assert strip > 10 and (over[:strip, left:] == plots.TEXT).any() and not (over[strip:, left:] == plots.TEXT).any()
    assert (over[strip:, :left] == plots.TEXT).any()  # the note names, under the strip
    # The roll spans the whole form though the melody stops early, and each label starts at its change.
    scale = plots.roll_scale(form.steps(spb))
    assert over.shape[1] == left + int(form.steps(spb) * scale)
    columns = np.flatnonzero((over[:strip] == plots.TEXT).any(axis=0))
    for step, _ in labels:
        x = left + int(step * scale)
        assert ((columns >= x) & (columns < x + 12)).any(), step


def test_a_song_job_over_changes_crosses_to_a_writer_process_intact(tmp_path):
    """`songs.SongJob` goes to spawned writer processes by pickle: with its form it must arrive
    whole and write the same song."""
    import pickle

    from ganmusic import songs
    from ganmusic.encoding import EOS, notes_to_tokens

    encoding = EncodingConfig()
    spb = encoding.steps_per_beat
    form = chg.load_form(BLUES_F).repeat(2)
    row = np.append(notes_to_tokens(melody(form.steps(spb), spb)[:-8], Vocab(encoding))[:-1], EOS)
    job = songs.SongJob(encoding, 0, 0, None, True, 120.0, True, False, "t", form, True)
    here = job((row, tmp_path / "here.mid"))
    there = pickle.loads(pickle.dumps(job))((row, tmp_path / "there.mid"))
    assert {k: v for k, v in here.items() if k != "file"} == {k: v for k, v in there.items() if k != "file"}
    assert here["reached_end_of_changes"] and (tmp_path / "there.png").is_file()
    a, b = (pretty_midi.PrettyMIDI(str(tmp_path / f"{n}.mid")) for n in ("here", "there"))
    assert [len(i.notes) for i in a.instruments] == [len(i.notes) for i in b.instruments] and len(a.instruments) == 2
    assert changes_of_timeline(ch.read_chords(b)[0]) == changes_of(form)


# ---------------------------------------------------------------------------------------------
# The CLI
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def chordless_run(tmp_path):
    """A run folder whose generator reads no chords (its config is all `sample` looks at first)."""
    run = tmp_path / "runs" / "plain"
    run.mkdir(parents=True)
    gen = GeneratorConfig(vocab_size=Vocab(EncodingConfig()).size, layers=(8,), embed_dim=4)
    config = RunConfig(data="corpus", generator=gen, window=24, batch_size=4, mle_steps=2)
    (run / "config.json").write_text(json.dumps(config.to_dict()))
    return run


def test_changes_for_a_generator_without_chords_is_one_line_saying_how_to_train_one(chordless_run, tmp_path):
    result = run_cli("sample", chordless_run, "--changes", "blues-f", "--out", tmp_path / "out")
    line = assert_one_line_error(result, "plain", "trained without chords", "train-gan", code=2)
    assert "lead-sheets" in line and not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, names", [
    (["--changes", "F7 | Hm7 |"], ["bar 2", "'Hm7'"]),
    (["--changes", "blues-f", "--choruses", "0"], ["choruses 0"]),
    (["--changes", "blues-f", "--bars", "4"], ["no bars"]),
    (["--changes", "missing.mid"], ["missing.mid", "no such file"]),
    (["--choruses", "2"], ["choruses 2", "none were given"]),
])
def test_bad_changes_are_one_line_before_any_work(chordless_run, tmp_path, args, names):
    result = run_cli("sample", chordless_run, *args, "--out", tmp_path / "out")
    assert_one_line_error(result, *names, code=2)


# ---------------------------------------------------------------------------------------------
# End to end: a chord-reading generator over the blues, three choruses
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chord_run(tmp_path_factory):
    """A tiny run folder as training writes it (config.json, best/) whose generator reads chords:
    random weights, so the test spends its seconds sampling, not training (training a
    chord-reading generator is tests/test_chord_generator.py's)."""
    import jax
    import jax.numpy as jnp

    from ganmusic import checkpoints
    from ganmusic.models import Generator

    run = tmp_path_factory.mktemp("runs") / "lead"
    run.mkdir()
    encoding = EncodingConfig(steps_per_beat=4, melody=True)
    gen = GeneratorConfig.for_vocab(Vocab(encoding), layers=(8,), embed_dim=4, chords=True)
    config = RunConfig(data="corpus", generator=gen, encoding=encoding, window=24, batch_size=4, mle_steps=2)
    (run / "config.json").write_text(json.dumps(config.to_dict()))
    shapes = jax.eval_shape(lambda: Generator(gen).init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))["params"])
    rng = np.random.default_rng(0)  # random weights without compiling an init
    params = jax.tree.map(lambda s: (0.3 * rng.standard_normal(s.shape)).astype(s.dtype), shapes)
    with checkpoints.Manager(run / "best", max_to_keep=1) as manager:
        manager.save(2, params)
    return run


def test_sample_over_the_blues_writes_melody_and_comping_and_the_changes_as_given(chord_run, tmp_path):
    out = tmp_path / "blues"
    result = run_cli("sample", chord_run, "--changes", BLUES_F, "--choruses", 3, "--num", 2, "--tempo", 140,
                     "--seed", 3, "--out", out)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["changes"]["line"] == BLUES_F
    assert summary["changes"]["choruses"] == 3 and summary["changes"]["bars"] == 36 and summary["changes"]["comping"]
    expected = [(b + 48.0 * k, s) for k in range(3) for b, s in BLUES_CHANGES]
    for k in range(2):
        path = out / f"sample-{k:03d}.mid"
        midi = pretty_midi.PrettyMIDI(str(path))
        assert [i.name for i in midi.instruments] == ["melody", "comping"]
        melody_notes, comp = midi.instruments
        assert melody_notes.notes and comp.notes
        beat = 60.0 / 140
        assert max(n.end for n in melody_notes.notes) <= 144 * beat + 1e-6
        assert abs(midi.get_tempo_changes()[1][0] - 140) < 1e-3
        timeline, unparsed = ch.read_chords(midi)
        assert not unparsed and changes_of_timeline(timeline) == expected  # the changes as given, 3 choruses
        tracks = mido.MidiFile(str(path)).tracks
        assert [m.text for t in tracks for m in t if m.type == "text"] == [s for _, s in expected]
        assert len([t for t in tracks if any(m.type == "note_on" for m in t)]) == 2
        assert (out / f"sample-{k:03d}.png").is_file()
        assert summary["samples"][k]["reached_end_of_changes"] in (True, False)
    # The same songs through the Python API, without comping.
    again = songs_api().generate_songs(chord_run, tmp_path / "solo", num=2, changes="blues-f", choruses=3,
                                       comping=False, tempo=140, seed=3, png=False)
    assert not again["changes"]["comping"] and again["changes"]["form"] == "blues-f"
    solo = pretty_midi.PrettyMIDI(again["samples"][0]["file"])
    assert [i.name for i in solo.instruments] == ["melody"]
    assert [(n.start, n.pitch) for n in solo.instruments[0].notes] == \
        [(n.start, n.pitch) for n in pretty_midi.PrettyMIDI(str(out / "sample-000.mid")).instruments[0].notes]


def songs_api():
    from ganmusic import songs

    return songs


def test_a_chord_reading_generator_given_no_changes_plays_over_the_default_form(chord_run, tmp_path):
    out = tmp_path / "default"
    result = run_cli("sample", chord_run, "--bars", 13, "--num", 1, "--no-png", "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"it plays over {chg.DEFAULT_FORM}" in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    # 13 bars asked: two 12-bar choruses, so the songs end with the form, never inside it.
    assert summary["changes"]["form"] == chg.DEFAULT_FORM and summary["changes"]["choruses"] == 2
    timeline, unparsed = ch.read_chords(pretty_midi.PrettyMIDI(summary["samples"][0]["file"]))
    assert not unparsed and changes_of_timeline(timeline) == [(b + 48.0 * k, s) for k in range(2) for b, s in BLUES_CHANGES]
    songs = songs_api()
    asked = songs.generate_songs(chord_run, tmp_path / "three", num=1, choruses=3, png=False)
    assert asked["changes"]["choruses"] == 3 and asked["changes"]["bars"] == 36
    # --length 768 (the default): 64 beats of room, two choruses
    assert songs.generate_songs(chord_run, tmp_path / "long", num=1, png=False)["changes"]["choruses"] == 2
    # What the command samples, for a notebook or songs_bench: the same two choruses, a chord row a step.
    plan = songs.plan_songs(chord_run, 768)
    assert plan.form.beats == 96 and plan.bars is None and plan.length == songs.tokens_for_beats(96)
    spb = load_run_config(chord_run).encoding.steps_per_beat
    assert len(plan.step_cond) == plan.form.steps(spb) == 96 * spb and plan.primer_tokens is None
    too_long = run_cli("sample", chord_run, "--bars", 2000, "--out", tmp_path / "long")
    assert_one_line_error(too_long, "8000 beats", "167 choruses of blues-f", "fewer bars", code=2)


def test_a_primer_is_the_first_beats_of_the_changes(chord_run, tmp_path):
    # 12 notes in 6 beats: with --bars 11 (44 beats) after them, 50 beats are two choruses (44 alone: one).
    primer = write_midi(tmp_path / "primer.mid", swing_line(0, n=12))
    primed = run_cli("sample", chord_run, "--primer", primer, "--bars", 11, "--num", 2, "--no-png", "--out",
                     tmp_path / "primed")
    assert primed.returncode == 0, primed.stderr
    assert f"it plays over {chg.DEFAULT_FORM}" in primed.stderr
    summary = json.loads((tmp_path / "primed" / "summary.json").read_text())
    assert summary["changes"]["form"] == chg.DEFAULT_FORM and summary["changes"]["choruses"] == 2
    primer_pitches = [p for _, _, p in swing_line(0, n=12)]
    for row in summary["samples"]:
        midi = pretty_midi.PrettyMIDI(row["file"])
        melody = sorted(midi.instruments[0].notes, key=lambda n: n.start)
        assert [n.pitch for n in melody[:12]] == primer_pitches and melody[0].start == 0.0
        timeline, unparsed = ch.read_chords(midi)
        assert not unparsed and changes_of_timeline(timeline) == [(b + 48.0 * k, s) for k in range(2)
                                                                  for b, s in BLUES_CHANGES]
    # Left out of the output, the primer keeps its beats: the melody starts after them, on the same changes.
    bare = songs_api().generate_songs(chord_run, tmp_path / "bare", num=2, bars=11, primer=primer,
                                      primer_in_output=False, png=False)
    for primed_row, bare_row in zip(summary["samples"], bare["samples"]):
        with_primer = pretty_midi.PrettyMIDI(primed_row["file"]).instruments[0].notes
        without = pretty_midi.PrettyMIDI(bare_row["file"]).instruments[0].notes
        assert [(n.start, n.pitch) for n in without] == [(n.start, n.pitch) for n in with_primer[12:]]
    # Changes shorter than the primer: one line, nothing written.
    short = run_cli("sample", chord_run, "--primer", primer, "--changes", "F7 |", "--out", tmp_path / "short")
    assert_one_line_error(short, "primer.mid", "as long as the changes", "4 beats", code=2)
    assert not (tmp_path / "short").exists()
