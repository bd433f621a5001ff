"""Two processes under `jax.distributed` on 127.0.0.1 (4 forced CPU devices each, gloo
collectives) train exactly like one process on 8 forced CPU devices, and only process 0 writes."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import make_tiny_corpus
from ganmusic import classify, data, runs
from ganmusic.models import ClassifierConfig

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 480  # seconds for the training processes: a hung collective fails the test, never the suite


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_env(devices: int, cache: Path) -> dict:
    """JAX on the CPU with `devices` forced host devices, whatever accelerator the machine has
    (and a quicker, less optimizing compiler: the same for both runs, so they stay comparable)."""
    flags = (f"--xla_force_host_platform_device_count={devices} --xla_backend_optimization_level=0 "
             "--xla_llvm_disable_expensive_passes=true")
    return {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags, "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo",
            "GANMUSIC_CACHE": str(cache)}


def finish(procs: dict) -> dict:
    """Wait for every process (killing all of them at the timeout); name the first that failed."""
    outs, deadline = {}, time.monotonic() + TIMEOUT
    try:
        for name, proc in procs.items():
            outs[name] = proc.communicate(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        for proc in procs.values():
            proc.kill()
        logs = {name: proc.communicate()[1][-1500:] for name, proc in procs.items()}
        pytest.fail(f"a training process ran past {TIMEOUT} s: {logs}")
    for name, proc in procs.items():
        assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{outs[name][1][-3000:]}"
    return outs


def test_two_processes_train_like_one_process_on_8_devices(tmp_path):
    corpus_root = make_tiny_corpus(tmp_path / "corpus")
    cache = tmp_path / "cache"
    corpus = data.load_corpus(corpus_root, cache_dir=cache, progress=False)  # parsed once, read by all
    clf = tmp_path / "classifier"
    classify.train_classifier(corpus, clf, ClassifierConfig.for_vocab(corpus.vocab, embed_dim=8, hidden=8, layers=1),
                              classify.TrainConfig(window=24, steps=4, batch_size=8, eval_every=4, warmup=1),
                              progress=False)
    args = ["-m", "ganmusic", "train-gan", str(corpus_root), "--name", "run", "--layers", "16", "--embed-dim", "8",
            "--window", "24", "--batch-size", "8", "--mle-steps", "2", "--adv-steps", "2", "--classifier", str(clf),
            "--adv-windows", "1", "--eval-every", "1", "--checkpoint-every", "2", "--seed", "4", "--calibrate", "0"]

    # Reference: one process, 8 devices. Beside it two processes, 4 devices each, the same global
    # batch; process 0 also writes samples (at step 4).
    procs = {}
    (tmp_path / "one").mkdir()
    procs["one process"] = subprocess.Popen([sys.executable, *args, "--sample-every", "0", "--root", "runs"],
                                            env=cpu_env(8, cache), cwd=tmp_path / "one", stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True)
    port = free_port()
    for pid in (0, 1):
        cwd = tmp_path / f"p{pid}"
        cwd.mkdir()
        # Each process gets its own --root: process 1 must write nothing there (nor in its working folder).
        procs[f"process {pid}"] = subprocess.Popen(
            [sys.executable, *args, "--sample-every", "2", "--root", "runs", "--coordinator", f"127.0.0.1:{port}",
             "--num-processes", "2", "--process-id", str(pid)],
            env=cpu_env(4, cache), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outs = finish(procs)

    assert list((tmp_path / "p1").iterdir()) == [], "process 1 wrote files"
    assert "process 1 of 2 finished at step 4" in outs["process 1"][1]
    one, two = tmp_path / "one" / "runs" / "run", tmp_path / "p0" / "runs" / "run"
    assert {p.name for p in two.iterdir()} == {p.name for p in one.iterdir()} | {"samples"}
    assert sorted(p.name for p in (two / "samples").iterdir()) == ["000004"]
    rows_one, rows_two = (runs.MetricsLog.read(d / "metrics.jsonl") for d in (one, two))
    assert [r["step"] for r in rows_two] == [r["step"] for r in rows_one] == [1, 2, 3, 4]
    assert [r["phase"] for r in rows_two] == ["mle"] * 2 + ["adv"] * 2
    for a, b in zip(rows_one, rows_two):
        # Step 4 reads weights one adversarial update apart, which differ between the layouts (below),
        # so its losses agree less closely (measured: 5e-4 with the pitch-memory scores). Step 3, the
        # first adversarial step, samples from the MLE weights (equal to 2e-5): its losses agreed to
        # 2e-5 until the register scores, 1.5e-4 since (g_adv_loss; sampling compounds the MLE
        # weights' difference over the sequence). The MLE steps: 2e-5.
        rtol = 2e-3 if a["step"] == 4 else 5e-4 if a["phase"] == "adv" else 2e-5
        for key in ("mle_loss", "grad_norm", "g_loss", "g_adv_loss", "d_loss", "d_generated", "val_nll"):
            if key in a:
                np.testing.assert_allclose(b[key], a[key], rtol=rtol, atol=1e-6, err_msg=f"step {a['step']} {key}")
    assert rows_one[3]["d_loss"] != rows_one[2]["d_loss"]  # the adversarial steps moved
    # The weights at the end of the MLE phase agree too. (The adversarial phase's final weights are
    # compared through its losses only: measured, 23% of the generator's weights differed by up to
    # 3.6e-4 after 2 adversarial steps while every logged loss agreed to 4e-6; not yet explained. A
    # guess not yet checked: Adam's first steps move each weight by about lr * sign(gradient), so
    # gradients that are rounding noise in one layout move weights by +-lr = 1e-4 either way.)
    for x, y in zip(*(jax_leaves(runs.restore_params(d, "2")[1]) for d in (one, two))):
        np.testing.assert_allclose(y, x, rtol=0, atol=1e-5)
    config = json.loads((two / "config.json").read_text())
    assert config == {**json.loads((one / "config.json").read_text()), "adv": {**config["adv"], "sample_every": 2}}


def jax_leaves(tree):
    import jax

    return [np.asarray(x) for x in jax.tree.leaves(tree)]
