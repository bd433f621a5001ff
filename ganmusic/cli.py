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

import numpy as np
import typer
from rich.table import Table

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
    window: int = typer.Option(64, min=16, max=1024, help="Window length in tokens (3 per note)."),
    steps: int = typer.Option(1500, min=1, help="Training steps (ignored with --epochs)."),
    epochs: Optional[float] = typer.Option(None, min=0.01, help="Train for this many passes over the training windows."),
    batch_size: int = typer.Option(64, min=2),
    lr: float = typer.Option(2e-3, help="Peak learning rate (warm-up, then cosine decay)."),
    encoder: str = typer.Option("conv", help="conv (dilated 1-D convolutions) or gru (bidirectional)."),
    hidden: int = typer.Option(64, min=4, help="Width of the encoder."),
    layers: int = typer.Option(4, min=1, help="Encoder blocks."),
    dropout: float = typer.Option(0.1, min=0.0, max=0.9),
    timing: bool = typer.Option(True, "--timing/--no-timing",
                                help="--no-timing: blind to rhythm, pitches only (for corpora whose timing differs "
                                     "for reasons other than style, e.g. performed against quantized files)."),
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
    name = name or f"{encoder}-w{window}{'' if timing else '-pitch'}-s{seed}"
    out = root / name
    if out.exists() and not force:
        raise UserError(f"{out} exists; choose another --name or pass --force to replace it")
    if epochs is not None:
        n_windows = len(data.eval_windows(corpus, corpus.indices("train"), window).tokens)
        steps = max(1, int(epochs * n_windows / batch_size))
    try:
        model_config = ClassifierConfig.for_vocab(corpus.vocab, timing=timing, encoder=encoder, hidden=hidden,
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


@app.command("train-gan")
@user_errors
def train_gan(
    data_path: Path = typer.Argument(..., metavar="DATA", help="Corpus: folder of label subfolders, or a manifest.csv."),
    name: Optional[str] = typer.Option(None, help="Run folder name under --root (default from the settings)."),
    root: Path = typer.Option(RUNS, help="Where run folders go."),
    positive: str = typer.Option("jazz", help="The label whose style the generator learns."),
    layers: str = typer.Option("256,256", help="Recurrent layer sizes, bottom first (one number for one layer)."),
    cell: str = typer.Option("lstm", help="lstm or gru."),
    embed_dim: int = typer.Option(128, min=1),
    dropout: float = typer.Option(0.0, min=0.0, max=0.9),
    window: int = typer.Option(256, min=8, help="Training window in tokens (3 per note)."),
    batch_size: int = typer.Option(64, min=1),
    mle_steps: int = typer.Option(2000, min=0, help="Maximum-likelihood (teacher forcing) steps."),
    lr: float = typer.Option(2e-3),
    optimizer: str = typer.Option("adam", help="adam, adamw or rmsprop."),
    clip: float = typer.Option(1.0, min=0.0, help="Gradient clipping by global norm (0: off)."),
    transpose: int = typer.Option(6, min=0, max=24, help="Transposition augmentation range in semitones."),
    eval_every: int = typer.Option(100, min=1, help="Validate and log every N steps."),
    checkpoint_every: int = typer.Option(250, min=1),
    steps_per_beat: int = typer.Option(12, min=1, help="Quantization grid, steps per beat."),
    melody: bool = typer.Option(False, "--melody/--all-notes", help="Skyline melody or all notes."),
    adv_steps: int = typer.Option(0, min=0, help="Adversarial steps after the MLE phase (0: plain MLE baseline)."),
    classifier: Optional[Path] = typer.Option(None, help="Pretrained classifier the discriminator starts from."),
    estimator: str = typer.Option("gumbel", help="gumbel (straight-through Gumbel-softmax) or reinforce."),
    lambda_mle: float = typer.Option(1.0, help="Weight of the NLL on real windows in the adversarial phase."),
    lambda_adv: float = typer.Option(0.3, help="Weight of -log D(generated)."),
    lambda_rep: float = typer.Option(1.0, help="Weight of the repeated-pitch penalty."),
    adv_lr: float = typer.Option(1e-4, help="Generator learning rate in the adversarial phase."),
    d_lr: float = typer.Option(1e-4, help="Discriminator learning rate."),
    d_steps: int = typer.Option(1, min=1, help="Discriminator updates per generator update."),
    label_smoothing: float = typer.Option(0.1, min=0.0, max=0.5, help="Real windows get label 1 - this."),
    not_jazz_share: float = typer.Option(0.5, min=0.0, max=1.0, help="Share of D's negatives that are other-label windows."),
    sample_every: int = typer.Option(200, min=0, help="Write a few samples every N adversarial steps (0: never)."),
    adv_windows: int = typer.Option(3, min=1, help="Adversarial samples are this many discriminator windows long; D scores each."),
    devices: int = typer.Option(0, min=0, help="Local devices to pmap over (0: all)."),
    coordinator: Optional[str] = typer.Option(None, help="Multi-host: coordinator address host:port (jax.distributed)."),
    num_processes: Optional[int] = typer.Option(None, help="Multi-host: number of processes."),
    process_id: Optional[int] = typer.Option(None, help="Multi-host: this process's index."),
    resume: bool = typer.Option(False, "--resume", help="Continue runs/NAME exactly where it stopped."),
    init_from: Optional[Path] = typer.Option(None, help="Start from another run's best weights (same architecture)."),
    seed: int = typer.Option(0, help="Seed of initialisation, batches, augmentation and dropout."),
):
    """Train a recurrent generator: maximum likelihood on the positive-label files, then (with
    --adv-steps) jointly against a discriminator started from --classifier."""
    import jax

    from ganmusic import runs, train
    from ganmusic.encoding import Vocab
    from ganmusic.gan import AdvConfig
    from ganmusic.models import GeneratorConfig

    if coordinator or num_processes or process_id is not None:
        # Same program on every host; JAX also reads its own environment variables.
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)

    encoding = encoding_options(steps_per_beat, melody)
    try:
        generator = GeneratorConfig(vocab_size=Vocab(encoding).size, layers=parse_layers(layers), cell=cell,
                                    embed_dim=embed_dim, dropout=dropout)
        config = runs.RunConfig(data=str(data_path), generator=generator, encoding=encoding, positive=positive,
                                 window=window, batch_size=batch_size, mle_steps=mle_steps, lr=lr,
                                 optimizer=optimizer, clip=clip, transpose=transpose, eval_every=eval_every,
                                 checkpoint_every=checkpoint_every, seed=seed,
                                 init_from=str(init_from) if init_from else None, devices=devices,
                                 adv=AdvConfig(steps=adv_steps, estimator=estimator,
                                               classifier=str(classifier) if classifier else None,
                                               lambda_mle=lambda_mle, lambda_adv=lambda_adv, lambda_rep=lambda_rep,
                                               lr=adv_lr, d_lr=d_lr, d_steps=d_steps,
                                               label_smoothing=label_smoothing, not_jazz_share=not_jazz_share,
                                               sample_every=sample_every, windows=adv_windows))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    run_dir = root / (name or config.default_name())
    if resume and not run_dir.exists():
        raise UserError(f"--resume: {run_dir} does not exist (give the run's --name)")
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
    num: int = typer.Option(8, min=1, help="Number of songs."),
    length: int = typer.Option(768, min=3, help="Tokens to generate per song (3 per note)."),
    bars: Optional[int] = typer.Option(None, min=1, help="Generate this many 4/4 bars instead of --length tokens."),
    temperature: float = typer.Option(1.0, min=1e-3),
    top_k: int = typer.Option(0, min=0, help="Sample among the k most likely tokens (0: off)."),
    top_p: float = typer.Option(1.0, min=1e-6, max=1.0, help="Nucleus sampling mass (1: off)."),
    argmax_mix: float = typer.Option(0.0, min=0.0, max=1.0, help="Take the most likely token with this probability."),
    repetition_penalty: float = typer.Option(1.0, min=1.0, help="Divide the odds of repeating the last pitch by this."),
    primer: Optional[Path] = typer.Option(None, help="A MIDI file the songs continue."),
    primer_in_output: bool = typer.Option(True, "--primer-in-output/--no-primer-in-output"),
    tempo: float = typer.Option(120.0, min=10.0, max=400.0, help="Tempo of the written MIDI (BPM)."),
    wav: bool = typer.Option(False, "--wav", help="Also render audio with pretty_midi's built-in synthesizer."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default RUN/samples/CHECKPOINT-sSEED)."),
    seed: int = typer.Option(0, help="Sampling seed."),
):
    """Generate new songs from a trained generator: MIDI, piano-roll PNGs and a summary table."""
    import jax

    from ganmusic import encoding as enc
    from ganmusic import metrics, plots, runs, sampling

    config, params = runs.restore_params(run, checkpoint)
    vocab = enc.Vocab(config.encoding)
    primer_tokens = None
    if primer is not None:
        primer_tokens = enc.encode_file(primer, config.encoding)[:-1]  # drop EOS: the song goes on
        if len(primer_tokens) < 2:
            raise UserError(f"{primer}: the primer has no usable notes")
    spb = config.encoding.steps_per_beat
    if bars is not None:
        length = bars * 4 * 4 * 3  # room for four notes per beat; cut to the bars below
    try:
        sampling_config = sampling.SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p,
                                                  argmax_mix=argmax_mix, repetition_penalty=repetition_penalty)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    tokens = sampling.sample(params, config.generator, config.encoding, jax.random.PRNGKey(seed), num, length,
                             sampling_config, primer=primer_tokens)
    out = out or run / "samples" / f"{checkpoint}-s{seed}"
    out.mkdir(parents=True, exist_ok=True)
    primer_notes = len(enc.tokens_to_notes(primer_tokens, vocab)) if primer_tokens is not None else 0
    rows = []
    for k, row in enumerate(np.asarray(tokens)):
        notes = enc.tokens_to_notes(row, vocab)
        generated_from = notes[primer_notes].onset if len(notes) > primer_notes else 0
        if bars is not None:  # bars count the generated music, after any primer
            notes = notes[:primer_notes] + [n for n in notes[primer_notes:] if n.onset < generated_from + bars * 4 * spb]
        if primer_tokens is not None and not primer_in_output:
            notes = [enc.Note(n.onset - generated_from, n.pitch, n.duration) for n in notes[primer_notes:]]
        stem = f"sample-{k:03d}"
        midi = enc.notes_to_midi(notes, config.encoding, tempo=tempo)
        midi.write(str(out / f"{stem}.mid"))
        shown_primer = primer_notes if primer_in_output else 0
        plots.piano_roll(notes, spb, out / f"{stem}.png", title=f"{run.name} {stem}", primer_notes=shown_primer)
        if wav:
            write_wav(midi, out / f"{stem}.wav")
        rows.append({"file": str(out / f"{stem}.mid"), **metrics.summary(notes, spb, tempo)})
    (out / "summary.json").write_text(json.dumps({"run": str(run), "checkpoint": checkpoint, "seed": seed,
                                                  "sampling": sampling_config.__dict__, "samples": rows}, indent=2))
    table = Table(title=f"{num} samples from {run} ({checkpoint})")
    for col in ("file", "notes", "seconds", "pitch range", "longest run of one pitch"):
        table.add_column(col, justify="left" if col == "file" else "right")
    for r in rows:
        span = f"{r['pitch_low']}-{r['pitch_high']}" if r["notes"] else "-"
        table.add_row(Path(r["file"]).name, str(r["notes"]), f"{r['seconds']:.1f}", span, str(r["longest_pitch_run"]))
    print_result(table)
    console.print(f"wrote {out}/ (MIDI, piano-roll PNGs{', WAV' if wav else ''}, summary.json)")


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
    temperature: float = typer.Option(1.0, min=1e-3),
    top_k: int = typer.Option(0, min=0),
    top_p: float = typer.Option(1.0, min=1e-6, max=1.0),
    out: Optional[Path] = typer.Option(None, help="Report folder (default RUN/eval for one run, else eval/ here)."),
    seed: int = typer.Option(0, help="Sampling seed."),
):
    """Measure generated music against a reference: musical features, their distribution
    overlap, jazziness and NLL, several runs side by side; report.json, report.md and PNGs."""
    from ganmusic import evaluate as ev
    from ganmusic import sampling

    sampling_config = sampling.SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p)
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
    (out / "summary.json").write_text(json.dumps(result, indent=2))
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


def write_wav(midi, path: Path, rate: int = 22050) -> None:
    """Render with pretty_midi's sine-wave synthesizer; 16-bit mono WAV via the standard library."""
    import wave

    audio = midi.synthesize(fs=rate)
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    pcm = (audio / peak * 0.8 * 32767).astype("<i2") if peak > 0 else np.zeros(len(audio), "<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())


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
