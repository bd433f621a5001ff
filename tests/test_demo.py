"""The demo corpus and `ganmusic demo --quick` end to end on a clean folder."""

import json
from pathlib import Path

import numpy as np
import pretty_midi

from conftest import run_cli
from ganmusic import data, demo, democorpus, metrics
from ganmusic import encoding as enc


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


# `--quick`'s stages at the sizes of the other tests' tiny models (the stages, not the sizes, are
# what can break; `ganmusic demo --quick` itself takes about a minute).
TINY = demo.DemoSize(files_per_class=30, classifier_steps=4, classifier_hidden=8, layers=(16,), window=24,
                     batch_size=8, mle_steps=4, adv_steps=2, samples=2, sample_tokens=48, eval_samples=4, lr=1e-2)


def test_demo_quick_end_to_end(tmp_path, monkeypatch):
    out = tmp_path / "demo"
    monkeypatch.setenv("GANMUSIC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(demo, "QUICK", TINY)
    proc = run_cli("demo", "--quick", "--out", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "synthetic" in proc.stdout and "closeness" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    for label in ("jazz", "not_jazz"):
        assert len(list((out / "data" / label).glob("*.mid"))) == TINY.files_per_class
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
