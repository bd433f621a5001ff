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

from ganmusic import lead_sheets as ls
from ganmusic import pitch_scores as ps
from ganmusic.configs import ClassifierConfig, GeneratorConfig
from ganmusic.encoding import PAD


def chord_input(config, cond, shape):
    """The chord features of `cond` int rows `[..., COND_SIZE]` (None: no chord anywhere) for
    inputs of leading `shape`; models with `config.chords` add their projection to the token
    embedding."""
    if cond is None:
        cond = jnp.broadcast_to(jnp.asarray(ls.NO_COND, jnp.int32), tuple(shape) + (ls.COND_SIZE,))
    return ls.chord_features(jnp.asarray(cond), config.steps_per_beat, xp=jnp)


def relative_chord_features(config: ClassifierConfig, pitch_probs, cond):
    """The critic's key-invariant view of the chords: per token, the chord's quality (its pitch
    classes from its root), the note's pitch class from the root (a distribution, for soft
    tokens) and whether it is a chord tone, the next chord's root interval and quality, the
    has-chord flags and the bar position of `chord_features`. `pitch_probs`: `[B, T, count]`
    mass on each PITCH token (zero on other tokens)."""
    cond = jnp.asarray(cond).astype(jnp.int32)
    k = jnp.arange(12)
    pitch_class = (k[None, :] == (jnp.arange(pitch_probs.shape[-1])[:, None] + config.pitch_min) % 12)
    pc = pitch_probs @ pitch_class.astype(jnp.float32)  # [B, T, 12], absolute pitch classes

    def from_root(x, root):  # x[(k + root) % 12]: pitch classes counted from the root
        return jnp.take_along_axis(x, (k + jnp.maximum(root, 0)[..., None]) % 12, axis=-1)

    def bits(mask):
        return ((mask[..., None] >> k) & 1).astype(jnp.float32)

    root, nxt = cond[..., ls.ROOT], cond[..., ls.NEXT_ROOT]
    has, has_next = (root >= 0)[..., None], (nxt >= 0)[..., None]
    chord = bits(cond[..., ls.MASK])
    parts = [from_root(chord, root) * has, from_root(pc, root) * has, (pc * chord).sum(-1, keepdims=True),
             jax.nn.one_hot((nxt - root) % 12, 12) * has * has_next, from_root(bits(cond[..., ls.NEXT_MASK]), nxt) * has_next,
             has.astype(jnp.float32), has_next.astype(jnp.float32),
             ls.chord_features(cond, config.steps_per_beat, xp=jnp)[..., 4 * 12 + 2 :]]  # the bar position
    return jnp.concatenate(parts, axis=-1)

def interval_buckets(cfg: ClassifierConfig) -> int:
    """-max..+max, one for wider leaps, one for 'no previous pitch'."""
    return 2 * cfg.max_interval + 3


class StyleClassifier(nn.Module):
    """`(tokens, mask) -> logits [B]`; tokens are ids `[B, T]` or soft one-hots `[B, T, V]`."""

    config: ClassifierConfig

    @nn.compact
    def __call__(self, tokens, mask=None, cond=None, *, train: bool = False, features: bool = False):
        """Logits `[B]`; with `features`, the pooled representation under the head `[B, hidden]`
        instead (what feature matching compares)."""
        cfg = self.config
        tokens = jnp.asarray(tokens)
        if tokens.ndim == 2 and jnp.issubdtype(tokens.dtype, jnp.integer):
            x = self._embed_ids(tokens)
            derived = tokens != PAD
            soft = None
        elif tokens.ndim == 3 and tokens.shape[-1] == cfg.vocab_size:
            soft = tokens.astype(jnp.float32)
            x = self._embed_soft(soft)
            derived = (1.0 - soft[..., PAD]) > 0.5
        else:
            raise ValueError(
                f"tokens must be int [B, T] or float [B, T, {cfg.vocab_size}], "
                f"got {tokens.dtype} {tokens.shape}"
            )
        if cfg.chords:  # the chords, seen relative to their roots (`cond` None: no chord anywhere)
            start, count = cfg.pitch_tokens or (0, 0)
            probs = soft[..., start : start + count] if soft is not None else jax.nn.one_hot(tokens - start, count)
            rows = cond if cond is not None else jnp.broadcast_to(jnp.asarray(ls.NO_COND, jnp.int32),
                                                                    tokens.shape[:2] + (ls.COND_SIZE,))
            x = x + nn.Dense(cfg.embed_dim, name="chord_proj")(relative_chord_features(cfg, probs, rows))
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
        out = nn.Dense(1, name="head_out")(z)[..., 0].astype(jnp.float32)
        return z.astype(jnp.float32) if features else out

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

# How `Generator.__call__` runs LSTM layers over whole sequences: "scan" (a `lax.scan` of the
# flax cell, every backend), "cudnn" (`jax.experimental.rnn.lstm`, NVIDIA GPUs only),
# "reference" (`jax.experimental.rnn.lstm_ref`, the cuDNN kernel's own pure-JAX reference, on
# the cuDNN weight layout: the CPU stand-in for "cudnn" in tests), "auto" (cudnn where
# available, else scan). Step-by-step calls (`step`, sampling) and GRU layers always use the cell.
LSTM_PATHS = ("auto", "scan", "cudnn", "reference")
GATES = "ifgo"  # flax's OptimizedLSTMCell and cuDNN both order the gates i, f, g, o


@functools.lru_cache(maxsize=1)
def default_lstm_path() -> str:
    """"cudnn" where JAX's default backend is an NVIDIA GPU with JAX's cuDNN RNN kernels, else
    "scan"."""
    from jax.experimental import rnn

    if jax.default_backend() != "gpu" or getattr(rnn, "gpu_rnn", None) is None:
        return "scan"
    version = str(getattr(jax.devices()[0].client, "platform_version", "")).lower()
    return "scan" if "rocm" in version else "cudnn"


def lstm_cudnn_weights(cell_params) -> jax.Array:
    """The parameters of stacked flax `OptimizedLSTMCell`s (bottom first) as cuDNN's flat weight
    vector: W_ih [4H, D] and W_hh [4H, H] of every layer, then b_ih and b_hh of every layer, gates
    i, f, g, o in each. Flax keeps one bias (on the hidden side), so b_hh is zero. Plain
    concatenation, so gradients flow back to the cell parameters: checkpoints keep flax's layout
    and this runs once per trace."""
    weights, biases = [], []
    for p in cell_params:
        w_ih = jnp.concatenate([p[f"i{g}"]["kernel"] for g in GATES], axis=-1).T
        w_hh = jnp.concatenate([p[f"h{g}"]["kernel"] for g in GATES], axis=-1).T
        b = jnp.concatenate([p[f"h{g}"]["bias"] for g in GATES])
        weights += [w_ih.ravel(), w_hh.ravel()]
        biases += [b, jnp.zeros_like(b)]
    return jnp.concatenate(weights + biases)


def lstm_layers_fullseq(cell_params, x, path: str = "cudnn"):
    """Stacked LSTM layers (flax `OptimizedLSTMCell` parameters, bottom first) over whole
    sequences `x [B, T, D]` from a zero state -> the top layer's outputs `[B, T, H]`, through
    cuDNN ("cudnn") or its pure-JAX reference on the same flat weights ("reference").
    Consecutive layers of one size run as one multi-layer call. Every row runs all T steps
    (seq_lengths = T): the generator is causal, so trailing padding never reaches earlier
    outputs, exactly as in the scan."""
    from jax.experimental import rnn

    if path not in ("cudnn", "reference"):
        raise ValueError(f"path must be 'cudnn' or 'reference', got {path!r}")
    cell_params = list(cell_params)
    batch, length = x.shape[:2]
    lengths = jnp.full((batch,), length, jnp.int32)
    start = 0
    while start < len(cell_params):
        hidden = cell_params[start]["hi"]["kernel"].shape[-1]
        stop = start + 1
        while stop < len(cell_params) and cell_params[stop]["hi"]["kernel"].shape[-1] == hidden:
            stop += 1
        n, inputs = stop - start, x.shape[-1]
        weights = lstm_cudnn_weights(cell_params[start:stop])
        zeros = jnp.zeros((n, batch, hidden), x.dtype)
        if path == "cudnn":
            x = rnn.lstm(x, zeros, zeros, weights, lengths, input_size=inputs, hidden_size=hidden,
                         num_layers=n, dropout=0.0, bidirectional=False)[0]
        else:
            w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(weights, inputs, hidden, n, False)
            x = rnn.lstm_ref(x, zeros, zeros, w_ih, w_hh, b_ih, b_hh, lengths, inputs, hidden, n, 0.0, False)[0]
        start = stop
    return x


def generator_initial_carry(config: GeneratorConfig, batch_size: int):
    """Zero recurrent state of every layer: `(c, h)` per LSTM layer, `h` per GRU layer; then, with
    `config.pitch_tokens`, the recent pitches `[B, pitch_scores.memory_size]` (-1: none yet)."""
    def zeros(h):
        return jnp.zeros((batch_size, h), jnp.float32)

    cells = tuple((zeros(h), zeros(h)) if config.cell == "lstm" else zeros(h) for h in config.layers)
    recent = jnp.full((batch_size, ps.memory_size(config)), -1, jnp.int32)
    return cells + (recent,) if config.pitch_tokens else cells


class Generator(nn.Module):
    """Token LM. `__call__(tokens) -> logits [B, T, V]` (teacher forcing: LSTM layers through
    cuDNN on NVIDIA GPUs, else one `lax.scan` per layer; see `LSTM_PATHS`) and
    `step(carry, token) -> (carry, logits [B, V])` share one parameter tree (flax's cell
    layout, whatever the path), so stepping through a sequence reproduces `__call__`. Tokens are
    int ids or soft one-hots (`[..., V]` floats, embedded as `soft @ table` at full precision,
    for Gumbel-softmax). A chord-conditioned generator (`config.chords`) also reads each token's
    chord conditioning row (`cond`, int `[B, T, COND_SIZE]` or `[B, COND_SIZE]`; None: no chord):
    its features' projection is added to the embedding, so the recurrent layers (and cuDNN)
    see inputs of one size either way. With `config.pitch_tokens` the hidden state also scores
    every pitch by its interval from the previous pitch, by how often its pitch class was among
    the last `pitch_memory` pitches, by the recent register and the motifs it continues and, with
    chords, by its interval from the chord's root and as a chord tone (`pitch_scores`); the
    recent pitches ride in the carry."""

    config: GeneratorConfig
    lstm_path: str = "auto"

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
        if cfg.chords:
            self.chord_proj = nn.Dense(cfg.embed_dim)  # chord features -> added to the embedding
        if cfg.pitch_tokens:  # starts at zero: the plain head's logits
            self.pitch_head = nn.Dense(ps.head_size(cfg), kernel_init=nn.initializers.zeros)

    def _embed(self, tokens, time_axis: bool, cond=None):
        """The recurrent input: the token's embedding, plus (chord-conditioned generators) the
        projection of its chord features; `cond` is ignored by unconditioned generators."""
        cfg = self.config
        tokens = jnp.asarray(tokens)
        ids_ndim = 2 if time_axis else 1
        if tokens.ndim == ids_ndim and jnp.issubdtype(tokens.dtype, jnp.integer):
            x = jnp.take(self.embedding, tokens, axis=0)
        elif tokens.ndim == ids_ndim + 1 and tokens.shape[-1] == cfg.vocab_size:
            soft = tokens.astype(jnp.float32)
            # Full precision so a one-hot matches the lookup on GPUs too (TF32 would not).
            x = jnp.matmul(soft, self.embedding, precision=jax.lax.Precision.HIGHEST)
        else:
            shape = "[B, T]" if time_axis else "[B]"
            raise ValueError(f"tokens must be int {shape} or float {shape[:-1]}, {cfg.vocab_size}], "
                             f"got {tokens.dtype} {tokens.shape}")
        if cfg.chords:
            x = x + self.chord_proj(chord_input(cfg, cond, x.shape[:-1]))
        return x

    def full_sequence_path(self) -> str:
        """The path `__call__` takes here: "scan", "cudnn" or "reference"."""
        if self.lstm_path not in LSTM_PATHS:
            raise ValueError(f"lstm_path must be one of {LSTM_PATHS}, got {self.lstm_path!r}")
        if self.config.cell != "lstm" or self.is_initializing():  # init: the cells make their params
            return "scan"
        return default_lstm_path() if self.lstm_path == "auto" else self.lstm_path

    def __call__(self, tokens, cond=None, *, train: bool = False):
        recent = ps.recent_pitches(self.config, tokens) if self.config.pitch_tokens else None
        x = self._embed(tokens, time_axis=True, cond=cond)
        path = self.full_sequence_path()
        if path == "scan":
            for rnn in self.rnns:
                x = self.drop(rnn(x), deterministic=not train)
        else:
            # With dropout between layers each layer is its own call, dropping out as the scan
            # does; otherwise one call runs the stack.
            dropping = train and self.config.dropout > 0
            groups = [[cell] for cell in self.cells] if dropping else [self.cells]
            for group in groups:
                x = lstm_layers_fullseq([cell.variables["params"] for cell in group], x, path)
                x = self.drop(x, deterministic=not train)
        return self._logits(x, cond, recent)

    def step(self, carry, token, cond=None):
        recent = None
        if self.config.pitch_tokens:
            carry, recent = carry[:-1], ps.remember(self.config, carry[-1], token)
        x = self._embed(token, time_axis=False, cond=cond)
        new_carry = []
        for cell, c in zip(self.cells, carry):
            c, x = cell(c, x)
            new_carry.append(c)
        if recent is not None:
            new_carry.append(recent)
        return tuple(new_carry), self._logits(x, cond, recent)

    def _logits(self, hidden, cond, recent):
        cfg, logits = self.config, self.head(hidden).astype(jnp.float32)
        if cfg.pitch_tokens:
            scores, layout = self.pitch_head(hidden).astype(jnp.float32), ps.score_layout(cfg)

            def span(first, last=None):  # the scores of families first..last, adjacent in the head
                start, (end, n) = layout[first][0], layout[last or first]
                return scores[..., start : end + n]

            logits = logits + ps.melodic_logits(cfg, span("melodic"), recent[..., -1])
            if cfg.chords:
                logits = logits + ps.chord_logits(cfg, span("root", "chord_tone"), cond)
            if cfg.pitch_memory:
                logits = logits + ps.memory_logits(cfg, span("memory"), recent)
            if cfg.pitch_register:
                logits = logits + ps.register_logits(cfg, span("register"), recent)
            if cfg.motif_span:
                logits = logits + ps.motif_logits(cfg, span("motif"), recent)
            if cfg.phase_scores:
                logits = logits + ps.phase_logits(cfg, span("onset_phase", "end_phase"), cond)
        return logits
