"""`ganmusic evaluate` end to end on a tiny run, a folder of MIDI files and the tiny corpus."""

import csv
import json

import numpy as np
import pretty_midi
import pytest

from conftest import REAL_DATA, make_tiny_corpus, run_cli, straight_tune, swing_line, write_midi
from ganmusic import classify, data, evaluate, metrics, realism, runs, train
from ganmusic import encoding as enc
from ganmusic.encoding import EncodingConfig, Vocab
from ganmusic.models import ClassifierConfig, GeneratorConfig
from ganmusic.pieces import Piece, read_piece

VOCAB = Vocab(EncodingConfig())


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny corpus, a tiny run on it, a tiny classifier, and a folder of 'generated' MIDI."""
    tmp = tmp_path_factory.mktemp("eval")
    root = make_tiny_corpus(tmp / "corpus")
    corpus = data.load_corpus(root, cache_dir=tmp / "cache", progress=False)
    gen = GeneratorConfig(vocab_size=VOCAB.size, layers=(16,), embed_dim=8)
    config = runs.RunConfig(data=str(root), generator=gen, window=24, batch_size=4, mle_steps=6, lr=5e-3,
                            eval_every=3, checkpoint_every=3, seed=0, devices=1)  # one device on any machine
    train.train_run(config, tmp / "runs" / "tiny", progress=False, corpus=corpus)
    clf = tmp / "classifiers" / "judge"
    classify.train_classifier(corpus, clf, ClassifierConfig.for_vocab(corpus.vocab, embed_dim=8, hidden=8, layers=2),
                              classify.TrainConfig(window=24, steps=6, batch_size=8, eval_every=3, warmup=2),
                              progress=False)
    folder = tmp / "midi"
    for i in range(3):
        write_midi(folder / f"line{i}.mid", swing_line(50 + i))
    (folder / "broken.mid").write_bytes(b"not a midi file")
    return tmp, corpus, tmp / "runs" / "tiny", clf, folder


def test_chunks_have_the_same_length_and_decode():
    notes = [enc.Note(6 * k, 60 + k % 12, 6) for k in range(50)]
    tokens = enc.notes_to_tokens(notes, VOCAB)
    chunks = evaluate.chunk_sequence(tokens, VOCAB, 60)  # 20 notes each: 20, 20, then 10 (kept: half)
    assert [len(c) for c in chunks] == [61, 61, 31]
    assert all(c[0] == enc.BOS for c in chunks)
    assert sum(len(enc.tokens_to_notes(c, VOCAB)) for c in chunks) == 50
    assert [len(c) for c in evaluate.chunk_sequence(tokens[:40], VOCAB, 60)] == [40]  # 13 notes: one short chunk
    # Each chunk keeps its notes' places in the beat (here: notes every half beat from beat 0).
    spb = VOCAB.config.steps_per_beat
    for k, chunk in enumerate(chunks):
        decoded = enc.tokens_to_notes(chunk, VOCAB)
        assert [n.onset % spb for n in decoded] == [n.onset % spb for n in notes[20 * k: 20 * k + len(decoded)]]
        assert [n.pitch for n in decoded] == [n.pitch for n in notes[20 * k: 20 * k + len(decoded)]]


def test_evaluate_run_and_midi_folder_side_by_side(setup, monkeypatch):
    tmp, corpus, run_dir, clf, folder = setup
    monkeypatch.setenv("GANMUSIC_CACHE", str(tmp / "cache"))
    out = tmp / "report"
    result = run_cli("evaluate", run_dir, folder, "--classifier", clf, "--num", "6", "--length", "48",
                     "--out", out, "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert "closeness" in result.stdout and "tiny" in result.stdout and "midi" in result.stdout
    assert "broken.mid" in result.stderr  # skipped with its reason, the rest evaluated
    report = json.loads((out / "report.json").read_text())
    assert list(report["sources"]) == ["reference", "tiny", "midi"]
    reference, run, midi = (report["sources"][k] for k in ("reference", "tiny", "midi"))
    assert reference["pieces"] == len(corpus.indices("test", positive=True)) > 0
    assert run["pieces"] == 6 and midi["pieces"] == 3 and len(midi["errors"]) == 1
    for entry in (run, midi):
        assert 0.0 <= entry["closeness"] <= 1.0 and entry["mean_kl"] >= 0.0
        assert set(entry["features"]) == set(metrics.FEATURES)
        assert 0.0 <= entry["p_jazz"] <= 1.0 and 0.0 <= entry["p_jazz_baseline"] <= 1.0
        assert 0.0 <= entry["means"]["novelty"] <= 1.0
        assert len(entry["apart"]) == realism.TOP_APART  # what sets it apart most, in the tables too
        top = entry["apart"][0]
        assert any(top["feature"] in line and f"{top['value']:.3f}" in line for line in result.stdout.splitlines())
    assert np.isfinite(run["reference_nll"]) and "reference_nll" not in midi
    assert len(run["means"]["interval_histogram"]) == 2 * metrics.INTERVAL_CLIP + 1
    # The run's samples are written and decode; the pictures and tables exist.
    samples = sorted((out / "samples" / "tiny").glob("*.mid"))
    assert len(samples) == 6 and all(pretty_midi.PrettyMIDI(str(p)).instruments[0].notes for p in samples)
    assert (out / "features.png").stat().st_size > 0 and (out / "curves.png").stat().st_size > 0
    md = (out / "report.md").read_text()
    assert "| closeness (mean overlap; 1: same as real) | 1.000 |" in md and "| better |" not in md
    assert "| H1 | 1.94 | 2.17-2.45 |" in md  # the paper's Table 2 beside ours
    assert f"| midi | {midi['apart'][0]['feature']} | {midi['apart'][0]['value']:.3f} |" in md
    for entry in (reference, run, midi):
        assert 0.0 <= entry["lead_sheet"]["H1"] <= np.log2(12) and 0.0 <= entry["lead_sheet"]["GS"] <= 1.0
        assert entry["lead_sheet"]["chord_tone_share"] is None  # no chords in these files
    assert midi["realism"]["chunks_per_side"] > 0 and "accuracy" in reference["realism"]
    with open(out / "chunks.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["source"] for r in rows} == {"reference", "tiny", "midi"}
    assert sum(r["source"] == "tiny" for r in rows) == 6
    # Per-chunk scores: their mean and standard error are the report's.
    tiny = np.array([float(r["p_jazz"]) for r in rows if r["source"] == "tiny"])
    assert np.isclose(tiny.mean(), run["p_jazz"]) and np.isclose(tiny.std(ddof=1) / np.sqrt(6), run["p_jazz_se"])
    assert all(0.0 <= float(r["p_jazz_baseline"]) <= 1.0 for r in rows)


def test_most_apart_names_the_features_that_differ_most_in_standard_deviations():
    rng = np.random.default_rng(0)
    melodies = [[enc.Note(int(o), int(p), 2) for o, p in zip(np.cumsum(rng.integers(1, 6, 40)),
                                                               60 + np.cumsum(rng.integers(-3, 4, 40)))]
                for _ in range(30)]
    real = [metrics.sample_features(m, 4) for m in melodies]
    source = [dict(r) for r in real]
    for r in source:  # a shift of one scalar feature and of one histogram bin, nothing else
        r["syncopation_ratio"] = r["syncopation_ratio"] + 0.3
        r["interval_histogram"] = r["interval_histogram"] + np.eye(len(r["interval_histogram"]))[metrics.INTERVAL_CLIP + 2]
    spread = {"syncopation ratio": np.std([r["syncopation_ratio"] for r in real]),
              "interval (semitones): 2": np.std([r["interval_histogram"][metrics.INTERVAL_CLIP + 2] for r in real])}
    apart = realism.most_apart(source, real)
    expected = sorted(spread, key=lambda f: spread[f])  # a shift of d sd is the shift over the spread
    assert [f["feature"] for f in apart[:2]] == expected and len(apart) == realism.TOP_APART
    for f in apart[:2]:
        shift = 0.3 if f["feature"] == "syncopation ratio" else 1.0
        assert f["d"] == pytest.approx(shift / spread[f["feature"]]) and f["value"] == pytest.approx(f["real"] + shift)
    assert abs(apart[2]["d"]) < 1e-9  # the rest do not differ
    assert realism.most_apart(real, real, top=50)[0]["d"] == 0.0


def test_same_seed_same_report(setup, monkeypatch):
    tmp, _, run_dir, _, _ = setup
    monkeypatch.setenv("GANMUSIC_CACHE", str(tmp / "cache"))
    reports = [evaluate.evaluate([run_dir], tmp / f"again{k}", num=4, length=48, seed=3, progress=False)
               for k in range(2)]
    assert json.dumps(reports[0]) == json.dumps(reports[1])


def test_a_generated_copy_of_the_reference_is_close(setup, monkeypatch):
    """The reference against itself: near-perfect overlap; against straight folk tunes: less."""
    tmp, corpus, _, _, _ = setup
    monkeypatch.setenv("GANMUSIC_CACHE", str(tmp / "cache"))
    copies = tmp / "copies"
    copies.mkdir()
    for i in corpus.indices("test", positive=True):
        enc.decode_to_midi(corpus.sequence(i), corpus.config).write(str(copies / f"{i}.mid"))
    folk = tmp / "folk"
    for i in range(4):
        write_midi(folk / f"folk{i}.mid", straight_tune(300 + i))
    report = evaluate.evaluate([copies, folk], tmp / "self", against=corpus.root, length=48, progress=False)
    assert report["sources"]["copies"]["closeness"] > report["sources"]["folk"]["closeness"]
    assert report["sources"]["copies"]["means"]["novelty"] == pytest.approx(
        report["sources"]["reference"]["means"]["novelty"])


def test_user_errors_are_one_line(setup, tmp_path, monkeypatch):
    tmp, _, run_dir, _, folder = setup
    monkeypatch.setenv("GANMUSIC_CACHE", str(tmp / "cache"))
    cases = [
        (["evaluate", tmp_path / "missing"], "no such folder"),
        (["evaluate", folder], "--against"),  # no run to take the reference from
        (["evaluate", run_dir, "--against", tmp_path], "no MIDI files"),
        (["evaluate", run_dir, "--checkpoint", "999"], "no checkpoint '999'"),
        (["evaluate", run_dir, "--classifier", tmp_path], "not a classifier folder"),
    ]
    for args, message in cases:
        result = run_cli(*args, "--out", tmp_path / "out")
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr


def test_a_missing_classifier_fails_before_sampling(setup, tmp_path, monkeypatch):
    tmp, _, run_dir, _, _ = setup
    monkeypatch.setenv("GANMUSIC_CACHE", str(tmp / "cache"))

    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled before checking the classifier")

    monkeypatch.setattr(evaluate, "sample_run", no_sampling)
    result = run_cli("evaluate", run_dir, "--classifier", tmp_path / "nope", "--out", tmp_path / "out")
    assert result.returncode == 2 and "not a classifier folder" in result.stderr, result.stderr


def test_sources_much_shorter_than_the_chunk_length_are_reported(setup, tmp_path, monkeypatch):
    """Files of 48 notes cut into 128-note chunks: a warning with the chunk count and their sizes."""
    tmp, _, run_dir, _, folder = setup
    monkeypatch.setenv("GANMUSIC_CACHE", str(tmp / "cache"))
    result = run_cli("evaluate", run_dir, folder, "--num", "2", "--length", "384", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stderr.split())
    assert "warning: midi: 3 chunks of 48-48 notes (median 48), much shorter than the 128 notes" in text, text
    fine = run_cli("evaluate", run_dir, folder, "--num", "2", "--length", "48", "--out", tmp_path / "out2")
    assert fine.returncode == 0 and "much shorter" not in fine.stderr, fine.stderr


C7, F7, G7 = (0, 4, 7, 10), (5, 9, 0, 3), (7, 11, 2, 5)
CHANGES = [("C7", C7), ("F7", F7), ("G7", G7), ("C7", C7)]  # one bar each


def write_lead_sheet(path, seed, inside=True, bars=16, numerator=4):
    """Eighth notes over a chord per bar, written as text events; `inside`: only chord tones,
    else only pitch classes outside the chord."""
    rng = np.random.default_rng(seed)
    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    midi.time_signature_changes.append(pretty_midi.TimeSignature(numerator, 4, 0.0))
    inst = pretty_midi.Instrument(program=0)
    for bar in range(bars):
        symbol, tones = CHANGES[bar % len(CHANGES)]
        start = bar * numerator * 0.5  # seconds at 120 BPM
        midi.lyrics.append(pretty_midi.Lyric("x", start))  # not a chord: ignored
        midi.text_events.append(pretty_midi.Text(symbol, start))
        pool = [p for p in range(60, 72) if (p % 12 in tones) == inside]
        for k in range(2 * numerator):
            t = start + k * 0.25
            inst.notes.append(pretty_midi.Note(velocity=90, pitch=int(rng.choice(pool)), start=t, end=t + 0.2))
    midi.instruments.append(inst)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.write(str(path))
    return path


def test_read_piece_bars_and_chords(tmp_path):
    path = write_lead_sheet(tmp_path / "waltz.mid", 0, numerator=3, bars=4)
    piece = read_piece(path, EncodingConfig())
    spb = EncodingConfig().steps_per_beat
    assert len(piece.notes) == 24 and piece.bar_starts[:4].tolist() == [0, 3 * spb, 6 * spb, 9 * spb]
    pitches = np.array([n.pitch for n in piece.notes])
    assert metrics.chord_tone_share(pitches, piece.chord_masks) == 1.0
    assert piece.chord_roots[0] == 0 and piece.chord_roots[6] == 5  # C7 then F7 in the second bar
    assert read_piece(write_midi(tmp_path / "plain.mid", swing_line(0)), EncodingConfig()).chord_masks is None


def test_chords_and_realism_on_a_lead_sheet_corpus(tmp_path, monkeypatch):
    """A labelled corpus of chord-tone melodies: as a source (its test split) against its train
    split it looks real; melodies of wrong notes over the same changes are told apart."""
    monkeypatch.setenv("GANMUSIC_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "lead"
    for k in range(40):
        write_lead_sheet(root / "jazz" / f"in{k}.mid", k)
        write_lead_sheet(root / "not_jazz" / f"folk{k}.mid", 100 + k)
    wrong = tmp_path / "wrong"
    for k in range(12):
        write_lead_sheet(wrong / f"out{k}.mid", 200 + k, inside=False)
    result = run_cli("evaluate", root, wrong, "--against", root, "--reference-split", "train", "--length", "96",
                     "--out", tmp_path / "out", "--seed", "0")
    assert result.returncode == 0, result.stderr
    assert "real" in result.stdout and "two-sample accuracy" in result.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["reference_split"] == "train" and "train split" in report["reference"]
    reference, real, out = (report["sources"][k] for k in ("reference", "lead", "wrong"))
    assert reference["pieces"] > real["pieces"] > 0  # the train split, and the held-out test split
    assert reference["lead_sheet"]["chord_tone_share"] == 1.0 and real["lead_sheet"]["chord_tone_share"] == 1.0
    assert out["lead_sheet"]["chord_tone_share"] == 0.0 and out["lead_sheet"]["chord_coverage"] == 1.0
    assert reference["lead_sheet"]["GS"] == pytest.approx(1.0)  # eight eighths in every bar
    assert out["realism"]["chords"] and out["realism"]["accuracy"] > 0.9
    assert real["realism"]["accuracy"] < 0.75 and abs(reference["realism"]["accuracy"] - 0.5) < 0.2
    assert "| chord-tone share | 1.000 | 1.000 (+0.000) | 0.000 (-1.000) |" in (tmp_path / "out" / "report.md").read_text()
    bad = run_cli("evaluate", root, "--against", root, "--reference-split", "dev", "--out", tmp_path / "o2")
    assert bad.returncode == 2 and "reference split" in bad.stderr


LEAD_SHEETS = REAL_DATA.parent / "lead-sheets"


def test_real_lead_sheets_subset():
    """Twenty real WJazzD solos: H1, H4 and GS near the paper's real WJazzD, chords on almost every
    note, more chord tones than chance; the same solos with their pitches shuffled across notes
    keep their rhythm but are told apart."""
    if not (LEAD_SHEETS / "manifest.csv").is_file():
        pytest.skip(f"lead-sheet corpus not found at {LEAD_SHEETS}")
    config = EncodingConfig()
    paths = sorted((LEAD_SHEETS / "jazz").glob("*.mid"))[::19][:20]
    pieces = [read_piece(p, config, group=p.name) for p in paths]
    lead = evaluate.lead_sheet_metrics(pieces, config.steps_per_beat, seed=0)
    assert abs(lead["H1"] - 1.94) < 0.15 and abs(lead["H4"] - 2.87) < 0.15 and abs(lead["GS"] - 0.86) < 0.05
    assert lead["chord_coverage"] > 0.9 and 0.4 < lead["chord_tone_share"] < 0.7
    rng = np.random.default_rng(0)
    shuffled = []
    for piece in pieces:
        pitches = rng.permutation([n.pitch for n in piece.notes])
        shuffled.append(Piece([enc.Note(n.onset, int(p), n.duration) for n, p in zip(piece.notes, pitches)],
                                       piece.bar_starts, "shuffled-" + piece.group, piece.chord_masks, piece.chord_roots))
    source = evaluate.Source("real", "", "midi", pieces=pieces)
    fake = evaluate.Source("shuffled", "", "midi", pieces=shuffled)
    real_chunks, fake_chunks = evaluate.realism_chunks(source, 64), evaluate.realism_chunks(fake, 64)
    assert realism.two_sample_test(real_chunks, fake_chunks, config.steps_per_beat)["accuracy"] > 0.85
    assert realism.real_vs_real(real_chunks, config.steps_per_beat)["accuracy"] < 0.7
