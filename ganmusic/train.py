"""The training loop: the MLE phase, then the adversarial phase, checkpointed and resumable.

Batch `k` is a pure function of (seed, k) and the RNG key is part of the saved state, so a
resumed run continues exactly where it stopped. Run folders are `runs.py`'s; the likelihood
loss and its step are `mle.py`'s; the adversarial step is `gan.py`'s.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from ganmusic import checkpoints, classify, configs, data, plots, tboard, windows
from ganmusic import lead_sheets as ls
from ganmusic.encoding import Grammar, Vocab
from ganmusic.errors import TrainingDiverged
from ganmusic.gan import AdvState, init_adv_state, make_adv_step, rollout_length
from ganmusic.mle import init_state, make_eval_nll, make_mle_step, make_optimizer, unigram_nll, validation_nll
from ganmusic.models import Generator, StyleClassifier
from ganmusic.runs import MetricsLog, RunConfig, RunError, check_vocab, load_run_config, restore_params, resumed
from ganmusic.ui import Estimate, console, maybe_progress


@dataclass
class StopFlag:
    """Set by SIGINT/SIGTERM: the loop saves a checkpoint and returns cleanly, saying which
    signal stopped it (`summary["stopped_by"]`), so a caller never takes the run as finished."""

    raised: bool = False
    signum: int | None = None

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        self.raised = True
        self.signum = signum

    def __exit__(self, *exc):
        for s, handler in self._old.items():
            signal.signal(s, handler)


class Parallel:
    """Data parallelism: the state replicated on local devices, each batch split on a leading
    device axis, one `pmap`ped step (with one device it is the same code path). Under
    `jax.distributed`, each process takes its slice of the global batch first and the `pmap`
    spans every process's devices, so `lax.pmean` averages over all of them: the same global
    batch gives the same update on one process or several."""

    axis = "devices"

    def __init__(self, n_devices: int = 0):
        local = jax.local_devices()
        if n_devices > len(local):
            raise RunError(f"{n_devices} devices asked for: only {len(local)} local device(s)")
        self.devices = local[: n_devices or len(local)]
        self.n = len(self.devices)
        # Each process's first n devices, process by process: device k of process p holds
        # rows [(p * n + k) * B / (n * P), ...) of the global batch.
        self.all_devices = [d for p in range(jax.process_count()) for d in jax.local_devices(process_index=p)[: self.n]]

    def check_batch(self, batch_size: int) -> None:
        parts = self.n * jax.process_count()
        if batch_size % parts:
            raise RunError(f"batch size {batch_size} must be divisible by the {parts} devices")

    def describe(self, batch_size: int) -> str:
        """E.g. `8 cpu devices (cpu), batch 64: 8 per device`."""
        first = self.devices[0]
        hosts = f" on each of {jax.process_count()} processes" if jax.process_count() > 1 else ""
        per_device = batch_size // (self.n * jax.process_count())
        return (f"{self.n} {first.platform} device{'s' if self.n > 1 else ''} ({first.device_kind}){hosts}, "
                f"batch {batch_size}: {per_device} per device")

    def replicate(self, tree):
        """One copy per device, stacked on a leading axis and laid out one slice per device."""
        sharding = jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(self.devices), (self.axis,)),
                                              jax.sharding.PartitionSpec(self.axis))
        stacked = jax.tree.map(lambda x: np.broadcast_to(np.asarray(x), (self.n, *np.shape(x))), tree)
        return jax.device_put(stacked, sharding)

    def unreplicate(self, tree):
        """The first device's copy, read from its shard (indexing `x[0]` would compile a slice
        for every leaf shape)."""
        return jax.tree.map(lambda x: np.asarray(x.addressable_shards[0].data)[0], tree)

    def shard(self, batch: dict) -> dict:
        def split(x):
            x = np.asarray(x)
            per_process = len(x) // jax.process_count()
            x = x[jax.process_index() * per_process : (jax.process_index() + 1) * per_process]
            return x.reshape(self.n, len(x) // self.n, *x.shape[1:])

        return {k: split(v) for k, v in batch.items()}

    def pmap(self, step_fn):
        return jax.pmap(step_fn, axis_name=self.axis, devices=self.all_devices, donate_argnums=0)


@dataclass
class Discriminator:
    """The adversarial phase's critic: a pretrained classifier's model and weights."""

    model: StyleClassifier
    params: dict
    window: int


def load_discriminator(config: RunConfig) -> Discriminator:
    """The critic starts from the run's classifier: a chord-aware one (trained with chords) for
    a chord-conditioned generator, so the critic judges melodies over their changes."""
    clf = classify.Classifier.load(config.adv.classifier)
    if clf.encoding != config.encoding:
        raise RunError(f"classifier {config.adv.classifier}: its encoding differs from this run's "
                       "(train both with the same steps per beat and melody/all-notes setting)")
    if config.generator.chords and not clf.model_config.chords:
        raise RunError(f"classifier {config.adv.classifier} does not read chords and this run's generator does: "
                       "train a chord-aware classifier (train-classifier with chords) for it, or train the "
                       "generator without chords")
    return Discriminator(StyleClassifier(clf.model_config), clf.params, clf.window)


def mle_optimizer(config: RunConfig):
    return make_optimizer(config.optimizer, config.lr, config.clip, config.weight_decay)


def adv_optimizers(config: RunConfig):
    """The generator's and the discriminator's optimizers in the adversarial phase."""
    return make_optimizer("adam", config.adv.lr, config.clip), make_optimizer("adam", config.adv.d_lr, config.clip)


class Batches:
    """Global batch `k` of either phase, a pure function of (seed, k)."""

    def __init__(self, corpus: data.Corpus, config: RunConfig, disc_window: int | None, disc_chords: bool = False):
        kw = dict(seed=config.seed, transpose=config.transpose)
        self.config, self.vocab = config, corpus.vocab
        self.mle = windows.WindowSampler(corpus, "train", config.window, config.batch_size, positive=True, **kw)
        # Chords in the adversarial phase: each generated example plays over the changes of a real
        # positive training stretch twice as long as its tokens, as rows per grid step (notes of
        # 2 beats on average at most; later steps hold the last row).
        self.chords = bool(disc_window) and (bool(config.generator.chords) or disc_chords)
        if disc_window:
            self.real = windows.WindowSampler(corpus, "train", disc_window, config.batch_size, positive=True, **kw)
            self.other = windows.WindowSampler(corpus, "train", disc_window, config.batch_size, positive=False, **kw)
        if self.chords:
            tokens = rollout_length(disc_window, config.adv.windows)
            self.change_steps = (tokens // 3 + 1) * 2 * config.encoding.steps_per_beat
            self.changes = windows.WindowSampler(corpus, "train", 2 * tokens, config.batch_size, positive=True, **kw)

    def __call__(self, k: int) -> dict:
        mle = self.mle.batch(k)
        batch = {"mle_tokens": mle.tokens, "mle_mask": mle.mask}
        if self.config.generator.chords:
            batch["mle_cond"] = mle.cond
        if k > self.config.mle_steps:
            # Different streams for D than for the NLL term: offset the step index.
            real, other = self.real.batch(k + 10**9), self.other.batch(k + 2 * 10**9)
            batch.update(real_tokens=real.tokens, real_mask=real.mask, other_tokens=other.tokens,
                         other_mask=other.mask, example_ids=np.arange(self.config.batch_size, dtype=np.int32))
            if self.chords:
                stretch = self.changes.batch(k + 3 * 10**9)
                batch.update(real_cond=real.cond, other_cond=other.cond, changes=np.stack([
                    ls.steps_from_tokens(t[m], c[m], self.vocab, self.change_steps)
                    for t, m, c in zip(stretch.tokens, stretch.mask, stretch.cond)]).astype(np.int32))
        return batch


def sync_processes(name: str, timeout_s: int = 1800) -> None:
    """Under `jax.distributed`, wait until every process gets here; a no-op in one process.

    A barrier of the coordination service, not a collective: the CPU (gloo) collectives give a
    peer only 30 s to join the first collective, and hosts can drift further apart than that
    before it (parsing the corpus, compiling)."""
    if jax.process_count() > 1:
        import orbax.checkpoint as ocp

        ocp.multihost.get_barrier_sync_fn()(key=name, timeout_ms=timeout_s * 1000)


def resolve_chords(config: RunConfig, corpus: data.Corpus) -> RunConfig:
    """A run whose generator's `chords` is None (train-gan's default) reads chords exactly when
    the positive training files have some: a corpus without chords trains the generator of
    before (conditioning on bar positions alone would change it for nothing)."""
    if config.generator.chords is not None:
        return config
    train = corpus.indices("train", positive=True)
    has = any((corpus.conditioning(i)[:, ls.ROOT] >= 0).any() for i in train)
    return configs.replace(config, {"generator.chords": bool(has), "generator.phase_scores": config.generator.phase_scores * has,
                                    "generator.steps_per_beat": config.encoding.steps_per_beat})


def sample_changes(corpus: data.Corpus, indices, steps: int) -> np.ndarray | None:
    """Changes to write samples over: the first of `indices`' files, per grid step."""
    if not len(indices):
        return None
    i = int(indices[0])
    return ls.steps_from_tokens(corpus.sequence(i), corpus.conditioning(i), corpus.vocab, steps)


def write_samples(config: RunConfig, gen_params, directory: Path, length: int, num: int = 4,
                  step_cond: np.ndarray | None = None) -> None:
    """A few samples during training, so users can listen to it (a chord-conditioned generator
    plays over `step_cond`)."""
    from ganmusic import sampling, songs

    tokens = sampling.sample(gen_params, config.generator, config.encoding, jax.random.PRNGKey(config.seed), num, length,
                             step_cond=step_cond if config.generator.chords else None)
    songs.write_songs(tokens, config.encoding, directory)


def has_complete_checkpoint(run_dir: Path) -> bool:
    directory = run_dir / "checkpoints"
    if not directory.is_dir():
        return False
    with checkpoints.Manager(directory, read_only=True) as manager:
        return manager.latest_step() is not None


def clear_run(run_dir: Path) -> None:
    """Remove what a run wrote (an earlier attempt with no complete checkpoint)."""
    for name in ("checkpoints", "best", "samples", tboard.FOLDER):
        shutil.rmtree(run_dir / name, ignore_errors=True)
    for name in ("metrics.jsonl", "training.png", "config.json"):
        (run_dir / name).unlink(missing_ok=True)


def train_run(config: RunConfig | None, run_dir: str | Path, resume: bool = False, progress: bool = True,
              corpus: data.Corpus | None = None) -> dict:
    """Train (or resume) a run: the MLE phase, then the adversarial phase when `config.adv.steps`.
    On resume, `config` may change what `runs.RESUMABLE` allows (None: the saved config as is).
    Returns a summary with validation NLL and the unigram baseline; after SIGINT/SIGTERM the
    run stops at a saved checkpoint with `stopped_early` True and `stopped_by` the signal's name."""
    run_dir = Path(run_dir)
    if resume:
        config = resumed(load_run_config(run_dir), config, run_dir)
    elif (run_dir / "config.json").exists():
        if has_complete_checkpoint(run_dir):
            raise RunError(f"{run_dir} exists; resume it, or choose another run name")
        # Stopped before its first complete checkpoint: nothing to resume, so start it again.
        console.print(f"restarting {run_dir}: the earlier run stopped before its first complete checkpoint")
        clear_run(run_dir)
    check_vocab(config)
    parallel = Parallel(config.devices)
    parallel.check_batch(config.batch_size)
    if progress and jax.process_index() == 0:
        console.print(f"devices: {parallel.describe(config.batch_size)}", highlight=False)
    corpus = corpus or data.load_corpus(config.data, config.encoding, positive=config.positive, progress=progress,
                                        allow_outside=config.allow_outside)
    config = check_vocab(resolve_chords(config, corpus))
    model = Generator(config.generator)
    optimizer = mle_optimizer(config)
    disc = load_discriminator(config) if config.adv.steps else None

    init_params = None
    if config.init_from and not resume:
        other, init_params = restore_params(config.init_from, "best", calibrated=False)
        if other.generator != config.generator or other.encoding != config.encoding:
            raise RunError(f"init_from {config.init_from}: its generator or encoding differs from this run's")
    mle_state = init_state(model, optimizer, config.seed, init_params)

    # Under jax.distributed, process 0 alone writes the run folder (config, logs, checkpoints,
    # samples, plots); the others only read it, to resume. Every process has checked the folder
    # before process 0 writes into it.
    writer = jax.process_index() == 0
    sync_processes("ganmusic: run folder checked")
    if writer:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    batches = Batches(corpus, config, disc.window if disc else None, bool(disc and disc.model.config.chords))
    val = windows.eval_windows(corpus, corpus.indices("val", positive=True), config.window)
    if len(val.tokens) == 0:
        raise RunError(f"{config.data}: no '{config.positive}' files in the validation split (the corpus is too small)")
    baseline = unigram_nll(corpus, corpus.indices("train", positive=True), val)
    eval_nll = make_eval_nll(model)
    mle_step = parallel.pmap(make_mle_step(model, optimizer, Parallel.axis))
    adv_step = None
    if disc:
        g_opt, d_opt = adv_optimizers(config)
        adv_step = parallel.pmap(make_adv_step(model, disc.model, Grammar(Vocab(config.encoding)), g_opt, d_opt,
                                               config.adv, disc.window, Parallel.axis))

    def adv_state(gen_params) -> AdvState:
        return init_adv_state(gen_params, disc.params, g_opt, d_opt, config.seed)

    def phase_of(step: int) -> str:
        return "mle" if step <= config.mle_steps else "adv"

    with contextlib.ExitStack() as stack:
        stop = stack.enter_context(StopFlag())
        manager = best_manager = log = None
        if writer:
            manager = stack.enter_context(checkpoints.Manager(run_dir / "checkpoints", max_to_keep=config.keep))
            best_manager = stack.enter_context(checkpoints.Manager(run_dir / "best", max_to_keep=1))
        start, state = 0, mle_state
        if resume:
            reader = manager or stack.enter_context(checkpoints.Manager(run_dir / "checkpoints", read_only=True))
            start = reader.latest_step()
            if start is None:  # killed before its first complete checkpoint: the same run from step 0
                console.print(f"{run_dir} has no complete checkpoint: starting it again from step 0")
                start = 0
            else:
                # The state saved at `start` is that of the phase the step belongs to.
                state = reader.restore(start, mle_state if phase_of(start) == "mle" else adv_state(mle_state.gen))
            if writer:
                manager.discard_after(start)
                best_manager.discard_after(start)
        if writer:
            log = MetricsLog(run_dir / "metrics.jsonl", start if resume else None)
            events = stack.enter_context(tboard.EventWriter(run_dir / tboard.FOLDER, start + 1 if resume else None))
        best_nll = min([r["val_nll"] for r in MetricsLog.read(run_dir / "metrics.jsonl")
                        if "val_nll" in r and r.get("phase") == phase_of(start + 1)], default=math.inf)
        replicated = parallel.replicate(state)
        sums, count, tokens_seen, t0 = {}, 0, 0, time.perf_counter()
        summary = {"stopped_early": False, "stopped_by": None}
        adv_guess = None
        with maybe_progress(progress, "training generator", config.total_steps, estimate=True) as advance:
            advance(start)
            for step in range(start + 1, config.total_steps + 1):
                phase = phase_of(step)
                if phase == "adv" and step == config.mle_steps + 1:
                    # The adversarial phase starts from the generator as the MLE phase left it.
                    replicated = parallel.replicate(adv_state(parallel.unreplicate(replicated).gen))
                    best_nll = math.inf  # `best/` follows the final phase
                    if progress and config.mle_steps:  # its steps are slower: timed again
                        adv_guess = Estimate("adversarial phase", config.adv.steps)
                batch = batches(step)
                replicated, metrics = (mle_step if phase == "mle" else adv_step)(replicated, parallel.shard(batch))
                metrics = {k: float(v[0]) for k, v in metrics.items()}
                bad = [k for k in ("mle_loss", "g_loss", "d_loss") if k in metrics and not math.isfinite(metrics[k])]
                if bad:  # checked every step: nothing non-finite is ever saved
                    last_good = manager.latest_step()
                    where = (f"the last good checkpoint is step {last_good} in {run_dir / 'checkpoints'} "
                             "(resume it with a lower learning rate)" if last_good is not None else
                             "no checkpoint was saved before it (run it again with a lower learning rate: "
                             "it starts afresh)")
                    raise TrainingDiverged(f"{bad[0]} became {metrics[bad[0]]} at step {step}; {where}")
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                tokens_seen += int(batch["mle_mask"].sum())
                if step % config.eval_every == 0 or step in (config.mle_steps, config.total_steps):
                    params = parallel.unreplicate(replicated).gen
                    val_nll = validation_nll(eval_nll, params, val, config.batch_size, bool(config.generator.chords))
                    elapsed = time.perf_counter() - t0
                    row = {"step": step, "phase": phase, **{k: v / count for k, v in sums.items()},
                           "val_nll": val_nll, "val_perplexity": math.exp(val_nll), "unigram_nll": baseline,
                           "tokens_per_second": tokens_seen / max(elapsed, 1e-9)}
                    if writer:
                        log.append(row)
                        events.scalars(step, row, prefix=phase)
                    sums, count, tokens_seen, t0 = {}, 0, 0, time.perf_counter()
                    if val_nll < best_nll:
                        best_nll = val_nll
                        if writer:
                            best_manager.save(step, params)
                    advance(status=f"{phase} loss {row['mle_loss']:.3f} val NLL {val_nll:.3f} "
                                   f"(unigram {baseline:.3f}) {row['tokens_per_second']:.0f} tok/s")
                else:
                    advance()
                if adv_guess:
                    adv_guess.advance()
                if (phase == "adv" and writer and config.adv.sample_every
                        and (step - config.mle_steps) % config.adv.sample_every == 0):
                    gen_params = parallel.unreplicate(replicated).gen
                    write_samples(config, gen_params, run_dir / "samples" / f"{step:06d}", 4 * disc.window,
                                  step_cond=sample_changes(corpus, corpus.indices("val", positive=True),
                                                           4 * disc.window * config.encoding.steps_per_beat))
                if writer and (step % config.checkpoint_every == 0 or step in (config.mle_steps, config.total_steps)
                               or stop.raised):
                    manager.save(step, parallel.unreplicate(replicated))
                if stop.raised:
                    summary.update(stopped_early=True, stopped_by=signal.Signals(stop.signum).name)
                    break
        state = parallel.unreplicate(replicated)
    rows = MetricsLog.read(run_dir / "metrics.jsonl") if writer else []
    if writer:
        panels = {"NLL per token (nats)": ["mle_loss", "val_nll", "unigram_nll"]}
        if config.adv.steps:
            panels["adversarial"] = ["d_loss", "g_adv_loss", "d_generated", "sample_repeat_rate"]
        plots.training_curves(rows, run_dir / "training.png", title=f"run {run_dir.name}", panels=panels)
    last_step = config.mle_steps + int(state.step) if isinstance(state, AdvState) else int(state.step)
    summary.update({"run": str(run_dir), "writer": writer, "step": last_step, "best_val_nll": best_nll,
                    "unigram_nll": baseline, "last": rows[-1] if rows else None})
    return summary
