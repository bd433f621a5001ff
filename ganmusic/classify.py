"""Style classifier: training, evaluation against a scikit-learn baseline, loading and scoring.

A trained classifier is a folder: `config.json` (encoding, model, labels, threshold, window,
data fingerprint), an orbax checkpoint of the best validation step, `metrics.json` and a
training-curve PNG. Loading reads JSON and orbax arrays only; nothing is unpickled.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ganmusic import checkpoints, data, parsing, plots, tboard, windows
from ganmusic import encoding as enc
from ganmusic.encoding import EncodingConfig, Vocab
from ganmusic.models import ClassifierConfig, StyleClassifier
from ganmusic.ui import maybe_progress
from ganmusic.configs import TrainConfig, check, finite
from ganmusic.errors import GanmusicError, TrainingDiverged

FORMAT = "ganmusic-classifier/1"
SCORE_BATCH = 512  # windows per jitted call when scoring; batches are padded to this size
MAX_SCORE_WINDOW = 1024  # the largest window train-classifier trains (TrainConfig.window)


class ClassifierError(GanmusicError):
    """A classifier folder that cannot be used, with a one-line reason."""


def steps_for_epochs(corpus: data.Corpus, epochs: float, window: int, batch_size: int) -> int:
    """Training steps for `epochs` passes over the training split's windows."""
    check(epochs > 0, f"epochs must be > 0, got {epochs}")
    n_windows = len(windows.eval_windows(corpus, corpus.indices("train"), window).tokens)
    return max(1, int(epochs * n_windows / batch_size))


def default_name(model_config: ClassifierConfig, train_config: TrainConfig) -> str:
    """A classifier folder name from its settings, e.g. `conv-w64-s0` (`-pitch`: blind to timing)."""
    pitch_only = ("-pitch" if model_config.merged_tokens else "") + ("-chords" if model_config.chords else "")
    return f"{model_config.encoder}-w{train_config.window}{pitch_only}-s{train_config.seed}"


def latest_classifier(root: str | Path = "classifiers") -> Path:
    """The most recently trained classifier folder under `root`: hidden folders (a training
    run's `.NAME.partial`) and folders without their checkpoint are not results."""
    root = Path(root)
    found = sorted((p for p in root.glob("*/config.json")
                    if not p.parent.name.startswith(".") and (p.parent / "checkpoint").is_dir()),
                   key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    if not found:
        raise ClassifierError(f"no trained classifier in {root}/")
    return found[-1].parent


# ---------------------------------------------------------------------------------------------
# Pure step functions
# ---------------------------------------------------------------------------------------------


def bce(logits, labels, weights=None):
    losses = optax.sigmoid_binary_cross_entropy(logits, labels.astype(jnp.float32))
    if weights is None:
        return losses.mean()
    return (losses * weights).sum() / jnp.maximum(weights.sum(), 1e-9)


def make_train_step(model: StyleClassifier, optimizer: optax.GradientTransformation):
    @jax.jit
    def train_step(params, opt_state, tokens, mask, labels, rng, cond=None):
        def loss_fn(p):
            logits = model.apply({"params": p}, tokens, mask, cond, train=True, rngs={"dropout": rng})
            return bce(logits, labels), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        accuracy = ((logits > 0) == (labels > 0)).mean()
        return optax.apply_updates(params, updates), opt_state, loss, accuracy

    return train_step


def make_predict(model: StyleClassifier):
    @jax.jit
    def predict(params, tokens, mask, cond=None):
        return model.apply({"params": params}, tokens, mask, cond)

    return predict


def predict_logits(predict, params, batch: windows.Batch, batch_size: int = SCORE_BATCH) -> np.ndarray:
    """Logits for any number of windows (with their chord rows), in fixed-size padded chunks (one compilation)."""
    out = np.zeros(len(batch.tokens), dtype=np.float32)
    conds = windows.fixed_batches(batch.cond, batch.mask, batch_size)
    for k, (tokens, mask, n) in enumerate(windows.fixed_batches(batch.tokens, batch.mask, batch_size)):
        out[k * batch_size : k * batch_size + n] = np.asarray(predict(params, tokens, mask, next(conds)[0]))[:n]
    return out


def file_logits(window_logits: np.ndarray, owners: np.ndarray, n_files: int) -> np.ndarray:
    """A file's logit is the mean of its windows' logits."""
    sums = np.bincount(owners, weights=window_logits, minlength=n_files)
    counts = np.bincount(owners, minlength=n_files)
    return (sums / np.maximum(counts, 1)).astype(np.float32)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def binary_report(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict:
    """Accuracy, balanced accuracy, ROC-AUC, F1 and the confusion matrix [[TN, FP], [FN, TP]]."""
    labels = np.asarray(labels).astype(int)
    pred = (np.asarray(probs) >= threshold).astype(int)
    both = len(set(labels.tolist())) == 2
    return {
        "n": int(len(labels)),
        "positives": int(labels.sum()),
        "accuracy": float(skm.accuracy_score(labels, pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(labels, pred)) if both else float("nan"),
        "roc_auc": float(skm.roc_auc_score(labels, probs)) if both else float("nan"),
        "f1": float(skm.f1_score(labels, pred, zero_division=0)),
        "confusion": skm.confusion_matrix(labels, pred, labels=[0, 1]).tolist(),
    }


# ---------------------------------------------------------------------------------------------
# The scikit-learn baseline: histograms of intervals, onset shifts and durations
# ---------------------------------------------------------------------------------------------

MAX_INTERVAL = 12


def style_features(tokens: np.ndarray, mask: np.ndarray, vocab: Vocab, timing: bool = True) -> np.ndarray:
    """Per window: normalized histograms of SHIFT tokens, of DUR tokens (unless `timing` is
    False) and of melodic intervals (+-12, beyond lumped). Key-, tempo- and velocity-free, like
    the neural model's input."""
    tokens = np.where(mask, tokens, enc.PAD).astype(np.int64)
    types, values = vocab.token_type[tokens], vocab.token_value[tokens]
    shift_ids = tokens - vocab.shift_start
    dur_ids = tokens - vocab.dur_start
    n_shift, n_dur = vocab.pitch_start - vocab.shift_start, vocab.size - vocab.dur_start
    n = len(tokens)
    shift_hist = np.zeros((n, n_shift))
    dur_hist = np.zeros((n, n_dur))
    interval_hist = np.zeros((n, 2 * MAX_INTERVAL + 3))
    rows = np.arange(n)[:, None].repeat(tokens.shape[1], 1)
    np.add.at(shift_hist, (rows[types == enc.T_SHIFT], shift_ids[types == enc.T_SHIFT]), 1)
    np.add.at(dur_hist, (rows[types == enc.T_DUR], dur_ids[types == enc.T_DUR]), 1)
    for r in range(n):
        pitches = values[r][types[r] == enc.T_PITCH]
        steps = np.diff(pitches)
        bins = np.where(np.abs(steps) <= MAX_INTERVAL, steps + MAX_INTERVAL + 1,
                        np.where(steps < 0, 0, 2 * MAX_INTERVAL + 2))
        np.add.at(interval_hist[r], bins, 1)
    parts = [shift_hist, dur_hist, interval_hist] if timing else [interval_hist]
    return np.concatenate([p / np.maximum(p.sum(1, keepdims=True), 1) for p in parts], axis=1)


def train_baseline(corpus: data.Corpus, window: int, seed: int, timing: bool = True):
    """Logistic regression on `style_features` of the training windows, class-balanced."""
    train = windows.eval_windows(corpus, corpus.indices("train"), window)
    model = make_pipeline(StandardScaler(), LogisticRegression(
        C=1.0, max_iter=2000, class_weight="balanced", random_state=seed))
    model.fit(style_features(train.tokens, train.mask, corpus.vocab, timing), train.labels)
    return model


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def train_classifier(corpus: data.Corpus, out_dir: str | Path, model_config: ClassifierConfig | None = None,
                     train_config: TrainConfig = TrainConfig(), progress: bool = True) -> dict:
    """Train on the corpus' train split, keep the best validation step, evaluate on the test
    split beside the baseline, and write the classifier folder. Returns the metrics.

    Everything is written to a hidden temporary folder (`.NAME.partial`) that is renamed to
    `out_dir` at the end, so an interrupted run never leaves a half-written classifier behind;
    a failed one removes it, and the next run of the same name replaces a killed one's."""
    final_dir = Path(out_dir)
    out_dir = final_dir.parent / f".{final_dir.name}.partial"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    try:
        metrics = _train_into(corpus, out_dir, final_dir, model_config, train_config, progress)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    if final_dir.exists():
        shutil.rmtree(final_dir)
    os.replace(out_dir, final_dir)
    return metrics


def _train_into(corpus: data.Corpus, out_dir: Path, final_dir: Path, model_config: ClassifierConfig | None,
                train_config: TrainConfig, progress: bool) -> dict:
    tc = train_config
    vocab = corpus.vocab
    model_config = model_config or ClassifierConfig.for_vocab(vocab)
    if model_config.vocab_size != vocab.size:
        raise ValueError(f"model vocab_size {model_config.vocab_size} != encoding's {vocab.size}")
    for split in data.SPLITS:
        if len(set(corpus.is_positive[corpus.indices(split)])) < 2:
            raise data.CorpusError(f"{corpus.root}: the {split} split needs files of both the "
                                   f"positive label '{corpus.positive}' and another label")
    model = StyleClassifier(model_config)
    rng = jax.random.PRNGKey(tc.seed)
    init_rng, rng = jax.random.split(rng)
    sampler = windows.WindowSampler(corpus, "train", tc.window, tc.batch_size, seed=tc.seed,
                                 transpose=tc.transpose, balance=True)
    first = sampler.batch(0)
    params = model.init(init_rng, first.tokens, first.mask, first.cond)["params"]
    # Warm-up shorter than the run, so the cosine part has at least one step (optax refuses 0).
    schedule = optax.warmup_cosine_decay_schedule(0.0, tc.lr, min(tc.warmup, tc.steps - 1), tc.steps)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=tc.weight_decay))
    opt_state = optimizer.init(params)
    train_step = make_train_step(model, optimizer)
    predict = make_predict(model)

    val = windows.eval_windows(corpus, corpus.indices("val"), tc.window)
    # Each class weighs half in the validation loss, whatever the imbalance.
    val_weights = np.where(val.labels == 1, 0.5 / max(val.labels.sum(), 1), 0.5 / max((1 - val.labels).sum(), 1))
    checkpoint_dir = out_dir / "checkpoint"
    history, best = [], {"val_loss": math.inf, "step": -1}
    started = time.perf_counter()
    losses, accs = [], []
    with checkpoints.Manager(checkpoint_dir, max_to_keep=1) as manager, tboard.EventWriter(out_dir / tboard.FOLDER) \
            as events, maybe_progress(progress, "training classifier", tc.steps, estimate=True) as advance:
        for step in range(1, tc.steps + 1):
            batch = sampler.batch(step)
            rng, step_rng = jax.random.split(rng)
            params, opt_state, loss, acc = train_step(params, opt_state, batch.tokens, batch.mask,
                                                      batch.labels, step_rng, batch.cond)
            losses.append(float(loss))
            accs.append(float(acc))
            if not math.isfinite(losses[-1]):
                raise TrainingDiverged(f"training diverged: the loss became {losses[-1]} at step {step}; "
                                      "nothing was written (try a lower learning rate)")
            if step % tc.eval_every == 0 or step == tc.steps:
                logits = predict_logits(predict, params, val)
                val_loss = float(bce(jnp.asarray(logits), jnp.asarray(val.labels), jnp.asarray(val_weights)))
                val_bal = float(skm.balanced_accuracy_score(val.labels, logits > 0))
                history.append({"step": step, "train_loss": float(np.mean(losses)),
                                "train_accuracy": float(np.mean(accs)), "val_loss": val_loss,
                                "val_balanced_accuracy": val_bal})
                losses, accs = [], []
                events.scalars(step, history[-1], prefix="classifier")
                if val_loss < best["val_loss"]:
                    best = {"val_loss": val_loss, "step": step, "val_balanced_accuracy": val_bal}
                    manager.save(step, params)
                advance(status=f"loss {history[-1]['train_loss']:.3f} val acc {val_bal:.3f} (best @ {best['step']})")
            else:
                advance()
        if best["step"] < 0:
            raise TrainingDiverged("training diverged: no validation step gave a finite loss; "
                                  "nothing was written (try a lower learning rate)")
        params = manager.restore(best["step"], params)
    train_seconds = time.perf_counter() - started

    test_idx = corpus.indices("test")
    test = windows.eval_windows(corpus, test_idx, tc.window)
    owners = np.searchsorted(test_idx, test.file_index)  # window -> position in test_idx
    file_labels = corpus.is_positive[test_idx].astype(int)
    window_logits = predict_logits(predict, params, test)
    timing = not model_config.merged_tokens  # the baseline sees what the model sees
    baseline = train_baseline(corpus, tc.window, tc.seed, timing)
    base_logits = baseline.decision_function(style_features(test.tokens, test.mask, vocab, timing))
    metrics = {
        "test": {
            "window": binary_report(test.labels, sigmoid(window_logits)),
            "file": binary_report(file_labels, sigmoid(file_logits(window_logits, owners, len(test_idx)))),
        },
        "baseline": {
            "model": "logistic regression on interval, onset-shift and duration histograms",
            "window": binary_report(test.labels, sigmoid(base_logits)),
            "file": binary_report(file_labels, sigmoid(file_logits(base_logits, owners, len(test_idx)))),
        },
        "best_step": best["step"],
        "best_val_loss": best["val_loss"],
        "train_seconds": train_seconds,
        "history": history,
        "splits": {s: {"files": int(len(corpus.indices(s))), "positive": int(len(corpus.indices(s, True)))}
                   for s in data.SPLITS},
    }
    labels = [corpus.positive] + sorted(set(corpus.labels) - {corpus.positive})
    config = {
        "format": FORMAT,
        "encoding": dataclasses.asdict(corpus.config),
        "model": model_config.to_dict(),
        "train": dataclasses.asdict(tc),
        "labels": labels,
        "positive": corpus.positive,
        "threshold": 0.5,
        "window": tc.window,
        "best_step": best["step"],
        "data": {"root": str(corpus.root), "fingerprint": corpus.fingerprint(), "files": len(corpus)},
    }
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plots.training_curves(history, out_dir / "training.png", title=f"classifier {final_dir.name}",
                          panels={"loss": ["train_loss", "val_loss"],
                                  "accuracy": ["train_accuracy", "val_balanced_accuracy"]})
    return metrics


# ---------------------------------------------------------------------------------------------
# Loading and scoring
# ---------------------------------------------------------------------------------------------


@dataclass
class Classifier:
    """A trained classifier ready to score token sequences or MIDI files."""

    path: Path
    encoding: EncodingConfig
    model_config: ClassifierConfig
    params: dict
    threshold: float
    window: int
    positive: str

    @classmethod
    def load(cls, path: str | Path) -> "Classifier":
        path = Path(path)
        config_path = path / "config.json"
        if not config_path.is_file():
            raise ClassifierError(f"{path}: not a classifier folder (no config.json)")
        try:
            config = json.loads(config_path.read_text())
            if config.get("format") != FORMAT:
                raise ValueError(f"format {config.get('format')!r}, expected {FORMAT!r}")
            encoding = EncodingConfig.from_dict(config["encoding"])
            model_config = ClassifierConfig.from_dict(config["model"])
            if model_config.vocab_size != Vocab(encoding).size:
                raise ValueError("model and encoding disagree on the vocabulary size")
            window, threshold, positive = config["window"], config["threshold"], config["positive"]
            # Checked before any array is built: a window of 10**7 tokens would exhaust memory.
            check(isinstance(window, int) and not isinstance(window, bool) and 1 <= window <= MAX_SCORE_WINDOW,
                  f"window must be an integer in [1, {MAX_SCORE_WINDOW}] tokens, got {window!r:.40}")
            check(finite(threshold) and 0.0 <= threshold <= 1.0,
                  f"threshold must be a probability in [0, 1], got {threshold!r:.40}")
            check(isinstance(positive, str) and bool(positive.strip()),
                  f"positive must be a non-empty label, got {positive!r:.40}")
        except KeyError as exc:
            raise ClassifierError(f"{config_path}: incompatible classifier config (missing {exc})") from None
        except (ValueError, TypeError, AttributeError) as exc:
            raise ClassifierError(f"{config_path}: incompatible classifier config ({type(exc).__name__}: {exc})") from None
        model = StyleClassifier(model_config)
        template = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, window), jnp.int32))["params"])
        try:
            params = checkpoints.restore_latest(path / "checkpoint", template)
        except checkpoints.CheckpointError as exc:
            raise ClassifierError(f"{path}: {exc}") from None
        return cls(path, encoding, model_config, params, threshold, window, positive)

    @property
    def vocab(self) -> Vocab:
        return Vocab(self.encoding)

    def score_sequences(self, sequences: list[np.ndarray], conds: list[np.ndarray] | None = None) -> list[dict]:
        """Per sequence: P(positive) and the per-window probabilities, in one batched pass (a
        chord-aware classifier reads the sequences' chord rows `conds`, none: no chords)."""
        predict = _predict_for(self.model_config)
        batch = windows.tile_windows(sequences, self.vocab, self.window, conds)
        logits = predict_logits(predict, self.params, batch)
        per_file = file_logits(logits, batch.file_index, len(sequences))
        out = []
        for k in range(len(sequences)):
            out.append({"probability": float(sigmoid(per_file[k])),
                        "windows": sigmoid(logits[batch.file_index == k]).tolist()})
        return out


_PREDICT_CACHE: dict = {}


def _predict_for(model_config: ClassifierConfig):
    """One jitted predict per architecture, so repeated scoring reuses the compilation."""
    if model_config not in _PREDICT_CACHE:
        _PREDICT_CACHE[model_config] = make_predict(StyleClassifier(model_config))
    return _PREDICT_CACHE[model_config]


def score_files(classifier: Classifier, paths: list[str | Path], workers: int | None = None,
                progress: bool = True) -> list[dict]:
    """Score MIDI files: `{"file", "probability", "notes", "windows"}` or `{"file", "error"}`
    per path, in the order given. Files are parsed in parallel worker processes; the windows of
    all files then go through the model together in fixed-size batches."""
    paths = [str(p) for p in paths]
    parsed = parsing.parse_files(paths, classifier.encoding, min_notes=1, workers=workers, progress=progress)
    good = [k for k, p in enumerate(parsed) if p.tokens is not None]
    scores = dict(zip(good, classifier.score_sequences([parsed[k].tokens for k in good],
                                                       [parsed[k].cond for k in good])))
    results = []
    for k, (path, (tokens, _, _, reason)) in enumerate(zip(paths, parsed)):
        if tokens is None:
            results.append({"file": path, "error": reason})
        else:
            notes = int((classifier.vocab.token_type[tokens] == enc.T_PITCH).sum())
            results.append({"file": path, "notes": notes, **scores[k]})
    return results
