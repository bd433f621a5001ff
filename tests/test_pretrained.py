"""The pretrained default shipped in the package: it loads read-only and gives sane output, and
`score` and `sample` use it from an empty folder when no classifier or run is given. Nothing here
depends on the shipped weights' values beyond that."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from conftest import make_tiny_chord_corpus, run_cli, swing_line, write_midi
from test_robustness import assert_one_line_error
from ganmusic import changes, classify, pretrained, runs, sampling
from ganmusic import encoding as enc
from ganmusic.encoding import Vocab


def snapshot(root):
    """Every path under the shipped folder with its size and modification time."""
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))} | \
        {".": root.stat().st_mtime_ns}


def test_shipped_default_is_small_and_described():
    size = sum(p.stat().st_size for p in pretrained.ROOT.rglob("*") if p.is_file())
    assert 0 < size < 6 * 2**20, size  # a few MiB at most
    about = pretrained.about()
    assert set(about["data"]["sources"]) == {"wjazzd", "pop909"}  # no GPL-3.0 Nottingham tunes
    assert "checkpoints" not in {p.name for p in pretrained.GENERATOR.iterdir()}  # no optimizer state shipped
    config = runs.load_run_config(pretrained.generator_path())
    assert config.generator.chords and (pretrained.GENERATOR / runs.CALIBRATION).is_file()  # the measured best recipe


def test_default_models_load_read_only_and_give_sane_output(tmp_path):
    before = snapshot(pretrained.ROOT)
    model = classify.Classifier.load(pretrained.classifier_path())
    song = write_midi(tmp_path / "line.mid", swing_line(0, n=60))
    [result] = classify.score_files(model, [song], workers=1, progress=False)
    assert 0.0 <= result["probability"] <= 1.0 and result["windows"]
    config, params = runs.restore_params(pretrained.generator_path(), "best")
    blues = changes.load_form("blues-f").rows(config.encoding.steps_per_beat)
    tokens = sampling.sample(params, config.generator, config.encoding, jax.random.PRNGKey(0), 2, 90, step_cond=blues)
    notes = [enc.tokens_to_notes(row, Vocab(config.encoding)) for row in np.asarray(tokens)]
    assert all(len(n) >= 5 for n in notes)
    assert len({n.pitch for row in notes for n in row}) > 3  # not one note over and over
    assert snapshot(pretrained.ROOT) == before  # nothing written next to the package data


def test_score_and_sample_work_from_an_empty_folder_without_training(tmp_path):
    cwd = tmp_path / "empty"
    cwd.mkdir()
    write_midi(tmp_path / "song.mid", swing_line(1, n=40))
    before = snapshot(pretrained.ROOT)
    result = run_cli("score", tmp_path / "song.mid", "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "pretrained default classifier" in result.stderr
    [row] = json.loads(result.stdout)["results"]
    assert 0.0 <= row["probability"] <= 1.0
    result = run_cli("sample", "--num", 2, "--length", 60, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "pretrained default generator" in result.stderr and "the pretrained default" in result.stdout
    assert "it plays over blues-f" in result.stderr  # it reads chords: over none it would play what it never heard
    out = cwd / "samples" / "pretrained" / "best-s0"
    assert sorted(p.name for p in out.glob("*.mid")) == ["sample-000.mid", "sample-001.mid"]
    assert json.loads((out / "summary.json").read_text())["calibrated"]
    assert snapshot(pretrained.ROOT) == before
    assert sorted(os.listdir(cwd)) == ["samples"]


def test_an_explicit_or_trained_classifier_wins(tmp_path):
    cwd = tmp_path / "work"
    shutil.copytree(pretrained.classifier_path(), cwd / "classifiers" / "mine")  # any classifier folder
    song = write_midi(tmp_path / "song.mid", swing_line(2, n=40))
    newest = run_cli("score", song, cwd=cwd)
    explicit = run_cli("score", song, "--classifier", cwd / "classifiers" / "mine", cwd=tmp_path)
    for r in (newest, explicit):
        assert r.returncode == 0 and "pretrained" not in r.stdout + r.stderr, r.stderr
    assert "using classifier classifiers/mine" in newest.stderr and "mine" in explicit.stdout


def test_evaluate_judges_the_default_over_the_references_changes_and_writes_outside_the_package(tmp_path):
    corpus = make_tiny_chord_corpus(tmp_path / "corpus")
    cwd = tmp_path / "work"
    cwd.mkdir()
    before = snapshot(pretrained.ROOT)
    refused = run_cli("evaluate", pretrained.generator_path(), cwd=cwd)
    assert_one_line_error(refused, "does not ship its data", "--against", code=2)
    result = run_cli("evaluate", pretrained.generator_path(), "--against", corpus, "--num", 2, "--length", 96, cwd=cwd)
    assert result.returncode == 0, result.stderr
    report = json.loads((cwd / "eval" / "report.json").read_text())
    [generated] = [s for s in report["sources"].values() if s["kind"] == "run"]
    assert generated["lead_sheet"]["chord_coverage"] > 0.9 and np.isfinite(generated["reference_nll"])  # over changes
    assert snapshot(pretrained.ROOT) == before
