"""The demo corpus and `ganmusic demo --quick` end to end, in a subprocess on a clean folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pretty_midi

from conftest import run_cli
from ganmusic import data, democorpus, metrics
from ganmusic import encoding as enc

REPO = Path(__file__).resolve().parents[1]


def test_demo_corpus_is_deterministic_labelled_and_distinct(tmp_path):
    a = democorpus.build_demo_corpus(tmp_path / "a", files_per_class=12, seed=3)
    b = democorpus.build_demo_corpus(tmp_path / "b", files_per_class=12, seed=3)
    c = democorpus.build_demo_corpus(tmp_path / "c", files_per_class=12, seed=4)
    files = sorted(p.relative_to(a) for p in a.rglob("*.mid"))
    assert len(files) == 24
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert any((a / f).read_bytes() != (c / f).read_bytes() for f in files)
    corpus = data.load_corpus(a, cache_dir=tmp_path / "cache", progress=False)
    assert len(corpus) == 24 and not corpus.skipped
    assert len({g for g in corpus.groups}) == 4  # ten files per made-up composer
    # The styles differ the way the README says: swing and chromaticism against straight diatonic tunes.
    spb, vocab = corpus.config.steps_per_beat, corpus.vocab
    feats = {label: [metrics.sample_features(enc.tokens_to_notes(corpus.sequence(i), vocab), spb)
                     for i in range(len(corpus)) if corpus.labels[i] == label] for label in ("jazz", "not_jazz")}
    mean = lambda label, key: np.mean([f[key] for f in feats[label]], axis=0)  # noqa: E731
    assert mean("not_jazz", "scale_consistency") == 1.0 > mean("jazz", "scale_consistency")
    swung = metrics.BEAT_BIN_LABELS.index("2/3")
    assert mean("jazz", "ioi_histogram")[swung] > 0.2 > mean("not_jazz", "ioi_histogram")[swung]


def test_demo_quick_end_to_end(tmp_path):
    out = tmp_path / "demo"
    env = {**os.environ, "GANMUSIC_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "ganmusic", "demo", "--quick", "--out", str(out)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "synthetic" in proc.stdout and "closeness" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert len(list((out / "data" / "jazz").glob("*.mid"))) >= 200
    assert len(list((out / "data" / "not_jazz").glob("*.mid"))) >= 200
    assert (out / "classifiers" / "demo" / "config.json").is_file()
    run_dir = Path(summary["run"]["path"])
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["phase"] for r in rows} == {"mle", "adv"}  # both phases ran
    samples = sorted(Path(summary["samples"]["path"]).glob("*.mid"))
    assert len(samples) == summary["samples"]["files"] > 0
    for path in samples:
        assert pretty_midi.PrettyMIDI(str(path)).instruments[0].notes
        assert path.with_suffix(".png").is_file()
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    assert 0.0 <= report["sources"]["demo"]["closeness"] <= 1.0
    assert (run_dir / "eval" / "features.png").is_file()
    assert 0.0 <= summary["samples"]["mean_p_jazz"] <= 1.0
    # A second demo into the same folder is refused in one line, and nothing is touched.
    before = sorted(p.name for p in out.iterdir())
    result = run_cli("demo", "--quick", "--out", out)
    assert result.returncode == 2 and "not empty" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == before
