"""Maximum-likelihood (teacher-forcing) training throughput of the 2x256 LSTM generator.

Measures tokens/s of our JAX training step (`mle.make_mle_step`, jitted with donated state;
`train_run` pmaps the same step, over the one CPU device here) and of a PyTorch reference with the same sizes (`nn.Embedding(152, 128)` ->
`nn.LSTM(128, 256, num_layers=2, batch_first=True)` -> `nn.Linear(256, 152)`, masked
cross-entropy, Adam 2e-3, gradient clipping at 1.0, float32), on the same batches, in the same
run, on the same CPU. Tokens are the valid (unpadded) positions of each batch, counted as the
training loop counts them (`mask.sum()`). Compilation and warm-up steps are excluded; every timed
step waits for its loss (`float(loss)` / `loss.item()`), so no work is left in flight when the
clock stops.

Our side runs in a child process, so its peak resident memory (ru_maxrss: JAX, compilation and
training at the given batch and window) is not mixed up with PyTorch's. The child stays alive and
the two sides take turns, `--rounds` chunks of steps each, so that other load on a shared machine
falls on both alike; the table gives tokens/s over all timed steps and of the fastest step (what
an otherwise idle machine gives), and tokens per CPU-second. Targets: ours/PyTorch >= 1.0x,
peak RSS < 3 GiB at batch 64, window 256. PyTorch is a benchmark-only dependency: when it is not
importable the script measures our side alone and says so.

`--explore` also times candidate speed-ups of our step that keep the model's math (scan unroll,
the input projection hoisted out of the time loop, a hand-written LSTM backward pass, XLA CPU
flags), each in its own child, in the same rounds.

    python benchmarks/train_bench.py [--batch 64] [--window 256] [--steps 20] [--rounds 4] [--explore]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from common import DEFAULT_DATA, REPO, report  # noqa: E402

VOCAB, EMBED, HIDDEN, LAYERS = 152, 128, 256, 2
LR, CLIP = 2e-3, 1.0
PEAK_RSS_TARGET_MIB = 3 * 1024
REPLY = "@@"  # marks the child's answers on its stdout


# ---------------------------------------------------------------------------------------------
# Batches: real training windows from the shared corpus when it is there, else random tokens
# ---------------------------------------------------------------------------------------------


def make_batches(n: int, batch: int, window: int, cache_dir: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """`n` batches as (tokens int32 [n, B, W], mask bool [n, B, W], description)."""
    path = Path(os.environ.get("GANMUSIC_BENCH_DATA", DEFAULT_DATA))
    if path.exists():
        from ganmusic import data, windows

        corpus = data.load_corpus(path, cache_dir=cache_dir, progress=False)
        sampler = windows.WindowSampler(corpus, "train", window, batch, positive=True)
        batches = [sampler.batch(k) for k in range(n)]
        return (np.stack([b.tokens for b in batches]), np.stack([b.mask for b in batches]),
                f"real windows ({corpus.positive} train split of {path})")
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, VOCAB, size=(n, batch, window), dtype=np.int32)  # 0 is PAD
    return tokens, np.ones((n, batch, window), bool), f"random tokens ({path} not found)"


def cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_steps(step, tokens: np.ndarray, mask: np.ndarray, lo: int, hi: int) -> dict:
    """Time `step(tokens, mask) -> float loss` on batches lo..hi-1: wall clock per step and the
    CPU seconds of this process (all its threads)."""
    times, losses, cpu0 = [], [], cpu_seconds()
    for k in range(lo, hi):
        t = time.perf_counter()
        losses.append(step(tokens[k], mask[k]))
        times.append(time.perf_counter() - t)
    return {"times": times, "losses": losses, "cpu_seconds": cpu_seconds() - cpu0}


# ---------------------------------------------------------------------------------------------
# Our side: the model variants (the Generator itself, and candidate speed-ups with its math)
# ---------------------------------------------------------------------------------------------


def _lstm_gates(z, hidden):
    import jax
    import jax.numpy as jnp

    i, f, g, o = (z[:, k * hidden:(k + 1) * hidden] for k in range(4))
    return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)


def _recurrence(xw, w_h, b, unroll=1):
    """The time loop of one LSTM layer, given its input projection `xw` [T, B, 4H] for all steps.
    Returns h [T, B, H] and, for the hand-written backward pass, c [T, B, H] and the gate
    activations [T, B, 4H]."""
    import jax
    import jax.numpy as jnp

    hidden = w_h.shape[0]

    def body(carry, xw_t):
        c, h = carry
        z = (h @ w_h + b) + xw_t  # the order of additions of flax's OptimizedLSTMCell
        i, f, g, o = _lstm_gates(z, hidden)
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (c, h), (h, c, jnp.concatenate([i, f, g, o], axis=-1))

    zeros = jnp.zeros((xw.shape[1], hidden), xw.dtype)
    _, (hs, cs, acts) = jax.lax.scan(body, (zeros, zeros), xw, unroll=unroll)
    return hs, cs, acts


def _make_recurrence_vjp(unroll=1):
    """`_recurrence` with a hand-written backward pass: the reverse time loop carries only
    (dh, dc) and emits the pre-activation gradients dz; the weight gradient dW_h = sum_t
    h_{t-1}^T dz_t and db are then one big matmul / sum over all steps, instead of a small
    (K = batch) matmul accumulated inside the loop at every step, as autodiff of `scan` does."""
    import jax
    import jax.numpy as jnp

    @jax.custom_vjp
    def recurrence(xw, w_h, b):
        return _recurrence(xw, w_h, b, unroll)[0]

    def fwd(xw, w_h, b):
        hs, cs, acts = _recurrence(xw, w_h, b, unroll)
        return hs, (hs, cs, acts, w_h)

    def bwd(res, d_hs):
        hs, cs, acts, w_h = res
        hidden = w_h.shape[0]
        c_prev = jnp.concatenate([jnp.zeros_like(cs[:1]), cs[:-1]], axis=0)
        h_prev = jnp.concatenate([jnp.zeros_like(hs[:1]), hs[:-1]], axis=0)
        w_h_t = w_h.T

        def body(carry, xs):
            dh_rec, dc_next = carry
            dh_out, c, cp, a = xs
            i, f, g, o = (a[:, k * hidden:(k + 1) * hidden] for k in range(4))
            dh = dh_out + dh_rec
            tc = jnp.tanh(c)
            dc = dc_next + dh * o * (1 - tc * tc)
            dz = jnp.concatenate([dc * g * i * (1 - i), dc * cp * f * (1 - f), dc * i * (1 - g * g),
                                  dh * tc * o * (1 - o)], axis=-1)
            return (dz @ w_h_t, dc * f), dz

        zeros = jnp.zeros(hs.shape[1:], hs.dtype)
        _, dzs = jax.lax.scan(body, (zeros, zeros), (d_hs, cs, c_prev, acts), reverse=True, unroll=unroll)
        return dzs, jnp.einsum("tbh,tbk->hk", h_prev, dzs), dzs.sum(axis=(0, 1))

    recurrence.defvjp(fwd, bwd)
    return recurrence


def hoisted_apply(params, tokens, unroll: int = 1, custom_vjp: bool = False):
    """The Generator's forward pass (`Generator.__call__` with `OptimizedLSTMCell`s) over the
    same parameter tree, time-major, with each layer's input projection done for all time steps
    as one matmul before the recurrence (z = (h @ W_h + b) + x @ W_i, gates i, f, g, o as in
    flax), and optionally the hand-written backward pass of `_make_recurrence_vjp`."""
    import jax.numpy as jnp

    recurrence = _make_recurrence_vjp(unroll) if custom_vjp else (lambda xw, w_h, b: _recurrence(xw, w_h, b, unroll)[0])
    gates = "ifgo"
    x = jnp.take(params["embedding"], tokens.T, axis=0)  # [T, B, E]
    layer = 0
    while f"cells_{layer}" in params:
        p = params[f"cells_{layer}"]
        w_i = jnp.concatenate([p[f"i{g}"]["kernel"] for g in gates], axis=-1)
        w_h = jnp.concatenate([p[f"h{g}"]["kernel"] for g in gates], axis=-1)
        b = jnp.concatenate([p[f"h{g}"]["bias"] for g in gates], axis=-1)
        x = recurrence(x @ w_i, w_h, b)  # x @ w_i: one [T*B, D] x [D, 4H] matmul for all steps
        layer += 1
    logits = x @ params["head"]["kernel"] + params["head"]["bias"]  # [T, B, V]
    return jnp.swapaxes(logits, 0, 1).astype(jnp.float32)




CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
from train_bench import ours_child
ours_child(sys.argv[2])
"""


def ours_child(spec_json: str) -> None:
    """Child process: build, compile and warm up our MLE step, then answer commands on stdin
    (`run N`: time the next N batches; `forward`: time the loss alone; `exit`: peak RSS)."""
    import resource

    spec = json.loads(spec_json)
    if spec.get("xla_flags"):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + spec["xla_flags"]).strip()
    unroll, hoisted, custom_vjp = int(spec.get("unroll", 1)), bool(spec.get("hoisted")), bool(spec.get("custom_vjp"))
    if unroll > 1 and not hoisted:
        import functools

        import flax.linen as nn

        nn.RNN = functools.partial(nn.RNN, unroll=unroll)  # this child only: ganmusic.models reads nn.RNN

    import jax
    import jax.numpy as jnp

    from ganmusic import mle, runs
    from ganmusic.encoding import EncodingConfig, Vocab
    from ganmusic.models import Generator, GeneratorConfig

    def reply(obj):
        print(REPLY + json.dumps(obj), flush=True)

    loaded = np.load(spec["batches"])
    all_tokens, all_mask = loaded["tokens"], loaded["mask"]
    warmup = spec["warmup"]

    gen_config = GeneratorConfig(vocab_size=Vocab(EncodingConfig()).size, layers=(HIDDEN,) * LAYERS,
                                 cell="lstm", embed_dim=EMBED)
    config = runs.RunConfig(data="bench", generator=gen_config, window=all_tokens.shape[2],
                             batch_size=all_tokens.shape[1], lr=LR, optimizer="adam", clip=CLIP)
    model = Generator(gen_config)
    optimizer = mle.make_optimizer(config.optimizer, config.lr, config.clip, config.weight_decay)
    state = mle.init_state(model, optimizer, config.seed)

    check = None
    step_model = model
    if hoisted:
        class Hoisted:  # quacks like the Generator as far as make_mle_step is concerned
            def apply(self, variables, tokens, train=False, rngs=None):  # noqa: ARG002
                return hoisted_apply(variables["params"], tokens, unroll, custom_vjp)

        step_model = Hoisted()

        # The variant must compute the same function: compare loss and gradients on batch 0.
        def grads_of(apply):
            loss = lambda p: mle.token_nll(apply(p), all_tokens[0], all_mask[0])[0]  # noqa: E731
            return jax.jit(jax.value_and_grad(loss))(state.gen)

        ref_loss, ref_grads = grads_of(lambda p: model.apply({"params": p}, all_tokens[0]))
        new_loss, new_grads = grads_of(lambda p: hoisted_apply(p, all_tokens[0], unroll, custom_vjp))
        diffs = jax.tree_util.tree_map(lambda a, b: float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(a)) + 1e-30)),
                                       ref_grads, new_grads)
        check = {"loss_abs_diff": abs(float(ref_loss) - float(new_loss)),
                 "max_rel_grad_diff": max(jax.tree_util.tree_leaves(diffs))}

    step_fn = jax.jit(mle.make_mle_step(step_model, optimizer), donate_argnums=0)

    def step(tokens, mask):
        nonlocal state
        state, metrics = step_fn(state, {"mle_tokens": tokens, "mle_mask": mask})
        return float(metrics["mle_loss"])  # waits for the step, as train_run does

    t = time.perf_counter()
    first_loss = step(all_tokens[0], all_mask[0])  # compiles
    first = time.perf_counter() - t
    warm = run_steps(step, all_tokens, all_mask, 1, warmup)
    reply({"first_step_seconds": first, "warmup_losses": [first_loss] + warm["losses"], "check": check})

    cursor = warmup
    for line in sys.stdin:
        command = line.split()
        if command[0] == "run":
            n = int(command[1])
            reply(run_steps(step, all_tokens, all_mask, cursor, cursor + n))
            cursor += n
        elif command[0] == "forward":  # where the step's time goes: the forward pass (loss) alone
            forward = jax.jit(lambda p, t, m: mle.token_nll(step_model.apply({"params": p}, t), t, m)[0])
            float(forward(state.gen, all_tokens[0], all_mask[0]))
            times = []
            for k in range(5):
                t = time.perf_counter()
                float(forward(state.gen, all_tokens[k % len(all_tokens)], all_mask[k % len(all_mask)]))
                times.append(time.perf_counter() - t)
            reply({"forward_seconds_median": float(np.median(times)), "forward_seconds_min": min(times)})
        else:
            jax.block_until_ready(state)
            reply({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "jax": jax.__version__, "xla_flags": os.environ.get("XLA_FLAGS", "")})
            return


class Side:
    """One contestant; `run(n)` times its next n batches. Keeps the tally."""

    def __init__(self, label: str, mask: np.ndarray, warmup: int):
        self.label, self.mask, self.cursor = label, mask, warmup
        self.times, self.tokens, self.losses, self.loads, self.cpu = [], [], [], [], 0.0
        self.info: dict = {}

    def run(self, n: int) -> None:
        self.loads.append(os.getloadavg()[0])
        out = self._run(n)
        self.times += out["times"]
        self.losses += out["losses"]
        self.cpu += out["cpu_seconds"]
        self.tokens += [int(self.mask[k].sum()) for k in range(self.cursor, self.cursor + n)]
        self.cursor += n

    def summary(self) -> dict:
        tokens, seconds = sum(self.tokens), sum(self.times)
        per_step = [tok / t for tok, t in zip(self.tokens, self.times)]
        losses = self.info.get("warmup_losses", []) + self.losses
        return {**self.info, "label": self.label, "tokens": tokens, "seconds": seconds,
                "tokens_per_second": tokens / seconds, "best_step_tokens_per_second": max(per_step),
                "step_seconds": self.times, "step_seconds_median": float(np.median(self.times)),
                "cpu_seconds": self.cpu, "tokens_per_cpu_second": tokens / max(self.cpu, 1e-9),
                "load_average_1min": self.loads, "losses": losses, "first_loss": losses[0],
                "last_loss": losses[-1], "finite": all(map(math.isfinite, losses))}


class OursChild(Side):
    def __init__(self, label: str, mask: np.ndarray, warmup: int, batches_file: str, variant: dict):
        super().__init__(label, mask, warmup)
        self.variant = variant
        self.stderr = tempfile.TemporaryFile(mode="w+")
        spec = {"batches": batches_file, "warmup": warmup, **variant}
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(BENCH_DIR), json.dumps(spec)], cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.info.update(self._answer())

    def _answer(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY):])
        self.proc.wait()
        self.stderr.seek(0)
        raise RuntimeError(f"{self.label}: child failed:\n{self.stderr.read()[-2000:]}")

    def _ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def _run(self, n: int) -> dict:
        return self._ask(f"run {n}")

    def forward(self) -> None:
        self.info.update(self._ask("forward"))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.info.update(self._ask("exit"))
            self.proc.wait()
        self.stderr.close()


class TorchSide(Side):
    """The PyTorch reference, in this process."""

    def __init__(self, tokens: np.ndarray, mask: np.ndarray, warmup: int):
        super().__init__("PyTorch", mask, warmup)
        import torch
        from torch import nn

        torch.manual_seed(0)

        class TorchGenerator(nn.Module):
            def __init__(self):
                super().__init__()
                self.embedding = nn.Embedding(VOCAB, EMBED)
                self.lstm = nn.LSTM(EMBED, HIDDEN, num_layers=LAYERS, batch_first=True)
                self.head = nn.Linear(HIDDEN, VOCAB)

            def forward(self, tokens):
                x, _ = self.lstm(self.embedding(tokens))
                return self.head(x)

        model = TorchGenerator().float()
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)

        def step(tokens, mask):
            tokens, mask = torch.from_numpy(tokens).long(), torch.from_numpy(mask)
            logits = model(tokens)
            targets, weights = tokens[:, 1:], mask[:, 1:].float()
            losses = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), targets.reshape(-1),
                                                 reduction="none")
            loss = (losses * weights.reshape(-1)).sum() / weights.sum().clamp(min=1.0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            optimizer.step()
            return loss.item()  # the step is synchronous on CPU; this is the loss as a float

        self.step, self.all_tokens = step, tokens
        t = time.perf_counter()
        first_loss = step(tokens[0], mask[0])  # builds the oneDNN primitives
        first = time.perf_counter() - t
        warm = run_steps(step, tokens, mask, 1, warmup)
        self.info.update({"first_step_seconds": first, "warmup_losses": [first_loss] + warm["losses"],
                          "torch": torch.__version__, "num_threads": torch.get_num_threads(),
                          "mkldnn": bool(torch.backends.mkldnn.is_available())})

    def _run(self, n: int) -> dict:
        return run_steps(self.step, self.all_tokens, self.mask, self.cursor, self.cursor + n)


# ---------------------------------------------------------------------------------------------


EXPLORE = [  # (label, variant): candidate speed-ups of our step that keep the model's math
    ("nn.RNN(unroll=2)", {"unroll": 2}),
    ("nn.RNN(unroll=4)", {"unroll": 4}),
    ("input projection hoisted out of the scan", {"hoisted": True}),
    ("hoisted + hand-written LSTM backward (custom_vjp)", {"hoisted": True, "custom_vjp": True}),
    ("hoisted + custom_vjp + unroll=2", {"hoisted": True, "custom_vjp": True, "unroll": 2}),
    ("XLA_FLAGS=--xla_cpu_use_onednn=true", {"xla_flags": "--xla_cpu_use_onednn=true"}),
    ("XLA_FLAGS=--xla_cpu_use_xnnpack=true", {"xla_flags": "--xla_cpu_use_xnnpack=true"}),
]


def throughput(s: dict) -> str:
    return (f"{s['tokens_per_second']:.0f} tok/s over all timed steps, {s['best_step_tokens_per_second']:.0f} "
            f"in the fastest step; {s['tokens_per_cpu_second']:.0f} tok per CPU-second")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20, help="timed steps on each side")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation)")
    parser.add_argument("--rounds", type=int, default=4, help="the sides take turns: steps/rounds steps a turn")
    parser.add_argument("--cache-dir", help="corpus cache (default: ganmusic's, ~/.cache/ganmusic)")
    parser.add_argument("--explore", action="store_true", help="also time candidate speed-ups of our step")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    args = parser.parse_args()
    if min(args.steps, args.warmup, args.rounds, args.batch, args.window) < 1:
        parser.error("--steps, --warmup, --rounds, --batch and --window must be >= 1")
    rounds = min(args.rounds, args.steps)
    chunks = [len(c) for c in np.array_split(np.arange(args.steps), rounds)]

    tokens_all, mask_all, source = make_batches(args.warmup + args.steps, args.batch, args.window, args.cache_dir)
    children: list[OursChild] = []
    with tempfile.TemporaryDirectory() as tmp:
        batches_file = str(Path(tmp) / "batches.npz")
        np.savez(batches_file, tokens=tokens_all, mask=mask_all)
        try:
            ours = OursChild("ours", mask_all, args.warmup, batches_file, {})
            children.append(ours)
            explored, failed = [], []
            for label, variant in EXPLORE if args.explore else []:
                try:
                    explored.append(OursChild(label, mask_all, args.warmup, batches_file, variant))
                    children.append(explored[-1])
                except RuntimeError as exc:
                    failed.append((label, variant, str(exc).splitlines()[-1][:200]))

            torch_side, torch_note = None, ""
            if args.no_torch:
                torch_note = "skipped (--no-torch)"
            else:
                try:
                    import torch  # noqa: F401
                except ImportError:
                    torch_note = "skipped: torch is not importable (benchmark-only dependency)"
                else:
                    torch_side = TorchSide(tokens_all, mask_all, args.warmup)

            sides = [ours] + ([torch_side] if torch_side else []) + explored
            for n in chunks:  # take turns, so that other load on the machine falls on all alike
                for side in sides:
                    side.run(n)
            ours.forward()
        finally:
            for child in children:
                child.close()

    o = ours.summary()
    t = torch_side.summary() if torch_side else None
    per_step = args.batch * args.window
    cpus = os.cpu_count() or 1
    rows = [
        ("batches", f"{args.batch} x {args.window}, {source}", ""),
        ("valid tokens per step (mean)", f"{mask_all.sum() / len(mask_all):.0f} of {per_step}", ""),
        ("timed steps per side", f"{args.steps}, in {rounds} alternating turns, after {args.warmup} warm-up "
                                 "steps (compilation)", ""),
        ("ours: JAX MLE step (make_mle_step, jit, donated state)",
         f"{throughput(o)}; compile + first step {o['first_step_seconds']:.0f} s", ""),
    ]
    ratios = {}
    if t:
        ratios = {"all_steps": o["tokens_per_second"] / t["tokens_per_second"],
                  "fastest_step": o["best_step_tokens_per_second"] / t["best_step_tokens_per_second"],
                  "per_cpu_second": o["tokens_per_cpu_second"] / t["tokens_per_cpu_second"]}
        rows += [
            (f"PyTorch {t['torch']} nn.LSTM ({'oneDNN, ' if t['mkldnn'] else ''}"
             f"torch.get_num_threads() = {t['num_threads']})", throughput(t), ""),
            ("ratio ours / PyTorch", f"{ratios['all_steps']:.2f}x over all timed steps, {ratios['fastest_step']:.2f}x "
                                     f"fastest step vs fastest step, {ratios['per_cpu_second']:.2f}x per CPU-second",
             ">= 1.0x"),
        ]
    else:
        rows.append(("PyTorch nn.LSTM", torch_note, ""))
    rows.append((f"peak RSS of our training (child process, {args.batch} x {args.window})",
                 f"{o['peak_rss_mib']:.0f} MiB", f"< {PEAK_RSS_TARGET_MIB} MiB"))
    rows.append(("loss, first warm-up step -> last timed step (ours / PyTorch)",
                 f"{o['first_loss']:.3f} -> {o['last_loss']:.3f}"
                 + (f" / {t['first_loss']:.3f} -> {t['last_loss']:.3f}" if t else ""), "finite"))
    loads = [load for side in sides for load in side.loads]
    rows.append((f"load average (1 min) at each turn, {cpus} CPUs",
                 f"{min(loads):.1f} to {max(loads):.1f}"
                 + (" (other processes competed for the CPUs: wall-clock numbers are noisy, the fastest-step "
                    "ones are closest to an idle machine)" if max(loads) > cpus + 0.5 else ""), ""))
    explore_results = []
    for side in explored:
        s = side.summary()
        explore_results.append({**side.variant, **s})
        vs = (f"; {s['best_step_tokens_per_second'] / t['best_step_tokens_per_second']:.2f}x PyTorch (fastest steps)"
              if t else "")
        check = s.get("check")
        same = f"; grads vs flax: max rel diff {check['max_rel_grad_diff']:.0e}" if check else ""
        rows.append((f"explore: {side.label}",
                     f"vs ours: {s['best_step_tokens_per_second'] / o['best_step_tokens_per_second']:.2f}x fastest step "
                     f"({s['best_step_tokens_per_second']:.0f} tok/s), "
                     f"{s['tokens_per_cpu_second'] / o['tokens_per_cpu_second']:.2f}x per CPU-second, "
                     f"{s['tokens_per_second'] / o['tokens_per_second']:.2f}x over all steps{vs}; "
                     f"peak RSS {s['peak_rss_mib']:.0f} MiB{same}", ""))
    for label, variant, error in failed:
        explore_results.append({**variant, "label": label, "error": error})
        rows.append((f"explore: {label}", f"failed: {error}", ""))
    rows.append(("what limits ours",
                 f"the recurrence: per layer, {args.window} sequential [{args.batch} x {HIDDEN}] x [{HIDDEN} x "
                 f"{4 * HIDDEN}] matmuls in an XLA while loop, forward and again backward (the forward pass alone: "
                 f"{o['forward_seconds_min']:.2f} s of the fastest {min(o['step_seconds']):.2f} s step; ours used "
                 f"{o['cpu_seconds'] / o['seconds']:.2f} CPU-s per wall-s"
                 + (f", PyTorch {t['cpu_seconds'] / t['seconds']:.2f}" if t else "")
                 + "). PyTorch runs oneDNN's fused LSTM (mkldnn_rnn_layer) on OpenMP threads"
                 + (f": faster when the cores are free, far slower when other processes compete for them (its "
                    f"steps took {min(t['step_seconds']):.2f} to {max(t['step_seconds']):.2f} s, ours "
                    f"{min(o['step_seconds']):.2f} to {max(o['step_seconds']):.2f} s)" if t else ""), ""))

    results = {"batch": args.batch, "window": args.window, "steps": args.steps, "warmup": args.warmup,
               "rounds": rounds, "data": source, "ours": o, "torch": t, "torch_note": torch_note,
               "ratio_ours_over_torch": ratios, "explore": explore_results}
    os.environ.setdefault("COLUMNS", "200")  # rich wraps the table at 80 columns when piped
    report("train_bench", f"MLE training throughput, 2x{HIDDEN} LSTM generator", rows, results)
    ok = (all(r >= 1.0 for r in ratios.values()) and o["peak_rss_mib"] < PEAK_RSS_TARGET_MIB and o["finite"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
