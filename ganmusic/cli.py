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
        from ganmusic.data import CorpusError
        from ganmusic.encoding import MidiError

        try:
            return func(*args, **kwargs)
        except (CorpusError, MidiError, UserError) as exc:
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


def main():
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
