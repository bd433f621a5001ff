import json
import os
import shutil
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from conftest import TINY_GAN, make_tiny_corpus, run_cli
from ganmusic import data, mle, models, runs, sampling, tboard, train, windows
from ganmusic import encoding as enc
from ganmusic.encoding import EncodingConfig, Vocab
from ganmusic.models import Generator, GeneratorConfig


def tiny_config(corpus_path, **kw):
    gen = GeneratorConfig(vocab_size=Vocab(EncodingConfig()).size, layers=(16,), embed_dim=8)
    base = dict(data=str(corpus_path), generator=gen, window=24, batch_size=4, mle_steps=12, lr=5e-3,
                eval_every=4, checkpoint_every=4, keep=5, seed=3, devices=1)  # one device on any machine
    return runs.RunConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = make_tiny_corpus(tmp_path_factory.mktemp("gen") / "corpus")
    return data.load_corpus(root, cache_dir=root.parent / "cache", progress=False, split_fractions=(4, 1, 1))


@pytest.fixture(scope="module")
def finished_run(corpus, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "full"
    summary = train.train_run(tiny_config(corpus.root), run_dir, progress=False, corpus=corpus)
    return run_dir, summary


def params_of(run_dir, which="last"):
    return runs.restore_params(run_dir, which)[1]


def assert_trees_close(a, b, **kw):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw)


def test_run_folder_contents_and_learning(finished_run):
    run_dir, summary = finished_run
    assert {p.name for p in run_dir.iterdir()} >= {"config.json", "checkpoints", "best", "metrics.jsonl", "training.png"}
    rows = runs.MetricsLog.read(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [4, 8, 12]
    assert rows[-1]["val_nll"] < rows[0]["val_nll"]  # it learns
    assert summary["best_val_nll"] == min(r["val_nll"] for r in rows)
    assert all(np.isfinite(r["unigram_nll"]) and r["tokens_per_second"] > 0 for r in rows)
    assert runs.load_run_config(run_dir) == tiny_config(runs.load_run_config(run_dir).data)


def test_without_tensorboardx_training_works_and_says_once_how_to_enable(corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if not installed
    monkeypatch.setattr(tboard, "_hinted", False)
    for name in ("a", "b"):
        summary = train.train_run(tiny_config(corpus.root, mle_steps=2, eval_every=2), tmp_path / name,
                                  progress=False, corpus=corpus)
        assert summary["step"] == 2 and (tmp_path / name / "best").is_dir()
        assert not (tmp_path / name / tboard.FOLDER).exists()
    assert capsys.readouterr().err.count("pip install 'ganmusic[tensorboard]'") == 1


def crash_batches_at(monkeypatch, step: int):
    """Make batch `step` raise, as a crash in the middle of training would; returns the real
    batch method to put back."""
    real_batch = windows.WindowSampler.batch

    def crashing(self, k):
        if k == step:
            raise RuntimeError("simulated crash")
        return real_batch(self, k)

    monkeypatch.setattr(windows.WindowSampler, "batch", crashing)
    return real_batch


def test_resume_after_a_crash_matches_an_uninterrupted_run(corpus, finished_run, tmp_path, monkeypatch):
    full_dir, _ = finished_run
    run_dir = tmp_path / "crashed"
    real_batch = crash_batches_at(monkeypatch, 10)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train.train_run(tiny_config(corpus.root), run_dir, progress=False, corpus=corpus)
    monkeypatch.setattr(windows.WindowSampler, "batch", real_batch)
    # Steps 9 and 10 were lost with the crash; the log holds 4 and 8 only after resuming from 8.
    summary = train.train_run(tiny_config(corpus.root), run_dir, resume=True, progress=False, corpus=corpus)
    assert summary["step"] == 12
    assert_trees_close(params_of(run_dir), params_of(full_dir), rtol=1e-5, atol=1e-6)
    rows = runs.MetricsLog.read(run_dir / "metrics.jsonl")
    full_rows = runs.MetricsLog.read(full_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [4, 8, 12]
    np.testing.assert_allclose([r["val_nll"] for r in rows], [r["val_nll"] for r in full_rows], rtol=1e-5)


def test_a_checkpoint_written_on_one_lstm_path_restores_on_the_other(corpus, finished_run, tmp_path, monkeypatch):
    """The scan and the cuDNN path share flax's parameter layout, so checkpoints move between
    them. On the CPU `lstm_ref` (the cuDNN kernel's pure-JAX reference on its flat weights) stands
    in for cuDNN, by making it the automatic choice."""
    full_dir, summary = finished_run  # written on the scan, the CPU's automatic path
    config, best = runs.restore_params(full_dir, "best")
    val = windows.eval_windows(corpus, corpus.indices("val", positive=True), config.window)
    eval_ref = mle.make_eval_nll(Generator(config.generator, lstm_path="reference"))
    nll = mle.validation_nll(eval_ref, best, val, config.batch_size)
    assert nll == pytest.approx(summary["best_val_nll"], rel=1e-5)

    # Trained on the cuDNN layout up to a crash at step 10 (checkpoint of step 8), resumed on the scan.
    chosen = []
    monkeypatch.setattr(models, "default_lstm_path", lambda: chosen.append("reference") or "reference")
    real_batch = crash_batches_at(monkeypatch, 10)
    run_dir = tmp_path / "across"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train.train_run(tiny_config(corpus.root), run_dir, progress=False, corpus=corpus)
    assert chosen  # the run really took the reference path
    monkeypatch.undo()
    assert models.default_lstm_path() == "scan"
    train.train_run(tiny_config(corpus.root), run_dir, resume=True, progress=False, corpus=corpus)
    # The same run as the one on the scan throughout, up to float32 rounding.
    assert_trees_close(params_of(run_dir), params_of(full_dir), rtol=1e-4, atol=1e-5)
    rows = runs.MetricsLog.read(run_dir / "metrics.jsonl")
    full_rows = runs.MetricsLog.read(full_dir / "metrics.jsonl")
    np.testing.assert_allclose([r["val_nll"] for r in rows], [r["val_nll"] for r in full_rows], rtol=1e-5)


def test_a_second_run_of_the_same_name_needs_resume(corpus, finished_run):
    run_dir, _ = finished_run
    with pytest.raises(runs.RunError, match="resume it"):
        train.train_run(tiny_config(corpus.root), run_dir, progress=False, corpus=corpus)


def test_init_from_starts_from_the_other_runs_weights(corpus, finished_run, tmp_path):
    full_dir, _ = finished_run
    config = tiny_config(corpus.root, init_from=str(full_dir), mle_steps=1, lr=1e-12, eval_every=1)
    train.train_run(config, tmp_path / "child", progress=False, corpus=corpus)
    assert_trees_close(params_of(tmp_path / "child"), params_of(full_dir, "best"), atol=1e-6)
    other = tiny_config(corpus.root, init_from=str(full_dir),
                        generator=GeneratorConfig(vocab_size=Vocab(EncodingConfig()).size, layers=(8,)))
    with pytest.raises(runs.RunError, match="differs"):
        train.train_run(other, tmp_path / "mismatch", progress=False, corpus=corpus)


def test_samples_of_a_trained_model_decode(finished_run):
    run_dir, _ = finished_run
    config, params = runs.restore_params(run_dir, "best")
    grammar = enc.Grammar(Vocab(config.encoding))
    tokens = sampling.sample(params, config.generator, config.encoding, jax.random.PRNGKey(0), 6, 97)
    for row in np.asarray(tokens):
        assert grammar.is_grammatical(row)
        assert len(enc.tokens_to_notes(row, Vocab(config.encoding))) == 32  # 96 tokens = 32 whole notes



def test_sample_cli_writes_songs_and_a_summary(finished_run, tmp_path):
    run_dir, _ = finished_run
    out = tmp_path / "songs"
    result = run_cli("sample", run_dir, "--num", 3, "--length", 60, "--top-k", 5, "--seed", 7, "--out", out)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["samples"]) == 3 and all(s["notes"] == 20 for s in summary["samples"])
    for k in range(3):
        midi_path, png = out / f"sample-{k:03d}.mid", out / f"sample-{k:03d}.png"
        assert len(enc.encode_file(midi_path, EncodingConfig())) == 3 * 20 + 2
        assert png.stat().st_size > 1000
    again = run_cli("sample", run_dir, "--num", 3, "--length", 60, "--top-k", 5, "--seed", 7, "--out", tmp_path / "again")
    assert again.returncode == 0
    assert (tmp_path / "again" / "sample-001.mid").read_bytes() == (out / "sample-001.mid").read_bytes()


def test_sample_cli_no_png(finished_run, tmp_path):
    run_dir, _ = finished_run
    out = tmp_path / "songs"
    result = run_cli("sample", run_dir, "--num", 2, "--length", 30, "--no-png", "--out", out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["sample-000.mid", "sample-001.mid", "summary.json"]


def test_writer_processes_write_the_same_songs_as_one_process(finished_run, tmp_path):
    """`generate_songs` with two spawned writer processes: the same files, byte for byte, and
    the same summary rows, in order, as written in the calling process."""
    from ganmusic import songs

    run_dir, _ = finished_run
    outs = {w: songs.generate_songs(str(run_dir), tmp_path / f"w{w}", num=5, length=60, seed=3, workers=w)
            for w in (0, 2)}
    files = sorted(p.name for p in (tmp_path / "w0").iterdir() if p.suffix in (".mid", ".png"))
    assert len(files) == 10 and files == sorted(p.name for p in (tmp_path / "w2").iterdir() if p.suffix != ".json")
    for name in files:
        assert (tmp_path / "w0" / name).read_bytes() == (tmp_path / "w2" / name).read_bytes(), name
    rows = {w: [{k: v for k, v in r.items() if k != "file"} for r in out["samples"]] for w, out in outs.items()}
    assert rows[0] == rows[2] and [Path(r["file"]).name for r in outs[2]["samples"]] == files[::2]
    assert outs[2]["complete"]


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc to see the writers")
def test_writer_processes_end_when_their_parent_is_killed():
    """A parent killed outright (kill -9) cannot shut its pool down: its writers must not wait
    for work forever."""
    import signal
    import subprocess
    import sys
    import time

    code = ("import time\nfrom ganmusic import songs\n"
            "with songs.song_writers(64, workers=2) as pool:\n"
            "    print(*pool._processes, flush=True)\n"  # the writers, started by the warm-up tasks
            "    time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    writers = [int(p) for p in parent.stdout.readline().split()]
    assert len(writers) == 2 and parent.pid not in writers
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while any(os.path.exists(f"/proc/{pid}") for pid in writers) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [pid for pid in writers if os.path.exists(f"/proc/{pid}")]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "writer processes outlived their killed parent"


def test_sample_cli_errors_are_one_line(finished_run, tmp_path):
    run_dir, _ = finished_run
    for args, message in [((tmp_path / "nope",), "not a run folder"),
                          ((run_dir, "--checkpoint", "999"), "no checkpoint '999'")]:
        result = run_cli("sample", *args)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_sample_cli_bars_wav_and_primer(finished_run, corpus, tmp_path):
    import wave

    from ganmusic import songs

    run_dir, _ = finished_run
    spb = EncodingConfig().steps_per_beat
    out = tmp_path / "bars"
    result = run_cli("sample", run_dir, "--num", 2, "--bars", 2, "--wav", "--seed", 1, "--out", out)
    assert result.returncode == 0, result.stderr
    for k in range(2):
        notes = enc.midi_to_notes(enc.load_midi(out / f"sample-{k:03d}.mid"), EncodingConfig())
        assert notes and max(n.onset for n in notes) < notes[0].onset + 2 * 4 * spb  # two 4/4 bars
        with wave.open(str(out / f"sample-{k:03d}.wav")) as w:
            assert w.getnframes() > 0 and w.getnchannels() == 1
    assert songs.tokens_for_bars(2) == 2 * 4 * 4 * 3

    primer = corpus.root / "jazz" / "swing0.mid"
    primer_notes = enc.midi_to_notes(enc.load_midi(primer), EncodingConfig())
    kept = songs.generate_songs(str(run_dir), tmp_path / "primed", num=1, length=30, primer=str(primer), seed=2)
    with_primer = enc.midi_to_notes(enc.load_midi(kept["samples"][0]["file"]), EncodingConfig())
    assert [(n.onset, n.pitch) for n in with_primer[: len(primer_notes)]] == [(n.onset, n.pitch) for n in primer_notes]
    assert len(with_primer) > len(primer_notes)
    result = run_cli("sample", run_dir, "--num", 1, "--length", 30, "--primer", primer, "--no-primer-in-output",
                     "--seed", 2, "--out", tmp_path / "continued")
    assert result.returncode == 0, result.stderr
    continued = enc.midi_to_notes(enc.load_midi(tmp_path / "continued" / "sample-000.mid"), EncodingConfig())
    generated = with_primer[len(primer_notes):]
    shift = generated[0].onset
    assert continued == [enc.Note(n.onset - shift, n.pitch, n.duration) for n in generated]
    bad = run_cli("sample", run_dir, "--primer", tmp_path / "nope.mid", "--out", tmp_path / "x")
    assert bad.returncode == 2 and "nope.mid" in bad.stderr and "Traceback" not in bad.stderr


def test_resume_cli_applies_given_options_and_refuses_others(corpus, tmp_path):
    args = ["train-gan", str(corpus.root), "--name", "r", "--root", str(tmp_path), *TINY_GAN, "--mle-steps", "4",
            "--eval-every", "2", "--checkpoint-every", "2"]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "devices: 1 cpu device (cpu), batch 4: 4 per device" in first.stderr, first.stderr
    more = run_cli("train-gan", str(corpus.root), "--name", "r", "--root", str(tmp_path), "--resume",
                   "--mle-steps", "6")
    assert more.returncode == 0, more.stderr
    assert [r["step"] for r in runs.MetricsLog.read(tmp_path / "r" / "metrics.jsonl")] == [2, 4, 6]
    assert runs.load_run_config(tmp_path / "r").mle_steps == 6
    refused = run_cli("train-gan", str(corpus.root), "--name", "r", "--root", str(tmp_path), "--resume",
                      "--lr", "0.1", "--layers", "32")
    assert refused.returncode == 2 and "generator.layers, lr" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr



def test_each_sample_call_gets_a_fresh_folder(finished_run, tmp_path):
    """A second `sample` call never overwrites or mixes with the first one's files."""
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run[0], run_dir)
    first = run_cli("sample", run_dir, "--num", 2, "--length", 30)
    second = run_cli("sample", run_dir, "--num", 1, "--length", 30, "--top-k", 3)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    a, b = run_dir / "samples" / "best-s0", run_dir / "samples" / "best-s0-2"
    assert f"{a}/" in " ".join(first.stderr.split()) and f"{b}/" in " ".join(second.stderr.split())
    assert sorted(p.name for p in a.glob("*.mid")) == ["sample-000.mid", "sample-001.mid"]
    assert sorted(p.name for p in b.glob("*.mid")) == ["sample-000.mid"]
    assert len(json.loads((a / "summary.json").read_text())["samples"]) == 2
    assert json.loads((b / "summary.json").read_text())["sampling"]["top_k"] == 3


def test_sample_without_a_best_checkpoint_points_to_the_last(finished_run, tmp_path):
    """Stopped before the first validation: `best/` is empty, `checkpoints/` is not."""
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run[0], run_dir)
    shutil.rmtree(run_dir / "best")
    (run_dir / "best").mkdir()
    result = run_cli("sample", run_dir, "--num", 1, "--length", 30)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--checkpoint last" in result.stderr and "no best checkpoint yet" in result.stderr, result.stderr
    assert run_cli("sample", run_dir, "--num", 1, "--length", 30, "--checkpoint", "last").returncode == 0


def test_training_plot_of_a_run_stopped_early_warns_nothing(tmp_path):
    """A run stopped before its first validation has no validation points: no empty-legend warning."""
    import warnings

    from ganmusic import plots

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = plots.training_curves([{"step": 1, "mle_loss": 2.0}], tmp_path / "t.png", "early",
                                    {"loss": ["mle_loss"], "validation": ["val_nll"]})
    assert out.stat().st_size > 1000


def test_train_gan_checks_its_inputs_before_it_starts(corpus, tmp_path):
    for args, message in [((tmp_path / "nope",), "nope: no such file or folder (DATA)"),
                          ((corpus.root, "--adv-steps", 2, "--classifier", tmp_path / "noclf"),
                           "noclf: no such file or folder (--classifier)")]:
        result = run_cli("train-gan", *args, "--root", tmp_path / "runs")
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "training" not in result.stderr and not (tmp_path / "runs").exists()


def test_a_signal_stops_the_run_at_a_checkpoint_and_the_cli_says_it_did_not_finish(corpus, tmp_path, monkeypatch):
    """SIGTERM (a scheduler, `timeout`) saves the step reached; the CLI exits 143 with the resume
    command, never 0: a stopped run must not pass for a finished one."""
    import os
    import signal

    real_batch = windows.WindowSampler.batch

    def terminate_at_step_6(self, k):
        if k == 6:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_batch(self, k)

    args = ["train-gan", str(corpus.root), "--name", "t", "--root", str(tmp_path), *TINY_GAN, "--mle-steps", "8",
            "--eval-every", "4", "--checkpoint-every", "4"]
    monkeypatch.setattr(windows.WindowSampler, "batch", terminate_at_step_6)
    stopped = run_cli(*args)
    monkeypatch.setattr(windows.WindowSampler, "batch", real_batch)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr
    assert "stopped by SIGTERM at step 6" in stopped.stderr and "--resume" in stopped.stderr
    assert [r["step"] for r in runs.MetricsLog.read(tmp_path / "t" / "metrics.jsonl")] == [4]
    again = run_cli(*args, "--resume")
    assert again.returncode == 0, again.stderr
    assert [r["step"] for r in runs.MetricsLog.read(tmp_path / "t" / "metrics.jsonl")] == [4, 8]
