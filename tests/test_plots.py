import numpy as np
from PIL import Image

from ganmusic import plots
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
        np.testing.assert_array_equal(np.asarray(png.convert("RGB")), ROLL_PALETTE[image])


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
