"""Writing songs: sampled tokens or notes as MIDI, piano-roll PNGs, WAV and `summary.json`.

The one place songs are written, for `ganmusic sample` (`generate_songs`), the demo, the
evaluation and the samples a training run writes (`write_songs`).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import multiprocessing
import multiprocessing.connection
import json
import os
import signal
import threading
import time
import wave
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ganmusic import encoding as enc
from ganmusic.encoding import EncodingConfig, Note, Vocab
from ganmusic.errors import GanmusicError
from ganmusic.midi_writer import write_midi
from ganmusic.ui import maybe_progress

MAX_LENGTH = 100_000  # tokens per song (about 33,000 notes: hours of music)
MAX_NUM = 10_000  # songs per call
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
               png: bool = False, wav: bool = False, title: str = "", primer_notes: int = 0,
               form=None, comping: bool = True) -> Path:
    """`path` (`.mid`), and beside it a piano-roll `.png` and a `.wav` when asked. Over a
    `changes.Form`: the melody cut to the form, a comping track (unless `comping` is False), the
    chord symbols and time signatures (`changes.song_midi`); the roll shows the symbols."""
    from ganmusic import changes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spb = encoding.steps_per_beat
    if form is not None:
        notes = changes.in_form(notes, form, spb)
        midi = changes.song_midi(notes, form, encoding, tempo, with_comping=comping)
    else:
        midi = enc.notes_to_midi(notes, encoding, tempo=tempo)
    write_midi(midi, path)
    if png:
        from ganmusic import plots

        over = {} if form is None else dict(
            bars=np.rint(form.bars[:-1] * spb).astype(np.int64), end=form.steps(spb),
            chords=[(int(round(b * spb)), t) for b, t in zip(form.timeline.beats.tolist(), form.timeline.texts)])
        plots.piano_roll(notes, spb, path.with_suffix(".png"), title=title or path.stem,
                         primer_notes=primer_notes, **over)
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
    return tokens_for_beats(bars * BEATS_PER_BAR)


def tokens_for_beats(beats: float) -> int:
    """Tokens to generate for `beats`: room for four notes per beat (3 tokens each)."""
    return int(np.ceil(beats * NOTES_PER_BEAT_ROOM)) * 3


def over_forms(forms, steps_per_beat: int) -> tuple[int, np.ndarray]:
    """Tokens to generate for songs over `forms` (`changes.Form`s of one length) and their chord
    rows stacked, one song per form: what `sampling.sample` takes to play song k over form k."""
    return tokens_for_beats(forms[0].beats), np.stack([f.rows(steps_per_beat) for f in forms])


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


def fresh_folder(base: Path) -> Path:
    """`base`, or else `base-2`, `base-3`, ...: the first that does not exist, created here (so two
    calls never share one)."""
    base.parent.mkdir(parents=True, exist_ok=True)
    for k in itertools.count(1):
        path = base if k == 1 else base.with_name(f"{base.name}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def generate_songs(run_dir: str | Path, out_dir: str | Path | None = None, checkpoint: str = "best",
                   num: int = 8, length: int = 768, bars: int | None = None, sampling_config=None,
                   primer: str | Path | None = None, primer_in_output: bool = True, tempo: float = 120.0,
                   png: bool = True, wav: bool = False, seed: int = 0, workers: int | None = None,
                   samples_dir: str | Path | None = None, progress: bool = False, changes=None, choruses: int = 1,
                   comping: bool = True) -> dict:
    """Sample `num` songs from a run and write them to `out_dir` (default a new folder
    `SAMPLES/CHECKPOINT-sSEED[-N]/`, never one an earlier call wrote; SAMPLES is `samples_dir`, by default
    `RUN/samples`: give another for a read-only run such as the pretrained default): MIDI, piano-roll PNGs
    (unless `png` is False), WAV if asked, and `summary.json` (settings and per-song metrics), which
    is also returned, with `out_dir`. Songs are written by `song_writers` processes where there
    are many (`workers`: see there). `summary.json` is rewritten as songs are written
    (`"complete": false` until the last), so an interrupted call still says which songs it wrote.

    `changes` (a chord line, a text or MIDI file, a shipped form's name, or a `changes.Form`;
    see `changes.load_form`), played `choruses` times, makes every song an improvisation over
    them, as long as they are: the run's generator must read chords. Each MIDI file then holds
    the melody, a comping track (unless `comping` is False) and the chord symbols, and
    `summary.json` records the changes. A generator that reads chords, given no changes, plays
    over `changes.DEFAULT_FORM`: `choruses` times, or (at 1) as many choruses as last the primer
    and then `bars` or `length` tokens. Over changes a primer is the song's first beats (its own
    chord symbols are not read: give the same file as `changes` for them); without
    `primer_in_output` its notes are left out but not its beats."""
    import jax

    from ganmusic import sampling
    from ganmusic.runs import restore_params, with_calibration

    from ganmusic.configs import check_seed

    run_dir = Path(run_dir)
    sampling_config = sampling_config or sampling.SamplingConfig()
    check_seed(seed)
    for what, value, ok in (("num", num, 1 <= num <= MAX_NUM), ("length", length, 3 <= length <= MAX_LENGTH),
                            ("tempo", tempo, 10 <= tempo <= 400),
                            ("bars", bars, bars is None or 1 <= tokens_for_bars(bars) <= MAX_LENGTH)):
        if not ok:
            raise GanmusicError(f"{what} {value} is out of range (num 1-{MAX_NUM:,} songs, length 3-{MAX_LENGTH:,} "
                                f"tokens, bars 1-{MAX_LENGTH // tokens_for_bars(1):,}, tempo 10-400 BPM)")
    plan = plan_songs(run_dir, length, bars, primer, changes, choruses)
    out_dir = Path(out_dir) if out_dir is not None else None
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise GanmusicError(f"{out_dir}: exists and is not a folder; choose another output folder")
    config, raw = restore_params(run_dir, checkpoint, calibrated=False)
    params = with_calibration(run_dir, raw)
    form = plan.form
    with song_writers(num, workers) as pool:  # started now: their imports overlap the sampling
        tokens = sampling.sample(params, config.generator, config.encoding, jax.random.PRNGKey(seed), num,
                                 plan.length, sampling_config, primer=plan.primer_tokens, step_cond=plan.step_cond)
        if out_dir is None:  # created only now that there are songs to write
            out_dir = fresh_folder(Path(samples_dir or run_dir / "samples") / f"{checkpoint}-s{seed}")
        primer_notes = len(plan.primed)
        rows: list[dict] = []
        summary = {"run": str(run_dir), "checkpoint": str(checkpoint), "calibrated": params is not raw, "seed": seed,
                   "sampling": asdict(sampling_config), "num": num,
                   **({"changes": {**form.summary(), "comping": comping}} if form is not None else {}),
                   "complete": False, "samples": rows}
        out_dir.mkdir(parents=True, exist_ok=True)
        write_summary(out_dir, summary)
        last_write = time.monotonic()
        song = SongJob(config.encoding, primer_notes, primer_notes if primer_in_output else 0, plan.bars,
                       primer_in_output or primer is None, tempo, png, wav, run_dir.name, form, comping)
        jobs = ((row, out_dir / f"sample-{k:03d}.mid") for k, row in enumerate(np.asarray(tokens)))
        # Many songs (or WAVs) take a while to write: a progress bar that says early how long.
        with maybe_progress(progress and num > 1, "writing songs", num, estimate=True) as advance:
            for row in (pool.map(song, jobs, chunksize=4) if pool else map(song, jobs)):
                rows.append(row)
                if time.monotonic() - last_write > 1.0:  # at most about once a second: cheap for thousands of songs
                    write_summary(out_dir, summary)
                    last_write = time.monotonic()
                advance()
    summary["complete"] = True
    write_summary(out_dir, summary)
    return {**summary, "out_dir": str(out_dir)}


@dataclass(frozen=True)
class SongPlan:
    """What `generate_songs` samples: `length` tokens a song, over `step_cond` (a chord row per
    time step, from `form`) where there are changes, after `primer_tokens` (the `primed` notes)."""

    length: int
    bars: int | None
    form: object = None  # a `changes.Form`, repeated as many choruses as are played
    step_cond: object = None
    primer_tokens: object = None
    primed: tuple = ()


def plan_songs(run_dir: str | Path, length: int = 768, bars: int | None = None, primer: str | Path | None = None,
               changes=None, choruses: int = 1) -> SongPlan:
    """How long songs are and what they play over, from `generate_songs`'s arguments (see there);
    refuses what cannot be played. For a notebook or a benchmark that samples with
    `sampling.sample` as the command does."""
    from ganmusic import changes as changes_lib
    from ganmusic.runs import load_run_config

    run_config = load_run_config(run_dir)
    spb = run_config.encoding.steps_per_beat
    form, primer_tokens, primed, primer_steps = None, None, [], 0
    if primer is not None:  # read first: over changes it takes the first beats
        primer_tokens = enc.encode_file(primer, run_config.encoding)[:-1]  # drop EOS: the song goes on
        primed = enc.tokens_to_notes(primer_tokens, Vocab(run_config.encoding))
        if not primed:
            raise GanmusicError(f"{primer}: the primer has no usable notes")
        primer_steps = max(n.onset + n.duration for n in primed)
    if changes is None and chord_conditioned(run_config):
        changes = changes_lib.load_form(changes_lib.DEFAULT_FORM)
        if choruses == 1:
            beats = bars * BEATS_PER_BAR if bars is not None else length / tokens_for_beats(1)
            beats += primer_steps / spb
            choruses = max(1, int(np.ceil(beats / changes.beats)))
            if choruses > changes_lib.MAX_CHORUSES:
                raise GanmusicError(f"{beats:g} beats are {choruses} choruses of {changes.name}, more than "
                                    f"{changes_lib.MAX_CHORUSES}: ask for fewer bars or tokens")
        bars = None
    if changes is None and choruses != 1:
        raise GanmusicError(f"choruses {choruses}: choruses repeat changes, and none were given")
    if changes is not None:
        if bars is not None:
            raise GanmusicError("the changes set how long every song is: give no bars with them "
                                "(choruses repeat them)")
        form = changes if isinstance(changes, changes_lib.Form) else changes_lib.load_form(changes)
        form = form.repeat(choruses)
        if tokens_for_beats(form.beats) > MAX_LENGTH:
            raise GanmusicError(f"{form.beats:g} beats of changes are too long a song (at most "
                                f"{MAX_LENGTH // tokens_for_beats(1):,} beats)")
        if not chord_conditioned(run_config):
            raise GanmusicError(f"{run_dir}: its generator was trained without chords, so it cannot follow "
                                "changes; train one on a corpus with chord symbols (ganmusic train-gan "
                                "../shared/data/lead-sheets: a corpus with chords trains a chord-reading generator)")
        if primer_steps >= form.steps(spb):
            raise GanmusicError(f"{primer}: the primer lasts as long as the changes ({form.beats:g} beats) or "
                                "longer; play more choruses or give longer changes")
    if form is not None:  # every song plays over the changes and ends with them
        return SongPlan(tokens_for_beats(form.beats), None, form, form.rows(spb), primer_tokens, tuple(primed))
    return SongPlan(tokens_for_bars(bars) if bars is not None else length, bars, None, None, primer_tokens,
                    tuple(primed))


def chord_conditioned(config) -> bool:
    """Whether a run's generator reads chords (runs saved before chords existed read as not)."""
    return bool(config.generator.chords)


@dataclass(frozen=True)
class SongJob:
    """Writes one sampled row as a song (MIDI, PNG, WAV) and returns its summary row; a plain
    picklable callable, so writer processes can run it."""

    encoding: EncodingConfig
    primer_notes: int
    shown_primer: int
    bars: int | None
    keep_primer: bool
    tempo: float
    png: bool
    wav: bool
    title: str
    form: object = None  # a `changes.Form` to play over: cut to it, with comping and chord symbols
    comping: bool = True

    def __call__(self, job) -> dict:
        from ganmusic import metrics
        from ganmusic.changes import in_form

        row, path = job
        # Over changes the song keeps its timeline: a primer left out leaves its beats.
        notes = song_notes(row, _vocab(self.encoding), self.primer_notes, self.bars,
                           self.keep_primer or self.form is not None)
        if self.form is not None:
            notes = notes[0 if self.keep_primer else self.primer_notes:]
            notes = in_form(notes, self.form, self.encoding.steps_per_beat)
        path = write_song(notes, self.encoding, path, self.tempo, png=self.png, wav=self.wav,
                          title=f"{self.title} {Path(path).stem}", primer_notes=self.shown_primer, form=self.form,
                          comping=self.comping)
        out = {"file": str(path), **metrics.summary(notes, self.encoding.steps_per_beat, self.tempo)}
        if self.form is not None:  # False: the token budget (room for 4 notes a beat) ran out before the changes
            out["reached_end_of_changes"] = bool((np.asarray(row) == enc.EOS).any())
        return out


@functools.lru_cache(maxsize=4)
def _vocab(encoding: EncodingConfig) -> Vocab:
    return Vocab(encoding)


def _writer_setup() -> None:
    """Ctrl-C reaches the whole process group: the parent stops and shuts the pool down, so a
    writer ignores it rather than dying with a traceback of its own. A parent killed outright
    (SIGTERM, kill -9) shuts nothing down, and an idle writer would wait for work forever: a
    watcher ends the writer when its parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        def watch():
            multiprocessing.connection.wait([parent.sentinel])
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()


def _import_writers() -> None:
    """A writer process's first task: the imports a song needs, done while the parent samples."""
    from ganmusic import metrics, plots  # noqa: F401


@contextlib.contextmanager
def song_writers(num: int, workers: int | None = None):
    """A pool of writer processes for `num` songs, or None where one process is as fast: writing
    a song (pretty_midi's MIDI writer, the PNG) costs 10-40 ms of pure Python, so on a many-core
    machine the songs, not the sampling, would take most of the time. `workers=None`: one per
    core, up to 16, and none below 32 songs (a worker's start-up costs about a second). Spawned,
    not forked: forking a process that runs JAX's threads can deadlock."""
    if workers is None:
        workers = min(os.cpu_count() or 1, 16) if num >= 32 else 0
    workers = min(workers, num)
    if workers < 2:
        yield None
        return
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_writer_setup)
    try:
        for _ in range(workers):
            pool.submit(_import_writers)  # a failed import shows again on the real jobs
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def write_summary(out_dir: Path, summary: dict) -> None:
    """`summary.json`, replaced atomically: a reader sees the previous version or this one."""
    tmp = out_dir / f".summary.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, out_dir / "summary.json")
