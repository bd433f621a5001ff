import json
import os
import re
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from conftest import make_tiny_corpus, run_cli, write_midi
from ganmusic import classify, data, tboard, windows
from ganmusic.models import ClassifierConfig

TINY = dict(embed_dim=16, hidden=16, layers=2)


def tiny_train_config(**kw):
    return classify.TrainConfig(**{**dict(window=30, steps=40, batch_size=16, eval_every=20, warmup=5), **kw})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny classifier for the module's tests (training dominates their run time)."""
    tmp_path = tmp_path_factory.mktemp("trained")
    corpus = data.load_corpus(make_tiny_corpus(tmp_path / "corpus"), cache_dir=tmp_path / "cache",
                              progress=False, split_fractions=(4, 1, 1))
    out = tmp_path / "classifiers" / "tiny"
    metrics = classify.train_classifier(corpus, out, ClassifierConfig.for_vocab(corpus.vocab, **TINY),
                                        tiny_train_config(), progress=False)
    return corpus, out, metrics


def test_training_writes_a_complete_classifier_folder(trained):
    corpus, out, metrics = trained
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "config.json", "metrics.json", "tensorboard",
                                                     "training.png"]
    assert not list(out.parent.glob(".*partial"))
    events = tboard.read_scalars(out / "tensorboard")  # TensorBoard holds the validation history
    assert events["classifier/val_loss"] == [(h["step"], pytest.approx(h["val_loss"])) for h in metrics["history"]]
    config = json.loads((out / "config.json").read_text())
    assert config["positive"] == "jazz" and config["labels"] == ["jazz", "not_jazz"]
    assert config["data"]["fingerprint"] == corpus.fingerprint()
    for model in ("test", "baseline"):
        for level in ("window", "file"):
            report = metrics[model][level]
            assert {"accuracy", "balanced_accuracy", "roc_auc", "f1", "confusion"} <= set(report)
            assert np.sum(report["confusion"]) == report["n"]
    assert json.loads((out / "metrics.json").read_text())["best_step"] == metrics["best_step"]


def test_loaded_classifier_reproduces_the_test_metrics(trained):
    corpus, out, metrics = trained
    clf = classify.Classifier.load(out)
    idx = corpus.indices("test")
    probs = [r["probability"] for r in clf.score_sequences([corpus.sequence(i) for i in idx])]
    report = classify.binary_report(corpus.is_positive[idx], np.array(probs))
    assert report["confusion"] == metrics["test"]["file"]["confusion"]


def test_same_seed_same_classifier(tmp_path, trained):
    corpus, out, metrics = trained
    again = classify.train_classifier(corpus, tmp_path / "again", ClassifierConfig.for_vocab(corpus.vocab, **TINY),
                                      tiny_train_config(), progress=False)
    assert again["history"] == metrics["history"]


def test_an_interrupted_training_leaves_no_classifier(tiny_corpus, tmp_path, monkeypatch):
    corpus = data.load_corpus(tiny_corpus, cache_dir=tmp_path / "cache", progress=False, split_fractions=(4, 1, 1))
    calls = {"n": 0}
    real_batch = windows.WindowSampler.batch

    def dying_batch(self, k):
        calls["n"] += 1
        if calls["n"] > 25:
            raise KeyboardInterrupt
        return real_batch(self, k)

    monkeypatch.setattr(windows.WindowSampler, "batch", dying_batch)
    out = tmp_path / "classifiers" / "dies"
    with pytest.raises(KeyboardInterrupt):
        classify.train_classifier(corpus, out, ClassifierConfig.for_vocab(corpus.vocab, **TINY),
                                  tiny_train_config(), progress=False)
    assert not out.exists()
    with pytest.raises(classify.ClassifierError):
        classify.Classifier.load(out)



def test_score_rows_errors_and_exit_codes(trained, tmp_path, tiny_corpus):
    _, out, _ = trained
    bad = tmp_path / "mixed"
    bad.mkdir()
    (bad / "text.mid").write_text("not midi at all")
    (bad / "empty.mid").write_bytes(b"")
    write_midi(bad / "drums.mid", [(i, 0.5, 38) for i in range(16)], drum=True)
    good = tiny_corpus / "jazz" / "swing0.mid"
    result = run_cli("score", good, bad, "--classifier", out, "--json")
    assert result.returncode == 1
    rows = {Path(r["file"]).name: r for r in json.loads(result.stdout)["results"]}
    assert set(rows) == {"swing0.mid", "text.mid", "empty.mid", "drums.mid"}
    assert 0.0 <= rows["swing0.mid"]["probability"] <= 1.0 and rows["swing0.mid"]["notes"] == 48
    assert "empty" in rows["empty.mid"]["error"] and "drum" in rows["drums.mid"]["error"]
    assert "Traceback" not in result.stderr

    ok = run_cli("score", str(tiny_corpus / "*" / "*.mid"), "--classifier", out, "--csv", "--windows",
                 "--out", tmp_path / "timelines")
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.strip().splitlines()
    assert lines[0].startswith("file,p_jazz") and len(lines) == 13
    assert len(list((tmp_path / "timelines").glob("*-timeline.png"))) == 12


def test_score_without_classifier_uses_the_newest_and_says_so(trained, tmp_path, tiny_corpus):
    _, out, _ = trained
    result = run_cli("score", tiny_corpus / "jazz" / "swing1.mid", cwd=out.parent.parent)
    assert result.returncode == 0, result.stderr
    assert "using classifier classifiers/tiny" in result.stderr
    empty = tmp_path / "nowhere"
    empty.mkdir()
    result = run_cli("score", tiny_corpus / "jazz" / "swing1.mid", cwd=empty)  # none trained here
    assert result.returncode == 0 and "using the pretrained default classifier" in result.stderr, result.stderr


def test_missing_or_incompatible_classifier_is_one_line(trained, tmp_path, tiny_corpus):
    _, out, _ = trained
    song = tiny_corpus / "jazz" / "swing1.mid"
    result = run_cli("score", song, "--classifier", tmp_path / "missing")
    assert result.returncode == 2 and "not a classifier folder" in result.stderr
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(out, broken)
    config = json.loads((broken / "config.json").read_text())
    config["model"]["hidden"] = 32  # the checkpoint holds hidden=16 weights
    (broken / "config.json").write_text(json.dumps(config))
    result = run_cli("score", song, "--classifier", broken)
    assert result.returncode == 2 and "does not fit this model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    (broken / "config.json").write_text("{not json")
    result = run_cli("score", song, "--classifier", broken)
    assert result.returncode == 2 and "incompatible classifier config" in result.stderr


@pytest.mark.parametrize("key", ["window", "threshold", "positive"])
def test_classifier_config_missing_a_field_is_a_classifier_error(trained, tmp_path, key):
    _, out, _ = trained
    import shutil

    broken = tmp_path / f"no-{key}"
    shutil.copytree(out, broken)
    config = json.loads((broken / "config.json").read_text())
    del config[key]
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(classify.ClassifierError, match=f"incompatible classifier config.*{key}"):
        classify.Classifier.load(str(broken))  # a str path works as well as a Path


def transformed_copies(path: Path, tmp: Path) -> list[Path]:
    """The same music transposed (-5..+5), at other tempi, and with other velocities."""
    out = []
    for name, change in [("up5", lambda n: setattr(n, "pitch", n.pitch + 5)),
                         ("down5", lambda n: setattr(n, "pitch", n.pitch - 5)),
                         ("up2", lambda n: setattr(n, "pitch", n.pitch + 2)),
                         ("soft", lambda n: setattr(n, "velocity", 40)),
                         ("loud", lambda n: setattr(n, "velocity", 127))]:
        midi = pretty_midi.PrettyMIDI(str(path))
        for inst in midi.instruments:
            for note in inst.notes:
                change(note)
        out.append(tmp / f"{path.stem}-{name}.mid")
        midi.write(str(out[-1]))
    for factor in (0.5, 1.7):  # tempo: stretch every time
        midi = pretty_midi.PrettyMIDI(str(path))
        midi.adjust_times([0, midi.get_end_time()], [0, midi.get_end_time() / factor])
        out.append(tmp / f"{path.stem}-tempo{factor}.mid")
        midi.write(str(out[-1]))
    return out


@pytest.fixture(scope="session")
def real_classifier(real_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("real-classifier") / "c"
    classify.train_classifier(real_corpus, out, ClassifierConfig.for_vocab(real_corpus.vocab, hidden=32, layers=3),
                              classify.TrainConfig(steps=120, eval_every=60), progress=False)
    return classify.Classifier.load(out)


def test_scores_are_invariant_to_key_tempo_and_velocity_on_real_files(real_classifier, real_corpus_path, tmp_path):
    files = [real_corpus_path / "jazz" / "ChetBaker_JustFriends_FINAL.mid",
             real_corpus_path / "jazz" / "BenWebster_MyIdeal_FINAL.mid",
             real_corpus_path / "not_jazz" / "nottingham_ashover10.mid",
             real_corpus_path / "not_jazz" / "nottingham_jigs135.mid"]
    for original in files:
        copies = transformed_copies(original, tmp_path)
        results = classify.score_files(real_classifier, [original, *copies], workers=1, progress=False)
        base = results[0]["probability"]
        for r in results[1:]:
            assert abs(r["probability"] - base) < 0.05, (r["file"], r["probability"], base)


def test_train_classifier_cli_epochs_default_name_and_defaults(tmp_path, tiny_corpus):
    env = {**__import__("os").environ, "GANMUSIC_CACHE": str(tmp_path / "cache")}
    result = run_cli("train-classifier", tiny_corpus, "--root", tmp_path / "clf", "--epochs", 2, "--window", 30,
                     "--batch-size", 16, "--hidden", 8, "--layers", 2, "--seed", 4, env=env)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "clf" / "conv-w30-s4"  # the default name: encoder, window, seed
    saved = json.loads((out / "config.json").read_text())
    corpus = data.load_corpus(tiny_corpus, cache_dir=tmp_path / "cache", progress=False)
    assert saved["train"]["steps"] == classify.steps_for_epochs(corpus, 2, 30, 16) > 1
    assert saved["model"]["hidden"] == 8 and saved["model"]["embed_dim"] == ClassifierConfig(vocab_size=1).embed_dim
    bad = run_cli("train-classifier", tiny_corpus, "--root", tmp_path / "clf2", "--window", 8, env=env)
    assert bad.returncode == 2 and "window must be in [16, 1024]" in bad.stderr and "Traceback" not in bad.stderr


BOX_DRAWING = re.compile("[\u2500-\u257f\u2580-\u259f]")


@pytest.mark.parametrize("steps", [1, 10, 100])
def test_short_training_finishes_and_reads_as_plain_lines_in_a_log(tmp_path, tiny_corpus, steps):
    """A first short try (fewer steps than the warm-up) finishes and writes a classifier; its output
    redirected to a file has no box-drawing fragments and its progress is readable lines."""
    env = {**os.environ, "GANMUSIC_CACHE": str(tmp_path / "cache")}
    result = run_cli("train-classifier", tiny_corpus, "--root", tmp_path / "clf", "--name", "short", "--steps", steps,
                     "--window", 30, "--batch-size", 8, "--hidden", 8, "--layers", 1, env=env)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "clf" / "short"
    assert (out / "config.json").is_file() and (out / "metrics.json").is_file() and (out / "checkpoint").is_dir()
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == steps
    for text in (result.stdout, result.stderr):
        assert not BOX_DRAWING.search(text), text
    progress = [line for line in result.stderr.splitlines() if line.startswith("training classifier: ")]
    assert progress and progress[-1].startswith(f"training classifier: {steps}/{steps} (100%)"), result.stderr
    assert "elapsed" in progress[-1] and (steps == 1 or "it/s" in progress[-1] or "s/it" in progress[-1])
