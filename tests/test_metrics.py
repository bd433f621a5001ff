"""Musical metrics on small hand-made inputs with known answers."""

import numpy as np
import pytest

from ganmusic import metrics
from ganmusic.encoding import Note

SPB = 12
C_MAJOR = [Note(k * SPB, p, SPB) for k, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])]  # quarter notes
REPEATED = [Note(k * 6, 69, 6) for k in range(16)]  # sixteen eighths on A4
# Swung eighths: long-short pairs (8 + 4 steps), the short one off the beat, ending on the next beat.
SWUNG = [Note(k * SPB + off, p, dur) for k in range(4) for off, dur, p in ((0, 8, 60 + k), (8, 4, 64 + k))]


def test_c_major_scale():
    assert metrics.pitch_range(C_MAJOR) == 12
    assert metrics.pitch_classes_used(C_MAJOR) == 7
    assert metrics.pitch_class_entropy(C_MAJOR) == pytest.approx(2.75)  # C twice, six others once, of 8
    assert metrics.scale_consistency(C_MAJOR) == 1.0
    hist = metrics.interval_histogram(C_MAJOR)
    assert hist[metrics.INTERVAL_CLIP + 2] == pytest.approx(5 / 7) and hist[metrics.INTERVAL_CLIP + 1] == pytest.approx(2 / 7)
    assert metrics.offbeat_ratio(C_MAJOR, SPB) == 0.0 and metrics.syncopation_ratio(C_MAJOR, SPB) == 0.0
    assert metrics.ioi_histogram(C_MAJOR, SPB)[metrics.BEAT_BIN_LABELS.index("1")] == 1.0
    assert metrics.duration_histogram(C_MAJOR, SPB)[metrics.BEAT_BIN_LABELS.index("1")] == 1.0
    assert metrics.note_density(C_MAJOR, SPB) == 1.0
    assert metrics.empty_beat_rate(C_MAJOR, SPB) == 0.0
    assert metrics.same_pitch_repeat_rate(C_MAJOR) == 0.0 and metrics.longest_pitch_run(C_MAJOR) == 1
    # A chromatic line is less consistent with any one scale: 7 of its 12 pitch classes at best.
    chromatic = [Note(k * SPB, 60 + k, SPB) for k in range(12)]
    assert metrics.scale_consistency(chromatic) == pytest.approx(7 / 12)
    assert metrics.pitch_class_entropy(chromatic) == pytest.approx(np.log2(12))


def test_repeated_note():
    assert metrics.longest_pitch_run(REPEATED) == 16
    assert metrics.same_pitch_repeat_rate(REPEATED) == 1.0
    assert metrics.pitch_range(REPEATED) == 0 and metrics.pitch_class_entropy(REPEATED) == 0.0
    assert metrics.interval_histogram(REPEATED)[metrics.INTERVAL_CLIP] == 1.0
    assert metrics.note_density(REPEATED, SPB) == 2.0  # two eighths per beat
    assert metrics.offbeat_ratio(REPEATED, SPB) == 0.5


def test_swung_line():
    assert metrics.offbeat_ratio(SWUNG, SPB) == 0.5
    ioi = metrics.ioi_histogram(SWUNG, SPB)
    assert ioi[metrics.BEAT_BIN_LABELS.index("2/3")] == pytest.approx(4 / 7)  # 8 steps
    assert ioi[metrics.BEAT_BIN_LABELS.index("1/3")] == pytest.approx(3 / 7)  # 4 steps
    assert metrics.syncopation_ratio(SWUNG, SPB) == 0.0  # the short notes end exactly on the beat
    tied = [Note(0, 60, 6), Note(6, 62, 12)]  # an off-beat eighth held across the next beat
    assert metrics.syncopation_ratio(tied, SPB) == 0.5


def test_empty_beats_and_empty_input():
    assert metrics.empty_beat_rate([Note(0, 60, SPB), Note(3 * SPB, 62, SPB)], SPB) == 0.5
    for f in (metrics.pitch_range, metrics.pitch_class_entropy, metrics.scale_consistency, metrics.longest_pitch_run):
        assert f([]) == 0
    assert metrics.sample_features([], SPB)["note_density"] == 0.0


def brute_force_longest_repeat(seq):
    for n in range(len(seq) - 1, 0, -1):
        grams = [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]
        if len(set(grams)) < len(grams):
            return n
    return 0


def test_longest_repeated_ngram():
    assert metrics.longest_repeated_ngram([1, 2, 3, 1, 2]) == 2
    assert metrics.longest_repeated_ngram([5, 5, 5, 5]) == 3  # overlapping occurrences count
    assert metrics.longest_repeated_ngram([1, 2, 3, 4]) == 0
    assert metrics.longest_repeated_ngram([]) == 0
    rng = np.random.default_rng(0)
    for _ in range(50):
        seq = list(rng.integers(0, 3, size=rng.integers(1, 20)))
        assert metrics.longest_repeated_ngram(seq) == brute_force_longest_repeat(seq)


def test_novelty_is_key_invariant_and_finds_copies():
    training = metrics.note_ngrams(C_MAJOR)
    assert len(training) == 1  # 8 notes: one 8-note n-gram
    transposed = [Note(n.onset + 5, n.pitch + 7, n.duration * 2) for n in C_MAJOR]
    assert metrics.training_ngram_share(transposed, training) == 1.0
    descending = [Note(k * SPB, p, SPB) for k, p in enumerate([72, 71, 69, 67, 65, 64, 62, 60, 59])]
    assert metrics.training_ngram_share(descending, training) == 0.0
    assert metrics.training_ngram_share(C_MAJOR[:5], training) is None  # too short for an 8-gram


def melody(pitches):
    return [Note(k * SPB, p, SPB) for k, p in enumerate(pitches)]


def test_repeated_motifs_count_a_motif_played_again_in_any_key():
    # C D E C, then the same shape a fifth up (G A B G): intervals +2 +2 -4 twice, so 2 of the 5
    # four-note motifs are played twice; the three that cross the seam are played once.
    assert metrics.repeated_motif_share(melody([60, 62, 64, 60, 67, 69, 71, 67])) == pytest.approx(2 / 5)
    assert metrics.repeated_motif_share(melody([60, 61, 62, 63, 64])) == 1.0  # a chromatic run: +1 +1 +1 twice
    assert metrics.repeated_motif_share(melody([60, 62, 65, 60, 69, 59])) == 0.0  # no shape twice
    assert metrics.repeated_motif_share(melody([60, 62, 64])) == 0.0  # too short for one motif
    # Brute force: each motif's count among all motifs.
    rng = np.random.default_rng(0)
    for _ in range(30):
        notes = melody(60 + rng.integers(0, 3, size=rng.integers(4, 30)))
        steps = [b.pitch - a.pitch for a, b in zip(notes[:-1], notes[1:])]
        grams = [tuple(steps[i : i + 3]) for i in range(len(steps) - 2)]
        assert metrics.repeated_motif_share(notes) == pytest.approx(np.mean([grams.count(g) > 1 for g in grams]))


@pytest.mark.parametrize("case", ["normal", "skewed", "identical", "integers"])
def test_binned_kde_is_the_exact_kernel_sum(case):
    """The density is binned and convolved for speed; the exact sum over every value agrees."""
    rng = np.random.default_rng(1)
    values = {"normal": rng.normal(2, 1, 4000), "skewed": rng.exponential(2, 8000), "identical": np.full(40, 3.0),
              "integers": rng.integers(0, 5, 2000).astype(float)}[case]
    grid = np.linspace(0.0, values.max() * 1.1 + 1e-6, 512)
    width = max(1.06 * np.std(values) * len(values) ** -0.2, 1e-3 * np.ptp(grid), 1e-6)
    exact = np.exp(-0.5 * ((grid[:, None] - values[None, :]) / width) ** 2).sum(axis=1) / (
        len(values) * width * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(metrics.kde(values, grid), exact, atol=1e-3 * exact.max())


def test_overlap_and_kl_tell_same_from_different():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 200)
    same_oa, same_kl = metrics.overlap_and_kl(rng.normal(0, 1, 200), reference)
    far_oa, far_kl = metrics.overlap_and_kl(rng.normal(6, 1, 200), reference)
    assert same_oa > 0.85 and same_kl < 0.1
    assert far_oa < 0.1 and far_kl > 1.0
    # Histogram features (vectors) and constant features work too.
    vectors = rng.dirichlet(np.ones(5), 100)
    assert metrics.overlap_and_kl(rng.dirichlet(np.ones(5), 100), vectors)[0] > 0.85
    oa, kl = metrics.overlap_and_kl(np.zeros(10), np.zeros(10))
    assert np.isfinite(oa) and np.isfinite(kl)
    assert np.isnan(metrics.overlap_and_kl([1.0], [2.0])[0])  # one reference sample: no distances


@pytest.mark.parametrize("name", list(metrics.FEATURES))
def test_every_feature_is_finite_on_every_example(name):
    for notes in (C_MAJOR, REPEATED, SWUNG, [Note(0, 60, 3)]):
        value = np.asarray(metrics.FEATURES[name](notes, SPB), dtype=float)
        assert np.all(np.isfinite(value))
        if name in metrics.HISTOGRAM_BINS:
            assert value.shape == (len(metrics.HISTOGRAM_BINS[name]),)
            assert value.sum() == pytest.approx(1.0) or value.sum() == 0.0


# --- the Jazz Transformer's H1/H4/GS and the chord-tone share --------------------------------

C, D, E, G = 0, 2, 4, 7
BARS_44 = np.arange(0.0, 64.0, 4.0)  # 4/4 bar lines every 4 beats


def test_windowed_pitch_class_entropy_known_answers():
    # Bar 0: C E G C on the beats (counts 2, 1, 1: 1.5 bits); bar 1: D four times (0 bits).
    onsets = [0, 1, 2, 3, 4, 5, 6, 7]
    pitches = [60 + C, 60 + E, 60 + G, 72 + C, 62, 74, 62, 50]
    assert metrics.windowed_pitch_class_entropy(onsets, pitches, BARS_44, 1) == pytest.approx(0.75)
    # A 4-bar window on a 2-bar piece is the whole piece: C2 E1 G1 D4 of 8 = 1.75 bits.
    assert metrics.windowed_pitch_class_entropy(onsets, pitches, BARS_44, 4) == pytest.approx(1.75)
    # An empty bar inside the piece is no window for H1 (MusDr skips crops without notes).
    gap = [0, 1, 2, 3, 8, 9, 10, 11]
    assert metrics.windowed_pitch_class_entropy(gap, pitches, BARS_44, 1) == pytest.approx(0.75)
    # Five bars, one new pitch class each: every 4-bar window holds 4 equal classes (2 bits), every bar 0.
    sliding = [4.0 * k + b for k in range(5) for b in range(4)]
    classes = [60 + k for k in range(5) for _ in range(4)]
    assert metrics.windowed_pitch_class_entropy(sliding, classes, BARS_44, 4) == pytest.approx(2.0)
    assert metrics.windowed_pitch_class_entropy(sliding, classes, BARS_44, 1) == pytest.approx(0.0)
    # Bars count from the bar of the first note, whatever its number, and follow the bar lines given.
    late = [o + 12 for o in onsets]
    assert metrics.windowed_pitch_class_entropy(late, pitches, BARS_44, 1) == pytest.approx(0.75)
    waltz = np.arange(0.0, 30.0, 3.0)  # 3/4: bar 0 = C E G, bar 1 = C D D, bar 2 = D D
    h1 = metrics.windowed_pitch_class_entropy(onsets, pitches, waltz, 1)
    assert h1 == pytest.approx((np.log2(3) + (-(1 / 3) * np.log2(1 / 3) - (2 / 3) * np.log2(2 / 3)) + 0.0) / 3)
    assert metrics.windowed_pitch_class_entropy([], [], BARS_44, 1) is None


def test_grooving_similarity_known_answers():
    quarters = [0.0, 1.0, 2.0, 3.0]  # positions 0, 16, 32, 48 of 64
    eighths = [k * 0.5 for k in range(8)]  # positions 0, 8, ..., 56: 4 more than the quarters
    assert metrics.grooving_similarity(quarters + [4 + q for q in quarters], BARS_44) == pytest.approx(1.0)
    assert metrics.grooving_similarity(quarters + [4 + e for e in eighths], BARS_44) == pytest.approx(1 - 4 / 64)
    three = quarters + [4 + q for q in quarters] + [8 + e for e in eighths]
    assert metrics.grooving_similarity(three, BARS_44) == pytest.approx((1 + 2 * (1 - 4 / 64)) / 3)
    # An empty bar between two equal bars counts as a bar with no onsets.
    gapped = quarters + [8 + q for q in quarters]
    assert metrics.grooving_similarity(gapped, BARS_44) == pytest.approx((1 + 2 * (1 - 4 / 64)) / 3)
    # The grid is 16 per beat: a triplet eighth at 1/3 beat lands on position 5 (of 64), not 0.
    assert metrics.grooving_similarity([0.0, 4.0 + 1 / 3], BARS_44) == pytest.approx(1 - 2 / 64)
    # 3/4 bars have 48 positions.
    waltz = np.arange(0.0, 30.0, 3.0)
    assert metrics.grooving_similarity([0.0, 3.0, 3.5], waltz) == pytest.approx(1 - 1 / 48)
    # Past max_pairs, a seeded random subset of the pairs: identical bars still give 1.
    many = [4.0 * b + q for b in range(50) for q in quarters]
    assert metrics.grooving_similarity(many, np.arange(0.0, 200.0, 4.0), max_pairs=100) == pytest.approx(1.0)
    assert metrics.grooving_similarity(quarters, BARS_44) is None  # one bar: no pair


def bits(*pcs):
    return sum(1 << (p % 12) for p in pcs)


def test_chord_tone_share():
    c7, f = bits(0, 4, 7, 10), bits(5, 9, 0)
    pitches = [60, 64, 66, 70, 69, 62]  # C E F# Bb over C7; A over F; D over no chord
    masks = [c7, c7, c7, c7, f, 0]
    assert metrics.chord_tone_share(pitches, masks) == pytest.approx(4 / 5)  # the unchorded D is left out
    onsets = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
    beats = metrics.on_beat(onsets, BARS_44)
    assert beats.tolist() == [True, False, True, False, True, True]
    assert metrics.chord_tone_share(pitches, masks, beats) == pytest.approx(2 / 3)  # C, F#, A
    assert metrics.chord_tone_share(pitches, [0] * 6) is None
    # Beats count from the bar line: in a bar starting half a beat late, 0.5 is on the beat.
    assert metrics.on_beat([0.5, 1.0], [0.5, 4.5]).tolist() == [True, False]
