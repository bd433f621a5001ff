import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganmusic.encoding import (BOS, EOS, PAD, T_BOS, T_DUR, T_PITCH, EncodingConfig, Grammar, Note, Vocab,
                               notes_to_tokens, tokens_to_notes)
from ganmusic.models import Generator, GeneratorConfig, generator_initial_carry
from ganmusic import sampling
from ganmusic.sampling import (GrammarTables, Knobs, SamplingConfig, _sample_scan, argmax_carrying, choose_tokens,
                               sample, sample_python_loop, static_filters, step_noise)

ENC = EncodingConfig()
VOCAB = Vocab(ENC)
GRAMMAR = Grammar(VOCAB)
TABLES = GrammarTables(GRAMMAR)
CFG = GeneratorConfig(vocab_size=VOCAB.size, layers=(32,), embed_dim=16)  # stacks: test_generator
NUM = 8
GREEDY = SamplingConfig(argmax_mix=1.0)
MIXED = SamplingConfig(temperature=0.8, top_k=20, top_p=0.9, argmax_mix=0.25, repetition_penalty=2.0)
# BOS, two notes, then SHIFT 0: the primer stops inside a chord, so the next pitch must be < 64.
PRIMER = notes_to_tokens([Note(0, 60, 6), Note(6, 64, 6), Note(6, 55, 6)], VOCAB)[:-3]


@pytest.fixture(scope="module")
def params():
    # Random weights in `init`'s tree, without compiling `init` (seconds on a CPU); no zero
    # biases, and logits peaky enough that greedy and sampled decoding differ.
    shapes = jax.eval_shape(Generator(CFG).init, jax.random.key(0), jnp.zeros((1, 4), jnp.int32))["params"]
    rng = np.random.default_rng(1)

    def draw(path, leaf):
        std = 1.0 if "embedding" in jax.tree_util.keystr(path) else 0.3
        return jnp.asarray(std * rng.standard_normal(leaf.shape), jnp.float32)

    return jax.tree_util.tree_map_with_path(draw, shapes)


def biased(params, token, amount):
    """The same model with one token's logit raised everywhere."""
    head = dict(params["head"], bias=params["head"]["bias"].at[token].add(amount))
    return {**params, "head": head}


@jax.jit
def model_step(params, carry, token):
    return Generator(CFG).apply({"params": params}, carry, token, method="step")


def reference_greedy(params, num, length, primer=(BOS,)):
    """Greedy decoding written independently: `Generator.step` from Python, the numpy grammar."""
    carry = generator_initial_carry(CFG, num)
    for t in primer[:-1]:
        carry, _ = model_step(params, carry, jnp.full((num,), t, jnp.int32))
    states = [GRAMMAR.state_after(primer[1:])] * num
    seqs = np.tile(np.asarray(primer, np.int32), (num, 1))
    token = seqs[:, -1]
    for _ in range(length):
        carry, logits = model_step(params, carry, jnp.asarray(token))
        logits = np.asarray(logits)
        token = np.zeros(num, np.int32)
        for b in range(num):
            legal = GRAMMAR.mask(states[b])
            legal[EOS] = False
            token[b] = int(np.argmax(np.where(legal, logits[b], -np.inf)))
            states[b] = GRAMMAR.step(states[b], token[b])
        seqs = np.concatenate([seqs, token[:, None]], axis=1)
    return seqs


@pytest.mark.parametrize("length", [2, 16, 64])  # all cut a note short
def test_samples_are_grammatical_and_decode(params, length):
    out = sample(params, CFG, ENC, jax.random.key(3), NUM, length)
    assert out.shape == (NUM, length + 1) and out.dtype == np.int32
    assert (out[:, 0] == BOS).all()
    for seq in out:
        assert GRAMMAR.is_grammatical(seq)
        notes = tokens_to_notes(seq, VOCAB)
        assert len(notes) == length // 3  # a note cut in half at the end is dropped
        assert all(ENC.pitch_min <= n.pitch <= ENC.pitch_max and n.duration > 0 for n in notes)
    if length >= 16:  # a random model's samples are not all alike
        assert len({tuple(s) for s in out}) > 1


def test_top_k_1_and_argmax_mix_equal_reference_greedy(params):
    expected = reference_greedy(params, NUM, 16)
    np.testing.assert_array_equal(sample(params, CFG, ENC, jax.random.key(0), NUM, 16, GREEDY), expected)
    np.testing.assert_array_equal(
        sample(params, CFG, ENC, jax.random.key(1), NUM, 16, SamplingConfig(top_k=1)), expected)
    np.testing.assert_array_equal(
        sample(params, CFG, ENC, jax.random.key(2), NUM, 16, SamplingConfig(top_p=1e-6)), expected)
    np.testing.assert_array_equal(
        sample(params, CFG, ENC, jax.random.key(3), NUM, 16, SamplingConfig(temperature=1e-6)), expected)
    # ... while plain sampling is not greedy.
    assert not (sample(params, CFG, ENC, jax.random.key(0), NUM, 16) == expected).all()


def test_seed_reproduces_and_other_seed_differs(params):
    a = sample(params, CFG, ENC, jax.random.key(7), NUM, 16)
    # Step t's noise depends on (rng, t) only, so a shorter sample is a prefix of a longer one.
    np.testing.assert_array_equal(a, sample(params, CFG, ENC, jax.random.key(7), NUM, 64)[:, :17])
    compiled = _sample_scan._cache_size()
    np.testing.assert_array_equal(a, sample(params, CFG, ENC, jax.random.key(7), NUM, 16))
    assert not (a == sample(params, CFG, ENC, jax.random.key(8), NUM, 16)).all()
    # Other numeric settings reuse the compiled scan (only shapes, configs, top_k and whether
    # top_p filters or argmax_mix mixes at all recompile).
    sample(params, CFG, ENC, jax.random.key(7), NUM, 16,
           SamplingConfig(temperature=0.5, repetition_penalty=3.0, allow_eos=True))
    assert _sample_scan._cache_size() == compiled
    sample(params, CFG, ENC, jax.random.key(7), NUM, 16, SamplingConfig(argmax_mix=0.1))
    compiled = _sample_scan._cache_size()
    sample(params, CFG, ENC, jax.random.key(7), NUM, 16, SamplingConfig(argmax_mix=0.5, temperature=0.7))
    assert _sample_scan._cache_size() == compiled
    sample(params, CFG, ENC, jax.random.key(7), NUM, 16, SamplingConfig(top_p=0.8))
    compiled = _sample_scan._cache_size()
    sample(params, CFG, ENC, jax.random.key(7), NUM, 16, SamplingConfig(temperature=0.7, top_p=0.5))
    assert _sample_scan._cache_size() == compiled


def test_temperature_spreads_or_sharpens(params):
    def distinct_pitches(temperature):
        out = sample(params, CFG, ENC, jax.random.key(11), NUM, 64, SamplingConfig(temperature=temperature))
        return len(np.unique(out[VOCAB.token_type[out] == T_PITCH]))

    assert distinct_pitches(0.05) < distinct_pitches(1.0) < distinct_pitches(20.0)


def test_primer_is_kept_and_continued(params):
    assert VOCAB.describe(PRIMER[-4:]) == "SHIFT_6 PITCH_64 DUR_6 SHIFT_0"
    out = sample(params, CFG, ENC, jax.random.key(4), NUM, 16, primer=PRIMER)
    assert out.shape == (NUM, len(PRIMER) + 16)
    np.testing.assert_array_equal(out[:, : len(PRIMER)], np.tile(PRIMER, (NUM, 1)))
    # The grammar state after the primer holds: the chord goes on downwards.
    first = out[:, len(PRIMER)]
    assert (VOCAB.token_type[first] == T_PITCH).all() and (VOCAB.token_value[first] < 64).all()
    for seq in out:
        assert GRAMMAR.is_grammatical(seq)
        assert tokens_to_notes(seq, VOCAB)[:2] == [Note(0, 60, 6), Note(6, 64, 6)]
    # The primer warms the network: greedy continuation matches teacher forcing by hand.
    greedy = sample(params, CFG, ENC, jax.random.key(4), NUM, 16, GREEDY, primer=PRIMER)
    np.testing.assert_array_equal(greedy, reference_greedy(params, NUM, 16, tuple(PRIMER)))
    for bad in ([VOCAB.shift_start], [BOS, VOCAB.pitch_token(60)], [*PRIMER, EOS], [BOS, VOCAB.size]):
        with pytest.raises(ValueError):
            sample(params, CFG, ENC, jax.random.key(4), NUM, 4, primer=np.asarray(bad, np.int32))


def consecutive_pitch_repeats(out):
    repeats = 0
    for seq in out:
        pitches = seq[VOCAB.token_type[seq] == T_PITCH]
        repeats += int((pitches[1:] == pitches[:-1]).sum())
    return repeats


@pytest.mark.parametrize("mix", [0.0, 1.0], ids=["sampled", "greedy"])
def test_repetition_penalty_prevents_repeated_pitch(params, mix):
    loud = biased(params, VOCAB.pitch_token(60), 5.0)  # a model that loves middle C
    plain = sample(loud, CFG, ENC, jax.random.key(5), NUM, 64, SamplingConfig(argmax_mix=mix))
    assert consecutive_pitch_repeats(plain) > 10
    penalized = SamplingConfig(argmax_mix=mix, repetition_penalty=1e30)
    out = sample(loud, CFG, ENC, jax.random.key(5), NUM, 64, penalized)
    assert consecutive_pitch_repeats(out) == 0
    for seq in out:
        assert GRAMMAR.is_grammatical(seq)
        # The repeated pitch was never the only legal one (the grammar always offers others).
        state = GRAMMAR.initial_state()
        for t in seq[1:]:
            if VOCAB.token_type[t] == T_PITCH:
                assert GRAMMAR.mask(state)[VOCAB.pitch_start : VOCAB.dur_start].sum() > 1
            state = GRAMMAR.step(state, t)


def test_eos_only_when_allowed(params):
    eager = biased(params, EOS, 8.0)  # a model that wants to stop
    out = sample(eager, CFG, ENC, jax.random.key(6), NUM, 64)
    assert not (out == EOS).any() and not (out == PAD).any()
    assert all(len(tokens_to_notes(s, VOCAB)) == 21 for s in out)
    stopped = sample(eager, CFG, ENC, jax.random.key(6), NUM, 64, SamplingConfig(allow_eos=True))
    assert (stopped == EOS).any(axis=1).all()
    for seq in stopped:
        assert GRAMMAR.is_grammatical(seq)
        end = int(np.argmax(seq == EOS))
        assert (seq[end + 1 :] == PAD).all() and VOCAB.token_type[seq[end - 1]] in (T_DUR, T_BOS)


def test_scan_equals_python_loop(params):
    rng = jax.random.key(9)
    scan = sample(params, CFG, ENC, rng, NUM, 16, MIXED, primer=PRIMER)
    loop = sample_python_loop(params, CFG, ENC, rng, NUM, 16, MIXED, primer=PRIMER)
    np.testing.assert_array_equal(loop, scan)
    assert all(GRAMMAR.is_grammatical(s) for s in scan)


def test_sampling_config_validation():
    for bad in (dict(temperature=0.0), dict(top_k=-1), dict(top_p=0.0), dict(top_p=1.5),
                dict(argmax_mix=1.5), dict(repetition_penalty=0.0)):
        with pytest.raises(ValueError):
            SamplingConfig(**bad)


def test_argmax_carrying_is_jnp_argmax_with_its_payload():
    # Small integer scores tie often; -inf rows, and a NaN (which jnp.argmax counts as the largest).
    scores = jax.random.randint(jax.random.key(3), (64, 40), 0, 4).astype(jnp.float32)
    scores = scores.at[5].set(-jnp.inf).at[6, 17].set(jnp.nan).at[7, :30].set(-jnp.inf)
    payload = jax.random.randint(jax.random.key(4), (64, 40), 0, 1000)
    best, carried = jax.jit(argmax_carrying)(scores, payload)
    expected = jnp.argmax(scores, axis=-1)
    np.testing.assert_array_equal(best, expected)
    np.testing.assert_array_equal(carried, jnp.take_along_axis(payload, expected[:, None], axis=1)[:, 0])
    assert best[6] == 17 and best[5] == 0


def test_choose_tokens_draws_the_same_with_or_without_a_payload():
    # Every filter on, and a bias that is not only a mask (the repetition penalty's part): the
    # payload rides along, it never changes the draw.
    logits = jax.random.normal(jax.random.key(0), (NUM, VOCAB.size))
    bias = jax.random.normal(jax.random.key(1), (NUM, VOCAB.size))
    payload = jax.random.randint(jax.random.key(2), (NUM, VOCAB.size), 0, 1000)
    knobs, filters = Knobs.of(MIXED), static_filters(MIXED)
    for seed in range(4):
        noise = step_noise(jax.random.key(seed), 3, NUM, VOCAB.size)
        alone = choose_tokens(logits, bias, noise, knobs, *filters)
        token, carried = choose_tokens(logits, bias, noise, knobs, *filters, payload=payload)
        np.testing.assert_array_equal(alone, token)
        np.testing.assert_array_equal(carried, jnp.take_along_axis(payload, token[:, None], axis=1)[:, 0])


def test_draw_is_jax_random_categorical():
    state = GRAMMAR.initial_state((NUM,), xp=jnp)
    logits = jax.random.normal(jax.random.key(0), (NUM, VOCAB.size))
    legal = np.asarray(GRAMMAR.mask(state)) & (np.arange(VOCAB.size) != EOS)

    @jax.jit
    def both(key):
        noise = step_noise(key, 5, NUM, VOCAB.size)
        knobs = Knobs.of(SamplingConfig())
        bias = TABLES.bias(knobs)[TABLES.index(*GRAMMAR.initial_state((NUM,)))]
        ours = choose_tokens(logits, bias, noise, knobs)
        step_key = jax.random.split(jax.random.fold_in(key, 5))[0]
        return ours, jax.random.categorical(step_key, jnp.where(legal, logits, -jnp.inf))

    draws = []
    for seed in range(10):
        ours, expected = both(jax.random.key(seed))
        np.testing.assert_array_equal(ours, expected)
        draws.append(np.asarray(ours))
    draws = np.stack(draws, axis=1)  # [NUM, 10]
    assert np.take_along_axis(legal, draws, axis=1).all() and len(np.unique(draws)) > 5


def test_noise_in_chunks_and_raw_keys(params, monkeypatch):
    # Noise for 3 steps at a time: 8 steps are two chunks and a remainder of 2. A length no
    # other test uses makes the scan trace again with the small chunk.
    monkeypatch.setattr(sampling, "NOISE_CHUNK", 3 * NUM * VOCAB.size)
    rng = jax.random.PRNGKey(12)  # an old-style raw uint32 key works too
    chunked = sample(params, CFG, ENC, rng, NUM, 8, MIXED)
    np.testing.assert_array_equal(chunked, sample_python_loop(params, CFG, ENC, rng, NUM, 8, MIXED))
    assert all(GRAMMAR.is_grammatical(s) for s in chunked)
    np.testing.assert_array_equal(sample(params, CFG, ENC, rng, 3, 0), np.full((3, 1), BOS))


def test_grammar_tables_follow_the_grammar():
    """Along random grammatical walks (chords included), the table state gives `Grammar.mask`,
    the last pitch and the next state exactly."""
    rng = np.random.default_rng(0)
    knobs = Knobs.of(SamplingConfig(repetition_penalty=2.0, allow_eos=True))
    bias = np.asarray(TABLES.bias(knobs))
    ids = np.arange(VOCAB.size)
    for walk in range(20):
        state = GRAMMAR.initial_state()
        s = int(TABLES.index(*state))
        for _ in range(60):
            legal = GRAMMAR.mask(state)
            np.testing.assert_array_equal(TABLES.legal[s], legal)
            pitch = int(state[1])
            last = VOCAB.pitch_start + pitch - ENC.pitch_min if pitch >= 0 else -1
            expected = np.where(legal, np.where(ids == last, -np.log(2.0), 0.0), -np.inf)
            np.testing.assert_allclose(bias[s], expected, rtol=1e-6)
            choices = np.flatnonzero(legal & (ids != EOS))
            # Favour SHIFT 0 and low pitches now and then, so chords and the bottom pitch occur.
            if walk % 2 and GRAMMAR.zero_shift in choices and rng.random() < 0.5:
                token = GRAMMAR.zero_shift
            else:
                token = int(choices[0] if walk % 4 == 3 else rng.choice(choices))
            state = GRAMMAR.step(state, token)
            s = int(TABLES.next_state[s, token])
            assert s == TABLES.index(*state)
