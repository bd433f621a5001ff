"""`ganmusic evaluate` end to end on a tiny run, a folder of MIDI files and the tiny corpus."""

import csv
import json

import numpy as np
import pretty_midi
import pytest

from conftest import make_tiny_corpus, run_cli, straight_tune, swing_line, write_midi
from ganmusic import classify, data, evaluate, metrics, train
from ganmusic import encoding as enc
from ganmusic.encoding import EncodingConfig, Vocab
from ganmusic.models import ClassifierConfig, GeneratorConfig

VOCAB = Vocab(EncodingConfig())


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny corpus, a tiny run on it, a tiny classifier, and a folder of 'generated' MIDI."""
    tmp = tmp_path_factory.mktemp("eval")
    root = make_tiny_corpus(tmp / "corpus")
    corpus = data.load_corpus(root, cache_dir=tmp / "cache", progress=False)
    gen = GeneratorConfig(vocab_size=VOCAB.size, layers=(16,), embed_dim=8)
    config = train.RunConfig(data=str(root), generator=gen, window=24, batch_size=4, mle_steps=6, lr=5e-3,
                             eval_every=3, checkpoint_every=3, seed=0)
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
    assert np.isfinite(run["reference_nll"]) and "reference_nll" not in midi
    assert len(run["means"]["interval_histogram"]) == 2 * metrics.INTERVAL_CLIP + 1
    # The run's samples are written and decode; the pictures and tables exist.
    samples = sorted((out / "samples" / "tiny").glob("*.mid"))
    assert len(samples) == 6 and all(pretty_midi.PrettyMIDI(str(p)).instruments[0].notes for p in samples)
    assert (out / "features.png").stat().st_size > 0 and (out / "curves.png").stat().st_size > 0
    assert "| closeness (mean overlap) |" in (out / "report.md").read_text()
    with open(out / "chunks.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["source"] for r in rows} == {"reference", "tiny", "midi"}
    assert sum(r["source"] == "tiny" for r in rows) == 6
    # Per-chunk scores: their mean and standard error are the report's.
    tiny = np.array([float(r["p_jazz"]) for r in rows if r["source"] == "tiny"])
    assert np.isclose(tiny.mean(), run["p_jazz"]) and np.isclose(tiny.std(ddof=1) / np.sqrt(6), run["p_jazz_se"])
    assert all(0.0 <= float(r["p_jazz_baseline"]) <= 1.0 for r in rows)


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
