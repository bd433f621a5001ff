"""Scores the generator gives pitches by their intervals: from the previous pitch, and from the
sounding chord's root and as chord tones; by how often their pitch class was heard lately; by
where they lie against the recent pitches' range; by how far they continue a motif heard among
the recent pitches; and, with chords, scores SHIFT and DUR tokens get by the phase in the beat
where they put the note's onset or end.

The generator's hidden state gives one score per interval; each pitch token gets the score of
its interval, in every key and octave alike. Each score is a bias on a feature of the output,
so maximum likelihood matches the model's rate of that feature (a repeated pitch, a tritone
leap, a chord tone) to the data's: a free LSTM had put 14% of its mass on repeating the last
pitch where jazz solos do it 4% of the time, and 43% on chord tones against their 47%; and 72%
on pitch classes among the last 16 pitches where the solos' next pitch is one of them 78% of the
time (they stay in a key), so its melodies wandered through more pitch classes a phrase. Without
the register scores its 64-note stretches spanned 27-28 semitones where the solos span 22.
Without the motif scores it played 12% of its 4-note motifs more than once in 128 notes, where
the held-out solos restate or sequence 30% of theirs: an LSTM alone hardly copies what it played.
`calibration` tilts these scores' biases so that the rates hold when the model plays freely too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ganmusic import lead_sheets as ls

MAX_MELODIC_INTERVAL = 12
MELODIC_SCORES = 2 * MAX_MELODIC_INTERVAL + 3  # -12..12 semitones, one for wider leaps each way
CHORD_SCORES = 13  # the twelve intervals above the chord's root, then one for a chord tone
MEMORY_SCORES = 5  # a pitch class heard 0, 1, 2, 3, 4 or more times among the recent pitches
MAX_REGISTER_STEP = 8
REGISTER_SCORES = 2 * MAX_REGISTER_STEP + 1  # semitones below / above the recent pitches' range (8+), or inside it
MOTIF_CONTEXT = 4  # a motif continued after 1, 2, 3 or 4+ matching intervals
MOTIF_SCORES = MOTIF_CONTEXT + 1  # bucket 0: the pitch continues no motif heard among the recent pitches
ABOVE_ANY_PITCH = 1 << 10  # stands in for a recent pitch not yet heard when taking the lowest


def score_layout(config) -> dict[str, tuple[int, int]]:
    """Score family -> (first index, count) in the pitch head's output, in the order the head
    gives them: intervals from the last pitch, from the chord's root, chord tone, memory,
    register, onset phase, end phase (only those the config has)."""
    sizes = {"melodic": MELODIC_SCORES}
    if config.chords:
        sizes.update(root=12, chord_tone=1)
    if config.pitch_memory:
        sizes["memory"] = MEMORY_SCORES
    if config.pitch_register:
        sizes["register"] = REGISTER_SCORES
    if config.motif_span:
        sizes["motif"] = MOTIF_SCORES
    if config.phase_scores:
        sizes.update(onset_phase=config.steps_per_beat, end_phase=config.steps_per_beat)
    starts = np.cumsum([0, *sizes.values()])
    return {name: (int(start), n) for (name, n), start in zip(sizes.items(), starts)}


def head_size(config) -> int:
    return sum(n for _, n in score_layout(config).values())


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
    return max(config.pitch_memory, register_size(config), config.motif_span, 1)


def register_size(config) -> int:
    """How many recent pitches the register scores take the range of (`register_span`, else the memory's)."""
    return config.register_span or config.pitch_memory


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
    pitches (`[..., memory_size]`, -1 for none; the last `pitch_memory` count) -> logits `[..., V]`."""
    recent = recent[..., -config.pitch_memory :]
    heard = ((recent[..., None] % 12 == jnp.arange(12)) & (recent[..., None] >= 0)).sum(-2)  # [..., 12]
    return _spread(config, jnp.take_along_axis(scores, jnp.minimum(heard, MEMORY_SCORES - 1), axis=-1))


def register_logits(config, scores, recent):
    """`scores` `[..., REGISTER_SCORES]` per number of semitones a pitch lies below (negative) or
    above the range of the `recent` pitches (`[..., memory_size]`, -1 for none; the last
    `register_size` count; 0: inside it)
    -> logits `[..., V]`; zero before the first pitch. Solos keep to a register: without this a
    random walk of intervals widens a melody's range with its length."""
    recent = recent[..., -register_size(config) :]
    heard = recent >= 0
    low = jnp.min(jnp.where(heard, recent, ABOVE_ANY_PITCH), axis=-1, keepdims=True)
    high = jnp.max(recent, axis=-1, keepdims=True)
    pitch = pitch_range(config)
    outside = jnp.where(pitch > high, pitch - high, jnp.where(pitch < low, pitch - low, 0))
    bucket = jnp.clip(outside, -MAX_REGISTER_STEP, MAX_REGISTER_STEP) + MAX_REGISTER_STEP
    return _onto_vocab(config, jnp.take_along_axis(scores, bucket, axis=-1) * heard.any(-1, keepdims=True))


def motif_buckets(recent, candidates, xp=jnp):
    """For each candidate next pitch (`[..., C]`, or `[C]` for every row), how many of the latest intervals among the
    `recent` pitches (`[..., S]`, oldest first, -1 for none) match the intervals before some
    earlier interval that would lead from the latest pitch to it (up to `MOTIF_CONTEXT`; 0: none
    does) -> int `[..., C]`. Intervals, not pitches: a motif played again a step higher is
    continued too. `xp`: jax.numpy in the model, numpy where calibration counts notes."""
    steps = recent[..., 1:] - recent[..., :-1]  # [..., S - 1]; step j leads from recent[j]
    heard = recent[..., :-1] >= 0  # pitches start at some slot and fill every later one
    last = steps.shape[-1] - 1
    matched = xp.zeros(steps.shape, xp.int32)
    run = xp.ones(steps.shape, bool)
    for i in range(min(MOTIF_CONTEXT, last)):  # step j - 1 - i against the latest's i-th predecessor
        shift = [(0, 0)] * (steps.ndim - 1) + [(i + 1, 0)]
        before, before_heard = xp.pad(steps, shift)[..., : last + 1], xp.pad(heard, shift)[..., : last + 1]
        run = run & before_heard & heard[..., last - i, None] & (before == steps[..., last - i, None])
        matched = matched + run
    proposed = recent[..., -1:] + steps  # the pitch that step j would lead to from the latest pitch
    hit = (proposed[..., None, :] == candidates[..., :, None]) & heard[..., None, :]
    return xp.max(xp.where(hit, matched[..., None, :], 0), axis=-1)


def motif_logits(config, scores, recent):
    """`scores` `[..., MOTIF_SCORES]` per `motif_buckets` of each pitch against the last
    `motif_span` of the `recent` pitches -> logits `[..., V]`; zero before the first pitch. Solos
    restate and sequence their motifs (30% of the 4-note motifs in 128 notes of the held-out
    solos are played twice); an LSTM alone hardly copies (12%)."""
    recent = recent[..., -config.motif_span :]
    picked = jnp.take_along_axis(scores, motif_buckets(recent, pitch_range(config)), axis=-1)
    return _onto_vocab(config, picked * (recent[..., -1:] >= 0))


def phase_logits(config, scores, cond):
    """`scores` `[..., 2 * steps_per_beat]` (onset phases, then end phases) -> logits `[..., V]`:
    each SHIFT token gets the score of the phase in the beat where it puts the next note's onset,
    each DUR token that of the phase where
    it ends this note, from the bar position in `cond` (the current note's row; zero without a
    bar or chords). Lead sheets sit on a grid of sixteenths and triplets; the plain head put 4x
    their share of onsets a twelfth of a beat away from it."""
    spb, fine = config.steps_per_beat, config.phase_scores * config.steps_per_beat
    if cond is None:
        return jnp.zeros(scores.shape[:-1] + (config.vocab_size,), scores.dtype)
    cond = jnp.asarray(cond).astype(jnp.int32)
    shift_start, pitch_start = 3, config.pitch_tokens[0]  # PAD, BOS, EOS, then the SHIFTs
    dur_start = pitch_start + config.pitch_tokens[1]
    shift = jnp.arange(pitch_start - shift_start)
    shift = jnp.where(shift <= fine, shift, 0)  # exact shifts 0..fine steps, then whole beats
    dur = jnp.arange(config.vocab_size - dur_start)
    dur = jnp.where(dur < fine, dur + 1, 0)  # exact durations 1..fine steps, then whole beats
    at = cond[..., ls.BAR_STEP, None]
    picked = jnp.concatenate([jnp.take_along_axis(scores[..., :spb], (at + shift) % spb, axis=-1),
                              jnp.zeros(scores.shape[:-1] + (config.pitch_tokens[1],), scores.dtype),
                              jnp.take_along_axis(scores[..., spb:], (at + dur) % spb, axis=-1)], axis=-1)
    picked = picked * (cond[..., ls.BAR_STEPS, None] > 0)
    return jnp.pad(picked, [(0, 0)] * (picked.ndim - 1) + [(shift_start, 0)])
