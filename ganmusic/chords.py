"""Chord timelines and bars, read from MIDI files or sidecar files and written back.

**Timeline and bars.** `read_chords` finds a file's chords in its MIDI text, marker or lyric
events (whichever holds the most parseable symbols) or, where none do, in a sidecar
`song.chords.txt` beside `song.mid` (format: see `parse_changes`). `bar_starts` gives bar lines
from time-signature events (4/4 before the first and where a file has none).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ganmusic.chord_symbols import NO_CHORD, Chord, is_no_chord_symbol, try_parse


# ---------------------------------------------------------------------------------------------
# Timelines
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ChordTimeline:
    """Chord changes: `beats[i]` (sorted, in beats from the file's start) starts `chords[i]`
    (`None`: no chord) until the next change; `texts[i]` is the text as read (the symbol, or
    what failed to parse). Before the first change there is no chord. Consecutive identical
    changes are merged."""

    beats: np.ndarray = field(default_factory=lambda: np.zeros(0))
    chords: tuple = ()
    texts: tuple = ()

    @classmethod
    def from_changes(cls, changes: Iterable[tuple[float, "Chord | None | str"]]) -> "ChordTimeline":
        """From `(beat, Chord | None | text)`; text is parsed (unreadable text: no chord). A
        stable sort by beat; at one beat the last change wins."""
        items = []
        for beat, c in changes:
            if isinstance(c, str):
                chord, _ = try_parse(c)
                items.append((float(beat), chord, c.strip()))
            else:
                items.append((float(beat), c, c.symbol if c is not None else "NC"))
        items.sort(key=lambda x: x[0])
        last_at_beat = [item for i, item in enumerate(items) if i + 1 == len(items) or items[i + 1][0] != item[0]]
        merged: list[tuple[float, Chord | None, str]] = []
        for item in last_at_beat:
            if not merged or merged[-1][2] != item[2]:
                merged.append(item)
        return cls(np.array([b for b, _, _ in merged], dtype=np.float64),
                   tuple(c for _, c, _ in merged), tuple(t for _, _, t in merged))

    def __len__(self) -> int:
        return len(self.chords)

    def __iter__(self):
        return iter(zip(self.beats.tolist(), self.chords))

    def at(self, beats) -> np.ndarray:
        """Index of the change sounding at each beat (-1 before the first change)."""
        return np.searchsorted(self.beats, np.asarray(beats, dtype=np.float64), side="right") - 1

    def chord_at(self, beat: float) -> Chord | None:
        i = int(self.at(beat))
        return self.chords[i] if i >= 0 else NO_CHORD

    def next_after(self, beats) -> np.ndarray:
        """Index of the first change strictly after each beat (`len(self)`: none)."""
        return self.at(beats) + 1

    def transpose(self, semitones: int) -> "ChordTimeline":
        return ChordTimeline(self.beats.copy(),
                             tuple(c.transpose(semitones) if c is not None else None for c in self.chords),
                             tuple(c.transpose(semitones).symbol if c is not None else t
                                   for c, t in zip(self.chords, self.texts)))

    def shift(self, beats: float) -> "ChordTimeline":
        """Moved by `beats`; a change that lands before 0 is cut there (the one sounding at 0
        starts at 0)."""
        moved = self.beats + beats
        keep = np.ones(len(self), dtype=bool)
        before = np.flatnonzero(moved <= 0)
        if len(before):
            keep[before[:-1]] = False
            moved[before[-1]] = 0.0
        return ChordTimeline(moved[keep], tuple(c for c, k in zip(self.chords, keep) if k),
                             tuple(t for t, k in zip(self.texts, keep) if k))

    def write(self, midi, tempo: float) -> None:
        """Add these chords to a MIDI file as text events (see `write_chords`)."""
        write_chords(midi, self, tempo)

    def steps(self, steps_per_beat: int) -> np.ndarray:
        return np.rint(self.beats * steps_per_beat).astype(np.int64)

    def arrays(self, steps_per_beat: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`(change steps, roots, masks)` as int arrays (root -1, mask 0: no chord), for lookups
        inside jitted code (`searchsorted` on the steps)."""
        return (self.steps(steps_per_beat),
                np.array([c.root if c is not None else -1 for c in self.chords], dtype=np.int32),
                np.array([c.pitch_classes if c is not None else 0 for c in self.chords], dtype=np.int32))


# ---------------------------------------------------------------------------------------------
# Reading chords and bars from MIDI
# ---------------------------------------------------------------------------------------------

_LOOKS_LIKE_CHORD = re.compile(r"^[A-G]\S{0,15}$")


def sidecar_path(midi_path) -> Path:
    """`song.mid` -> `song.chords.txt`."""
    p = Path(midi_path)
    return p.with_name(p.stem + ".chords.txt")


@dataclass
class WrittenChanges:
    """Chord changes as written, before any bar has a place in time (`read_written_changes`).

    `beat_changes`: `(beat, symbol, line)` from `BEAT SYMBOL` lines; `bars`: one list per bar of
    `(symbol, line, slot)` (slot 1 is the bar's first chord), `/` and `%` already expanded;
    `meters[i]`: the length in beats that a meter (`3/4`) written at bar i sets from there on
    (None: none written there); `problems`: `(text, line, bar, why)` for a `%` or `/` with no
    chord before it and a meter that cannot be (bar: 1-based, 0 where no bar was open)."""

    beat_changes: list = field(default_factory=list)
    bars: list = field(default_factory=list)
    meters: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    def bar_starts(self, bars: np.ndarray | None = None, beats_per_bar: float = 4.0) -> np.ndarray:
        """Where each written bar starts, and where the last one ends (`len(self.bars) + 1`
        beats): at the given bar lines `bars` (e.g. a MIDI file's `bar_starts`; written meters
        then only set the length past them), else from 0 at the written meters
        (`beats_per_bar` until the first)."""
        if bars is not None and len(bars):
            starts = [float(b) for b in np.asarray(bars, dtype=np.float64)]
            length = (starts[-1] - starts[-2]) if len(starts) > 1 else beats_per_bar
        else:
            starts, length = [0.0], beats_per_bar
        for i in range(len(starts) - 1, len(self.bars)):
            length = self.meters[i] if i < len(self.meters) and self.meters[i] else length
            starts.append(starts[-1] + length)
        return np.array(starts[: len(self.bars) + 1], dtype=np.float64)


_METER = re.compile(r"(\d{1,2})/(\d{1,2})")
_BEAT_LINE = re.compile(r"(\d+(?:\.\d*)?)\s+(\S.*)")


def read_written_changes(text: str) -> WrittenChanges:
    """Chord text -> `WrittenChanges`; the formats are `parse_changes`'s."""
    out = WrittenChanges()
    meter = None  # written at the next bar
    for line_no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _BEAT_LINE.fullmatch(line)
        if m and "|" not in line and not _METER.fullmatch(line.split()[0]):
            out.beat_changes.append((float(m.group(1)), m.group(2).strip(), line_no))
            continue
        for piece in line.split("|"):
            slots = piece.strip().strip(":").split()
            while slots and _METER.fullmatch(slots[0]):
                num, den = map(int, _METER.fullmatch(slots[0]).groups())
                if num < 1 or den not in (1, 2, 4, 8, 16, 32):
                    out.problems.append((slots[0], line_no, len(out.bars) + 1, "is not a time signature"))
                else:
                    meter = num * 4.0 / den
                slots = slots[1:]
            if not slots:
                continue
            if slots == ["%"]:
                if out.bars:
                    out.bars.append([(s, line_no, j) for j, (s, _, _) in enumerate(out.bars[-1], 1)])
                    out.meters.append(meter)
                    meter = None
                else:
                    out.problems.append(("%", line_no, 0, "repeats a bar, but no bar comes before it"))
                continue
            bar: list[tuple[str, int, int]] = []
            for s in slots:
                before = bar[-1][0] if bar else (out.bars[-1][-1][0] if out.bars else None)
                if s == "/" and before is None:
                    out.problems.append(("/", line_no, len(out.bars) + 1, "repeats a chord, but no chord comes before it"))
                else:
                    bar.append((before if s == "/" else s, line_no, len(bar) + 1))
            if bar:
                out.bars.append(bar)
                out.meters.append(meter)
                meter = None
    return out


def parse_changes(text: str, bars: np.ndarray | None = None, beats_per_bar: float = 4.0
                  ) -> tuple[ChordTimeline, Counter]:
    """Chord changes written as text -> `(timeline, unparsed symbol counts)`.

    Two line formats (a sidecar `song.chords.txt` or a `sample --changes` file uses them; `#`
    starts a comment line):

    - `BEAT SYMBOL`: the chord starting at BEAT (quarter-note beats from the file's start, the
      beats of its tempo map), e.g. `0 Dm7` / `4 G7` / `8 Cmaj7`;
    - bars: `| Dm7 G7 | Cmaj7 | % |` (leading and trailing `|` optional, lines continue each
      other): the chords of a bar split it evenly, `/` repeats the chord before it for one more
      slot, `%` repeats the whole previous bar, `NC` is no chord, a time signature (`3/4`) at
      the start of a bar sets the bar length from there on. Bars start at `bars` (beats, e.g.
      from `bar_starts`) and go on past them at the last bar's length (`beats_per_bar`, then
      the written time signatures, where none is given).
    """
    written = read_written_changes(text)
    unparsed: Counter = Counter(t for t, *_ in written.problems)
    changes = [(beat, s) for beat, s, _ in written.beat_changes]
    starts = written.bar_starts(bars, beats_per_bar)
    for b, bar in enumerate(written.bars):
        slot = (starts[b + 1] - starts[b]) / len(bar)
        changes += [(starts[b] + j * slot, s) for j, (s, _, _) in enumerate(bar)]
    for _, s in changes:
        if not try_parse(s)[1]:
            unparsed[s] += 1
    return ChordTimeline.from_changes(changes), unparsed


def bar_starts(midi, end_beat: float) -> np.ndarray:
    """Bar-start beats from 0 through `end_beat`, from the file's time-signature events (4/4
    before the first and in a file without any). A change of time signature starts a bar."""
    from ganmusic.encoding import midi_seconds_to_beats

    sigs = [(float(midi_seconds_to_beats(midi, np.array([ts.time]))[0]), ts.numerator * 4.0 / ts.denominator)
            for ts in getattr(midi, "time_signature_changes", [])]
    sigs = [(b, length) for b, length in sigs if length > 0]
    if not sigs or sigs[0][0] > 1e-6:
        sigs.insert(0, (0.0, 4.0))
    out = []
    for i, (start, length) in enumerate(sigs):
        stop = sigs[i + 1][0] if i + 1 < len(sigs) else max(end_beat, start) + 1e-9
        if stop <= start:
            continue
        out.append(np.arange(start, stop - 1e-9, length) if i + 1 < len(sigs)
                   else np.arange(start, stop, length))
    starts = np.concatenate(out) if out else np.zeros(0)
    starts = starts[starts <= end_beat + 1e-9]
    return starts if len(starts) else np.zeros(1)


def _events_by_source(midi) -> dict[str, list[tuple[float, str]]]:
    return {name: [(e.time, midi_text(e.text)) for e in getattr(midi, attr, None) or []]
            for name, attr in (("text", "text_events"), ("marker", "markers"), ("lyric", "lyrics"))}


def midi_text(text: str) -> str:
    """MIDI meta-event text as mido reads it (latin-1) back to what was meant: UTF-8 bytes (how
    `write_chords` and most tools store `Δ`) are decoded as UTF-8, anything else stays latin-1."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


@dataclass
class ChordSource:
    """Where a file's chords came from, what failed to parse, and the timeline in beats."""

    timeline: ChordTimeline
    unparsed: Counter
    source: str  # "text", "marker", "lyric", "sidecar" or "none"


def read_chord_source(midi, path=None, sidecar_text: str | None = None) -> ChordSource:
    """The chords of a `pretty_midi.PrettyMIDI` (see `read_chords`); `sidecar_text` stands in
    for reading `song.chords.txt` beside `path` (a worker gets the bytes it was handed)."""
    from ganmusic.encoding import midi_seconds_to_beats

    best = None
    for name, events in _events_by_source(midi).items():
        if not events:
            continue
        parsed = [try_parse(text) for _, text in events]
        n_chords = sum(ok and c is not None for c, ok in parsed)
        all_read = all(ok for _, ok in parsed)  # e.g. only "NC": a solo without changes
        if (n_chords or all_read) and (best is None or n_chords > best[0]):
            best = (n_chords, name, events, parsed)
    if best is not None:
        _, name, events, parsed = best
        beats = midi_seconds_to_beats(midi, np.array([time for time, _ in events], dtype=np.float64))
        unparsed = Counter(text.strip() for (_, text), (_, ok) in zip(events, parsed) if not ok)
        return ChordSource(ChordTimeline.from_changes(zip(beats, (text for _, text in events))), unparsed, name)
    if sidecar_text is None and path is not None and sidecar_path(path).is_file():
        sidecar_text = sidecar_path(path).read_text(encoding="utf-8", errors="replace")
    if sidecar_text is not None:
        end = float(midi_seconds_to_beats(midi, np.array([midi.get_end_time()]))[0])
        timeline, unparsed = parse_changes(sidecar_text, bar_starts(midi, end + 4096.0))
        return ChordSource(timeline, unparsed, "sidecar")
    # Nothing parsed anywhere: text that looks like a chord symbol is still reported.
    unparsed = Counter(text.strip() for events in _events_by_source(midi).values() for _, text in events
                       if _LOOKS_LIKE_CHORD.match(text.strip()) and not is_no_chord_symbol(text))
    return ChordSource(ChordTimeline(), unparsed, "none")


def read_chords(midi, path=None) -> tuple[ChordTimeline, Counter]:
    """A file's chord timeline (beats from its tempo map) and its unparsed symbols with counts.

    Chords come from the MIDI text, marker or lyric events, whichever holds the most parseable
    symbols (markers are kept by `encoding.load_midi`/`encoding.midi_from_bytes`); where none
    holds any, from the sidecar `song.chords.txt` beside `path` (`parse_changes`). An unparsed
    symbol starts a stretch of no chord.
    """
    src = read_chord_source(midi, path)
    return src.timeline, src.unparsed


def write_chords(midi, timeline: ChordTimeline, tempo: float) -> None:
    """Add the timeline's texts as MIDI text events (what `read_chords` reads back) to a
    `pretty_midi.PrettyMIDI` written at one `tempo`; text beyond ASCII (`Δ`, `ø`) is stored as
    UTF-8 bytes."""
    import pretty_midi

    seconds_per_beat = 60.0 / float(tempo)
    for beat, text in zip(timeline.beats.tolist(), timeline.texts):
        stored = text.encode("utf-8").decode("latin-1")  # mido writes latin-1: these bytes
        midi.text_events.append(pretty_midi.Text(stored, beat * seconds_per_beat))
    midi.text_events.sort(key=lambda e: e.time)
