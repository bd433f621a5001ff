"""The style classifier: token windows -> one logit for "in the style".

It reads either token ids `[B, T]` or soft one-hot vectors `[B, T, V]` through the same
embedding table, so the generator's relaxed (Gumbel-softmax) samples can be scored, and
differentiated, exactly like real data. Padded positions never influence the logit: appending
`PAD` to a window leaves it unchanged, so windows of any true length compare fairly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import flax.linen as nn
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
        return cls(**d)


class StyleClassifier(nn.Module):
    """`(tokens, mask) -> logits [B]`; tokens are ids `[B, T]` or soft one-hots `[B, T, V]`."""

    config: ClassifierConfig

    @nn.compact
    def __call__(self, tokens, mask=None, *, train: bool = False):
        cfg = self.config
        tokens = jnp.asarray(tokens)
        # One table for both inputs: a soft one-hot times the table is a weighted lookup, and
        # an exact one-hot gives the same vector as indexing.
        table = self.param(
            "embedding",
            nn.initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0),
            (cfg.vocab_size, cfg.embed_dim),
        )
        if tokens.ndim == 2 and jnp.issubdtype(tokens.dtype, jnp.integer):
            x = jnp.take(table, tokens, axis=0)
            derived = tokens != PAD
        elif tokens.ndim == 3 and tokens.shape[-1] == cfg.vocab_size:
            soft = tokens.astype(jnp.float32)
            x = soft @ table
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
        # never looks ahead, so padded positions cannot reach valid outputs.
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
