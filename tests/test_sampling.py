import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganmusic.encoding import (BOS, EOS, PAD, T_BOS, T_DUR, T_PITCH, EncodingConfig, Grammar, Note, Vocab,
                               notes_to_tokens, tokens_to_notes)
from ganmusic.models import Generator, GeneratorConfig, generator_initial_carry
from ganmusic.sampling import SamplingConfig, _sample_scan, sample, sample_python_loop

ENC = EncodingConfig()
VOCAB = Vocab(ENC)
GRAMMAR = Grammar(VOCAB)
CFG = GeneratorConfig(vocab_size=VOCAB.size, layers=(32,), embed_dim=16)
NUM = 8
GREEDY = SamplingConfig(argmax_mix=1.0)
PRIMER = notes_to_tokens([Note(0, 60, 6), Note(6, 64, 6), Note(6, 55, 6), Note(12, 67, 12)], VOCAB)[:-1]


@pytest.fixture(scope="module")
def params():
    p = jax.jit(Generator(CFG).init)(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))["params"]
    rng = np.random.default_rng(1)  # look trained: no zero biases, some peaky logits
    return jax.tree.map(lambda a: a + 0.3 * rng.standard_normal(a.shape, np.float32), p)


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


@pytest.mark.parametrize("length", [1, 5, 17, 64])
def test_samples_are_grammatical_and_decode(params, length):
    out = sample(params, CFG, ENC, jax.random.key(3), NUM, length)
    assert out.shape == (NUM, length + 1) and out.dtype == np.int32
    assert (out[:, 0] == BOS).all()
    for seq in out:
        assert GRAMMAR.is_grammatical(seq)
        notes = tokens_to_notes(seq, VOCAB)
        assert len(notes) == length // 3  # a note cut in half at the end is dropped
        assert all(ENC.pitch_min <= n.pitch <= ENC.pitch_max and n.duration > 0 for n in notes)
    if length >= 17:  # a random model's samples are not all alike
        assert len({tuple(s) for s in out}) > 1


def test_top_k_1_and_argmax_mix_equal_reference_greedy(params):
    expected = reference_greedy(params, NUM, 17)
    np.testing.assert_array_equal(sample(params, CFG, ENC, jax.random.key(0), NUM, 17, GREEDY), expected)
    np.testing.assert_array_equal(
        sample(params, CFG, ENC, jax.random.key(1), NUM, 17, SamplingConfig(top_k=1)), expected)
    np.testing.assert_array_equal(
        sample(params, CFG, ENC, jax.random.key(2), NUM, 17, SamplingConfig(top_p=1e-6)), expected)
    # ... while plain sampling is not greedy.
    assert not (sample(params, CFG, ENC, jax.random.key(0), NUM, 17) == expected).all()


def test_seed_reproduces_and_other_seed_differs(params):
    a = sample(params, CFG, ENC, jax.random.key(7), NUM, 17)
    compiled = _sample_scan._cache_size()
    np.testing.assert_array_equal(a, sample(params, CFG, ENC, jax.random.key(7), NUM, 17))
    assert _sample_scan._cache_size() == compiled  # the second call did not recompile
    assert not (a == sample(params, CFG, ENC, jax.random.key(8), NUM, 17)).all()


def test_primer_is_kept_and_continued(params):
    out = sample(params, CFG, ENC, jax.random.key(4), NUM, 16, primer=PRIMER)
    assert out.shape == (NUM, len(PRIMER) + 16)
    np.testing.assert_array_equal(out[:, : len(PRIMER)], np.tile(PRIMER, (NUM, 1)))
    for seq in out:
        assert GRAMMAR.is_grammatical(seq)
        assert tokens_to_notes(seq, VOCAB)[:4] == tokens_to_notes(PRIMER, VOCAB)
    # The primer warms the network: greedy continuation matches teacher forcing by hand, and
    # (here PRIMER ends in a chord on pitch 55, so the next note must be lower) the grammar.
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
    plain = sample(loud, CFG, ENC, jax.random.key(5), NUM, 60, SamplingConfig(argmax_mix=mix))
    assert consecutive_pitch_repeats(plain) > 10
    penalized = SamplingConfig(argmax_mix=mix, repetition_penalty=1e30)
    out = sample(loud, CFG, ENC, jax.random.key(5), NUM, 60, penalized)
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
    out = sample(eager, CFG, ENC, jax.random.key(6), NUM, 30)
    assert not (out == EOS).any() and not (out == PAD).any()
    assert all(len(tokens_to_notes(s, VOCAB)) == 10 for s in out)
    stopped = sample(eager, CFG, ENC, jax.random.key(6), NUM, 30, SamplingConfig(allow_eos=True))
    assert (stopped == EOS).any(axis=1).all()
    for seq in stopped:
        assert GRAMMAR.is_grammatical(seq)
        end = int(np.argmax(seq == EOS))
        assert (seq[end + 1 :] == PAD).all() and VOCAB.token_type[seq[end - 1]] in (T_DUR, T_BOS)


def test_scan_equals_python_loop(params):
    cfg = SamplingConfig(temperature=0.8, top_k=20, top_p=0.9, argmax_mix=0.25, repetition_penalty=2.0)
    rng = jax.random.key(9)
    scan = sample(params, CFG, ENC, rng, NUM, 12, cfg, primer=PRIMER)
    np.testing.assert_array_equal(sample_python_loop(params, CFG, ENC, rng, NUM, 12, cfg, primer=PRIMER), scan)
    assert all(GRAMMAR.is_grammatical(s) for s in scan)


def test_sampling_config_validation():
    for bad in (dict(temperature=0.0), dict(top_k=-1), dict(top_p=0.0), dict(top_p=1.5),
                dict(argmax_mix=1.5), dict(repetition_penalty=0.0)):
        with pytest.raises(ValueError):
            SamplingConfig(**bad)
