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

from ganmusic.configs import (AdvConfig, ClassifierConfig, EncodingConfig, GeneratorConfig, RunConfig,
                              SamplingConfig, TrainConfig, default)
from ganmusic.errors import GanmusicError
from ganmusic.ui import console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Learn a musical style from labelled MIDI and generate new music in it.")
data_app = typer.Typer(no_args_is_help=True, help="Inspect and prepare labelled MIDI corpora.")
app.add_typer(data_app, name="data")

EXIT_USER_ERROR = 2


class UserError(GanmusicError):
    """A problem with the command line itself (options that cannot go together)."""


def fail(message: str, code: int = EXIT_USER_ERROR):
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def user_errors(func):
    """Report the library's user-facing errors (`GanmusicError`) as one line with their exit code
    (2, or 1 for a diverged training run), not a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except GanmusicError as exc:
            fail(str(exc), code=exc.exit_code)

    return wrapper


def encoding_options(steps_per_beat: int, melody: bool) -> EncodingConfig:
    return EncodingConfig(steps_per_beat=steps_per_beat, melody=melody)


# Option defaults come from the config dataclasses (configs.py), the one source of defaults and
# ranges; the dataclasses check the values.
SPB = default(EncodingConfig, "steps_per_beat")
MELODY = default(EncodingConfig, "melody")


@data_app.command("inspect")
@user_errors
def data_inspect(
    path: Path = typer.Argument(..., help="Corpus: folder of label subfolders, or a manifest.csv."),
    positive: str = typer.Option("jazz", help="The positive label (the style to learn)."),
    steps_per_beat: int = typer.Option(SPB, help="Quantization grid, steps per beat."),
    melody: bool = typer.Option(MELODY, "--melody/--all-notes", help="Skyline melody or all notes."),
    min_notes: int = typer.Option(8, help="Files with fewer notes are skipped."),
    out: Path = typer.Option(Path("."), help="Folder for the histogram PNG and the JSON report."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    workers: Optional[int] = typer.Option(None, help="Parser processes (default: all cores)."),
    seed: int = typer.Option(0, help="Seed of the train/val/test split."),
):
    """Parse a corpus (cached) and report files, notes, splits, skipped files and chords
    (coverage and quality histogram per label, every unparsed symbol with its files)."""
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
        print_result(table)
        if corpus.skipped:
            skipped = Table(title=f"skipped files ({len(corpus.skipped)})")
            skipped.add_column("file")
            skipped.add_column("reason")
            for p, reason in corpus.skipped:
                skipped.add_row(p, reason)
            print_result(skipped)
        print_chord_tables(summary["chords"])
        console.print(f"report: {report_path}" + (f"\nhistograms: {png}" if png else ""))
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
    source: Path = typer.Argument(..., help="wjazzd.db (the Weimar Jazz Database's SQLite file) or a folder of its solo CSVs."),
    out: Path = typer.Argument(..., help="Folder to write LABEL/*.mid and manifest.csv into."),
    label: str = typer.Option("jazz", help="Label of every solo."),
    tempo: float = typer.Option(120.0, min=10.0, help="CSV solos only: the tempo that defines their beats."),
):
    """Turn the Weimar Jazz Database into labelled MIDI (one file per solo, performer as group).
    Add not-jazz files as OUT/not_jazz/*.mid rows in manifest.csv, or merge with another corpus."""
    from ganmusic import importers

    rows = importers.import_weimar(source, out, label=label, tempo=tempo)
    console.print(f"wrote {len(rows)} solos by {len({r['group'] for r in rows})} performers to {out}/{label}/ "
                  f"and {out}/manifest.csv")


@app.command("train-classifier")
@user_errors
def train_classifier(
    data_path: Path = typer.Argument(..., metavar="DATA", help="Corpus: folder of label subfolders, or a manifest.csv."),
    name: Optional[str] = typer.Option(None, help="Folder name under --root (default from the settings)."),
    root: Path = typer.Option(CLASSIFIERS, help="Where classifier folders go."),
    positive: str = typer.Option("jazz", help="The positive label (the style to recognise)."),
    window: int = typer.Option(default(TrainConfig, "window"), help="Window length in tokens (3 per note)."),
    steps: int = typer.Option(default(TrainConfig, "steps"), help="Training steps (ignored with --epochs)."),
    epochs: Optional[float] = typer.Option(None, help="Train for this many passes over the training windows."),
    batch_size: int = typer.Option(default(TrainConfig, "batch_size")),
    lr: float = typer.Option(default(TrainConfig, "lr"), help="Peak learning rate (warm-up, then cosine decay)."),
    encoder: str = typer.Option(default(ClassifierConfig, "encoder"),
                                help="conv (dilated 1-D convolutions) or gru (bidirectional)."),
    hidden: int = typer.Option(default(ClassifierConfig, "hidden"), help="Width of the encoder."),
    layers: int = typer.Option(default(ClassifierConfig, "layers"), help="Encoder blocks."),
    dropout: float = typer.Option(default(ClassifierConfig, "dropout")),
    timing: bool = typer.Option(True, "--timing/--no-timing",
                                help="--no-timing: blind to rhythm, pitches only (for corpora whose timing differs "
                                     "for reasons other than style, e.g. performed against quantized files)."),
    transpose: int = typer.Option(default(TrainConfig, "transpose"),
                                  help="Transposition augmentation range in semitones (0: off)."),
    steps_per_beat: int = typer.Option(SPB, help="Quantization grid, steps per beat."),
    melody: bool = typer.Option(MELODY, "--melody/--all-notes", help="Skyline melody or all notes."),
    force: bool = typer.Option(False, "--force", help="Replace an existing classifier of that name."),
    seed: int = typer.Option(0, help="Seed of initialisation, batches and augmentation."),
):
    """Train a style classifier (positive label vs the rest) and evaluate it on held-out performers."""
    from ganmusic import classify, data

    corpus = data.load_corpus(data_path, encoding_options(steps_per_beat, melody), positive=positive)
    if epochs is not None:
        steps = classify.steps_for_epochs(corpus, epochs, window, batch_size)
    model_config = ClassifierConfig.for_vocab(corpus.vocab, timing=timing, encoder=encoder, hidden=hidden,
                                              layers=layers, dropout=dropout)
    train_config = TrainConfig(window=window, steps=steps, batch_size=batch_size, lr=lr, transpose=transpose,
                               seed=seed)
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
    from ganmusic import classify, data, plots

    if as_json and as_csv:
        raise UserError("choose one of --json and --csv")
    if classifier is None:
        classifier = classify.latest_classifier(CLASSIFIERS)
        console.print(f"using classifier {classifier} (the newest in {CLASSIFIERS}/)")
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


# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------

RUNS = Path("runs")


def parse_layers(text: str) -> tuple[int, ...]:
    try:
        layers = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"--layers {text!r}: give hidden sizes like 256,256 (one number for one layer)") from None
    if not layers or min(layers) < 1:
        raise UserError(f"--layers {text!r}: give hidden sizes like 256,256")
    return layers


def run_option(path: str, *param_decls, **kw):
    """An option whose default is the `RunConfig` field at `path` (e.g. "adv.steps")."""
    return typer.Option(default(RunConfig, path), *param_decls, **kw)


# train-gan's options and the RunConfig fields they set: on --resume, the options given on the
# command line are the settings the run should change (runs.resumed refuses the ones it cannot).
RUN_FIELDS = {
    "data_path": "data", "positive": "positive", "layers": "generator.layers", "cell": "generator.cell",
    "embed_dim": "generator.embed_dim", "dropout": "generator.dropout", "window": "window",
    "batch_size": "batch_size", "mle_steps": "mle_steps", "lr": "lr", "optimizer": "optimizer", "clip": "clip",
    "transpose": "transpose", "eval_every": "eval_every", "checkpoint_every": "checkpoint_every",
    "steps_per_beat": "encoding.steps_per_beat", "melody": "encoding.melody", "adv_steps": "adv.steps",
    "classifier": "adv.classifier", "estimator": "adv.estimator", "lambda_mle": "adv.lambda_mle",
    "lambda_adv": "adv.lambda_adv", "lambda_rep": "adv.lambda_rep", "adv_lr": "adv.lr", "d_lr": "adv.d_lr",
    "d_steps": "adv.d_steps", "label_smoothing": "adv.label_smoothing", "not_jazz_share": "adv.not_jazz_share",
    "sample_every": "adv.sample_every", "adv_windows": "adv.windows", "devices": "devices",
    "init_from": "init_from", "seed": "seed",
}


@app.command("train-gan")
@user_errors
def train_gan(
    ctx: typer.Context,
    data_path: Path = typer.Argument(..., metavar="DATA", help="Corpus: folder of label subfolders, or a manifest.csv."),
    name: Optional[str] = typer.Option(None, help="Run folder name under --root (default from the settings)."),
    root: Path = typer.Option(RUNS, help="Where run folders go."),
    positive: str = run_option("positive", help="The label whose style the generator learns."),
    layers: str = typer.Option(",".join(map(str, default(GeneratorConfig, "layers"))),
                               help="Recurrent layer sizes, bottom first (one number for one layer)."),
    cell: str = typer.Option(default(GeneratorConfig, "cell"), help="lstm or gru."),
    embed_dim: int = typer.Option(default(GeneratorConfig, "embed_dim")),
    dropout: float = typer.Option(default(GeneratorConfig, "dropout")),
    window: int = run_option("window", help="Training window in tokens (3 per note)."),
    batch_size: int = run_option("batch_size"),
    mle_steps: int = run_option("mle_steps", help="Maximum-likelihood (teacher forcing) steps."),
    lr: float = run_option("lr"),
    optimizer: str = run_option("optimizer", help="adam, adamw or rmsprop."),
    clip: float = run_option("clip", help="Gradient clipping by global norm (0: off)."),
    transpose: int = run_option("transpose", help="Transposition augmentation range in semitones."),
    eval_every: int = run_option("eval_every", help="Validate and log every N steps."),
    checkpoint_every: int = run_option("checkpoint_every"),
    steps_per_beat: int = typer.Option(SPB, help="Quantization grid, steps per beat."),
    melody: bool = typer.Option(MELODY, "--melody/--all-notes", help="Skyline melody or all notes."),
    adv_steps: int = run_option("adv.steps", help="Adversarial steps after the MLE phase (0: plain MLE baseline)."),
    classifier: Optional[Path] = typer.Option(None, help="Pretrained classifier the discriminator starts from."),
    estimator: str = run_option("adv.estimator", help="gumbel (straight-through Gumbel-softmax) or reinforce."),
    lambda_mle: float = run_option("adv.lambda_mle", help="Weight of the NLL on real windows in the adversarial phase."),
    lambda_adv: float = run_option("adv.lambda_adv", help="Weight of -log D(generated)."),
    lambda_rep: float = run_option("adv.lambda_rep", help="Weight of the repeated-pitch penalty."),
    adv_lr: float = run_option("adv.lr", help="Generator learning rate in the adversarial phase."),
    d_lr: float = run_option("adv.d_lr", help="Discriminator learning rate."),
    d_steps: int = run_option("adv.d_steps", help="Discriminator updates per generator update."),
    label_smoothing: float = run_option("adv.label_smoothing", help="Real windows get label 1 - this."),
    not_jazz_share: float = run_option("adv.not_jazz_share", help="Share of D's negatives that are other-label windows."),
    sample_every: int = run_option("adv.sample_every", help="Write a few samples every N adversarial steps (0: never)."),
    adv_windows: int = run_option("adv.windows",
                                  help="Adversarial samples are this many discriminator windows long; D scores each."),
    devices: int = run_option("devices", help="Local devices to pmap over (0: all)."),
    coordinator: Optional[str] = typer.Option(None, help="Multi-host: coordinator address host:port (jax.distributed)."),
    num_processes: Optional[int] = typer.Option(None, help="Multi-host: number of processes."),
    process_id: Optional[int] = typer.Option(None, help="Multi-host: this process's index."),
    resume: bool = typer.Option(False, "--resume", help="Continue runs/NAME where it stopped; options given with it "
                                                         "change the run where they may (more steps, --eval-every), "
                                                         "others are refused."),
    init_from: Optional[Path] = typer.Option(None, help="Start from another run's best weights (same architecture)."),
    seed: int = run_option("seed", help="Seed of initialisation, batches, augmentation and dropout."),
):
    """Train a recurrent generator: maximum likelihood on the positive-label files, then (with
    --adv-steps) jointly against a discriminator started from --classifier."""
    import jax

    from ganmusic import configs, runs, train
    from ganmusic.encoding import Vocab

    if coordinator or num_processes or process_id is not None:
        # Same program on every host; JAX also reads its own environment variables.
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)

    convert = {"data": str, "generator.layers": parse_layers, "adv.classifier": lambda p: str(p) if p else None,
               "init_from": lambda p: str(p) if p else None}
    values = {field: convert.get(field, lambda v: v)(ctx.params[param]) for param, field in RUN_FIELDS.items()}

    def fresh_config() -> RunConfig:
        parts: dict = {"": {}, "generator": {}, "encoding": {}, "adv": {}}
        for field, value in values.items():
            head, _, rest = field.rpartition(".")
            parts[head][rest] = value
        encoding = EncodingConfig(**parts["encoding"])
        return RunConfig(**parts[""], encoding=encoding, adv=AdvConfig(**parts["adv"]),
                         generator=GeneratorConfig(vocab_size=Vocab(encoding).size, **parts["generator"]))

    if resume:
        run_dir = root / (name or fresh_config().default_name())
        if not run_dir.exists():
            raise UserError(f"--resume: {run_dir} does not exist (give the run's --name)")
        # The options typed on the command line are the changes; runs.resumed checks them.
        given = [field for param, field in RUN_FIELDS.items() if ctx.get_parameter_source(param).name == "COMMANDLINE"]
        config = configs.replace(runs.load_run_config(run_dir), {field: values[field] for field in given})
    else:
        config = fresh_config()
        run_dir = root / (name or config.default_name())
    console.print(f"{'resuming' if resume else 'training'} {run_dir}")
    summary = train.train_run(config, run_dir, resume=resume)
    last = summary["last"] or {}
    table = Table(title=f"{run_dir} at step {summary['step']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("best validation NLL per token", f"{summary['best_val_nll']:.3f}")
    table.add_row("unigram baseline NLL per token", f"{summary['unigram_nll']:.3f}")
    if "val_perplexity" in last:
        table.add_row("last validation perplexity", f"{last['val_perplexity']:.2f}")
        table.add_row("tokens/s", f"{last['tokens_per_second']:.0f}")
    print_result(table)
    if summary["stopped_early"]:
        console.print(f"stopped by signal; checkpoint saved. Continue with: ganmusic train-gan {data_path} "
                      f"--name {run_dir.name} --root {root} --resume")
    console.print(f"wrote {run_dir}/ (config.json, checkpoints/, best/, metrics.jsonl, training.png)")


@app.command("sample")
@user_errors
def sample(
    run: Path = typer.Argument(..., help="Run folder (runs/NAME)."),
    checkpoint: str = typer.Option("best", help="best, last or a step number."),
    num: int = typer.Option(8, help="Number of songs."),
    length: int = typer.Option(768, help="Tokens to generate per song (3 per note)."),
    bars: Optional[int] = typer.Option(None, help="Generate this many 4/4 bars instead of --length tokens."),
    temperature: float = typer.Option(default(SamplingConfig, "temperature")),
    top_k: int = typer.Option(default(SamplingConfig, "top_k"), help="Sample among the k most likely tokens (0: off)."),
    top_p: float = typer.Option(default(SamplingConfig, "top_p"), help="Nucleus sampling mass (1: off)."),
    argmax_mix: float = typer.Option(default(SamplingConfig, "argmax_mix"),
                                     help="Take the most likely token with this probability."),
    repetition_penalty: float = typer.Option(default(SamplingConfig, "repetition_penalty"),
                                             help="Divide the odds of repeating the last pitch by this."),
    primer: Optional[Path] = typer.Option(None, help="A MIDI file the songs continue."),
    primer_in_output: bool = typer.Option(True, "--primer-in-output/--no-primer-in-output"),
    tempo: float = typer.Option(120.0, help="Tempo of the written MIDI (BPM)."),
    wav: bool = typer.Option(False, "--wav", help="Also render audio with pretty_midi's built-in synthesizer."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default RUN/samples/CHECKPOINT-sSEED)."),
    seed: int = typer.Option(0, help="Sampling seed."),
):
    """Generate new songs from a trained generator: MIDI, piano-roll PNGs and a summary table."""
    from ganmusic import songs

    sampling_config = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p, argmax_mix=argmax_mix,
                                     repetition_penalty=repetition_penalty)
    summary = songs.generate_songs(run, out, checkpoint=checkpoint, num=num, length=length, bars=bars,
                                   sampling_config=sampling_config, primer=primer, primer_in_output=primer_in_output,
                                   tempo=tempo, wav=wav, seed=seed)
    table = Table(title=f"{num} samples from {run} ({checkpoint})")
    for col in ("file", "notes", "seconds", "pitch range", "longest run of one pitch"):
        table.add_column(col, justify="left" if col == "file" else "right")
    for r in summary["samples"]:
        span = f"{r['pitch_low']}-{r['pitch_high']}" if r["notes"] else "-"
        table.add_row(Path(r["file"]).name, str(r["notes"]), f"{r['seconds']:.1f}", span, str(r["longest_pitch_run"]))
    print_result(table)
    console.print(f"wrote {summary['out_dir']}/ (MIDI, piano-roll PNGs{', WAV' if wav else ''}, summary.json)")


@app.command("evaluate")
@user_errors
def evaluate(
    inputs: list[Path] = typer.Argument(..., help="Run folders (their samples are generated), folders of MIDI files, "
                                                  "or labelled corpora (their held-out test split of the positive label)."),
    against: Optional[Path] = typer.Option(None, help="Reference: a labelled corpus (its held-out test split of the "
                                                      "positive label) or a folder of MIDI. Default: the first run's data."),
    reference_split: str = typer.Option("test", help="The reference's split when --against is a labelled corpus "
                                                     "(train: to measure real held-out music against real music)."),
    classifier: Optional[Path] = typer.Option(None, help="A classifier for jazziness; use one the runs never trained against."),
    num: int = typer.Option(256, min=1, help="Samples per run."),
    length: int = typer.Option(384, min=24, help="Tokens per sample and per chunk of every source (3 per note)."),
    checkpoint: str = typer.Option("best", help="best, last or a step number, for every run."),
    temperature: float = typer.Option(default(SamplingConfig, "temperature")),
    top_k: int = typer.Option(default(SamplingConfig, "top_k")),
    top_p: float = typer.Option(default(SamplingConfig, "top_p")),
    out: Optional[Path] = typer.Option(None, help="Report folder (default RUN/eval for one run, else eval/ here)."),
    seed: int = typer.Option(0, help="Sampling seed."),
):
    """Measure generated music against a reference: musical features, their distribution
    overlap, jazziness and NLL, several runs side by side; report.json, report.md and PNGs."""
    from ganmusic import evaluate as ev

    sampling_config = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p)
    if out is None:
        out = inputs[0] / "eval" if len(inputs) == 1 and ev.is_run(inputs[0]) else Path("eval")
    report = ev.evaluate(inputs, out, against=against, classifier=classifier, num=num, length=length, seed=seed,
                         checkpoint=checkpoint, sampling_config=sampling_config, reference_split=reference_split)
    table = Table(title=f"evaluation against {report['reference']} ({length}-token chunks; "
                        "in brackets: distance to real)")
    table.add_column("metric")
    table.add_column("real", justify="right")
    for name in list(report["sources"])[1:]:
        table.add_column(name, justify="right")
    for row in ev.summary_table(report):
        table.add_row(*row)
    print_result(table)
    console.print(f"wrote {out}/ (report.json, report.md, chunks.csv, features.png"
                  f"{', curves.png' if (out / 'curves.png').exists() else ''}{', samples/' if (out / 'samples').exists() else ''})")


@app.command("demo")
@user_errors
def demo(
    out: Path = typer.Option(Path("demo"), help="Folder for everything the demo writes (must not exist yet)."),
    quick: bool = typer.Option(False, "--quick", help="Tiny models: about a minute instead of about two and a half."),
    seed: int = typer.Option(0, help="Seed of the corpus, the training and the sampling."),
):
    """See the whole product work on a synthetic corpus it builds itself: classifier, generator
    (MLE then adversarial), songs, scores and an evaluation report. Synthetic data, a first run only."""
    import time

    from ganmusic import demo as demo_lib

    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} exists and is not empty; choose another --out or remove it")
    start = time.perf_counter()
    result = demo_lib.run_demo(out, quick=quick, seed=seed)
    table = Table(title=f"ganmusic demo{' --quick' if quick else ''}: done in {time.perf_counter() - start:.0f} s "
                        "(synthetic corpus: a first run, not real style)")
    table.add_column("what")
    table.add_column("where")
    table.add_column("result")
    r = result
    table.add_row("demo corpus", r["corpus"]["path"], f"{r['corpus']['files']} MIDI files (jazz/, not_jazz/)")
    table.add_row("classifier", r["classifier"]["path"],
                  f"held-out balanced accuracy {r['classifier']['test_balanced_accuracy']:.3f}")
    table.add_row("generator run", r["run"]["path"], f"validation NLL {r['run']['best_val_nll']:.3f} "
                  f"(unigram {r['run']['unigram_nll']:.3f}); training.png, metrics.jsonl")
    table.add_row("songs", r["samples"]["path"], f"{r['samples']['files']} MIDI + piano-roll PNGs; "
                  f"mean P(jazz) {r['samples']['mean_p_jazz']:.3f}")
    ev = r["evaluation"]
    table.add_row("evaluation", ev["path"], f"closeness {ev['closeness']:.3f}; P(jazz) by the sklearn judge "
                  f"{ev['p_jazz_baseline']:.3f} (real demo jazz {ev['reference_p_jazz_baseline']:.3f}); "
                  "report.md, features.png")
    print_result(table)
    console.print(f"wrote {out}/summary.json. Next: real data, see datasets/README.md")


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
