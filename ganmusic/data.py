"""Labelled MIDI corpora: find files, parse them in parallel (`parsing`), cache, split.

A corpus is a folder with one subfolder per label (`jazz/`, `not_jazz/`, any names), or a CSV
manifest `path,label[,group]` (paths relative to the manifest, inside its folder unless
`allow_outside`; a `performer` column counts as the group), or a folder holding `manifest.csv`
(found by `corpusfiles`). Files that cannot be used (unreadable, not MIDI, bad manifest rows,
symbolic-link loops) are skipped with a reason; the rest is parsed once and cached by content,
so a second load is fast and a changed file is re-parsed alone.

Chords (lead sheets): every file's chord symbols are read with it (`parsing`,
`lead_sheets.encode_lead_sheet`: MIDI text, marker or lyric events, or a sidecar
`song.chords.txt`) into per-token conditioning rows stored beside the tokens (`Corpus.cond`,
`windows.Batch.cond`); a file without chords has no-chord rows. `Corpus.chord_info` keeps
per-file chord counts for `data inspect`.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganmusic import encoding as enc
from ganmusic import lead_sheets as ls
from ganmusic.encoding import EncodingConfig, Vocab
from ganmusic.corpusfiles import (MIDI_SUFFIXES, CorpusError, Entry, expand_paths, find_entries,  # noqa: F401
                                  is_midi, midi_files, read_manifest)
from ganmusic.parsing import Parsed, file_digest, parse_files

CACHE_FORMAT = 3  # 2: chord conditioning and chord counts beside the tokens; 3: comping tracks skipped
SPLITS = ("train", "val", "test")
DEFAULT_MIN_NOTES = 8
DEFAULT_MAX_FILE_BYTES = enc.MAX_FILE_BYTES


def default_cache_dir() -> Path:
    return Path(os.environ.get("GANMUSIC_CACHE", Path.home() / ".cache" / "ganmusic"))


# ---------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------


@dataclass
class Corpus:
    """Parsed usable files. Tokens of file i are `tokens[offsets[i]:offsets[i + 1]]`."""

    root: Path
    config: EncodingConfig
    positive: str
    paths: list[str]  # relative to root
    labels: list[str]
    groups: list[str]
    digests: list[str]
    tokens: np.ndarray  # int16, all files concatenated
    offsets: np.ndarray  # int64 [N + 1]
    split: np.ndarray  # int8 [N]: index into SPLITS
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    parsed_now: int = 0  # files parsed by this load (the rest came from the cache)
    cond: np.ndarray | None = None  # int16 [len(tokens), lead_sheets.COND_SIZE]; None: no chords
    chord_info: list[dict] = field(default_factory=list)  # per file: lead_sheets.LeadSheet.info

    def __post_init__(self):
        if self.cond is None:
            self.cond = ls.no_conditioning(len(self.tokens))

    @property
    def vocab(self) -> Vocab:
        return Vocab(self.config)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def is_positive(self) -> np.ndarray:
        return np.array([label == self.positive for label in self.labels], dtype=bool)

    def sequence(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def conditioning(self, i: int) -> np.ndarray:
        """Chord conditioning rows of file i, aligned with `sequence(i)`."""
        return self.cond[self.offsets[i] : self.offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def indices(self, split: str | None = None, positive: bool | None = None) -> np.ndarray:
        keep = np.ones(len(self), dtype=bool)
        if split is not None:
            keep &= self.split == SPLITS.index(split)
        if positive is not None:
            keep &= self.is_positive == positive
        return np.flatnonzero(keep)

    def fingerprint(self) -> str:
        """Identifies the data a model was trained on (contents, labels, encoding)."""
        h = hashlib.blake2b(digest_size=12)
        for d, label in sorted(zip(self.digests, self.labels)):
            h.update(f"{d}:{label};".encode())
        h.update(self.config.to_json().encode())
        return h.hexdigest()


def load_corpus(source: str | Path, config: EncodingConfig | None = None, *, positive: str = "jazz",
                min_notes: int = DEFAULT_MIN_NOTES, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
                cache_dir: str | Path | None = None, workers: int | None = None,
                split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), split_seed: int = 0,
                progress: bool = True, require_positive: bool = True, allow_outside: bool = False) -> Corpus:
    """Find, parse (in parallel, cached by content) and split a labelled corpus. Manifest paths
    must stay inside the corpus folder unless `allow_outside`."""
    config = config or EncodingConfig()
    root, entries = find_entries(source, allow_outside)
    labels_present = sorted({e.label for e in entries if not e.problem})
    if require_positive and positive not in labels_present:
        raise CorpusError(f"{source}: no files with the positive label '{positive}' "
                          f"(labels found: {', '.join(labels_present)})")

    skipped: list[tuple[str, str]] = []
    # Content digests: the cache key per file, and how exact duplicates are found.
    digests: list[str | None] = []
    for e in entries:
        digest, reason = None, e.problem
        if not reason:
            content, reason = enc.read_file_bytes(e.path, max_file_bytes)
            try:
                digest = file_digest(e.path, content) if content is not None else None
            except OSError as exc:  # the chord sidecar
                digest, reason = None, f"cannot read its chord sidecar ({exc.strerror})"
        digests.append(digest)
        if reason:
            skipped.append((rel(e.path, root), reason))

    cache_path = Path(cache_dir or default_cache_dir()) / f"corpus-{cache_key(root, config, min_notes)}.npz"
    cached = read_cache(cache_path)
    todo = sorted({(d, str(e.path)) for e, d in zip(entries, digests) if d is not None and d not in cached})
    todo_unique = list({d: p for d, p in todo}.items())
    parsed = parse_files([p for _, p in todo_unique], config, min_notes, workers, progress)
    results = dict(cached)
    results.update({d: r for (d, _), r in zip(todo_unique, parsed)})
    if todo_unique or set(cached) - {d for d in digests if d}:
        write_cache(cache_path, {d: results[d] for d in digests if d is not None})

    paths, labels, groups, kept_digests, seqs, conds, infos = [], [], [], [], [], [], []
    first_path: dict[str, str] = {}
    for e, d in zip(entries, digests):
        if d is None:
            continue
        path = rel(e.path, root)
        tokens, cond, info, reason = results[d]
        if tokens is None:
            skipped.append((path, reason))
        elif d in first_path:
            skipped.append((path, f"duplicate of {first_path[d]}"))
        else:
            first_path[d] = path
            paths.append(path)
            labels.append(e.label)
            groups.append(e.group)
            kept_digests.append(d)
            seqs.append(tokens)
            conds.append(cond)
            infos.append(info)
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens = np.concatenate(seqs).astype(np.int16) if seqs else np.zeros(0, np.int16)
    cond = np.concatenate(conds).astype(np.int16) if conds else ls.no_conditioning(0)
    split = assign_splits(labels, groups, kept_digests, split_fractions, split_seed)
    return Corpus(root, config, positive, paths, labels, groups, kept_digests, tokens, offsets,
                  split, sorted(skipped), parsed_now=len(todo_unique), cond=cond, chord_info=infos)


def rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------------
# Cache: one .npz per corpus root and encoding, entries keyed by file content; never pickled
# ---------------------------------------------------------------------------------------------


def cache_key(root: Path, config: EncodingConfig, min_notes: int) -> str:
    text = f"{CACHE_FORMAT}|{root.resolve()}|{config.to_json()}|{min_notes}"
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def read_cache(path: Path) -> dict[str, Parsed]:
    """Entries of a cache file; a missing, damaged or foreign file reads as empty (rebuilt)."""
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != CACHE_FORMAT:
                return {}
            digests, reasons, infos = list(z["digests"]), list(z["reasons"]), list(z["infos"])
            tokens, offsets, cond = z["tokens"], z["offsets"], z["cond"]
            if int(z["checksum"]) != content_checksum(digests, reasons, tokens, offsets, cond, infos):
                raise ValueError("checksum mismatch")
    except Exception:  # damaged: rebuild, never trust
        return {}
    return {str(d): Parsed(tokens[offsets[i] : offsets[i + 1]], cond[offsets[i] : offsets[i + 1]],
                           json.loads(str(info)), "") if not r else Parsed(None, None, None, str(r))
            for i, (d, r, info) in enumerate(zip(digests, reasons, infos))}


def write_cache(path: Path, entries: dict[str, Parsed]) -> None:
    digests = list(entries)
    reasons = [entries[d].reason for d in digests]
    infos = [json.dumps(entries[d].info or {}, sort_keys=True) for d in digests]
    usable = [entries[d].tokens is not None for d in digests]
    seqs = [entries[d].tokens if ok else np.zeros(0, np.int16) for d, ok in zip(digests, usable)]
    conds = [entries[d].cond if ok else ls.no_conditioning(0) for d, ok in zip(digests, usable)]
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in seqs])]).astype(np.int64)
    tokens = np.concatenate(seqs).astype(np.int16) if seqs else np.zeros(0, np.int16)
    cond = np.concatenate(conds).astype(np.int16) if conds else ls.no_conditioning(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, format=CACHE_FORMAT, digests=np.array(digests, dtype=str),
             reasons=np.array(reasons, dtype=str), tokens=tokens, offsets=offsets, cond=cond,
             infos=np.array(infos, dtype=str),
             checksum=content_checksum(digests, reasons, tokens, offsets, cond, infos))
    os.replace(tmp, path)  # atomic: a reader never sees half a cache


def content_checksum(digests, reasons, tokens, offsets, cond, infos) -> int:
    crc = zlib.crc32("\n".join(map(str, digests)).encode())
    crc = zlib.crc32("\n".join(map(str, reasons)).encode(), crc)
    crc = zlib.crc32("\n".join(map(str, infos)).encode(), crc)
    crc = zlib.crc32(np.ascontiguousarray(tokens, dtype=np.int16).tobytes(), crc)
    crc = zlib.crc32(np.ascontiguousarray(cond, dtype=np.int16).tobytes(), crc)
    return zlib.crc32(np.ascontiguousarray(offsets, dtype=np.int64).tobytes(), crc)


# ---------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------


def assign_splits(labels: list[str], groups: list[str], digests: list[str],
                  fractions: tuple[float, float, float], seed: int) -> np.ndarray:
    """Deterministic split by group (a file without a group is its own), stratified by label.

    Groups are visited in a seeded hash order and each goes to the split furthest below its
    target share of that label's files, so every file of a group lands in one split.
    """
    n = len(labels)
    split = np.zeros(n, dtype=np.int8)
    keys = [g if g else f"file:{d}" for g, d in zip(groups, digests)]
    members: dict[tuple[str, str], list[int]] = {}
    for i, (label, key) in enumerate(zip(labels, keys)):
        members.setdefault((label, key), []).append(i)
    targets = np.asarray(fractions, dtype=np.float64) / np.sum(fractions)
    for label in sorted(set(labels)):
        label_groups = [k for (lab, k) in members if lab == label]
        label_groups.sort(key=lambda k: hashlib.blake2b(f"{seed}:{k}".encode(), digest_size=8).digest())
        total = sum(len(members[(label, k)]) for k in label_groups)
        counts = np.zeros(3)
        for k in label_groups:
            # The first groups seed test and validation, so small labels still get held-out
            # files; then each group goes where the split is furthest below its share.
            empty = [j for j in (2, 1) if targets[j] > 0 and counts[j] == 0]
            deficit = targets * total - counts
            s = empty[0] if empty and len(label_groups) >= 3 else max((2, 1, 0), key=lambda j: deficit[j])
            idx = members[(label, k)]
            split[idx] = s
            counts[s] += len(idx)
    return split


def corpus_summary(corpus: Corpus) -> dict:
    """Counts per label and split, skipped files with reasons: what `data inspect` shows."""
    types = corpus.vocab.token_type[corpus.tokens.astype(np.int64)]
    notes_per_file = np.add.reduceat(types == enc.T_PITCH, corpus.offsets[:-1]) if len(corpus) else np.zeros(0)
    lengths = corpus.lengths()
    labels = {}
    for label in sorted(set(corpus.labels), key=lambda lab: (lab != corpus.positive, lab)):
        idx = np.array([i for i, lab in enumerate(corpus.labels) if lab == label])
        labels[label] = {
            "files": int(len(idx)),
            "notes": int(notes_per_file[idx].sum()),
            "tokens": int(lengths[idx].sum()),
            **{s: int((corpus.split[idx] == k).sum()) for k, s in enumerate(SPLITS)},
        }
    return {
        "root": str(corpus.root),
        "positive": corpus.positive,
        "usable_files": len(corpus),
        "skipped_files": len(corpus.skipped),
        "labels": labels,
        "groups": len({g for g in corpus.groups if g}),
        "skipped": [{"path": p, "reason": r} for p, r in corpus.skipped],
        "chords": ls.chord_summary(corpus.labels, corpus.chord_info, corpus.paths),
        "encoding": json.loads(corpus.config.to_json()),
        "fingerprint": corpus.fingerprint(),
    }


@dataclass
class CorpusReport:
    """What `data inspect` shows: the corpus, its summary and the files written."""

    corpus: Corpus
    summary: dict  # corpus_summary(corpus)
    json_path: Path  # OUT/NAME-inspect.json: the summary
    histograms: Path | None  # OUT/NAME-inspect.png: pitch, duration, shift per label (None: no usable file)


def inspect_corpus(source: str | Path, out: str | Path = "reports", config: EncodingConfig | None = None,
                   **load_options) -> CorpusReport:
    """Parse a corpus (cached; `load_options` as `load_corpus` takes them, any label may be
    missing) and write its report, `OUT/NAME-inspect.json` and `OUT/NAME-inspect.png`."""
    from ganmusic import plots

    corpus = load_corpus(source, config, **{"require_positive": False, **load_options})
    summary = corpus_summary(corpus)
    out, name = Path(out), corpus.root.name or "corpus"
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{name}-inspect.json"
    json_path.write_text(json.dumps(summary, indent=2))
    png = plots.corpus_histograms(corpus, out / f"{name}-inspect.png") if len(corpus) else None
    return CorpusReport(corpus, summary, json_path, png)
