"""A file's tokens with their per-token chord conditioning, and chord counts per corpus label.

**Conditioning.** `conditioning` gives every token an int row (`COND_FIELDS`): the chord
sounding at its note's onset (root, mask), the next chord (root, mask), the note's position in
its bar and the bar's length (grid steps), and the grid steps until the next chord change. BOS,
EOS and PAD get `NO_COND` (no chord). `chord_features` turns rows into model-ready float
features (numpy or jax.numpy); `transpose_conditioning` moves chords with the notes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ganmusic.chord_symbols import is_no_chord_symbol, rotate_mask
from ganmusic.chords import ChordTimeline, bar_starts, read_chord_source


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
    if len(tokens) == 0:
        return no_conditioning(0)
    out = rows_at(note_positions(tokens, vocab) + int(round(origin_beats * spb)), spb, timeline, bars)
    t = vocab.token_type[tokens]
    out[~((t == T_SHIFT) | (t == T_PITCH) | (t == T_DUR))] = NO_COND
    return out


def step_conditioning(timeline: ChordTimeline | None, bars: np.ndarray | None, n_steps: int,
                      steps_per_beat: int) -> np.ndarray:
    """int16 [n_steps, COND_SIZE]: row s is what a token whose note starts at grid step s gets
    from `conditioning` (the timeline and `bars` in beats from step 0; `bars=None`: 4/4). What
    `sampling.sample(step_cond=)` feeds a generator improvising over these changes."""
    if n_steps <= 0:
        return no_conditioning(0)
    return rows_at(np.arange(n_steps, dtype=np.int64), steps_per_beat, timeline, bars)


def rows_at(pos: np.ndarray, spb: int, timeline: ChordTimeline | None = None,
            bars: np.ndarray | None = None) -> np.ndarray:
    """int16 [N, COND_SIZE]: the conditioning row of a note starting at each grid position."""
    pos = np.asarray(pos, dtype=np.int64)
    out = no_conditioning(len(pos)).astype(np.int64)
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
    return np.clip(out, -32768, 32767).astype(np.int16)


def steps_from_tokens(tokens: np.ndarray, cond: np.ndarray, vocab, n_steps: int) -> np.ndarray:
    """int16 [n_steps, COND_SIZE]: per grid step from the first token's note, the changes a
    window of real tokens was played over, rebuilt from its per-token rows (the changes of a
    training window, for a generator to play over in the adversarial phase). Exact at note
    onsets; between them the chord switches at the announced change (`to_next`), and where
    more than one change falls between two notes only the first is seen. Past the last note the
    last row goes on (bars continue at its bar length)."""
    tokens = np.asarray(tokens, dtype=np.int64)
    cond = np.asarray(cond, dtype=np.int64)
    note = cond[:, BAR_STEPS] > 0
    if not note.any() or n_steps <= 0:
        return no_conditioning(max(n_steps, 0))
    onset, rows = note_positions(tokens, vocab)[note], cond[note]
    onset = onset - onset[0]
    keep = np.r_[True, np.diff(onset) > 0] if len(onset) > 1 else np.ones(1, bool)
    onset, rows = onset[keep], rows[keep]  # one row per onset (the first: stacked notes agree)
    s = np.arange(n_steps, dtype=np.int64)
    k = np.searchsorted(onset, s, side="right") - 1
    row, gone = rows[k].copy(), s - onset[k]
    length = np.maximum(row[:, BAR_STEPS], 1)
    row[:, BAR_STEP] = (row[:, BAR_STEP] + gone) % length
    to_next = row[:, TO_NEXT] - gone
    passed = (rows[k, TO_NEXT] >= 0) & (to_next <= 0)
    nk = np.minimum(k + 1, len(onset) - 1)
    later = rows[nk]
    row[:, TO_NEXT] = np.where(rows[k, TO_NEXT] < 0, -1, to_next)
    # Past the announced change: its chord sounds; the next one is the following note's view.
    after_next = np.where(later[:, ROOT] == rows[k, NEXT_ROOT], later[:, NEXT_ROOT], later[:, ROOT])
    after_mask = np.where(later[:, ROOT] == rows[k, NEXT_ROOT], later[:, NEXT_MASK], later[:, MASK])
    after_to = np.where(later[:, ROOT] == rows[k, NEXT_ROOT],
                        np.where(later[:, TO_NEXT] >= 0, onset[nk] + later[:, TO_NEXT] - s, -1), onset[nk] - s)
    last = nk == k
    row[:, ROOT] = np.where(passed, rows[k, NEXT_ROOT], row[:, ROOT])
    row[:, MASK] = np.where(passed, rows[k, NEXT_MASK], row[:, MASK])
    row[:, NEXT_ROOT] = np.where(passed, np.where(last, -1, after_next), row[:, NEXT_ROOT])
    row[:, NEXT_MASK] = np.where(passed, np.where(last, 0, after_mask), row[:, NEXT_MASK])
    row[:, TO_NEXT] = np.where(passed, np.where(last | (after_to <= 0), -1, after_to), row[:, TO_NEXT])
    return np.clip(row, -32768, 32767).astype(np.int16)


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


# ---------------------------------------------------------------------------------------------
# Chords per corpus label (`data inspect`)
# ---------------------------------------------------------------------------------------------


def chord_summary(labels_of_files: list[str], chord_info: list[dict], paths: list[str]) -> dict:
    """Chords per label: where they came from, coverage (share of notes under a parsed chord),
    parse rate (share of notes under a chord symbol whose symbol parsed), the quality histogram
    of the changes; and every unparsed symbol with its count and files."""
    labels: dict[str, dict] = {}
    unparsed: dict[str, dict] = {}
    for i, (label, info) in enumerate(zip(labels_of_files, chord_info)):
        info = info or {}
        row = labels.setdefault(label, {"files": 0, "files_with_chords": 0, "notes": 0,
                                        "notes_with_symbol": 0, "notes_with_chord": 0,
                                        "sources": {}, "qualities": {}})
        row["files"] += 1
        source = info.get("source", "none")
        row["sources"][source] = row["sources"].get(source, 0) + 1
        row["files_with_chords"] += int(bool(info.get("qualities")))  # at least one parsed chord
        for k in ("notes", "notes_with_symbol", "notes_with_chord"):
            row[k] += int(info.get(k, 0))
        for q, n in info.get("qualities", {}).items():
            row["qualities"][q] = row["qualities"].get(q, 0) + int(n)
        for sym, n in info.get("unparsed", {}).items():
            u = unparsed.setdefault(sym, {"symbol": sym, "count": 0, "files": {}})
            u["count"] += int(n)
            u["files"][paths[i]] = int(n)
    for row in labels.values():
        row["coverage"] = row["notes_with_chord"] / row["notes"] if row["notes"] else 0.0
        row["parsed_share"] = (row["notes_with_chord"] / row["notes_with_symbol"]
                               if row["notes_with_symbol"] else None)
        row["qualities"] = dict(sorted(row["qualities"].items(), key=lambda kv: (-kv[1], kv[0])))
    return {"labels": labels,
            "unparsed": sorted(unparsed.values(), key=lambda u: (-u["count"], u["symbol"]))}
