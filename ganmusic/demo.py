"""`ganmusic demo`: the whole product on a corpus it makes itself, in a few minutes on a CPU.

Stages: build the synthetic demo corpus, train a classifier, train a generator (MLE phase, then
the adversarial phase against that classifier), sample songs, score them, evaluate the run. Each
stage is a call into the library, the same calls the other commands make.
"""

from __future__ import annotations

import json

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganmusic.ui import console


@dataclass(frozen=True)
class DemoSize:
    files_per_class: int
    classifier_steps: int
    classifier_hidden: int
    layers: tuple[int, ...]
    window: int
    batch_size: int
    mle_steps: int
    adv_steps: int
    samples: int
    sample_tokens: int
    eval_samples: int
    lr: float


FULL = DemoSize(files_per_class=200, classifier_steps=300, classifier_hidden=64, layers=(128, 128), window=96,
                batch_size=32, mle_steps=400, adv_steps=60, samples=8, sample_tokens=384, eval_samples=64, lr=3e-3)
QUICK = DemoSize(files_per_class=200, classifier_steps=40, classifier_hidden=16, layers=(32,), window=48,
                 batch_size=16, mle_steps=120, adv_steps=6, samples=4, sample_tokens=192, eval_samples=16,
                 lr=1e-2)


def stage(number: int, total: int, text: str) -> None:
    console.print(f"[bold cyan]\\[{number}/{total}][/] {text}", highlight=False)


def run_demo(out: str | Path, quick: bool = False, seed: int = 0, progress: bool = True) -> dict:
    """Run every stage into `out` (which must not hold an earlier demo); returns what was
    written where, with the headline numbers."""
    import jax

    from ganmusic import classify, data, democorpus, evaluate, runs, sampling, songs, train
    from ganmusic.gan import AdvConfig
    from ganmusic.models import ClassifierConfig, GeneratorConfig

    size = QUICK if quick else FULL
    out = Path(out)
    stages = 6

    stage(1, stages, f"building the synthetic demo corpus ({size.files_per_class} files per class)")
    corpus_dir = democorpus.build_demo_corpus(out / "data", size.files_per_class, seed)
    corpus = data.load_corpus(corpus_dir, cache_dir=out / "cache", progress=progress)

    stage(2, stages, "training the jazz classifier")
    classifier_dir = out / "classifiers" / "demo"
    clf_metrics = classify.train_classifier(
        corpus, classifier_dir, ClassifierConfig.for_vocab(corpus.vocab, hidden=size.classifier_hidden, embed_dim=32),
        classify.TrainConfig(window=48, steps=size.classifier_steps, batch_size=32, warmup=size.classifier_steps // 10,
                             eval_every=max(size.classifier_steps // 4, 1), seed=seed), progress=progress)

    stage(3, stages, f"training the generator: {size.mle_steps} MLE steps, then {size.adv_steps} adversarial steps")
    run_dir = out / "runs" / "demo"
    config = runs.RunConfig(
        data=str(corpus_dir), generator=GeneratorConfig.for_vocab(corpus.vocab, layers=size.layers, embed_dim=32),
        window=size.window, batch_size=size.batch_size, mle_steps=size.mle_steps, lr=size.lr,
        eval_every=max(size.mle_steps // 4, 1), checkpoint_every=size.mle_steps + size.adv_steps, seed=seed,
        adv=AdvConfig(steps=size.adv_steps, classifier=str(classifier_dir), sample_every=0))
    run_summary = train.train_run(config, run_dir, progress=progress, corpus=corpus)

    stage(4, stages, f"sampling {size.samples} songs")
    _, params = runs.restore_params(run_dir, "last")
    tokens = sampling.sample(params, config.generator, config.encoding, jax.random.PRNGKey(seed), size.samples,
                             size.sample_tokens, sampling.SamplingConfig(top_p=0.95))
    samples_dir = run_dir / "samples" / "demo"
    paths = songs.write_songs(tokens, config.encoding, samples_dir, tempo=180.0, png=True, title="demo")

    stage(5, stages, "scoring the songs with the classifier")
    scores = classify.score_files(classify.Classifier.load(classifier_dir), paths, workers=1, progress=False)

    stage(6, stages, "evaluating the run against the held-out demo jazz (independent sklearn judge)")
    report = evaluate.evaluate([run_dir], run_dir / "eval", num=size.eval_samples, length=size.sample_tokens,
                               seed=seed, checkpoint="last", progress=progress)
    entry = report["sources"]["demo"]
    summary = {
        "corpus": {"path": str(corpus_dir), "files": len(corpus)},
        "classifier": {"path": str(classifier_dir),
                       "test_balanced_accuracy": clf_metrics["test"]["file"]["balanced_accuracy"]},
        "run": {"path": str(run_dir), "best_val_nll": run_summary["best_val_nll"],
                "unigram_nll": run_summary["unigram_nll"]},
        "samples": {"path": str(samples_dir), "files": len(paths),
                    "mean_p_jazz": float(np.mean([s["probability"] for s in scores if "probability" in s]))},
        "evaluation": {"path": str(run_dir / "eval"), "closeness": entry["closeness"],
                       "p_jazz_baseline": entry.get("p_jazz_baseline"),
                       "reference_p_jazz_baseline": report["sources"]["reference"].get("p_jazz_baseline")},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
