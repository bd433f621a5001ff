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
        ax.legend()
    fig.suptitle(f"{corpus.root.name}: token histograms ({spb} steps per beat)")
    return save(fig, path)
