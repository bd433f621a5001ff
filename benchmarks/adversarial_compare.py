"""Does the adversarial phase help? The same generator continued for the same number of steps
by maximum likelihood alone and by the adversarial phase, judged by a classifier neither run
trained against (a fresh one of the same kind, trained with another seed on the training split)
and by the scikit-learn baseline, on N samples each, with `ganmusic evaluate` (its report lands in
OUT/eval/).

    python benchmarks/adversarial_compare.py --base runs/BASE --classifier classifiers/NAME [--steps 200]

BASE is an MLE run (for example `ganmusic train-gan DATA --name BASE --window 128 --batch-size 32
--mle-steps 800`); NAME the classifier the discriminator starts from. On jazz-vs-folk use a
timing-blind one (`train-classifier --no-timing`): with timing, every judge tells the corpus's
performed jazz from its quantized folk by timing alone and scores all generated jazz 1.000.
`--set KEY=VALUE` changes an adversarial option from its default (`--set lambda_adv=0.3`).

Prints a table and saves JSON under benchmarks/results/: per run, the judges' mean P(jazz) with
its standard error, the difference in standard errors (|z| < 2 is within sampling noise), and
where the same judges put held-out real jazz (a judge that already scores both runs above real
jazz is saturated and cannot rank them).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

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
    parser.add_argument("--judge-steps", type=int, default=600)
    parser.add_argument("--out", type=Path, default=RESULTS / "adversarial_compare")
    parser.add_argument("--seed", type=int, help="seed of both continuations (default: the base run's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an adversarial option other than its default (AdvConfig field), e.g. lambda_adv=1.0")
    args = parser.parse_args()

    from ganmusic import classify, data, evaluate, runs, train
    from ganmusic.gan import AdvConfig

    fields = {f.name: f.type for f in dataclasses.fields(AdvConfig)}
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in fields or key in ("steps", "estimator", "classifier"):
            parser.error(f"--set {item}: not a tunable AdvConfig field")
        overrides[key] = int(value) if fields[key] == "int" else float(value)

    base = runs.load_run_config(args.base)
    corpus = data.load_corpus(base.data, base.encoding, positive=base.positive, progress=False)
    args.out.mkdir(parents=True, exist_ok=True)

    # The judge: a fresh classifier like the discriminator's start (same view of the music, so
    # a timing-blind discriminator gets a timing-blind judge), trained with another seed.
    judge_dir = args.out / "judge"
    if not (judge_dir / "config.json").exists():
        start = classify.Classifier.load(args.classifier)
        classify.train_classifier(corpus, judge_dir, start.model_config,
                                  classify.TrainConfig(window=start.window, steps=args.judge_steps, seed=12345),
                                  progress=True)

    common = dict(init_from=str(args.base), eval_every=max(args.steps // 4, 1), checkpoint_every=args.steps,
                  seed=base.seed if args.seed is None else args.seed)
    configs = {
        "mle": dataclasses.replace(base, mle_steps=args.steps, adv=AdvConfig(), **common),
        "adversarial": dataclasses.replace(base, mle_steps=0, adv=AdvConfig(
            steps=args.steps, estimator=args.estimator, classifier=str(args.classifier),
            sample_every=0, **overrides), **common),
    }
    for name, config in configs.items():
        if not (args.out / name / "config.json").exists():
            train.train_run(config, args.out / name, corpus=corpus)
    # Both runs' last checkpoints, measured by `ganmusic evaluate` against the held-out jazz.
    evaluation = evaluate.evaluate([args.out / name for name in configs], args.out / "eval", classifier=judge_dir,
                                     num=args.samples, length=args.length, seed=7, checkpoint="last")
    results = {}
    for name in configs:
        entry = evaluation["sources"][name]
        rows = runs.MetricsLog.read(args.out / name / "metrics.jsonl")
        results[name] = {
            "p_jazz_judge": entry["p_jazz"],
            "p_jazz_judge_se": entry["p_jazz_se"],
            "p_jazz_baseline_judge": entry["p_jazz_baseline"],
            "p_jazz_baseline_judge_se": entry["p_jazz_baseline_se"],
            "longest_pitch_run": entry["means"]["longest_pitch_run"],
            "same_pitch_repeat_rate": entry["means"]["same_pitch_repeat_rate"],
            "val_nll": rows[-1]["val_nll"],
            "closeness": entry["closeness"],
            "novelty": entry["means"].get("novelty"),
            "samples": entry["chunks"],
        }
    mle, adv = results["mle"], results["adversarial"]
    def z(key):  # the difference in standard errors: |z| < 2 is within sampling noise
        return (adv[key] - mle[key]) / max((adv[key + "_se"] ** 2 + mle[key + "_se"] ** 2) ** 0.5, 1e-12)

    significance = {"z_p_jazz_judge": z("p_jazz_judge"), "z_p_jazz_baseline_judge": z("p_jazz_baseline_judge")}
    checks = {
        "P(jazz) higher, independent neural judge": adv["p_jazz_judge"] > mle["p_jazz_judge"],
        "P(jazz) higher, sklearn judge": adv["p_jazz_baseline_judge"] > mle["p_jazz_baseline_judge"],
        "longest same-pitch run lower": adv["longest_pitch_run"] < mle["longest_pitch_run"],
        "same-pitch repeat rate lower": adv["same_pitch_repeat_rate"] < mle["same_pitch_repeat_rate"],
        "val NLL within 10%": adv["val_nll"] <= 1.1 * mle["val_nll"],
    }
    table_rows = [(key, f"{mle[key]:.6g}", f"{adv[key]:.6g}") for key in mle]
    # Where the judges put real jazz: a run scored above it is not short of jazziness by that judge.
    real = evaluation["sources"]["reference"]
    held_out = {"p_jazz_judge": real["p_jazz"], "p_jazz_baseline_judge": real["p_jazz_baseline"]}
    table_rows += [(f"{key} of held-out real jazz", f"{value:.6g}", "") for key, value in held_out.items()]
    table_rows += [(f"{k} (adversarial - MLE, in standard errors)", "", f"{v:+.2f}") for k, v in significance.items()]
    table_rows += [(f"bar: {k}", "", "yes" if ok else "NO") for k, ok in checks.items()]
    report("adversarial_compare", f"{args.steps} more steps from {args.base}: MLE (left) vs adversarial (right), "
           f"{args.samples} samples each", table_rows,
           {"args": {k: str(v) for k, v in vars(args).items()}, "results": results, "checks": checks,
            "significance": significance, "held_out_real_jazz": held_out},
           columns=("metric", "MLE only", "adversarial"))


if __name__ == "__main__":
    main()
