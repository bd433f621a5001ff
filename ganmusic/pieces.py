"""Whole pieces on the grid with their bar lines and, where the source has them, chords: from a
generated sequence (4/4 bars, no chords), a MIDI file, or a corpus file's tokens and per-token
chord conditioning. What the bar- and chord-level evaluation measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganmusic import encoding as enc
from ganmusic import lead_sheets
from ganmusic.encoding import EncodingConfig, Note, Vocab


@dataclass
class Piece:
    """A whole piece on the grid with its bar lines and, where the file has them, its chords.

    `bar_starts` in grid steps on the notes' time line (bars before the first note may start
    below 0); per note the sounding chord as a 12-bit pitch-class mask (0: no chord) and its root
    (-1), or None when the source has no chords at all."""

    notes: list[Note]
    bar_starts: np.ndarray
    group: str  # the performer where the corpus names one, else the file or sample
    chord_masks: np.ndarray | None = None
    chord_roots: np.ndarray | None = None
    file: str = ""  # the file, where the group is a performer


def piece_from_tokens(tokens: np.ndarray, vocab: Vocab, group: str) -> Piece:
    """A generated sequence: 4/4 bars from its first step, no chords."""
    notes = enc.tokens_to_notes(tokens, vocab)
    spb = vocab.config.steps_per_beat
    end = max((n.onset + n.duration for n in notes), default=0)
    return Piece(notes, np.arange(0, end + 4 * spb, 4 * spb, dtype=np.float64), group)


def read_piece(path: str | Path, config: EncodingConfig, group: str | None = None, file: str = "") -> Piece:
    """A MIDI file's notes as the encoding sees them with its bars and chords (`lead_sheets.encode_lead_sheet`)."""
    lead = lead_sheets.encode_lead_sheet(enc.load_midi(path), config, path=path)
    return piece_from_conditioning(lead.tokens, lead.cond, Vocab(config), group or str(path), file)


def piece_from_conditioning(tokens: np.ndarray, cond: np.ndarray, vocab: Vocab, group: str, file: str = "") -> Piece:
    """A corpus file (or a MIDI file encoded with its chords) from its tokens and per-token chord
    conditioning (`lead_sheets.conditioning`): bars from the rows' bar positions (empty bars between
    notes at the length of the bar before them), chords from the rows' current chord."""
    notes = enc.tokens_to_notes(tokens, vocab)
    types = vocab.token_type[np.asarray(tokens, dtype=np.int64)]
    rows = np.asarray(cond)[types == enc.T_SHIFT][: len(notes)].astype(np.int64)
    if not notes:
        return Piece(notes, np.zeros(1), group, None, None, file)
    onsets = np.array([n.onset for n in notes], dtype=np.int64)
    lengths = np.maximum(rows[:, lead_sheets.BAR_STEPS], 1)
    starts, first = np.unique(onsets - rows[:, lead_sheets.BAR_STEP], return_index=True)
    ends = np.append(starts[1:], starts[-1] + lengths[first[-1]])
    bar_starts = np.concatenate([np.arange(s, e, lengths[i]) for s, e, i in zip(starts, ends, first)])
    has_chords = bool((rows[:, lead_sheets.ROOT] >= 0).any())
    return Piece(notes, bar_starts.astype(np.float64), group, rows[:, lead_sheets.MASK] if has_chords else None,
                 rows[:, lead_sheets.ROOT] if has_chords else None, file)
