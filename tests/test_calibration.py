"""Issue 14, free-running calibration: it counts what the generator scores, moves the sampled
rates towards the training solos', and is applied on restore only to the weights it was made for."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import run_cli
from ganmusic import calibration, runs, train
from ganmusic import encoding as enc
from ganmusic import lead_sheets as ls
from ganmusic.chords import ChordTimeline
from ganmusic.configs import GeneratorConfig, RunConfig
from ganmusic.models import Generator
from test_chord_critic import ENC, VOCAB, chord_corpus


# The register: the memory's 16 pitches, or its own 24; motifs among 32 pitches (more than the
# memory's and the register's) or 9.
@pytest.mark.parametrize("register_span,motif_span", [(0, 32), (24, 9)])
def test_calibration_counts_each_note_in_the_buckets_the_model_scores_it_by(register_span, motif_span):
    cfg = GeneratorConfig.for_vocab(VOCAB, layers=(8,), embed_dim=4, chords=True, register_span=register_span,
                                    motif_span=motif_span)
    params = Generator(cfg).init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))["params"]
    scores = jnp.arange(params["pitch_head"]["bias"].shape[0]) * 0.25 + 1.0  # one value per bucket
    zeroed = {**params, "pitch_head": {"kernel": jnp.zeros_like(params["pitch_head"]["kernel"]), "bias": 0 * scores}}
    scored = {**zeroed, "pitch_head": {**zeroed["pitch_head"], "bias": scores}}
    rng = np.random.default_rng(0)
    onsets = np.cumsum(rng.choice([1, 2, 3, 4, 6], 60))  # on the grid of 4 steps a beat: phases 0..3
    steps = rng.integers(-5, 6, 60)
    steps[30:45], steps[50:54] = steps[10:25], steps[46:50]  # a motif again 20 notes on (beyond 9), one 4 on
    notes = [enc.Note(int(o), int(p), int(d)) for o, p, d in zip(onsets, 60 + np.cumsum(steps),
                                                                rng.integers(1, 5, 60))]
    tokens = enc.notes_to_tokens(notes, VOCAB)
    timeline = ChordTimeline.from_changes([(0.0, "Dm7"), (4.0, "G7"), (8.0, "Cmaj7"), (40.0, "F7")])
    cond = ls.conditioning(tokens, VOCAB, timeline)
    added = np.asarray(Generator(cfg).apply({"params": scored}, jnp.asarray(tokens[None]), jnp.asarray(cond[None]))
                       - Generator(cfg).apply({"params": zeroed}, jnp.asarray(tokens[None]), jnp.asarray(cond[None])))[0]
    events = calibration.note_events(tokens, cond, VOCAB, cfg)
    layout = {name: start for name, (layer, start, _) in calibration.families(cfg, VOCAB).items() if layer == "pitch_head"}
    pitches = np.flatnonzero(VOCAB.token_type[tokens] == enc.T_PITCH)
    assert len(events["onset_phase"]) == len(events["memory"]) == len(pitches) == 60
    assert events["motif"].max() >= 3  # a note that continues a motif after 3 intervals or more
    for j, at in enumerate(pitches):  # each pitch is predicted at the step before it
        expected = scores[layout["memory"] + events["memory"][j]]
        expected += scores[layout["root"] + events["root"][j]] + scores[layout["chord_tone"]] * events["chord_tone"][j]
        if j:
            expected += scores[layout["melodic"] + events["melodic"][j - 1]]
            expected += scores[layout["register"] + events["register"][j - 1]]
            expected += scores[layout["motif"] + events["motif"][j - 1]]
        np.testing.assert_allclose(added[at - 1, tokens[at]], expected, atol=1e-5)
        # The shift before it (predicted from the last note's row) lands on the phase counted.
        if j:
            np.testing.assert_allclose(added[at - 2, tokens[at - 1]], scores[layout["onset_phase"] + events["onset_phase"][j]],
                                       atol=1e-5)
        np.testing.assert_allclose(added[at, tokens[at + 1]], scores[layout["end_phase"] + events["end_phase"][j]], atol=1e-5)
    # The plain head's families: the SHIFT before each note, its DUR, as token ids from their first.
    assert [VOCAB.shift_start + b for b in events["shift"]] == [tokens[at - 1] for at in pitches]
    assert [VOCAB.dur_start + b for b in events["duration"]] == [tokens[at + 1] for at in pitches]


def test_a_choice_two_families_score_takes_half_a_step_from_each():
    """A SHIFT scored by its value and its onset phase (a DUR by value and end phase) would be
    corrected twice a round (the rounds diverged so); without phase scores a SHIFT has one family."""
    with_phase = calibration.step_sizes(calibration.families(
        GeneratorConfig.for_vocab(VOCAB, layers=(8,), chords=True), VOCAB), 0.8)
    assert with_phase["shift"] == with_phase["onset_phase"] == with_phase["duration"] == with_phase["end_phase"] == 0.4
    assert with_phase["melodic"] == with_phase["chord_tone"] == 0.8
    plain = calibration.step_sizes(calibration.families(GeneratorConfig.for_vocab(VOCAB, layers=(8,), chords=False), VOCAB),
                                   0.8)
    assert "onset_phase" not in plain and plain["shift"] == plain["duration"] == 0.8


def test_calibrate_narrows_the_gaps_writes_json_and_is_applied_only_to_its_weights(tmp_path):
    corpus = chord_corpus(tmp_path / "corpus")
    config = RunConfig(data=str(tmp_path / "corpus"), encoding=ENC, window=24, batch_size=4, mle_steps=4, eval_every=4,
                       generator=GeneratorConfig.for_vocab(VOCAB, layers=(16,), embed_dim=8, chords=True), seed=0)
    run = tmp_path / "run"
    train.train_run(config, run, corpus=corpus, progress=False)
    result = calibration.calibrate(run, "best", rounds=4, songs=32, beats=16, seed=0, corpus=corpus, progress=False)
    before, after = (np.mean(list(result[k].values())) for k in ("gap_before", "gap_after"))
    assert after < 0.6 * before, (result["gap_before"], result["gap_after"])
    assert result["val_nll_after"] is not None and np.isfinite(result["val_nll_after"])
    saved = json.loads((run / runs.CALIBRATION).read_text())  # JSON only, never pickle
    assert not list(run.glob("*.partial"))
    _, raw = runs.restore_params(run, "best", calibrated=False)
    _, tilted = runs.restore_params(run, "best")
    np.testing.assert_allclose(raw["pitch_head"]["bias"], saved["base"]["pitch_head"], atol=1e-6)
    np.testing.assert_allclose(tilted["pitch_head"]["bias"], saved["calibrated"]["pitch_head"], atol=1e-6)
    assert not np.allclose(tilted["pitch_head"]["bias"], raw["pitch_head"]["bias"])
    np.testing.assert_array_equal(tilted["head"]["kernel"], raw["head"]["kernel"])  # only biases move:
    moved_tokens = np.flatnonzero(np.asarray(tilted["head"]["bias"]) != np.asarray(raw["head"]["bias"]))
    assert set(VOCAB.token_type[moved_tokens]) == {enc.T_SHIFT, enc.T_DUR}  # the scores', SHIFTs' and DURs'
    # Other weights (a checkpoint trained on from them) are not calibrated by it.
    moved = {**raw, "pitch_head": {**raw["pitch_head"], "bias": raw["pitch_head"]["bias"] + 0.1}}
    assert runs.with_calibration(run, moved) is moved
    # The command prints the gaps per family and writes the file again.
    result = run_cli("calibrate", run, "--rounds", "1", "--songs", "8", "--beats", "8", "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert "chord tone" in result.stdout and "onset phase" in result.stdout  # the table
    assert "calibration.json" in result.stdout + result.stderr
    assert json.loads((run / runs.CALIBRATION).read_text())["seed"] == 1
    # Songs say whether they came from the calibrated weights (summary.json, the table's title).
    result = run_cli("sample", run, "--num", "1", "--length", "12", "--no-png", "--out", tmp_path / "cal")
    assert result.returncode == 0 and "calibrated)" in result.stdout, result.stderr
    assert json.loads((tmp_path / "cal" / "summary.json").read_text())["calibrated"] is True
    # A damaged file is one line saying what to do.
    (run / runs.CALIBRATION).write_text("{not json")
    result = run_cli("sample", run, "--num", "1", "--length", "12", "--out", tmp_path / "s")
    assert result.returncode != 0 and "calibration.json: unreadable calibration" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    (run / runs.CALIBRATION).unlink()  # without it, the weights as trained
    result = run_cli("sample", run, "--num", "1", "--length", "12", "--no-png", "--out", tmp_path / "raw")
    assert result.returncode == 0 and "calibrated" not in result.stdout, result.stderr
    assert json.loads((tmp_path / "raw" / "summary.json").read_text())["calibrated"] is False


def test_calibrate_command_on_a_missing_run_is_one_line(tmp_path):
    result = run_cli("calibrate", tmp_path / "nope")
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "nope" in result.stderr


def test_calibration_ends_at_the_mean_of_its_later_rounds_where_each_step_overshoots(tmp_path, monkeypatch):
    """Played freely, a family's rates feed back on the context (faster runs beget faster runs), so
    a step can overshoot: here each round's step lands as far past the fixed point as it started
    before it, for ever. The last round alone would end at the start or twice past the fixed point;
    the mean of the later rounds' biases is the fixed point."""
    corpus = chord_corpus(tmp_path / "corpus")
    config = RunConfig(data=str(tmp_path / "corpus"), encoding=ENC, window=24, batch_size=4, mle_steps=2, eval_every=2,
                       generator=GeneratorConfig.for_vocab(VOCAB, layers=(8,), embed_dim=4, chords=True), seed=0)
    run = tmp_path / "run"
    train.train_run(config, run, corpus=corpus, progress=False)
    fams = calibration.families(config.generator, VOCAB)
    layer, start, n = fams["melodic"]  # a family that takes a whole step (eta) each round
    _, raw = runs.restore_params(run, "best", calibrated=False)
    base = np.asarray(raw[layer]["bias"][start : start + n], np.float64)
    needed = np.random.default_rng(0).normal(size=n)
    needed -= needed.mean()  # the tilt that gives the data's rates (a softmax: only differences matter)
    eta, gain = 0.7, 2 / 0.7  # each step moves the bias twice as far as the gap it corrects
    moved, real_rates, target = {}, calibration.rates, {}
    real_with_biases = runs.with_biases

    def with_biases(params, bias):
        moved["melodic"] = np.asarray(bias[layer][start : start + n]) - base
        return real_with_biases(params, bias)

    def rates(sequences, conds, vocab, gen, families):
        if not target:  # the first call counts the training solos
            target.update(real_rates(sequences, conds, vocab, gen, families))
            return target
        tilted = target["melodic"] * np.exp(gain * (moved["melodic"] - needed))
        return {**target, "melodic": tilted / tilted.sum()}

    monkeypatch.setattr(runs, "with_biases", with_biases)
    monkeypatch.setattr(calibration, "rates", rates)
    result = calibration.calibrate(run, "best", rounds=12, songs=2, beats=4, eta=eta, seed=0, corpus=corpus, progress=False)
    calibrated = np.asarray(result["calibrated"][layer][start : start + n]) - base
    np.testing.assert_allclose(calibrated, needed, atol=1e-6)
    assert result["gap_after"]["melodic"] < 1e-6 < result["gap_before"]["melodic"]
