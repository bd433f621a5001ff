"""`ganmusic evaluate`: musical measurements of generated music against a reference set.

Each source (a run's samples, or a folder of MIDI files) and the reference (by default the
held-out jazz test split of the first run's corpus) is cut into chunks of the same number of
tokens, so length-dependent features compare like with like. Per chunk: the features of
`metrics.FEATURES`, the longest repeated token n-gram and the share of 8-note n-grams copied from
the training split. Per source: feature means, Yang and Lerch's overlapping area and KL divergence
against the reference, their mean ("closeness"), jazziness by an independent classifier and by
the scikit-learn baseline, and the NLL of the reference under each run's generator.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganmusic import data, metrics
from ganmusic import encoding as enc
from ganmusic.encoding import EncodingConfig, Vocab
from ganmusic.ui import console, maybe_progress

REFERENCE = "reference"
SCALAR_FEATURES = [name for name in metrics.FEATURES if name not in metrics.HISTOGRAM_BINS]


class EvaluateError(ValueError):
    """Unusable evaluation input, with a one-line reason."""


@dataclass
class Source:
    """One column of the report: token chunks, each `BOS, notes...` of at most `length` tokens."""

    name: str
    path: str
    kind: str  # "run", "midi" or "reference"
    chunks: list[np.ndarray] = field(default_factory=list)
    sequences: list[np.ndarray] = field(default_factory=list)  # whole pieces, before chunking
    run_dir: Path | None = None
    errors: list[dict] = field(default_factory=list)


def is_run(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "checkpoints").exists()


def midi_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and data.is_midi(p))


def chunk_sequence(tokens: np.ndarray, vocab: Vocab, length: int) -> list[np.ndarray]:
    """Notes of a sequence cut into pieces of `length // 3` notes (`BOS` first); a last piece
    shorter than half that is dropped, unless it is the only one."""
    tokens = np.asarray(tokens, dtype=np.int64)
    types = vocab.token_type[tokens]
    body = tokens[(types == enc.T_SHIFT) | (types == enc.T_PITCH) | (types == enc.T_DUR)]
    body = body[: len(body) - len(body) % 3]
    per_chunk = max(length // 3, 1) * 3
    pieces = [body[i : i + per_chunk] for i in range(0, len(body), per_chunk)]
    if len(pieces) > 1 and len(pieces[-1]) < per_chunk // 2:
        pieces.pop()
    return [np.concatenate([[enc.BOS], p]).astype(np.int32) for p in pieces if len(p)]


# --- building the sources --------------------------------------------------------------------


def load_reference(against: Path, encoding: EncodingConfig, positive: str, progress: bool):
    """(reference source, training sequences or None, the corpus when `against` is labelled)."""
    try:
        data.find_entries(against)
        labelled = True
    except data.CorpusError:
        labelled = False
    if labelled:
        corpus = data.load_corpus(against, encoding, positive=positive, progress=progress)
        test = corpus.indices("test", positive=True)
        if len(test) == 0:
            raise EvaluateError(f"{against}: the test split has no '{positive}' files to compare against")
        reference = Source(REFERENCE, f"{against} (test split, {positive})", "reference",
                           sequences=[corpus.sequence(i) for i in test])
        training = [corpus.sequence(i) for i in corpus.indices("train", positive=True)]
        return reference, training, corpus
    if not against.is_dir() or not midi_files(against):
        raise EvaluateError(f"{against}: not a labelled corpus and no MIDI files in it")
    reference = read_midi_folder(against, REFERENCE, encoding, progress)
    reference.kind = "reference"
    return reference, None, None


def read_midi_folder(folder: Path, name: str, encoding: EncodingConfig, progress: bool) -> Source:
    paths = midi_files(folder)
    if not paths:
        raise EvaluateError(f"{folder}: no MIDI files (and not a run folder)")
    parsed = data.parse_files([str(p) for p in paths], encoding, min_notes=1, workers=None, progress=progress)
    source = Source(name, str(folder), "midi")
    for path, (tokens, _, _, reason) in zip(paths, parsed):
        if tokens is None:
            source.errors.append({"file": str(path), "error": reason})
            console.print(f"[yellow]skipped[/] {path}: {reason}", highlight=False, soft_wrap=True)
        else:
            source.sequences.append(tokens)
    if not source.sequences:
        raise EvaluateError(f"{folder}: none of its {len(paths)} MIDI files is usable")
    return source


def sample_run(run_dir: Path, config, params, num: int, length: int, seed: int, sampling_config,
               out_dir: Path) -> Source:
    """`num` samples of `length` tokens from a run, also written as MIDI under `out_dir`."""
    import jax

    from ganmusic import sampling

    tokens = sampling.sample(params, config.generator, config.encoding, jax.random.PRNGKey(seed), num, length,
                             sampling_config)
    sampling.write_midi_files(tokens, config.encoding, out_dir)
    return Source(run_dir.name, str(run_dir), "run", sequences=list(tokens), run_dir=run_dir)


# --- measuring -----------------------------------------------------------------------------------


def chunk_rows(source: Source, vocab: Vocab, training_ngrams: set | None) -> list[dict]:
    """Features of every chunk of a source."""
    spb = vocab.config.steps_per_beat
    rows = []
    for k, chunk in enumerate(source.chunks):
        notes = enc.tokens_to_notes(chunk, vocab)
        row = {"source": source.name, "chunk": k, "notes": len(notes), **metrics.sample_features(notes, spb),
               "longest_repeated_ngram": metrics.longest_repeated_ngram(chunk[1:])}
        if training_ngrams is not None:
            row["training_ngram_share"] = metrics.training_ngram_share(notes, training_ngrams)
        rows.append(row)
    return rows


def aggregate(rows: list[dict]) -> dict:
    """Mean per scalar feature (ignoring missing values), mean histogram per histogram feature."""
    out = {}
    for key in rows[0]:
        if key in ("source", "chunk"):
            continue
        values = [r[key] for r in rows if r.get(key) is not None]
        if key in metrics.HISTOGRAM_BINS:
            out[key] = np.mean(values, axis=0).tolist()
        else:
            out[key] = float(np.mean(values)) if values else None
    if out.get("training_ngram_share") is not None:
        out["novelty"] = 1.0 - out["training_ngram_share"]
    return out


def overlap(rows: list[dict], reference_rows: list[dict], seed: int) -> dict:
    """Per feature: Yang and Lerch's overlapping area and KL divergence against the reference."""
    out = {}
    for name in metrics.FEATURES:
        gen = np.array([r[name] for r in rows], dtype=np.float64)
        ref = np.array([r[name] for r in reference_rows], dtype=np.float64)
        oa, kl = metrics.overlap_and_kl(gen, ref, seed=seed)
        out[name] = {"overlap": oa, "kl": kl}
    oas = [v["overlap"] for v in out.values() if math.isfinite(v["overlap"])]
    kls = [v["kl"] for v in out.values() if math.isfinite(v["kl"])]
    return {"features": out, "closeness": float(np.mean(oas)) if oas else None,
            "mean_kl": float(np.mean(kls)) if kls else None}


def classifier_scores(classifier, chunks: list[np.ndarray], encoding: EncodingConfig) -> list[float]:
    """P(positive) per chunk; chunks in another encoding pass through MIDI into the classifier's."""
    if classifier.encoding != encoding:
        chunks = [enc.encode_midi(enc.decode_to_midi(c, encoding), classifier.encoding) for c in chunks]
    return [r["probability"] for r in classifier.score_sequences(chunks)]


def baseline_scores(model, chunks: list[np.ndarray], vocab: Vocab, window: int, timing: bool) -> list[float]:
    from ganmusic import classify

    windows = data.tile_windows(chunks, vocab, window)
    logits = model.decision_function(classify.style_features(windows.tokens, windows.mask, vocab, timing))
    return classify.sigmoid(classify.file_logits(logits, windows.file_index, len(chunks))).tolist()


def reference_nll(config, params, reference: Source, vocab: Vocab) -> float:
    """NLL per token of the whole reference pieces under the run's generator (teacher forcing)."""
    from ganmusic import train
    from ganmusic.models import Generator

    windows = data.tile_windows(reference.sequences, vocab, config.window)
    return train.validation_nll(train.make_eval_nll(Generator(config.generator)), params, windows,
                                min(config.batch_size, 32))


# --- the whole evaluation ----------------------------------------------------------------------


def evaluate(inputs: list[str | Path], out_dir: str | Path, against: str | Path | None = None,
             classifier: str | Path | None = None, num: int = 256, length: int = 384, seed: int = 0,
             checkpoint: str = "best", sampling_config=None, progress: bool = True) -> dict:
    """Evaluate runs and/or folders of MIDI files against a reference; writes `report.json`,
    `report.md`, `chunks.csv` and PNGs into `out_dir`; returns the report."""
    from ganmusic import classify, plots, sampling, train

    sampling_config = sampling_config or sampling.SamplingConfig()
    out_dir = Path(out_dir)
    inputs = [Path(p) for p in inputs]
    if not inputs:
        raise EvaluateError("give at least one run folder or folder of MIDI files")
    for p in inputs:
        if not p.is_dir():
            raise EvaluateError(f"{p}: no such folder")
    runs = [p for p in inputs if is_run(p)]
    configs = {p: train.load_run_config(p) for p in runs}
    encoding = configs[runs[0]].encoding if runs else EncodingConfig()
    positive = configs[runs[0]].positive if runs else "jazz"
    if against is None:
        if not runs:
            raise EvaluateError("no run given: say what to compare against with --against DATA")
        against = configs[runs[0]].data
    vocab = Vocab(encoding)

    reference, training, corpus = load_reference(Path(against), encoding, positive, progress)
    training_ngrams = None
    if training is not None:
        training_ngrams = set().union(*(metrics.note_ngrams(enc.tokens_to_notes(s, vocab)) for s in training))

    names = [p.name for p in inputs]
    if len(set(names)) < len(names):  # two runs called the same in different folders
        names = [f"{k}:{p.name}" for k, p in enumerate(inputs)]
    sources, restored = [], {}
    with maybe_progress(progress, "sampling and reading", len(inputs)) as advance:
        for name, path in zip(names, inputs):
            if path in configs:
                config, params = restored[path] = train.restore_params(path, checkpoint)
                if config.encoding != encoding:
                    raise EvaluateError(f"{path}: its encoding differs from the other runs' and the reference's")
                source = sample_run(path, config, params, num, length, seed, sampling_config,
                                    out_dir / "samples" / name)
            else:
                source = read_midi_folder(path, name, encoding, progress=False)
            source.name = name
            sources.append(source)
            advance(status=name)

    for source in [reference, *sources]:
        source.chunks = [c for s in source.sequences for c in chunk_sequence(s, vocab, length)]
        if not source.chunks:
            raise EvaluateError(f"{source.path}: no notes to measure")

    judge = classify.Classifier.load(classifier) if classifier is not None else None
    for run in runs:
        if judge is not None and configs[run].adv.steps and Path(configs[run].adv.classifier or "").resolve() == judge.path.resolve():
            console.print(f"[yellow]warning:[/] {run} trained against {judge.path}: its jazziness is not an "
                          "independent judgement", highlight=False, soft_wrap=True)
    # The baseline judge sees what the classifier sees: pitches only for a timing-blind one.
    timing = judge is None or not judge.model_config.merged_tokens
    window = judge.window if judge else 64
    baseline = classify.train_baseline(corpus, window, seed, timing) if corpus is not None else None

    report = {"reference": reference.path, "against": str(against), "num": num, "length": length, "seed": seed,
              "checkpoint": checkpoint, "sampling": sampling_config.__dict__,
              "classifier": str(classifier) if classifier else None, "sources": {}}
    all_rows = {}
    with maybe_progress(progress, "measuring", len(sources) + 1) as advance:
        reference_rows = chunk_rows(reference, vocab, training_ngrams)
        all_rows[REFERENCE] = reference_rows
        advance(status=REFERENCE)
        for source in [reference, *sources]:
            rows = reference_rows if source is reference else chunk_rows(source, vocab, training_ngrams)
            all_rows[source.name] = rows
            entry = {"path": source.path, "kind": source.kind, "chunks": len(source.chunks),
                     "pieces": len(source.sequences), "errors": source.errors, "means": aggregate(rows)}
            if source is not reference:
                entry.update(overlap(rows, reference_rows, seed))
                advance(status=source.name)
            scores = {}
            if judge is not None:
                scores["p_jazz"] = classifier_scores(judge, source.chunks, encoding)
            if baseline is not None:
                scores["p_jazz_baseline"] = baseline_scores(baseline, source.chunks, vocab, window, timing)
            for key, values in scores.items():
                # The mean and its standard error, so two sources' difference can be weighed.
                entry[key] = float(np.mean(values))
                entry[f"{key}_se"] = float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
                for row, value in zip(rows, values):
                    row[key] = float(value)
            if source.run_dir is not None:
                entry["reference_nll"] = reference_nll(*restored[source.run_dir], reference, vocab)
            report["sources"][source.name] = entry

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    (out_dir / "report.md").write_text(markdown(report))
    write_chunks_csv(all_rows, out_dir / "chunks.csv")
    plots.feature_histograms(all_rows, SCALAR_FEATURES, metrics.HISTOGRAM_BINS, out_dir / "features.png")
    histories = {name: train.MetricsLog.read(p / "metrics.jsonl") for name, p in zip(names, inputs) if p in configs}
    if histories:
        plots.compare_curves(histories, "val_nll", out_dir / "curves.png", title="validation NLL per token")
    return report


# --- output ------------------------------------------------------------------------------------

# (label, where in a source's entry, format, better) for the summary table
SUMMARY_ROWS = [
    ("P(jazz), classifier", ("p_jazz",), "{:.3f}", "higher"),
    ("  standard error", ("p_jazz_se",), "{:.3f}", ""),
    ("P(jazz), sklearn baseline", ("p_jazz_baseline",), "{:.3f}", "higher"),
    ("  standard error", ("p_jazz_baseline_se",), "{:.3f}", ""),
    ("closeness (mean overlap)", ("closeness",), "{:.3f}", "higher"),
    ("mean KL divergence", ("mean_kl",), "{:.3f}", "lower"),
    ("NLL of reference (nats/token)", ("reference_nll",), "{:.3f}", "lower"),
    *[(name.replace("_", " "), ("means", name), "{:.3f}", "near reference") for name in SCALAR_FEATURES],
    ("longest repeated token n-gram", ("means", "longest_repeated_ngram"), "{:.1f}", "near reference"),
    ("novelty (8-note n-grams not in training)", ("means", "novelty"), "{:.3f}", "near reference"),
]


def summary_table(report: dict) -> list[list[str]]:
    """Rows `[metric, better, value per source...]`, only rows some source has."""
    rows = []
    for label, keys, fmt, better in SUMMARY_ROWS:
        values = []
        for entry in report["sources"].values():
            value = entry
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            values.append("-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value))
        if any(v != "-" for v in values):
            rows.append([label, better, *values])
    return rows


def markdown(report: dict) -> str:
    names = list(report["sources"])
    lines = [f"# Evaluation against {report['reference']}", "",
             f"{report['num']} samples of {report['length']} tokens per run (checkpoint {report['checkpoint']}, "
             f"seed {report['seed']}); every source cut into chunks of {report['length']} tokens.", "",
             "| metric | better | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    lines += ["| " + " | ".join(row) + " |" for row in summary_table(report)]
    lines += ["", "## Overlapping area per feature (Yang and Lerch), against the reference", "",
              "| feature | " + " | ".join(names[1:]) + " |", "|---|" + "---|" * (len(names) - 1)]
    for feature in metrics.FEATURES:
        cells = [f"{report['sources'][n]['features'][feature]['overlap']:.3f}" for n in names[1:]]
        lines.append(f"| {feature} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_chunks_csv(all_rows: dict[str, list[dict]], path: Path) -> None:
    """One line per chunk and source with the scalar features (histograms are in report.json)."""
    columns = ["source", "chunk", "notes", *SCALAR_FEATURES, "longest_repeated_ngram", "training_ngram_share",
               "p_jazz", "p_jazz_baseline"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for rows in all_rows.values():
            writer.writerows(rows)
