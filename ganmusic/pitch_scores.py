"""Scores the generator gives pitches by their intervals: from the previous pitch, and from the
sounding chord's root and as chord tones; and by how often their pitch class was heard lately.

The generator's hidden state gives one score per interval; each pitch token gets the score of
its interval, in every key and octave alike. Each score is a bias on a feature of the output,
so maximum likelihood matches the model's rate of that feature (a repeated pitch, a tritone
leap, a chord tone) to the data's: a free LSTM had put 14% of its mass on repeating the last
pitch where jazz solos do it 4% of the time, and 43% on chord tones against their 47%; and 72%
on pitch classes among the last 16 pitches where the solos' next pitch is one of them 78% of the
time (they stay in a key), so its melodies wandered through more pitch classes a phrase.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ganmusic import lead_sheets as ls

MAX_MELODIC_INTERVAL = 12
MELODIC_SCORES = 2 * MAX_MELODIC_INTERVAL + 3  # -12..12 semitones, one for wider leaps each way
CHORD_SCORES = 13  # the twelve intervals above the chord's root, then one for a chord tone
MEMORY_SCORES = 5  # a pitch class heard 0, 1, 2, 3, 4 or more times among the recent pitches


def token_pitches(config, tokens):
    """MIDI pitch of each token (int ids, or soft one-hots read by their largest entry), -1 for
    tokens that are not pitches; `config.pitch_tokens` is (first PITCH id, count)."""
    start, count = config.pitch_tokens
    tokens = jnp.asarray(tokens)
    ids = tokens if jnp.issubdtype(tokens.dtype, jnp.integer) else jnp.argmax(tokens, axis=-1)
    is_pitch = (ids >= start) & (ids < start + count)
    return jnp.where(is_pitch, ids - start + config.pitch_min, -1).astype(jnp.int32)


def memory_size(config) -> int:
    """How many recent pitches the generator keeps (the carry's last entry): at least the last."""
    return max(config.pitch_memory, 1)


def recent_pitches(config, tokens):
    """`[B, T, memory_size]`: at each position the latest pitches among the tokens up to it,
    oldest first, -1 where there were fewer; `[..., -1]` is the latest pitch."""
    pitch = token_pitches(config, tokens)
    (batch, length), size = pitch.shape, memory_size(config)
    count = jnp.cumsum(pitch >= 0, axis=1)  # pitches up to each position
    slot = jnp.where(pitch >= 0, count - 1, length)  # the k-th pitch to slot k, other tokens to a spare one
    in_order = jnp.full((batch, length + 1), -1, jnp.int32).at[jnp.arange(batch)[:, None], slot].set(pitch)
    index = count[:, :, None] - size + jnp.arange(size)
    found = jnp.take_along_axis(in_order, jnp.maximum(index, 0).reshape(batch, -1), axis=1)
    return jnp.where(index >= 0, found.reshape(index.shape), -1)


def remember(config, recent, token):
    """The carry's recent pitches `[B, memory_size]` after reading `token` `[B]` (or soft)."""
    pitch = token_pitches(config, token)[:, None]
    return jnp.where(pitch >= 0, jnp.concatenate([recent[:, 1:], pitch], axis=1), recent)


def pitch_range(config):
    """The MIDI pitch of each PITCH token, in token order."""
    return jnp.arange(config.pitch_min, config.pitch_min + config.pitch_tokens[1])


def _onto_vocab(config, pitch_scores):
    """`[..., count]` scores of the pitch tokens -> `[..., V]` logits, zero on other tokens."""
    start, count = config.pitch_tokens
    pad = [(0, 0)] * (pitch_scores.ndim - 1) + [(start, config.vocab_size - start - count)]
    return jnp.pad(pitch_scores, pad)


def _spread(config, class_scores):
    """`[..., 12]` scores per pitch class -> `[..., V]` logits, each pitch token its class's.
    (Picking 12 scores, then spreading them by a constant index, keeps the gradient small: a pick
    per pitch token took 18 ms against 4.6 ms for the memory scores' gradient at 32 x 128 on a CPU.)"""
    return _onto_vocab(config, jnp.take(class_scores, pitch_range(config) % 12, axis=-1))


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
    root, classes = cond[..., ls.ROOT], jnp.arange(12)
    tone = (cond[..., ls.MASK, None] >> classes) & 1
    picked = jnp.take_along_axis(scores[..., :12], (classes - root[..., None]) % 12, axis=-1) + scores[..., 12:] * tone
    return _spread(config, picked * (root >= 0)[..., None])


def memory_logits(config, scores, recent):
    """`scores` `[..., MEMORY_SCORES]` per number of times a pitch class is among the `recent`
    pitches (`[..., memory_size]`, -1 for none) -> logits `[..., V]`."""
    heard = ((recent[..., None] % 12 == jnp.arange(12)) & (recent[..., None] >= 0)).sum(-2)  # [..., 12]
    return _spread(config, jnp.take_along_axis(scores, jnp.minimum(heard, MEMORY_SCORES - 1), axis=-1))
