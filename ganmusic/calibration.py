"""Free-running calibration: the generator's score and timing biases tilted until its own samples
show the training solos' rates of every feature it scores.

Maximum likelihood matches the model's rate of each scored feature (an interval from the last
pitch or the chord's root, a chord tone, a pitch class heard lately, a step out of the recent
register, a beat phase, a note's time since the last onset and its length) to the data's one
step at a time, with the real melody so far as context.
Played freely the context is the model's own, and the rates drift: over the test changes the
chord-conditioned 2x256 generator played 46.9% chord tones where the solos play 51%, and 16%
rising semitones where they play 10%. Calibration samples the generator over training-split changes, counts each family's
rates among the sampled notes and among the training solos' notes, adds `eta * log(data rate /
sampled rate)` to each bucket's bias, and repeats; the result is the mean of the later
half of the rounds' biases. It is the autoregressive stand-in for the
model closest in KL to the generator that has the data's rates (Khalifa et al., "A distributional
approach to controlled text generation", 2021): the families are the model's own score features
and its SHIFT and DUR tokens, so only biases change and the network is as trained.

The result is `RUN/calibration.json` (JSON only): the biases it was computed for, the calibrated
ones, per family the gap to the data before and after, and the teacher-forced validation NLL
before and after. `runs.restore_params` applies it when the restored weights have the biases
it was computed for.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ganmusic import data, lead_sheets as ls
from ganmusic.encoding import T_DUR, T_PITCH, T_SHIFT, Vocab
from ganmusic.errors import GanmusicError
from ganmusic.ui import maybe_progress

# JAX (pitch_scores, runs, sampling) is imported where it is used: the CLI imports this module
# for its defaults, and `ganmusic --help` should not wait for JAX.

SMOOTHING = 0.5  # added to every bucket's count: a bucket no sample reached keeps a finite log ratio


SCORE_HEAD, TOKEN_HEAD = "pitch_head", "head"  # the score families' layer; the plain output layer
# Families that score the same choice: a SHIFT by its value and by the beat phase it reaches, a DUR
# by its value and by where it ends the note. Corrected in full by both, such a choice would be
# corrected twice each round (the rounds diverged so); each takes half a step.
SHARED_CHOICES = ({"shift", "onset_phase"}, {"duration", "end_phase"})


def families(config, vocab: Vocab) -> dict[str, tuple[str, int, int]]:
    """Family -> (layer, first bias index, buckets): the pitch head's score families, then the
    plain head's SHIFT and DUR tokens (a note's time since the last onset and its length)."""
    from ganmusic import pitch_scores as ps

    out = {name: (SCORE_HEAD, start, n) for name, (start, n) in ps.score_layout(config).items()}
    out["shift"] = (TOKEN_HEAD, vocab.shift_start, len(vocab.shift_values))
    out["duration"] = (TOKEN_HEAD, vocab.dur_start, len(vocab.dur_values))
    return out


def step_sizes(fams: dict, eta: float) -> dict[str, float]:
    """Per family the share of its log-ratio added each round (see `SHARED_CHOICES`)."""
    sizes = dict.fromkeys(fams, eta)
    for shared in SHARED_CHOICES:
        present = shared & fams.keys()
        sizes.update(dict.fromkeys(present, eta / len(present)))
    return sizes


def note_events(tokens, cond, vocab: Vocab, config) -> dict[str, np.ndarray]:
    """Per family, the bucket of every event of one sequence the model scores: each note's
    pitch (by interval, chord, memory, register, motif), its onset and end phase."""
    from ganmusic import pitch_scores as ps

    tokens = np.asarray(tokens, np.int64)
    kind = vocab.token_type[tokens]
    at = np.flatnonzero(kind == T_PITCH)
    pitch = vocab.token_value[tokens[at]].astype(np.int64)
    rows = np.asarray(cond, np.int64)[at] if cond is not None else np.tile(ls.NO_COND.astype(np.int64), (len(at), 1))
    after = np.minimum(at + 1, len(tokens) - 1)
    has_dur = (at + 1 < len(tokens)) & (kind[after] == T_DUR)
    limit = ps.MAX_MELODIC_INTERVAL + 1
    out = {"melodic": np.clip(np.diff(pitch), -limit, limit) + limit}
    chord = rows[:, ls.ROOT] >= 0
    out["root"] = (pitch - rows[:, ls.ROOT])[chord] % 12
    out["chord_tone"] = (rows[chord, ls.MASK] >> (pitch[chord] % 12)) & 1
    seen = np.concatenate([np.zeros((1, 12), np.int64), np.cumsum(pitch[:, None] % 12 == np.arange(12), axis=0)])
    j, pc = np.arange(len(pitch)), pitch % 12
    out["memory"] = np.minimum(seen[j, pc] - seen[np.maximum(j - config.pitch_memory, 0), pc], ps.MEMORY_SCORES - 1)

    def before(span):  # per note after the first, the `span` pitches before it (-1: none)
        return np.lib.stride_tricks.sliding_window_view(np.concatenate([np.full(span - 1, -1), pitch]), span)[:-1]

    out["register"] = out["motif"] = np.zeros(0, np.int64)
    if len(pitch) > 1:
        window, p = before(ps.register_size(config)), pitch[1:]
        low = np.where(window >= 0, window, ps.ABOVE_ANY_PITCH).min(axis=1)
        high = window.max(axis=1)
        outside = np.where(p > high, p - high, np.where(p < low, p - low, 0))
        out["register"] = np.clip(outside, -ps.MAX_REGISTER_STEP, ps.MAX_REGISTER_STEP) + ps.MAX_REGISTER_STEP
        if config.motif_span:
            out["motif"] = ps.motif_buckets(before(config.motif_span), p[:, None], np).astype(np.int64)[:, 0]
    spb, bar = config.steps_per_beat, rows[:, ls.BAR_STEPS] > 0
    out["onset_phase"] = rows[bar, ls.BAR_STEP] % spb
    ends = bar & has_dur
    out["end_phase"] = (rows[ends, ls.BAR_STEP] + vocab.token_value[tokens[after[ends]]]) % spb
    before = np.maximum(at - 1, 0)
    out["shift"] = tokens[before[kind[before] == T_SHIFT]] - vocab.shift_start
    out["duration"] = tokens[after[has_dur]] - vocab.dur_start
    return out


def rates(sequences, conds, vocab: Vocab, config, fams: dict) -> dict[str, np.ndarray]:
    """Per family, the smoothed share of each bucket among all the sequences' events."""
    counts = {name: np.zeros(max(n, 2)) for name, (_, _, n) in fams.items()}  # chord_tone: (no, yes)
    for tokens, cond in zip(sequences, conds):
        for name, buckets in note_events(tokens, cond, vocab, config).items():
            if name in counts:
                counts[name] += np.bincount(buckets, minlength=len(counts[name]))[: len(counts[name])]
    return {name: (c + SMOOTHING) / (c + SMOOTHING).sum() for name, c in counts.items()}


def training_changes(corpus: data.Corpus, num: int, steps: int, seed: int) -> list[np.ndarray]:
    """`num` stretches of `steps` grid steps of the training solos' changes, each from a bar line
    in the first half of a solo (a song that starts off the beat is not what the model learnt)."""
    from ganmusic.runs import RunError

    files = [i for i in corpus.indices("train", positive=True) if (corpus.conditioning(i)[:, ls.ROOT] >= 0).any()]
    if not files:
        raise RunError(f"{corpus.root}: no training solo has chords to calibrate a chord-conditioned generator over")
    rng, out = np.random.default_rng(seed), []
    for k in range(num):
        i = files[k % len(files)]
        tokens = corpus.sequence(i)
        length = int(ls.note_positions(tokens, corpus.vocab)[-1]) + 1
        rows = ls.steps_from_tokens(tokens, corpus.conditioning(i), corpus.vocab, length + steps)
        bars = np.flatnonzero((rows[: max(length // 2, 1), ls.BAR_STEP] == 0) & (rows[: max(length // 2, 1), ls.BAR_STEPS] > 0))
        start = int(rng.choice(bars)) if len(bars) else 0
        out.append(rows[start : start + steps])
    return out


def calibrate(run_dir: str | Path, checkpoint: str = "best", rounds: int = 12, songs: int = 256, beats: int = 96,
              eta: float = 0.7, seed: int = 0, corpus: data.Corpus | None = None, progress: bool = True) -> dict:
    """Calibrate a run's generator (see the module doc) and write RUN/calibration.json; returns
    its content. Each round samples `songs` songs of `beats` beats (over training-split changes
    for a chord-conditioned generator)."""
    import jax

    from ganmusic import mle, sampling, windows
    from ganmusic.models import Generator
    from ganmusic.runs import CALIBRATION, RunError, restore_params, with_biases

    if rounds < 1 or songs < 1 or beats < 1 or not 0 < eta <= 1:
        raise GanmusicError(f"calibration needs rounds, songs and beats >= 1 and eta in (0, 1], got {rounds}, "
                            f"{songs}, {beats}, {eta}")
    run_dir = Path(run_dir)
    config, params = restore_params(run_dir, checkpoint, calibrated=False)
    gen, vocab = config.generator, Vocab(config.encoding)
    if not gen.pitch_tokens:
        raise RunError(f"{run_dir}: its generator has no score head to calibrate (trained before ganmusic scored "
                       "pitches by interval); train it again")
    corpus = corpus or data.load_corpus(config.data, config.encoding, positive=config.positive, progress=progress,
                                        allow_outside=config.allow_outside)
    fams = families(gen, vocab)
    sizes = step_sizes(fams, eta)
    train = corpus.indices("train", positive=True)
    target = rates([corpus.sequence(i) for i in train], [corpus.conditioning(i) for i in train], vocab, gen, fams)
    steps = beats * config.encoding.steps_per_beat
    length = 3 * 4 * beats + 3  # at most 4 notes a beat; with changes a song ends where they do
    base = {layer: np.asarray(params[layer]["bias"], np.float64) for layer in {layer for layer, _, _ in fams.values()}}
    bias = {layer: b.copy() for layer, b in base.items()}

    def sampled_rates(r: int) -> dict:
        changes = training_changes(corpus, songs, steps, seed * 1000 + r) if gen.chords else None
        tokens = sampling.sample(with_biases(params, bias), gen, config.encoding,
                                 jax.random.PRNGKey(seed * 1000 + r), songs, length,
                                 step_cond=np.stack(changes) if changes else None)
        conds = [rows[np.clip(ls.note_positions(t, vocab), 0, steps - 1)] for t, rows in zip(tokens, changes)] \
            if changes else [None] * songs
        return rates(tokens, conds, vocab, gen, fams)

    def gaps(now: dict) -> dict:  # total variation distance per family
        return {name: float(np.abs(now[name] - target[name]).sum() / 2) for name in fams}

    # A round's rates are noisy (a song keeps its pace, so 256 songs are few draws: one calibrated
    # model's timing gap measured 0.02-0.06 over four seeds) and feed back on the context the model
    # plays in, so each step overshoots or chases noise. The result is the mean of the biases of
    # the later half of the rounds (Polyak averaging), measured once more in the last round.
    history, later = [], []
    with maybe_progress(progress, "calibrating", rounds + 1) as advance:
        for r in range(rounds + 1):
            now = sampled_rates(r)
            history.append(gaps(now))
            advance(status=f"round {r}: mean gap {np.mean(list(history[-1].values())):.3f}")
            if r == rounds:
                break
            for name, (layer, start, n) in fams.items():
                step = np.log(target[name]) - np.log(now[name])
                if name == "chord_tone":  # one score: the log-odds of a chord tone
                    bias[layer][start] += sizes[name] * (step[1] - step[0])
                else:  # a softmax over the buckets: only differences matter
                    bias[layer][start : start + n] += sizes[name] * (step - step.mean())
            if r >= rounds // 2:
                later.append({layer: b.copy() for layer, b in bias.items()})
            if r == rounds - 1:
                bias = {layer: np.mean([b[layer] for b in later], axis=0) for layer in bias}
    val = windows.eval_windows(corpus, corpus.indices("val", positive=True), config.window)
    eval_nll = mle.make_eval_nll(Generator(gen))

    def val_nll(b):  # teacher-forced: what the tilt costs the model on real solos
        tilted = with_biases(params, b)
        return mle.validation_nll(eval_nll, tilted, val, config.batch_size, bool(gen.chords)) if len(val.tokens) else None

    result = {"checkpoint": checkpoint, "rounds": rounds, "songs": songs, "beats": beats, "eta": eta, "seed": seed,
              "gap_before": history[0], "gap_after": history[-1], "val_nll_before": val_nll(base), "val_nll_after": val_nll(bias),
              "base": {k: b.tolist() for k, b in base.items()}, "calibrated": {k: b.tolist() for k, b in bias.items()}}
    path = run_dir / CALIBRATION
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(result))
    os.replace(partial, path)  # never half-written
    return result
