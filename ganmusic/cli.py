"""The `ganmusic` command: parse options, call the library, print with rich.

User errors (missing folders, bad layouts, unusable checkpoints) print one line and exit non-zero;
they never show a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ganmusic.ui import console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Learn a musical style from labelled MIDI and generate new music in it.")
data_app = typer.Typer(no_args_is_help=True, help="Inspect and prepare labelled MIDI corpora.")
app.add_typer(data_app, name="data")

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem with the user's input, reported as one line."""


def fail(message: str, code: int = EXIT_USER_ERROR):
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def user_errors(func):
    """Report the library's user-facing errors as one line with exit code 2, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from ganmusic.classify import ClassifierError
        from ganmusic.data import CorpusError
        from ganmusic.encoding import MidiError

        try:
            return func(*args, **kwargs)
        except (CorpusError, MidiError, UserError, ClassifierError) as exc:
            fail(str(exc))

    return wrapper


def encoding_options(steps_per_beat: int, melody: bool):
    from ganmusic.encoding import EncodingConfig

    return EncodingConfig(steps_per_beat=steps_per_beat, melody=melody)


@data_app.command("inspect")
@user_errors
def data_inspect(
    path: Path = typer.Argument(..., help="Corpus: folder of label subfolders, or a manifest.csv."),
    positive: str = typer.Option("jazz", help="The positive label (the style to learn)."),
    steps_per_beat: int = typer.Option(12, help="Quantization grid, steps per beat."),
    melody: bool = typer.Option(False, "--melody/--all-notes", help="Skyline melody or all notes."),
    min_notes: int = typer.Option(8, help="Files with fewer notes are skipped."),
    out: Path = typer.Option(Path("."), help="Folder for the histogram PNG and the JSON report."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    workers: Optional[int] = typer.Option(None, help="Parser processes (default: all cores)."),
    seed: int = typer.Option(0, help="Seed of the train/val/test split."),
):
    """Parse a corpus (cached) and report files, notes, splits and skipped files."""
    from ganmusic import data, plots

    corpus = data.load_corpus(path, encoding_options(steps_per_beat, melody), positive=positive,
                              min_notes=min_notes, workers=workers, split_seed=seed,
                              require_positive=False)
    summary = data.corpus_summary(corpus)
    name = corpus.root.name or "corpus"
    out.mkdir(parents=True, exist_ok=True)
    report_path = out / f"{name}-inspect.json"
    report_path.write_text(json.dumps(summary, indent=2))
    png = plots.corpus_histograms(corpus, out / f"{name}-inspect.png") if len(corpus) else None
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        table = Table(title=f"{corpus.root}  (positive label: {positive})")
        for col in ("label", "files", "notes", "tokens", "train", "val", "test"):
            table.add_column(col, justify="left" if col == "label" else "right")
        for label, row in summary["labels"].items():
            table.add_row(label, *(f"{row[k]:,}" for k in ("files", "notes", "tokens", "train", "val", "test")))
        console.print(table)
        if corpus.skipped:
            skipped = Table(title=f"skipped files ({len(corpus.skipped)})")
            skipped.add_column("file")
            skipped.add_column("reason")
            for p, reason in corpus.skipped:
                skipped.add_row(p, reason)
            console.print(skipped)
        console.print(f"report: {report_path}" + (f"\nhistograms: {png}" if png else ""))
    if len(corpus) == 0:
        fail(f"{path}: no usable MIDI file ({len(corpus.skipped)} skipped)", code=1)


# ---------------------------------------------------------------------------------------------
# Classifier
# ---------------------------------------------------------------------------------------------

CLASSIFIERS = Path("classifiers")


@app.command("train-classifier")
@user_errors
def train_classifier(
    data_path: Path = typer.Argument(..., metavar="DATA", help="Corpus: folder of label subfolders, or a manifest.csv."),
    name: Optional[str] = typer.Option(None, help="Folder name under --root (default from the settings)."),
    root: Path = typer.Option(CLASSIFIERS, help="Where classifier folders go."),
    positive: str = typer.Option("jazz", help="The positive label (the style to recognise)."),
    window: int = typer.Option(64, min=16, max=1024, help="Window length in tokens (3 per note)."),
    steps: int = typer.Option(1500, min=1, help="Training steps (ignored with --epochs)."),
    epochs: Optional[float] = typer.Option(None, min=0.01, help="Train for this many passes over the training windows."),
    batch_size: int = typer.Option(64, min=2),
    lr: float = typer.Option(2e-3, help="Peak learning rate (warm-up, then cosine decay)."),
    encoder: str = typer.Option("conv", help="conv (dilated 1-D convolutions) or gru (bidirectional)."),
    hidden: int = typer.Option(64, min=4, help="Width of the encoder."),
    layers: int = typer.Option(4, min=1, help="Encoder blocks."),
    dropout: float = typer.Option(0.1, min=0.0, max=0.9),
    transpose: int = typer.Option(6, min=0, max=24, help="Transposition augmentation range in semitones (0: off)."),
    steps_per_beat: int = typer.Option(12, min=1, help="Quantization grid, steps per beat."),
    melody: bool = typer.Option(False, "--melody/--all-notes", help="Skyline melody or all notes."),
    force: bool = typer.Option(False, "--force", help="Replace an existing classifier of that name."),
    seed: int = typer.Option(0, help="Seed of initialisation, batches and augmentation."),
):
    """Train a style classifier (positive label vs the rest) and evaluate it on held-out performers."""
    from ganmusic import classify, data
    from ganmusic.models import ClassifierConfig

    corpus = data.load_corpus(data_path, encoding_options(steps_per_beat, melody), positive=positive)
    name = name or f"{encoder}-w{window}-s{seed}"
    out = root / name
    if out.exists() and not force:
        raise UserError(f"{out} exists; choose another --name or pass --force to replace it")
    if epochs is not None:
        n_windows = len(data.eval_windows(corpus, corpus.indices("train"), window).tokens)
        steps = max(1, int(epochs * n_windows / batch_size))
    try:
        model_config = ClassifierConfig.for_vocab(corpus.vocab, encoder=encoder, hidden=hidden,
                                                  layers=layers, dropout=dropout)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    train_config = classify.TrainConfig(window=window, steps=steps, batch_size=batch_size, lr=lr,
                                        transpose=transpose, seed=seed, eval_every=max(1, min(100, steps // 10)))
    console.print(f"training {out} on {len(corpus)} files ({corpus.positive} vs rest), {steps} steps")
    metrics = classify.train_classifier(corpus, out, model_config, train_config)
    table = Table(title=f"{out}: held-out test split (best step {metrics['best_step']})")
    table.add_column("model")
    table.add_column("level")
    for col in ("n", "bal. acc", "ROC-AUC", "F1", "accuracy", "TN FP FN TP"):
        table.add_column(col, justify="right")
    for model_name, part in (("neural", metrics["test"]), ("baseline", metrics["baseline"])):
        for level in ("window", "file"):
            r = part[level]
            table.add_row(model_name, level, str(r["n"]), f"{r['balanced_accuracy']:.3f}", f"{r['roc_auc']:.3f}",
                          f"{r['f1']:.3f}", f"{r['accuracy']:.3f}", " ".join(str(v) for row in r["confusion"] for v in row))
    print_result(table)
    console.print(f"wrote {out}/ (config.json, checkpoint/, metrics.json, training.png)")


def latest_classifier(root: Path = CLASSIFIERS) -> Path:
    found = sorted(root.glob("*/config.json"), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    if not found:
        raise UserError(f"no trained classifier in {root}/: run 'ganmusic train-classifier DATA' or pass --classifier")
    return found[-1].parent


def expand_inputs(inputs: list[str]) -> list[str]:
    """Files, folders (recursively, MIDI files only) and globs, in the order given."""
    import glob

    from ganmusic.data import is_midi

    out = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            out += sorted(str(p) for p in path.rglob("*") if p.is_file() and is_midi(p))
        elif not path.exists() and any(ch in item for ch in "*?["):
            out += sorted(p for p in glob.glob(item, recursive=True) if Path(p).is_file())
        else:
            out.append(item)  # a missing file becomes an error row, not a crash
    return out


@app.command("score")
@user_errors
def score(
    inputs: list[str] = typer.Argument(..., metavar="PATH...", help="MIDI files, folders (recursive) or globs."),
    classifier: Optional[Path] = typer.Option(None, help="Classifier folder (default: the newest in classifiers/)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV on stdout."),
    windows: bool = typer.Option(False, "--windows", help="Per-window jazziness timeline per file, saved as PNG."),
    out: Path = typer.Option(Path("scores"), help="Folder for the timeline PNGs (with --windows)."),
    workers: Optional[int] = typer.Option(None, help="Parser processes (default: all cores)."),
    seed: int = typer.Option(0, help="Unused by scoring (deterministic); accepted for uniformity."),
):
    """Jazziness (P(positive label)) of any MIDI files; exit 1 if any file failed."""
    from ganmusic import classify, plots

    if as_json and as_csv:
        raise UserError("choose one of --json and --csv")
    if classifier is None:
        classifier = latest_classifier()
        console.print(f"using classifier {classifier} (the newest in {CLASSIFIERS}/)")
    model = classify.Classifier.load(classifier)
    paths = expand_inputs(inputs)
    if not paths:
        raise UserError(f"no MIDI files found in {' '.join(inputs)}")
    results = classify.score_files(model, paths, workers=workers, progress=not (as_json or as_csv))
    label = model.positive
    for r in results:
        if "probability" in r:
            r["verdict"] = label if r["probability"] >= model.threshold else f"not {label}"
            if windows:
                r["timeline_png"] = str(plots.window_timeline(
                    r["windows"], model.window, out / (Path(r["file"]).stem + "-timeline.png"),
                    title=f"{Path(r['file']).name}: P({label}) per window"))
            if not windows:
                r.pop("windows")
    ranked = sorted(results, key=lambda r: (-r.get("probability", -1.0), r["file"]))
    if as_json:
        print(json.dumps({"classifier": str(classifier), "results": ranked}, indent=2))
    elif as_csv:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(["file", f"p_{label}", "notes", "verdict", "error"])
        for r in ranked:
            writer.writerow([r["file"], f"{r['probability']:.4f}" if "probability" in r else "",
                             r.get("notes", ""), r.get("verdict", ""), r.get("error", "")])
    else:
        table = Table(title=f"P({label}) by {classifier}")
        for col, justify in (("file", "left"), (f"P({label})", "right"), ("notes", "right"), ("verdict", "left")):
            table.add_column(col, justify=justify)
        for r in ranked:
            if "probability" in r:
                table.add_row(r["file"], f"{r['probability']:.3f}", str(r["notes"]), r["verdict"])
            else:
                table.add_row(r["file"], "-", "-", f"[red]error: {r['error']}[/]")
        print_result(table)
    failed = [r for r in results if "error" in r]
    if failed:
        for r in failed:
            console.print(f"[red]error:[/] {r['file']}: {r['error']}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def print_result(renderable):
    """Results go to stdout (progress and messages go to stderr)."""
    from rich.console import Console

    Console(width=None if sys.stdout.isatty() else 160).print(renderable)


def main():
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
