"""The adversarial phase: the generator against a jazz discriminator, as pure step functions.

One step: the generator samples a batch (grammar-constrained); the discriminator is updated on
real positive windows (label 1, smoothed) and generated windows (0), plus other-label windows (0,
`not_jazz_share` of the negatives, default none: they made it a style critic that taught a
caricature); the generator is updated on

    lambda_mle * NLL(real) + lambda_adv * -log D(generated) + lambda_rep * repetition
    + lambda_fm * |mean critic features(generated) - mean critic features(real)|^2.

With chords, generated examples play over changes taken from real positive training windows and
the critic judges them over those changes, and real and other-label windows over their own.

Two gradient estimators: straight-through Gumbel-softmax (the discriminator reads the relaxed
one-hots; the repetition term is the expected probability of repeating the last pitch) and
REINFORCE (reward D(generated) minus a repetition count, a moving-average baseline and an
entropy bonus). The step is written once; `axis_name` makes it the per-device body of a
`jax.pmap`, averaging gradients with `lax.pmean`. Per-example randomness is keyed by the
example's global index, so the same global batch gives the same update on any device count.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import optax
from flax import struct

from ganmusic.configs import AdvConfig
from ganmusic.encoding import BOS, EOS, T_PITCH, T_SHIFT, Grammar
from ganmusic.lead_sheets import COND_SIZE, NO_COND
from ganmusic.mle import token_nll
from ganmusic.models import Generator, StyleClassifier, generator_initial_carry
from ganmusic.sampling import Changes, fed_rows

@struct.dataclass
class AdvState:
    """The adversarial phase's training state: generator and discriminator weights with their
    optimizer states, step, RNG key and the REINFORCE baseline."""

    gen: dict
    gen_opt: optax.OptState
    disc: dict
    disc_opt: optax.OptState
    step: jnp.ndarray
    rng: jnp.ndarray
    baseline: jnp.ndarray


def init_adv_state(gen_params, disc_params, g_opt, d_opt, seed: int) -> AdvState:
    """The adversarial phase starts from the generator as the MLE phase left it."""
    return AdvState(gen=gen_params, gen_opt=g_opt.init(gen_params), disc=disc_params,
                    disc_opt=d_opt.init(disc_params), step=jnp.zeros((), jnp.int32),
                    rng=jax.random.PRNGKey(seed + 1), baseline=jnp.zeros((), jnp.float32))


def example_keys(rng, example_ids):
    """One key per example, from its global index: independent of how the batch is sharded."""
    return jax.vmap(lambda i: jax.random.fold_in(rng, i))(example_ids)


def rollout(gen_model: Generator, params, grammar: Grammar, keys, length: int, tau, hard: bool, step_cond=None):
    """Sample `length` tokens after BOS for each example (one key each), under the grammar; with
    `step_cond` (`[B, S, COND_SIZE]`, row s for a note starting at grid step s) over those
    changes: each fed token reads its note's row, as in `sampling.sample`.

    Returns (one_hots [B, L, V] (straight-through relaxed when not `hard`), ids [B, L],
    log-probabilities [B, L, V] of the masked distribution, expected-repeat [B, L], the
    conditioning rows of the sampled tokens [B, L, COND_SIZE] (None without `step_cond`)).
    """
    vocab = grammar.vocab
    batch = keys.shape[0]
    step_keys = jax.vmap(lambda k: jax.random.split(k, length))(keys).transpose(1, 0, 2)
    carry = generator_initial_carry(gen_model.config, batch)
    gstate = grammar.initial_state((batch,), xp=jnp)
    first = jax.nn.one_hot(jnp.full((batch,), BOS), vocab.size)
    changes = Changes.of(vocab.config)
    no_rows = step_cond is None
    step_cond = jnp.zeros((batch, 1, COND_SIZE), jnp.int32) if no_rows else jnp.asarray(step_cond, jnp.int32)

    def body(state, step_key):
        carry, gstate, token, pos, fed = state
        row = None if no_rows else fed
        carry, logits = gen_model.apply({"params": params}, carry, token, row, method="step")
        allowed = grammar.mask(gstate, xp=jnp).at[:, EOS].set(False)
        logits = jnp.where(allowed, logits, -1e9)
        logp = jax.nn.log_softmax(logits)
        noise = jax.vmap(lambda k: jax.random.gumbel(k, (vocab.size,)))(step_key)
        ids = jnp.argmax(logits + noise, axis=-1)
        one_hot = jax.nn.one_hot(ids, vocab.size)
        if not hard:  # straight-through: the forward pass is the hard token
            soft = jax.nn.softmax((logits + noise) / tau)
            one_hot = one_hot + soft - jax.lax.stop_gradient(soft)
        # The chance, under the model, of playing the last pitch again at a pitch step.
        last = jnp.where(gstate[1] >= 0, vocab.pitch_start + gstate[1] - vocab.config.pitch_min, 0)
        pitch_step = jnp.asarray(grammar.token_type)[gstate[0]] == T_SHIFT
        repeat = jnp.where(pitch_step & (gstate[1] >= 0), jnp.exp(jnp.take_along_axis(logp, last[:, None], 1)[:, 0]), 0.0)
        gstate = grammar.step(gstate, ids, xp=jnp)
        pos = pos + jnp.asarray(changes.shift)[ids]
        fed = fed_rows(step_cond, pos, ids, changes.is_note)  # what this token reads when it is fed
        return (carry, gstate, one_hot, pos, fed), (one_hot, ids, logp, repeat, fed)

    start = (carry, gstate, first, jnp.zeros((batch,), jnp.int32), jnp.broadcast_to(jnp.asarray(NO_COND, jnp.int32),
                                                                                   (batch, COND_SIZE)))
    _, (one_hots, ids, logp, repeat, rows) = jax.lax.scan(body, start, step_keys)
    swap = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731  [L, B, ...] -> [B, L, ...]
    return swap(one_hots), swap(ids), swap(logp), swap(repeat), None if no_rows else swap(rows)


def window_stride(window: int) -> int:
    """Offset between consecutive discriminator windows of a sample: a whole number of notes (3
    tokens each), so every window starts on a note boundary like the real windows do."""
    return window - window % 3 if window >= 3 else window


def rollout_length(window: int, count: int) -> int:
    """Tokens to generate (after BOS) for `count` discriminator windows of `window` tokens."""
    return window_stride(window) * (count - 1) + window


def sample_windows(x, window: int, count: int):
    """`[B, L, ...]` generated tokens (ids or one-hots) -> `[B * count, window, ...]` windows."""
    stride = window_stride(window)
    windows = jnp.stack([x[:, k * stride : k * stride + window] for k in range(count)], axis=1)
    return windows.reshape(-1, *windows.shape[2:])


def repeated_pitches(ids, vocab) -> jnp.ndarray:
    """Per example, the share of notes that repeat the previous note's pitch (hard count)."""
    is_pitch = jnp.asarray(vocab.token_type)[ids] == T_PITCH
    pitch = jnp.where(is_pitch, ids, -1)
    # Pitches sit every third token after BOS: compare each pitch with the one 3 tokens before.
    same = (pitch[:, 3:] == pitch[:, :-3]) & is_pitch[:, 3:]
    return same.sum(-1) / jnp.maximum(is_pitch.sum(-1) - 1, 1)


def bce_to(logits, target: float):
    """Binary cross-entropy of every logit against one constant target."""
    return optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)).mean()


def make_adv_step(gen_model: Generator, disc_model: StyleClassifier, grammar: Grammar,
                  g_opt: optax.GradientTransformation, d_opt: optax.GradientTransformation,
                  config: AdvConfig, window: int, axis_name: str | None = None):
    """`(state, batch) -> (state, metrics)`; `window` is the discriminator's, in tokens.

    state: an `AdvState`.
    batch: {"mle_tokens", "mle_mask" (generator NLL windows), "real_tokens", "real_mask"
    (positive windows for D), "other_tokens", "other_mask" (other-label windows for D),
    "example_ids" (global indices of this shard's generated examples)}; with chords (a
    chord-conditioned generator or a chord-aware critic) also "mle_cond", "real_cond",
    "other_cond" (the windows' own chord rows) and "changes" (`[B, S, COND_SIZE]` per grid step:
    the changes each example is generated over, taken from real positive training windows; the
    critic judges the generated windows over them).
    """
    vocab = grammar.vocab
    sample_length = rollout_length(window, config.windows)

    def mean(x):
        return jax.lax.pmean(x, axis_name) if axis_name else x

    def d_logits(params, tokens, mask=None, cond=None):
        return disc_model.apply({"params": params}, tokens, mask, cond)

    def step(state, batch):
        rng = jax.random.fold_in(state.rng, state.step)
        keys = example_keys(rng, batch["example_ids"])
        tau = config.tau(state.step)
        hard = config.estimator == "reinforce"

        # Generated windows, as the discriminator sees them: without BOS, like real windows,
        # over the changes they were generated on.
        changes = batch.get("changes")
        one_hots, ids, logp, repeat, rows = rollout(gen_model, state.gen, grammar, keys, sample_length, tau, hard,
                                                    changes)
        fake = jax.lax.stop_gradient(sample_windows(one_hots, window, config.windows))
        fake_cond = None if rows is None else sample_windows(rows, window, config.windows)
        real_cond, other_cond = batch.get("real_cond"), batch.get("other_cond")

        # Discriminator.
        def d_loss_fn(d_params):
            real = bce_to(d_logits(d_params, batch["real_tokens"], batch["real_mask"], real_cond),
                          1.0 - config.label_smoothing)
            gen = bce_to(d_logits(d_params, fake, None, fake_cond), 0.0)
            other = bce_to(d_logits(d_params, batch["other_tokens"], batch["other_mask"], other_cond), 0.0)
            share = config.not_jazz_share
            return real + (1 - share) * gen + share * other

        disc, disc_opt = state.disc, state.disc_opt
        for _ in range(config.d_steps):
            d_loss, d_grads = jax.value_and_grad(d_loss_fn)(disc)
            d_grads = mean(d_grads)
            updates, disc_opt = d_opt.update(d_grads, disc_opt, disc)
            disc = optax.apply_updates(disc, updates)

        # Generator.
        def g_loss_fn(g_params):
            logits = gen_model.apply({"params": g_params}, batch["mle_tokens"], batch.get("mle_cond"))
            nll, _ = token_nll(logits, batch["mle_tokens"], batch["mle_mask"])
            if hard:
                # REINFORCE: rerun the sampled sequence to get differentiable log-probabilities.
                logp_g = rollout_logp(gen_model, g_params, grammar, ids, rows)
                d_prob = jax.nn.sigmoid(d_logits(disc, sample_windows(jax.nn.one_hot(ids, vocab.size), window,
                                                                   config.windows), None, fake_cond))
                d_prob = d_prob.reshape(ids.shape[0], config.windows).mean(-1)  # one reward per sample
                reward = d_prob - config.lambda_rep * repeated_pitches(ids, vocab)
                advantage = jax.lax.stop_gradient(reward - state.baseline)
                chosen = jnp.take_along_axis(logp_g, ids[..., None], -1)[..., 0].sum(-1)
                entropy = -(jnp.exp(logp_g) * logp_g).sum(-1).mean(-1)
                adv = -(advantage * chosen).mean() / sample_length - config.entropy * entropy.mean()
                rep = repeated_pitches(ids, vocab).mean()
                total = config.lambda_mle * nll + config.lambda_adv * adv
                return total, (nll, adv, rep, d_prob.mean(), reward.mean())
            one_hots_g, _, _, repeat_g, _ = rollout(gen_model, g_params, grammar, keys, sample_length, tau, False,
                                                    changes)
            gen_windows = sample_windows(one_hots_g, window, config.windows)
            d_out = d_logits(disc, gen_windows, None, fake_cond)
            adv = -jax.nn.log_sigmoid(d_out).mean()
            rep = repeat_g.sum(-1).mean() / (sample_length / 3)
            total = config.lambda_mle * nll + config.lambda_adv * adv + config.lambda_rep * rep
            if config.lambda_fm:  # feature matching: like real windows on average, to the critic's eye
                def feats(*args):
                    return disc_model.apply({"params": disc}, *args, features=True).mean(0)

                real_f = jax.lax.stop_gradient(feats(batch["real_tokens"], batch["real_mask"], real_cond))
                total = total + config.lambda_fm * jnp.square(feats(gen_windows, None, fake_cond) - real_f).mean()
            return total, (nll, adv, rep, jax.nn.sigmoid(d_out).mean(), jnp.zeros(()))

        (g_loss, (nll, adv, rep, d_fake, reward)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.gen)
        g_grads = mean(g_grads)
        updates, gen_opt = g_opt.update(g_grads, state.gen_opt, state.gen)
        gen = optax.apply_updates(state.gen, updates)

        baseline = state.baseline
        if hard:
            baseline = config.baseline_decay * baseline + (1 - config.baseline_decay) * mean(reward)
        acc = lambda logits, label: ((logits > 0) == label).mean()  # noqa: E731
        metrics = {
            "mle_loss": nll, "g_adv_loss": adv, "g_loss": g_loss, "d_loss": d_loss, "repetition": rep,
            "d_generated": d_fake,
            "d_acc_real": acc(d_logits(disc, batch["real_tokens"], batch["real_mask"], real_cond), True),
            "d_acc_fake": acc(d_logits(disc, fake, None, fake_cond), False),
            "d_acc_other": acc(d_logits(disc, batch["other_tokens"], batch["other_mask"], other_cond), False),
            "sample_repeat_rate": repeated_pitches(ids, vocab).mean(),
            "g_grad_norm": optax.tree.norm(g_grads), "d_grad_norm": optax.tree.norm(d_grads), "tau": tau,
        }
        metrics = jax.tree.map(mean, metrics)
        new_state = state.replace(gen=gen, gen_opt=gen_opt, disc=disc, disc_opt=disc_opt, step=state.step + 1,
                                  baseline=baseline)
        return new_state, metrics

    return step


def rollout_logp(gen_model: Generator, params, grammar: Grammar, ids, rows=None):
    """Teacher-force BOS + ids[:, :-1] (with `rows`, the sampled tokens' conditioning rows):
    grammar-masked log-probabilities `[B, L, V]` of every position, for REINFORCE."""
    batch, length = ids.shape
    inputs = jnp.concatenate([jnp.full((batch, 1), BOS, ids.dtype), ids[:, :-1]], axis=1)
    cond = None if rows is None else jnp.concatenate(
        [jnp.broadcast_to(jnp.asarray(NO_COND, rows.dtype), (batch, 1, COND_SIZE)), rows[:, :-1]], axis=1)
    logits = gen_model.apply({"params": params}, inputs, cond)

    def masks(gstate, token):
        allowed = grammar.mask(gstate, xp=jnp).at[:, EOS].set(False)
        return grammar.step(gstate, token, xp=jnp), allowed

    _, allowed = jax.lax.scan(masks, grammar.initial_state((batch,), xp=jnp), ids.T)
    allowed = jnp.swapaxes(allowed, 0, 1)
    return jax.nn.log_softmax(jnp.where(allowed, logits, -1e9))
