import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganmusic.encoding import BOS, EOS, PAD
from ganmusic.models import ClassifierConfig, StyleClassifier

V, T = 40, 24
ENCODERS = ("conv", "gru")
LENGTHS = (24, 17, 9, 3)  # true lengths, BOS and EOS included


def small_config(encoder, **kw):
    # Three conv blocks reach 1 + 2 * (1 + 2 + 4) = 15 positions, so trailing padding sits
    # inside the receptive field of valid tokens and the invariance tests mean something. One
    # GRU layer runs the same loop body as many and halves the (slow) compile.
    base = dict(vocab_size=V, embed_dim=16, hidden=32, layers=3 if encoder == "conv" else 1,
                encoder=encoder)
    base.update(kw)
    return ClassifierConfig(**base)


def make_sequences(seed=0):
    rng = np.random.default_rng(seed)
    seqs = []
    for n in LENGTHS:
        body = rng.integers(EOS + 1, V, size=n - 2)
        seqs.append(np.concatenate([[BOS], body, [EOS]]).astype(np.int32))
    return seqs


def pad_to(seqs, length, fill=PAD):
    out = np.full((len(seqs), length), fill, np.int32)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


PITCHES = (10, 20)  # token ids 10..29 play the pitches in the key-invariant variant
MERGED = ((30, 35), (35, 40))  # in the timing-blind variant each range is one token


@pytest.fixture(scope="module", params=[("conv", None, ()), ("gru", None, ()), ("conv", PITCHES, ()),
                                        ("conv", PITCHES, MERGED)],
                ids=["conv", "gru", "conv-key-invariant", "conv-timing-blind"])
def model(request):
    # One init and one jitted apply per variant, shared by the tests: compiling dominates.
    encoder, pitch_tokens, merged = request.param
    cfg = small_config(encoder, pitch_tokens=pitch_tokens, max_interval=5, merged_tokens=merged)
    module = StyleClassifier(cfg)
    params = jax.jit(module.init)(jax.random.key(0), jnp.zeros((2, T), jnp.int32))["params"]
    # Fresh biases are zero, and a GRU fed zeros from a zero state then stays at zero, which
    # would hide padding leaks; perturbing every parameter makes it look trained.
    rng = np.random.default_rng(1)
    params = jax.tree.map(lambda a: a + 0.1 * rng.standard_normal(a.shape, np.float32), params)
    apply = jax.jit(lambda p, tokens, mask=None: module.apply({"params": p}, tokens, mask))
    return cfg, module, params, apply


def test_output_shape_and_dtype(model):
    _, _, params, apply = model
    logits = apply(params, pad_to(make_sequences(), T))
    assert logits.shape == (len(LENGTHS),)
    assert logits.dtype == jnp.float32
    assert np.all(np.isfinite(logits))
    # Different sequences should not collapse to one value.
    assert np.ptp(np.asarray(logits)) > 1e-4


def test_ids_and_exact_one_hot_agree(model):
    _, _, params, apply = model
    ids = pad_to(make_sequences(), T)
    from_ids = apply(params, ids)
    from_soft = apply(params, jax.nn.one_hot(ids, V, dtype=jnp.float32))
    np.testing.assert_allclose(from_ids, from_soft, atol=1e-5, rtol=1e-5)


def test_padding_invariance(model):
    _, _, params, apply = model
    seqs = make_sequences()
    batched = apply(params, pad_to(seqs, T))
    # Rows never interact, so padding all of them further in one call tests each alone.
    longer = apply(params, pad_to(seqs, T + 16))
    np.testing.assert_allclose(longer, batched, atol=1e-5, rtol=1e-5)


def test_masked_positions_are_ignored_whatever_they_hold(model):
    _, _, params, apply = model
    seqs = make_sequences()
    mask = pad_to(seqs, T, fill=PAD) != PAD
    clean = apply(params, pad_to(seqs, T), mask)
    garbage = pad_to(seqs, T, fill=V - 1)  # real tokens after the end, but masked out
    np.testing.assert_allclose(apply(params, garbage, mask), clean, atol=1e-5, rtol=1e-5)
    # The mask really is what hides them: without it the same tokens change the logits.
    assert not np.allclose(apply(params, garbage), clean, atol=1e-4)


def test_changing_a_valid_token_changes_the_logit(model):
    # Guards the invariance tests against a classifier that ignores its input.
    _, _, params, apply = model
    ids = pad_to(make_sequences(), T)
    other = ids.copy()
    other[:, 1] = np.where(other[:, 1] == 5, 6, 5)
    assert np.all(np.abs(np.asarray(apply(params, ids) - apply(params, other))) > 1e-6)


def test_empty_row_is_finite(model):
    _, _, params, apply = model
    ids = pad_to(make_sequences(), T)
    ids[1] = PAD
    logits = np.asarray(apply(params, ids))
    assert np.all(np.isfinite(logits))
    mask = np.zeros_like(ids, bool)
    assert np.all(np.isfinite(np.asarray(apply(params, ids, mask))))


def test_gradient_through_soft_input(model):
    _, module, params, _ = model
    ids = pad_to(make_sequences(), T)
    # A relaxed sample: mostly the real token, some mass everywhere else.
    soft = jax.nn.softmax(4.0 * jax.nn.one_hot(ids, V)
                          + jax.random.normal(jax.random.key(1), (len(ids), T, V)))

    mask = ids != PAD
    mask[-1] = False  # an empty row must not poison the gradient with NaN either

    def score(s):
        return module.apply({"params": params}, s, mask).sum()

    grad = np.asarray(jax.jit(jax.grad(score))(soft))
    assert grad.shape == soft.shape
    assert np.all(np.isfinite(grad))
    assert np.all(np.abs(grad[:-1]).max(axis=(1, 2)) > 0.0)
    # Only valid positions matter: masked-out ones get exactly zero gradient.
    assert np.all(grad[~mask] == 0.0)


def test_dropout_only_in_training(model):
    cfg, module, params, apply = model
    assert cfg.dropout > 0
    ids = pad_to(make_sequences(), T)
    # Eval needs no dropout rng (apply would raise if a Dropout layer were active) and repeats.
    eval_a, eval_b = apply(params, ids), apply(params, ids)
    np.testing.assert_array_equal(eval_a, eval_b)
    train = jax.jit(lambda key: module.apply({"params": params}, ids, train=True,
                                             rngs={"dropout": key}))
    train_a, train_b = train(jax.random.key(2)), train(jax.random.key(3))
    assert not np.allclose(train_a, train_b)
    assert not np.allclose(train_a, eval_a)


def test_config_round_trip():
    cfg = ClassifierConfig(vocab_size=152, encoder="gru", hidden=48, layers=2, dropout=0.2)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d == json.loads(json.dumps(dataclasses.asdict(cfg)))
    assert ClassifierConfig.from_dict(d) == cfg
    assert ClassifierConfig.from_dict({"vocab_size": 10}) == ClassifierConfig(vocab_size=10)


def test_config_rejects_unknown_and_bad_values():
    with pytest.raises(ValueError, match="unknown"):
        ClassifierConfig.from_dict({"vocab_size": 10, "hiden": 64})
    with pytest.raises(ValueError):
        ClassifierConfig(vocab_size=10, encoder="transformer")
    with pytest.raises(ValueError):
        ClassifierConfig(vocab_size=10, dropout=1.0)


def test_key_invariant_variant_ignores_transposition(model):
    cfg, _, params, apply = model
    if cfg.pitch_tokens is None:
        pytest.skip("only the key-invariant variant is blind to transposition")
    start, count = cfg.pitch_tokens
    rng = np.random.default_rng(5)
    ids = pad_to(make_sequences(3), T)
    # Put a pitch every third position (the token cycle) in the middle of the pitch range.
    pitch_pos = np.zeros_like(ids, dtype=bool)
    pitch_pos[:, 2::3] = True
    pitch_pos &= (ids != PAD) & (ids != EOS)
    ids = np.where(pitch_pos, start + 5 + rng.integers(0, count - 10, ids.shape), ids)
    ids = np.where(~pitch_pos & (ids >= start) & (ids < start + count), start + count, ids)  # no stray pitches
    base = apply(params, ids)
    for k in (-4, -1, 3, 5):
        np.testing.assert_allclose(apply(params, np.where(pitch_pos, ids + k, ids)), base, atol=1e-5)
    # But intervals matter: changing one pitch changes the logit.
    changed = ids.copy()
    changed[0, 5] += 2
    assert abs(float(apply(params, changed)[0]) - float(base[0])) > 1e-4


def test_timing_blind_variant_sees_one_token_per_merged_range(model):
    cfg, _, params, apply = model
    if not cfg.merged_tokens:
        pytest.skip("only the timing-blind variant merges tokens")
    rng = np.random.default_rng(7)
    ids = pad_to(make_sequences(4), T)
    in_range = np.zeros_like(ids, dtype=bool)
    in_range[:, 1::3] = True  # the SHIFT positions of the token cycle
    in_range &= ids != PAD
    lo, hi = cfg.merged_tokens[0]
    ids = np.where(in_range, rng.integers(lo, hi, ids.shape), ids)
    base = apply(params, ids)
    moved = np.where(in_range, rng.integers(lo, hi, ids.shape), ids)  # other "rhythms"
    np.testing.assert_allclose(apply(params, moved), base, atol=1e-5)
    # Soft input spread over a merged range counts as its one token.
    soft = np.array(jax.nn.one_hot(ids, V, dtype=jnp.float32))
    soft[in_range] = 0.0
    soft[..., lo:hi][in_range] = 1.0 / (hi - lo)
    np.testing.assert_allclose(apply(params, soft), base, atol=1e-5)
    # Tokens outside the ranges still matter.
    other = ids.copy()
    other[:, 1] = np.where(other[:, 1] == 5, 6, 5)
    assert np.all(np.abs(np.asarray(apply(params, other) - base)) > 1e-6)


def test_for_vocab_timing_blind_merges_shift_and_duration_ranges():
    from ganmusic.encoding import EncodingConfig, Vocab

    vocab = Vocab(EncodingConfig())
    cfg = ClassifierConfig.for_vocab(vocab, timing=False)
    assert cfg.merged_tokens == ((vocab.shift_start, vocab.pitch_start), (vocab.dur_start, vocab.size))
    assert ClassifierConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg  # JSON lists back to tuples
    assert ClassifierConfig.for_vocab(vocab).merged_tokens == ()
    with pytest.raises(ValueError, match="merged_tokens"):
        ClassifierConfig(vocab_size=10, merged_tokens=((5, 20),))
