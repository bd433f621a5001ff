"""Sampling token sequences from a `Generator`, grammatical at every step.

`sample` runs the whole batch in one compiled `lax.scan` over the steps; `sample_python_loop`
calls the same per-step function, jitted, from a Python loop (the benchmark's reference). At
each step the logits go: grammar mask -> repetition penalty -> temperature -> top-k -> top-p ->
`jax.random.categorical`, or, with probability `argmax_mix` per sequence and step, the argmax
of the masked, penalized logits. Both functions use the same per-step keys, so for one `rng`
they return the same samples.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ganmusic.encoding import BOS, EOS, PAD, EncodingConfig, Grammar, Vocab
from ganmusic.models import Generator, GeneratorConfig, generator_initial_carry

# A penalty this large already makes a token impossible next to legal rivals, but stays finite
# so a penalized token that is the only legal one can still be chosen (never an illegal one).
MAX_PENALTY = 1e9


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 1.0
    top_k: int = 0  # keep the k most likely legal tokens; 0 = off
    top_p: float = 1.0  # nucleus: the smallest set of legal tokens holding this much mass
    argmax_mix: float = 0.0  # per step and sequence, the chance of taking the argmax instead
    repetition_penalty: float = 1.0  # divides the probability of repeating the last pitch
    allow_eos: bool = False  # False: EOS is masked, so samples run their full length

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError("temperature must be > 0")
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0 (0 = off)")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError("top_p must be in (0, 1]")
        if not 0.0 <= self.argmax_mix <= 1.0:
            raise ValueError("argmax_mix must be in [0, 1]")
        if not self.repetition_penalty > 0:
            raise ValueError("repetition_penalty must be > 0 (1 = off)")


@functools.lru_cache(maxsize=16)
def _grammar(encoding_config: EncodingConfig) -> Grammar:
    return Grammar(Vocab(encoding_config))


def choose_tokens(logits, gstate, key, grammar: Grammar, sampling: SamplingConfig):
    """One sampling decision: logits [B, V] and grammar state -> token ids [B] (int32)."""
    logits = logits.astype(jnp.float32)
    allowed = grammar.mask(gstate, xp=jnp)
    if not sampling.allow_eos:
        allowed = allowed.at[..., EOS].set(False)
        # Only EOS was legal (never, after BOS or DUR, but keep a legal fallback): pad.
        allowed = allowed.at[..., PAD].set(allowed[..., PAD] | ~allowed.any(-1))
    logits = jnp.where(allowed, logits, -jnp.inf)

    if sampling.repetition_penalty != 1.0:
        vocab = grammar.vocab
        pitch = gstate[1]
        last = jnp.where(pitch >= 0, vocab.pitch_start + pitch - vocab.config.pitch_min, -1)
        hit = jnp.arange(vocab.size)[None, :] == last[:, None]
        penalty = min(math.log(sampling.repetition_penalty), MAX_PENALTY)
        logits = jnp.where(hit & allowed, logits - penalty, logits)
    greedy = jnp.argmax(logits, axis=-1)

    scaled = logits / sampling.temperature
    if sampling.top_k > 0 and sampling.top_k < scaled.shape[-1]:
        kth = jax.lax.top_k(scaled, sampling.top_k)[0][..., -1:]
        scaled = jnp.where(scaled >= kth, scaled, -jnp.inf)
    if sampling.top_p < 1.0:
        ordered = jnp.sort(scaled, axis=-1)[..., ::-1]
        probs = jax.nn.softmax(ordered, axis=-1)
        before = jnp.cumsum(probs, axis=-1) - probs  # mass of the better tokens
        kept = jnp.maximum((before < sampling.top_p).sum(-1, keepdims=True), 1)
        cutoff = jnp.take_along_axis(ordered, kept - 1, axis=-1)
        scaled = jnp.where(scaled >= cutoff, scaled, -jnp.inf)

    key_sample, key_mix = jax.random.split(key)
    sampled = jax.random.categorical(key_sample, scaled, axis=-1)
    if sampling.argmax_mix > 0.0:
        take_greedy = jax.random.uniform(key_mix, greedy.shape) < sampling.argmax_mix
        sampled = jnp.where(take_greedy, greedy, sampled)
    return sampled.astype(jnp.int32)


def _step(params, gen_config, encoding_config, sampling, state, key):
    """Feed the current token, choose the next: the loop body of both samplers."""
    carry, gstate, token = state
    carry, logits = Generator(gen_config).apply({"params": params}, carry, token, method="step")
    grammar = _grammar(encoding_config)
    token = choose_tokens(logits, gstate, key, grammar, sampling)
    return (carry, grammar.step(gstate, token, xp=jnp), token), token


@functools.partial(jax.jit, static_argnames=("gen_config",))
def _warm(params, gen_config, primer):
    """Teacher-force primer[:, :-1] (one scan) -> the carry that reads primer[:, -1] next."""
    model = Generator(gen_config)
    carry = generator_initial_carry(gen_config, primer.shape[0])

    def body(carry, token):
        return model.apply({"params": params}, carry, token, method="step")[0], None

    return jax.lax.scan(body, carry, primer[:, :-1].T)[0]


@functools.partial(jax.jit, static_argnames=("gen_config", "encoding_config", "sampling", "length"))
def _sample_scan(params, gen_config, encoding_config, sampling, state, rng, length):
    body = functools.partial(_step, params, gen_config, encoding_config, sampling)
    _, tokens = jax.lax.scan(body, state, jax.random.split(rng, length))
    return tokens.T


_step_jit = jax.jit(_step, static_argnums=(1, 2, 3))


def _start(params, gen_config, encoding_config, num, primer):
    """Primer [num, P] (default BOS) and the loop state after it: (carry, grammar, token)."""
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
    if primer.shape[1] > 1:
        carry = _warm(params, gen_config, jnp.asarray(primer))
    else:
        carry = generator_initial_carry(gen_config, num)
    prev, pitch = grammar.state_after(primer[0, 1:])
    gstate = (jnp.full((num,), prev, jnp.int32), jnp.full((num,), pitch, jnp.int32))
    return primer, (carry, gstate, jnp.asarray(primer[:, -1]))


def sample(params, gen_config: GeneratorConfig, encoding_config: EncodingConfig, rng, num: int,
           length: int, sampling: SamplingConfig = SamplingConfig(), primer=None) -> np.ndarray:
    """`num` sequences: the primer (default `[BOS]`) then `length` sampled tokens, int32
    `[num, len(primer) + length]`. One compiled scan over the steps; compiled once per shapes
    and configs."""
    primer, state = _start(params, gen_config, encoding_config, num, primer)
    if length <= 0:
        return np.array(primer)
    tokens = _sample_scan(params, gen_config, encoding_config, sampling, state, rng, int(length))
    return np.concatenate([primer, np.asarray(tokens)], axis=1).astype(np.int32)


def sample_python_loop(params, gen_config: GeneratorConfig, encoding_config: EncodingConfig, rng,
                       num: int, length: int, sampling: SamplingConfig = SamplingConfig(),
                       primer=None) -> np.ndarray:
    """`sample`, one jitted step per token from Python: same keys, same algorithm, same output."""
    primer, state = _start(params, gen_config, encoding_config, num, primer)
    out = []
    for key in jax.random.split(rng, max(int(length), 0)):
        state, token = _step_jit(params, gen_config, encoding_config, sampling, state, key)
        out.append(token)
    if not out:
        return np.array(primer)
    return np.concatenate([primer, np.stack(out, axis=1)], axis=1).astype(np.int32)
