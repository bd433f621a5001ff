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

from ganmusic import checkpoints, data, plots
from ganmusic.encoding import EncodingConfig, Vocab
from ganmusic.models import Generator, GeneratorConfig
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

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.generator.vocab_size != Vocab(self.encoding).size:
            raise ValueError("generator vocab_size does not match the encoding")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["generator"] = self.generator.to_dict()
        d["encoding"] = dataclasses.asdict(self.encoding)
        return {"format": FORMAT, **d}

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        d = dict(d)
        if d.pop("format", None) != FORMAT:
            raise ValueError(f"not a {FORMAT} config")
        d["generator"] = GeneratorConfig.from_dict(d["generator"])
        d["encoding"] = EncodingConfig.from_dict(d["encoding"])
        known = {f.name for f in dataclasses.fields(cls)}
        if set(d) - known:
            raise ValueError(f"unknown run config keys: {sorted(set(d) - known)}")
        return cls(**d)

    def default_name(self) -> str:
        g = self.generator
        sizes = f"{g.layers[0]}x{len(g.layers)}" if len(set(g.layers)) == 1 else "-".join(map(str, g.layers))
        return f"{g.cell}-{sizes}-mle{self.mle_steps}-s{self.seed}"


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
    """`(state, tokens, mask) -> (state, metrics)`: one teacher-forced update. With `axis_name`
    (under `pmap`) gradients and metrics are averaged across devices."""

    def step(state, tokens, mask):
        rng, dropout_rng = jax.random.split(state["rng"])

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
    state_template = jax.eval_shape(lambda: init_state(model, make_optimizer(config), config))
    with checkpoints.Manager(run_dir / "checkpoints", read_only=True) as manager:
        steps = manager.steps()
        step = steps[-1] if which == "last" and steps else int(which) if which.isdigit() else None
        if step is None or step not in steps:
            raise RunError(f"{run_dir}: no checkpoint '{which}' (have: {', '.join(map(str, steps)) or 'none'})")
        try:
            return config, manager.restore(step, state_template)["params"]
        except checkpoints.CheckpointError as exc:
            raise RunError(f"{run_dir}: {exc}") from None


def train_run(config: RunConfig, run_dir: str | Path, resume: bool = False, progress: bool = True,
              corpus: data.Corpus | None = None) -> dict:
    """Train (or resume) a run. Returns a summary with validation NLL and the unigram baseline."""
    run_dir = Path(run_dir)
    if resume:
        config = load_run_config(run_dir)
    elif (run_dir / "config.json").exists():
        raise RunError(f"{run_dir} exists; pass --resume to continue it, or choose another --name")
    corpus = corpus or data.load_corpus(config.data, config.encoding, positive=config.positive, progress=progress)
    model = Generator(config.generator)
    optimizer = make_optimizer(config)

    init_params = None
    if config.init_from and not resume:
        other, init_params = restore_params(Path(config.init_from), "best")
        if other.generator != config.generator or other.encoding != config.encoding:
            raise RunError(f"--init-from {config.init_from}: its generator or encoding differs from this run's")
    state = init_state(model, optimizer, config, init_params)

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    sampler = data.WindowSampler(corpus, "train", config.window, config.batch_size, seed=config.seed,
                                 transpose=config.transpose, positive_only=True)
    val = data.eval_windows(corpus, corpus.indices("val", positive=True), config.window)
    baseline = unigram_nll(corpus, corpus.indices("train", positive=True), val)
    step_fn = jax.jit(make_mle_step(model, optimizer), donate_argnums=0)
    eval_nll = make_eval_nll(model)

    with checkpoints.Manager(run_dir / "checkpoints", max_to_keep=config.keep) as manager, \
            checkpoints.Manager(run_dir / "best", max_to_keep=1) as best_manager, StopFlag() as stop:
        start = 0
        if resume:
            latest = manager.latest_step()
            if latest is None:
                raise RunError(f"{run_dir}: no complete checkpoint to resume from")
            state = manager.restore(latest, state)
            start = int(state["step"])
        log = MetricsLog(run_dir / "metrics.jsonl", start if resume else None)
        best_nll = min([r["val_nll"] for r in MetricsLog.read(run_dir / "metrics.jsonl") if "val_nll" in r],
                       default=math.inf)
        tokens_seen, t0 = 0, time.perf_counter()
        summary = {"stopped_early": False}
        with maybe_progress(progress, "training generator (MLE)", config.mle_steps) as advance:
            advance(start)
            for step in range(start + 1, config.mle_steps + 1):
                batch = sampler.batch(step)
                state, metrics = step_fn(state, batch.tokens, batch.mask)
                tokens_seen += int(batch.mask.sum())
                loss = float(metrics["mle_loss"])  # checked every step: nothing non-finite is saved
                if not math.isfinite(loss):
                    raise TrainingDiverged(f"loss became {loss} at step {step}; the last good checkpoint "
                                           f"is in {run_dir / 'checkpoints'} (try a lower --lr or --clip)")
                if step % config.eval_every == 0 or step == config.mle_steps:
                    val_nll = validation_nll(eval_nll, state["params"], val, config.batch_size)
                    elapsed = time.perf_counter() - t0
                    row = {"step": step, "phase": "mle", "mle_loss": loss, "grad_norm": float(metrics["grad_norm"]),
                           "val_nll": val_nll, "val_perplexity": math.exp(val_nll), "unigram_nll": baseline,
                           "tokens_per_second": tokens_seen / max(elapsed, 1e-9)}
                    log.append(row)
                    tokens_seen, t0 = 0, time.perf_counter()
                    if val_nll < best_nll:
                        best_nll = val_nll
                        best_manager.save(step, state["params"])
                    advance(status=f"loss {loss:.3f} val NLL {val_nll:.3f} (unigram {baseline:.3f}) "
                                   f"{row['tokens_per_second']:.0f} tok/s")
                else:
                    advance()
                if step % config.checkpoint_every == 0 or step == config.mle_steps or stop.raised:
                    manager.save(step, state)
                if stop.raised:
                    summary["stopped_early"] = True
                    break
    rows = MetricsLog.read(run_dir / "metrics.jsonl")
    plots.training_curves(rows, run_dir / "training.png", title=f"run {run_dir.name}",
                          panels={"NLL per token": ["mle_loss", "val_nll", "unigram_nll"]})
    summary.update({"run": str(run_dir), "step": int(state["step"]), "best_val_nll": best_nll,
                    "unigram_nll": baseline, "last": rows[-1] if rows else None})
    return summary
