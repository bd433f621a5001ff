"""Pictures: corpus histograms, piano rolls, training curves. Files only, no windows."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: we only ever write PNG files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ganmusic import encoding as enc  # noqa: E402


def save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def corpus_histograms(corpus, path: str | Path) -> Path:
    """Pitch, duration and shift histograms per label."""
    vocab = corpus.vocab
    spb = corpus.config.steps_per_beat
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for label in sorted(set(corpus.labels)):
        idx = [i for i, lab in enumerate(corpus.labels) if lab == label]
        toks = np.concatenate([corpus.sequence(i) for i in idx]).astype(np.int64)
        types, values = vocab.token_type[toks], vocab.token_value[toks]
        kw = dict(alpha=0.5, density=True, label=f"{label} ({len(idx)} files)")
        axes[0].hist(values[types == enc.T_PITCH], bins=np.arange(corpus.config.pitch_min - 0.5,
                                                                  corpus.config.pitch_max + 1.5), **kw)
        axes[1].hist(values[types == enc.T_DUR] / spb, bins=np.arange(0, 4.01, 1 / spb), **kw)
        axes[2].hist(values[types == enc.T_SHIFT] / spb, bins=np.arange(0, 4.01, 1 / spb), **kw)
    for ax, title in zip(axes, ("pitch (MIDI)", "duration (beats, <= 4)", "onset shift (beats, <= 4)")):
        ax.set_title(title)
        legend(ax)
    fig.suptitle(f"{corpus.root.name}: token histograms ({spb} steps per beat)")
    return save(fig, path)


def legend(ax, **kw) -> None:
    """A legend only where something is labelled (matplotlib warns on an empty one)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kw)


def _history_points(history: list[dict], key: str) -> list[tuple]:
    return [(h["step"], h[key]) for h in history if h.get(key) is not None]


def _step_panel(ax, lines: dict[str, list[tuple]], title: str) -> None:
    """(step, value) lines on one axis, each labelled; empty lines are left out."""
    for label, points in lines.items():
        if points:
            ax.plot(*zip(*points), marker=".", label=label)
    ax.set_xlabel("step")
    ax.set_title(title)
    legend(ax)
    ax.grid(alpha=0.3)


def training_curves(history: list[dict], path: str | Path, title: str, panels: dict[str, list[str]]) -> Path:
    """One panel per entry of `panels`, each plotting the named history keys against `step`."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (name, keys) in zip(axes[0], panels.items()):
        _step_panel(ax, {key: _history_points(history, key) for key in keys}, name)
    fig.suptitle(title)
    return save(fig, path)


def window_timeline(window_probs, window_tokens: int, path: str | Path, title: str) -> Path:
    """P(style) per window along the file, with the 0.5 line."""
    fig, ax = plt.subplots(figsize=(10, 3))
    x = np.arange(len(window_probs)) * window_tokens / 3  # windows start about this many notes apart
    ax.step(x, window_probs, where="post", color="tab:purple")
    ax.fill_between(x, window_probs, step="post", alpha=0.3, color="tab:purple")
    ax.axhline(0.5, color="gray", ls="--", lw=1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("note index (window start)")
    ax.set_ylabel("P")
    ax.set_title(title)
    return save(fig, path)


# Piano rolls are written straight from an array of palette indices (no figure, no text
# rendering, a 5-colour PNG): milliseconds a song instead of most of a second, so `sample --num
# 256` spends its time generating. Time runs left to right, high pitches on top; the title goes
# into the PNG's metadata ("Title").
ROLL_PITCH_PX = 6  # rows per pitch
ROLL_MAX_WIDTH = 2400  # pixels; a step gets up to 4 columns, fewer in long songs
ROLL_PALETTE = np.array([(255, 255, 255), (241, 243, 246), (200, 200, 200),  # background, black keys, bar lines
                         (31, 119, 180), (153, 153, 153)], np.uint8)  # notes (tab:blue), primer notes (grey)
BACKGROUND, BLACK_KEY, BAR, NOTE, PRIMER = range(len(ROLL_PALETTE))
BLACK_KEYS = np.array([1, 3, 6, 8, 10])  # pitch classes of the black keys


def piano_roll_indices(notes, steps_per_beat: int, primer_notes: int = 0) -> np.ndarray:
    """Notes as bars over time, as `ROLL_PALETTE` indices uint8 `[H, W]`: black-key rows faintly
    shaded, a line every 4 beats (a 4/4 bar), the primer (if any) in grey, a one-pixel gap after
    each note and between pitches so repeated and neighbouring notes stay apart."""
    if not notes:
        return np.full((4 * ROLL_PITCH_PX, 4 * steps_per_beat), BACKGROUND, np.uint8)
    onsets = np.array([n.onset for n in notes])
    ends = onsets + np.array([n.duration for n in notes])
    pitches = np.array([n.pitch for n in notes])
    low, high = int(pitches.min()) - 2, int(pitches.max()) + 2
    bar = 4 * steps_per_beat
    steps = -(-int(ends.max()) // bar) * bar  # whole bars
    scale = min(4.0, ROLL_MAX_WIDTH / steps)  # columns per step: up to 4, fewer for long songs
    width = max(int(steps * scale), 1)
    rows = np.where(np.isin(np.arange(high, low - 1, -1) % 12, BLACK_KEYS), BLACK_KEY, BACKGROUND)
    image = np.repeat(rows.astype(np.uint8), ROLL_PITCH_PX)[:, None].repeat(width, axis=1)
    if bar * scale >= 4:  # bar lines while they stay apart
        image[:, (np.arange(0, steps, bar) * scale).astype(int)] = BAR
    starts = (onsets * scale).astype(int)
    stops = np.maximum((ends * scale).astype(int) - 1, starts + 1)  # a gap after each note, >= 1 column
    for k, (start, stop, pitch) in enumerate(zip(starts.tolist(), stops.tolist(), pitches.tolist())):
        row = (high - pitch) * ROLL_PITCH_PX
        image[row : row + ROLL_PITCH_PX - 1, start:stop] = PRIMER if k < primer_notes else NOTE
    return image


def piano_roll_image(notes, steps_per_beat: int, primer_notes: int = 0) -> np.ndarray:
    """`piano_roll_indices` in colour: uint8 RGB `[H, W, 3]`."""
    return ROLL_PALETTE[piano_roll_indices(notes, steps_per_beat, primer_notes)]


def piano_roll(notes, steps_per_beat: int, path: str | Path, title: str, primer_notes: int = 0) -> Path:
    """The piano roll of `notes` as a palette PNG (the title in its metadata)."""
    from PIL import Image  # Pillow: matplotlib's own dependency
    from PIL.PngImagePlugin import PngInfo

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(piano_roll_indices(notes, steps_per_beat, primer_notes), mode="P")
    image.putpalette(ROLL_PALETTE.ravel().tolist())
    info = PngInfo()
    info.add_text("Title", title)
    image.save(path, pnginfo=info, compress_level=1)  # 2-3x faster than the default 6 here
    return path


def feature_histograms(rows_by_source: dict[str, list[dict]], scalar_features: list[str],
                       histogram_bins: dict[str, list[str]], path: str | Path) -> Path:
    """One panel per feature, every source overlaid: per-chunk values as density histograms for
    numbers, the mean histogram as lines for histogram features."""
    names = list(scalar_features) + list(histogram_bins)
    cols = 4
    fig, axes = plt.subplots(-(-len(names) // cols), cols, figsize=(4.5 * cols, 3.2 * -(-len(names) // cols)),
                             squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        for k, (source, rows) in enumerate(rows_by_source.items()):
            color = "black" if k == 0 else f"C{k - 1}"
            values = [r[name] for r in rows if r.get(name) is not None]
            if name in histogram_bins:
                ax.plot(np.mean(values, axis=0), marker=".", color=color, label=source)
                labels = histogram_bins[name]
                ticks = np.arange(len(labels))[:: max(len(labels) // 9, 1)]
                ax.set_xticks(ticks, [labels[t] for t in ticks])
            else:
                values = np.asarray(values, dtype=float)
                lo, hi = float(values.min()), float(values.max())
                ax.hist(values, bins=np.linspace(lo, hi + 1e-9, 21) if hi > lo else 1, density=True,
                        histtype="step" if k else "stepfilled", alpha=1.0 if k else 0.25, color=color, label=source)
        ax.set_title(name.replace("_", " "))
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    legend(axes[0, 0], fontsize=8)
    fig.suptitle("features per chunk: reference (black, filled) against generated")
    fig.tight_layout()
    return save(fig, path)


def compare_curves(histories: dict[str, list[dict]], key: str, path: str | Path, title: str) -> Path:
    """One history key against step, one line per run."""
    fig, ax = plt.subplots(figsize=(8, 4))
    _step_panel(ax, {name: _history_points(history, key) for name, history in histories.items()}, title)
    return save(fig, path)
