"""The likelihood loss: next-token NLL, the teacher-forced update, validation NLL, the unigram
baseline and the optimizers both training phases build. Pure functions with explicit state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from ganmusic import data, windows
from ganmusic.configs import OPTIMIZERS
from ganmusic.models import Generator



@struct.dataclass
class MleState:
    """The MLE phase's training state: generator weights, their optimizer state, step, RNG key."""

    gen: dict
    gen_opt: optax.OptState
    step: jnp.ndarray
    rng: jnp.ndarray


def make_optimizer(name: str, lr, clip: float = 0.0, weight_decay: float = 0.0) -> optax.GradientTransformation:
    """`clip` (global norm, 0: off) then adam, adamw (with `weight_decay`) or rmsprop."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    chain = [optax.clip_by_global_norm(clip)] if clip > 0 else []
    if name == "adam":
        chain.append(optax.adam(lr))
    elif name == "adamw":
        chain.append(optax.adamw(lr, weight_decay=weight_decay))
    else:
        chain.append(optax.rmsprop(lr))
    return optax.chain(*chain)


def token_nll(logits, tokens, mask):
    """Mean next-token NLL (nats) over valid targets, and the number of targets."""
    targets, weights = tokens[:, 1:], mask[:, 1:].astype(jnp.float32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], targets)
    count = weights.sum()
    return (losses * weights).sum() / jnp.maximum(count, 1.0), count


def init_state(model: Generator, optimizer, seed: int, params=None) -> MleState:
    """A fresh MLE state (or one around `params`, e.g. another run's weights)."""
    rng = jax.random.PRNGKey(seed)
    init_rng, rng = jax.random.split(rng)
    if params is None:
        dummy = jnp.zeros((1, 8), jnp.int32)
        params = model.init(init_rng, dummy)["params"]
    return MleState(gen=params, gen_opt=optimizer.init(params), step=jnp.zeros((), jnp.int32), rng=rng)


def make_mle_step(model: Generator, optimizer, axis_name: str | None = None):
    """`(state, batch) -> (state, metrics)`: one teacher-forced update. With `axis_name`
    (under `pmap`) gradients and metrics are averaged across devices."""

    def step(state: MleState, batch):
        tokens, mask, cond = batch["mle_tokens"], batch["mle_mask"], batch.get("mle_cond")
        rng, dropout_rng = jax.random.split(state.rng)
        if axis_name is not None:  # each device drops out differently
            dropout_rng = jax.random.fold_in(dropout_rng, jax.lax.axis_index(axis_name))

        def loss_fn(params):
            logits = model.apply({"params": params}, tokens, cond, train=True, rngs={"dropout": dropout_rng})
            return token_nll(logits, tokens, mask)

        (loss, count), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.gen)
        if axis_name is not None:
            grads = jax.lax.pmean(grads, axis_name)
            loss = jax.lax.pmean(loss, axis_name)
        grad_norm = optax.tree.norm(grads)
        updates, opt_state = optimizer.update(grads, state.gen_opt, state.gen)
        new_state = MleState(gen=optax.apply_updates(state.gen, updates), gen_opt=opt_state,
                             step=state.step + 1, rng=rng)
        return new_state, {"mle_loss": loss, "grad_norm": grad_norm}

    return step


def make_eval_nll(model: Generator):
    @jax.jit
    def eval_nll(params, tokens, mask, cond=None):
        logits = model.apply({"params": params}, tokens, cond)
        nll, count = token_nll(logits, tokens, mask)
        return nll * count, count

    return eval_nll


def validation_nll(eval_nll, params, batch: windows.Batch, batch_size: int, cond: bool = False) -> float:
    """NLL per token over all validation windows (padded to whole batches: one compilation);
    with `cond`, a chord-conditioned generator reads the windows' chord rows."""
    total, count = 0.0, 0.0
    conds = windows.fixed_batches(batch.cond, batch.mask, batch_size) if cond else None
    for tokens, mask, _ in windows.fixed_batches(batch.tokens, batch.mask, batch_size):
        s, c = eval_nll(params, tokens, mask, next(conds)[0] if conds else None)
        total, count = total + float(s), count + float(c)
    return total / max(count, 1.0)


def unigram_nll(corpus: data.Corpus, train_idx: np.ndarray, batch: windows.Batch) -> float:
    """The baseline to beat: NLL per token of the validation targets under the training
    tokens' frequencies (add-one smoothed)."""
    vocab_size = corpus.vocab.size
    train_tokens = np.concatenate([corpus.sequence(i) for i in train_idx]).astype(np.int64)
    counts = np.bincount(train_tokens, minlength=vocab_size) + 1.0
    logp = np.log(counts / counts.sum())
    targets = batch.tokens[:, 1:][batch.mask[:, 1:]]
    return float(-logp[targets].mean())
