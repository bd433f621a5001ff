"""Turn public symbolic corpora into the labelled-MIDI layout ganmusic reads.

`weimar`: the Weimar Jazz Database, as its SQLite file (`wjazzd.db`: tables `solo_info`, `melody`
and, when present, `beats`) or as a folder of its solo transcription CSVs (`pitch`, `onset`,
`duration` in seconds, one solo per file). Each solo becomes `OUT/jazz/NAME.mid` and a row of
`OUT/manifest.csv` with the performer as the split group. With the database's beat track the
notes are placed on the musicians' own beats (times interpolated between annotated beat onsets,
written at 120 BPM), so tempo drift inside a solo does not smear the beat grid; without it the
solo's average tempo defines the beats.

A solo that cannot be read (a damaged CSV, a melody with missing or impossible values) is skipped
with its reason and the others are imported; a source with nothing usable raises `SourceError`.
"""

from __future__ import annotations

import csv
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganmusic.encoding import beats_to_midi
from ganmusic.errors import ConfigError, GanmusicError
from ganmusic.midi_writer import write_midi


class SourceError(GanmusicError):
    """A source that cannot be imported, with a one-line reason."""


class SoloError(ValueError):
    """One solo that cannot be imported, with a one-line reason (it is skipped)."""


@dataclass
class ImportResult:
    rows: list[dict]  # manifest rows of the imported solos
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (solo, reason) of each skipped one


def seconds_to_beats(times: np.ndarray, beat_onsets: np.ndarray | None, tempo: float) -> np.ndarray:
    """Beat positions of `times`: interpolated between annotated beat onsets (extrapolated at
    the ends with the first and last beat lengths), or `tempo` beats per minute without them."""
    times = np.asarray(times, dtype=np.float64)
    if beat_onsets is None or len(beat_onsets) < 2:
        return times * tempo / 60.0
    beats = np.asarray(beat_onsets, dtype=np.float64)
    index = np.arange(len(beats), dtype=np.float64)
    out = np.interp(times, beats, index)
    first, last = beats[1] - beats[0], beats[-1] - beats[-2]
    out = np.where(times < beats[0], (times - beats[0]) / first, out)
    return np.where(times > beats[-1], index[-1] + (times - beats[-1]) / last, out)


def write_solo(path: Path, pitches, starts_beats, ends_beats, tempo: float = 120.0) -> None:
    """One solo as MIDI from its first note on; every note lasts at least 10 ms."""
    origin, shortest = float(min(starts_beats)), 0.01 * tempo / 60
    notes = [(start - origin, max(end - start, shortest), pitch)
             for pitch, start, end in zip(pitches, starts_beats, ends_beats)]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_midi(beats_to_midi(notes, tempo, program=66), path)  # tenor sax; the encoding ignores the instrument


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "solo"


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1].lower() for row in db.execute(f"PRAGMA table_info({table})")}


def import_weimar(source: str | Path, out: str | Path, label: str = "jazz", tempo: float = 120.0) -> ImportResult:
    """Write one MIDI file per readable solo and `manifest.csv`; unreadable solos are skipped
    with their reasons. Raises `SourceError` when the source itself is unusable or no solo is."""
    source, out = Path(source), Path(out)
    if not (np.isfinite(tempo) and tempo >= 10):
        raise ConfigError(f"tempo must be at least 10 beats per minute, not {tempo}")
    if not source.exists():
        raise SourceError(f"{source}: no such file or folder")
    solos, skipped = _read_db(source) if source.is_file() else _read_csv_folder(source, tempo)
    rows = []
    for solo in solos:
        name = safe_name(f"{solo['performer']}_{solo['title']}_{solo['id']}")
        path = f"{label}/{name}.mid"
        try:
            write_solo(out / path, solo["pitch"], solo["start"], solo["end"])
        except (ValueError, OSError) as exc:
            skipped.append((solo["source"], f"cannot be written as MIDI ({exc})"))
            continue
        rows.append({"path": path, "label": label, "group": solo["performer"], "title": solo["title"]})
    if not rows:
        reasons = f" ({len(skipped)} skipped: {skipped[0][0]}: {skipped[0][1]}{', ...' if len(skipped) > 1 else ''})" \
            if skipped else ""
        raise SourceError(f"{source}: no usable solos{reasons}")
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "group", "title"])
        writer.writeheader()
        writer.writerows(rows)
    return ImportResult(rows, skipped)


def _solo(source: str, solo_id, performer: str, title: str, notes, beat_track, tempo: float) -> dict:
    """A solo from its (onset, pitch, duration) rows in seconds; `SoloError` if they are unusable."""
    try:
        arr = np.array(notes, dtype=np.float64).reshape(-1, 3)
    except (ValueError, TypeError) as exc:
        raise SoloError(f"not a number ({exc})") from None
    if not len(arr):
        raise SoloError("no notes")
    if not np.isfinite(arr).all():
        raise SoloError("missing or infinite onset, pitch or duration")
    if arr[:, 1].min() < 0 or arr[:, 1].max() > 127 or (arr[:, 1] != np.round(arr[:, 1])).any():
        raise SoloError("pitch outside the MIDI range 0-127 (or not a whole number)")
    if (arr[:, 2] < 0).any():
        raise SoloError("negative duration")
    return {"source": source, "id": solo_id, "performer": performer, "title": title,
            "pitch": arr[:, 1].astype(int), "start": seconds_to_beats(arr[:, 0], beat_track, tempo),
            "end": seconds_to_beats(arr[:, 0] + arr[:, 2], beat_track, tempo)}


def _read_db(path: Path) -> tuple[list[dict], list[tuple[str, str]]]:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        tables = {r[0].lower() for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"{path}: not a readable SQLite database ({exc})") from None
    try:
        need = {"solo_info": {"melid", "performer", "title", "avgtempo"},
                "melody": {"melid", "onset", "pitch", "duration"}}
        for table, columns in need.items():
            if table not in tables:
                raise SourceError(f"{path}: no table '{table}' (is this the Weimar Jazz Database's wjazzd.db?)")
            missing = columns - _columns(db, table)
            if missing:
                raise SourceError(f"{path}: table '{table}' lacks columns {sorted(missing)}")
        beats: dict[int, list] = {}
        if "beats" in tables and {"melid", "onset"} <= _columns(db, "beats"):
            for melid, onset in db.execute("SELECT melid, onset FROM beats ORDER BY melid, onset"):
                beats.setdefault(melid, []).append(onset)
        notes: dict[int, list] = {}
        for melid, onset, pitch, duration in db.execute(
                "SELECT melid, onset, pitch, duration FROM melody ORDER BY melid, onset"):
            notes.setdefault(melid, []).append((onset, pitch, duration))
        solos, skipped = [], []
        for melid, performer, title, avgtempo in db.execute(
                "SELECT melid, performer, title, avgtempo FROM solo_info ORDER BY melid"):
            if melid not in notes:
                continue
            name = f"{path}: solo melid {melid} ({performer} - {title})"
            try:
                beat_track = _beat_track(beats.get(melid))
                tempo = float(avgtempo) if avgtempo else 120.0
                if not np.isfinite(tempo) or tempo <= 0:
                    raise SoloError(f"average tempo {avgtempo!r} is not a positive number")
                solos.append(_solo(name, melid, performer or "unknown", title or str(melid), notes[melid],
                                   beat_track, tempo))
            except (SoloError, ValueError, TypeError) as exc:
                skipped.append((name, str(exc)))
    except sqlite3.DatabaseError as exc:  # damage further in than the table list
        raise SourceError(f"{path}: not a readable SQLite database ({exc})") from None
    finally:
        db.close()
    return solos, skipped


def _beat_track(onsets) -> np.ndarray | None:
    if not onsets:
        return None
    try:
        track = np.array(onsets, dtype=np.float64)
    except (ValueError, TypeError):
        raise SoloError("beat track onsets are not numbers") from None
    if not np.isfinite(track).all() or (np.diff(track) <= 0).any():
        raise SoloError("beat track onsets are missing or not increasing")
    return track


def _read_csv_folder(folder: Path, tempo: float) -> tuple[list[dict], list[tuple[str, str]]]:
    paths = sorted(folder.glob("*.csv"))
    if not paths:
        raise SourceError(f"{folder}: no solo CSV files")
    solos, skipped = [], []
    for path in paths:
        try:
            performer = path.stem.split("_")[0]  # the Weimar file names start with the performer
            solos.append(_solo(str(path), path.stem, performer, path.stem, _csv_notes(path), None, tempo))
        except SoloError as exc:
            skipped.append((str(path), str(exc)))
        except csv.Error as exc:
            skipped.append((str(path), f"not a readable CSV ({exc})"))
        except UnicodeDecodeError:
            skipped.append((str(path), "not a UTF-8 text file"))
        except OSError as exc:
            skipped.append((str(path), f"cannot be read ({exc.strerror or exc})"))
    return solos, skipped


def _csv_notes(path: Path) -> list[tuple[float, float, float]]:
    """(onset, pitch, duration) rows of one solo CSV."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = {c.lower().strip(): c for c in reader.fieldnames or []}
        if not {"pitch", "onset", "duration"} <= set(fields):
            raise SoloError("a solo CSV needs the columns pitch, onset, duration (seconds)")
        notes = []
        for row in reader:
            values = [row[fields[c]] for c in ("onset", "pitch", "duration")]
            try:
                notes.append(tuple(float(v) for v in values))
            except (TypeError, ValueError):
                shown = ",".join("" if v is None else str(v) for v in values)
                raise SoloError(f"line {reader.line_num}: onset, pitch, duration {shown!r} are not all numbers") from None
    return notes
