"""Turn public symbolic corpora into the labelled-MIDI layout ganmusic reads.

`weimar`: the Weimar Jazz Database, as its SQLite file (`wjazzd.db`: tables `solo_info`, `melody`
and, when present, `beats`) or as a folder of its solo transcription CSVs (`pitch`, `onset`,
`duration` in seconds, one solo per file). Each solo becomes `OUT/jazz/NAME.mid` and a row of
`OUT/manifest.csv` with the performer as the split group. With the database's beat track the
notes are placed on the musicians' own beats (times interpolated between annotated beat onsets,
written at 120 BPM), so tempo drift inside a solo does not smear the beat grid; without it the
solo's average tempo defines the beats.
"""

from __future__ import annotations

import csv
import re
import sqlite3
from pathlib import Path

import numpy as np
import pretty_midi

from ganmusic.errors import GanmusicError


class SourceError(GanmusicError):
    """A source that cannot be imported, with a one-line reason."""


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
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    inst = pretty_midi.Instrument(program=66)  # tenor sax; the encoding ignores the instrument
    origin = float(min(starts_beats))
    for pitch, start, end in zip(pitches, starts_beats, ends_beats):
        start, end = (start - origin) * 60 / tempo, (end - origin) * 60 / tempo
        inst.notes.append(pretty_midi.Note(velocity=90, pitch=int(pitch), start=start, end=max(end, start + 0.01)))
    midi.instruments.append(inst)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.write(str(path))


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "solo"


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1].lower() for row in db.execute(f"PRAGMA table_info({table})")}


def import_weimar(source: str | Path, out: str | Path, label: str = "jazz", tempo: float = 120.0) -> list[dict]:
    """Write one MIDI file per solo and `manifest.csv`; returns the manifest rows."""
    source, out = Path(source), Path(out)
    if not source.exists():
        raise SourceError(f"{source}: no such file or folder")
    solos = _read_db(source) if source.is_file() else _read_csv_folder(source, tempo)
    if not solos:
        raise SourceError(f"{source}: no solos found")
    rows = []
    for solo in solos:
        name = safe_name(f"{solo['performer']}_{solo['title']}_{solo['id']}")
        path = f"{label}/{name}.mid"
        write_solo(out / path, solo["pitch"], solo["start"], solo["end"])
        rows.append({"path": path, "label": label, "group": solo["performer"], "title": solo["title"]})
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "group", "title"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _read_db(path: Path) -> list[dict]:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        tables = {r[0].lower() for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"{path}: not a readable SQLite database ({exc})") from None
    need = {"solo_info": {"melid", "performer", "title", "avgtempo"}, "melody": {"melid", "onset", "pitch", "duration"}}
    for table, columns in need.items():
        if table not in tables:
            raise SourceError(f"{path}: no table '{table}' (is this the Weimar Jazz Database's wjazzd.db?)")
        missing = columns - _columns(db, table)
        if missing:
            raise SourceError(f"{path}: table '{table}' lacks columns {sorted(missing)}")
    beats: dict[int, np.ndarray] = {}
    if "beats" in tables and {"melid", "onset"} <= _columns(db, "beats"):
        for melid, onset in db.execute("SELECT melid, onset FROM beats ORDER BY melid, onset"):
            beats.setdefault(melid, []).append(onset)
    notes: dict[int, list] = {}
    for melid, onset, pitch, duration in db.execute("SELECT melid, onset, pitch, duration FROM melody ORDER BY melid, onset"):
        notes.setdefault(melid, []).append((onset, pitch, duration))
    solos = []
    for melid, performer, title, avgtempo in db.execute("SELECT melid, performer, title, avgtempo FROM solo_info ORDER BY melid"):
        if melid not in notes:
            continue
        arr = np.array(notes[melid], dtype=np.float64)
        beat_track = np.array(beats[melid]) if melid in beats else None
        tempo = float(avgtempo) if avgtempo else 120.0
        solos.append({"id": melid, "performer": performer or "unknown", "title": title or str(melid),
                      "pitch": arr[:, 1].astype(int), "start": seconds_to_beats(arr[:, 0], beat_track, tempo),
                      "end": seconds_to_beats(arr[:, 0] + arr[:, 2], beat_track, tempo)})
    db.close()
    return solos


def _read_csv_folder(folder: Path, tempo: float) -> list[dict]:
    solos = []
    for path in sorted(folder.glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields = {c.lower().strip(): c for c in reader.fieldnames or []}
            if not {"pitch", "onset", "duration"} <= set(fields):
                raise SourceError(f"{path}: a solo CSV needs the columns pitch, onset, duration (seconds)")
            try:
                arr = np.array([[float(r[fields["onset"]]), float(r[fields["pitch"]]), float(r[fields["duration"]])]
                                for r in reader], dtype=np.float64).reshape(-1, 3)
            except ValueError as exc:
                raise SourceError(f"{path}: not a number ({exc})") from None
        if not len(arr):
            continue
        performer = path.stem.split("_")[0]  # the Weimar file names start with the performer
        solos.append({"id": path.stem, "performer": performer, "title": path.stem,
                      "pitch": arr[:, 1].astype(int), "start": seconds_to_beats(arr[:, 0], None, tempo),
                      "end": seconds_to_beats(arr[:, 0] + arr[:, 2], None, tempo)})
    if not solos:
        raise SourceError(f"{folder}: no solo CSV files")
    return solos
