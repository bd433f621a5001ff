"""The style classifier: token windows -> one logit for "in the style".

It reads either token ids `[B, T]` or soft one-hot vectors `[B, T, V]` through the same
embedding table, so the generator's relaxed (Gumbel-softmax) samples can be scored, and
differentiated, exactly like real data. Padded positions never influence the logit: appending
`PAD` to a window leaves it unchanged, so windows of any true length compare fairly.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganmusic.encoding import PAD

ENCODERS = ("conv", "gru")


@dataclass(frozen=True)
class ClassifierConfig:
    """Classifier architecture; saved as JSON with every classifier."""

    vocab_size: int
    embed_dim: int = 64
    encoder: str = "conv"  # "conv" (dilated residual CNN) or "gru" (bidirectional GRU)
    hidden: int = 128
    layers: int = 4  # conv: blocks with dilations 1, 2, 4, ...; gru: bidirectional layers
    kernel_size: int = 3
    dropout: float = 0.1
    # (first PITCH token id, number of pitches): embed pitches by interval, blind to key.
    pitch_tokens: tuple[int, int] | None = None
    max_interval: int = 24  # intervals up to two octaves get their own embedding

    @classmethod
    def for_vocab(cls, vocab, **kwargs) -> "ClassifierConfig":
        """A key-invariant config for an `encoding.Vocab`."""
        return cls(vocab_size=vocab.size, pitch_tokens=(vocab.pitch_start, len(vocab.pitches)), **kwargs)

    def __post_init__(self):
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        for name in ("vocab_size", "embed_dim", "hidden", "layers", "kernel_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ClassifierConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown classifier config keys: {sorted(unknown)}")
        if d.get("pitch_tokens") is not None:
            d = {**d, "pitch_tokens": tuple(d["pitch_tokens"])}
        return cls(**d)


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
