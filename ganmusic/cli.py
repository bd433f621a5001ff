"""The `ganmusic` command: parse options, call the library, print with rich.

User errors (missing folders, bad layouts, unusable checkpoints) print one line and exit non-zero;
they never show a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from ganmusic import cli_generator, data, importers
from ganmusic.cli_common import (ALLOW_OUTSIDE_HELP, MARKUP_MODE, MELODY, SPB, UserError, cache_compiled_programs,
                                 encoding_options, fail, folder_name, param_default, print_result, shown, user_errors)
from ganmusic.configs import ClassifierConfig, TrainConfig, default
from ganmusic.ui import console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=MARKUP_MODE,
                  help="Learn a musical style from labelled MIDI and generate new music in it.")
data_app = typer.Typer(no_args_is_help=True, rich_markup_mode=MARKUP_MODE,
                       help="Inspect and prepare labelled MIDI corpora.")
app.add_typer(data_app, name="data")


def print_version(value: bool):
    if value:
        from importlib.metadata import version

        print(f"ganmusic {version('ganmusic')}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=print_version, is_eager=True,
                                 help="Print the version and exit."),
):
    """Learn a musical style from labelled MIDI and generate new music in it."""
    cache_compiled_programs()


@data_app.command("inspect")
@user_errors
def data_inspect(
    path: Path = typer.Argument(..., metavar="DATA", help="Corpus: folder of label subfolders, or a manifest.csv."),
    positive: str = typer.Option(param_default(data.load_corpus, "positive"), help="The positive label (the style to learn)."),
    steps_per_beat: int = typer.Option(SPB, help="Quantization grid, steps per beat."),
    melody: bool = typer.Option(MELODY, "--melody/--all-notes", help="Skyline melody or all notes."),
    min_notes: int = typer.Option(param_default(data.load_corpus, "min_notes"), help="Files with fewer notes are skipped."),
    out: Path = typer.Option(Path("reports"), help="Folder for NAME-inspect.png and NAME-inspect.json."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    workers: Optional[int] = typer.Option(None, help="Parser processes (default: all cores)."),
    seed: int = typer.Option(0, help="Seed of the train/val/test split."),
    allow_outside: bool = typer.Option(False, "--allow-outside", help=ALLOW_OUTSIDE_HELP),
):
    """Parse a corpus (cached) and report files, notes, splits, skipped files and chords
    (coverage and quality histogram per label, every unparsed symbol with its files)."""
    from ganmusic import data

    report = data.inspect_corpus(path, out, encoding_options(steps_per_beat, melody), positive=positive,
                                 min_notes=min_notes, workers=workers, split_seed=seed, allow_outside=allow_outside)
    corpus, summary = report.corpus, report.summary
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        table = Table(title=f"{corpus.root}  (positive label: {positive})")
        for col in ("label", "files", "notes", "tokens", "train", "val", "test"):
            table.add_column(col, justify="left" if col == "label" else "right")
        for label, row in summary["labels"].items():
            table.add_row(label, *(f"{row[k]:,}" for k in ("files", "notes", "tokens", "train", "val", "test")))
        print_result(table)
        if corpus.skipped:
            skipped = Table(title=f"skipped files ({len(corpus.skipped)})")
            skipped.add_column("file", overflow="fold")
            skipped.add_column("reason", overflow="fold")
            for p, reason in corpus.skipped:
                skipped.add_row(escape(shown(p)), escape(reason))
            print_result(skipped)
        print_chord_tables(summary["chords"])
        console.print(f"report: {report.json_path}" + (f"\nhistograms: {report.histograms}" if report.histograms else ""))
    if len(corpus) == 0:
        fail(f"{path}: no usable MIDI file ({len(corpus.skipped)} skipped)", code=1)


def print_chord_tables(chords: dict, top: int = 24):
    """Chord coverage per label, the quality histogram (changes per quality) and every unparsed
    symbol with its count and files."""
    labels = chords["labels"]
    if not any(row["files_with_chords"] for row in labels.values()) and not chords["unparsed"]:
        print_result("chords: none in any file (every note is 'no chord')")
        return
    table = Table(title="chords per label")
    for col in ("label", "files with chords", "notes", "under a chord", "coverage", "parsed"):
        table.add_column(col, justify="left" if col == "label" else "right")
    for label, row in labels.items():
        parsed = "-" if row["parsed_share"] is None else f"{row['parsed_share']:.2%}"
        table.add_row(label, f"{row['files_with_chords']:,} / {row['files']:,}", f"{row['notes']:,}",
                      f"{row['notes_with_chord']:,}", f"{row['coverage']:.1%}", parsed)
    print_result(table)
    qualities: dict[str, int] = {}
    for row in labels.values():
        for q, n in row["qualities"].items():
            qualities[q] = qualities.get(q, 0) + n
    hist = Table(title=f"chord qualities (changes per label; top {min(top, len(qualities))} of {len(qualities)})")
    hist.add_column("quality")
    for label in labels:
        hist.add_column(label, justify="right")
    for q, _ in sorted(qualities.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
        hist.add_row(q, *(f"{labels[label]['qualities'].get(q, 0):,}" for label in labels))
    print_result(hist)
    if chords["unparsed"]:
        bad = Table(title=f"unparsed chord symbols ({len(chords['unparsed'])}; treated as no chord)")
        for col in ("symbol", "count", "files"):
            bad.add_column(col, justify="right" if col == "count" else "left")
        for u in chords["unparsed"]:
            files = sorted(u["files"])
            bad.add_row(u["symbol"], f"{u['count']:,}", ", ".join(files[:3]) + (f" (+{len(files) - 3} more)" if len(files) > 3 else ""))
        print_result(bad)
    else:
        print_result("unparsed chord symbols: none")


# ---------------------------------------------------------------------------------------------
# Classifier
# ---------------------------------------------------------------------------------------------

CLASSIFIERS = Path("classifiers")


@data_app.command("weimar")
@user_errors
def data_weimar(
    source: Path = typer.Argument(..., metavar="SOURCE", help="wjazzd.db (the Weimar Jazz Database's SQLite file) or a folder of its solo CSVs."),
    out: Path = typer.Argument(..., metavar="OUT", help="Folder to write LABEL/*.mid and manifest.csv into."),
    label: str = typer.Option(param_default(importers.import_weimar, "label"), help="Label of every solo."),
    tempo: float = typer.Option(param_default(importers.import_weimar, "tempo"),
                                help="CSV solos only: the tempo that defines their beats."),
    seed: int = typer.Option(0, help="Unused by the import (deterministic); accepted for uniformity."),
):
    """Turn the Weimar Jazz Database into labelled MIDI (one file per solo, performer as group).
    Add not-jazz files as OUT/not_jazz/*.mid rows in manifest.csv, or merge with another corpus.
    An unreadable solo is skipped with its reason and the rest imported; exit code 1 if any was
    skipped, 2 if the source is unusable (or no solo is)."""
    from ganmusic import importers

    result = importers.import_weimar(source, out, label=label, tempo=tempo)
    rows = result.rows
    for solo, reason in result.skipped:
        console.print(f"[yellow]skipped:[/] {solo}: {reason}", highlight=False, soft_wrap=True)
    console.print(f"wrote {len(rows)} solos by {len({r['group'] for r in rows})} performers to {out}/{label}/ "
                  f"and {out}/manifest.csv" + (f"; skipped {len(result.skipped)}" if result.skipped else ""))
    if result.skipped:
        raise typer.Exit(1)


@app.command("train-classifier")
@user_errors
def train_classifier(
    data_path: Path = typer.Argument(..., metavar="DATA", help="Corpus: folder of label subfolders, or a manifest.csv."),
    name: Optional[str] = typer.Option(None, help=f"Folder name under --root (default: built from the settings, "
                                              f"e.g. {default(ClassifierConfig, 'encoder')}-w{default(TrainConfig, 'window')}-s0)."),
    root: Path = typer.Option(CLASSIFIERS, help="Where classifier folders go."),
    positive: str = typer.Option(param_default(data.load_corpus, "positive"),
                                 help="The positive label (the style to recognise)."),
    window: int = typer.Option(default(TrainConfig, "window"), help="Window length in tokens (3 per note)."),
    steps: int = typer.Option(default(TrainConfig, "steps"), help="Training steps (ignored with --epochs)."),
    epochs: Optional[float] = typer.Option(None, help="Train for this many passes over the training windows."),
    batch_size: int = typer.Option(default(TrainConfig, "batch_size")),
    lr: float = typer.Option(default(TrainConfig, "lr"), help="Peak learning rate (warm-up, then cosine decay)."),
    encoder: str = typer.Option(default(ClassifierConfig, "encoder"),
                                help="conv (dilated 1-D convolutions) or gru (bidirectional; a scan on every "
                                     "backend: JAX has no cuDNN GRU kernel)."),
    hidden: int = typer.Option(default(ClassifierConfig, "hidden"), help="Width of the encoder."),
    layers: int = typer.Option(default(ClassifierConfig, "layers"), help="Encoder blocks."),
    dropout: float = typer.Option(default(ClassifierConfig, "dropout")),
    timing: bool = typer.Option(True, "--timing/--no-timing",
                                help="--no-timing: blind to rhythm, pitches only (for corpora whose timing differs "
                                     "for reasons other than style, e.g. performed against quantized files)."),
    chords: bool = typer.Option(False, "--chords/--no-chords",
                                help="Read each note's chord, the next chord and the bar position, relative to the "
                                     "chord's root (a critic for a chord-conditioned generator)."),
    transpose: int = typer.Option(default(TrainConfig, "transpose"),
                                  help="Transposition augmentation range in semitones (0: off)."),
    steps_per_beat: int = typer.Option(SPB, help="Quantization grid, steps per beat."),
    melody: bool = typer.Option(MELODY, "--melody/--all-notes", help="Skyline melody or all notes."),
    force: bool = typer.Option(False, "--force", help="Replace an existing classifier of that name."),
    allow_outside: bool = typer.Option(False, "--allow-outside", help=ALLOW_OUTSIDE_HELP),
    seed: int = typer.Option(0, help="Seed of initialisation, batches and augmentation."),
):
    """Train a style classifier (positive label vs the rest) and evaluate it on held-out performers."""
    from ganmusic import classify, data
    from ganmusic.encoding import Vocab

    name = folder_name(name, root)
    train_config = TrainConfig(window=window, steps=steps, batch_size=batch_size, lr=lr, transpose=transpose,
                               seed=seed)  # checked before any file is read
    encoding = encoding_options(steps_per_beat, melody)
    ClassifierConfig.for_vocab(Vocab(encoding), timing=timing, encoder=encoder, hidden=hidden, layers=layers,
                               dropout=dropout, chords=chords)
    corpus = data.load_corpus(data_path, encoding, positive=positive, allow_outside=allow_outside)
    if epochs is not None:
        steps = classify.steps_for_epochs(corpus, epochs, window, batch_size)
        train_config = TrainConfig(window=window, steps=steps, batch_size=batch_size, lr=lr, transpose=transpose,
                                   seed=seed)
    model_config = ClassifierConfig.for_vocab(corpus.vocab, timing=timing, encoder=encoder, hidden=hidden,
                                              layers=layers, dropout=dropout, chords=chords)
    out = root / (name or classify.default_name(model_config, train_config))
    if out.exists() and not force:
        raise UserError(f"{out} exists; choose another --name or pass --force to replace it")
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


def default_classifier() -> Path:
    """The newest classifier in classifiers/, else the pretrained default; says which."""
    from ganmusic import classify, pretrained

    try:
        found = classify.latest_classifier(CLASSIFIERS)
        console.print(f"using classifier {found} (the newest in {CLASSIFIERS}/)")
        return found
    except classify.ClassifierError:
        found = pretrained.classifier_path()
        console.print(f"using {pretrained.describe('classifier')} (no classifier in {CLASSIFIERS}/; "
                      "--classifier picks another)", highlight=False, soft_wrap=True)
        return found


@app.command("score")
@user_errors
def score(
    inputs: list[str] = typer.Argument(..., metavar="PATH...", help="MIDI files, folders (recursive) or globs."),
    classifier: Optional[Path] = typer.Option(None, help="Classifier folder (default: the newest in classifiers/, else the pretrained default)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV on stdout."),
    windows: bool = typer.Option(False, "--windows", help="Per-window jazziness timeline per file, saved as PNG."),
    out: Path = typer.Option(Path("scores"), help="Folder for the timeline PNGs (with --windows)."),
    workers: Optional[int] = typer.Option(None, help="Parser processes (default: all cores)."),
    seed: int = typer.Option(0, help="Unused by scoring (deterministic); accepted for uniformity."),
):
    """Jazziness (P(positive label)) of any MIDI files; exit 1 if any file failed."""
    from ganmusic import classify, data, plots, pretrained

    if as_json and as_csv:
        raise UserError("choose one of --json and --csv")
    if classifier is None:
        classifier = default_classifier()
    model = classify.Classifier.load(classifier)
    paths = data.expand_paths(inputs)
    if not paths:
        raise UserError(f"no MIDI files found in {' '.join(inputs)}")
    results = classify.score_files(model, paths, workers=workers, progress=not (as_json or as_csv))
    label = model.positive
    for r in results:
        if "probability" in r:
            r["verdict"] = label if r["probability"] >= model.threshold else f"not {label}"
            if windows:
                try:
                    r["timeline_png"] = shown(plots.window_timeline(
                        r["windows"], model.window, out / (Path(r["file"]).stem + "-timeline.png"),
                        title=f"{shown(Path(r['file']).name)}: P({label}) per window"))
                except (OSError, ValueError) as exc:  # a name too long for the suffix, a full disk
                    r["timeline_error"] = f"cannot write its timeline PNG ({getattr(exc, 'strerror', None) or exc})"
            if not windows:
                r.pop("windows")
        r["file"] = shown(r["file"])
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
        table = Table(title=f"P({label}) by {'the pretrained default' if pretrained.is_pretrained(classifier) else classifier}")
        for col, justify in (("file", "left"), (f"P({label})", "right"), ("notes", "right"), ("verdict", "left")):
            table.add_column(col, justify=justify)
        for r in ranked:
            if "probability" in r:
                table.add_row(escape(r["file"]), f"{r['probability']:.3f}", str(r["notes"]), r["verdict"])
            else:
                table.add_row(escape(r["file"]), "-", "-", f"[red]error: {escape(r['error'])}[/]")
        print_result(table)
    failed = [r for r in results if "error" in r or "timeline_error" in r]
    if failed:
        for r in failed:
            console.print(f"[red]error:[/] {escape(r['file'])}: {escape(r.get('error') or r['timeline_error'])}",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------

app.command("train-gan")(cli_generator.train_gan)
app.command("calibrate")(cli_generator.calibrate)
app.command("sample")(cli_generator.sample)
app.command("evaluate")(cli_generator.evaluate)
app.command("demo")(cli_generator.demo)


def main():
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
