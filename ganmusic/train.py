"""Generator training runs: run folders, maximum-likelihood steps, orbax checkpoints, resume.

A run folder `runs/NAME/` holds `config.json` (everything needed to rebuild the models and the
data stream), `checkpoints/` (the last few full training states), `best/` (the parameters with
the lowest validation NLL), `metrics.jsonl` (one JSON object per logged step) and
`training.png`. Batch `k` is a pure function of (seed, k) and the RNG key is part of the saved
state, so `--resume` continues exactly where a run stopped.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganmusic import checkpoints, classify, data, plots
from ganmusic.encoding import EncodingConfig, Grammar, Vocab
from ganmusic.gan import AdvConfig, make_adv_step
from ganmusic.models import Generator, GeneratorConfig, StyleClassifier
from ganmusic.ui import maybe_progress

FORMAT = "ganmusic-run/1"
OPTIMIZERS = ("adam", "adamw", "rmsprop")


class RunError(ValueError):
    """A run folder that cannot be used (missing, incompatible), with a one-line reason."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs besides the data files; saved as `config.json`."""

    data: str
    generator: GeneratorConfig
    encoding: EncodingConfig = EncodingConfig()
    positive: str = "jazz"
    window: int = 256
    batch_size: int = 64
    mle_steps: int = 2000
    lr: float = 2e-3
    optimizer: str = "adam"
    clip: float = 1.0
    weight_decay: float = 0.0
    transpose: int = 6  # augmentation range in semitones
    eval_every: int = 100
    checkpoint_every: int = 250
    keep: int = 3  # last checkpoints kept, besides the best
    seed: int = 0
    init_from: str | None = None
    adv: AdvConfig = AdvConfig()  # the adversarial phase that follows the MLE steps
    devices: int = 0  # local devices to pmap over (0: all)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.generator.vocab_size != Vocab(self.encoding).size:
            raise ValueError("generator vocab_size does not match the encoding")
        if self.mle_steps < 0 or self.mle_steps + self.adv.steps < 1:
            raise ValueError("need at least one MLE or adversarial step")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["generator"] = self.generator.to_dict()
        d["encoding"] = dataclasses.asdict(self.encoding)
        d["adv"] = self.adv.to_dict()
        return {"format": FORMAT, **d}

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        d = dict(d)
        if d.pop("format", None) != FORMAT:
            raise ValueError(f"not a {FORMAT} config")
        d["generator"] = GeneratorConfig.from_dict(d["generator"])
        d["encoding"] = EncodingConfig.from_dict(d["encoding"])
        d["adv"] = AdvConfig(**d.get("adv", {}))
        known = {f.name for f in dataclasses.fields(cls)}
        if set(d) - known:
            raise ValueError(f"unknown run config keys: {sorted(set(d) - known)}")
        return cls(**d)

    def default_name(self) -> str:
        g = self.generator
        sizes = f"{g.layers[0]}x{len(g.layers)}" if len(set(g.layers)) == 1 else "-".join(map(str, g.layers))
        adv = f"-{self.adv.estimator}{self.adv.steps}" if self.adv.steps else ""
        return f"{g.cell}-{sizes}-mle{self.mle_steps}{adv}-s{self.seed}"

    @property
    def total_steps(self) -> int:
        return self.mle_steps + self.adv.steps


def load_run_config(run_dir: str | Path) -> RunConfig:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise RunError(f"{run_dir}: not a run folder (no config.json)")
    try:
        return RunConfig.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise RunError(f"{path}: incompatible run config ({exc})") from None


# ---------------------------------------------------------------------------------------------
# Pure step functions
# ---------------------------------------------------------------------------------------------


def make_optimizer(config: RunConfig) -> optax.GradientTransformation:
    chain = [optax.clip_by_global_norm(config.clip)] if config.clip > 0 else []
    if config.optimizer == "adam":
        chain.append(optax.adam(config.lr))
    elif config.optimizer == "adamw":
        chain.append(optax.adamw(config.lr, weight_decay=config.weight_decay or 1e-4))
    else:
        chain.append(optax.rmsprop(config.lr))
    return optax.chain(*chain)


def token_nll(logits, tokens, mask):
    """Mean next-token NLL (nats) over valid targets, and the number of targets."""
    targets, weights = tokens[:, 1:], mask[:, 1:].astype(jnp.float32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], targets)
    count = weights.sum()
    return (losses * weights).sum() / jnp.maximum(count, 1.0), count


def init_state(model: Generator, optimizer, config: RunConfig, params=None) -> dict:
    """The whole training state as one pytree: params, optimizer state, step and RNG key."""
    rng = jax.random.PRNGKey(config.seed)
    init_rng, rng = jax.random.split(rng)
    if params is None:
        dummy = jnp.zeros((1, 8), jnp.int32)
        params = model.init(init_rng, dummy)["params"]
    return {"params": params, "opt_state": optimizer.init(params), "step": jnp.zeros((), jnp.int32), "rng": rng}


def make_mle_step(model: Generator, optimizer, axis_name: str | None = None):
    """`(state, batch) -> (state, metrics)`: one teacher-forced update. With `axis_name`
    (under `pmap`) gradients and metrics are averaged across devices."""

    def step(state, batch):
        tokens, mask = batch["mle_tokens"], batch["mle_mask"]
        rng, dropout_rng = jax.random.split(state["rng"])
        if axis_name is not None:  # each device drops out differently
            dropout_rng = jax.random.fold_in(dropout_rng, jax.lax.axis_index(axis_name))

        def loss_fn(params):
            logits = model.apply({"params": params}, tokens, train=True, rngs={"dropout": dropout_rng})
            return token_nll(logits, tokens, mask)

        (loss, count), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        if axis_name is not None:
            grads = jax.lax.pmean(grads, axis_name)
            loss = jax.lax.pmean(loss, axis_name)
        grad_norm = optax.tree.norm(grads)
        updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
        new_state = {"params": optax.apply_updates(state["params"], updates), "opt_state": opt_state,
                     "step": state["step"] + 1, "rng": rng}
        return new_state, {"mle_loss": loss, "grad_norm": grad_norm}

    return step


def make_eval_nll(model: Generator):
    @jax.jit
    def eval_nll(params, tokens, mask):
        logits = model.apply({"params": params}, tokens)
        nll, count = token_nll(logits, tokens, mask)
        return nll * count, count

    return eval_nll


def validation_nll(eval_nll, params, batch: data.Batch, batch_size: int) -> float:
    """NLL per token over all validation windows (padded to whole batches: one compilation)."""
    total, count = 0.0, 0.0
    for lo in range(0, len(batch.tokens), batch_size):
        tokens, mask = batch.tokens[lo : lo + batch_size], batch.mask[lo : lo + batch_size]
        pad = batch_size - len(tokens)
        if pad:
            tokens, mask = np.pad(tokens, ((0, pad), (0, 0))), np.pad(mask, ((0, pad), (0, 0)))
        s, c = eval_nll(params, tokens, mask)
        total, count = total + float(s), count + float(c)
    return total / max(count, 1.0)


def unigram_nll(corpus: data.Corpus, train_idx: np.ndarray, batch: data.Batch) -> float:
    """The baseline to beat: NLL per token of the validation targets under the training
    tokens' frequencies (add-one smoothed)."""
    vocab_size = corpus.vocab.size
    train_tokens = np.concatenate([corpus.sequence(i) for i in train_idx]).astype(np.int64)
    counts = np.bincount(train_tokens, minlength=vocab_size) + 1.0
    logp = np.log(counts / counts.sum())
    targets = batch.tokens[:, 1:][batch.mask[:, 1:]]
    return float(-logp[targets].mean())


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


@dataclass
class StopFlag:
    """Set by SIGINT/SIGTERM: the loop saves a checkpoint and returns cleanly."""

    raised: bool = False
    signals: list = field(default_factory=list)

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        self.raised = True
        self.signals.append(signum)

    def __exit__(self, *exc):
        for s, handler in self._old.items():
            signal.signal(s, handler)


class MetricsLog:
    """`metrics.jsonl`: on resume, lines past the restored step are dropped, so the log has
    neither gaps nor duplicates."""

    def __init__(self, path: Path, resume_step: int | None):
        self.path = path
        rows = self.read(path) if resume_step is not None else []
        rows = [r for r in rows if r["step"] <= (resume_step or 0)]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    @staticmethod
    def read(path: Path) -> list[dict]:
        if not path.exists():
            return []
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill: drop it
                continue
        return rows

    def append(self, row: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def restore_params(run_dir: Path, which: str = "best"):
    """Parameters of a run: `best`, `last` or a step number."""
    config = load_run_config(run_dir)
    model = Generator(config.generator)
    template = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))["params"])
    if which == "best":
        directory = run_dir / "best"
        try:
            return config, checkpoints.restore_latest(directory, template)
        except checkpoints.CheckpointError as exc:
            raise RunError(f"{run_dir}: {exc}") from None
    with checkpoints.Manager(run_dir / "checkpoints", read_only=True) as manager:
        steps = manager.steps()
        step = steps[-1] if which == "last" and steps else int(which) if which.isdigit() else None
        if step is None or step not in steps:
            raise RunError(f"{run_dir}: no checkpoint '{which}' (have: {', '.join(map(str, steps)) or 'none'})")
        # The generator's weights are "params" in an MLE-phase state, "gen" in an adversarial one.
        part = "params" if step <= config.mle_steps else "gen"
        try:
            return config, manager.restore_part(step, part, template)
        except checkpoints.CheckpointError as exc:
            raise RunError(f"{run_dir}: {exc}") from None


class Parallel:
    """Data parallelism: the state replicated on local devices, each batch split on a leading
    device axis, one `pmap`ped step (with one device it is the same code path). Under
    `jax.distributed`, each process takes its slice of the global batch first."""

    axis = "devices"

    def __init__(self, n_devices: int = 0):
        local = jax.local_devices()
        if n_devices > len(local):
            raise RunError(f"--devices {n_devices}: only {len(local)} local device(s)")
        self.devices = local[: n_devices or len(local)]
        self.n = len(self.devices)

    def check_batch(self, batch_size: int) -> None:
        parts = self.n * jax.process_count()
        if batch_size % parts:
            raise RunError(f"--batch-size {batch_size} must be divisible by the {parts} devices")

    def replicate(self, tree):
        """One copy per device, stacked on a leading axis and laid out one slice per device."""
        sharding = jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(self.devices), (self.axis,)),
                                              jax.sharding.PartitionSpec(self.axis))
        stacked = jax.tree.map(lambda x: np.broadcast_to(np.asarray(x), (self.n, *np.shape(x))), tree)
        return jax.device_put(stacked, sharding)

    def unreplicate(self, tree):
        return jax.tree.map(lambda x: np.asarray(x[0]), tree)

    def shard(self, batch: dict) -> dict:
        def split(x):
            x = np.asarray(x)
            per_process = len(x) // jax.process_count()
            x = x[jax.process_index() * per_process : (jax.process_index() + 1) * per_process]
            return x.reshape(self.n, len(x) // self.n, *x.shape[1:])

        return {k: split(v) for k, v in batch.items()}

    def pmap(self, step_fn):
        return jax.pmap(step_fn, axis_name=self.axis, devices=self.devices, donate_argnums=0)


@dataclass
class Discriminator:
    """The adversarial phase's critic: a pretrained classifier's model and weights."""

    model: StyleClassifier
    params: dict
    window: int


def load_discriminator(config: RunConfig) -> Discriminator:
    clf = classify.Classifier.load(config.adv.classifier)
    if clf.encoding != config.encoding:
        raise RunError(f"--classifier {config.adv.classifier}: its encoding differs from this run's "
                       "(train both with the same --steps-per-beat and --melody/--all-notes)")
    return Discriminator(StyleClassifier(clf.model_config), clf.params, clf.window)


def adv_optimizers(config: RunConfig):
    clip = [optax.clip_by_global_norm(config.clip)] if config.clip > 0 else []
    return optax.chain(*clip, optax.adam(config.adv.lr)), optax.chain(*clip, optax.adam(config.adv.d_lr))


def init_adv_state(config: RunConfig, gen_params, disc: Discriminator) -> dict:
    g_opt, d_opt = adv_optimizers(config)
    return {"gen": gen_params, "gen_opt": g_opt.init(gen_params), "disc": disc.params,
            "disc_opt": d_opt.init(disc.params), "step": jnp.zeros((), jnp.int32),
            "rng": jax.random.PRNGKey(config.seed + 1), "baseline": jnp.zeros((), jnp.float32)}


class Batches:
    """Global batch `k` of either phase, a pure function of (seed, k)."""

    def __init__(self, corpus: data.Corpus, config: RunConfig, disc_window: int | None):
        kw = dict(seed=config.seed, transpose=config.transpose)
        self.config = config
        self.mle = data.WindowSampler(corpus, "train", config.window, config.batch_size, positive=True, **kw)
        if disc_window:
            self.real = data.WindowSampler(corpus, "train", disc_window, config.batch_size, positive=True, **kw)
            self.other = data.WindowSampler(corpus, "train", disc_window, config.batch_size, positive=False, **kw)

    def __call__(self, k: int) -> dict:
        mle = self.mle.batch(k)
        batch = {"mle_tokens": mle.tokens, "mle_mask": mle.mask}
        if k > self.config.mle_steps:
            # Different streams for D than for the NLL term: offset the step index.
            real, other = self.real.batch(k + 10**9), self.other.batch(k + 2 * 10**9)
            batch.update(real_tokens=real.tokens, real_mask=real.mask, other_tokens=other.tokens,
                         other_mask=other.mask, example_ids=np.arange(self.config.batch_size, dtype=np.int32))
        return batch


def write_samples(config: RunConfig, gen_params, directory: Path, length: int, num: int = 4) -> None:
    """A few samples during training, so users can listen to it."""
    from ganmusic import sampling

    tokens = sampling.sample(gen_params, config.generator, config.encoding, jax.random.PRNGKey(config.seed), num, length)
    sampling.write_midi_files(tokens, config.encoding, directory)


def train_run(config: RunConfig, run_dir: str | Path, resume: bool = False, progress: bool = True,
              corpus: data.Corpus | None = None) -> dict:
    """Train (or resume) a run: the MLE phase, then the adversarial phase when `config.adv.steps`.
    Returns a summary with validation NLL and the unigram baseline."""
    run_dir = Path(run_dir)
    if resume:
        config = load_run_config(run_dir)
    elif (run_dir / "config.json").exists():
        raise RunError(f"{run_dir} exists; pass --resume to continue it, or choose another --name")
    parallel = Parallel(config.devices)
    parallel.check_batch(config.batch_size)
    corpus = corpus or data.load_corpus(config.data, config.encoding, positive=config.positive, progress=progress)
    model = Generator(config.generator)
    optimizer = make_optimizer(config)
    disc = load_discriminator(config) if config.adv.steps else None

    init_params = None
    if config.init_from and not resume:
        other, init_params = restore_params(Path(config.init_from), "best")
        if other.generator != config.generator or other.encoding != config.encoding:
            raise RunError(f"--init-from {config.init_from}: its generator or encoding differs from this run's")
    mle_state = init_state(model, optimizer, config, init_params)

    writer = jax.process_index() == 0  # under jax.distributed, one process writes logs
    run_dir.mkdir(parents=True, exist_ok=True)
    if writer:
        (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    batches = Batches(corpus, config, disc.window if disc else None)
    val = data.eval_windows(corpus, corpus.indices("val", positive=True), config.window)
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

    def template(step: int):
        if step <= config.mle_steps:
            return mle_state
        return init_adv_state(config, mle_state["params"], disc)

    with checkpoints.Manager(run_dir / "checkpoints", max_to_keep=config.keep) as manager, \
            checkpoints.Manager(run_dir / "best", max_to_keep=1) as best_manager, StopFlag() as stop:
        start, state = 0, mle_state
        if resume:
            start = manager.latest_step()
            if start is None:
                raise RunError(f"{run_dir}: no complete checkpoint to resume from")
            state = manager.restore(start, template(start))
            manager.discard_after(start)
            best_manager.discard_after(start)
        log = MetricsLog(run_dir / "metrics.jsonl", start if resume else None)
        phase_of = lambda step: "mle" if step <= config.mle_steps else "adv"  # noqa: E731
        best_nll = min([r["val_nll"] for r in MetricsLog.read(run_dir / "metrics.jsonl")
                        if "val_nll" in r and r.get("phase") == phase_of(start + 1)], default=math.inf)
        replicated = parallel.replicate(state)
        sums, count, tokens_seen, t0 = {}, 0, 0, time.perf_counter()
        summary = {"stopped_early": False}
        with maybe_progress(progress, "training generator", config.total_steps) as advance:
            advance(start)
            for step in range(start + 1, config.total_steps + 1):
                phase = phase_of(step)
                if phase == "adv" and step == config.mle_steps + 1:
                    # The adversarial phase starts from the generator as the MLE phase left it.
                    gen_params = parallel.unreplicate(replicated)["params"]
                    replicated = parallel.replicate(init_adv_state(config, gen_params, disc))
                    best_nll = math.inf  # `best/` follows the final phase
                batch = batches(step)
                replicated, metrics = (mle_step if phase == "mle" else adv_step)(replicated, parallel.shard(batch))
                metrics = {k: float(v[0]) for k, v in metrics.items()}
                bad = [k for k in ("mle_loss", "g_loss", "d_loss") if k in metrics and not math.isfinite(metrics[k])]
                if bad:  # checked every step: nothing non-finite is ever saved
                    raise TrainingDiverged(f"{bad[0]} became {metrics[bad[0]]} at step {step}; the last good "
                                           f"checkpoint is in {run_dir / 'checkpoints'} (try a lower --lr or --clip)")
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                tokens_seen += int(batch["mle_mask"].sum())
                params = None
                if step % config.eval_every == 0 or step in (config.mle_steps, config.total_steps):
                    params = parallel.unreplicate(replicated)
                    params = params["params"] if phase == "mle" else params["gen"]
                    val_nll = validation_nll(eval_nll, params, val, config.batch_size)
                    elapsed = time.perf_counter() - t0
                    row = {"step": step, "phase": phase, **{k: v / count for k, v in sums.items()},
                           "val_nll": val_nll, "val_perplexity": math.exp(val_nll), "unigram_nll": baseline,
                           "tokens_per_second": tokens_seen / max(elapsed, 1e-9)}
                    if writer:
                        log.append(row)
                    sums, count, tokens_seen, t0 = {}, 0, 0, time.perf_counter()
                    if val_nll < best_nll:
                        best_nll = val_nll
                        best_manager.save(step, params)
                    advance(status=f"{phase} loss {row['mle_loss']:.3f} val NLL {val_nll:.3f} "
                                   f"(unigram {baseline:.3f}) {row['tokens_per_second']:.0f} tok/s")
                else:
                    advance()
                if (phase == "adv" and writer and config.adv.sample_every
                        and (step - config.mle_steps) % config.adv.sample_every == 0):
                    gen_params = parallel.unreplicate(replicated)["gen"]
                    write_samples(config, gen_params, run_dir / "samples" / f"{step:06d}", 4 * disc.window)
                if step % config.checkpoint_every == 0 or step in (config.mle_steps, config.total_steps) or stop.raised:
                    manager.save(step, parallel.unreplicate(replicated))
                if stop.raised:
                    summary["stopped_early"] = True
                    break
        state = parallel.unreplicate(replicated)
    rows = MetricsLog.read(run_dir / "metrics.jsonl")
    if writer:
        panels = {"NLL per token": ["mle_loss", "val_nll", "unigram_nll"]}
        if config.adv.steps:
            panels["adversarial"] = ["d_loss", "g_adv_loss", "d_generated", "sample_repeat_rate"]
        plots.training_curves(rows, run_dir / "training.png", title=f"run {run_dir.name}", panels=panels)
    last_step = config.mle_steps + int(state["step"]) if "gen" in state else int(state["step"])
    summary.update({"run": str(run_dir), "step": last_step, "best_val_nll": best_nll,
                    "unigram_nll": baseline, "last": rows[-1] if rows else None})
    return summary
