"""Scores the generator gives pitches by their intervals: from the previous pitch, and from the
sounding chord's root and as chord tones.

The generator's hidden state gives one score per interval; each pitch token gets the score of
its interval, in every key and octave alike. Each score is a bias on a feature of the output,
so maximum likelihood matches the model's rate of that feature (a repeated pitch, a tritone
leap, a chord tone) to the data's: a free LSTM had put 14% of its mass on repeating the last
pitch where jazz solos do it 4% of the time, and 43% on chord tones against their 47%.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ganmusic import lead_sheets as ls

MAX_MELODIC_INTERVAL = 12
MELODIC_SCORES = 2 * MAX_MELODIC_INTERVAL + 3  # -12..12 semitones, one for wider leaps each way
CHORD_SCORES = 13  # the twelve intervals above the chord's root, then one for a chord tone


def token_pitches(config, tokens):
    """MIDI pitch of each token (int ids, or soft one-hots read by their largest entry), -1 for
    tokens that are not pitches; `config.pitch_tokens` is (first PITCH id, count)."""
    start, count = config.pitch_tokens
    tokens = jnp.asarray(tokens)
    ids = tokens if jnp.issubdtype(tokens.dtype, jnp.integer) else jnp.argmax(tokens, axis=-1)
    is_pitch = (ids >= start) & (ids < start + count)
    return jnp.where(is_pitch, ids - start + config.pitch_min, -1).astype(jnp.int32)


def latest_pitches(config, tokens):
    """`[B, T]`: at each position, the latest pitch among the tokens up to it (-1: none yet)."""
    pitch = token_pitches(config, tokens)
    seen = jax.lax.cummax(jnp.where(pitch >= 0, jnp.arange(pitch.shape[1]), -1), axis=1)
    return jnp.where(seen >= 0, jnp.take_along_axis(pitch, jnp.maximum(seen, 0), axis=1), -1)


def pitch_range(config):
    """The MIDI pitch of each PITCH token, in token order."""
    return jnp.arange(config.pitch_min, config.pitch_min + config.pitch_tokens[1])


def _onto_vocab(config, pitch_scores):
    """`[..., count]` scores of the pitch tokens -> `[..., V]` logits, zero on other tokens."""
    start, count = config.pitch_tokens
    pad = [(0, 0)] * (pitch_scores.ndim - 1) + [(start, config.vocab_size - start - count)]
    return jnp.pad(pitch_scores, pad)


def melodic_logits(config, scores, last):
    """`scores` `[..., MELODIC_SCORES]` per interval from the previous pitch `last` (`[...]`, -1
    for none yet) -> logits `[..., V]`; every token before the first pitch gets zero."""
    step = pitch_range(config) - last[..., None]
    bucket = jnp.clip(step, -MAX_MELODIC_INTERVAL - 1, MAX_MELODIC_INTERVAL + 1) + MAX_MELODIC_INTERVAL + 1
    return _onto_vocab(config, jnp.take_along_axis(scores, bucket, axis=-1) * (last >= 0)[..., None])


def chord_logits(config, scores, cond):
    """`scores` `[..., CHORD_SCORES]` per interval above the chord's root, then for a chord tone,
    with `cond` the chord rows (`lead_sheets` layout; None: no chord) -> logits `[..., V]`;
    chordless steps get zero."""
    if cond is None:
        return jnp.zeros(scores.shape[:-1] + (config.vocab_size,), scores.dtype)
    cond = jnp.asarray(cond).astype(jnp.int32)
    root, pitch = cond[..., ls.ROOT], pitch_range(config)
    interval = (pitch - root[..., None]) % 12
    tone = (cond[..., ls.MASK, None] >> (pitch % 12)) & 1
    picked = jnp.take_along_axis(scores[..., :12], interval, axis=-1) + scores[..., 12:] * tone
    return _onto_vocab(config, picked * (root >= 0)[..., None])
