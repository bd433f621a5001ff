"""The style classifier: token windows -> one logit for "in the style".

It reads either token ids `[B, T]` or soft one-hot vectors `[B, T, V]` through the same
embedding table, so the generator's relaxed (Gumbel-softmax) samples can be scored, and
differentiated, exactly like real data. Padded positions never influence the logit: appending
`PAD` to a window leaves it unchanged, so windows of any true length compare fairly.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganmusic.configs import ClassifierConfig, GeneratorConfig
from ganmusic.encoding import PAD

def interval_buckets(cfg: ClassifierConfig) -> int:
    """-max..+max, one for wider leaps, one for 'no previous pitch'."""
    return 2 * cfg.max_interval + 3


class StyleClassifier(nn.Module):
    """`(tokens, mask) -> logits [B]`; tokens are ids `[B, T]` or soft one-hots `[B, T, V]`."""

    config: ClassifierConfig

    @nn.compact
    def __call__(self, tokens, mask=None, *, train: bool = False):
        cfg = self.config
        tokens = jnp.asarray(tokens)
        if tokens.ndim == 2 and jnp.issubdtype(tokens.dtype, jnp.integer):
            x = self._embed_ids(tokens)
            derived = tokens != PAD
        elif tokens.ndim == 3 and tokens.shape[-1] == cfg.vocab_size:
            soft = tokens.astype(jnp.float32)
            x = self._embed_soft(soft)
            derived = (1.0 - soft[..., PAD]) > 0.5
        else:
            raise ValueError(
                f"tokens must be int [B, T] or float [B, T, {cfg.vocab_size}], "
                f"got {tokens.dtype} {tokens.shape}"
            )
        mask = derived if mask is None else jnp.asarray(mask).astype(bool)
        m = mask[..., None].astype(jnp.float32)

        h = nn.Dense(cfg.hidden, name="in_proj")(x)
        if cfg.encoder == "conv":
            h = self._conv_encoder(h, m, train)
        else:
            h = self._gru_encoder(h, m, mask, train)

        # Masked mean and max over valid positions; an empty row pools to zeros, not NaN.
        count = m.sum(axis=1)
        mean = (h * m).sum(axis=1) / jnp.maximum(count, 1.0)
        peak = jnp.max(jnp.where(m > 0, h, -jnp.inf), axis=1)
        peak = jnp.where(count > 0, peak, 0.0)
        z = jnp.concatenate([mean, peak], axis=-1)

        z = nn.gelu(nn.Dense(cfg.hidden, name="head_hidden")(z))
        z = nn.Dropout(cfg.dropout, deterministic=not train)(z)
        return nn.Dense(1, name="head_out")(z)[..., 0].astype(jnp.float32)

    # The embedding. One table serves both inputs: a soft one-hot times the table is a weighted
    # lookup, and an exact one-hot gives the same vector as indexing. With `pitch_tokens` set,
    # the model is blind to absolute key: a PITCH token is embedded as "a pitch" plus the
    # interval from the previous pitch, which sits exactly 3 tokens earlier (SHIFT, PITCH, DUR).

    def _tables(self):
        cfg = self.config
        init = nn.initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0)
        table = self.param("embedding", init, (cfg.vocab_size, cfg.embed_dim))
        if not cfg.pitch_tokens:
            return table, None, None
        pitch_vec = self.param("pitch_embedding", init, (1, cfg.embed_dim))
        intervals = self.param("interval_embedding", init, (interval_buckets(cfg), cfg.embed_dim))
        return table, pitch_vec[0], intervals

    def _embed_ids(self, ids):
        cfg = self.config
        table, pitch_vec, intervals = self._tables()
        for lo, hi in cfg.merged_tokens:
            ids = jnp.where((ids >= lo) & (ids < hi), lo, ids)
        if not cfg.pitch_tokens:
            return jnp.take(table, ids, axis=0)
        start, count = cfg.pitch_tokens
        is_pitch = (ids >= start) & (ids < start + count)
        prev = jnp.pad(ids, ((0, 0), (3, 0)), constant_values=PAD)[:, :-3]
        prev_is_pitch = (prev >= start) & (prev < start + count)
        step = ids - prev
        span = cfg.max_interval
        bucket = jnp.where(prev_is_pitch, jnp.where(jnp.abs(step) <= span, step + span, 2 * span + 1), 2 * span + 2)
        pitch_part = pitch_vec + jnp.take(intervals, bucket, axis=0)
        return jnp.where(is_pitch[..., None], pitch_part, jnp.take(table, ids, axis=0))

    def _embed_soft(self, soft):
        cfg = self.config
        table, pitch_vec, intervals = self._tables()
        for lo, hi in cfg.merged_tokens:  # the range's mass moves onto its first token
            soft = soft.at[..., lo].set(soft[..., lo:hi].sum(-1)).at[..., lo + 1 : hi].set(0.0)
        # Full precision so a one-hot matches the lookup on GPUs too (TF32 would not).
        matmul = functools.partial(jnp.matmul, precision=jax.lax.Precision.HIGHEST)
        if not cfg.pitch_tokens:
            return matmul(soft, table)
        start, count = cfg.pitch_tokens
        pitch = soft[..., start : start + count]
        other = soft.at[..., start : start + count].set(0.0)
        prev = jnp.pad(pitch, ((0, 0), (3, 0), (0, 0)))[:, :-3]
        # P(interval = d) = sum_k P(pitch = k + d) P(previous = k), for |d| <= max_interval.
        span = cfg.max_interval
        by_step = []
        for d in range(-span, span + 1):
            lo, hi = max(0, -d), min(count, count - d)
            by_step.append((pitch[..., lo + d : hi + d] * prev[..., lo:hi]).sum(-1))
        near = jnp.stack(by_step, axis=-1)
        mass, prev_mass = pitch.sum(-1), prev.sum(-1)
        far = mass * prev_mass - near.sum(-1)  # a leap wider than max_interval
        none = mass * (1.0 - prev_mass)  # no previous pitch in the window
        buckets = jnp.concatenate([near, far[..., None], none[..., None]], axis=-1)
        return matmul(other, table) + mass[..., None] * pitch_vec + matmul(buckets, intervals)

    def _conv_encoder(self, h, m, train):
        cfg = self.config
        for i in range(cfg.layers):
            # Pre-norm residual block. Zeroing padded positions right before the conv makes
            # them look exactly like the conv's own zero padding past the end, so trailing PADs
            # cannot change any valid position.
            y = nn.LayerNorm(name=f"conv_norm_{i}")(h) * m
            y = nn.Conv(
                cfg.hidden,
                kernel_size=(cfg.kernel_size,),
                kernel_dilation=(2**i,),
                padding="SAME",
                name=f"conv_{i}",
            )(y)
            y = nn.Dropout(cfg.dropout, deterministic=not train)(nn.gelu(y))
            h = h + y
        return nn.LayerNorm(name="out_norm")(h)

    def _gru_encoder(self, h, m, mask, train):
        cfg = self.config
        # Valid tokens form a prefix (BOS ... EOS, then PAD), so the count is the length. With
        # seq_lengths the backward GRU starts at the last valid token, and the forward one
        # never looks ahead, so padded positions cannot reach valid outputs (zeroing them too
        # just keeps their garbage small). A mask with holes would need real lengths instead.
        lengths = mask.sum(axis=-1).astype(jnp.int32)
        for i in range(cfg.layers):
            y = nn.Bidirectional(
                nn.RNN(nn.GRUCell(cfg.hidden), name=f"gru_fwd_{i}"),
                nn.RNN(nn.GRUCell(cfg.hidden), name=f"gru_bwd_{i}"),
                name=f"bigru_{i}",
            )(h * m, seq_lengths=lengths)
            y = nn.Dropout(cfg.dropout, deterministic=not train)(y)
            # Project the two directions back to `hidden` so the residual lines up.
            y = nn.Dense(cfg.hidden, name=f"gru_proj_{i}")(y)
            h = nn.LayerNorm(name=f"gru_norm_{i}")(h + y)
        return h


# ---------------------------------------------------------------------------------------------
# The generator: a token language model (embedding, stacked LSTM/GRU, logits over the vocab).
# ---------------------------------------------------------------------------------------------

def generator_initial_carry(config: GeneratorConfig, batch_size: int):
    """Zero recurrent state of every layer: `(c, h)` per LSTM layer, `h` per GRU layer."""
    def zeros(h):
        return jnp.zeros((batch_size, h), jnp.float32)

    if config.cell == "lstm":
        return tuple((zeros(h), zeros(h)) for h in config.layers)
    return tuple(zeros(h) for h in config.layers)


class Generator(nn.Module):
    """Token LM. `__call__(tokens) -> logits [B, T, V]` (teacher forcing, one `lax.scan` per
    layer) and `step(carry, token) -> (carry, logits [B, V])` share one parameter tree, so
    stepping through a sequence reproduces `__call__`. Tokens are int ids or soft one-hots
    (`[..., V]` floats, embedded as `soft @ table` at full precision, for Gumbel-softmax)."""

    config: GeneratorConfig

    def setup(self):
        cfg = self.config
        init = nn.initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0)
        self.embedding = self.param("embedding", init, (cfg.vocab_size, cfg.embed_dim))
        cell = nn.OptimizedLSTMCell if cfg.cell == "lstm" else nn.GRUCell
        # The cells belong to the generator; the RNN wrappers only scan them over time, so
        # `step` calls the very same cells (and parameters) once.
        self.cells = [cell(h) for h in cfg.layers]
        self.rnns = [nn.RNN(c) for c in self.cells]
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Dense(cfg.vocab_size)

    def _embed(self, tokens, time_axis: bool):
        cfg = self.config
        tokens = jnp.asarray(tokens)
        ids_ndim = 2 if time_axis else 1
        if tokens.ndim == ids_ndim and jnp.issubdtype(tokens.dtype, jnp.integer):
            return jnp.take(self.embedding, tokens, axis=0)
        if tokens.ndim == ids_ndim + 1 and tokens.shape[-1] == cfg.vocab_size:
            soft = tokens.astype(jnp.float32)
            # Full precision so a one-hot matches the lookup on GPUs too (TF32 would not).
            return jnp.matmul(soft, self.embedding, precision=jax.lax.Precision.HIGHEST)
        shape = "[B, T]" if time_axis else "[B]"
        raise ValueError(f"tokens must be int {shape} or float {shape[:-1]}, {cfg.vocab_size}], "
                         f"got {tokens.dtype} {tokens.shape}")

    def __call__(self, tokens, *, train: bool = False):
        x = self._embed(tokens, time_axis=True)
        for rnn in self.rnns:
            x = self.drop(rnn(x), deterministic=not train)
        return self.head(x).astype(jnp.float32)

    def step(self, carry, token):
        x = self._embed(token, time_axis=False)
        new_carry = []
        for cell, c in zip(self.cells, carry):
            c, x = cell(c, x)
            new_carry.append(c)
        return tuple(new_carry), self.head(x).astype(jnp.float32)
