"""kill -9 at every moment of `train-gan` and `train-classifier`: before the first checkpoint,
while a checkpoint is being committed, after it, and during a classifier's final rename.

Each case runs the real command in a subprocess that SIGKILLs itself at the chosen moment, then
does what the user would: runs the same command again, and, only if its one-line message says
so, once more with `--resume`. The run must then complete, and a partial folder is never picked
up as a result (`score` without --classifier, `sample` of a run without a complete checkpoint).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_CLASSIFIER, TINY_GAN, make_tiny_corpus, run_cli
from ganmusic import runs

KILLER = r'''
import os, signal, sys
point = sys.argv[1]
calls = {"n": 0}

def die():
    os.kill(os.getpid(), signal.SIGKILL)

from ganmusic import checkpoints, windows
if point.startswith("batch="):
    at = int(point.split("=")[1])
    real_batch = windows.WindowSampler.batch
    def batch(self, k):
        if k == at:
            die()
        return real_batch(self, k)
    windows.WindowSampler.batch = batch
elif point.startswith("integrity="):
    at = int(point.split("=")[1])  # die on this call, after orbax committed the step
    real_write = checkpoints.write_integrity
    def write_integrity(step_dir):
        calls["n"] += 1
        if calls["n"] == at:
            die()
        return real_write(step_dir)
    checkpoints.write_integrity = write_integrity
elif point == "final_rename":
    real_replace = os.replace
    def replace(src, dst, *a, **kw):
        if str(src).endswith(".partial"):
            die()
        return real_replace(src, dst, *a, **kw)
    os.replace = replace
from ganmusic.cli import main
sys.argv = ["ganmusic", *sys.argv[2:]]
main()
'''


def killed(cwd: Path, point: str, *args) -> None:
    """Run `ganmusic ARGS` in a fresh process that kill -9s itself at `point`."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", KILLER, point, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, f"the kill point {point} was never reached:\n{proc.stderr[-2000:]}"


def again(cwd: Path, *args):
    """The same command again; with --resume when (and only when) its message asks for it."""
    first = run_cli(*args, cwd=cwd)
    if first.returncode == 0:
        return first
    assert first.returncode == 2 and "Traceback" not in first.stderr, first.stderr
    errors = [line for line in first.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "resume" in errors[0], first.stderr
    second = run_cli(*args, "--resume", cwd=cwd)
    assert second.returncode == 0, second.stderr
    return second


def corpus_and_finished(tmp_path_factory, prefix: str, *command) -> Path:
    """A folder holding the tiny corpus and what `command` wrote when it ran to the end."""
    cwd = tmp_path_factory.mktemp(prefix)
    make_tiny_corpus(cwd / "corpus")
    result = run_cli(*command, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return cwd


GAN = [*TINY_GAN, "--mle-steps", "8", "--eval-every", "4", "--checkpoint-every", "4", "--seed", "3"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A corpus and one uninterrupted run to compare every interrupted one with."""
    return corpus_and_finished(tmp_path_factory, "kill", "train-gan", "corpus", "--name", "reference", *GAN)


def val_curve(run_dir: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], round(r["val_nll"], 5)) for r in rows]


@pytest.mark.parametrize("point", ["batch=2", "integrity=2", "batch=6", "integrity=3"],
                         ids=["before_first_checkpoint", "committing_first_checkpoint", "after_first_checkpoint",
                              "committing_second_best"])
def test_train_gan_killed_then_the_same_command_completes(workdir, point):
    name = "killed-" + point.replace("=", "")
    command = ["train-gan", "corpus", "--name", name, *GAN]
    killed(workdir, point, *command)
    run_dir = workdir / "runs" / name
    assert (run_dir / "config.json").is_file()
    if not list((run_dir / "best").glob("*/integrity.json")):
        # Nothing finished: `sample` says so in one line, it never samples a partial checkpoint.
        result = run_cli("sample", run_dir, "--num", 1, "--length", 12, "--out", workdir / "s" / name, cwd=workdir)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "no complete checkpoint" in result.stderr and str(run_dir) in result.stderr
    again(workdir, *command)
    assert val_curve(run_dir) == val_curve(workdir / "runs" / "reference")
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["4", "8"]
    result = run_cli("sample", run_dir, "--num", 1, "--length", 12, "--out", workdir / "s2" / name, cwd=workdir)
    assert result.returncode == 0, result.stderr


CLASSIFIER = TINY_CLASSIFIER


@pytest.fixture(scope="module")
def older_classifier(tmp_path_factory):
    """A corpus and a finished classifier, `classifiers/older`, copied into each test's folder."""
    return corpus_and_finished(tmp_path_factory, "clf", "train-classifier", "corpus", "--name", "older",
                               *CLASSIFIER)


@pytest.mark.parametrize("point", ["batch=3", "final_rename"], ids=["mid_training", "during_final_rename"])
def test_train_classifier_killed_is_never_picked_up_and_the_same_command_completes(older_classifier, tmp_path, point):
    tmp_path = tmp_path / "work"
    shutil.copytree(older_classifier, tmp_path, symlinks=True)
    command = ["train-classifier", "corpus", "--name", "newer", *CLASSIFIER]
    killed(tmp_path, point, *command)
    assert (tmp_path / "classifiers" / ".newer.partial").is_dir()  # what a kill leaves behind
    song = tmp_path / "corpus" / "jazz" / "swing0.mid"
    result = run_cli("score", song, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "using classifier classifiers/older" in result.stderr
    again(tmp_path, *command)
    assert not (tmp_path / "classifiers" / ".newer.partial").exists()
    result = run_cli("score", song, cwd=tmp_path)
    assert result.returncode == 0 and "using classifier classifiers/newer" in result.stderr


def test_train_gan_killed_in_the_adversarial_phase_resumes_without_gaps(older_classifier, tmp_path):
    """kill -9 after the first adversarial checkpoint: the same command, then --resume as it says,
    continues from that checkpoint (no step logged twice or lost) to the end of both phases."""
    tmp_path = tmp_path / "work"
    shutil.copytree(older_classifier, tmp_path, symlinks=True)
    command = ["train-gan", "corpus", "--name", "adv", *GAN, "--adv-steps", "8", "--classifier", "classifiers/older",
               "--sample-every", "0"]
    killed(tmp_path, "batch=14", *command)  # checkpoints 4, 8 (MLE) and 12 (adversarial) are written
    run_dir = tmp_path / "runs" / "adv"
    assert max(int(p.name) for p in (run_dir / "checkpoints").iterdir()) == 12
    again(tmp_path, *command)
    rows = runs.MetricsLog.read(run_dir / "metrics.jsonl")
    assert [(r["step"], r["phase"]) for r in rows] == [(4, "mle"), (8, "mle"), (12, "adv"), (16, "adv")]
    assert runs.restore_params(run_dir, "last")[0].total_steps == 16


# ---------------------------------------------------------------------------------------------
# sample killed partway; training that diverges
# ---------------------------------------------------------------------------------------------


def test_sample_killed_partway_leaves_a_summary_of_what_it_wrote(workdir, tmp_path):
    out = tmp_path / "songs"
    killer_point = "png=4"
    script = KILLER.replace('from ganmusic.cli import main', '''
if point.startswith("png="):
    from ganmusic import plots
    at, real_roll = int(point.split("=")[1]), plots.piano_roll
    def piano_roll(*a, **kw):
        calls["n"] += 1
        if calls["n"] == at:
            die()
        return real_roll(*a, **kw)
    plots.piano_roll = piano_roll
from ganmusic.cli import main''')
    proc = subprocess.run([sys.executable, "-c", script, killer_point, "sample", "runs/reference", "--num", "6",
                           "--length", "24", "--out", out], cwd=workdir, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == -9, proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["num"] == 6
    written = sorted(p.name for p in out.glob("sample-*.mid"))
    assert len(written) == 4  # the fourth song's MIDI was written before its picture
    assert len(summary["samples"]) <= len(written)
    assert all(Path(s["file"]).is_file() for s in summary["samples"])
    again = run_cli("sample", "runs/reference", "--num", "6", "--length", "24", "--out", out, cwd=workdir)
    assert again.returncode == 0, again.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is True and len(summary["samples"]) == 6


@pytest.mark.parametrize("from_step", [1, 6], ids=["nan_before_first_checkpoint", "nan_after_first_checkpoint"])
def test_train_gan_that_diverges_says_what_to_do_and_that_works(workdir, monkeypatch, from_step):
    import jax.numpy as jnp

    from ganmusic import train

    real = train.make_mle_step

    def poisoned(model, optimizer, axis_name=None):
        step = real(model, optimizer, axis_name)

        def nan_step(state, batch):
            new, metrics = step(state, batch)
            loss = jnp.where(new.step >= from_step, jnp.nan, metrics["mle_loss"])
            return new, {**metrics, "mle_loss": loss}

        return nan_step

    name = f"diverged-{from_step}"
    command = ["train-gan", "corpus", "--name", name, *GAN]
    monkeypatch.setattr(train, "make_mle_step", poisoned)
    result = run_cli(*command, cwd=workdir)
    monkeypatch.setattr(train, "make_mle_step", real)
    assert result.returncode == 1 and "Traceback" not in result.stderr  # documented: 1 for a diverged run
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert f"mle_loss became nan at step {from_step}" in line
    if from_step == 1:
        assert "no checkpoint was saved" in line
    else:
        assert f"step 4 in {Path('runs') / name / 'checkpoints'}" in line and "resume" in line
    again(workdir, *command)  # as the message says: the same command, or --resume
    assert val_curve(workdir / "runs" / name) == val_curve(workdir / "runs" / "reference")


def test_train_classifier_that_diverges_leaves_nothing(tmp_path, monkeypatch):
    import jax.numpy as jnp

    from ganmusic import classify

    real = classify.make_train_step

    def poisoned(model, optimizer):
        step = real(model, optimizer)
        return lambda *a: (lambda out: (*out[:2], out[2] * jnp.nan, out[3]))(step(*a))

    make_tiny_corpus(tmp_path / "corpus")
    monkeypatch.setattr(classify, "make_train_step", poisoned)
    result = run_cli("train-classifier", "corpus", "--name", "nan", *CLASSIFIER, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "diverged" in line and "nothing was written" in line
    assert not (tmp_path / "classifiers" / "nan").exists() and not (tmp_path / "classifiers" / ".nan.partial").exists()
