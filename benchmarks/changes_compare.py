"""Does playing the changes help, and does the critic teach realism? On the lead-sheet corpus,
per seed, three generators of the same size trained for the same number of steps:

  (a) unconditioned MLE: MLE_STEPS, then MORE_STEPS more by MLE;
  (b) chord-conditioned MLE: the same, reading the chords;
  (c) chord-conditioned adversarial: (b)'s first MLE_STEPS, then MORE_STEPS of the adversarial
      phase against a chord-aware critic (started from a chord-aware classifier).

The chord runs are also calibrated (`ganmusic calibrate`, on their last checkpoint) and sampled
again: rows "+cal", with the teacher-forced val NLL of the calibrated weights.

Each is sampled over the held-out TEST split's changes (sample k plays over BEATS beats of test
solo k mod n, from a bar further in for each pass over the solos), written as MIDI with the
chord symbols, and judged by `ganmusic evaluate` against the real test solos (the same changes):
chord-tone share, H1, H4, GS, the two-sample realism test (a fresh classifier, not the critic)
and the melodic features. Validation NLL is each run's own, on the validation split. The
training split's solos are judged the same way (row "real training solos"): a model of them can
hardly be expected to come closer to the test split's performers than they do.

    python benchmarks/changes_compare.py                      # the issue's sizes: ~25 min a seed on 2 CPU cores
    python benchmarks/changes_compare.py --reduced            # a CPU-sized run (flags below)

Full sizes (the default): 2x256 LSTM, window 128, batch 32, 800 MLE steps + 200, 256 samples of
96 beats, seeds 0 and 1, a chord-aware conv classifier of 1500 steps. `--set KEY=VALUE` changes
an adversarial option of (c) (an AdvConfig field, e.g. `--set not_jazz_share=0.1`); each
`--variant KEY=VALUE[,KEY=VALUE...]` adds a run like (c) with those options, measured beside it
(how the critic's options were compared). Prints a table and saves JSON under
benchmarks/results/ (the runs and samples go to --out, and are reused when it is run again).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("COLUMNS", "200")  # the table is wide; rich reads this when output is not a terminal
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, RESULTS, report  # noqa: E402

REDUCED = dict(layers="64", mle_steps=200, more_steps=50, window=64, batch_size=16, samples=48, beats=64,
               classifier_steps=200)
PAPER_BEST = {"H1": 0.23, "H4": 0.04, "GS": 0.10}  # the Jazz Transformer's best |distance| to real WJazzD
TRAIN_SOLOS = "real-train-split"  # a row: the training solos, judged as a generator's samples are
CALIBRATED_SUFFIX = "+cal"  # the chord runs are also sampled after `ganmusic calibrate` (rows "b_chords_mle+cal"...)


def sample_over(run_dir: Path, forms, out_dir: Path, seed: int, batch: int = 64, sampling_config=None,
                calibrated: bool = False) -> None:
    """Samples of a run's last checkpoint (`calibrated`: with its calibration) over `forms`
    (`changes.corpus_forms`), as MIDI with the chord symbols."""
    import jax

    from ganmusic import runs, sampling
    from ganmusic.encoding import decode_to_midi
    from ganmusic.midi_writer import write_midi

    config, params = runs.restore_params(run_dir, "last", calibrated=calibrated)
    out_dir.mkdir(parents=True, exist_ok=True)
    spb = config.encoding.steps_per_beat
    cap = 3 * 4 * int(forms[0].beats) + 3  # at most 4 notes a beat
    for lo in range(0, len(forms), batch):
        part = forms[lo : lo + batch]
        rows = np.stack([f.rows(spb) for f in part])
        tokens = sampling.sample(params, config.generator, config.encoding, jax.random.PRNGKey(seed + lo), len(part),
                                 cap, sampling_config or sampling.SamplingConfig(), step_cond=rows)
        for k, (seq, form) in enumerate(zip(tokens, part)):
            write_midi(decode_to_midi(seq, config.encoding, chords=form.timeline), out_dir / f"sample{lo + k:04d}.mid")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "lead-sheets")
    parser.add_argument("--out", type=Path, default=Path("/tmp/changes_compare"))
    parser.add_argument("--reduced", action="store_true", help=f"CPU sizes: {REDUCED}")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--layers", default="256,256")
    parser.add_argument("--mle-steps", type=int, default=800)
    parser.add_argument("--more-steps", type=int, default=200, help="steps after the first MLE steps, MLE or adversarial")
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--beats", type=int, default=96, help="beats of changes per sample")
    parser.add_argument("--classifier-steps", type=int, default=1500, help="steps of the chord-aware classifier")
    parser.add_argument("--name", default="changes_compare", help="result file name under benchmarks/results/")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an adversarial option of (c) (AdvConfig field), e.g. not_jazz_share=0.1")
    parser.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                        help="another run like (c) with these adversarial options, e.g. lambda_fm=1,d_steps=2")
    args = parser.parse_args()
    if args.reduced:
        for key, value in REDUCED.items():
            if parser.get_default(key) == getattr(args, key):
                setattr(args, key, value)

    from ganmusic import calibration, changes, classify, data, evaluate, runs, train
    from ganmusic.configs import (AdvConfig, ClassifierConfig, EncodingConfig, GeneratorConfig, RunConfig,
                                  TrainConfig)

    fields = {f.name: f.type for f in dataclasses.fields(AdvConfig)}

    def options(items: list[str]) -> dict:
        out = {}
        for item in items:
            key, _, value = item.partition("=")
            if key not in fields or key in ("steps", "classifier"):
                parser.error(f"{item}: not a tunable AdvConfig field")
            out[key] = value if fields[key] == "str" else int(value) if fields[key] == "int" else float(value)
        return out

    overrides = options(args.set)
    variants = {"c_" + v.replace("=", "").replace(",", "_"): {**overrides, **options(v.split(","))} for v in args.variant}

    encoding = EncodingConfig()
    corpus = data.load_corpus(args.data, encoding, progress=False)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    critic = out / "critic"
    if not (critic / "config.json").exists():
        classify.train_classifier(corpus, critic, ClassifierConfig.for_vocab(corpus.vocab, chords=True),
                                  TrainConfig(steps=args.classifier_steps, seed=0), progress=True)
    forms = changes.corpus_forms(corpus, "test", args.beats, args.samples)
    layers = tuple(int(x) for x in args.layers.split(","))
    results, folders = {}, []
    for seed in args.seeds:
        common = dict(data=str(args.data), encoding=encoding, window=args.window, batch_size=args.batch_size,
                      eval_every=max(args.more_steps // 4, 1), checkpoint_every=10**6, seed=seed)
        runs_of_seed = {}
        for chords in (False, True):
            gen = GeneratorConfig.for_vocab(corpus.vocab, layers=layers, chords=chords)
            base = out / f"s{seed}-{'chords' if chords else 'plain'}-base"
            if not train.has_complete_checkpoint(base):  # (checkpoints: the last step only)
                train.train_run(RunConfig(generator=gen, mle_steps=args.mle_steps, **common), base, corpus=corpus)
            then = dict(common, init_from=str(base), eval_every=max(args.more_steps // 4, 1))
            name = "b_chords_mle" if chords else "a_plain_mle"
            runs_of_seed[name] = RunConfig(generator=gen, mle_steps=args.more_steps, **then)
            if chords:
                for name, adv in {"c_chords_adv": overrides, **variants}.items():
                    runs_of_seed[name] = RunConfig(generator=gen, mle_steps=0, **then, adv=AdvConfig(
                        steps=args.more_steps, classifier=str(critic), sample_every=0, **adv))
        for name, config in runs_of_seed.items():
            run_dir = out / f"s{seed}-{name}"
            if not train.has_complete_checkpoint(run_dir):
                train.train_run(config, run_dir, corpus=corpus)
            val_nll = runs.MetricsLog.read(run_dir / "metrics.jsonl")[-1]["val_nll"]
            for calibrated in (False, True) if name != "a_plain_mle" else (False,):
                if calibrated and not (run_dir / runs.CALIBRATION).exists():
                    calibration.calibrate(run_dir, "last", seed=seed, corpus=corpus, progress=False)
                label = f"s{seed}-{name}{CALIBRATED_SUFFIX if calibrated else ''}"
                folder = out / "samples" / label
                if not folder.exists():
                    sample_over(run_dir, forms, folder.with_name(folder.name + ".partial"), seed, calibrated=calibrated)
                    folder.with_name(folder.name + ".partial").rename(folder)
                folders.append(folder)
                results[label] = {"val_nll": json.loads((run_dir / runs.CALIBRATION).read_text())["val_nll_after"]
                                  if calibrated else val_nll}
    # The training solos themselves, judged like a generator: as close to the test solos as a model
    # of the training split can be expected to come (other performers than the test split's).
    train_solos = out / "samples" / TRAIN_SOLOS
    train_solos.mkdir(parents=True, exist_ok=True)
    for i in corpus.indices("train", positive=True):
        link = train_solos / str(corpus.paths[i]).replace("/", "__")
        if not link.exists():
            link.symlink_to((corpus.root / corpus.paths[i]).resolve())
    folders.append(train_solos)
    results[TRAIN_SOLOS] = {"val_nll": None}
    evaluation = evaluate.evaluate(folders, out / "eval", against=args.data, num=args.samples, length=192, seed=7)
    real = evaluation["sources"]["reference"]
    real_ls = real["lead_sheet"]
    keys = ("chord_tone_share", "chord_tone_share_on_beats", "H1", "H4", "GS")
    for folder in folders:
        entry = evaluation["sources"][folder.name]
        results[folder.name].update({k: entry["lead_sheet"][k] for k in keys})
        results[folder.name]["realism_accuracy"] = entry["realism"]["accuracy"]
        results[folder.name].update(melodic(entry["means"]))
    reference = {**{k: real_ls[k] for k in keys}, "realism_floor": real["realism"]["accuracy"], **melodic(real["means"])}
    features = tuple(melodic(real["means"]))
    checks = bars(results, reference, args.seeds)
    checks.update(bars(results, reference, args.seeds, "b_chords_mle" + CALIBRATED_SUFFIX, "c_chords_adv" + CALIBRATED_SUFFIX))
    chord_runs = ["b_chords_mle", "c_chords_adv", *variants]
    names = ["a_plain_mle", *chord_runs, *(n + CALIBRATED_SUFFIX for n in chord_runs)]
    metrics = ["val_nll", "realism_accuracy", *keys, *features]
    short = ["val NLL", "2-sample acc", "chord tones", "on beats", "H1", "H4", "GS", "tritones", "whole-step down",
             "repeats", "pc entropy"]
    rows = [("real test jazz", *[fmt(reference.get("realism_floor" if m == "realism_accuracy" else m)) for m in metrics])]
    rows += [("real training solos (the ceiling)", *[fmt(results[TRAIN_SOLOS].get(m)) for m in metrics])]
    rows += [(f"seed {s} {n}", *[fmt(results[f"s{s}-{n}"].get(m)) for m in metrics]) for s in args.seeds for n in names]
    rows += [(f"bar: {k}", "yes" if ok else "NO", *[""] * (len(metrics) - 1)) for k, ok in checks.items()]
    report(args.name, f"{'REDUCED ' if args.reduced else ''}changes compare on {args.data.name}: layers {args.layers}, "
           f"{args.mle_steps}+{args.more_steps} steps, {args.samples} samples of {args.beats} beats (real: the "
           "2-sample column is the real-vs-real floor)", rows,
           {"args": {k: str(v) for k, v in vars(args).items()}, "results": results, "reference": reference,
            "checks": checks, "paper_best_distance": PAPER_BEST}, columns=("source", *short))


def melodic(means: dict) -> dict:
    """The melodic features the issue follows: tritone leaps, whole-step descents (from the
    mean interval histogram), same-pitch repeats and pitch-class entropy of a chunk."""
    from ganmusic.metrics import INTERVAL_CLIP

    hist = np.asarray(means["interval_histogram"])
    return {"tritone_leap_rate": float(hist[INTERVAL_CLIP - 6] + hist[INTERVAL_CLIP + 6]),
            "whole_step_descent_rate": float(hist[INTERVAL_CLIP - 2]),
            "same_pitch_repeat_rate": means["same_pitch_repeat_rate"], "pitch_class_entropy": means["pitch_class_entropy"]}


def fmt(x) -> str:
    return "" if x is None else f"{x:.4g}"


def bars(results: dict, real: dict, seeds: list[int], b: str = "b_chords_mle", c: str = "c_chords_adv") -> dict:
    """The issue's bars, on every seed, for (b) and (c) (or their calibrated rows: then "(b+cal)"...)."""
    real = {k: (np.nan if v is None else v) for k, v in real.items()}
    tag = CALIBRATED_SUFFIX if b.endswith(CALIBRATED_SUFFIX) else ""
    B, C = f"(b{tag})", f"(c{tag})"

    def r(seed, name):  # a metric that could not be measured (None) fails every bar it is in
        return {k: (np.nan if v is None else v) for k, v in results[f"s{seed}-{name}"].items()}

    def spread(metric):  # seed-to-seed spread of (b): how far a metric moves by chance
        values = [r(s, b)[metric] for s in seeds]
        return max(values) - min(values) if len(values) > 1 else 0.0

    out = {}
    if not tag:
        out["(b) val NLL below (a)"] = all(r(s, b)["val_nll"] < r(s, "a_plain_mle")["val_nll"] for s in seeds)
    out[f"{B} chord-tone share within 3 points of real"] = all(
        abs(r(s, b)["chord_tone_share"] - real["chord_tone_share"]) <= 0.03 for s in seeds)
    out[f"{C} realism accuracy below {B}"] = all(r(s, c)["realism_accuracy"] < r(s, b)["realism_accuracy"] for s in seeds)
    out[f"{C} val NLL within 5% of {B}"] = all(r(s, c)["val_nll"] <= 1.05 * r(s, b)["val_nll"] for s in seeds)
    moved = [m for m in ("chord_tone_share", "H1", "H4", "GS", "tritone_leap_rate", "whole_step_descent_rate")
             if m in real and any(not abs(r(s, c)[m] - real[m]) - abs(r(s, b)[m] - real[m]) <= spread(m) for s in seeds)]
    out[f"{C} no metric moves away from real by more than the seed spread" + (f" (moved: {', '.join(moved)})" if moved else "")] = not moved
    for name, label in ((b, B), (c, C)) if tag else ((c, C),):
        out[f"{label} H1, H4, GS closer to real than the Jazz Transformer's best"] = all(
            abs(r(s, name)[m] - real[m]) < PAPER_BEST[m] for s in seeds for m in PAPER_BEST)
    return out


if __name__ == "__main__":
    main()
