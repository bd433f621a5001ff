"""Train the pretrained default that ships inside the package (`ganmusic/pretrained/`).

    python scripts/train_default.py [--data ../shared/data/lead-sheets] [--seed 0]

Data: the lead-sheets corpus's Weimar Jazz Database solos (label jazz; ODbL 1.0) against its
POP909 pop melodies (label not_jazz; MIT) only. Its Nottingham folk tunes are left out: they are
GPL-3.0, and we ship weights learned from the data, so we keep to sources whose licence plainly
allows that. The script writes a filtered manifest (those two sources) under `--work`, trains

- a small timing-blind classifier (pitches only: a user's MIDI may be performed, not quantized,
  and the pop files are snapped to sixteenths while the solos hold triplets), and
- the generator `benchmarks/changes_compare.py` measured closest to the held-out solos: a 2x256
  LSTM that reads the chords, maximum likelihood on the jazz solos over their changes (no
  adversarial phase), then `ganmusic calibrate` (12 rounds),

then copies what loading needs (config JSON, metrics, calibration, orbax arrays: no optimizer
state) into `--out`, replacing what is there, with `about.json` (data, licences, settings,
held-out results).
Same seed, same JAX version and machine type: the same weights (CPU runs are deterministic).
About 8 minutes of a 2-core CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = {"wjazzd": "Weimar Jazz Database (Jazzomat Research Project): Open Database License (ODbL) 1.0",
           "pop909": "POP909 (Wang et al., ISMIR 2020): MIT"}
DATA_NOTE = "lead-sheets corpus: wjazzd (jazz) + pop909 (not_jazz); built by scripts/train_default.py"


def filtered_manifest(data: Path, work: Path) -> Path:
    """`work/corpus/manifest.csv`: the rows of `data/manifest.csv` whose source is in SOURCES,
    with absolute paths (the corpus is read where it lies)."""
    with open(data / "manifest.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if r["source"] in SOURCES]
        fields = reader.fieldnames
    out = work / "corpus" / "manifest.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "path": str((data / r["path"]).resolve())})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "lead-sheets")
    parser.add_argument("--work", type=Path, default=Path("/tmp/ganmusic-pretrained"),
                        help="Scratch folder for the corpus manifest and the full training outputs.")
    parser.add_argument("--out", type=Path, default=REPO / "ganmusic" / "pretrained")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classifier-steps", type=int, default=800)
    parser.add_argument("--mle-steps", type=int, default=1000)
    args = parser.parse_args(argv)

    from ganmusic import calibration, classify, data, train
    from ganmusic.configs import ClassifierConfig, EncodingConfig, GeneratorConfig, RunConfig, TrainConfig

    if not (args.data / "manifest.csv").is_file():
        print(f"{args.data}: no manifest.csv (the shared lead-sheets corpus)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    manifest = filtered_manifest(args.data, args.work)
    corpus = data.load_corpus(manifest, EncodingConfig(), positive="jazz", allow_outside=True)
    print(f"corpus: {len(corpus)} files ({int(corpus.is_positive.sum())} jazz), {len(corpus.skipped)} skipped")

    clf_config = ClassifierConfig.for_vocab(corpus.vocab, timing=False, hidden=32, layers=3)
    clf_train = TrainConfig(window=64, steps=args.classifier_steps, batch_size=64, seed=args.seed)
    clf_dir = args.work / "classifier"
    clf_metrics = classify.train_classifier(corpus, clf_dir, clf_config, clf_train)

    run_config = RunConfig(data=str(manifest), allow_outside=True, seed=args.seed, window=128, batch_size=32,
                           mle_steps=args.mle_steps, eval_every=50, checkpoint_every=args.mle_steps,
                           generator=GeneratorConfig.for_vocab(corpus.vocab, layers=(256, 256), chords=True))
    run_dir = args.work / "generator"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    summary = train.train_run(run_config, run_dir, corpus=corpus)
    calibrated = calibration.calibrate(run_dir, "best", seed=args.seed, corpus=corpus)

    out = args.out
    if out.exists():
        shutil.rmtree(out)
    (out / "classifier").mkdir(parents=True)
    clf = json.loads((clf_dir / "config.json").read_text())
    clf["data"]["root"] = DATA_NOTE
    (out / "classifier" / "config.json").write_text(json.dumps(clf, indent=2))
    shutil.copy(clf_dir / "metrics.json", out / "classifier" / "metrics.json")
    shutil.copytree(clf_dir / "checkpoint", out / "classifier" / "checkpoint")
    (out / "generator").mkdir()
    run = json.loads((run_dir / "config.json").read_text())
    run["data"] = DATA_NOTE
    (out / "generator" / "config.json").write_text(json.dumps(run, indent=2))
    for name in ("metrics.jsonl", "calibration.json"):
        shutil.copy(run_dir / name, out / "generator" / name)
    shutil.copytree(run_dir / "best", out / "generator" / "best")

    test = clf_metrics["test"]["file"]
    about = {
        "what": "ganmusic's pretrained default: used by `ganmusic score` and `ganmusic sample` when no "
                "classifier or run is given",
        "data": {"corpus": "../shared/data/lead-sheets (sources wjazzd and pop909 only; nottingham left out: GPL-3.0)",
                 "sources": SOURCES, "files": len(corpus), "jazz_files": int(corpus.is_positive.sum())},
        "command": f"python scripts/train_default.py --seed {args.seed} --classifier-steps {args.classifier_steps} "
                   f"--mle-steps {args.mle_steps}",
        "classifier": {"model": clf["model"], "train": clf["train"], "best_step": clf_metrics["best_step"],
                       "test_file_balanced_accuracy": test["balanced_accuracy"], "test_file_roc_auc": test["roc_auc"],
                       "test_files": test["n"]},
        "generator": {"model": run["generator"], "window": run["window"], "batch_size": run["batch_size"],
                      "mle_steps": run["mle_steps"], "best_val_nll": summary["best_val_nll"],
                      "unigram_nll": summary["unigram_nll"], "calibration_rounds": calibrated["rounds"],
                      "calibrated_val_nll": calibrated["val_nll_after"]},
        "seconds": round(time.perf_counter() - started),
    }
    (out / "about.json").write_text(json.dumps(about, indent=2) + "\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(json.dumps(about, indent=2))
    print(f"wrote {out}/ ({size / 2**20:.2f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
