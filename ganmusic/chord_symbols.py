"""Chord symbols: the parser and transposition.

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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable

import numpy as np

from ganmusic.errors import GanmusicError

NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")  # the corpus's spelling
LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
ACCIDENTAL = {"b": -1, "♭": -1, "#": 1, "♯": 1}
NO_CHORD_SYMBOLS = frozenset({"NC", "N.C.", "N.C", "N/C", "N", "X", "NOCHORD"})
NO_CHORD = None  # "no chord" everywhere: parse_chord("NC") is None


class ChordSymbolError(GanmusicError):
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
