"""Pictures: corpus histograms, piano rolls, training curves. Files only, no windows."""

from __future__ import annotations

from pathlib import Path

import functools

import numpy as np

from ganmusic import encoding as enc


@functools.cache
def pyplot():
    """matplotlib's pyplot, headless (we only ever write PNG files). Imported on first use: the
    piano rolls, which writer processes draw by the hundred, need only PIL."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return path


def corpus_histograms(corpus, path: str | Path) -> Path:
    """Pitch, duration and shift histograms per label."""
    vocab = corpus.vocab
    spb = corpus.config.steps_per_beat
    fig, axes = pyplot().subplots(1, 3, figsize=(15, 4))
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


FEW_POINTS = 5  # lines with this many points or fewer are drawn with large markers


def _history_points(history: list[dict], key: str) -> list[tuple]:
    return [(h["step"], h[key]) for h in history if h.get(key) is not None]


def _step_panel(ax, lines: dict[str, list[tuple]], title: str) -> None:
    """(step, value) lines on one axis, each labelled; empty lines are left out."""
    for label, points in lines.items():
        if points:  # few points (a short adversarial phase logs one or two) get markers one can see
            ax.plot(*zip(*points), marker="o" if len(points) <= FEW_POINTS else ".",
                    markersize=7 if len(points) <= FEW_POINTS else 4, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel(title)
    ax.set_title(title)
    legend(ax)
    ax.grid(alpha=0.3)


def training_curves(history: list[dict], path: str | Path, title: str, panels: dict[str, list[str]]) -> Path:
    """One panel per entry of `panels`, each plotting the named history keys against `step`."""
    fig, axes = pyplot().subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (name, keys) in zip(axes[0], panels.items()):
        _step_panel(ax, {key: _history_points(history, key) for key in keys}, name)
    fig.suptitle(title)
    return save(fig, path)


def window_timeline(window_probs, window_tokens: int, path: str | Path, title: str) -> Path:
    """P(style) per window along the file, with the 0.5 line."""
    fig, ax = pyplot().subplots(figsize=(10, 3))
    probs = np.asarray(window_probs, dtype=float)
    # Windows start about window_tokens / 3 notes apart; each is drawn over its whole width, the
    # last one included (the step needs one more edge than there are windows).
    edges = np.arange(len(probs) + 1) * window_tokens / 3
    values = np.append(probs, probs[-1:])
    ax.step(edges, values, where="post", color="tab:purple")
    ax.fill_between(edges, values, step="post", alpha=0.3, color="tab:purple")
    ax.axhline(0.5, color="gray", ls="--", lw=1)
    ax.set_ylim(0, 1)
    ax.set_xlim(0, edges[-1])
    ax.set_xlabel(f"notes (one window: about {window_tokens / 3:.0f} notes)")
    ax.set_ylabel("P(style) of the window")
    ax.set_title(title)
    return save(fig, path)


# Piano rolls are written straight from an array of palette indices (no figure, a 6-colour PNG):
# milliseconds a song instead of most of a second, so `sample --num 256` spends its time
# generating. Time runs left to right, high pitches on top, note names in a column on the left;
# the title goes into the PNG's metadata ("Title"); a song over changes gets its chord symbols in
# a strip above the bars.
ROLL_PITCH_PX = 6  # rows per pitch
ROLL_MAX_WIDTH = 2400  # pixels; a step gets up to 4 columns, fewer in long songs
ROLL_PALETTE = np.array([(255, 255, 255), (241, 243, 246), (200, 200, 200),  # background, black keys, bar lines
                         (31, 119, 180), (153, 153, 153), (40, 40, 40)], np.uint8)  # notes (tab:blue), primer, text
BACKGROUND, BLACK_KEY, BAR, NOTE, PRIMER, TEXT = range(len(ROLL_PALETTE))
BLACK_KEYS = np.array([1, 3, 6, 8, 10])  # pitch classes of the black keys
ROLL_LABEL_PX = 30  # the note-name column left of the roll
CHORD_ROWS, CHORD_ROW_PX = 2, 13  # chord symbols above the roll: two staggered rows of text
EMPTY_RANGE = (58, 74)  # the rows of a roll without notes (a song over changes that played none)


def roll_range(notes) -> tuple[int, int]:
    """The lowest and highest pitch row of a piano roll: the notes' range and two more each side."""
    pitches = [n.pitch for n in notes]
    return (min(pitches) - 2, max(pitches) + 2) if pitches else EMPTY_RANGE


def pitch_labels(low: int, high: int) -> list[tuple[int, str]]:
    """`(pitch, name)` for the rows to name: every C (C4 is MIDI 60), or the top and bottom rows
    where the range holds no C."""
    import pretty_midi

    pitches = [p for p in range(low, high + 1) if p % 12 == 0] or sorted({low, high})
    return [(p, pretty_midi.note_number_to_name(p)) for p in pitches]


def roll_scale(steps: int) -> float:
    """Columns per grid step for a roll `steps` long: up to 4, fewer for long songs."""
    return min(4.0, ROLL_MAX_WIDTH / max(steps, 1))


def roll_steps(notes, steps_per_beat: int, bars=None, end: int = 0) -> int:
    """Grid steps a roll spans: whole 4/4 bars through the last note's end or `end`, whichever
    is later; with given `bars`, up to that point."""
    last = max([n.onset + n.duration for n in notes] + [int(end), 1])
    bar = 4 * steps_per_beat
    return -(-last // bar) * bar if bars is None else last


def piano_roll_indices(notes, steps_per_beat: int, primer_notes: int = 0, bars=None, end: int = 0) -> np.ndarray:
    """Notes as bars over time, as `ROLL_PALETTE` indices uint8 `[H, W]`: black-key rows faintly
    shaded, a line at every bar (`bars`: bar-start steps; default every 4 beats, a 4/4 bar), the
    primer (if any) in grey, a one-pixel gap after each note and between pitches so repeated and
    neighbouring notes stay apart. The roll spans whole bars through the last note's end or
    `end` (steps), whichever is later."""
    bar = 4 * steps_per_beat
    if not notes and not end:
        return np.full((4 * ROLL_PITCH_PX, bar), BACKGROUND, np.uint8)
    steps = roll_steps(notes, steps_per_beat, bars, end)
    onsets = np.array([n.onset for n in notes], dtype=np.int64)
    ends = onsets + np.array([n.duration for n in notes], dtype=np.int64)
    pitches = np.array([n.pitch for n in notes], dtype=np.int64)
    low, high = roll_range(notes)
    scale = roll_scale(steps)
    width = max(int(steps * scale), 1)
    rows = np.where(np.isin(np.arange(high, low - 1, -1) % 12, BLACK_KEYS), BLACK_KEY, BACKGROUND)
    image = np.repeat(rows.astype(np.uint8), ROLL_PITCH_PX)[:, None].repeat(width, axis=1)
    lines = np.arange(0, steps, bar) if bars is None else np.asarray(bars, dtype=np.int64)
    lines = lines[(lines >= 0) & (lines < steps)]
    if len(lines) and np.diff(np.append(lines, steps)).min() * scale >= 4:  # bar lines while they stay apart
        image[:, (lines * scale).astype(int)] = BAR
    starts = (onsets * scale).astype(int)
    stops = np.maximum((ends * scale).astype(int) - 1, starts + 1)  # a gap after each note, >= 1 column
    for k, (start, stop, pitch) in enumerate(zip(starts.tolist(), stops.tolist(), pitches.tolist())):
        row = (high - pitch) * ROLL_PITCH_PX
        image[row : row + ROLL_PITCH_PX - 1, start:stop] = PRIMER if k < primer_notes else NOTE
    return image


def piano_roll_image(notes, steps_per_beat: int, primer_notes: int = 0) -> np.ndarray:
    """`piano_roll_indices` in colour: uint8 RGB `[H, W, 3]`."""
    return ROLL_PALETTE[piano_roll_indices(notes, steps_per_beat, primer_notes)]


def piano_roll(notes, steps_per_beat: int, path: str | Path, title: str, primer_notes: int = 0,
               bars=None, chords=None, end: int = 0) -> Path:
    """The piano roll of `notes` as a palette PNG (the title in its metadata), with a column of
    note names (C3, C4, ...) on the left. A song over changes passes its bar-start steps
    (`bars`), its form's end (`end`, steps) and its chord symbols (`chords`: `(step, text)`),
    drawn above the roll (a symbol that would overlap the last one of both rows is left out)."""
    from PIL import Image, ImageDraw, ImageFont
    from PIL.PngImagePlugin import PngInfo

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    roll = piano_roll_indices(notes, steps_per_beat, primer_notes, bars, end)
    top = CHORD_ROWS * CHORD_ROW_PX + 2 if chords else 0
    indices = np.full((top + roll.shape[0], ROLL_LABEL_PX + roll.shape[1]), BACKGROUND, np.uint8)
    indices[top:, ROLL_LABEL_PX:] = roll
    image = Image.fromarray(indices, mode="P")
    draw, font = ImageDraw.Draw(image), ImageFont.load_default()
    if notes or end:
        low, high = roll_range(notes)
        for pitch, name in pitch_labels(low, high):
            middle = top + (high - pitch) * ROLL_PITCH_PX + ROLL_PITCH_PX // 2
            draw.text((2, middle), name, fill=TEXT, font=font, anchor="lm")
    if chords:
        scale, free = roll_scale(roll_steps(notes, steps_per_beat, bars, end)), [0.0] * CHORD_ROWS
        for step, text in chords:
            x = ROLL_LABEL_PX + step * scale
            for row in range(CHORD_ROWS):
                if x >= free[row]:
                    draw.text((x + 1, row * CHORD_ROW_PX), text, fill=TEXT, font=font)
                    free[row] = x + 1 + draw.textlength(text, font=font) + 3
                    break
    image.putpalette(ROLL_PALETTE.ravel().tolist())
    info = PngInfo()
    info.add_text("Title", title)
    image.save(path, pnginfo=info, compress_level=1)  # 2-3x faster than the default 6 here
    return path


def feature_histograms(rows_by_source: dict[str, list[dict]], scalar_features: list[str],
                       histogram_bins: dict[str, list[str]], path: str | Path,
                       units: dict[str, str] | None = None) -> Path:
    """One panel per feature, every source overlaid: per-chunk values as density histograms for
    numbers, the mean histogram as lines for histogram features. The reference (the first source)
    is black: a black outline over a grey fill, or a black line; `units` label the x axes."""
    units = units or {}
    names = list(scalar_features) + list(histogram_bins)
    cols = 4
    fig, axes = pyplot().subplots(-(-len(names) // cols), cols, figsize=(4.5 * cols, 3.2 * -(-len(names) // cols)),
                             squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        for k, (source, rows) in enumerate(rows_by_source.items()):
            color = "black" if k == 0 else f"C{k - 1}"
            values = [r[name] for r in rows if r.get(name) is not None]
            if name in histogram_bins:
                ax.plot(np.mean(values, axis=0), marker=".", color=color, label=source)
                labels = histogram_bins[name]
                ticks = np.arange(len(labels))[:: max(len(labels) // 9, 1)]
                ticks = np.union1d(ticks, [0, len(labels) - 1])  # the overflow bins keep their labels
                ax.set_xticks(ticks, [labels[t] for t in ticks], fontsize=7)
                ax.set_ylabel("mean share of the chunk's notes")
            else:
                values = np.asarray(values, dtype=float)
                lo, hi = float(values.min()), float(values.max())
                bins = np.linspace(lo, hi + 1e-9, 21) if hi > lo else 1
                if k == 0:  # the reference: grey fill under a black outline
                    ax.hist(values, bins=bins, density=True, histtype="stepfilled", color="0.8")
                ax.hist(values, bins=bins, density=True, histtype="step", color=color, lw=1.5 if k == 0 else 1.0,
                        label=source)
                ax.set_ylabel("density (share of chunks per unit)")
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel(units.get(name, ""))
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    legend(axes[0, 0], fontsize=8)
    fig.suptitle("features per chunk: reference (black; grey fill) against the other sources (colours)")
    fig.tight_layout()
    return save(fig, path)


def compare_curves(histories: dict[str, list[dict]], key: str, path: str | Path, title: str) -> Path:
    """One history key against step, one line per run."""
    fig, ax = pyplot().subplots(figsize=(8, 4))
    _step_panel(ax, {name: _history_points(history, key) for name, history in histories.items()}, title)
    return save(fig, path)
