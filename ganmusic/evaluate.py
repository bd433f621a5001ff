"""`ganmusic evaluate`: musical measurements of generated music against a reference set.

Each source (a run's samples, or a folder of MIDI files) and the reference (by default the
held-out jazz test split of the first run's corpus) is cut into chunks of the same number of
tokens, so length-dependent features compare like with like. A chord-conditioned run plays over
the reference's own changes. Per chunk: the features of `metrics.FEATURES`, the longest repeated
token n-gram and the share of 8-note n-grams copied from the training split. Per source: feature
means, Yang and Lerch's overlapping area and KL divergence against the reference, their mean
("closeness"), jazziness by an independent classifier and by the scikit-learn baseline, and the
NLL of the reference under each run's generator.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganmusic import changes, data, lead_sheets, metrics, midi_writer, parsing, realism, windows
from ganmusic import encoding as enc
from ganmusic.encoding import EncodingConfig, Vocab
from ganmusic.eval_report import SCALAR_FEATURES, markdown, write_chunks_csv
from ganmusic.pieces import Piece, piece_from_conditioning, piece_from_tokens
from ganmusic.ui import console, maybe_progress
from ganmusic.errors import GanmusicError

REFERENCE = "reference"


class EvaluateError(GanmusicError):
    """Unusable evaluation input, with a one-line reason."""


@dataclass
class Source:
    """One column of the report: token chunks, each `BOS, notes...` of at most `length` tokens."""

    name: str
    path: str
    kind: str  # "run", "midi" or "reference"
    chunks: list[np.ndarray] = field(default_factory=list)
    sequences: list[np.ndarray] = field(default_factory=list)  # whole pieces, before chunking
    pieces: list[Piece] = field(default_factory=list)  # the same pieces with bars and chords
    conds: list[np.ndarray] | None = None  # per sequence its chord rows, where a corpus gives them
    run_dir: Path | None = None
    errors: list[dict] = field(default_factory=list)


def is_run(path: Path) -> bool:  # best/ without checkpoints/: the pretrained default, a run copied without them
    return (path / "config.json").is_file() and ((path / "checkpoints").exists() or (path / "best").exists())


def chunk_sequence(tokens: np.ndarray, vocab: Vocab, length: int) -> list[np.ndarray]:
    """Notes of a sequence cut into pieces of `length // 3` notes (`BOS` first; a last piece under
    half that is dropped, unless the only one). A piece's first SHIFT counts from the beat its note
    is in, not from the note before it (not in the piece): the notes keep their places in the beat."""
    tokens = np.asarray(tokens, dtype=np.int64)
    types = vocab.token_type[tokens]
    body = tokens[(types == enc.T_SHIFT) | (types == enc.T_PITCH) | (types == enc.T_DUR)]
    body = body[: len(body) - len(body) % 3]
    onsets = lead_sheets.note_positions(body, vocab)  # each token's note's grid step from the sequence's start
    per_chunk = max(length // 3, 1) * 3
    starts = list(range(0, len(body), per_chunk))
    body[starts[1:]] = [vocab.shift_token(int(onsets[i] % vocab.config.steps_per_beat)) for i in starts[1:]]
    pieces = [body[i : i + per_chunk] for i in starts]
    pieces = pieces[:-1] if len(pieces) > 1 and len(pieces[-1]) < per_chunk // 2 else pieces
    return [np.concatenate([[enc.BOS], p]).astype(np.int32) for p in pieces if len(p)]


def warn_short_chunks(name: str, chunks: list[np.ndarray], length: int) -> None:
    """Say so when most chunks are much shorter than `length` (short source files): their features
    are then measured on less music than the chunk length says."""
    notes = sorted((len(c) - 1) // 3 for c in chunks)
    median = notes[len(notes) // 2]
    if median < (length // 3) // 2:
        console.print(f"[yellow]warning:[/] {name}: {len(chunks)} chunks of {notes[0]}-{notes[-1]} notes (median "
                      f"{median}), much shorter than the {length // 3} notes of a {length}-token chunk: its sources "
                      "are short; a shorter chunk length compares like with like", highlight=False, soft_wrap=True)


# --- building the sources --------------------------------------------------------------------


def is_labelled_corpus(path: Path) -> bool:
    try:
        data.find_entries(path)
        return True
    except data.CorpusError:
        return False


def corpus_split_pieces(corpus, indices) -> list[Piece]:
    """The pieces of a corpus' files, grouped by the corpus' group (the performer: one
    performer's solos are not independent samples of the style) or else by file."""
    return [piece_from_conditioning(corpus.sequence(i), corpus.conditioning(i), corpus.vocab,
                                    corpus.groups[i] or corpus.paths[i], corpus.paths[i]) for i in indices]


def load_reference(against: Path, encoding: EncodingConfig, positive: str, progress: bool, split: str = "test"):
    """(reference source, training sequences or None, the corpus when `against` is labelled).
    For a labelled corpus the reference is its `split` of the positive label."""
    if is_labelled_corpus(against):
        reference, corpus = read_corpus_split(against, REFERENCE, encoding, positive, progress, split, "reference")
        return reference, [corpus.sequence(i) for i in corpus.indices("train", positive=True)], corpus
    if not against.is_dir() or not data.midi_files(against):
        raise EvaluateError(f"{against}: not a labelled corpus and no MIDI files in it")
    reference = read_midi_folder(against, REFERENCE, encoding, progress)
    reference.kind = "reference"
    return reference, None, None


def read_corpus_split(path: Path, name: str, encoding: EncodingConfig, positive: str, progress: bool,
                      split: str = "test", kind: str = "corpus"):
    """(a labelled corpus' `split` of the positive label as a source, with its chord rows; the corpus)."""
    corpus = data.load_corpus(path, encoding, positive=positive, progress=progress)
    chosen = corpus.indices(split, positive=True)
    if len(chosen) == 0:
        raise EvaluateError(f"{path}: the {split} split has no '{positive}' files to compare")
    return Source(name, f"{path} ({split} split, {positive})", kind, sequences=[corpus.sequence(i) for i in chosen],
                  pieces=corpus_split_pieces(corpus, chosen), conds=[corpus.conditioning(i) for i in chosen]), corpus


def read_midi_folder(folder: Path, name: str, encoding: EncodingConfig, progress: bool) -> Source:
    paths = data.midi_files(folder)
    if not paths:
        raise EvaluateError(f"{folder}: no MIDI files (and not a run folder)")
    parsed = parsing.parse_files([str(p) for p in paths], encoding, min_notes=1, workers=None, progress=progress)
    source = Source(name, str(folder), "midi")
    vocab = Vocab(encoding)
    for path, (tokens, cond, _, reason) in zip(paths, parsed):
        if tokens is None:
            source.errors.append({"file": str(path), "error": reason})
            console.print(f"[yellow]skipped[/] {path}: {reason}", highlight=False, soft_wrap=True)
        else:
            source.sequences.append(tokens)
            source.pieces.append(piece_from_conditioning(tokens, cond, vocab, str(path.relative_to(folder))))
    if not source.sequences:
        raise EvaluateError(f"{folder}: none of its {len(paths)} MIDI files is usable")
    return source


def sample_run(run_dir: Path, config, params, num: int, length: int, seed: int, sampling_config,
               out_dir: Path, forms=None) -> Source:
    """`num` samples of `length` tokens from a run, also written as MIDI under `out_dir`; with
    `forms` (`changes.Form`s of one length) sample k plays over form k, as long as it is, and its
    MIDI holds the symbols (no comping: read again, the folder gives the same notes and chords)."""
    import jax

    from ganmusic import sampling, songs

    vocab = Vocab(config.encoding)
    length, step_cond = songs.over_forms(forms, config.encoding.steps_per_beat) if forms else (length, None)
    tokens = sampling.sample(params, config.generator, config.encoding, jax.random.PRNGKey(seed), num, length,
                             sampling_config, step_cond=step_cond)
    if not forms:
        songs.write_songs(tokens, config.encoding, out_dir)
        return Source(run_dir.name, str(run_dir), "run", sequences=list(tokens), run_dir=run_dir,
                      pieces=[piece_from_tokens(t, vocab, f"sample{k}") for k, t in enumerate(tokens)])
    out_dir.mkdir(parents=True, exist_ok=True)
    for k, (seq, form) in enumerate(zip(tokens, forms)):
        midi_writer.write_midi(enc.decode_to_midi(seq, config.encoding, chords=form.timeline), out_dir / f"sample-{k:03d}.mid")
    pieces = [piece_from_conditioning(t, lead_sheets.conditioning(t, vocab, f.timeline, f.bars[:-1]), vocab, f"sample{k}")
              for k, (t, f) in enumerate(zip(tokens, forms))]
    return Source(run_dir.name, str(run_dir), "run", sequences=list(tokens), run_dir=run_dir, pieces=pieces)


# --- measuring -----------------------------------------------------------------------------------


def chunk_rows(source: Source, vocab: Vocab, training_ngrams: set | None, advance=lambda: None) -> list[dict]:
    """Features of every chunk of a source (`advance()` after each)."""
    spb = vocab.config.steps_per_beat
    rows = []
    for k, chunk in enumerate(source.chunks):
        advance()
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


def lead_sheet_metrics(pieces: list[Piece], steps_per_beat: int, seed: int) -> dict:
    """Per piece H1, H4 and GS (the Jazz Transformer's, averaged over pieces as MusDr does) and the
    chord-tone shares over every note with a chord (all notes, and notes on beats)."""
    h1, h4, gs = [], [], []
    pitches, masks, beats = [], [], []
    for piece in pieces:
        if not piece.notes:
            continue
        onsets = np.array([n.onset for n in piece.notes], dtype=np.float64) / steps_per_beat
        bars = np.asarray(piece.bar_starts, dtype=np.float64) / steps_per_beat
        notes_pitch = np.array([n.pitch for n in piece.notes], dtype=np.int64)
        h1.append(metrics.windowed_pitch_class_entropy(onsets, notes_pitch, bars, 1))
        h4.append(metrics.windowed_pitch_class_entropy(onsets, notes_pitch, bars, 4))
        gs.append(metrics.grooving_similarity(onsets, bars, seed=seed))
        if piece.chord_masks is not None:
            pitches.append(notes_pitch)
            masks.append(piece.chord_masks)
            beats.append(metrics.on_beat(onsets, bars))

    def mean(values):
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    out = {"H1": mean(h1), "H4": mean(h4), "GS": mean(gs), "chord_tone_share": None, "chord_tone_share_on_beats": None,
           "chord_coverage": None}
    if masks:
        pitches, masks, beats = np.concatenate(pitches), np.concatenate(masks), np.concatenate(beats)
        out.update(chord_tone_share=metrics.chord_tone_share(pitches, masks),
                   chord_tone_share_on_beats=metrics.chord_tone_share(pitches, masks, beats),
                   chord_coverage=float(np.mean(masks != 0)))
    return out


def realism_chunks(source: Source, notes_per_chunk: int) -> list[realism.Chunk]:
    return [c for p in source.pieces
            for c in realism.cut_chunks(p.notes, notes_per_chunk, p.group, p.chord_masks, p.chord_roots, p.file)]


def overlap(rows: list[dict], reference_rows: list[dict], seed: int) -> dict:
    """Per feature: Yang and Lerch's overlapping area and KL divergence against the reference; and
    `apart`, the features whose chunk means differ most from it (`realism.most_apart`)."""
    out = {}
    for name in metrics.FEATURES:
        gen = np.array([r[name] for r in rows], dtype=np.float64)
        ref = np.array([r[name] for r in reference_rows], dtype=np.float64)
        oa, kl = metrics.overlap_and_kl(gen, ref, seed=seed)
        out[name] = {"overlap": oa, "kl": kl}
    oas = [v["overlap"] for v in out.values() if math.isfinite(v["overlap"])]
    kls = [v["kl"] for v in out.values() if math.isfinite(v["kl"])]
    return {"features": out, "closeness": float(np.mean(oas)) if oas else None,
            "mean_kl": float(np.mean(kls)) if kls else None, "apart": realism.most_apart(rows, reference_rows)}


def classifier_scores(classifier, chunks: list[np.ndarray], encoding: EncodingConfig) -> list[float]:
    """P(positive) per chunk; chunks in another encoding pass through MIDI into the classifier's."""
    if classifier.encoding != encoding:
        chunks = [enc.encode_midi(enc.decode_to_midi(c, encoding), classifier.encoding) for c in chunks]
    return [r["probability"] for r in classifier.score_sequences(chunks)]


def baseline_scores(model, chunks: list[np.ndarray], vocab: Vocab, window: int, timing: bool) -> list[float]:
    from ganmusic import classify

    tiled = windows.tile_windows(chunks, vocab, window)
    logits = model.decision_function(classify.style_features(tiled.tokens, tiled.mask, vocab, timing))
    return classify.sigmoid(classify.file_logits(logits, tiled.file_index, len(chunks))).tolist()


def reference_nll(config, params, reference: Source, vocab: Vocab) -> float:
    """NLL per token of the whole reference pieces under the run's generator (teacher forcing;
    a chord-conditioned generator reads the pieces' chords)."""
    from ganmusic import mle
    from ganmusic.models import Generator

    chords = bool(config.generator.chords)
    tiled = windows.tile_windows(reference.sequences, vocab, config.window, reference.conds if chords else None)
    return mle.validation_nll(mle.make_eval_nll(Generator(config.generator)), params, tiled,
                              min(config.batch_size, 32), chords)


# --- the whole evaluation ----------------------------------------------------------------------


def evaluate(inputs: list[str | Path], out_dir: str | Path, against: str | Path | None = None,
             classifier: str | Path | None = None, num: int = 256, length: int = 384, seed: int = 0,
             checkpoint: str = "best", sampling_config=None, progress: bool = True,
             reference_split: str = "test") -> dict:
    """Evaluate runs, folders of MIDI files and labelled corpora (their held-out test split of the
    positive label) against a reference; writes `report.json`, `report.md`, `chunks.csv` and PNGs
    into `out_dir`; returns the report. `reference_split` picks the reference's split when
    `against` is a labelled corpus ("train" to measure the real test split against real music).
    A chord-conditioned run plays over the reference's changes (`changes.corpus_forms`: `num`
    stretches of `length // 4` beats, a chunk of `length` tokens or more at a jazz solo's 1.5-2
    notes a beat), so its chord-tone share and realism compare like with like; its reference NLL
    reads their chords."""
    from ganmusic import classify, plots, sampling
    from ganmusic.configs import check_seed
    from ganmusic.runs import MetricsLog, load_run_config, restore_params

    check_seed(seed)
    if num < 1 or length < 24:
        raise EvaluateError(f"need at least 1 sample per run and 24 tokens per chunk, not num={num}, length={length}")
    sampling_config = sampling_config or sampling.SamplingConfig()
    out_dir = Path(out_dir)
    inputs = [Path(p) for p in inputs]
    if not inputs:
        raise EvaluateError("give at least one run folder or folder of MIDI files")
    for p in inputs:
        if not p.is_dir():
            raise EvaluateError(f"{p}: no such folder")
    runs = [p for p in inputs if is_run(p)]
    configs = {p: load_run_config(p) for p in runs}
    chord_runs = [run for run in runs if configs[run].generator.chords]
    judge = classify.Classifier.load(classifier) if classifier is not None else None  # checked before sampling
    encoding = configs[runs[0]].encoding if runs else EncodingConfig()
    positive = configs[runs[0]].positive if runs else "jazz"
    if against is None:
        if not runs:
            raise EvaluateError("no run given: say what to compare against (a labelled corpus or a folder of MIDI)")
        against = configs[runs[0]].data
    vocab = Vocab(encoding)

    if reference_split not in data.SPLITS:
        raise EvaluateError(f"reference split must be one of {', '.join(data.SPLITS)}, not {reference_split!r}")
    reference, training, corpus = load_reference(Path(against), encoding, positive, progress, reference_split)
    if chord_runs and corpus is None:  # they play over the reference's changes: like with like
        raise EvaluateError(f"{chord_runs[0]}: a chord-conditioned generator plays over the changes it is compared "
                            f"with: compare it against a labelled corpus with chords, not the MIDI folder {against}")
    forms = changes.corpus_forms(corpus, reference_split, max(length // 4, 1), num) if chord_runs else None
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
                config, params = restored[path] = restore_params(path, checkpoint)
                if config.encoding != encoding:
                    raise EvaluateError(f"{path}: its encoding differs from the other runs' and the reference's")
                source = sample_run(path, config, params, num, length, seed, sampling_config,
                                    out_dir / "samples" / name, forms if path in chord_runs else None)
            elif is_labelled_corpus(path):
                source, _ = read_corpus_split(path, name, encoding, positive, progress=False)
            else:
                source = read_midi_folder(path, name, encoding, progress=False)
            source.name = name
            sources.append(source)
            advance(status=name)

    for source in [reference, *sources]:
        source.chunks = [c for s in source.sequences for c in chunk_sequence(s, vocab, length)]
        if not source.chunks:
            raise EvaluateError(f"{source.path}: no notes to measure")
        warn_short_chunks(source.name, source.chunks, length)

    for run in runs:
        if judge is not None and configs[run].adv.steps and Path(configs[run].adv.classifier or "").resolve() == judge.path.resolve():
            console.print(f"[yellow]warning:[/] {run} trained against {judge.path}: its jazziness is not an "
                          "independent judgement", highlight=False, soft_wrap=True)
    # The baseline judge sees what the classifier sees: pitches only for a timing-blind one.
    timing = judge is None or not judge.model_config.merged_tokens
    window = judge.window if judge else 64
    baseline = classify.train_baseline(corpus, window, seed, timing) if corpus is not None else None

    notes_per_chunk = max(length // 3, 1)
    real_chunks = realism_chunks(reference, notes_per_chunk)
    report = {"reference": reference.path, "against": str(against), "reference_split": reference_split,
              "num": num, "length": length, "seed": seed,
              "checkpoint": checkpoint, "sampling": sampling_config.__dict__,
              "classifier": str(classifier) if classifier else None, "sources": {}}
    all_rows = {}
    # Counted in chunks, so that it can say early how long the measuring takes.
    with maybe_progress(progress, "measuring chunks", sum(len(s.chunks) for s in [reference, *sources]),
                        estimate=True) as advance:
        reference_rows = chunk_rows(reference, vocab, training_ngrams, advance)
        all_rows[REFERENCE] = reference_rows
        for source in [reference, *sources]:
            rows = reference_rows if source is reference else chunk_rows(source, vocab, training_ngrams, advance)
            all_rows[source.name] = rows
            entry = {"path": source.path, "kind": source.kind, "chunks": len(source.chunks),
                     "pieces": len(source.sequences), "errors": source.errors, "means": aggregate(rows)}
            entry["lead_sheet"] = lead_sheet_metrics(source.pieces, vocab.config.steps_per_beat, seed)
            if source is not reference:
                entry.update(overlap(rows, reference_rows, seed))
                entry["realism"] = realism.two_sample_test(real_chunks, realism_chunks(source, notes_per_chunk),
                                                           vocab.config.steps_per_beat, seed)
            else:
                entry["realism"] = realism.real_vs_real(real_chunks, vocab.config.steps_per_beat, seed)
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
    plots.feature_histograms(all_rows, SCALAR_FEATURES, metrics.HISTOGRAM_BINS, out_dir / "features.png",
                             units=metrics.FEATURE_UNITS)
    histories = {name: MetricsLog.read(p / "metrics.jsonl") for name, p in zip(names, inputs) if p in configs}
    if histories:
        plots.compare_curves(histories, "val_nll", out_dir / "curves.png", title="validation NLL per token")
    return report
