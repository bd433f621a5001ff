"""Maximum-likelihood (teacher-forcing) training throughput of the 2x256 LSTM generator, against
PyTorch on the same device.

Measures tokens/s of our real JAX training step (`mle.make_mle_step` over `models.Generator`,
jitted with donated state, as `train_run` runs it) and of a PyTorch reference with the same sizes
(`nn.Embedding(152, 128)` -> `nn.LSTM(128, 256, num_layers=2, batch_first=True)` ->
`nn.Linear(256, 152)`, masked cross-entropy, Adam 2e-3, gradient clipping at 1.0, float32), on
the same batches, in the same run, on the same device: JAX's default device, and `cuda` for
PyTorch when `torch.cuda.is_available()` (cuDNN's LSTM), else PyTorch's CPU (oneDNN). Both
devices are named in the table. Where JAX runs on an NVIDIA GPU, ours is timed on both of the
generator's full-sequence paths: "cudnn" (`jax.experimental.rnn.lstm`, what training uses there)
and "scan" (what it uses on a CPU); on a CPU only "scan" exists. Beside them, on a GPU, the
ceiling of any step built on cuDNN: the two LSTM layers alone, forward and backward (no
embedding gradient, head, loss, clipping or optimizer), whose ratio to PyTorch bounds ours.

Tokens are the valid (unpadded) positions of each batch, counted as the training loop counts
them (`mask.sum()`). Compilation and warm-up steps are excluded; every timed step waits for its
loss (`float(loss)` / `loss.item()`), so no work is left in flight when the clock stops. Each of
our paths runs in a child process (its peak resident memory is its own); the sides take turns,
`--rounds` chunks of steps each, so that other load on a shared machine falls on all alike; the
table gives tokens/s over all timed steps and of the fastest step (what an otherwise idle
machine gives), and tokens per CPU-second. Targets: on a GPU ours >= 1.05x PyTorch (cuDNN) at
batch 64, 256 and 1024; on a CPU not slower than before (0.75-0.88x PyTorch oneDNN on 2 cores);
peak RSS < 3 GiB at batch 64, window 256. PyTorch is a benchmark-only dependency
(`pip install -e '.[bench]'`); when it is not importable the script measures our side alone and
says so.

    python benchmarks/train_bench.py [--batch 64,256,1024] [--window 256] [--steps N] [--rounds 4]

Defaults: on a GPU batches 64, 256 and 1024 with 30 timed steps each; on a CPU batch 64 with 20
(a 2-core CPU needs about 2.5 s a step at batch 64, so larger batches take long; ask for them).
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
CEILING = "lstm-alone"  # on a GPU: the cuDNN LSTM layers alone, forward and backward


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


CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
from train_bench import ours_child
ours_child(sys.argv[2])
"""


def ours_child(spec_json: str) -> None:
    """Child process: build, compile and warm up our MLE step on one full-sequence path, then
    answer commands on stdin (`run N`: time the next N batches; `exit`: peak RSS)."""
    import resource

    spec = json.loads(spec_json)
    import jax

    from ganmusic import mle
    from ganmusic.configs import GeneratorConfig, RunConfig
    from ganmusic.encoding import EncodingConfig, Vocab
    from ganmusic.models import Generator

    def reply(obj):
        print(REPLY + json.dumps(obj), flush=True)

    loaded = np.load(spec["batches"])
    all_tokens, all_mask = loaded["tokens"], loaded["mask"]
    warmup = spec["warmup"]

    gen_config = GeneratorConfig(vocab_size=Vocab(EncodingConfig()).size, layers=(HIDDEN,) * LAYERS,
                                 cell="lstm", embed_dim=EMBED)
    config = RunConfig(data="bench", generator=gen_config, window=all_tokens.shape[2],
                       batch_size=all_tokens.shape[1], lr=LR, optimizer="adam", clip=CLIP)
    model = Generator(gen_config, lstm_path="cudnn" if spec["path"] == CEILING else spec["path"])
    optimizer = mle.make_optimizer(config.optimizer, config.lr, config.clip, config.weight_decay)
    state = mle.init_state(model, optimizer, config.seed)
    if spec["path"] == CEILING:
        step = lstm_alone_step(state.gen)
    else:
        step_fn = jax.jit(mle.make_mle_step(model, optimizer), donate_argnums=0)

        def step(tokens, mask):
            nonlocal state
            state, metrics = step_fn(state, {"mle_tokens": tokens, "mle_mask": mask})
            return float(metrics["mle_loss"])  # waits for the step, as train_run does

    t = time.perf_counter()
    first_loss = step(all_tokens[0], all_mask[0])  # compiles
    first = time.perf_counter() - t
    warm = run_steps(step, all_tokens, all_mask, 1, warmup)
    device = jax.devices()[0]
    reply({"first_step_seconds": first, "warmup_losses": [first_loss] + warm["losses"],
           "device": f"{device} ({device.device_kind})", "jax": jax.__version__})

    cursor = warmup
    for line in sys.stdin:
        command = line.split()
        if command[0] == "run":
            n = int(command[1])
            reply(run_steps(step, all_tokens, all_mask, cursor, cursor + n))
            cursor += n
        else:
            jax.block_until_ready(state)
            reply({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
            return


def lstm_alone_step(params):
    """The ceiling of any training step on cuDNN: the two LSTM layers alone, forward and backward
    (`jax.experimental.rnn.lstm`, gradients of the weights and the inputs), on the embedded
    tokens; no head, loss, clipping or optimizer."""
    import jax
    import jax.numpy as jnp

    from ganmusic.models import lstm_layers_fullseq

    cells = [params[f"cells_{i}"] for i in range(LAYERS)]

    @jax.jit
    def grads(cells, embedding, tokens):
        def total(cells, x):
            return lstm_layers_fullseq(cells, x, "cudnn").sum()
        return jax.grad(total, argnums=(0, 1))(cells, jnp.take(embedding, tokens, axis=0))

    def step(tokens, mask):
        g = grads(cells, params["embedding"], tokens)
        return float(jnp.sum(g[1][0, 0]))  # waits for the step
    return step


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
    def __init__(self, path: str, mask: np.ndarray, warmup: int, batches_file: str):
        super().__init__(f"ours ({path})", mask, warmup)
        self.path = path
        self.stderr = tempfile.TemporaryFile(mode="w+")
        spec = {"batches": batches_file, "warmup": warmup, "path": path}
        # On a GPU the three children and PyTorch share the one device: a child takes memory as it
        # needs it, up to 28% (preallocated at 30% each, PyTorch ran out on an 80 GB H100; at 20%
        # our step at batch 1024, 17.4 GiB, did).
        env = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.28", **os.environ}
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(BENCH_DIR), json.dumps(spec)], cwd=REPO, env=env,
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

    def close(self) -> None:
        if self.proc.poll() is None:
            self.info.update(self._ask("exit"))
            self.proc.wait()
        self.stderr.close()


class TorchSide(Side):
    """The PyTorch reference, in this process, on `cuda` when available, else the CPU."""

    def __init__(self, tokens: np.ndarray, mask: np.ndarray, warmup: int):
        super().__init__("PyTorch", mask, warmup)
        import torch
        from torch import nn

        torch.manual_seed(0)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

        class TorchGenerator(nn.Module):
            def __init__(self):
                super().__init__()
                self.embedding = nn.Embedding(VOCAB, EMBED)
                self.lstm = nn.LSTM(EMBED, HIDDEN, num_layers=LAYERS, batch_first=True)
                self.head = nn.Linear(HIDDEN, VOCAB)

            def forward(self, tokens):
                x, _ = self.lstm(self.embedding(tokens))
                return self.head(x)

        model = TorchGenerator().float().to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)

        def step(tokens, mask):
            tokens = torch.from_numpy(tokens).long().to(device)
            mask = torch.from_numpy(mask).to(device)
            logits = model(tokens)
            targets, weights = tokens[:, 1:], mask[:, 1:].float()
            losses = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), targets.reshape(-1),
                                                 reduction="none")
            loss = (losses * weights.reshape(-1)).sum() / weights.sum().clamp(min=1.0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            optimizer.step()
            return loss.item()  # waits for the step (on a GPU too)

        self.step, self.all_tokens = step, tokens
        t = time.perf_counter()
        first_loss = step(tokens[0], mask[0])  # builds the oneDNN / cuDNN primitives
        first = time.perf_counter() - t
        warm = run_steps(step, tokens, mask, 1, warmup)
        if device.type == "cuda":
            name = f"cuda ({torch.cuda.get_device_name(device)}; cuDNN {torch.backends.cudnn.version()})"
        else:
            name = (f"cpu ({'oneDNN, ' if torch.backends.mkldnn.is_available() else ''}"
                    f"torch.get_num_threads() = {torch.get_num_threads()})")
        self.info.update({"first_step_seconds": first, "warmup_losses": [first_loss] + warm["losses"],
                          "torch": torch.__version__, "device": name, "device_type": device.type})

    def _run(self, n: int) -> dict:
        return run_steps(self.step, self.all_tokens, self.mask, self.cursor, self.cursor + n)


# ---------------------------------------------------------------------------------------------


def throughput(s: dict) -> str:
    return (f"{s['tokens_per_second']:.0f} tok/s over all timed steps, {s['best_step_tokens_per_second']:.0f} "
            f"in the fastest step; {s['tokens_per_cpu_second']:.0f} tok per CPU-second")


def torch_status() -> tuple[bool, str]:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False, "skipped: torch is not importable (benchmark-only: pip install -e '.[bench]')"
    return True, ""


def jax_backend() -> str:
    """The default JAX backend, asked in a child so this process never holds the GPU for JAX
    (PyTorch uses it here)."""
    code = "import jax, json; print(json.dumps({'backend': jax.default_backend()}))"
    from common import run_child

    return run_child(code)["backend"]


def measure_batch(batch: int, args, paths: list[str], use_torch: bool, torch_note: str) -> dict:
    """Every side at one batch size, taking turns; returns summaries and ratios."""
    rounds = min(args.rounds, args.steps)
    chunks = [len(c) for c in np.array_split(np.arange(args.steps), rounds)]
    tokens_all, mask_all, source = make_batches(args.warmup + args.steps, batch, args.window, args.cache_dir)
    children: list[OursChild] = []
    with tempfile.TemporaryDirectory() as tmp:
        batches_file = str(Path(tmp) / "batches.npz")
        np.savez(batches_file, tokens=tokens_all, mask=mask_all)
        try:
            for path in paths:
                children.append(OursChild(path, mask_all, args.warmup, batches_file))
            torch_side = TorchSide(tokens_all, mask_all, args.warmup) if use_torch else None
            sides = children + ([torch_side] if torch_side else [])
            for n in chunks:  # take turns, so that other load on the machine falls on all alike
                for side in sides:
                    side.run(n)
        finally:
            for child in children:
                child.close()
    ours = {child.path: child.summary() for child in children}
    t = torch_side.summary() if torch_side else None
    ratios = {}
    if t:
        for path, o in ours.items():
            ratios[path] = {"all_steps": o["tokens_per_second"] / t["tokens_per_second"],
                            "fastest_step": o["best_step_tokens_per_second"] / t["best_step_tokens_per_second"],
                            "per_cpu_second": o["tokens_per_cpu_second"] / t["tokens_per_cpu_second"]}
    loads = [load for side in sides for load in side.loads]
    return {"batch": batch, "window": args.window, "data": source, "valid_tokens_per_step": float(mask_all.sum() / len(mask_all)),
            "steps": args.steps, "warmup": args.warmup, "rounds": rounds, "ours": ours, "torch": t,
            "torch_note": torch_note, "ratio_ours_over_torch": ratios, "load_average_1min": [min(loads), max(loads)]}


def rows_for(result: dict, gpu: bool) -> list[tuple[str, str, str]]:
    b, w = result["batch"], result["window"]
    rows = [(f"batch {b}: batches", f"{b} x {w}, {result['data']}; {result['valid_tokens_per_step']:.0f} valid "
             f"tokens per step; {result['steps']} timed steps per side in {result['rounds']} alternating turns "
             f"after {result['warmup']} warm-up steps", "")]
    t = result["torch"]
    for path, o in result["ours"].items():
        what = ("the ceiling: the LSTM layers alone, forward and backward (rnn.lstm)" if path == CEILING else
                f"ours, {path} path (make_mle_step, jit, donated state)")
        rows.append((f"batch {b}: {what} on {o['device']}",
                     f"{throughput(o)}; compile + first step {o['first_step_seconds']:.0f} s; peak RSS "
                     f"{o['peak_rss_mib']:.0f} MiB", f"RSS < {PEAK_RSS_TARGET_MIB} MiB" if b == 64 else ""))
    if t:
        rows.append((f"batch {b}: PyTorch {t['torch']} nn.LSTM on {t['device']}", throughput(t), ""))
        for path, r in result["ratio_ours_over_torch"].items():
            rows.append((f"batch {b}: {'LSTM alone' if path == CEILING else f'ours ({path})'} / PyTorch",
                         f"{r['all_steps']:.2f}x over all timed steps, {r['fastest_step']:.2f}x fastest step vs "
                         f"fastest step, {r['per_cpu_second']:.2f}x per CPU-second",
                         "" if path == CEILING else ">= 1.05x (GPU)" if gpu else "not below 0.75-0.88x (2-core CPU, before)"))
    else:
        rows.append((f"batch {b}: PyTorch nn.LSTM", result["torch_note"], ""))
    lo, hi = result["load_average_1min"]
    cpus = os.cpu_count() or 1
    rows.append((f"batch {b}: load average (1 min) at each turn, {cpus} CPUs", f"{lo:.1f} to {hi:.1f}"
                 + (" (other processes competed for the CPUs: wall-clock numbers are noisy, the fastest-step "
                    "ones are closest to an idle machine)" if hi > cpus + 0.5 else ""), ""))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", help="batch sizes, comma-separated (default: 64,256,1024 on a GPU, 64 on a CPU)")
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--steps", type=int, help="timed steps on each side (default: 30 on a GPU, 20 on a CPU)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation)")
    parser.add_argument("--rounds", type=int, default=4, help="the sides take turns: steps/rounds steps a turn")
    parser.add_argument("--cache-dir", help="corpus cache (default: ganmusic's, ~/.cache/ganmusic)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    args = parser.parse_args()
    backend = jax_backend()
    gpu = backend == "gpu"
    batches = [int(b) for b in (args.batch or ("64,256,1024" if gpu else "64")).split(",")]
    args.steps = args.steps or (30 if gpu else 20)
    if min(args.steps, args.warmup, args.rounds, args.window, *batches) < 1:
        parser.error("--steps, --warmup, --rounds, --batch and --window must be >= 1")
    use_torch, torch_note = (False, "skipped (--no-torch)") if args.no_torch else torch_status()
    # Both full-sequence paths of the generator where cuDNN exists; the scan alone elsewhere.
    paths = ["cudnn", "scan", CEILING] if gpu else ["scan"]

    results, rows = [], []
    for batch in batches:
        result = measure_batch(batch, args, paths, use_torch, torch_note)
        results.append(result)
        rows += rows_for(result, gpu)
    same = [r["torch"]["device_type"] == ("cuda" if gpu else "cpu") for r in results if r["torch"]]
    if same and not all(same):
        rows.append(("WARNING", f"JAX runs on {backend} but PyTorch on the CPU: not the same device (install a "
                                "CUDA build of torch for a fair comparison)", ""))
    os.environ.setdefault("COLUMNS", "200")  # rich wraps the table at 80 columns when piped
    report("train_bench", f"MLE training throughput, 2x{HIDDEN} LSTM generator, JAX backend {backend}", rows,
           {"backend": backend, "paths": paths, "batches": results,
            # headline for run_all: the automatic path at the first batch size
            "ratio_ours_over_torch": results[0]["ratio_ours_over_torch"].get(paths[0], {}).get("fastest_step"),
            "peak_rss_mib": results[0]["ours"][paths[0]]["peak_rss_mib"]})
    target = 1.05 if gpu else 0.75
    ok = all(o["finite"] for r in results for o in r["ours"].values())
    ok = ok and all(r["ours"][paths[0]]["peak_rss_mib"] < PEAK_RSS_TARGET_MIB for r in results if r["batch"] <= 64)
    ok = ok and all(r["ratio_ours_over_torch"][paths[0]]["fastest_step"] >= target for r in results if r["torch"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
