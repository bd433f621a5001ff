"""Step time of the pmapped training steps on 1 and on 8 devices at the same global batch.

Both runs are on the CPU (`JAX_PLATFORMS=cpu`, whatever accelerator the machine has), the 8
devices simulated (`XLA_FLAGS=--xla_force_host_platform_device_count=8`) on the same cores, so
this shows the overhead of splitting a step, not a speed-up. Each configuration runs in its own
process (the device count is fixed when JAX starts).

    python benchmarks/pmap_bench.py [--batch 32] [--window 128] [--steps 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report, run_child  # noqa: E402

CHILD = r"""
import json, os, sys, time
force, devices, batch, window, steps = (int(a) for a in sys.argv[1:6])
os.environ["JAX_PLATFORMS"] = "cpu"  # forced host devices are CPU devices
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={force}"
import jax, numpy as np
from ganmusic import gan, mle, runs, train
from ganmusic.encoding import EncodingConfig, Grammar, Vocab
from ganmusic.gan import AdvConfig, make_adv_step
from ganmusic.models import ClassifierConfig, Generator, GeneratorConfig, StyleClassifier

vocab = Vocab(EncodingConfig())
gen_config = GeneratorConfig(vocab_size=vocab.size, layers=(256, 256))
config = runs.RunConfig(data="-", generator=gen_config, window=window, batch_size=batch, mle_steps=1,
                         adv=AdvConfig(steps=1, classifier="-"))
gen, disc_model = Generator(gen_config), StyleClassifier(ClassifierConfig.for_vocab(vocab, hidden=64))
disc_window = 64
rng = np.random.default_rng(0)
def tokens(n, w):
    return rng.integers(3, vocab.size, (n, w)).astype(np.int32), np.ones((n, w), bool)
mle_tokens, mle_mask = tokens(batch, window)
real_tokens, real_mask = tokens(batch, disc_window)
other_tokens, other_mask = tokens(batch, disc_window)
batch_dict = dict(mle_tokens=mle_tokens, mle_mask=mle_mask, real_tokens=real_tokens, real_mask=real_mask,
                  other_tokens=other_tokens, other_mask=other_mask, example_ids=np.arange(batch, dtype=np.int32))
disc_params = disc_model.init(jax.random.PRNGKey(1), real_tokens[:1])["params"]
mle_state = mle.init_state(gen, train.mle_optimizer(config), config.seed)
g_opt, d_opt = train.adv_optimizers(config)
adv_state = gan.init_adv_state(mle_state.gen, disc_params, g_opt, d_opt, config.seed)
parallel = train.Parallel(devices)
steps_fns = {
    "mle": (parallel.pmap(mle.make_mle_step(gen, train.mle_optimizer(config), parallel.axis)), mle_state),
    "adversarial": (parallel.pmap(make_adv_step(gen, disc_model, Grammar(vocab), g_opt, d_opt, config.adv,
                                                disc_window, parallel.axis)), adv_state),
}
out = {"devices": parallel.n, "platform": jax.devices()[0].platform}
for name, (fn, state) in steps_fns.items():
    state = parallel.replicate(state)
    sharded = parallel.shard(batch_dict)
    state, m = fn(state, sharded)  # compile
    jax.block_until_ready(m)
    t = time.perf_counter()
    for _ in range(steps):
        state, m = fn(state, sharded)
    jax.block_until_ready(m)
    out[name] = (time.perf_counter() - t) / steps
print(json.dumps(out))
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    common = [str(args.batch), str(args.window), str(args.steps)]
    one = run_child(CHILD, "1", "1", *common)
    eight = run_child(CHILD, "8", "8", *common)
    rows = []
    for phase in ("mle", "adversarial"):
        rows.append((f"{phase} step, 1 device", f"{one[phase]:.3f} s", ""))
        rows.append((f"{phase} step, 8 devices", f"{eight[phase]:.3f} s",
                     f"{one[phase] / eight[phase]:.2f}x of 1 device"))
    rows.append(("note", "8 simulated CPU devices on this machine's cores: overhead, not speed-up", ""))
    report("pmap_bench", f"pmapped steps, global batch {args.batch}, window {args.window}, 2x256 LSTM", rows,
           {"one_device": one, "eight_devices": eight, "args": vars(args)},
           columns=("metric", "seconds per step", "ratio"))


if __name__ == "__main__":
    main()
