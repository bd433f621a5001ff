"""Token windows and batches cut from a corpus: random training batches (`WindowSampler`, a pure
function of (seed, step)), every window of a split (`eval_windows`), windows of any sequences
(`tile_windows`), and fixed-size padded chunks for one compilation (`fixed_batches`). Every
batch carries the chord conditioning rows of its tokens (`Batch.cond`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganmusic import lead_sheets as ls
from ganmusic import encoding as enc
from ganmusic.data import Corpus, CorpusError
from ganmusic.encoding import Vocab


@dataclass
class Batch:
    tokens: np.ndarray  # int32 [B, W]
    mask: np.ndarray  # bool [B, W]
    labels: np.ndarray  # int32 [B]: 1 for the positive label
    file_index: np.ndarray  # int64 [B]
    cond: np.ndarray | None = None  # int32 [B, W, lead_sheets.COND_SIZE]: chord conditioning per token

    def __post_init__(self):
        if self.cond is None:
            self.cond = np.broadcast_to(ls.NO_COND.astype(np.int32), self.tokens.shape + (ls.COND_SIZE,))


def window_starts(corpus: Corpus, indices: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Every note-boundary start (BOS or SHIFT) of the given files whose window fits in the file;
    a file shorter than the window gets one start at 0. Returns (file index, absolute start)."""
    types = corpus.vocab.token_type[corpus.tokens.astype(np.int64)]
    files, starts = [], []
    for i in indices:
        lo, hi = corpus.offsets[i], corpus.offsets[i + 1]
        if hi - lo <= window:
            s = np.array([lo])
        else:
            local = types[lo : hi - window + 1]
            s = lo + np.flatnonzero((local == enc.T_SHIFT) | (local == enc.T_BOS))
        files.append(np.full(len(s), i))
        starts.append(s)
    if not files:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(files).astype(np.int64), np.concatenate(starts).astype(np.int64)


def cut_windows(corpus: Corpus, files: np.ndarray, starts: np.ndarray, window: int,
                transpose: np.ndarray | None = None) -> Batch:
    """Windows at the given starts, padded with PAD (and no-chord rows) past each file's end;
    `transpose` moves the notes and the chords of each window."""
    ends = corpus.offsets[files + 1]
    pos = starts[:, None] + np.arange(window)[None, :]
    mask = pos < ends[:, None]
    clipped = np.minimum(pos, len(corpus.tokens) - 1)
    tokens = np.where(mask, corpus.tokens[clipped], enc.PAD).astype(np.int32)
    cond = np.where(mask[..., None], corpus.cond[clipped], ls.NO_COND).astype(np.int32)
    if transpose is not None:
        is_pitch = corpus.vocab.token_type[tokens] == enc.T_PITCH
        tokens = np.where(is_pitch, tokens + transpose[:, None], tokens).astype(np.int32)
        cond = ls.transpose_conditioning(cond, transpose)
    labels = corpus.is_positive[files].astype(np.int32)
    return Batch(tokens, mask, labels, files, cond)


def transpose_limits(corpus: Corpus, files: np.ndarray, starts: np.ndarray, window: int,
                     limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Per window, the lowest and highest semitone shift within +-limit that keep pitches in range."""
    vocab = corpus.vocab
    batch = cut_windows(corpus, files, starts, window)
    values = vocab.token_value[batch.tokens]
    is_pitch = (vocab.token_type[batch.tokens] == enc.T_PITCH) & batch.mask
    hi_pitch = np.where(is_pitch, values, -10**6).max(axis=1)
    lo_pitch = np.where(is_pitch, values, 10**6).min(axis=1)
    cfg = corpus.config
    low = np.where(is_pitch.any(1), np.maximum(-limit, cfg.pitch_min - lo_pitch), 0)
    high = np.where(is_pitch.any(1), np.minimum(limit, cfg.pitch_max - hi_pitch), 0)
    return low, high


class WindowSampler:
    """Random training windows. Batch `k` is a pure function of (seed, k), so a resumed run
    sees exactly the batches it would have seen.

    `balance` draws the positive and the other labels equally often (class imbalance);
    `positive` True samples the positive label alone (the generator's data), False the other
    labels alone, None everything;
    `transpose` is the augmentation range in semitones (0 turns it off).
    """

    def __init__(self, corpus: Corpus, split: str, window: int, batch_size: int, seed: int = 0,
                 transpose: int = 6, balance: bool = True, positive: bool | None = None):
        self.corpus, self.window, self.batch_size = corpus, window, batch_size
        self.seed, self.transpose = seed, transpose
        indices = corpus.indices(split, positive=positive)
        if len(indices) == 0:
            which = {True: "positive ", False: "other-label ", None: ""}[positive]
            raise CorpusError(f"{corpus.root}: no {which}files in the {split} split")
        self.files, self.starts = window_starts(corpus, indices, window)
        is_positive = corpus.is_positive[self.files]
        if balance and positive is None and is_positive.any() and (~is_positive).any():
            # Each class gets half the probability mass, spread evenly over its windows.
            self.p = np.where(is_positive, 0.5 / is_positive.sum(), 0.5 / (~is_positive).sum())
        else:
            self.p = np.full(len(self.files), 1.0 / len(self.files))
        self.cdf = np.cumsum(self.p)
        self.cdf /= self.cdf[-1]

    def batch(self, k: int) -> Batch:
        rng = np.random.default_rng([self.seed, k])
        pick = np.minimum(np.searchsorted(self.cdf, rng.random(self.batch_size), side="right"),
                          len(self.cdf) - 1)
        files, starts = self.files[pick], self.starts[pick]
        shift = None
        if self.transpose:
            low, high = transpose_limits(self.corpus, files, starts, self.window, self.transpose)
            shift = low + np.floor(rng.random(self.batch_size) * (high - low + 1)).astype(np.int64)
        return cut_windows(self.corpus, files, starts, self.window, shift)

    def __iter__(self):
        k = 0
        while True:
            yield self.batch(k)
            k += 1


def tile_windows(sequences: list[np.ndarray], vocab: Vocab, window: int,
                 conds: list[np.ndarray] | None = None) -> Batch:
    """Deterministic windows tiling each sequence: note-boundary starts at least `window` apart,
    padded with PAD. `file_index` says which sequence a window came from; `conds` (chord rows
    aligned with each sequence) are cut the same way."""
    tokens, masks, owners, cond_rows = [], [], [], []
    for k, seq in enumerate(sequences):
        seq = np.asarray(seq, dtype=np.int64)
        types = vocab.token_type[seq]
        boundary = np.flatnonzero((types == enc.T_SHIFT) | (types == enc.T_BOS))
        boundary = boundary[boundary <= max(len(seq) - window, 0)] if len(seq) > window else np.array([0])
        last = -window
        for start in boundary:
            if start - last >= window:
                piece = seq[start : start + window]
                tokens.append(np.pad(piece, (0, window - len(piece)), constant_values=enc.PAD))
                if conds is not None:
                    rows = conds[k][start : start + window]
                    cond_rows.append(np.concatenate([rows, ls.no_conditioning(window - len(rows))]))
                masks.append(np.arange(window) < len(piece))
                owners.append(k)
                last = start
    if not tokens:
        return Batch(np.zeros((0, window), np.int32), np.zeros((0, window), bool),
                     np.zeros(0, np.int32), np.zeros(0, np.int64))
    return Batch(np.stack(tokens).astype(np.int32), np.stack(masks), np.zeros(len(tokens), np.int32),
                 np.array(owners, dtype=np.int64),
                 np.stack(cond_rows).astype(np.int32) if conds is not None else None)


def eval_windows(corpus: Corpus, indices: np.ndarray, window: int) -> Batch:
    """`tile_windows` over corpus files; `file_index` and `labels` refer to the corpus."""
    indices = np.asarray(indices, dtype=np.int64)
    batch = tile_windows([corpus.sequence(i) for i in indices], corpus.vocab, window,
                         [corpus.conditioning(i) for i in indices])
    files = indices[batch.file_index] if len(indices) else batch.file_index
    return Batch(batch.tokens, batch.mask, corpus.is_positive[files].astype(np.int32), files, batch.cond)


def fixed_batches(tokens: np.ndarray, mask: np.ndarray, batch_size: int):
    """`(tokens, mask, n)` chunks of exactly `batch_size` rows, the last one zero-padded (`n`
    real rows), so a jitted function over them compiles once. `tokens` may have more axes
    (chord rows `[N, W, K]`)."""
    for lo in range(0, len(tokens), batch_size):
        t, m = tokens[lo : lo + batch_size], mask[lo : lo + batch_size]
        n = len(t)
        if n < batch_size:
            rows = ((0, batch_size - n),)
            t, m = np.pad(t, rows + ((0, 0),) * (t.ndim - 1)), np.pad(m, rows + ((0, 0),) * (m.ndim - 1))
        yield t, m, n
