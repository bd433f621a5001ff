"""Changes to improvise over (`ganmusic sample --changes`): reading a form, and a song's MIDI
with the melody, a comping track and the chord symbols.

**Forms.** `load_form` reads a chord line in bars (`"Dm7 G7 | Cmaj7 | % |"`, the syntax of
`chords.parse_changes`: `/` repeats the chord, `%` the bar, `3/4` sets the meter), a text file
of such lines (or of `BEAT SYMBOL` lines), a MIDI file's chord text/marker/lyric events (or its
`song.chords.txt`), or the name of a form shipped in `ganmusic/forms/` (`blues-f`,
`rhythm-changes-bb`, `ii-v-i-cycle`). A symbol that does not parse is an error naming it and its
place, never a silent "no chord". `Form.repeat` plays it N choruses.

**Songs.** `song_midi` writes a melody over a form: track "melody", track "comping" (one close
voicing per change in the middle register over the bass note, struck again at every bar line),
the symbols as text events (`chords.write_chords`, so `chords.read_chords` reads them back) and
the form's time signatures.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ganmusic.chord_symbols import ChordSymbolError, is_no_chord_symbol, parse_chord
from ganmusic.chords import ChordTimeline, bar_starts, read_chord_source, read_written_changes, write_chords
from ganmusic.errors import GanmusicError

FORMS = Path(__file__).resolve().parent / "forms"  # shipped forms: NAME.txt
MIDI_SUFFIXES = (".mid", ".midi", ".kar")
MAX_CHORUSES = 100
MAX_FORM_BEATS = 4096  # one chorus; hours of music at any tempo
# What a generator that reads chords plays over when given no changes (after a primer too): over
# no chords at all it plays what it never heard in training (measured in the README).
DEFAULT_FORM = "blues-f"


class ChangesError(GanmusicError):
    """Changes that cannot be read: the symbol or file and the place."""


@dataclass(frozen=True, eq=False)
class Form:
    """Chord changes with their bars: `timeline` (beats from the form's start), `bars` (the
    start beat of every bar, then where the last one ends), `name` (where it came from) and
    `choruses` (how many times the one written chorus is played)."""

    name: str
    timeline: ChordTimeline
    bars: np.ndarray
    choruses: int = 1

    @property
    def beats(self) -> float:
        return float(self.bars[-1])

    @property
    def n_bars(self) -> int:
        return len(self.bars) - 1

    def steps(self, steps_per_beat: int) -> int:
        """Grid steps from the form's start to its end."""
        return int(round(self.beats * steps_per_beat))

    def repeat(self, choruses: int) -> "Form":
        """This form played `choruses` times in a row."""
        if not 1 <= choruses <= MAX_CHORUSES:
            raise ChangesError(f"choruses {choruses} is out of range (1-{MAX_CHORUSES})")
        length = self.beats
        changes = [(beat + k * length, text) for k in range(choruses)
                   for beat, text in zip(self.timeline.beats.tolist(), self.timeline.texts)]
        bars = np.concatenate([self.bars[:-1] + k * length for k in range(choruses)] + [[choruses * length]])
        return replace(self, timeline=ChordTimeline.from_changes(changes), bars=bars,
                       choruses=self.choruses * choruses)

    def rows(self, steps_per_beat: int) -> np.ndarray:
        """The conditioning row a note starting at each grid step of the form reads (what
        `sampling.sample(step_cond=)` feeds a generator improvising over it)."""
        from ganmusic.lead_sheets import step_conditioning

        return step_conditioning(self.timeline, self.bars[:-1], self.steps(steps_per_beat), steps_per_beat)

    def meters(self) -> list[tuple[float, float]]:
        """`(beat, bar length in beats)` wherever the bar length changes, from beat 0."""
        lengths = np.diff(self.bars)
        return [(float(self.bars[i]), float(n)) for i, n in enumerate(lengths) if i == 0 or n != lengths[i - 1]]

    def line(self) -> str:
        """The changes of one chorus as a chord line: each bar's chords in their order (a bar
        that starts inside a chord names it first)."""
        one = self.bars[: self.n_bars // self.choruses + 1]
        out = []
        for start, end in zip(one[:-1], one[1:]):
            inside = [t for b, t in zip(self.timeline.beats.tolist(), self.timeline.texts) if start <= b < end]
            i = int(self.timeline.at(start))
            sounding = self.timeline.texts[i] if i >= 0 else "NC"
            first = [] if any(b == start for b in self.timeline.beats.tolist()) else [sounding]
            out.append(" ".join(first + inside))
        return " | ".join(out) + " |"

    def summary(self) -> dict:
        """What `summary.json` records: the form, one chorus as a line, choruses, bars, beats,
        meters and every change (beat, symbol)."""
        return {"form": self.name, "line": self.line(), "choruses": self.choruses, "bars": self.n_bars,
                "beats": self.beats, "meters": [[b, n] for b, n in self.meters()],
                "changes": [[b, t] for b, t in zip(self.timeline.beats.tolist(), self.timeline.texts)]}


# ---------------------------------------------------------------------------------------------
# Reading forms
# ---------------------------------------------------------------------------------------------


def shipped_forms() -> dict[str, Path]:
    """The forms that ship with ganmusic, by name."""
    return {p.stem: p for p in sorted(FORMS.glob("*.txt"))}


def _checked(symbol: str, where: str) -> str:
    try:
        parse_chord(symbol)
    except ChordSymbolError as exc:
        raise ChangesError(f"{where}: {exc}") from None
    return symbol


def form_from_text(text: str, name: str = "chord line", beats_per_bar: float = 4.0) -> Form:
    """A form from chord text (`chords.parse_changes`'s formats); `name` starts every error."""
    written = read_written_changes(text)
    many_lines = len([ln for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]) > 1

    def place(line: int, bar: int | None = None, slot: int | None = None) -> str:
        parts = ([f"line {line}"] if many_lines else []) + ([f"bar {bar}"] if bar else []) + (
            [f"chord {slot}"] if slot else [])
        return f"{name}, {', '.join(parts)}" if parts else name

    for symbol, line, bar, why in written.problems:
        raise ChangesError(f"{place(line, bar)}: {symbol!r} {why}")
    starts = written.bar_starts(None, beats_per_bar)
    changes = [(beat, _checked(s, place(line))) for beat, s, line in written.beat_changes]
    for b, bar in enumerate(written.bars):
        slot = (starts[b + 1] - starts[b]) / len(bar)
        changes += [(starts[b] + (j - 1) * slot, _checked(s, place(line, b + 1, j))) for s, line, j in bar]
    if not any(not is_no_chord_symbol(s) for _, s in changes):
        raise ChangesError(f"{name}: no chord symbols in it (write bars like \"Dm7 G7 | Cmaj7 |\")")
    last = max(beat for beat, _ in changes)
    if last >= starts[-1]:  # `BEAT SYMBOL` lines past the bars: whole bars at the last length
        length = starts[-1] - starts[-2] if len(starts) > 1 else beats_per_bar
        starts = np.concatenate([starts, starts[-1] + length * np.arange(1, (last - starts[-1]) // length + 2)])
    return _form(name, ChordTimeline.from_changes(changes), starts)


def _form(name: str, timeline: ChordTimeline, bars: np.ndarray) -> Form:
    if bars[-1] > MAX_FORM_BEATS:
        raise ChangesError(f"{name}: {bars[-1]:g} beats in one chorus; at most {MAX_FORM_BEATS}")
    return Form(name, timeline, np.asarray(bars, dtype=np.float64))


def form_from_midi(path: str | Path) -> Form:
    """The chords of a MIDI file (text, marker or lyric events, or its `song.chords.txt`), from
    the bar holding the first change to the end of the bar where the file ends, with the
    file's bars (time signatures; 4/4 where it has none)."""
    from ganmusic.encoding import load_midi, midi_seconds_to_beats

    path = Path(path)
    midi = load_midi(path)  # a MidiError names the file
    src = read_chord_source(midi, path)
    end = max(float(midi_seconds_to_beats(midi, np.array([midi.get_end_time()]))[0]),
              float(src.timeline.beats[-1]) if len(src.timeline) else 0.0)
    bars = bar_starts(midi, end + 4 * 64)  # room past the end for the last bar's end
    bad = [(b, t) for b, c, t in zip(src.timeline.beats.tolist(), src.timeline.chords, src.timeline.texts)
           if c is None and not is_no_chord_symbol(t)]
    if bad:
        beat, text = bad[0]
        bar = int(np.searchsorted(bars, beat + 1e-9, side="right"))
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ChangesError(f"{path}: bar {bar} (beat {beat:g}): {text!r} is not a chord symbol{more}")
    if not any(c is not None for c in src.timeline.chords):
        raise ChangesError(f"{path}: no chord symbols in its text, marker or lyric events, and no "
                           f"{path.stem}.chords.txt beside it")
    first = int(np.searchsorted(bars, src.timeline.beats[0] + 1e-9, side="right")) - 1
    stop = int(np.searchsorted(bars, end - 1e-9, side="left"))  # first bar line at or after the end
    stop = max(stop, first + 1)
    starts = bars[first : stop + 1]
    return _form(str(path), src.timeline.shift(-float(starts[0])), starts - starts[0])


def load_form(spec: str | Path, beats_per_bar: float = 4.0) -> Form:
    """A form from a shipped form's name, a MIDI file, a text file of chord lines, or a chord
    line itself (see the module doc)."""
    text = str(spec).strip()
    forms = shipped_forms()
    if text in forms:
        return replace(form_from_text(forms[text].read_text(encoding="utf-8"), text, beats_per_bar), name=text)
    if "|" in text or "\n" in text:  # bars: a chord line, never a file name
        return form_from_text(text, "chord line", beats_per_bar)
    path = Path(text)
    try:
        is_file = path.is_file()
    except OSError:  # e.g. a name too long to be a file's
        is_file = False
    if is_file or path.suffix.lower() in MIDI_SUFFIXES + (".txt",):
        if not path.is_file():
            raise ChangesError(f"{path}: no such file")
        if path.suffix.lower() in MIDI_SUFFIXES:
            return form_from_midi(path)
        try:
            content = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ChangesError(f"{path}: cannot read it as text ({exc})") from None
        return form_from_text(content, str(path), beats_per_bar)
    try:
        return form_from_text(text, "chord line", beats_per_bar)
    except ChangesError as exc:
        if " " in text:
            raise
        raise ChangesError(f"{exc}; not a file or a shipped form either (shipped: {', '.join(forms)})") from None


def corpus_forms(corpus, split: str, beats: int, num: int) -> list[Form]:
    """`num` forms of `beats` beats cut from the changes of a corpus' `split` solos (its positive
    label): the changes real solos were played over, for a generator to play over and be judged
    against them. Form k is solo k mod n's changes from a bar line, 8 bars further in on each
    pass over the solos; a solo with chords under fewer than half its notes is left out. (As at
    the end of any form, its last chord announces no next one.)"""
    from ganmusic import encoding as enc
    from ganmusic import lead_sheets as ls

    spb, solos = corpus.config.steps_per_beat, []
    for i in corpus.indices(split, positive=True):
        path = corpus.root / corpus.paths[i]
        midi, stats = enc.load_midi(path), enc.EncodeStats()
        lead = ls.encode_lead_sheet(midi, corpus.config, stats, path=path)
        if not len(lead.timeline) or (lead.cond[:, ls.ROOT] >= 0).mean() < 0.5:
            continue
        end = ls.note_positions(lead.tokens, corpus.vocab)[-1] / spb  # the timeline and bars: from the first note
        bars = bar_starts(midi, stats.origin_beats + end + 4 * beats) - stats.origin_beats
        solos.append((lead.timeline, bars[bars >= -1e-9], end, corpus.paths[i]))
    if not solos:
        raise ChangesError(f"{corpus.root}: no {split}-split solo has chords under most of its notes")
    out = []
    for k in range(num):
        timeline, bars, end, name = solos[k % len(solos)]
        usable = bars[bars + beats <= max(end, beats)]
        start = float(usable[(k // len(solos) * 8) % len(usable)]) if len(usable) else 0.0
        moved = timeline.shift(-start)  # the chord sounding at the start now starts at 0
        keep = moved.beats < beats
        cut = ChordTimeline(moved.beats[keep], tuple(c for c, f in zip(moved.chords, keep) if f),
                            tuple(t for t, f in zip(moved.texts, keep) if f))
        inside = bars[(bars >= start) & (bars < start + beats)] - start
        out.append(Form(f"{name} from beat {start:g}", cut, np.append(inside, float(beats))))
    return out


# ---------------------------------------------------------------------------------------------
# A song over a form: melody, comping, symbols
# ---------------------------------------------------------------------------------------------

BASS_LOW = 40  # the bass note lies in E2..D#3
VOICING_LOW = 53  # the voicing above it in close position, F3..E4
MAX_VOICING = 4
# Which chord tones a voicing keeps first (intervals above the root): the guide tones (3rd, 7th
# or 6th), then colour (sus 4th, 9ths, #11/b5, #5/b13), the fifth last.
VOICING_ORDER = (4, 3, 10, 11, 9, 5, 2, 1, 6, 8, 7)


def voicing(chord) -> list[int]:
    """MIDI pitches for a `Chord`: its bass note, then up to `MAX_VOICING` chord tones in close
    position above it (the root too where the chord has fewer than three other tones)."""
    if chord is None:
        return []
    rel = {(pc - chord.root) % 12 for pc in chord.pcs}
    upper = sorted(rel - {0}, key=VOICING_ORDER.index)[:MAX_VOICING]
    if len(upper) < 3:
        upper.append(0)
    bass = BASS_LOW + (chord.bass - BASS_LOW) % 12
    return [bass] + sorted(VOICING_LOW + ((chord.root + r) - VOICING_LOW) % 12 for r in upper)


def comping(form: Form) -> list[tuple[float, float, list[int]]]:
    """`(start beat, end beat, pitches)`: each change's voicing, struck again at every bar line
    it lasts over."""
    beats = form.timeline.beats.tolist() + [form.beats]
    out = []
    for k, chord in enumerate(form.timeline.chords):
        start, end = beats[k], min(beats[k + 1], form.beats)
        pitches = voicing(chord)
        if not pitches or end <= start:
            continue
        strikes = [start] + [float(b) for b in form.bars if start < b < end] + [end]
        out += [(a, b, pitches) for a, b in zip(strikes[:-1], strikes[1:])]
    return out


def in_form(notes, form: Form, steps_per_beat: int) -> list:
    """The notes that start inside the form, cut at its end."""
    from ganmusic.encoding import Note

    end = form.steps(steps_per_beat)
    return [Note(n.onset, n.pitch, min(n.duration, end - n.onset)) for n in notes if 0 <= n.onset < end]


def time_signature(beats: float) -> tuple[int, int]:
    """A bar length in quarter-note beats as a time signature: 3.0 -> 3/4, 3.5 -> 7/8."""
    for den in (4, 8, 16):
        if abs(beats * den / 4 - round(beats * den / 4)) < 1e-6:
            return int(round(beats * den / 4)), den
    return max(int(round(beats * 4)), 1), 16


def song_midi(notes, form: Form, encoding_config, tempo: float = 120.0, with_comping: bool = True):
    """A `pretty_midi.PrettyMIDI` of grid `notes` over `form`: tracks "melody" and (unless
    `with_comping` is False) "comping", chord symbols as text events, time signatures."""
    import pretty_midi

    from ganmusic.encoding import COMPING_TRACK, notes_to_midi

    midi = notes_to_midi(in_form(notes, form, encoding_config.steps_per_beat), encoding_config, tempo=tempo)
    midi.instruments[0].name = "melody"
    seconds = 60.0 / float(tempo)
    if with_comping:
        comp = pretty_midi.Instrument(program=4, name=COMPING_TRACK)  # Electric Piano 1
        for start, end, pitches in comping(form):
            comp.notes += [pretty_midi.Note(velocity=56, pitch=p, start=start * seconds, end=end * seconds)
                           for p in pitches]
        midi.instruments.append(comp)
    midi.time_signature_changes = [pretty_midi.TimeSignature(*time_signature(n), b * seconds)
                                   for b, n in form.meters()]
    write_chords(midi, form.timeline, tempo)
    return midi
