"""Sampling speed: the compiled scan against a Python loop of jitted steps.

A randomly initialised 2x256 LSTM (embedding 128, the default 152-token vocabulary) samples 64
sequences of 1024 tokens with `sampling.sample` (one `lax.scan`, timed after a warm-up call) and with `sampling.sample_python_loop` (one jitted step per token from Python).
The loop is timed over 128 steps and scaled per token, since its 1024 steps would take long.
Step t's randomness depends on (rng, t) only, so the loop's 128 tokens must equal the first 128
of the scan's 1024, which is checked.
The same is measured for a single sequence, where per-call overhead, not arithmetic, dominates.
As a floor, the network alone is timed in the same kind of scan with the tokens given (no
sampling, no feedback); the loop's time per token over that floor is the largest ratio any scan
could reach here (at batch 64 on a CPU the arithmetic, not the loop's per-call overhead, dominates).
The headline is the scan's share of that ceiling, network-alone time / scan time (1.0: sampling
costs nothing beyond the network); target >= 0.8 at batch 64 on a GPU. The scan's time is a whole
`sample` call, as a user pays it; beside it, the compiled scan alone on a state made beforehand,
so that what a call spends before and after its scan shows (on an H100 a call once spent about
3.8 ms there: eager array ops that made the start state). It runs on JAX's default
device, named in the table. The machine may be shared: the load average is reported with the times.
What the sampler adds per step is also listed from the compiled programs: the operations of each
per-step loop body (on a GPU about one kernel launch each, the cost that does not shrink with the
batch), and those the sampler has beyond the network alone's (on the 2-core CPU: the grammar
state's table lookup and a copy of the chosen tokens).

    python benchmarks/sample_bench.py [--repeats 3]
"""

from __future__ import annotations

import argparse
from collections import Counter
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ganmusic import sampling  # noqa: E402
from ganmusic.configs import SamplingConfig  # noqa: E402
from ganmusic.encoding import EncodingConfig, Grammar, Vocab  # noqa: E402
from ganmusic.models import Generator, GeneratorConfig, generator_initial_carry  # noqa: E402
from ganmusic.sampling import sample, sample_python_loop  # noqa: E402

LENGTH, LOOP_STEPS = 1024, 128


def best_of(repeats, fn):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), float(np.median(times))


def network_scan(cfg, num):
    """The recurrence alone, jitted: `Generator.step` over given tokens [LENGTH, num] in one scan."""
    model = Generator(cfg)

    @jax.jit
    def run(params, tokens):
        def body(carry, token):
            carry, logits = model.apply({"params": params}, carry, token, method="step")
            return carry, jnp.argmax(logits, -1)  # uses every logit, so nothing is skipped

        return jax.lax.scan(body, generator_initial_carry(cfg, num), tokens)[1]

    return run, jax.random.randint(jax.random.key(2), (LENGTH, num), 3, cfg.vocab_size)


def network_only(params, cfg, num, repeats):
    run, tokens = network_scan(cfg, num)
    jax.block_until_ready(run(params, tokens))
    return best_of(repeats, lambda: jax.block_until_ready(run(params, tokens)))[0]


FREE_OPS = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast"}  # no work of their own


def step_ops(compiled_hlo: str, carry_shape: str) -> list[str]:
    """The operations of the per-step loop of a compiled program (the while loop whose state holds
    `carry_shape`, e.g. "f32[64,256]"), as "opcode result-shape" (a custom call with its target):
    on a GPU each is about one kernel launch, the per-step cost that does not shrink with batch."""
    bodies, name = {}, None
    for line in compiled_hlo.splitlines():
        head = re.match(r"^(?:ENTRY )?%([\w.\-]+) .*\{\s*$", line)
        if head:
            name = head.group(1)
            bodies[name] = []
        elif line.startswith("}"):
            name = None
        elif name:
            bodies[name].append(line.strip())
    loops = re.findall(r"= (.*?) while\(.*?body=%([\w.\-]+)", compiled_hlo)
    [body] = [b for state, b in loops if carry_shape in state and not any(" while(" in x for x in bodies[b])]
    ops = []
    for line in bodies[body]:
        op = re.match(r"(?:ROOT )?%[\w.\-]+ = (.*?) ([\w\-]+)\(", line)
        if op and op.group(2) not in FREE_OPS:
            target = re.search(r'custom_call_target="([^"]+)"', line)
            shape = re.sub(r"\{[^}]*\}", "", op.group(1))  # without layouts
            ops.append(f"{op.group(2)} {shape}" + (f" {target.group(1)}" if target else ""))
    return ops


def loop_ops(params, cfg, enc, num) -> dict:
    """Operations per step in the compiled sampler and in the network-alone scan."""
    sampling_config = SamplingConfig()
    _, state = sampling._start(params, cfg, enc, num, None)
    sampler = sampling._sample_scan.lower(params, cfg, enc, sampling.static_filters(sampling_config),
                                          sampling.Knobs.of(sampling_config), state, jax.random.key(1), LENGTH)
    run, tokens = network_scan(cfg, num)
    carry = f"f32[{num},{cfg.layers[-1]}]"
    return {"sampler": step_ops(sampler.compile().as_text(), carry),
            "network_only": step_ops(run.lower(params, tokens).compile().as_text(), carry)}


def scan_alone(params, cfg, enc, num, rng):
    """The compiled scan of `sample`, on a start state and settings made once: no per-call setup."""
    sampling_config = SamplingConfig()
    _, state = sampling._start(params, cfg, enc, num, None)
    args = (params, cfg, enc, sampling.static_filters(sampling_config), sampling.Knobs.of(sampling_config))
    state, knobs = jax.device_put((state, args[-1]))
    return lambda: sampling._sample_scan(*args[:-1], knobs, state, rng, LENGTH)


def measure(params, cfg, enc, num, repeats):
    args = (params, cfg, enc)
    rng = jax.random.key(1)
    t = time.perf_counter()
    out = sample(*args, rng, num, LENGTH)  # warm-up: compiles
    first = time.perf_counter() - t
    scan_best, scan_median = best_of(repeats, lambda: sample(*args, rng, num, LENGTH))
    alone = scan_alone(params, cfg, enc, num, rng)
    jax.block_until_ready(alone())
    alone_best = best_of(repeats, lambda: jax.block_until_ready(alone()))[0]
    grammar = Grammar(Vocab(enc))
    assert all(grammar.is_grammatical(s) for s in out)

    loop = sample_python_loop(*args, rng, num, 2)  # warm-up: compiles the step
    loop_best, loop_median = best_of(repeats, lambda: sample_python_loop(*args, rng, num, LOOP_STEPS))
    loop = sample_python_loop(*args, rng, num, LOOP_STEPS)
    same = bool((loop == out[:, : LOOP_STEPS + 1]).all())
    scan_tok, loop_tok = scan_best / LENGTH, loop_best / LOOP_STEPS
    floor = network_only(params, cfg, num, repeats)
    return {"num": num, "length": LENGTH, "first_call_s": first, "scan_s": scan_best,
            "network_only_s": floor,
            # No sampler can step faster than the network alone: the largest loop/scan ratio any
            # scan could reach on this machine, at this batch.
            "speedup_ceiling": loop_tok / (floor / LENGTH),
            "scan_median_s": scan_median, "loop_steps": LOOP_STEPS, "loop_s": loop_best,
            "loop_median_s": loop_median, "scan_ms_per_step": 1e3 * scan_tok,
            "loop_ms_per_step": 1e3 * loop_tok, "loop_full_estimate_s": loop_tok * LENGTH,
            "speedup": loop_tok / scan_tok, "share_of_ceiling": floor / scan_best, "scan_equals_loop": same,
            "scan_alone_s": alone_best, "scan_alone_share_of_ceiling": floor / alone_best}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    enc = EncodingConfig()
    cfg = GeneratorConfig(vocab_size=Vocab(enc).size, layers=(256, 256), cell="lstm", embed_dim=128)
    params = jax.jit(Generator(cfg).init)(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))["params"]
    load_before = os.getloadavg()[0]
    batch = measure(params, cfg, enc, 64, args.repeats)
    single = measure(params, cfg, enc, 1, args.repeats)
    load_after = os.getloadavg()[0]
    ops = loop_ops(params, cfg, enc, 64)
    extra = sorted((Counter(ops["sampler"]) - Counter(ops["network_only"])).elements())

    b, o = batch, single
    device = str(jax.devices()[0])
    rows = [
        ("device (JAX default)", f"{device} ({jax.devices()[0].device_kind})", ""),
        ("64 x 1024: scan's share of the ceiling (network alone / scan)", f"{b['share_of_ceiling']:.2f}",
         ">= 0.80 on a GPU"),
        ("64 x 1024 tokens, compiled scan",
         f"{b['scan_s']:.2f} s ({b['scan_ms_per_step']:.2f} ms/step; median {b['scan_median_s']:.2f} s)", ""),
        ("  first call (compile + run)", f"{b['first_call_s']:.2f} s", ""),
        ("  its compiled scan alone, start state made beforehand", f"{b['scan_alone_s']:.2f} s "
         f"(share of the ceiling {b['scan_alone_share_of_ceiling']:.2f})", "the rest: the call's own setup"),
        ("  floor: the network alone, same scan", f"{b['network_only_s']:.2f} s", ""),
        (f"64 x {LOOP_STEPS} tokens, Python loop",
         f"{b['loop_s']:.2f} s ({b['loop_ms_per_step']:.2f} ms/step; 1024: ~{b['loop_full_estimate_s']:.1f} s)",
         ""),
        ("  loop / scan, per token", f"{b['speedup']:.1f}x", ""),
        ("  ceiling: loop / network alone, per token", f"{b['speedup_ceiling']:.1f}x",
         "what a zero-cost sampler would reach"),
        ("1 x 1024 tokens, compiled scan", f"{o['scan_s']:.3f} s ({o['scan_ms_per_step']:.3f} ms/step)", ""),
        (f"1 x {LOOP_STEPS} tokens, Python loop", f"{o['loop_s']:.3f} s ({o['loop_ms_per_step']:.3f} ms/step)", ""),
        ("  loop / scan, per token", f"{o['speedup']:.1f}x", ""),
        ("  ceiling: loop / network alone, per token", f"{o['speedup_ceiling']:.1f}x", ""),
        ("1 x 1024: scan's share of the ceiling", f"{o['share_of_ceiling']:.2f}", ""),
        ("operations per step, sampler / network alone", f"{len(ops['sampler'])} / {len(ops['network_only'])}",
         "on a GPU about one kernel each"),
        ("  the sampler's beyond the network's (JSON: all)", ", ".join(extra) or "none", ""),
        ("loop == scan's first 128 tokens", f"{b['scan_equals_loop'] and o['scan_equals_loop']}", "True"),
        ("load average (1 min) before / after", f"{load_before:.2f} / {load_after:.2f}", f"{os.cpu_count()} cpus"),
    ]
    report("sample_bench", f"sampling: 2x256 LSTM, vocab 152, best of {args.repeats}", rows,
           {"model": cfg.to_dict(), "device": device, "batch64": batch, "single": single, "step_ops": ops,
            "load_average": [load_before, load_after]})
    sys.exit(0 if b["scan_equals_loop"] and o["scan_equals_loop"] else 1)


if __name__ == "__main__":
    main()
