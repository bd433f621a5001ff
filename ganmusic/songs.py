"""Writing songs: sampled tokens or notes as MIDI, piano-roll PNGs, WAV and `summary.json`.

The one place songs are written, for `ganmusic sample` (`generate_songs`), the demo, the
evaluation and the samples a training run writes (`write_songs`).
"""

from __future__ import annotations

import json
import wave
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ganmusic import encoding as enc
from ganmusic.encoding import EncodingConfig, Note, Vocab
from ganmusic.errors import GanmusicError

BEATS_PER_BAR = 4  # --bars counts 4/4 bars; the grid has no time signature of its own
NOTES_PER_BEAT_ROOM = 4  # tokens generated for `bars`: room for this many notes per beat, then cut


def write_wav(midi, path: str | Path, rate: int = 22050) -> Path:
    """Render with pretty_midi's sine-wave synthesizer; 16-bit mono WAV via the standard library."""
    audio = midi.synthesize(fs=rate)
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    pcm = (audio / peak * 0.8 * 32767).astype("<i2") if peak > 0 else np.zeros(len(audio), "<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())
    return Path(path)


def write_song(notes: list[Note], encoding: EncodingConfig, path: str | Path, tempo: float = 120.0,
               png: bool = False, wav: bool = False, title: str = "", primer_notes: int = 0) -> Path:
    """`path` (`.mid`), and beside it a piano-roll `.png` and a `.wav` when asked."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi = enc.notes_to_midi(notes, encoding, tempo=tempo)
    midi.write(str(path))
    if png:
        from ganmusic import plots

        plots.piano_roll(notes, encoding.steps_per_beat, path.with_suffix(".png"), title=title or path.stem,
                         primer_notes=primer_notes)
    if wav:
        write_wav(midi, path.with_suffix(".wav"))
    return path


def write_songs(tokens, encoding: EncodingConfig, directory: str | Path, tempo: float = 120.0,
                png: bool = False, wav: bool = False, title: str = "") -> list[Path]:
    """Each row of sampled tokens as `directory/sample-KKK.mid` (+ `.png`, `.wav`); returns the
    MIDI paths."""
    vocab = Vocab(encoding)
    return [write_song(enc.tokens_to_notes(row, vocab), encoding, Path(directory) / f"sample-{k:03d}.mid", tempo,
                       png, wav, f"{title} sample-{k:03d}".strip())
            for k, row in enumerate(np.asarray(tokens))]


def tokens_for_bars(bars: int) -> int:
    """Tokens to generate for `bars` 4/4 bars: room for four notes per beat (3 tokens each)."""
    return bars * BEATS_PER_BAR * NOTES_PER_BEAT_ROOM * 3


def song_notes(row, vocab: Vocab, primer_notes: int, bars: int | None, keep_primer: bool) -> list[Note]:
    """The notes of one sampled row: cut to `bars` 4/4 bars of generated music (after any
    primer) and, unless `keep_primer`, without the primer, shifted to start at 0."""
    notes = enc.tokens_to_notes(row, vocab)
    generated_from = notes[primer_notes].onset if len(notes) > primer_notes else 0
    if bars is not None:
        end = generated_from + bars * BEATS_PER_BAR * vocab.config.steps_per_beat
        notes = notes[:primer_notes] + [n for n in notes[primer_notes:] if n.onset < end]
    if not keep_primer:
        notes = [Note(n.onset - generated_from, n.pitch, n.duration) for n in notes[primer_notes:]]
    return notes


def generate_songs(run_dir: str | Path, out_dir: str | Path | None = None, checkpoint: str = "best",
                   num: int = 8, length: int = 768, bars: int | None = None, sampling_config=None,
                   primer: str | Path | None = None, primer_in_output: bool = True, tempo: float = 120.0,
                   png: bool = True, wav: bool = False, seed: int = 0) -> dict:
    """Sample `num` songs from a run and write them to `out_dir` (default
    `RUN/samples/CHECKPOINT-sSEED/`): MIDI, piano-roll PNGs (unless `png` is False), WAV if asked,
    and `summary.json` (settings and per-song metrics), which is also returned, with `out_dir`."""
    import jax

    from ganmusic import metrics, sampling
    from ganmusic.runs import restore_params

    run_dir = Path(run_dir)
    sampling_config = sampling_config or sampling.SamplingConfig()
    for what, value, ok in (("num", num, num >= 1), ("length", length, length >= 3), ("tempo", tempo, 10 <= tempo <= 400),
                            ("bars", bars, bars is None or bars >= 1)):
        if not ok:
            raise GanmusicError(f"{what} {value} is out of range (num >= 1, length >= 3 tokens, "
                                "tempo 10-400 BPM, bars >= 1)")
    config, params = restore_params(run_dir, checkpoint)
    vocab = Vocab(config.encoding)
    primer_tokens = None
    if primer is not None:
        try:
            primer_tokens = enc.encode_file(primer, config.encoding)[:-1]  # drop EOS: the song goes on
        except enc.MidiError as exc:
            raise enc.MidiError(f"{primer}: {exc}") from None
        if len(primer_tokens) < 2:
            raise GanmusicError(f"{primer}: the primer has no usable notes")
    length = tokens_for_bars(bars) if bars is not None else length
    tokens = sampling.sample(params, config.generator, config.encoding, jax.random.PRNGKey(seed), num, length,
                             sampling_config, primer=primer_tokens)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "samples" / f"{checkpoint}-s{seed}"
    primer_notes = len(enc.tokens_to_notes(primer_tokens, vocab)) if primer_tokens is not None else 0
    shown_primer = primer_notes if primer_in_output else 0
    rows = []
    for k, row in enumerate(np.asarray(tokens)):
        notes = song_notes(row, vocab, primer_notes, bars, keep_primer=primer_in_output or primer is None)
        path = write_song(notes, config.encoding, out_dir / f"sample-{k:03d}.mid", tempo, png=png, wav=wav,
                          title=f"{run_dir.name} sample-{k:03d}", primer_notes=shown_primer)
        rows.append({"file": str(path), **metrics.summary(notes, config.encoding.steps_per_beat, tempo)})
    summary = {"run": str(run_dir), "checkpoint": str(checkpoint), "seed": seed, "sampling": asdict(sampling_config),
               "samples": rows}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return {**summary, "out_dir": str(out_dir)}
