"""Issue 14, the chord-conditioned generator: its input, the rows it reads over given changes,
sampling that follows the changes, and MLE training that reads the corpus's chords."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REAL_DATA, make_tiny_corpus
from ganmusic import data, runs, sampling, train
from ganmusic import encoding as enc
from ganmusic import lead_sheets as ls
from ganmusic import pitch_scores as ps
from ganmusic.chords import bar_starts, parse_changes
from ganmusic.configs import EncodingConfig, GeneratorConfig, RunConfig, SamplingConfig
from ganmusic.models import Generator, generator_initial_carry

ENC = EncodingConfig(steps_per_beat=4, melody=True)
VOCAB = enc.Vocab(ENC)
LEAD_SHEETS = REAL_DATA.parent / "lead-sheets"


def tiny_generator(chords=True, cell="lstm", **scores):
    cfg = GeneratorConfig.for_vocab(VOCAB, layers=(12, 10), cell=cell, embed_dim=8, chords=chords, **scores)
    params = Generator(cfg).init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))["params"]
    if chords:  # a visible chord input and pitch head, so a wrong row changes the logits
        params["chord_proj"]["kernel"] = params["chord_proj"]["kernel"] * 8.0
    if cfg.pitch_tokens:
        params["pitch_head"]["kernel"] = jax.random.normal(jax.random.key(1), params["pitch_head"]["kernel"].shape)
    return cfg, params


def random_rows(rng, shape):
    rows = np.tile(ls.NO_COND, shape + (1,)).astype(np.int32)
    rows[..., ls.ROOT], rows[..., ls.NEXT_ROOT] = rng.integers(0, 12, shape), rng.integers(-1, 12, shape)
    rows[..., ls.MASK] = rng.integers(1, 4096, shape)
    rows[..., ls.BAR_STEP], rows[..., ls.BAR_STEPS] = rng.integers(0, 16, shape), 16
    rows[..., ls.TO_NEXT] = rng.integers(-1, 20, shape)
    return rows


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_conditioned_generator_steps_reproduce_the_full_sequence_and_read_the_chords(cell):
    cfg, params = tiny_generator(cell=cell)
    model = Generator(cfg)
    rng = np.random.default_rng(0)
    tokens = jnp.asarray(rng.integers(0, VOCAB.size, (3, 7)), jnp.int32)
    cond = jnp.asarray(random_rows(rng, (3, 7)))
    full = model.apply({"params": params}, tokens, cond)
    def body(carry, x):
        return model.apply({"params": params}, carry, *x, method="step")

    steps = jax.lax.scan(body, generator_initial_carry(cfg, 3), (tokens.T, jnp.swapaxes(cond, 0, 1)))[1]
    np.testing.assert_allclose(jnp.swapaxes(steps, 0, 1), full, atol=1e-5)
    assert np.abs(full - model.apply({"params": params}, tokens)).max() > 1e-3  # the chords matter


def test_unconditioned_generator_ignores_rows_and_old_configs_read_as_unconditioned():
    cfg, params = tiny_generator(chords=False)
    assert "chord_proj" not in params
    tokens = jnp.asarray(np.random.default_rng(1).integers(0, VOCAB.size, (2, 5)), jnp.int32)
    cond = jnp.asarray(random_rows(np.random.default_rng(2), (2, 5)))
    model = Generator(cfg)
    np.testing.assert_array_equal(model.apply({"params": params}, tokens, cond), model.apply({"params": params}, tokens))
    old = cfg.to_dict()
    del old["chords"], old["steps_per_beat"]  # a config.json written before chords existed
    assert GeneratorConfig.from_dict(old).chords is False


def motif_bucket(before, pitch, longest=4):
    """The most intervals, up to `longest`, that the latest ones of `before` share with those
    before an earlier interval which leads from the latest pitch to `pitch` (0: none)."""
    steps = np.diff(before)
    best = 0
    for j in range(len(steps)):
        if before[-1] + steps[j] == pitch:
            n = 0
            while n < min(longest, j) and steps[j - 1 - n] == steps[len(steps) - 1 - n]:
                n += 1
            best = max(best, n)
    return best


def test_motif_buckets_count_the_intervals_matched_before_an_earlier_step_to_each_pitch():
    # 60 64 62 65, then the same shape a fifth up: after 67 71 69 the last two intervals (+4 -2)
    # are those before the +3 that led 62 -> 65, so 72 continues the motif after two.
    recent = np.array([-1, -1, 60, 64, 62, 65, 67, 71, 69])
    buckets = dict(zip(range(60, 80), np.asarray(ps.motif_buckets(jnp.asarray(recent), jnp.arange(60, 80)))))
    assert {p: b for p, b in buckets.items() if b} == {72: 2}  # no other earlier interval follows a -2
    rng = np.random.default_rng(0)
    for _ in range(200):  # against the plain loop, on short pitch sets that repeat intervals often
        heard = int(rng.integers(2, 20))
        recent = np.concatenate([np.full(20 - heard, -1), 60 + rng.integers(0, 4, heard)])
        got = ps.motif_buckets(jnp.asarray(recent), jnp.arange(54, 70))
        expected = [motif_bucket(recent[20 - heard :], p) for p in range(54, 70)]
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(ps.motif_buckets(recent, np.arange(54, 70), np), expected)  # calibration's


@pytest.mark.parametrize("chords,scores", [(True, {}), (False, {}), (True, {"pitch_memory": 6, "register_span": 13}),
                                           (True, {"pitch_memory": 13, "register_span": 6, "motif_span": 9}),
                                           (True, {"motif_span": 0})])
def test_the_head_scores_pitches_by_interval_memory_register_and_motif_and_timing_by_the_beat_phase_it_reaches(chords, scores):
    cfg, params = tiny_generator(chords=chords, **scores)
    model = Generator(cfg)
    rng = np.random.default_rng(3)
    tokens = rng.integers(0, VOCAB.size, (2, 40))
    tokens[1, 1::2] = VOCAB.pitch_token(60) + rng.integers(0, 3, 20) * 12  # a pitch class heard often
    tokens[0, :3] = VOCAB.shift_start  # no pitch yet: no melodic score
    cond = random_rows(rng, (2, 40))
    cond[0, 2, ls.ROOT] = -1  # a step without a chord
    cond[1, 3, ls.BAR_STEPS] = 0  # and one without a bar
    scores = jnp.arange(params["pitch_head"]["bias"].shape[0]) * 0.25 + 1.0  # one per interval bucket
    zeroed = {**params, "pitch_head": {"kernel": jnp.zeros_like(params["pitch_head"]["kernel"]), "bias": scores * 0}}
    scored = {**params, "pitch_head": {"kernel": zeroed["pitch_head"]["kernel"], "bias": scores}}
    added = np.asarray(model.apply({"params": scored}, jnp.asarray(tokens), jnp.asarray(cond))
                       - model.apply({"params": zeroed}, jnp.asarray(tokens), jnp.asarray(cond)))
    expected = np.zeros(added.shape, np.float32)
    for b, t in np.ndindex(tokens.shape):
        before = [VOCAB.token_value[x] for x in tokens[b, : t + 1] if VOCAB.token_type[x] == enc.T_PITCH]
        for p in VOCAB.pitches:
            score = scores[np.clip(p - before[-1], -13, 13) + 13] if before else 0.0
            if chords and cond[b, t, ls.ROOT] >= 0:
                score += scores[27 + (p - cond[b, t, ls.ROOT]) % 12] + scores[27 + 12] * ((cond[b, t, ls.MASK] >> p % 12) & 1)
            heard = sum(q % 12 == p % 12 for q in before[-cfg.pitch_memory:])  # times among the recent pitches
            score += scores[27 + 13 * chords + min(heard, 4)]
            if before:  # semitones outside the recent pitches' range, 8 or more each way
                register = before[-(cfg.register_span or cfg.pitch_memory):]  # its own span where it has one
                low, high = min(register), max(register)
                outside = p - high if p > high else p - low if p < low else 0
                score += scores[27 + 13 * chords + 5 + np.clip(outside, -8, 8) + 8]
            if before and cfg.motif_span:  # how far it continues a motif among the recent pitches
                score += scores[27 + 13 * chords + 5 + 17 + motif_bucket(before[-cfg.motif_span:], p)]
            expected[b, t, VOCAB.pitch_token(p)] = score
        if chords:  # SHIFT and DUR by the phase in the beat they reach from the note's bar position
            phase = cond[b, t, ls.BAR_STEP] + VOCAB.token_value
            spb, first = ENC.steps_per_beat, 27 + 13 + 5 + 17 + 5 * bool(cfg.motif_span)
            for kind, first in ((enc.T_SHIFT, first), (enc.T_DUR, first + spb)):
                on = VOCAB.token_type == kind
                expected[b, t, on] = scores[first + phase[on] % spb] * (cond[b, t, ls.BAR_STEPS] > 0)
    np.testing.assert_allclose(added, expected, atol=1e-5)  # every key and octave alike, other tokens untouched
    # Runs saved before the register scores have a head without them, before the memory scores
    # without those too; runs saved before the head, none.
    old = cfg.to_dict()
    del old["pitch_register"], old["register_span"], old["phase_scores"], old["motif_span"]
    head = Generator(GeneratorConfig.from_dict(old)).init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))["params"]["pitch_head"]
    assert head["bias"].shape == (27 + 13 * chords + 5,)
    del old["pitch_memory"]
    old_cfg = GeneratorConfig.from_dict(old)
    head = Generator(old_cfg).init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))["params"]["pitch_head"]
    assert head["bias"].shape == (27 + 13 * chords,) and generator_initial_carry(old_cfg, 2)[-1].shape == (2, 1)
    del old["pitch_tokens"]
    old_cfg = GeneratorConfig.from_dict(old)
    assert "pitch_head" not in Generator(old_cfg).init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))["params"]
    assert len(generator_initial_carry(old_cfg, 1)) == len(old_cfg.layers)
    # A run whose pitch tokens are not its encoding's is refused in one line.
    run = RunConfig(data="corpus", generator=cfg, encoding=ENC)
    assert runs.check_vocab(run) is run
    with pytest.raises(runs.RunError, match="pitch tokens"):
        runs.check_vocab(RunConfig(data="corpus", generator=dataclasses.replace(cfg, pitch_min=cfg.pitch_min + 1),
                                   encoding=ENC))


def test_step_conditioning_is_the_rows_conditioning_gives_notes():
    timeline, _ = parse_changes("Dm7 G7 | Cmaj7 | % | A7 / / Bb7 |")
    notes = [enc.Note(onset, 60 + onset % 12, 2) for onset in (0, 3, 8, 9, 16, 30, 31, 40, 44, 47, 52, 70)]
    tokens = enc.notes_to_tokens(notes, VOCAB)
    bars = np.array([0.0, 4.0, 7.0, 11.0])  # bars of 4, 3, 4 beats, then 4/4 on
    cond = ls.conditioning(tokens, VOCAB, timeline, bars)
    pos = ls.note_positions(tokens, VOCAB)
    rows = ls.step_conditioning(timeline, bars, int(pos.max()) + 5, ENC.steps_per_beat)
    is_note = cond[:, ls.BAR_STEPS] > 0
    assert is_note.sum() == 3 * len(notes)
    np.testing.assert_array_equal(rows[pos[is_note]], cond[is_note])
    # Rebuilt from the tokens' own rows: exact at the notes, and the chord between them.
    rebuilt = ls.steps_from_tokens(tokens, cond, VOCAB, len(rows))
    np.testing.assert_array_equal(rebuilt[pos[is_note]], cond[is_note])
    np.testing.assert_array_equal(rebuilt[:, :2], rows[:, :2])


@pytest.mark.skipif(not (LEAD_SHEETS / "jazz").is_dir(), reason=f"lead-sheet corpus not found at {LEAD_SHEETS}")
def test_step_conditioning_agrees_with_a_real_lead_sheet():
    config = EncodingConfig(melody=True)
    path = sorted((LEAD_SHEETS / "jazz").glob("*.mid"))[0]
    midi, stats = enc.load_midi(path), enc.EncodeStats()
    lead = ls.encode_lead_sheet(midi, config, stats, path=path)
    vocab = enc.Vocab(config)
    pos = ls.note_positions(lead.tokens, vocab)
    bars = bar_starts(midi, stats.origin_beats + pos[-1] / config.steps_per_beat + 8) - stats.origin_beats
    rows = ls.step_conditioning(lead.timeline, bars, int(pos[-1]) + 1, config.steps_per_beat)
    is_note = lead.cond[:, ls.BAR_STEPS] > 0
    assert (lead.cond[is_note, ls.ROOT] >= 0).mean() > 0.5
    np.testing.assert_array_equal(rows[pos[is_note]], lead.cond[is_note])


def test_sampling_over_changes_feeds_each_notes_row_and_ends_with_the_changes():
    cfg, params = tiny_generator()
    timeline, _ = parse_changes("Dm7 G7 | Cmaj7 | Cmaj7 | A7 |")
    step_cond = ls.step_conditioning(timeline, None, 16 * ENC.steps_per_beat, ENC.steps_per_beat)
    greedy = SamplingConfig(argmax_mix=1.0)
    tokens = sampling.sample(params, cfg, ENC, jax.random.key(3), 4, 400, greedy, step_cond=step_cond)
    assert tokens.shape == (4, 401)
    grammar = enc.Grammar(VOCAB)
    for row in tokens:
        end = int(np.flatnonzero(row == enc.EOS)[0])  # every song ended before the cap
        assert grammar.is_grammatical(row[: end + 1]) and (row[end + 1 :] == enc.PAD).all()
        pos = ls.note_positions(row[:end], VOCAB)
        assert pos[-1] < len(step_cond)
        # Teacher-forced over the rows each token's note reads, the greedy choices come back.
        is_note = (row[:end] != enc.BOS)
        cond = np.where(is_note[:, None], step_cond[np.minimum(pos, len(step_cond) - 1)], ls.NO_COND)
        logits = np.asarray(Generator(cfg).apply({"params": params}, row[None, :end], cond[None]))[0]
        state = grammar.initial_state()
        for t in range(1, end):
            legal = grammar.mask(state) & (np.arange(VOCAB.size) != enc.EOS)
            assert row[t] == np.argmax(np.where(legal, logits[t - 1], -np.inf)), t
            state = grammar.step(state, row[t])
    # The cap on tokens still holds, and per-song changes are accepted.
    capped = sampling.sample(params, cfg, ENC, jax.random.key(3), 2, 9, greedy,
                             step_cond=np.stack([step_cond, step_cond]))
    assert capped.shape == (2, 10)
    with pytest.raises(ValueError, match="step_cond"):
        sampling.sample(params, cfg, ENC, jax.random.key(3), 2, 9, step_cond=np.zeros((3, 5, ls.COND_SIZE)))


def test_sampling_without_changes_is_unchanged_by_the_changes_code():
    cfg, params = tiny_generator(chords=False)
    a = sampling.sample(params, cfg, ENC, jax.random.key(5), 3, 60)
    b = sampling.sample_python_loop(params, cfg, ENC, jax.random.key(5), 3, 60)
    np.testing.assert_array_equal(a, b)
    assert not (a == enc.EOS).any()


def write_chord_sidecars(root):
    for i, path in enumerate(sorted((root / "jazz").glob("*.mid"))):
        path.with_name(path.stem + ".chords.txt").write_text(["| Dm7 G7 | Cmaj7 | A7 | D7 |", "| F7 | Bb7 |"][i % 2] * 8)


def test_train_run_reads_the_corpus_chords_and_resumes(tmp_path):
    root = make_tiny_corpus(tmp_path / "corpus")
    write_chord_sidecars(root)
    corpus = data.load_corpus(root, ENC, cache_dir=tmp_path / "cache", progress=False, split_fractions=(4, 1, 1))
    gen = GeneratorConfig.for_vocab(VOCAB, layers=(8,), embed_dim=8, chords=None)
    config = RunConfig(data=str(root), generator=gen, encoding=ENC, window=24, batch_size=4, mle_steps=4, lr=5e-3,
                       eval_every=2, checkpoint_every=2, seed=1, devices=1)
    summary = train.train_run(config, tmp_path / "run", progress=False, corpus=corpus)
    saved = runs.load_run_config(tmp_path / "run")
    assert saved.generator.chords is True and saved.generator.steps_per_beat == 4
    assert np.isfinite(summary["best_val_nll"])
    assert {"chord_proj", "pitch_head"} <= set(runs.restore_params(tmp_path / "run", "last")[1])
    more = train.train_run(RunConfig.from_dict({**saved.to_dict(), "mle_steps": 6}), tmp_path / "run", resume=True,
                           progress=False, corpus=corpus)
    assert more["step"] == 6
    # Without chords in the corpus, the default stays the generator of before.
    plain = make_tiny_corpus(tmp_path / "plain")
    plain_corpus = data.load_corpus(plain, ENC, cache_dir=tmp_path / "cache", progress=False, split_fractions=(4, 1, 1))
    assert train.resolve_chords(config, plain_corpus).generator.chords is False
    assert json.loads((tmp_path / "run" / "config.json").read_text())["generator"]["chords"] is True
