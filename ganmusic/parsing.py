"""One MIDI file parsed into tokens and chord conditioning (`Parsed`), and many files parsed in
worker processes (`parse_files`). Runs in worker processes: nothing here may import JAX.
"""

from __future__ import annotations

import errno
import hashlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ganmusic import chords as ch
from ganmusic import encoding as enc
from ganmusic import lead_sheets as ls
from ganmusic.encoding import EncodingConfig
from ganmusic.ui import maybe_progress


def digest_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def file_digest(path: Path, data: bytes | None = None) -> str:
    """Content digest of a MIDI file (`data`: its bytes, when already read) and its chord
    sidecar (`song.chords.txt`), if any."""
    data = Path(path).read_bytes() if data is None else data
    sidecar = sidecar_bytes(path)
    if sidecar is not None:
        data += b"\0ganmusic-chords\0" + sidecar
    return digest_bytes(data)


def sidecar_bytes(path) -> bytes | None:
    """The chord sidecar's bytes, None when there is none (a MIDI file whose name is already
    near the limit has no room for `.chords.txt`: no sidecar, not an error)."""
    try:
        sidecar = ch.sidecar_path(Path(path))
        return sidecar.read_bytes() if sidecar.is_file() else None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return None
        raise


class Parsed(NamedTuple):
    """One file parsed: tokens, conditioning rows and chord counts, or `None`s and a reason."""

    tokens: np.ndarray | None
    cond: np.ndarray | None
    info: dict | None
    reason: str


def parse_midi_bytes(data: bytes, config: EncodingConfig, min_notes: int,
                     chords_text: str | None = None) -> Parsed:
    """Tokens and chord conditioning of one file (`chords_text`: its sidecar's text), or a
    reason why it cannot be used."""
    if not data:
        return Parsed(None, None, None, "empty file")
    try:
        midi = enc.midi_from_bytes(data)
    except Exception as exc:  # mido raises many kinds on bad bytes
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return Parsed(None, None, None, f"not a readable MIDI file ({msg[:120]})")
    stats = enc.EncodeStats()
    try:
        lead = ls.encode_lead_sheet(midi, config, stats, sidecar_text=chords_text)
    except Exception as exc:  # a broken tempo map and similar
        return Parsed(None, None, None, f"cannot read notes ({str(exc)[:120]})")
    if stats.notes_in == 0:
        return Parsed(None, None, None, "drum-only file (no pitched notes)" if stats.drum_notes else "no notes")
    n_notes = (len(lead.tokens) - 2) // 3
    if n_notes < min_notes:
        return Parsed(None, None, None, f"too few notes ({n_notes} < {min_notes})")
    return Parsed(lead.tokens, lead.cond, lead.info, "")


def _parse_job(job) -> Parsed:
    path, config_json, min_notes, max_file_bytes = job
    data, problem = enc.read_file_bytes(path, max_file_bytes)
    if data is None:
        return Parsed(None, None, None, problem)
    try:
        sidecar = sidecar_bytes(path)
    except OSError as exc:
        return Parsed(None, None, None, f"cannot read its chord sidecar ({exc.strerror})")
    chords_text = None if sidecar is None else \
        sidecar.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")  # as read_text
    return parse_midi_bytes(data, EncodingConfig.from_json(config_json), min_notes, chords_text)


def parse_files(paths: list[str], config: EncodingConfig, min_notes: int, workers: int | None,
                progress: bool, max_file_bytes: int = enc.MAX_FILE_BYTES) -> list[Parsed]:
    """A `Parsed` per path; devices, FIFOs and files over `max_file_bytes` are refused by their
    metadata, never opened."""
    jobs = [(p, config.to_json(), min_notes, max_file_bytes) for p in paths]
    workers = workers or min(os.cpu_count() or 1, 8)
    out = []
    with maybe_progress(progress and bool(jobs), "parsing MIDI", len(jobs)) as advance:
        if workers <= 1 or len(jobs) < 32:
            for job in jobs:
                out.append(_parse_job(job))
                advance()
        else:
            # spawn, not fork: the caller may already hold JAX's threads.
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                for result in pool.map(_parse_job, jobs, chunksize=16):
                    out.append(result)
                    advance()
    return out
