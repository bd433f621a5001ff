import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganmusic import mle
from ganmusic.encoding import EncodingConfig, Vocab
from ganmusic.models import (Generator, GeneratorConfig, default_lstm_path, generator_initial_carry,
                             lstm_cudnn_weights)

V = Vocab(EncodingConfig()).size  # 152
B, T = 3, 11
VARIANTS = [("lstm", (32, 16)), ("gru", (32, 16))]  # two layers of different sizes


def random_params(module, seed=1):
    """Random weights in the tree `init` makes, without compiling `init` (seconds per model on
    a CPU, mostly the initializers); no bias is zero, so no path is trivially zero."""
    shapes = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 4), jnp.int32))["params"]
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = jax.tree_util.keystr(path)
        std = 1.0 if "embedding" in name else 1 / np.sqrt(leaf.shape[0]) if leaf.ndim == 2 else 0.3
        return jnp.asarray(std * rng.standard_normal(leaf.shape), jnp.float32)

    return jax.tree_util.tree_map_with_path(draw, shapes)


@functools.lru_cache(maxsize=None)
def make(cell="lstm", layers=(32, 16), dropout=0.0):
    """(config, module, params, full, step): one init and jitted applies per variant, shared by
    the tests, since compiling dominates their time. Dropout has no parameters, so a variant
    with dropout shares the parameters of the one without."""
    cfg = GeneratorConfig(vocab_size=V, layers=layers, cell=cell, embed_dim=24, dropout=dropout)
    module = Generator(cfg)
    params = make(cell, layers)[2] if dropout else random_params(module)

    @functools.partial(jax.jit, static_argnames="train")
    def full(params, seq, key=None, train=False):
        return module.apply({"params": params}, seq, train=train, rngs={"dropout": key} if train else None)

    step = jax.jit(lambda params, carry, tok: module.apply({"params": params}, carry, tok, method="step"))
    return cfg, module, params, full, step


def tokens(seed=0):
    return jnp.asarray(np.random.default_rng(seed).integers(0, V, size=(B, T)), jnp.int32)


def run_steps(cfg, params, step, seq):
    carry = generator_initial_carry(cfg, seq.shape[0])
    out = []
    for t in range(seq.shape[1]):
        carry, logits = step(params, carry, seq[:, t])
        out.append(logits)
    return jnp.stack(out, axis=1)


@pytest.mark.parametrize("cell,layers", VARIANTS, ids=[f"{c}-{'x'.join(map(str, l))}" for c, l in VARIANTS])
def test_step_by_step_equals_full_sequence(cell, layers):
    cfg, module, params, full, step = make(cell, layers)
    seq = tokens()
    logits = full(params, seq)
    assert logits.shape == (B, T, V) and logits.dtype == jnp.float32
    stepped = run_steps(cfg, params, step, seq)
    np.testing.assert_allclose(stepped, logits, atol=1e-4, rtol=0)
    # The logits depend on the past: changing the first token changes the last logits.
    other = full(params, seq.at[:, 0].set((seq[:, 0] + 1) % V))
    assert not np.allclose(other[:, -1], logits[:, -1], atol=1e-4)


def test_one_param_tree_and_shapes():
    cfg, module, params, full, step = make("lstm", (32, 16))
    assert set(params) == {"embedding", "cells_0", "cells_1", "head"}
    # `init` through `step` makes the very same tree as through `__call__`.
    by_step = jax.eval_shape(functools.partial(module.init, method="step"), jax.random.key(0),
                             generator_initial_carry(cfg, 1), jnp.zeros((1,), jnp.int32))["params"]
    def spec(tree):
        return jax.tree.map(lambda a: (a.shape, a.dtype), tree)

    assert spec(by_step) == spec(params)
    assert params["embedding"].shape == (V, 24)
    assert params["head"]["kernel"].shape == (16, V)
    carry = generator_initial_carry(cfg, B)
    assert [tuple(x.shape for x in c) for c in carry] == [((B, 32), (B, 32)), ((B, 16), (B, 16))]
    assert all(float(jnp.abs(x).max()) == 0.0 for x in jax.tree.leaves(carry))
    carry, logits = step(params, carry, jnp.zeros((B,), jnp.int32))
    assert logits.shape == (B, V)
    assert jax.tree.map(jnp.shape, carry) == jax.tree.map(jnp.shape, generator_initial_carry(cfg, B))
    gru_cfg = GeneratorConfig(vocab_size=V, layers=(32, 16), cell="gru")
    assert [c.shape for c in generator_initial_carry(gru_cfg, 2)] == [(2, 32), (2, 16)]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_soft_one_hot_equals_ids(cell):
    cfg, module, params, full, step = make(cell, (32, 16))
    seq = tokens(1)
    soft = jax.nn.one_hot(seq, V, dtype=jnp.float32)
    np.testing.assert_allclose(full(params, soft), full(params, seq), atol=1e-5, rtol=0)
    carry = generator_initial_carry(cfg, B)
    np.testing.assert_allclose(step(params, carry, soft[:, 0])[1], step(params, carry, seq[:, 0])[1],
                               atol=1e-5, rtol=0)
    # A genuinely soft input is a mixture of embeddings, so it gives different logits.
    mixed = 0.5 * soft + 0.5 * jax.nn.one_hot((seq + 1) % V, V)
    assert not np.allclose(full(params, mixed), full(params, seq), atol=1e-4)


def test_bad_token_shapes_raise():
    cfg, module, params, full, step = make()
    with pytest.raises(ValueError):
        full(params, jnp.zeros((B, T, V + 1)))
    with pytest.raises(ValueError):
        full(params, jnp.zeros((B,), jnp.int32))
    with pytest.raises(ValueError):
        step(params, generator_initial_carry(cfg, B), jnp.zeros((B, T), jnp.int32))


def test_dropout_only_when_training():
    cfg, module, params, full, step = make("lstm", (32, 16), dropout=0.5)
    seq = tokens(2)
    # Evaluation ignores dropout: the same logits as the same weights without it.
    cfg0, module0, params0, full0, step0 = make("lstm", (32, 16))
    evaluate = full0(params0, seq)
    np.testing.assert_array_equal(full(params, seq), evaluate)
    a, b = full(params, seq, jax.random.key(1), train=True), full(params, seq, jax.random.key(2), train=True)
    assert not np.allclose(a, evaluate, atol=1e-3)
    assert not np.allclose(a, b, atol=1e-3)
    np.testing.assert_array_equal(a, full(params, seq, jax.random.key(1), train=True))
    # Zero dropout: training changes nothing.
    np.testing.assert_array_equal(full0(params0, seq, jax.random.key(1), train=True), evaluate)


def test_config_round_trip_and_validation():
    cfg = GeneratorConfig(vocab_size=V, layers=(64, 32), cell="gru", embed_dim=16, dropout=0.2)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert isinstance(d["layers"], list)
    back = GeneratorConfig.from_dict(d)
    assert back == cfg and isinstance(back.layers, tuple) and hash(back) == hash(cfg)
    assert GeneratorConfig(vocab_size=V).layers == (256, 256)
    assert GeneratorConfig(vocab_size=V, layers=[8, 4]).layers == (8, 4)
    with pytest.raises(ValueError, match="unknown"):
        GeneratorConfig.from_dict({**d, "hidden": 3})
    for bad in (dict(cell="rnn"), dict(layers=()), dict(layers=(32, 0)), dict(embed_dim=0),
                dict(vocab_size=0), dict(dropout=1.0), dict(dropout=-0.1), dict(layers=32)):
        with pytest.raises(ValueError):
            GeneratorConfig(**{"vocab_size": V, **bad})


# The cuDNN path of `__call__` (`jax.experimental.rnn.lstm`, NVIDIA GPUs only) is stood in for on
# the CPU by `lstm_ref`, the kernel's own pure-JAX reference, fed the very same flat cuDNN weight
# vector that `lstm_cudnn_weights` builds from the flax cells. Three layers of sizes 32, 32, 16:
# the first two run as one multi-layer call, the third as another.
PATH_LAYERS = (32, 32, 16)


def loss_and_grads(lstm_path, params, seq, mask, dropout=0.0, key=None):
    cfg = GeneratorConfig(vocab_size=V, layers=PATH_LAYERS, embed_dim=24, dropout=dropout)
    module = Generator(cfg, lstm_path=lstm_path)

    def loss(params):
        logits = module.apply({"params": params}, seq, train=key is not None,
                              rngs={"dropout": key} if key is not None else None)
        return mle.token_nll(logits, seq, mask)[0]

    return jax.jit(jax.value_and_grad(loss))(params)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_cudnn_layout_path_computes_the_scans_loss_and_gradients(dropout):
    cfg = GeneratorConfig(vocab_size=V, layers=PATH_LAYERS, embed_dim=24)
    params = random_params(Generator(cfg), seed=4)
    seq = jnp.asarray(np.random.default_rng(5).integers(1, V, size=(4, 19)), jnp.int32)
    mask = jnp.asarray(np.arange(19)[None, :] < np.array([[19], [12], [7], [19]]))  # padded rows
    key = jax.random.key(3) if dropout else None
    # Full float32 matmuls: on a GPU the default (TF32) leaves the two paths' sums ~1e-3 apart.
    with jax.default_matmul_precision("highest"):
        scan_loss, scan_grads = loss_and_grads("scan", params, seq, mask, dropout, key)
        ref_loss, ref_grads = loss_and_grads("reference", params, seq, mask, dropout, key)
    np.testing.assert_allclose(ref_loss, scan_loss, rtol=1e-6)
    assert jax.tree.structure(ref_grads) == jax.tree.structure(params)
    for (path, g_ref), g_scan in zip(jax.tree_util.tree_leaves_with_path(ref_grads), jax.tree.leaves(scan_grads)):
        scale = float(jnp.abs(g_scan).max())
        assert scale > 0 or "embedding" in jax.tree_util.keystr(path)  # every cell weight gets a gradient
        np.testing.assert_allclose(g_ref, g_scan, rtol=0, atol=1e-5 * max(scale, 1e-6),
                                   err_msg=jax.tree_util.keystr(path))
    if dropout:  # the same dropout masks on both paths, and they do change the loss
        assert abs(float(scan_loss) - float(loss_and_grads("scan", params, seq, mask)[0])) > 1e-4


def test_cudnn_weight_vector_layout():
    """`lstm_cudnn_weights` against `rnn.unpack_lstm_weights`: W_ih = [W_ii; W_if; W_ig; W_io]
    from the flax input kernels (transposed), W_hh likewise, b_ih the flax bias, b_hh zero."""
    from jax.experimental import rnn

    cfg = GeneratorConfig(vocab_size=V, layers=(32, 32), embed_dim=24)
    params = random_params(Generator(cfg), seed=6)
    cells = [params["cells_0"], params["cells_1"]]
    flat = lstm_cudnn_weights(cells)
    assert flat.shape == (rnn.get_num_params_in_lstm(24, 32, 2, False),)
    w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(flat, 24, 32, 2, False)
    for layer, p in enumerate(cells):
        for k, gate in enumerate("ifgo"):
            rows = slice(32 * k, 32 * (k + 1))
            np.testing.assert_array_equal(w_ih[layer][rows], p[f"i{gate}"]["kernel"].T)
            np.testing.assert_array_equal(w_hh[layer][rows], p[f"h{gate}"]["kernel"].T)
            np.testing.assert_array_equal(b_ih[layer][rows], p[f"h{gate}"]["bias"])
        assert float(jnp.abs(b_hh[layer]).max()) == 0.0


def test_lstm_path_choice():
    assert default_lstm_path() == ("cudnn" if jax.default_backend() == "gpu" else "scan")
    cfg = GeneratorConfig(vocab_size=V, layers=(8,), embed_dim=4)
    params = random_params(Generator(cfg))
    seq = tokens()
    with pytest.raises(ValueError, match="lstm_path"):
        Generator(cfg, lstm_path="fast").apply({"params": params}, seq)
    # GRU layers have no cuDNN kernel in JAX: every path runs the scan, with the same result.
    gru = GeneratorConfig(vocab_size=V, layers=(8,), embed_dim=4, cell="gru")
    gru_params = random_params(Generator(gru))
    np.testing.assert_array_equal(Generator(gru, lstm_path="reference").apply({"params": gru_params}, seq),
                                  Generator(gru, lstm_path="scan").apply({"params": gru_params}, seq))


@pytest.mark.skipif(default_lstm_path() != "cudnn", reason="needs an NVIDIA GPU (the cuDNN LSTM kernel)")
def test_cudnn_path_computes_the_scans_loss_and_gradients_on_a_gpu():
    cfg = GeneratorConfig(vocab_size=V, layers=PATH_LAYERS, embed_dim=24)
    params = random_params(Generator(cfg), seed=4)
    seq = jnp.asarray(np.random.default_rng(5).integers(1, V, size=(4, 19)), jnp.int32)
    mask = jnp.ones(seq.shape, bool)
    with jax.default_matmul_precision("highest"):  # no TF32 on either side (cuDNN reads this too)
        scan_loss, scan_grads = loss_and_grads("scan", params, seq, mask)
        gpu_loss, gpu_grads = loss_and_grads("cudnn", params, seq, mask)
    np.testing.assert_allclose(gpu_loss, scan_loss, rtol=1e-5)
    for g_gpu, g_scan in zip(jax.tree.leaves(gpu_grads), jax.tree.leaves(scan_grads)):
        np.testing.assert_allclose(g_gpu, g_scan, rtol=0, atol=1e-4 * max(float(jnp.abs(g_scan).max()), 1e-6))
