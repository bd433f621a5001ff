"""The two-sample realism test: can a fresh classifier tell generated music from real music?

Both sides are cut into chunks of the same number of notes; each chunk becomes a vector of
musical features (intervals, inter-onset intervals, durations, onset position in the beat,
pitch classes relative to the sounding chord where both sides have chords, and the scalar
features of `metrics.FEATURES`). A scikit-learn logistic regression, trained afresh (not the GAN's
critic, not the style classifier), is cross-validated with every group's chunks kept in one fold
(a group is a source file, or a performer where the corpus names one: a performer's solos are
not independent samples), on equal numbers of chunks per side, repeated with fresh fold
assignments and subsamples. Its accuracy is the figure: 0.5 means the two sides
cannot be told apart, 1.0 that every chunk gives itself away. The floor is the same test between
two halves of the real music, split by file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganmusic import metrics
from ganmusic.encoding import Note

FOLDS = 5
REPEATS = 3  # cross-validation repeats (fresh subsample and folds), averaged
FLOOR_SPLITS = 5  # real-vs-real: the mean over this many random halvings of the files
TOP_APART = 3  # features reported as what sets a source apart most


@dataclass
class Chunk:
    """`notes` consecutive notes of one piece; per note the sounding chord (12-bit pitch-class
    mask, 0 for none) and its root (-1 for none), or None when the source has no chords."""

    notes: list[Note]
    group: str  # the source file, performer or sample: chunks of one group stay in one fold
    chord_masks: np.ndarray | None = None
    chord_roots: np.ndarray | None = None
    file: str = ""  # the source file where the group is larger (a performer); "" when the group is the file

    @property
    def source_file(self) -> str:
        return self.file or self.group


def cut_chunks(notes: list[Note], notes_per_chunk: int, group: str, chord_masks=None,
               chord_roots=None, file: str = "") -> list[Chunk]:
    """Consecutive whole chunks of exactly `notes_per_chunk` notes (a shorter rest is dropped)."""
    out = []
    for start in range(0, len(notes) - notes_per_chunk + 1, notes_per_chunk):
        part = slice(start, start + notes_per_chunk)
        out.append(Chunk(notes[part], group,
                         None if chord_masks is None else np.asarray(chord_masks)[part],
                         None if chord_roots is None else np.asarray(chord_roots)[part], file))
    return out


def onset_phase_histogram(notes: list[Note], steps_per_beat: int) -> np.ndarray:
    """Where in the beat notes start, in twelfths of a beat (sixteenths and triplets apart)."""
    phase = np.rint(np.array([n.onset % steps_per_beat for n in notes]) * 12 / steps_per_beat).astype(np.int64) % 12
    counts = np.bincount(phase, minlength=12).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def chord_relative_histogram(notes: list[Note], chord_masks: np.ndarray | None,
                             chord_roots: np.ndarray | None) -> np.ndarray:
    """Pitch classes relative to the chord root over the notes with a chord (12 bins), then the
    chord-tone share and the share of notes with a chord (all zero for a chunk without chords)."""
    pitches = np.array([n.pitch for n in notes], dtype=np.int64)
    if chord_masks is None:
        chord_masks, chord_roots = np.zeros(len(notes), dtype=np.int64), np.full(len(notes), -1)
    has = np.asarray(chord_masks) != 0
    rel = (pitches[has] - np.asarray(chord_roots)[has]) % 12
    hist = np.bincount(rel, minlength=12).astype(np.float64) / max(has.sum(), 1)
    share = metrics.chord_tone_share(pitches, chord_masks)
    return np.concatenate([hist, [share or 0.0, has.mean() if len(has) else 0.0]])


def chunk_features(chunk: Chunk, steps_per_beat: int, with_chords: bool) -> np.ndarray:
    """One chunk's feature vector (fixed length for a given `with_chords`)."""
    values = metrics.sample_features(chunk.notes, steps_per_beat)
    parts = [np.ravel(np.asarray(values[name], dtype=np.float64)) for name in metrics.FEATURES]
    parts.append(onset_phase_histogram(chunk.notes, steps_per_beat))
    parts.append([np.mean([n.pitch for n in chunk.notes]) / 12.0])
    if with_chords:
        parts.append(chord_relative_histogram(chunk.notes, chunk.chord_masks, chunk.chord_roots))
    return np.concatenate(parts)


def features(chunks: list[Chunk], steps_per_beat: int, with_chords: bool) -> np.ndarray:
    return np.stack([chunk_features(c, steps_per_beat, with_chords) for c in chunks])


def has_chords(chunks: list[Chunk]) -> bool:
    """Some note of some chunk has a chord (a side where no file has chords has none: comparing
    it on chord features with a side that has them would only find that difference)."""
    return any(c.chord_masks is not None and np.any(c.chord_masks != 0) for c in chunks)


def grouped_accuracy(x_a: np.ndarray, groups_a, x_b: np.ndarray, groups_b, seed: int = 0,
                     folds: int = FOLDS, repeats: int = REPEATS) -> dict:
    """Cross-validated accuracy of a fresh classifier telling side a from side b, with the larger
    side subsampled to the smaller one's size and each group's chunks in one fold, averaged over
    `repeats` fresh subsamples and fold assignments. Returns the accuracy (out-of-fold
    predictions), the spread over all folds and counts; accuracy None when a side has fewer than
    two groups."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    groups_a, groups_b = np.asarray(groups_a, dtype=str), np.asarray(groups_b, dtype=str)
    n = min(len(x_a), len(x_b))
    k = min(folds, len(set(groups_a)), len(set(groups_b)))
    result = {"chunks_per_side": int(n), "groups": [len(set(groups_a)), len(set(groups_b))], "folds": int(k),
              "repeats": int(repeats), "accuracy": None, "fold_std": None}
    if k < 2 or n == 0:
        return result
    accuracies, fold_acc = [], []
    for r in range(repeats):
        rng = np.random.default_rng([seed, r])
        pick_a = np.sort(rng.permutation(len(x_a))[:n])
        pick_b = np.sort(rng.permutation(len(x_b))[:n])
        x = np.concatenate([x_a[pick_a], x_b[pick_b]])
        y = np.concatenate([np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)])
        # Prefixes keep a name that occurs on both sides two different groups.
        groups = np.concatenate([np.char.add("a:", groups_a[pick_a]), np.char.add("b:", groups_b[pick_b])])
        k_r = min(k, len(set(groups_a[pick_a])), len(set(groups_b[pick_b])))
        if k_r < 2:
            continue
        correct = np.zeros(len(y), dtype=bool)
        splitter = StratifiedGroupKFold(n_splits=k_r, shuffle=True, random_state=seed * 1000 + r)
        for train, test in splitter.split(x, y, groups):
            model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000))
            model.fit(x[train], y[train])
            hit = model.predict(x[test]) == y[test]
            correct[test] = hit
            fold_acc.append(float(hit.mean()))
        accuracies.append(float(correct.mean()))
    if accuracies:
        result.update(accuracy=float(np.mean(accuracies)), fold_std=float(np.std(fold_acc)))
    return result


def two_sample_test(real: list[Chunk], generated: list[Chunk], steps_per_beat: int, seed: int = 0,
                    folds: int = FOLDS) -> dict:
    """Real chunks against generated chunks of the same length (see the module doc). Chord
    features are used when both sides have chords."""
    if not real or not generated:
        return {"accuracy": None, "chunks_per_side": 0, "chords": False}
    with_chords = has_chords(real) and has_chords(generated)
    out = grouped_accuracy(features(real, steps_per_beat, with_chords), [c.group for c in real],
                           features(generated, steps_per_beat, with_chords), [c.group for c in generated],
                           seed, folds)
    out["chords"] = with_chords
    return out


def real_vs_real(real: list[Chunk], steps_per_beat: int, seed: int = 0, folds: int = FOLDS,
                 splits: int = FLOOR_SPLITS) -> dict:
    """The floor: the same test between two halves of the real chunks, split by file and with each
    file's chunks in one fold, as the mean over `splits` random halvings. (By file, not by
    performer: a held-out split of a few performers has too few groups for grouped folds, and
    leave-group-out with a handful of groups falls below chance.)"""
    if not real:
        return {"accuracy": None, "chunks_per_side": 0, "chords": False}
    with_chords = has_chords(real)
    x = features(real, steps_per_beat, with_chords)
    groups = np.array([c.source_file for c in real], dtype=str)
    names = np.unique(groups)
    results = []
    for k in range(splits):
        rng = np.random.default_rng([seed, k])
        half = set(rng.permutation(names)[: len(names) // 2])
        in_a = np.array([g in half for g in groups])
        results.append(grouped_accuracy(x[in_a], groups[in_a], x[~in_a], groups[~in_a], seed * 1000 + k, folds))
    accs = [r["accuracy"] for r in results if r["accuracy"] is not None]
    return {"accuracy": float(np.mean(accs)) if accs else None,
            "split_std": float(np.std(accs)) if accs else None, "splits": len(accs),
            "chunks_per_side": results[0]["chunks_per_side"], "chords": with_chords}


def most_apart(rows: list[dict], real_rows: list[dict], top: int = TOP_APART) -> list[dict]:
    """The `top` features (a scalar of `metrics.FEATURES`, or one bin of a histogram) whose chunk
    means differ most between a source's chunks (`rows`, as `evaluate.chunk_rows` gives them) and
    the real ones, in pooled standard deviations (Cohen's d): what gives the source away, for a
    person to read beside the two-sample accuracy. Each: feature, value, real value, d."""
    found = []
    for name in metrics.FEATURES:
        source = np.array([r[name] for r in rows], np.float64).reshape(len(rows), -1)
        real = np.array([r[name] for r in real_rows], np.float64).reshape(len(real_rows), -1)
        bins = metrics.HISTOGRAM_BINS.get(name)
        for k in range(source.shape[1]):
            spread = np.sqrt((source[:, k].var() + real[:, k].var()) / 2)
            if spread > 1e-9:  # a feature constant on both sides tells nothing
                label = f"{metrics.FEATURE_UNITS[name]}: {bins[k]}" if bins else name.replace("_", " ")
                found.append({"feature": label, "value": float(source[:, k].mean()), "real": float(real[:, k].mean()),
                              "d": float((source[:, k].mean() - real[:, k].mean()) / spread)})
    return sorted(found, key=lambda f: -abs(f["d"]))[:top]
