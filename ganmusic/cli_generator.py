"""The generator's commands: train-gan, calibrate, sample, evaluate, demo (registered in `cli.py`)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from ganmusic.cli_common import (ALLOW_OUTSIDE_HELP, MELODY, SPB, UserError, allocate_on_demand, folder_name,
                                 joined_distributed, param_default, print_result, user_errors)
from ganmusic import calibration as cal
from ganmusic import evaluate as ev
from ganmusic.changes import DEFAULT_FORM, shipped_forms  # light: no JAX
from ganmusic.configs import AdvConfig, EncodingConfig, GeneratorConfig, RunConfig, SamplingConfig, default
from ganmusic.ui import console

RUNS = Path("runs")
TABLE_ROWS = 20  # songs listed in the terminal; summary.json has them all


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


def _default_run_name() -> str:
    layers = default(GeneratorConfig, "layers")
    sizes = f"{layers[0]}x{len(layers)}" if len(set(layers)) == 1 else "-".join(map(str, layers))
    return f"{default(GeneratorConfig, 'cell')}-{sizes}-mle{default(RunConfig, 'mle_steps')}-s{default(RunConfig, 'seed')}"


DEFAULT_RUN_NAME = _default_run_name()  # what RunConfig.default_name gives with every default


# train-gan's options and the RunConfig fields they set: on --resume, the options given on the
# command line are the settings the run should change (runs.resumed refuses the ones it cannot).
RUN_FIELDS = {
    "data_path": "data", "positive": "positive", "layers": "generator.layers", "cell": "generator.cell",
    "embed_dim": "generator.embed_dim", "dropout": "generator.dropout", "chords": "generator.chords", "window": "window",
    "batch_size": "batch_size", "mle_steps": "mle_steps", "lr": "lr", "optimizer": "optimizer", "clip": "clip",
    "transpose": "transpose", "eval_every": "eval_every", "checkpoint_every": "checkpoint_every",
    "steps_per_beat": "encoding.steps_per_beat", "melody": "encoding.melody", "adv_steps": "adv.steps",
    "classifier": "adv.classifier", "estimator": "adv.estimator", "lambda_mle": "adv.lambda_mle",
    "lambda_adv": "adv.lambda_adv", "lambda_rep": "adv.lambda_rep", "adv_lr": "adv.lr", "d_lr": "adv.d_lr",
    "d_steps": "adv.d_steps", "label_smoothing": "adv.label_smoothing", "not_jazz_share": "adv.not_jazz_share",
    "sample_every": "adv.sample_every", "adv_windows": "adv.windows", "devices": "devices",
    "init_from": "init_from", "seed": "seed", "allow_outside": "allow_outside",
}


@user_errors
def train_gan(
    ctx: typer.Context,
    data_path: Path = typer.Argument(..., metavar="DATA", help="Corpus: folder of label subfolders, or a manifest.csv."),
    name: Optional[str] = typer.Option(None, help=f"Run folder name under --root (default: built from the settings, e.g. {DEFAULT_RUN_NAME})."),
    root: Path = typer.Option(RUNS, help="Where run folders go."),
    positive: str = run_option("positive", help="The label whose style the generator learns."),
    layers: str = typer.Option(",".join(map(str, default(GeneratorConfig, "layers"))),
                               help="Recurrent layer sizes, bottom first (one number for one layer)."),
    cell: str = typer.Option(default(GeneratorConfig, "cell"),
                             help="lstm or gru. On an NVIDIA GPU, LSTM layers train through cuDNN "
                                  "(jax.experimental.rnn); GRU layers always run as a scan (JAX has no "
                                  "cuDNN GRU kernel)."),
    embed_dim: int = typer.Option(default(GeneratorConfig, "embed_dim")),
    dropout: float = typer.Option(default(GeneratorConfig, "dropout")),
    chords: Optional[bool] = typer.Option(None, "--chords/--no-chords",
                                          help="The generator reads each note's chord, the next chord and its place in "
                                               "the bar (default: when the corpus's positive files have chords)."),
    window: int = run_option("window", help="Training window in tokens (3 per note)."),
    batch_size: int = run_option("batch_size"),
    mle_steps: int = run_option("mle_steps", help="Maximum-likelihood (teacher forcing) steps (the default "
                                                  "takes 45 minutes or more on a 2-core CPU)."),
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
    calibrate: int = typer.Option(param_default(cal.calibrate, "rounds"),
                                  help="Then this many rounds of `ganmusic calibrate` on the best weights (0: none)."),
    allow_outside: bool = run_option("allow_outside", "--allow-outside", help=ALLOW_OUTSIDE_HELP),
    seed: int = run_option("seed", help="Seed of initialisation, batches, augmentation and dropout."),
):
    """Train a recurrent generator: maximum likelihood on the positive-label files, then (with
    --adv-steps) jointly against a discriminator started from --classifier.

    At the defaults this takes 45 minutes or more on a 2-core CPU (1.3 to 3 s a step); it says
    how long on this machine after its first steps. A first try: --mle-steps 300 --window 128
    --batch-size 32 (a few minutes), or no training at all: `ganmusic sample` uses the pretrained
    default."""
    import jax

    from ganmusic import configs, runs, train
    from ganmusic.encoding import Vocab

    if coordinator or num_processes or process_id is not None:
        # Same program on every host; JAX also reads its own environment variables.
        try:
            jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                       process_id=process_id)
        except (RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise UserError(f"--coordinator {coordinator}: cannot start jax.distributed ({first})") from None
        joined_distributed()

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
                         generator=GeneratorConfig.for_vocab(Vocab(encoding), **parts["generator"]))

    name = folder_name(name, root)
    if resume:
        run_dir = root / (name or fresh_config().default_name())
        if not run_dir.exists():
            raise UserError(f"--resume: {run_dir} does not exist (give the run's --name)")
        # The options typed on the command line are the changes; runs.resumed checks them.
        given = [field for param, field in RUN_FIELDS.items() if ctx.get_parameter_source(param).name == "COMMANDLINE"]
        saved = runs.load_run_config(run_dir)
        config = runs.resumed(saved, configs.replace(saved, {field: values[field] for field in given}), run_dir)
    else:
        config = fresh_config()
        run_dir = root / (name or config.default_name())
    for what, path in (("DATA", config.data), ("--classifier", config.adv.classifier), ("--init-from", config.init_from)):
        if path and not Path(path).exists():  # checked before anything is printed or built
            raise UserError(f"{path}: no such file or folder ({what})")
    console.print(f"{'resuming' if resume else 'training'} {run_dir}")
    summary = train.train_run(config, run_dir, resume=resume)
    if not summary["writer"]:
        console.print(f"process {jax.process_index()} of {jax.process_count()} "
                      f"{'stopped by ' + summary['stopped_by'] if summary['stopped_early'] else 'finished'} at step "
                      f"{summary['step']}; process 0 wrote {run_dir}/")
        if summary["stopped_early"]:
            raise typer.Exit(128 + signal.Signals[summary["stopped_by"]].value)
        return
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
    console.print(f"wrote {run_dir}/ (config.json, checkpoints/, best/, metrics.jsonl, training.png)")
    if calibrate and not summary["stopped_early"]:
        print_calibration(run_dir, cal.calibrate(run_dir, rounds=calibrate, seed=seed))
    if summary["stopped_early"]:
        # Not finished: exit as a process stopped by that signal does (130 SIGINT, 143 SIGTERM),
        # so scripts, schedulers and tests never take the run as complete.
        console.print(f"stopped by {summary['stopped_by']} at step {summary['step']}; checkpoint saved. Continue "
                      f"with: ganmusic train-gan {data_path} --name {run_dir.name} --root {root} --resume",
                      soft_wrap=True)
        raise typer.Exit(128 + signal.Signals[summary["stopped_by"]].value)


def print_calibration(run_dir: Path, result: dict) -> None:
    table = Table(title=f"calibration of {run_dir} ({result['checkpoint']}): gap to the training solos' rates "
                        "(total variation, sampled notes)")
    for col in ("feature", "before", "after"):
        table.add_column(col, justify="left" if col == "feature" else "right")
    for name, before in result["gap_before"].items():
        table.add_row(name.replace("_", " "), f"{before:.3f}", f"{result['gap_after'][name]:.3f}")
    if result["val_nll_before"] is not None:
        table.add_row("validation NLL per token (teacher-forced)", f"{result['val_nll_before']:.3f}",
                      f"{result['val_nll_after']:.3f}")
    print_result(table)
    console.print(f"wrote {run_dir / 'calibration.json'} (sample, evaluate and Python's runs.restore_params use it)")


@user_errors
def calibrate(
    run: Path = typer.Argument(..., metavar="RUN", help="Run folder (runs/NAME)."),
    checkpoint: str = typer.Option("best", help="best, last or a step number: the weights to calibrate."),
    rounds: int = typer.Option(param_default(cal.calibrate, "rounds"), help="Rounds of sampling and tilting."),
    songs: int = typer.Option(param_default(cal.calibrate, "songs"), help="Songs sampled per round."),
    beats: int = typer.Option(param_default(cal.calibrate, "beats"), help="Beats per song."),
    seed: int = typer.Option(0, help="Seed of the sampling and of the training changes played over."),
):
    """Tilt a trained generator's output biases until its own samples show the training solos'
    rates of what it scores (intervals, chord tones, pitch memory, register, motifs, beat phases, time
    between onsets, note lengths).
    Writes RUN/calibration.json; sampling and evaluation then use it. train-gan runs it at the end."""
    print_calibration(run, cal.calibrate(run, checkpoint, rounds=rounds, songs=songs, beats=beats, seed=seed))


@user_errors
def sample(
    run: Optional[Path] = typer.Argument(None, metavar="[RUN]", show_default=False,
                                         help="Run folder (runs/NAME). Default: the pretrained generator shipped "
                                              "with ganmusic (songs go to samples/pretrained/...)."),
    checkpoint: str = typer.Option("best", help="best, last or a step number."),
    num: int = typer.Option(8, help="Number of songs."),
    length: int = typer.Option(768, help="Tokens to generate per song (3 per note)."),
    bars: Optional[int] = typer.Option(None, help="Generate this many 4/4 bars instead of --length tokens."),
    changes: Optional[str] = typer.Option(None, metavar="CHANGES",
                                          help="Improvise over chord changes (a generator trained on chords): a chord "
                                               "line in bars such as \"Dm7 G7 | Cmaj7 | % |\" (/ repeats the chord, % "
                                               "the bar, 3/4 sets the meter), a text file of such lines, a MIDI file with "
                                               "chord text/marker/lyric events, or a shipped form: "
                                               f"{', '.join(shipped_forms())}. Songs last as long as the changes; "
                                               "the MIDI gets a comping track and the chord symbols; a --primer is their "
                                               "first beats. Without it a chord-reading generator, such as the "
                                               f"pretrained default, plays over {DEFAULT_FORM}, as many "
                                               "choruses as last the primer and --length or --bars."),
    choruses: int = typer.Option(1, help="Play the changes this many times."),
    comping: bool = typer.Option(True, "--comping/--no-comping", help="With --changes: a second track voicing the chords."),
    temperature: float = typer.Option(default(SamplingConfig, "temperature")),
    top_k: int = typer.Option(default(SamplingConfig, "top_k"), help="Sample among the k most likely tokens (0: off)."),
    top_p: float = typer.Option(default(SamplingConfig, "top_p"), help="Nucleus sampling mass (1: off)."),
    argmax_mix: float = typer.Option(default(SamplingConfig, "argmax_mix"),
                                     help="Take the most likely token with this probability."),
    repetition_penalty: float = typer.Option(default(SamplingConfig, "repetition_penalty"),
                                             help="Divide the odds of repeating the last pitch by this."),
    primer: Optional[Path] = typer.Option(None, help="A MIDI file the songs continue (over changes: their first "
                                                     "beats; its own chord symbols are not read: give the same file "
                                                     "as --changes for them)."),
    primer_in_output: bool = typer.Option(True, "--primer-in-output/--no-primer-in-output"),
    tempo: float = typer.Option(120.0, help="Tempo of the written MIDI (BPM)."),
    wav: bool = typer.Option(False, "--wav", help="Also render audio with pretty_midi's built-in synthesizer."),
    png: bool = typer.Option(True, "--png/--no-png", help="Write a piano-roll PNG per song (with --changes: the "
                                                             "chord symbols above the bars)."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default: a new RUN/samples/CHECKPOINT-sSEED, "
                                                  "-2, -3, ... when taken; samples/pretrained/... here for the "
                                                  "pretrained default)."),
    seed: int = typer.Option(0, help="Sampling seed."),
):
    """Generate new songs from a trained generator: MIDI, piano-roll PNGs and a summary table;
    with --changes, improvisations over chord changes with a comping track."""
    allocate_on_demand()  # before the imports below import JAX
    from ganmusic import pretrained, runs, songs

    sampling_config = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p, argmax_mix=argmax_mix,
                                     repetition_penalty=repetition_penalty)
    samples_dir = None
    if run is None:
        run, samples_dir = pretrained.generator_path(), Path("samples") / "pretrained"
        console.print(f"using {pretrained.describe('generator')} (give a run folder to sample your own)",
                      highlight=False, soft_wrap=True)
    try:
        summary = songs.generate_songs(run, out, checkpoint=checkpoint, num=num, length=length, bars=bars,
                                       sampling_config=sampling_config, primer=primer,
                                       primer_in_output=primer_in_output, tempo=tempo, png=png, wav=wav, seed=seed,
                                       samples_dir=samples_dir, progress=True, changes=changes, choruses=choruses,
                                       comping=comping)
    except runs.NoBestError as exc:
        raise UserError(f"{exc}: --checkpoint last") from None
    source = "the pretrained default" if pretrained.is_pretrained(run) else run
    over = summary.get("changes")
    if over and changes is None:
        console.print(f"this generator reads chords: it plays over {over['form']} (--changes for other changes)",
                      highlight=False)
    table = Table(title=f"{num} samples from {source} ({checkpoint}{', calibrated' if summary['calibrated'] else ''})" + (
        f" over {over['form']}: {over['bars']} bars, {over['choruses']} chorus{'es' if over['choruses'] > 1 else ''}"
        if over else ""))
    for col in ("file", "notes", "seconds", "pitch range", "longest run of one pitch"):
        table.add_column(col, justify="left" if col == "file" else "right")
    rows = summary["samples"]
    for r in rows[:TABLE_ROWS]:
        span = f"{r['pitch_low']}-{r['pitch_high']}" if r["notes"] else "-"
        table.add_row(Path(r["file"]).name, str(r["notes"]), f"{r['seconds']:.1f}", span, str(r["longest_pitch_run"]))
    if len(rows) > TABLE_ROWS:  # a terminal table of thousands of rows helps nobody and takes seconds to draw
        table.add_row(f"... {len(rows) - TABLE_ROWS} more in summary.json", "", "", "", "")
        table.add_row("mean of all", f"{np.mean([r['notes'] for r in rows]):.1f}",
                      f"{np.mean([r['seconds'] for r in rows]):.1f}", "",
                      f"{np.mean([r['longest_pitch_run'] for r in rows]):.1f}")
    print_result(table)
    short = [r for r in summary["samples"] if r.get("reached_end_of_changes") is False]
    if short:
        console.print(f"{len(short)} of {num} songs played more than 4 notes a beat on average and ran out of room "
                      "before the changes ended")
    console.print(f"wrote {summary['out_dir']}/ (MIDI{', piano-roll PNGs' if png else ''}{', WAV' if wav else ''}, "
                  "summary.json)")


@user_errors
def evaluate(
    inputs: list[Path] = typer.Argument(..., metavar="INPUT...", help="Run folders (their samples are generated), folders of MIDI files, "
                                                  "or labelled corpora (their held-out test split of the positive label)."),
    against: Optional[Path] = typer.Option(None, help="Reference: a labelled corpus (its held-out test split of the "
                                                      "positive label) or a folder of MIDI. Default: the first run's data."),
    reference_split: str = typer.Option("test", help="The reference's split when --against is a labelled corpus "
                                                     "(train: to measure real held-out music against real music)."),
    classifier: Optional[Path] = typer.Option(None, help="A classifier for jazziness; use one the runs never trained against."),
    num: int = typer.Option(param_default(ev.evaluate, "num"), help="Samples per run."),
    length: int = typer.Option(param_default(ev.evaluate, "length"),
                               help="Tokens per sample and per chunk of every source (3 per note); a "
                                    "chord-conditioned run plays over LENGTH/4 beats of the reference's changes."),
    checkpoint: str = typer.Option("best", help="best, last or a step number, for every run."),
    temperature: float = typer.Option(default(SamplingConfig, "temperature")),
    top_k: int = typer.Option(default(SamplingConfig, "top_k")),
    top_p: float = typer.Option(default(SamplingConfig, "top_p")),
    out: Optional[Path] = typer.Option(None, help="Report folder (default RUN/eval for one run, else eval/ here)."),
    seed: int = typer.Option(0, help="Sampling seed."),
):
    """Measure generated music against a reference: musical features, their distribution
    overlap, jazziness and NLL, several runs side by side; report.json, report.md and PNGs."""
    from ganmusic import eval_report, pretrained

    sampling_config = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p)
    if against is None and all(p.is_dir() for p in inputs) and not any(ev.is_run(p) for p in inputs):
        raise UserError("no run given: say what to compare against with --against DATA")
    if against is None and pretrained.is_pretrained(inputs[0]):
        raise UserError(f"{inputs[0]}: {pretrained.NAME} does not ship its data; say what to compare against with "
                        "--against DATA (it learned from the lead-sheets corpus's Weimar Jazz Database solos)")
    if out is None:
        one_run = len(inputs) == 1 and ev.is_run(inputs[0]) and not pretrained.is_pretrained(inputs[0])
        out = inputs[0] / "eval" if one_run else Path("eval")
    report = ev.evaluate(inputs, out, against=against, classifier=classifier, num=num, length=length, seed=seed,
                         checkpoint=checkpoint, sampling_config=sampling_config, reference_split=reference_split)
    table = Table(title=f"evaluation against {report['reference']} ({length}-token chunks; "
                        "in brackets: distance to real)")
    table.add_column("metric")
    table.add_column("real", justify="right")
    for name in list(report["sources"])[1:]:
        table.add_column(name, justify="right")
    for row in eval_report.summary_table(report):
        table.add_row(*row)
    print_result(table)
    apart = Table(title="what sets each source apart most from real (chunk means, in standard deviations)")
    for k, column in enumerate(eval_report.APART_COLUMNS):
        apart.add_column(column, justify="right" if k > 1 else "left")
    for row in eval_report.apart_table(report):
        apart.add_row(*row)
    print_result(apart)
    console.print(f"wrote {out}/ (report.json, report.md, chunks.csv, features.png"
                  f"{', curves.png' if (out / 'curves.png').exists() else ''}{', samples/' if (out / 'samples').exists() else ''})")


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
    judged = r["evaluation"]
    table.add_row("evaluation", judged["path"], f"closeness {judged['closeness']:.3f}; P(jazz) by the sklearn judge "
                  f"{judged['p_jazz_baseline']:.3f} (real demo jazz {judged['reference_p_jazz_baseline']:.3f}); "
                  "report.md, features.png")
    print_result(table)
    console.print(f"wrote {out}/summary.json. Next: real data, see datasets/README.md")
