"""Does the adversarial phase help? The same generator continued for the same number of steps
by maximum likelihood alone and by the adversarial phase, judged by a classifier neither run
trained against (a fresh one, trained with another seed on the training split) and by the
scikit-learn baseline, on N samples each.

    python benchmarks/adversarial_compare.py --base runs/BASE --classifier classifiers/NAME [--steps 200]

BASE is an MLE run (for example `ganmusic train-gan DATA --name BASE --window 128 --batch-size 32
--mle-steps 800`); NAME the classifier the discriminator starts from. Prints a table and saves
JSON under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, report  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--classifier", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--estimator", default="gumbel")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--length", type=int, default=192, help="tokens per sample (3 per note)")
    parser.add_argument("--judge-steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=RESULTS / "adversarial_compare")
    args = parser.parse_args()

    import jax

    from ganmusic import classify, data, metrics, sampling, train
    from ganmusic import encoding as enc
    from ganmusic.gan import AdvConfig
    from ganmusic.models import ClassifierConfig

    base = train.load_run_config(args.base)
    corpus = data.load_corpus(base.data, base.encoding, positive=base.positive, progress=False)
    args.out.mkdir(parents=True, exist_ok=True)

    judge_dir = args.out / "judge"
    if not (judge_dir / "config.json").exists():
        classify.train_classifier(corpus, judge_dir, ClassifierConfig.for_vocab(corpus.vocab, hidden=64),
                                  classify.TrainConfig(steps=args.judge_steps, seed=12345), progress=True)
    judge = classify.Classifier.load(judge_dir)
    baseline_judge = classify.train_baseline(corpus, judge.window, seed=12345)

    common = dict(init_from=str(args.base), eval_every=max(args.steps // 4, 1), checkpoint_every=args.steps,
                  seed=base.seed)
    configs = {
        "mle": dataclasses.replace(base, mle_steps=args.steps, adv=AdvConfig(), **common),
        "adversarial": dataclasses.replace(base, mle_steps=0, adv=AdvConfig(
            steps=args.steps, estimator=args.estimator, classifier=str(args.classifier),
            sample_every=0), **common),
    }
    vocab = corpus.vocab
    results = {}
    for name, config in configs.items():
        run_dir = args.out / name
        if not (run_dir / "config.json").exists():
            train.train_run(config, run_dir, corpus=corpus)
        _, params = train.restore_params(run_dir, "last")
        tokens = sampling.sample(params, config.generator, config.encoding, jax.random.PRNGKey(7), args.samples,
                                 args.length)
        notes = [enc.tokens_to_notes(row, vocab) for row in tokens]
        scores = [r["probability"] for r in judge.score_sequences(list(tokens))]
        windows = data.tile_windows(list(tokens), vocab, judge.window)
        base_logits = baseline_judge.decision_function(classify.style_features(windows.tokens, windows.mask, vocab))
        base_scores = classify.sigmoid(classify.file_logits(base_logits, windows.file_index, len(tokens)))
        rows = train.MetricsLog.read(run_dir / "metrics.jsonl")
        results[name] = {
            "p_jazz_judge": float(np.mean(scores)),
            "logit_jazz_judge": float(np.mean(np.log(np.clip(scores, 1e-9, 1)) - np.log(np.clip(1 - np.array(scores), 1e-9, 1)))),
            "p_jazz_baseline_judge": float(np.mean(base_scores)),
            "longest_pitch_run": float(np.mean([metrics.longest_pitch_run(n) for n in notes])),
            "same_pitch_repeat_rate": float(np.mean([metrics.same_pitch_repeat_rate(n) for n in notes])),
            "val_nll": rows[-1]["val_nll"],
        }
    mle, adv = results["mle"], results["adversarial"]
    checks = {
        # Compared on the mean logit: P(jazz) saturates near 1 and would hide which is higher.
        "P(jazz) higher (judge, mean logit)": adv["logit_jazz_judge"] > mle["logit_jazz_judge"],
        "longest same-pitch run lower": adv["longest_pitch_run"] < mle["longest_pitch_run"],
        "same-pitch repeat rate lower": adv["same_pitch_repeat_rate"] < mle["same_pitch_repeat_rate"],
        "val NLL within 10%": adv["val_nll"] <= 1.1 * mle["val_nll"],
    }
    table_rows = [(key, f"{mle[key]:.6g}", f"{adv[key]:.6g}") for key in mle]
    table_rows += [(f"bar: {k}", "", "yes" if ok else "NO") for k, ok in checks.items()]
    report("adversarial_compare", f"{args.steps} more steps from {args.base}: MLE (left) vs adversarial (right), "
           f"{args.samples} samples each", table_rows,
           {"args": {k: str(v) for k, v in vars(args).items()}, "results": results, "checks": checks},
           columns=("metric", "MLE only", "adversarial"))


if __name__ == "__main__":
    main()
