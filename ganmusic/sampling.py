"""Sampling token sequences from a `Generator`, grammatical at every step.

`sample` runs the whole batch in one compiled `lax.scan` over the steps; `sample_python_loop`
calls the same per-step function, jitted, from a Python loop (the benchmark's reference). At
each step the logits go: grammar mask -> repetition penalty -> temperature -> top-k -> top-p ->
a categorical draw, or, with probability `argmax_mix` per sequence and step, the argmax of the
masked, penalized logits. The mask and the penalty are one row of a table, indexed by the grammar
state and added to the logits (`GrammarTables`); without top-p nothing is sorted.

Step t draws its randomness from `jax.random.fold_in(rng, t)` (`step_noise`), and the draw is
`jax.random.categorical`'s own rule, argmax(logits + Gumbel noise), so both samplers return the
same samples for one `rng`, and a shorter sample is a prefix of a longer one. The scan version
makes the noise for many steps at once, outside the recurrence: drawn step by step inside the
loop, the small random-number kernels cost about as much as the network on a CPU.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ganmusic import lead_sheets as ls
from ganmusic.configs import SamplingConfig
from ganmusic.encoding import BOS, EOS, PAD, T_DUR, T_PITCH, T_SHIFT, TYPE_NAMES, EncodingConfig, Grammar, Vocab
from ganmusic.models import Generator, GeneratorConfig, generator_initial_carry

# A penalty this large already makes a token impossible next to legal rivals, but stays finite
# so a penalized token that is the only legal one can still be chosen (never an illegal one).
MAX_PENALTY = 1e9
# The scan version makes the noise for this many values (steps x batch x vocab) at a time.
NOISE_CHUNK = 1 << 24


@functools.lru_cache(maxsize=16)
def _grammar(encoding_config: EncodingConfig) -> Grammar:
    return Grammar(Vocab(encoding_config))


class GrammarTables:
    """The grammar as lookup tables, so a sampling step reads its mask instead of computing it.

    `Grammar.mask` depends on the previous token only through its type (with `SHIFT 0`, the
    chord opener, apart) and on the last pitch, so the state `(prev, pitch)` folds into one index
    `s = kind(prev) * slots + slot(pitch)`: `legal[s]` is the mask, `next_state[s, token]` the
    state after `token`, `last[s]` the token id of the state's last pitch (-1: none). Built by
    calling `Grammar.mask` on every state, so the two cannot disagree."""

    def __init__(self, grammar: Grammar):
        vocab = grammar.vocab
        self.pitch_min = pitch_min = vocab.config.pitch_min
        self.slots = len(vocab.pitches) + 1  # slot 0: no pitch yet
        kind = grammar.token_type.astype(np.int32).copy()
        kind[grammar.zero_shift] = len(TYPE_NAMES)  # SHIFT 0 is a kind of its own
        kinds = len(TYPE_NAMES) + 1
        self.kind = kind
        # One token of each kind stands for it (every kind has one in any vocabulary).
        example = np.array([int(np.flatnonzero(kind == k)[0]) for k in range(kinds)], np.int32)
        pitch_of_slot = np.concatenate([[-1], vocab.pitches]).astype(np.int32)
        states = np.arange(kinds * self.slots)
        prev, pitch = example[states // self.slots], pitch_of_slot[states % self.slots]
        self.legal = grammar.mask((prev, pitch))  # [S, V]
        self.last = np.where(pitch >= 0, vocab.pitch_start + pitch - pitch_min, -1).astype(np.int32)
        token_slot = np.where(grammar.pitch_of_token >= 0, grammar.pitch_of_token - pitch_min + 1, 0)
        slot = np.where(token_slot[None, :] > 0, token_slot[None, :], (states % self.slots)[:, None])
        self.next_state = (kind[None, :] * self.slots + slot).astype(np.int32)  # [S, V]

    def index(self, prev, pitch):
        """`(prev, pitch)` grammar state(s) -> table index(es), numpy."""
        pitch = np.asarray(pitch)
        slot = np.where(pitch >= 0, pitch - self.pitch_min + 1, 0)
        return (self.kind[np.asarray(prev)] * self.slots + slot).astype(np.int32)

    def bias(self, knobs: "Knobs"):
        """Per state, what a step adds to the logits: -inf for illegal tokens (EOS too, unless
        allowed), -log(repetition_penalty) for the last pitch, 0 elsewhere. `logits + bias` equals
        masking with `where` and then subtracting the penalty, bit for bit."""
        ids = jnp.arange(self.legal.shape[1])
        legal = jnp.asarray(self.legal) & ((ids != EOS) | knobs.allow_eos)
        bias = jnp.where(legal, 0.0, -jnp.inf)
        repeat = (ids[None, :] == jnp.asarray(self.last)[:, None]) & legal
        return jnp.where(repeat, -knobs.penalty, bias).astype(jnp.float32)


@functools.lru_cache(maxsize=16)
def _tables(encoding_config: EncodingConfig) -> GrammarTables:
    return GrammarTables(_grammar(encoding_config))


def step_noise(rng, t, num: int, vocab_size: int):
    """Step t's randomness: Gumbel noise `[num, V]` for the draw, uniforms `[num]` for
    `argmax_mix`. `argmax(logits + gumbel)` is exactly `jax.random.categorical(k, logits)`
    for `k = jax.random.split(jax.random.fold_in(rng, t))[0]`."""
    key_sample, key_mix = jax.random.split(jax.random.fold_in(rng, t))
    return (jax.random.gumbel(key_sample, (num, vocab_size), jnp.float32),
            jax.random.uniform(key_mix, (num,), jnp.float32))


class Knobs(NamedTuple):
    """The numeric settings as numpy scalars: traced by `jit`, so changing them never recompiles,
    and made on the host, so a call to `sample` starts no device work before its scan."""

    temperature: np.float32
    top_p: np.float32
    argmax_mix: np.float32
    penalty: np.float32  # log(repetition_penalty), subtracted from the last pitch's logit
    allow_eos: np.bool_

    @classmethod
    def of(cls, sampling: SamplingConfig) -> "Knobs":
        penalty = min(math.log(sampling.repetition_penalty), MAX_PENALTY)
        return cls(*(np.float32(x) for x in (sampling.temperature, sampling.top_p, sampling.argmax_mix, penalty)),
                   np.bool_(sampling.allow_eos))


def argmax_carrying(scores, payload):
    """`jnp.argmax(scores, -1)` (ties to the lowest index, NaN counting as the largest) and
    `payload` [..., V] at it, from one reduction: on a GPU the payload's lookup joins the argmax's
    kernel instead of launching one of its own after it, once per sampling step."""
    index = jax.lax.broadcasted_iota(jnp.int32, scores.shape, scores.ndim - 1)

    def pick(a, b):  # jax's own argmax rule, with the payload riding along
        (a_value, a_index, a_payload), (b_value, b_index, b_payload) = a, b
        a_wins = (a_value > b_value) | (a_value != a_value)
        a_index_wins = a_wins | ((a_value == b_value) & (a_index < b_index))
        return (jnp.where(a_wins, a_value, b_value), jnp.where(a_index_wins, a_index, b_index),
                jnp.where(a_index_wins, a_payload, b_payload))

    init = (jnp.array(-jnp.inf, scores.dtype), jnp.array(0, jnp.int32), jnp.zeros((), payload.dtype))
    _, best, carried = jax.lax.reduce((scores, index, payload), init, pick, (scores.ndim - 1,))
    return best, carried


def choose_tokens(logits, bias, noise, knobs: Knobs, top_k: int = 0, nucleus: bool = False, mixing: bool = False,
                  payload=None):
    """One sampling decision: logits [B, V], this step's `GrammarTables.bias` rows [B, V] and
    `step_noise` -> ids [B] int32. `top_k`, `nucleus` (whether `knobs.top_p` filters) and
    `mixing` (whether `knobs.argmax_mix` can pick the argmax) are static: a step without them
    has no sort, no second argmax and no branch (on a GPU a traced branch costs a device-to-host
    read of its predicate every step). With `payload` [B, V], returns (ids, payload at ids)."""
    logits = logits.astype(jnp.float32) + bias  # grammar mask and repetition penalty

    scaled = logits / knobs.temperature
    if 0 < top_k < logits.shape[-1]:
        kth = jax.lax.top_k(scaled, top_k)[0][..., -1:]
        scaled = jnp.where(scaled >= kth, scaled, -jnp.inf)

    def keep_nucleus(scaled):  # keep the best tokens until the mass before them reaches top_p
        ordered = jnp.sort(scaled, axis=-1)[..., ::-1]
        probs = jax.nn.softmax(ordered, axis=-1)
        before = jnp.cumsum(probs, axis=-1) - probs
        kept = jnp.maximum((before < knobs.top_p).sum(-1, keepdims=True), 1)
        cutoff = jnp.take_along_axis(ordered, kept - 1, axis=-1)
        return jnp.where(scaled >= cutoff, scaled, -jnp.inf)

    if nucleus:
        scaled = keep_nucleus(scaled)

    gumbel, uniform = noise
    carried = jnp.zeros(logits.shape, jnp.int32) if payload is None else payload  # none: dropped below
    # argmax(scaled + gumbel) is jax.random.categorical(key, scaled)
    token, at_token = argmax_carrying(scaled + gumbel, carried)
    if mixing:
        greedy, at_greedy = argmax_carrying(logits, carried)
        mix = uniform < knobs.argmax_mix
        token, at_token = jnp.where(mix, greedy, token), jnp.where(mix, at_greedy, at_token)
    return token if payload is None else (token, at_token)


def _step(params, gen_config, encoding_config, filters, knobs, bias, state, noise):
    """Feed the current token, choose the next: the loop body of both samplers. `state` is
    (network carry, grammar table index, token); `bias` is `GrammarTables.bias(knobs)`."""
    carry, gstate, token = state
    carry, logits = Generator(gen_config).apply({"params": params}, carry, token, method="step")
    token, gstate = choose_tokens(logits, bias[gstate], noise, knobs, *filters,
                                  payload=jnp.asarray(_tables(encoding_config).next_state)[gstate])
    return (carry, gstate, token), token


class Changes(NamedTuple):
    """What the changes-following loop needs per token id: is it a note token (it reads its
    note's conditioning row), is it a SHIFT, and its SHIFT value in grid steps."""

    is_note: np.ndarray
    is_shift: np.ndarray
    shift: np.ndarray

    @classmethod
    def of(cls, encoding_config: EncodingConfig) -> "Changes":
        vocab = Vocab(encoding_config)
        t = vocab.token_type
        is_shift = t == T_SHIFT
        return cls((t == T_SHIFT) | (t == T_PITCH) | (t == T_DUR), is_shift,
                   np.where(is_shift, vocab.token_value, 0).astype(np.int32))


def fed_rows(step_cond, pos, token, is_note):
    """The conditioning row each song's fed `token` reads: its note's row (`step_cond[b, pos]`,
    the last row past the end), no chord for BOS, EOS and PAD."""
    at = jnp.clip(pos, 0, step_cond.shape[1] - 1)
    rows = step_cond[jnp.arange(step_cond.shape[0]), at]
    return jnp.where(jnp.asarray(is_note)[token][:, None], rows, jnp.asarray(ls.NO_COND, step_cond.dtype))


def _step_changes(params, gen_config, encoding_config, filters, knobs, bias, step_cond, state, noise):
    """`_step` over changes: state (carry, grammar index, token, grid position, done). The fed
    token reads its row of `step_cond`; a SHIFT that would start a note at or past the last
    step becomes EOS, and a finished song emits PAD."""
    carry, gstate, token, pos, done = state
    tables, changes = _tables(encoding_config), Changes.of(encoding_config)
    row = fed_rows(step_cond, pos, token, changes.is_note)
    carry, logits = Generator(gen_config).apply({"params": params}, carry, token, row, method="step")
    chosen, gstate = choose_tokens(logits, bias[gstate], noise, knobs, *filters,
                                   payload=jnp.asarray(tables.next_state)[gstate])
    new_pos = pos + jnp.asarray(changes.shift)[chosen]
    ends = jnp.asarray(changes.is_shift)[chosen] & (new_pos >= step_cond.shape[1])
    out = jnp.where(done, PAD, jnp.where(ends, EOS, chosen)).astype(jnp.int32)
    done = done | (out == EOS)
    return (carry, gstate, out, jnp.where(done, pos, new_pos), done), out


@functools.partial(jax.jit, static_argnames=("gen_config",))
def _warm(params, gen_config, primer, primer_cond=None):
    """Teacher-force primer[:, :-1] (one scan) -> the carry that reads primer[:, -1] next;
    `primer_cond` [num, P, K]: the primer tokens' conditioning rows."""
    model = Generator(gen_config)
    carry = generator_initial_carry(gen_config, primer.shape[0])

    def body(carry, x):
        token, row = x
        return model.apply({"params": params}, carry, token, row, method="step")[0], None

    rows = None if primer_cond is None else jnp.swapaxes(primer_cond[:, :-1], 0, 1)
    return jax.lax.scan(body, carry, (primer[:, :-1].T, rows))[0]


def static_filters(sampling: SamplingConfig) -> tuple[int, bool, bool]:
    """The static part of the settings: (top_k, whether top_p filters, whether argmax_mix mixes)."""
    return sampling.top_k, sampling.top_p < 1.0, sampling.argmax_mix > 0.0


@functools.partial(jax.jit, static_argnames=("gen_config", "encoding_config", "filters", "length"))
def _sample_scan(params, gen_config, encoding_config, filters, knobs, state, rng, length, step_cond=None):
    num, vocab_size = state[2].shape[0], gen_config.vocab_size
    state = _with_zero_carry(gen_config, state)  # made here rather than by eager ops per call
    bias = _tables(encoding_config).bias(knobs)
    if step_cond is None:
        body = functools.partial(_step, params, gen_config, encoding_config, filters, knobs, bias)
    else:
        body = functools.partial(_step_changes, params, gen_config, encoding_config, filters, knobs, bias, step_cond)
    noise = jax.vmap(functools.partial(step_noise, rng, num=num, vocab_size=vocab_size))

    def run(state, steps):  # a chunk of steps: their noise at once, then the recurrence
        return jax.lax.scan(body, state, noise(steps))

    steps = jnp.arange(length)
    chunk = max(1, min(length, NOISE_CHUNK // (num * vocab_size)))
    full = length // chunk * chunk
    state, tokens = jax.lax.scan(run, state, steps[:full].reshape(-1, chunk))
    tokens = tokens.reshape(full, num)
    if full < length:
        tokens = jnp.concatenate([tokens, run(state, steps[full:])[1]])
    return tokens.T


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _step_jit(params, gen_config, encoding_config, filters, knobs, state, rng, t):
    noise = step_noise(rng, t, state[2].shape[0], gen_config.vocab_size)
    bias = _tables(encoding_config).bias(knobs)
    return _step(params, gen_config, encoding_config, filters, knobs, bias, state, noise)


def _with_zero_carry(gen_config, state):
    """`_start`'s state with the zero network carry where it left None (no primer)."""
    if state[0] is not None:
        return state
    return (generator_initial_carry(gen_config, state[2].shape[0]),) + tuple(state[1:])


def _start(params, gen_config, encoding_config, num, primer, step_cond=None):
    """Primer [num, P] (default BOS) and the loop state after it: (carry, grammar table index,
    token), and with `step_cond` [num, S, K] also the primer's last grid position and done. All
    but a primed carry are numpy arrays, and without a primer the carry is None (the zero state,
    which `_sample_scan` makes): made by eager array ops, they cost an H100 about 3.8 ms a call,
    the time of 150 sampling steps."""
    grammar = _grammar(encoding_config)
    if primer is None:
        primer = np.array([BOS], np.int32)
    primer = np.asarray(primer)
    if primer.ndim != 1 or len(primer) == 0 or not np.issubdtype(primer.dtype, np.integer):
        raise ValueError("primer must be a 1-D int token array starting with BOS")
    if (primer < 0).any() or (primer >= gen_config.vocab_size).any():
        raise ValueError("primer has token ids outside the vocabulary")
    if np.isin(primer, (PAD, EOS)).any() or not grammar.is_grammatical(primer):
        raise ValueError("primer must start with BOS, be grammatical and hold no EOS or PAD")
    primer = np.broadcast_to(primer.astype(np.int32), (num, len(primer)))
    pos = ls.note_positions(primer[0], grammar.vocab)
    primer_cond = None
    if step_cond is not None:
        is_note = Changes.of(encoding_config).is_note[primer[0]]
        primer_cond = np.where(is_note[None, :, None], np.asarray(step_cond)[:, np.clip(pos, 0, step_cond.shape[1] - 1)],
                               ls.NO_COND).astype(np.int32)
    carry = _warm(params, gen_config, jnp.asarray(primer), primer_cond) if primer.shape[1] > 1 else None
    gstate = np.full((num,), _tables(encoding_config).index(*grammar.state_after(primer[0, 1:])), np.int32)
    state = (carry, gstate, primer[:, -1].copy())
    if step_cond is not None:
        state += (np.full((num,), int(pos[-1]), np.int32), np.zeros((num,), bool))
    return primer, state


def sample(params, gen_config: GeneratorConfig, encoding_config: EncodingConfig, rng, num: int,
           length: int, sampling: SamplingConfig = SamplingConfig(), primer=None, step_cond=None) -> np.ndarray:
    """`num` sequences: the primer (default `[BOS]`) then `length` sampled tokens, int32
    `[num, len(primer) + length]`. One compiled scan over the steps, compiled once per shapes,
    model and encoding configs and `filters`; the other sampling settings are traced values.

    `step_cond`: the changes to play over, int `[S, COND_SIZE]` (shared) or `[num, S, COND_SIZE]`
    (per song), row s for a note starting at grid step s (`lead_sheets.step_conditioning`). Each
    song's grid position is tracked inside the scan, every fed token reads its note's row, and a
    song ends (EOS, then PAD) at the first note that would start at step S or later, so length
    follows the changes; `length` stays a cap on tokens. Without it, nothing of this runs."""
    if step_cond is not None:
        step_cond = np.asarray(step_cond)
        if step_cond.ndim == 2:
            step_cond = step_cond[None]
        if step_cond.ndim != 3 or step_cond.shape[2] != ls.COND_SIZE or step_cond.shape[0] not in (1, num) \
                or step_cond.shape[1] < 1:
            raise ValueError(f"step_cond must be int [S, {ls.COND_SIZE}] or [num, S, {ls.COND_SIZE}] with S >= 1, "
                             f"got {step_cond.shape}")
        step_cond = np.broadcast_to(step_cond.astype(np.int32), (num,) + step_cond.shape[1:])
    primer, state = _start(params, gen_config, encoding_config, num, primer, step_cond)
    if length <= 0:
        return np.array(primer)
    tokens = _sample_scan(params, gen_config, encoding_config, static_filters(sampling), Knobs.of(sampling),
                          state, rng, int(length), step_cond)
    return np.concatenate([primer, np.asarray(tokens)], axis=1).astype(np.int32)


def sample_python_loop(params, gen_config: GeneratorConfig, encoding_config: EncodingConfig, rng,
                       num: int, length: int, sampling: SamplingConfig = SamplingConfig(),
                       primer=None) -> np.ndarray:
    """`sample`, one jitted step per token from Python: same keys, same algorithm, same output."""
    primer, state = _start(params, gen_config, encoding_config, num, primer)
    state = _with_zero_carry(gen_config, state)
    out, knobs = [], Knobs.of(sampling)
    for t in range(int(length)):
        state, token = _step_jit(params, gen_config, encoding_config, static_filters(sampling), knobs, state, rng, t)
        out.append(token)
    if not out:
        return np.array(primer)
    return np.concatenate([primer, np.stack(out, axis=1)], axis=1).astype(np.int32)
