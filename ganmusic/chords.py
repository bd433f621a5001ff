"""Chord symbols, chord timelines, bars, and the per-token chord conditioning.

**Parser.** `parse_chord` turns a symbol into a `Chord` (root pitch class, 12-bit pitch-class
mask, bass pitch class) or `None` for "no chord". It reads

- lead-sheet syntax: `ROOT[QUALITY][/BASS]` with every quality of the shared lead-sheet corpus
  (`m7`, `m7b5`, `7alt`, `augMaj7`, `13sus4`, `7b9b13`, ...) and the usual variants: `C-7`,
  `Cmin7`, `Cmi7`, `CM7`, `CΔ7`, `C^7`, `Cø7`, `Co7`, `C°`, `C+`, `C7(b9)`, `C7(b9,#11)`,
  `Cm(maj7)`, `C6/9`, `Cadd9`, `C7sus`, `C5`, `Cm7-5`, `C/E`, unicode accidentals;
- Harte syntax (the MIREX/mir_eval form): `C:min7/b3`, `Bb:hdim7`, `D:(1,b3,5)`, `G:7(b9,*5)`,
  `N` and `X`;
- no-chord spellings: `NC`, `N.C.`, `N`, `X`.

Why our own parser and not a library (tried on the 431 distinct symbols of the shared
lead-sheet corpus, 144,161 chord events, and on ten common variants): pychord (small, 31 us a
symbol) fails 42 corpus symbols (1.2% of events: `7alt`, `aug7`, `mMaj7`, `13sus4`, `m13`) and 6
of the 10 variants (`C-7`, `Cmin7`, `CΔ7`, `Cø7`, `C+`, `Co7`); mir_eval's chord module reads
Harte syntax only (419 of 431 corpus symbols fail); music21's harmony module is a 114 MB
dependency, takes 1.4 ms a symbol, spells flats `-` (so `Eb`, `Bb7` fail: 148 symbols, 24% of
events) and has no `7alt`, `augMaj7` or `13sus4`; harte-library only reads Harte. The grammar
below is about 150 lines, reads all of them, and is covered by property tests (transposition,
enharmonics, round trip through MIDI text events).

Conventions: `pitch_classes` is a 12-bit int mask (bit k = pitch class k, C = 0) of the tones
that sound, *including the bass* of a slash chord (as in mir_eval's bitmaps). A dominant 11
chord leaves out the major third (`C11` = C G Bb D F); a major-third 13 chord leaves out the 11th
(`C13` = C E G Bb D A), a minor 13 keeps it. `7alt` is 1 3 b7 b9 #9 b5 #5. Harte shorthands keep
Harte's definitions. A symbol that cannot be parsed raises `ChordSymbolError`; readers count it,
report it by file and treat it as no chord.

**Timeline and bars.** `read_chords` finds a file's chords in its MIDI text, marker or lyric
events (whichever holds the most parseable symbols) or, where none do, in a sidecar
`song.chords.txt` beside `song.mid` (format: see `parse_changes`). `bar_starts` gives bar lines
from time-signature events (4/4 before the first and where a file has none).

**Conditioning.** `conditioning` gives every token an int row (`COND_FIELDS`): the chord
sounding at its note's onset (root, mask), the next chord (root, mask), the note's position in
its bar and the bar's length (grid steps), and the grid steps until the next chord change. BOS,
EOS and PAD get `NO_COND` (no chord). `chord_features` turns rows into model-ready float
features (numpy or jax.numpy); `transpose_conditioning` moves chords with the notes.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")  # the corpus's spelling
LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
ACCIDENTAL = {"b": -1, "♭": -1, "#": 1, "♯": 1}
NO_CHORD_SYMBOLS = frozenset({"NC", "N.C.", "N.C", "N/C", "N", "X", "NOCHORD"})
NO_CHORD = None  # "no chord" everywhere: parse_chord("NC") is None


class ChordSymbolError(ValueError):
    """A chord symbol the parser cannot read, with the symbol and the reason."""


@dataclass(frozen=True)
class Chord:
    """A parsed chord symbol. `pitch_classes`: 12-bit mask, bit k = pitch class k (C = 0),
    bass included; `quality`: a canonical quality name (lead-sheet syntax, "maj" for a major
    triad) where the chord's tones match one, else the quality text as written."""

    symbol: str
    root: int
    pitch_classes: int
    bass: int
    quality: str = field(default="", compare=False)

    @property
    def pcs(self) -> frozenset[int]:
        return frozenset(k for k in range(12) if self.pitch_classes >> k & 1)

    def transpose(self, semitones: int) -> "Chord":
        k = semitones % 12
        return Chord(transpose_symbol(self.symbol, k), (self.root + k) % 12,
                     rotate_mask(self.pitch_classes, k), (self.bass + k) % 12, self.quality)


def rotate_mask(mask, semitones, xp=np):
    """Pitch-class masks moved up by `semitones` (scalars, or arrays that broadcast)."""
    if isinstance(mask, (int, np.integer)) and isinstance(semitones, (int, np.integer)):
        k = int(semitones) % 12
        return ((int(mask) << k) | (int(mask) >> (12 - k))) & 0xFFF
    k = xp.mod(xp.asarray(semitones), 12).astype(xp.int32)
    mask = xp.asarray(mask).astype(xp.int32)
    return ((mask << k) | (mask >> (12 - k))) & 0xFFF


def mask_of(pcs: Iterable[int]) -> int:
    m = 0
    for p in pcs:
        m |= 1 << (int(p) % 12)
    return m


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------

_NOTE = r"[A-G](?:[b#♭♯])*"
_ROOT_RE = re.compile(_NOTE)
_BASS_NOTE_RE = re.compile(rf"/\s*({_NOTE})\s*$")
_BASS_DEGREE_RE = re.compile(r"/\s*([b#♭♯]*\d{1,2})\s*$")
_DEGREE = {1: 0, 2: 2, 3: 4, 4: 5, 5: 7, 6: 9, 7: 11, 8: 0, 9: 2, 10: 4, 11: 5, 12: 7, 13: 9}

HARTE_SHORTHANDS = {
    "maj": "1,3,5", "min": "1,b3,5", "dim": "1,b3,b5", "aug": "1,3,#5", "maj7": "1,3,5,7",
    "min7": "1,b3,5,b7", "7": "1,3,5,b7", "dim7": "1,b3,b5,bb7", "hdim7": "1,b3,b5,b7",
    "minmaj7": "1,b3,5,7", "maj6": "1,3,5,6", "min6": "1,b3,5,6", "9": "1,3,5,b7,9",
    "maj9": "1,3,5,7,9", "min9": "1,b3,5,b7,9", "11": "1,3,5,b7,9,11", "maj11": "1,3,5,7,9,11",
    "min11": "1,b3,5,b7,9,11", "13": "1,3,5,b7,9,11,13", "maj13": "1,3,5,7,9,11,13",
    "min13": "1,b3,5,b7,9,11,13", "sus2": "1,2,5", "sus4": "1,4,5", "7sus4": "1,4,5,b7",
    "1": "1", "5": "1,5",
}

# The qualities of the shared lead-sheet corpus (its README), the canonical names of the
# quality histogram; "" (a major triad) is shown as "maj".
CORPUS_QUALITIES = (
    "", "m", "7", "maj7", "m7", "m7b5", "dim", "dim7", "aug", "aug7", "augMaj7", "6", "m6", "69",
    "m69", "sus2", "sus4", "7sus4", "9sus4", "13sus4", "mMaj7", "9", "m9", "maj9", "11", "m11",
    "13", "m13", "7b9", "7#9", "7#11", "7b13", "7b9b13", "7#9#11", "7alt", "maj7#11", "add9",
    "madd9", "5")

# Lead-sheet quality tokens, tried in order at each position (longest and most specific first).
_TOKENS = [(kind, re.compile(rx)) for kind, rx in (
    ("skip", r"[\s,()\[\]]+"),
    ("alt", r"(?i:alt)"),
    ("add", r"(?i:add)\s*([b#♭♯+-]?)(2|4|6|9|11|13)"),
    ("omit", r"(?i:omit|no)\s*(1|3|5)"),
    ("sus", r"(?i:sus)(2|4)?"),
    ("majnum", r"(?:(?i:maj)|Ma|M|Δ|∆|\^)(7|9|11|13)"),
    ("majsym", r"[Δ∆\^]"),
    ("majword", r"(?i:maj)|M"),
    ("halfdim", r"[øØ]7?"),
    ("dim", r"(?i:dim)|°|o"),
    ("aug", r"(?i:aug)"),
    ("min", r"(?i:min)|mi|m"),
    ("altered", r"([b#♭♯+-])\s*(4|5|6|9|11|13)"),
    ("plus", r"\+"),
    ("minus", r"-"),
    ("num", r"69|6/9|13|11|9|7|6|5|4|2"),
)]


def _degree(text: str) -> int:
    m = re.fullmatch(r"([b#♭♯]*)(\d{1,2})", text.strip())
    if not m or int(m.group(2)) not in _DEGREE:
        raise ValueError(f"bad degree {text!r}")
    return (_DEGREE[int(m.group(2))] + sum(ACCIDENTAL[c] for c in m.group(1))) % 12


def _note_pc(name: str) -> int:
    return (LETTER_PC[name[0]] + sum(ACCIDENTAL[c] for c in name[1:])) % 12


def _harte_intervals(quality: str) -> set[int]:
    m = re.fullmatch(r"([A-Za-z0-9]*)\s*(?:\((.*)\))?", quality.strip())
    if not m:
        raise ValueError("bad Harte quality")
    short, degrees = m.group(1), m.group(2)
    if short and short not in HARTE_SHORTHANDS:
        raise ValueError(f"unknown Harte shorthand {short!r}")
    tones = {_degree(d) for d in HARTE_SHORTHANDS[short or ("maj" if degrees is None else "1")].split(",")}
    for d in (degrees or "").split(","):
        d = d.strip()
        if d.startswith("*"):
            tones.discard(_degree(d[1:]))
        elif d:
            tones.add(_degree(d))
    return tones


def _lead_sheet_intervals(quality: str) -> set[int]:
    """Intervals above the root of a lead-sheet quality; ValueError on anything unread."""
    third: int | None = 4
    fifths = {7}
    seventh: int | None = None
    tones: set[int] = set()
    major7 = dim = False
    pos, first = 0, True

    def set_seventh():
        nonlocal seventh
        if seventh is None:
            seventh = 11 if major7 else 9 if dim else 10

    while pos < len(quality):
        if first and quality[pos] in "-+":  # right after the root: C-7 is minor, C+ augmented
            kind, m = ("min" if quality[pos] == "-" else "aug"), None
            pos += 1
        else:
            for kind, rx in _TOKENS:
                m = rx.match(quality, pos)
                if m:
                    break
            else:
                raise ValueError(f"unexpected {quality[pos:]!r}")
            pos = m.end()
        if kind == "skip":
            continue
        num = None
        if kind == "min":
            third = 3
        elif kind in ("majnum", "majsym", "majword"):
            major7 = True
            if kind == "majsym":
                seventh = 11
            elif kind == "majnum":
                seventh, num = None, m.group(1)
        elif kind == "halfdim":
            third, fifths, seventh = 3, {6}, 10
        elif kind == "dim":
            third, fifths, dim = 3, {6}, True
        elif kind in ("aug", "plus"):
            fifths = {8}
        elif kind == "sus":
            third = 2 if m.group(1) == "2" else 5
        elif kind == "add":
            sign = {"b": -1, "♭": -1, "-": -1, "#": 1, "♯": 1, "+": 1}.get(m.group(1), 0)
            tones.add((_DEGREE[int(m.group(2))] + sign) % 12)
        elif kind == "omit":
            if m.group(1) == "3":
                third = None
            elif m.group(1) == "5":
                fifths = set()
        elif kind == "alt":
            set_seventh()
            tones |= {1, 3}
            fifths = {6, 8}
        elif kind == "altered":
            degree = int(m.group(2))
            tone = (_DEGREE[degree] + (1 if m.group(1) in "#♯+" else -1)) % 12
            if degree == 5:
                fifths = (fifths - {7}) | {tone}
            else:
                tones.add(tone)
        elif kind == "minus":
            raise ValueError("stray '-'")
        elif kind == "num":
            num = m.group(0)
        if num is not None:
            if num == "5":
                if not first:
                    raise ValueError("5 only as a power chord")
                third = None
            elif num == "2":
                tones.add(2)
            elif num == "4":
                third = 5
            elif num == "6":
                tones.add(9)
            elif num in ("69", "6/9"):
                tones |= {9, 2}
            else:
                set_seventh()
                if num in ("9", "11", "13"):
                    tones.add(2)
                if num == "11":
                    tones.add(5)
                    if third == 4 and not major7:
                        third = None
                if num == "13":
                    tones.add(9)
                    if third == 3:
                        tones.add(5)
        first = False
    return {0} | fifths | tones | ({third} if third is not None else set()) | (
        {seventh} if seventh is not None else set())


@lru_cache(maxsize=65536)
def parse_chord(symbol: str) -> Chord | None:
    """A chord symbol -> `Chord`, or `None` for no chord; `ChordSymbolError` when unreadable."""
    text = symbol.strip()
    if text.upper().replace(" ", "") in NO_CHORD_SYMBOLS:
        return NO_CHORD
    root_m = _ROOT_RE.match(text)
    if not root_m:
        raise ChordSymbolError(f"chord symbol {symbol!r}: no root note (A-G) at its start")
    root = _note_pc(root_m.group(0))
    rest = text[root_m.end():]
    bass = None
    try:
        if rest.endswith("6/9") and not rest.endswith("/6/9"):
            rest = rest[:-3] + "69"
        m = _BASS_NOTE_RE.search(rest)
        if m:
            bass, rest = _note_pc(m.group(1)), rest[: m.start()]
        else:
            m = _BASS_DEGREE_RE.search(rest)
            if m:
                bass, rest = (root + _degree(m.group(1))) % 12, rest[: m.start()]
        if rest.startswith(":"):
            intervals = _harte_intervals(rest[1:])
        else:
            intervals = _lead_sheet_intervals(rest)
    except (ValueError, KeyError) as exc:
        raise ChordSymbolError(f"chord symbol {symbol!r}: {exc}") from None
    chord_mask = rotate_mask(mask_of(intervals), root)
    bass = root if bass is None else bass
    return Chord(symbol, root, chord_mask | (1 << bass), bass, quality_name(mask_of(intervals), rest))


def try_parse(symbol: str) -> tuple[Chord | None, bool]:
    """`(chord or None, parsed?)`: never raises."""
    try:
        return parse_chord(symbol), True
    except ChordSymbolError:
        return NO_CHORD, False


def is_no_chord_symbol(symbol: str) -> bool:
    return symbol.strip().upper().replace(" ", "") in NO_CHORD_SYMBOLS


@lru_cache(maxsize=1)
def _quality_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for q in CORPUS_QUALITIES:
        table.setdefault(mask_of(_lead_sheet_intervals(q)), q or "maj")
    return table


def quality_name(relative_mask: int, written: str = "") -> str:
    """The canonical quality of a root-relative mask; the written quality where none matches."""
    return _quality_table().get(relative_mask, written.lstrip(":") or "?")


def chord_from_mask(root: int, mask: int) -> Chord | None:
    """A chord from conditioning values (root, mask); the symbol is lead-sheet where the tones
    match a canonical quality, else Harte (`C:(1,3,b7)`). `None` for root < 0."""
    if root < 0:
        return NO_CHORD
    rel = rotate_mask(int(mask), -int(root))
    q = _quality_table().get(rel)
    if q is not None:
        return parse_chord(NOTE_NAMES[root] + ("" if q == "maj" else q))
    names = ["1", "b2", "2", "b3", "3", "4", "b5", "5", "b6", "6", "b7", "7"]
    return parse_chord(f"{NOTE_NAMES[root]}:({','.join(names[k] for k in range(12) if rel >> k & 1)})")


def transpose_symbol(symbol: str, semitones: int) -> str:
    """The symbol with its root and note-name bass moved (spelled as the corpus spells them);
    a Harte interval bass and no-chord symbols stay as they are."""
    k = semitones % 12
    text = symbol.strip()
    if is_no_chord_symbol(text):
        return text
    m = _ROOT_RE.match(text)
    if not m:
        raise ChordSymbolError(f"chord symbol {symbol!r}: no root note (A-G) at its start")
    rest = text[m.end():]
    b = _BASS_NOTE_RE.search(rest)
    if b:
        rest = rest[: b.start(1)] + NOTE_NAMES[(_note_pc(b.group(1)) + k) % 12] + rest[b.end(1):]
    return NOTE_NAMES[(_note_pc(m.group(0)) + k) % 12] + rest


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


def parse_changes(text: str, bars: np.ndarray | None = None, beats_per_bar: float = 4.0
                  ) -> tuple[ChordTimeline, Counter]:
    """Chord changes written as text -> `(timeline, unparsed symbol counts)`.

    Two line formats (a sidecar `song.chords.txt` uses one of them; `#` starts a comment line):

    - `BEAT SYMBOL`: the chord starting at BEAT (quarter-note beats from the file's start, the
      beats of its tempo map), e.g. `0 Dm7` / `4 G7` / `8 Cmaj7`;
    - bars: `| Dm7 G7 | Cmaj7 | % |` (leading and trailing `|` optional, lines continue each
      other): the chords of a bar split it evenly, `/` repeats the chord before it for one more
      slot, `%` repeats the whole previous bar, `NC` is no chord. Bars start at `bars` (beats,
      e.g. from `bar_starts`) and go on past them at the last bar's length (`beats_per_bar`
      where none is given).
    """
    changes: list[tuple[float, str]] = []
    unparsed: Counter = Counter()
    bar_items: list[list[str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"(\d+(?:\.\d*)?)\s+(\S.*)", line)
        if m and "|" not in line:
            changes.append((float(m.group(1)), m.group(2).strip()))
            continue
        for piece in line.split("|"):
            piece = piece.strip().strip(":").strip()
            if not piece:
                continue
            slots = piece.split()
            if slots == ["%"]:
                if bar_items:
                    bar_items.append(list(bar_items[-1]))
                else:
                    unparsed["%"] += 1
                continue
            bar: list[str] = []
            for s in slots:
                if s == "/":
                    if bar or bar_items:
                        bar.append(bar[-1] if bar else bar_items[-1][-1])
                    else:
                        unparsed["/"] += 1
                else:
                    bar.append(s)
            if bar:
                bar_items.append(bar)
    if bar_items:
        starts = list(np.asarray(bars, dtype=np.float64)) if bars is not None and len(bars) else [0.0]
        length = (starts[-1] - starts[-2]) if len(starts) > 1 else beats_per_bar
        while len(starts) < len(bar_items) + 1:
            starts.append(starts[-1] + length)
        for b, bar in enumerate(bar_items):
            slot = (starts[b + 1] - starts[b]) / len(bar)
            changes += [(starts[b] + j * slot, s) for j, s in enumerate(bar)]
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


# ---------------------------------------------------------------------------------------------
# Per-token conditioning
# ---------------------------------------------------------------------------------------------

COND_FIELDS = ("root", "mask", "next_root", "next_mask", "bar_step", "bar_steps", "to_next")
ROOT, MASK, NEXT_ROOT, NEXT_MASK, BAR_STEP, BAR_STEPS, TO_NEXT = range(len(COND_FIELDS))
COND_SIZE = len(COND_FIELDS)
# root/next_root -1 and mask 0: no chord; to_next -1: no further change; bar_steps 0: no bar.
NO_COND = np.array([-1, 0, -1, 0, 0, 0, -1], dtype=np.int16)
MAX_BEATS_IN_BAR = 12  # beat-in-bar one-hot size in `chord_features` (longer bars clip)
MAX_TO_NEXT_BEATS = 8.0


def no_conditioning(n: int) -> np.ndarray:
    return np.tile(NO_COND, (n, 1))


def note_positions(tokens: np.ndarray, vocab) -> np.ndarray:
    """Grid position of every token: the onset of its note (cumulative SHIFT values)."""
    from ganmusic.encoding import T_SHIFT

    tokens = np.asarray(tokens, dtype=np.int64)
    shift = np.where(vocab.token_type[tokens] == T_SHIFT, vocab.token_value[tokens], 0)
    return np.cumsum(shift)


def conditioning(tokens: np.ndarray, vocab, timeline: ChordTimeline | None = None,
                 bars: np.ndarray | None = None, origin_beats: float = 0.0) -> np.ndarray:
    """int16 [T, COND_SIZE] rows for `tokens` (see `COND_FIELDS`).

    Token positions come from the tokens themselves (their SHIFT values), so the rows are what
    a decoded sequence holds; `origin_beats` is where step 0 of the tokens lies in the file
    (the timeline and `bars` are in file beats). `bars=None`: 4/4 from beat 0.
    """
    from ganmusic.encoding import T_DUR, T_PITCH, T_SHIFT

    tokens = np.asarray(tokens, dtype=np.int64)
    spb = vocab.config.steps_per_beat
    pos = note_positions(tokens, vocab) + int(round(origin_beats * spb))
    out = no_conditioning(len(tokens)).astype(np.int64)
    t = vocab.token_type[tokens]
    is_note = (t == T_SHIFT) | (t == T_PITCH) | (t == T_DUR)
    if len(tokens) == 0:
        return out.astype(np.int16)
    # Bars on the grid.
    if bars is None or len(bars) == 0:
        bar_steps = np.arange(0, int(pos.max()) + 4 * spb + 1, 4 * spb, dtype=np.int64)
    else:
        bar_steps = np.unique(np.rint(np.asarray(bars, dtype=np.float64) * spb).astype(np.int64))
        last = bar_steps[-1] - bar_steps[-2] if len(bar_steps) > 1 else 4 * spb
        if pos.max() >= bar_steps[-1] + last:
            extra = np.arange(bar_steps[-1] + last, int(pos.max()) + last + 1, max(last, 1))
            bar_steps = np.concatenate([bar_steps, extra])
    b = np.clip(np.searchsorted(bar_steps, pos, side="right") - 1, 0, None)
    nxt = np.concatenate([bar_steps[1:], [bar_steps[-1] + (bar_steps[-1] - bar_steps[-2]
                                                            if len(bar_steps) > 1 else 4 * spb)]])
    out[:, BAR_STEP] = np.maximum(pos - bar_steps[b], 0)
    out[:, BAR_STEPS] = nxt[b] - bar_steps[b]
    # Chords.
    if timeline is not None and len(timeline):
        change = timeline.steps(spb)
        roots = np.array([c.root if c is not None else -1 for c in timeline.chords] + [-1, -1])
        masks = np.array([c.pitch_classes if c is not None else 0 for c in timeline.chords] + [0, 0])
        i = np.searchsorted(change, pos, side="right") - 1  # -1: before the first change
        cur = np.where(i >= 0, i, len(timeline) + 1)
        nx = i + 1
        has_next = nx < len(timeline)
        nx_idx = np.where(has_next, nx, len(timeline))
        out[:, ROOT] = roots[cur]
        out[:, MASK] = masks[cur]
        out[:, NEXT_ROOT] = roots[nx_idx]
        out[:, NEXT_MASK] = masks[nx_idx]
        out[:, TO_NEXT] = np.where(has_next, np.concatenate([change, [0]])[nx_idx] - pos, -1)
    out[~is_note] = NO_COND
    return np.clip(out, -32768, 32767).astype(np.int16)


def bar_numbers(tokens: np.ndarray, cond: np.ndarray, vocab) -> np.ndarray:
    """Bar number (0 = the first note's bar) of every token, from the rows' bar positions;
    empty bars between notes are counted at the length of the bar before them. Specials: -1."""
    pos = note_positions(tokens, vocab)
    has_bar = cond[:, BAR_STEPS] > 0
    out = np.full(len(pos), -1, dtype=np.int64)
    if not has_bar.any():
        return out
    starts = (pos - cond[:, BAR_STEP])[has_bar]
    lengths = cond[has_bar, BAR_STEPS].astype(np.int64)
    first = np.flatnonzero(np.diff(starts, prepend=starts[0] - 1) != 0)  # first token of each new bar
    gaps = np.diff(starts[first]) / np.maximum(lengths[first][:-1], 1)
    numbers = np.concatenate([[0], np.cumsum(np.maximum(np.rint(gaps), 1))]).astype(np.int64)
    out[has_bar] = numbers[np.searchsorted(first, np.arange(len(starts)), side="right") - 1]
    return out


def transpose_conditioning(cond, semitones, xp=np):
    """Chords moved by `semitones` (a scalar, or one per leading row: shape [B] for [B, W, K])."""
    cond = xp.asarray(cond)
    k = xp.asarray(semitones)
    k = k.reshape(k.shape + (1,) * (cond.ndim - 1 - k.ndim)) if k.ndim else k
    out = cond
    for r, m in ((ROOT, MASK), (NEXT_ROOT, NEXT_MASK)):
        root, mask = cond[..., r], cond[..., m].astype(xp.int32)
        new_root = xp.where(root >= 0, xp.mod(root + k, 12), root).astype(cond.dtype)
        new_mask = rotate_mask(mask, k, xp).astype(cond.dtype)
        if xp is np:
            out = out.copy() if out is cond else out
            out[..., r], out[..., m] = new_root, new_mask
        else:
            out = out.at[..., r].set(new_root).at[..., m].set(new_mask)
    return out


def feature_size(steps_per_beat: int) -> int:
    return 4 * 12 + 2 + MAX_BEATS_IN_BAR + steps_per_beat + 2


def chord_features(cond, steps_per_beat: int, xp=np):
    """float32 [..., feature_size] model inputs from int rows [..., COND_SIZE]: current and next
    root one-hot (all zero for no chord) and 12 pitch-class bits each, a has-chord flag for
    both, the beat in the bar (one-hot, `MAX_BEATS_IN_BAR`), the step in the beat (one-hot),
    the fraction of the bar gone and the beats to the next change (scaled to 0..1, 1 when none
    comes). BOS, EOS and PAD rows give all zeros."""
    cond = xp.asarray(cond).astype(xp.int32)
    pcs = xp.arange(12)
    parts = []
    for r, m in ((ROOT, MASK), (NEXT_ROOT, NEXT_MASK)):
        root = cond[..., r : r + 1]
        parts.append((root == pcs).astype(xp.float32))
        parts.append(((cond[..., m : m + 1] >> pcs) & 1).astype(xp.float32))
        parts.append((root >= 0).astype(xp.float32))
    step = cond[..., BAR_STEP : BAR_STEP + 1]
    length = cond[..., BAR_STEPS : BAR_STEPS + 1]
    has_bar = length > 0
    beat = xp.minimum(step // steps_per_beat, MAX_BEATS_IN_BAR - 1)
    parts.append(((beat == xp.arange(MAX_BEATS_IN_BAR)) & has_bar).astype(xp.float32))
    parts.append(((step % steps_per_beat == xp.arange(steps_per_beat)) & has_bar).astype(xp.float32))
    parts.append(xp.where(has_bar, step / xp.maximum(length, 1), 0).astype(xp.float32))
    to_next = cond[..., TO_NEXT : TO_NEXT + 1]
    far = xp.where(to_next >= 0, xp.minimum(to_next / (steps_per_beat * MAX_TO_NEXT_BEATS), 1.0), 1.0)
    parts.append(xp.where(has_bar, far, 0.0).astype(xp.float32))  # BOS/EOS/PAD: all zeros
    return xp.concatenate(parts, axis=-1)


# ---------------------------------------------------------------------------------------------
# A file's tokens with their conditioning
# ---------------------------------------------------------------------------------------------


@dataclass
class LeadSheet:
    """A file encoded with its chords: tokens, int16 conditioning rows, the chord timeline with
    the notes' origin at beat 0 (what `decode_to_midi(..., chords=)` writes), and counts for
    `data inspect` (`info`: source, quality histogram of the changes, unparsed symbols, notes,
    notes under a chord symbol, notes under a parsed chord)."""

    tokens: np.ndarray
    cond: np.ndarray
    timeline: ChordTimeline
    info: dict


def encode_lead_sheet(midi, config, stats=None, path=None, sidecar_text: str | None = None) -> LeadSheet:
    """Tokens and per-token conditioning of a `pretty_midi.PrettyMIDI`."""
    from ganmusic import encoding as enc

    stats = stats if stats is not None else enc.EncodeStats()
    vocab = enc.Vocab(config)
    notes = enc.midi_to_notes(midi, config, stats)
    tokens = enc.notes_to_tokens(notes, vocab)
    origin = stats.origin_beats
    src = read_chord_source(midi, path, sidecar_text)
    positions = note_positions(tokens, vocab)
    end = origin + (positions[-1] / config.steps_per_beat if len(positions) else 0.0)
    bars = bar_starts(midi, end)
    cond = conditioning(tokens, vocab, src.timeline, bars, origin)
    spb = config.steps_per_beat
    note_rows = cond[1:-1:3] if len(tokens) > 2 else cond[:0]
    # Notes under a chord event (parsed or not): the bar "chords parsed for notes with a chord".
    is_symbol = np.array([not is_no_chord_symbol(t) for t in src.timeline.texts] + [False], dtype=bool)
    at = np.searchsorted(src.timeline.steps(spb), positions[1:-1:3] + int(round(origin * spb)), side="right") - 1
    under_symbol = is_symbol[at] if len(note_rows) else np.zeros(0, bool)
    grid_timeline = ChordTimeline(src.timeline.steps(spb) / spb, src.timeline.chords, src.timeline.texts)
    qualities = Counter(c.quality for c in src.timeline.chords if c is not None)
    info = {"source": src.source, "changes": len(src.timeline), "qualities": dict(qualities),
            "unparsed": dict(src.unparsed), "notes": int(len(note_rows)),
            "notes_with_symbol": int(under_symbol.sum()),
            "notes_with_chord": int((note_rows[:, ROOT] >= 0).sum())}
    return LeadSheet(tokens, cond, grid_timeline.shift(-origin), info)
