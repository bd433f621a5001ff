from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from PIL import Image

from ganmusic import metrics, plots
from ganmusic.encoding import Note
from ganmusic.plots import BACKGROUND, BAR, BLACK_KEY, NOTE, PRIMER, ROLL_PALETTE, ROLL_PITCH_PX


def test_piano_roll_draws_each_note_where_it_sounds(tmp_path):
    spb = 4
    notes = [Note(0, 60, 4), Note(4, 62, 2), Note(6, 62, 2), Note(20, 67, 12)]  # C D D G
    image = plots.piano_roll_indices(notes, spb, primer_notes=1)
    low, high = 58, 69  # two pitches of margin
    px = 4  # two 4/4 bars of 16 steps: 4 columns a step
    assert image.shape == ((high - low + 1) * ROLL_PITCH_PX, 32 * px)

    def cells(pitch):  # the colour of each step on this pitch's row (its first pixel row)
        return image[(high - pitch) * ROLL_PITCH_PX, ::px]

    assert (cells(60)[:4] == PRIMER).all() and (cells(60)[4:] != PRIMER).all()
    assert (cells(62)[4:8] == NOTE).all()
    # Two repeated notes stay apart: the last column of the first one is not painted.
    assert image[(high - 62) * ROLL_PITCH_PX, 6 * px - 1] != NOTE
    assert (cells(67)[20:32] == NOTE).all() and (cells(67)[:20] != NOTE).all()
    assert set(np.unique(cells(64))) <= {BACKGROUND, BAR}  # E: nothing played, a white key
    assert BLACK_KEY in cells(61)  # C#: a black key, shaded
    assert image[0, 0] == BAR and image[0, 16 * px] == BAR  # a line at every 4/4 bar
    assert plots.piano_roll_image(notes, spb).shape == image.shape + (3,)

    path = plots.piano_roll(notes, spb, tmp_path / "roll.png", title="a title", primer_notes=1)
    with Image.open(path) as png:
        assert png.info["Title"] == "a title"
        rgb = np.asarray(png.convert("RGB"))
    # The roll, right of a column that names the pitches: C4 (MIDI 60) on its row, nothing else.
    np.testing.assert_array_equal(rgb[:, plots.ROLL_LABEL_PX:], ROLL_PALETTE[image])
    text_rows = np.where((rgb[:, : plots.ROLL_LABEL_PX] == ROLL_PALETTE[plots.TEXT]).all(axis=2).any(axis=1))[0]
    c4_middle = (high - 60) * ROLL_PITCH_PX + ROLL_PITCH_PX // 2
    assert len(text_rows) and abs(text_rows.mean() - c4_middle) <= 2 and np.ptp(text_rows) < 3 * ROLL_PITCH_PX
    assert plots.pitch_labels(58, 69) == [(60, "C4")]
    assert plots.pitch_labels(61, 70) == [(61, "C#4"), (70, "A#4")]  # no C: the top and bottom rows


def test_long_songs_fit_the_width():
    notes = [Note(16 * k, 60 + k % 5, 8) for k in range(1000)]  # 1000 bars at 4 steps per beat
    image = plots.piano_roll_indices(notes, 4)
    assert image.shape[1] == plots.ROLL_MAX_WIDTH
    row = image[(66 - 60) * ROLL_PITCH_PX]  # pitch 60: high is 64 + 2
    assert (row == NOTE).sum() >= 200  # every one of its 200 notes keeps at least one column
    assert BAR not in image  # 1000 bar lines would not stay apart


def test_empty_piano_roll_is_a_blank_picture(tmp_path):
    assert (plots.piano_roll_indices([], 4) == BACKGROUND).all()
    assert plots.piano_roll([], 4, tmp_path / "empty.png", title="empty").stat().st_size > 0


@pytest.fixture
def figures(monkeypatch):
    """The figures the plotting functions would save, kept open to be inspected."""
    kept = []
    monkeypatch.setattr(plots, "save", lambda fig, path: kept.append(fig) or Path(path))
    yield kept
    for fig in kept:
        plt.close(fig)


def test_score_timeline_draws_the_last_window_its_width(figures):
    plots.window_timeline([0.2, 0.9, 0.6], 30, "t.png", title="t")  # windows of 30 tokens: 10 notes each
    ax = figures[0].axes[0]
    x, y = ax.lines[0].get_data()
    assert list(x) == [0, 10, 20, 30] and list(y) == [0.2, 0.9, 0.6, 0.6]  # the last window spans 20-30
    assert ax.get_xlim() == (0, 30) and ax.get_ylabel() and "notes" in ax.get_xlabel()


def test_training_curves_with_few_points_use_visible_markers(figures):
    history = [{"step": s, "val_nll": 3.0 - s / 100} for s in range(10, 110, 10)] + [{"step": 103, "d_loss": 0.7}]
    plots.training_curves(history, "c.png", title="t", panels={"nll": ["val_nll"], "adversarial": ["d_loss"]})
    many, [one] = figures[0].axes[0].lines, figures[0].axes[1].lines
    assert one.get_marker() == "o" and one.get_markersize() >= 6  # one adversarial point: not a speck
    assert many[0].get_markersize() < one.get_markersize()


def test_features_png_colours_as_its_title_says_with_labelled_axes(figures):
    rng = np.random.default_rng(0)
    hist = len(metrics.HISTOGRAM_BINS["interval_histogram"])
    rows = {name: [{"pitch_range": float(rng.integers(5, 20)), "interval_histogram": rng.dirichlet(np.ones(hist))}
                   for _ in range(30)] for name in ("reference", "run")}
    plots.feature_histograms(rows, ["pitch_range"], {"interval_histogram": metrics.HISTOGRAM_BINS["interval_histogram"]},
                             "f.png", units=metrics.FEATURE_UNITS)
    fig = figures[0]
    assert "reference (black" in fig._suptitle.get_text()
    scalar, intervals = fig.axes[:2]
    outlines = [p for p in scalar.patches if not p.get_fill()]
    assert outlines[0].get_label() == "reference" and to_rgba(outlines[0].get_edgecolor()) == to_rgba("black")
    assert intervals.lines[0].get_color() == "black"
    assert scalar.get_xlabel() == "semitones" and scalar.get_ylabel() and intervals.get_ylabel()
    assert intervals.get_xlabel() == "interval (semitones)"
    ticks = [t.get_text() for t in intervals.get_xticklabels()]
    assert ticks[0] == "≤-12" and ticks[-1] == "≥12"  # overflow bins, not plain -12 and 12
