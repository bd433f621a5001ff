"""Scoring throughput: files per second for `ganmusic score` over the whole shared corpus.

Trains a classifier with the CLI defaults (unless --classifier is given), scores all 1218 files
once to warm up (compilation), then times a second full pass: parsing in worker processes plus
the batched model. Also reports the model part alone and the scikit-learn baseline's scoring
of the same windows, as a point of comparison. Target: >= 100 files/s on the 2-core CPU.

    python benchmarks/score_bench.py [--classifier classifiers/NAME]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_path, report  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--classifier", type=Path)
    parser.add_argument("--steps", type=int, default=300, help="training steps when no classifier is given")
    args = parser.parse_args()

    from ganmusic import classify, data, windows
    from ganmusic.models import ClassifierConfig

    root = data_path()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = data.load_corpus(root, cache_dir=Path(tmp) / "cache", progress=False)
        path = args.classifier
        if path is None:
            path = Path(tmp) / "bench-classifier"
            classify.train_classifier(corpus, path, ClassifierConfig.for_vocab(corpus.vocab, hidden=64),
                                      classify.TrainConfig(steps=args.steps), progress=False)
        clf = classify.Classifier.load(path)
        files = [str(root / p) for p in sorted(e.path.relative_to(root) for e in data.find_entries(root)[1])]
        classify.score_files(clf, files, progress=False)  # warm-up: compilation
        t = time.perf_counter()
        results = classify.score_files(clf, files, progress=False)
        end_to_end = time.perf_counter() - t

        sequences = [corpus.sequence(i) for i in range(len(corpus))]
        t = time.perf_counter()
        clf.score_sequences(sequences)
        model_only = time.perf_counter() - t
        tiled = windows.tile_windows(sequences, clf.vocab, clf.window)
        baseline = classify.train_baseline(corpus, clf.window, seed=0)
        t = time.perf_counter()
        baseline.decision_function(classify.style_features(tiled.tokens, tiled.mask, clf.vocab))
        baseline_seconds = time.perf_counter() - t

    errors = sum("error" in r for r in results)
    n = len(files)
    rows = [
        ("files scored (errors)", f"{n} ({errors})", "1218"),
        ("end to end: parse + model", f"{n / end_to_end:.0f} files/s ({end_to_end:.1f} s)", ">= 100 files/s"),
        ("model only (already parsed)", f"{len(sequences) / model_only:.0f} files/s, "
                                        f"{len(tiled.tokens) / model_only:.0f} windows/s", ""),
        ("sklearn baseline, features + model", f"{len(sequences) / baseline_seconds:.0f} files/s", ""),
    ]
    report("score_bench", f"scoring {root} with {path.name}", rows,
           {"files": n, "errors": errors, "end_to_end_seconds": end_to_end,
            "files_per_second": n / end_to_end, "model_only_seconds": model_only,
            "windows": int(len(tiled.tokens)), "baseline_seconds": baseline_seconds,
            "classifier": clf.model_config.to_dict()})


if __name__ == "__main__":
    main()
