"""Issue 14, the conditional critic: a chord-aware classifier, the adversarial phase over
changes taken from real training solos, and the pairing rules with older classifiers."""

import dataclasses
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import make_tiny_chord_corpus
from ganmusic import classify, data, pretrained, runs, train
from ganmusic import encoding as enc
from ganmusic import lead_sheets as ls
from ganmusic.configs import (AdvConfig, ClassifierConfig, EncodingConfig, GeneratorConfig, RunConfig,
                              TrainConfig)
from ganmusic.models import StyleClassifier, relative_chord_features

ENC = EncodingConfig(steps_per_beat=4, melody=True)
# The generator ganmusic shipped as its pretrained default before chords and pitch scores: config.json and best/.
RUN_BEFORE_CHORDS = Path(__file__).resolve().parent / "data" / "run_before_chords"
VOCAB = enc.Vocab(ENC)


def chord_corpus(root):
    make_tiny_chord_corpus(root)
    return data.load_corpus(root, ENC, cache_dir=root.parent / "cache", progress=False, split_fractions=(4, 1, 1))


def test_the_critics_chord_view_is_key_invariant():
    cfg = ClassifierConfig.for_vocab(VOCAB, chords=True)
    rng = np.random.default_rng(0)
    pitches = rng.integers(48, 72, (2, 9))
    rows = np.tile(ls.NO_COND, (2, 9, 1)).astype(np.int32)
    rows[..., ls.ROOT], rows[..., ls.MASK] = 2, (1 << 2) | (1 << 6) | (1 << 9)  # D major: D F# A
    rows[..., ls.NEXT_ROOT], rows[..., ls.NEXT_MASK] = 7, (1 << 7) | (1 << 11) | (1 << 2) | (1 << 5)  # G7
    rows[..., ls.BAR_STEP], rows[..., ls.BAR_STEPS] = 3, 16

    def view(shift):
        ids = jnp.asarray(VOCAB.pitch_start + pitches + shift - ENC.pitch_min)
        probs = jnp.eye(len(VOCAB.pitches))[ids - VOCAB.pitch_start]
        return np.asarray(relative_chord_features(cfg, probs, ls.transpose_conditioning(rows, shift)))

    base = view(0)
    np.testing.assert_allclose(view(5), base)  # the same music in another key looks the same
    in_chord = np.isin(pitches % 12, [2, 6, 9])
    np.testing.assert_array_equal(base[..., 24], in_chord)  # the chord-tone flag


def test_classifiers_and_runs_saved_before_chords_load_as_before_and_a_blind_critic_is_refused():
    old = classify.Classifier.load(pretrained.classifier_path())  # shipped before chords existed
    assert "chords" not in json.loads((pretrained.classifier_path() / "config.json").read_text())["model"]
    assert old.model_config.chords is False and "chord_proj" not in old.params
    # The pretrained default generator as shipped before chords (and pitch scores) existed.
    run_config, params = runs.restore_params(RUN_BEFORE_CHORDS, "best")
    assert run_config.generator.chords is False and "chord_proj" not in params and not run_config.generator.pitch_tokens
    chords_run = dataclasses.replace(run_config, generator=dataclasses.replace(run_config.generator, chords=True),
                                     adv=AdvConfig(steps=2, classifier=str(pretrained.classifier_path())))
    with pytest.raises(runs.RunError, match="does not read chords.*train a chord-aware classifier"):
        train.load_discriminator(chords_run)


def test_chord_aware_critic_drives_the_adversarial_phase_over_changes(tmp_path):
    corpus = chord_corpus(tmp_path / "corpus")
    tc = TrainConfig(window=24, steps=2, batch_size=4, eval_every=2)
    classify.train_classifier(corpus, tmp_path / "aware",
                              ClassifierConfig.for_vocab(VOCAB, chords=True, hidden=8, embed_dim=8, layers=1), tc,
                              progress=False)
    aware = classify.Classifier.load(tmp_path / "aware")
    assert aware.model_config.chords and "chord_proj" in aware.params
    # It reads the chords: the same window over other changes scores differently.
    batch = corpus.cond[:24][None].astype(np.int32)
    tokens = corpus.tokens[:24][None].astype(np.int32)
    model = StyleClassifier(aware.model_config)
    other = ls.transpose_conditioning(batch, 3)
    assert not np.allclose(model.apply({"params": aware.params}, tokens, None, batch),
                           model.apply({"params": aware.params}, tokens, None, other))

    gen = GeneratorConfig.for_vocab(VOCAB, layers=(8,), embed_dim=8, chords=True)
    config = RunConfig(data=str(corpus.root), generator=gen, encoding=ENC, window=24, batch_size=4, mle_steps=2,
                       eval_every=2, checkpoint_every=2, seed=2, devices=1,
                       adv=AdvConfig(steps=2, classifier=str(tmp_path / "aware"), windows=2, sample_every=0,
                                     lambda_fm=1.0))
    batches = train.Batches(corpus, config, aware.window, True)
    adv_batch = batches(3)
    assert adv_batch["changes"].shape[:2] == (4, batches.change_steps)
    assert (adv_batch["changes"][..., ls.ROOT] >= 0).mean() > 0.5
    summary = train.train_run(config, tmp_path / "run", progress=False, corpus=corpus)
    last = summary["last"]
    assert summary["step"] == 4 and last["phase"] == "adv"
    assert all(np.isfinite(last[k]) for k in ("d_loss", "g_adv_loss", "mle_loss", "val_nll"))
    # `evaluate` judges it over the test split's changes: its samples play over them and say so.
    from ganmusic import changes, chords, evaluate

    report = evaluate.evaluate([tmp_path / "run"], tmp_path / "eval", num=3, length=48, progress=False)
    entry = report["sources"]["run"]
    assert entry["lead_sheet"]["chord_coverage"] > 0.9 and np.isfinite(entry["reference_nll"])
    forms = changes.corpus_forms(corpus, "test", 12, 3)
    assert all(f.beats == 12 and f.bars[0] == 0 for f in forms)
    # The first form is the first test solo's changes from its start: a note of the solo reads the
    # row the sampler would give a note at that step (up to the form's last change, which, as at
    # the end of any form, announces no next chord).
    solo = corpus.indices("test", positive=True)[0]
    tokens, cond = corpus.sequence(solo), corpus.conditioning(solo)
    at = ls.note_positions(tokens, VOCAB)
    notes = (cond[:, ls.BAR_STEPS] > 0) & (at < forms[0].timeline.steps(ENC.steps_per_beat)[-1])
    assert notes.sum() > 10
    np.testing.assert_array_equal(forms[0].rows(ENC.steps_per_beat)[at[notes]], cond[notes])
    for k, form in enumerate(forms):
        midi = enc.load_midi(tmp_path / "eval" / "samples" / "run" / f"sample-{k:03d}.mid")
        timeline, _ = chords.read_chords(midi)
        assert timeline.texts == form.timeline.texts and np.allclose(timeline.beats, form.timeline.beats)
    with pytest.raises(evaluate.EvaluateError, match="labelled corpus with chords"):
        evaluate.evaluate([tmp_path / "run"], tmp_path / "eval2", against=tmp_path / "eval" / "samples" / "run",
                          num=2, length=24, progress=False)
