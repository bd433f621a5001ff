"""MIDI <-> token sequences.

Time is measured in beats (quarter notes) from the file's tempo map and quantized to a grid of
`steps_per_beat` steps. A note is three tokens, `SHIFT` (grid steps since the previous onset; 0
stacks a chord, higher notes first), `PITCH` and `DUR`. A sequence is `BOS, notes..., EOS`, then
`PAD`. Seconds, tempo, velocity and instrument never reach the tokens: they are shortcuts, not
style.

The token types follow a fixed cycle, so a mask over the vocabulary tells which tokens are legal
next (`Grammar`); sampling applies it and every sequence, cut at any length, decodes to MIDI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from ganmusic.configs import EncodingConfig
from ganmusic.corpusfiles import MAX_FILE_BYTES, read_file_bytes  # noqa: F401
from ganmusic.errors import GanmusicError

PAD, BOS, EOS = 0, 1, 2
SPECIAL_TOKENS = ("PAD", "BOS", "EOS")

# Token types, used by the grammar.
T_PAD, T_BOS, T_EOS, T_SHIFT, T_PITCH, T_DUR = range(6)
TYPE_NAMES = ("PAD", "BOS", "EOS", "SHIFT", "PITCH", "DUR")


class MidiError(GanmusicError):
    """A MIDI file that cannot be used, with a one-line reason."""


class Note(NamedTuple):
    """A note on the grid: onset and duration in grid steps."""

    onset: int
    pitch: int
    duration: int


class Vocab:
    """Token ids for an `EncodingConfig`: PAD, BOS, EOS, then SHIFT, PITCH and DUR blocks."""

    def __init__(self, config: EncodingConfig):
        self.config = config
        spb = config.steps_per_beat
        fine = np.arange(0, config.fine_beats * spb + 1)
        self.shift_values = np.concatenate([fine, np.array(config.coarse_shift_beats) * spb])
        self.dur_values = np.concatenate([fine[1:], np.array(config.coarse_dur_beats) * spb])
        self.pitches = np.arange(config.pitch_min, config.pitch_max + 1)
        self.shift_start = len(SPECIAL_TOKENS)
        self.pitch_start = self.shift_start + len(self.shift_values)
        self.dur_start = self.pitch_start + len(self.pitches)
        self.size = self.dur_start + len(self.dur_values)

        types = np.full(self.size, T_DUR, dtype=np.int32)
        types[:3] = (T_PAD, T_BOS, T_EOS)
        types[self.shift_start : self.pitch_start] = T_SHIFT
        types[self.pitch_start : self.dur_start] = T_PITCH
        self.token_type = types
        # Per-token value: steps for SHIFT/DUR, MIDI pitch for PITCH, -1 for specials.
        value = np.full(self.size, -1, dtype=np.int32)
        value[self.shift_start : self.pitch_start] = self.shift_values
        value[self.pitch_start : self.dur_start] = self.pitches
        value[self.dur_start :] = self.dur_values
        self.token_value = value

    def shift_token(self, steps: int) -> int:
        """The largest representable shift <= steps (so later notes keep their grid position)."""
        i = int(np.searchsorted(self.shift_values, steps, side="right")) - 1
        return self.shift_start + max(i, 0)

    def dur_token(self, steps: int) -> int:
        """The nearest representable duration (ties to the shorter one)."""
        i = int(np.argmin(np.abs(self.dur_values - steps)))
        return self.dur_start + i

    def pitch_token(self, pitch: int) -> int:
        return self.pitch_start + pitch - self.config.pitch_min

    def name(self, token: int) -> str:
        t = int(self.token_type[token])
        if t in (T_PAD, T_BOS, T_EOS):
            return TYPE_NAMES[t]
        return f"{TYPE_NAMES[t]}_{int(self.token_value[token])}"

    def describe(self, tokens: Iterable[int]) -> str:
        return " ".join(self.name(int(t)) for t in tokens)


# ---------------------------------------------------------------------------------------------
# Grammar: which token may follow. State = (previous token, previous pitch or -1).
# ---------------------------------------------------------------------------------------------


class Grammar:
    """The token grammar as arrays, usable from numpy or inside jitted JAX code.

    `BOS -> SHIFT|EOS`, `SHIFT -> PITCH`, `PITCH -> DUR`, `DUR -> SHIFT|EOS`, `EOS -> PAD`,
    `PAD -> PAD`. After `SHIFT 0` (a chord), the pitch must be lower than the previous one, and
    `SHIFT 0` is not offered when no lower pitch exists, so every state has a legal next token.
    With `xp=jax.numpy` the methods trace under `jit` and `lax.scan`.
    """

    def __init__(self, vocab: Vocab):
        self.vocab = vocab
        follow = np.zeros((len(TYPE_NAMES), vocab.size), dtype=bool)
        types = vocab.token_type
        follow[T_PAD] = types == T_PAD
        follow[T_BOS] = (types == T_SHIFT) | (types == T_EOS)
        follow[T_EOS] = types == T_PAD
        follow[T_SHIFT] = types == T_PITCH
        follow[T_PITCH] = types == T_DUR
        follow[T_DUR] = (types == T_SHIFT) | (types == T_EOS)
        self.follow = follow
        self.token_type = types
        self.is_pitch = types == T_PITCH
        self.pitch_of_token = np.where(self.is_pitch, vocab.token_value, -1).astype(np.int32)
        self.zero_shift = vocab.shift_start  # id of SHIFT 0
        self.pitch_min = vocab.config.pitch_min

    def initial_state(self, batch_shape=(), xp=np):
        """State right after BOS: a SHIFT (or EOS) comes next. Windows start here too."""
        return (xp.full(batch_shape, BOS, dtype=xp.int32), xp.full(batch_shape, -1, dtype=xp.int32))

    def state_after(self, tokens: Sequence[int]):
        """Grammar state after a prefix (BOS or a window start), computed in numpy."""
        state = self.initial_state()
        for t in tokens:
            state = self.step(state, int(t))
        return state

    def step(self, state, token, xp=np):
        _, pitch = state
        token = xp.asarray(token, dtype=xp.int32)
        token_pitch = xp.asarray(self.pitch_of_token)[token]
        return token, xp.where(token_pitch >= 0, token_pitch, pitch).astype(xp.int32)

    def mask(self, state, xp=np):
        """Boolean [..., V]: legal next tokens in this state."""
        prev, pitch = state
        follow = xp.asarray(self.follow)
        allowed = follow[xp.asarray(self.token_type)[prev]]
        pitch_of_token = xp.asarray(self.pitch_of_token)[None, :]
        pitch = xp.asarray(pitch)[..., None]
        prev = xp.asarray(prev)[..., None]
        # Inside a chord, pitches strictly descend.
        in_chord = (prev == self.zero_shift) & (pitch >= 0)
        allowed = allowed & ~(in_chord & (pitch_of_token >= pitch) & xp.asarray(self.is_pitch))
        # No chord can start on the lowest pitch.
        at_bottom = (xp.asarray(self.token_type)[prev] == T_DUR) & (pitch <= self.pitch_min)
        zero = xp.arange(self.vocab.size)[None, :] == self.zero_shift
        allowed = allowed & ~(at_bottom & zero)
        return allowed.reshape(tuple(np.shape(state[0])) + (self.vocab.size,))

    def is_grammatical(self, tokens: Sequence[int], start_with_bos: bool = True) -> bool:
        state = self.initial_state()
        if start_with_bos:
            if len(tokens) == 0 or int(tokens[0]) != BOS:
                return False
            tokens = tokens[1:]
        for t in tokens:
            if not self.mask(state)[int(t)]:
                return False
            state = self.step(state, int(t))
        return True


# ---------------------------------------------------------------------------------------------
# Notes <-> tokens
# ---------------------------------------------------------------------------------------------


def canonical_notes(notes: Iterable[Note], melody: bool = False) -> list[Note]:
    """Sort by onset then pitch (high first); one note per (onset, pitch), the longest.

    With `melody`, only the highest note at each onset is kept (the skyline).
    """
    best: dict[tuple[int, int], int] = {}
    for n in notes:
        key = (int(n.onset), int(n.pitch))
        best[key] = max(best.get(key, 0), int(n.duration))
    ordered = sorted(best.items(), key=lambda kv: (kv[0][0], -kv[0][1]))
    out = [Note(onset, pitch, dur) for (onset, pitch), dur in ordered]
    if melody:
        out = [n for i, n in enumerate(out) if i == 0 or out[i - 1].onset != n.onset]
    return out


def notes_to_tokens(notes: Iterable[Note], vocab: Vocab) -> np.ndarray:
    """Grid notes -> `BOS, (SHIFT, PITCH, DUR)*, EOS` as int32.

    Notes must already be in range; the first shift counts from step 0. Long rests are cut to the
    largest shift bucket that fits, measured from the decoded position, so later notes stay on
    their grid positions.
    """
    out = [BOS]
    position = 0
    cfg = vocab.config
    for n in canonical_notes(notes, cfg.melody):
        if not cfg.pitch_min <= n.pitch <= cfg.pitch_max:
            raise ValueError(f"pitch {n.pitch} outside {cfg.pitch_min}..{cfg.pitch_max}")
        shift = vocab.shift_token(n.onset - position)
        position += int(vocab.token_value[shift])
        out += [shift, vocab.pitch_token(n.pitch), vocab.dur_token(n.duration)]
    out.append(EOS)
    return np.asarray(out, dtype=np.int32)


def tokens_to_notes(tokens: Sequence[int], vocab: Vocab) -> list[Note]:
    """Tokens -> grid notes. Forgiving: specials are skipped, an unfinished note is dropped,
    and decoding stops at EOS, so any cut of any sequence decodes."""
    notes: list[Note] = []
    position = 0
    pending_pitch = None
    expecting_pitch = False
    types, values = vocab.token_type, vocab.token_value
    for t in np.asarray(tokens, dtype=np.int64):
        kind = types[t]
        if kind == T_EOS:
            break
        if kind == T_SHIFT:
            position += int(values[t])
            expecting_pitch, pending_pitch = True, None
        elif kind == T_PITCH and expecting_pitch:
            pending_pitch, expecting_pitch = int(values[t]), False
        elif kind == T_DUR and pending_pitch is not None:
            notes.append(Note(position, pending_pitch, int(values[t])))
            pending_pitch = None
    return notes


# ---------------------------------------------------------------------------------------------
# MIDI <-> notes
# ---------------------------------------------------------------------------------------------


# The name of the accompaniment track of ganmusic's songs over changes (`changes.song_midi`).
COMPING_TRACK = "comping"


@dataclass
class EncodeStats:
    notes_in: int = 0  # non-drum notes in the file
    dropped_out_of_range: int = 0
    merged: int = 0  # notes merged onto another at the same grid onset and pitch (or skyline)
    drum_notes: int = 0
    origin_beats: float = 0.0  # where grid step 0 lies in the file, in beats


def midi_seconds_to_beats(midi, times: np.ndarray) -> np.ndarray:
    """Map seconds to beats (quarter notes) through the file's tempo map."""
    change_times, tempi = midi.get_tempo_changes()
    if len(change_times) == 0:
        change_times, tempi = np.array([0.0]), np.array([120.0])
    beats_per_second = np.asarray(tempi, dtype=np.float64) / 60.0
    seg_beats = np.diff(change_times) * beats_per_second[:-1]
    beats_at_change = np.concatenate([[0.0], np.cumsum(seg_beats)])
    idx = np.clip(np.searchsorted(change_times, times, side="right") - 1, 0, None)
    return beats_at_change[idx] + (times - change_times[idx]) * beats_per_second[idx]


def midi_to_notes(midi, config: EncodingConfig, stats: EncodeStats | None = None) -> list[Note]:
    """All non-drum notes of a `pretty_midi.PrettyMIDI`, quantized to the grid, but for a track
    named `COMPING_TRACK`: the chords ganmusic writes under its songs over changes, read back
    (scored, evaluated, trained on) as the line the generator played, without them.

    The origin is the start of the beat holding the first onset, so leading silence (a shortcut,
    not style) is dropped but the first note keeps its position within the beat.
    """
    stats = stats if stats is not None else EncodeStats()
    starts, ends, pitches = [], [], []
    for inst in midi.instruments:
        if inst.is_drum:
            stats.drum_notes += len(inst.notes)
            continue
        if inst.name == COMPING_TRACK:
            continue
        for n in inst.notes:
            starts.append(n.start)
            ends.append(n.end)
            pitches.append(n.pitch)
    stats.notes_in = len(pitches)
    if not pitches:
        return []
    pitches = np.asarray(pitches)
    in_range = (pitches >= config.pitch_min) & (pitches <= config.pitch_max)
    stats.dropped_out_of_range = int((~in_range).sum())
    spb = config.steps_per_beat
    start_beats = midi_seconds_to_beats(midi, np.asarray(starts, dtype=np.float64)[in_range])
    end_beats = midi_seconds_to_beats(midi, np.asarray(ends, dtype=np.float64)[in_range])
    if len(start_beats) == 0:
        return []
    origin = np.floor(start_beats.min() + 1e-9)
    stats.origin_beats = float(origin)
    onsets = np.rint((start_beats - origin) * spb).astype(np.int64)
    durations = np.maximum(np.rint((end_beats - start_beats) * spb).astype(np.int64), 1)
    notes = [Note(int(o), int(p), int(d)) for o, p, d in zip(onsets, pitches[in_range], durations)]
    out = canonical_notes(notes, config.melody)
    stats.merged = len(notes) - len(out)
    return out


def beats_to_midi(notes: Iterable[tuple[float, float, int]], tempo: float = 120.0, program: int = 0,
                  velocity: int = 90, drum: bool = False, name: str = ""):
    """(start beat, duration in beats, pitch) notes -> a one-track `pretty_midi.PrettyMIDI` at a
    fixed tempo: the one MIDI writer (samples, the demo corpus, imported solos, test files)."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=float(tempo))
    inst = pretty_midi.Instrument(program=program, is_drum=drum, name=name)
    seconds_per_beat = 60.0 / float(tempo)
    for start, duration, pitch in notes:
        inst.notes.append(pretty_midi.Note(velocity=velocity, pitch=int(pitch), start=start * seconds_per_beat,
                                           end=(start + duration) * seconds_per_beat))
    midi.instruments.append(inst)
    return midi


def notes_to_midi(notes: Sequence[Note], config: EncodingConfig, tempo: float = 120.0,
                  program: int = 0, velocity: int = 90):
    """Grid notes -> a one-track `pretty_midi.PrettyMIDI` at a fixed tempo."""
    notes = sorted(notes, key=lambda n: (n.onset, -n.pitch))
    next_onset: dict[int, int] = {}  # MIDI cannot overlap two notes of one pitch: cut the first
    ends = []
    for n in reversed(notes):
        ends.append(min(n.onset + n.duration, next_onset.get(n.pitch, 1 << 62)))
        next_onset[n.pitch] = n.onset
    spb = config.steps_per_beat
    return beats_to_midi([(n.onset / spb, (end - n.onset) / spb, n.pitch) for n, end in zip(notes, reversed(ends))
                          if end > n.onset], tempo, program=program, velocity=velocity, name="ganmusic")


def midi_from_bytes(data: bytes):
    """A `pretty_midi.PrettyMIDI` from file bytes, parsed once by mido; marker events, which
    pretty_midi does not keep, are added as `midi.markers` (`pretty_midi.Text`, like
    `text_events`) for the chord reader. Raises whatever mido raises on bad bytes. pretty_midi's
    warnings about odd files (type 2, tempo events on other tracks) stay off the terminal."""
    import io
    import warnings

    import mido
    import pretty_midi

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _midi_from_bytes(io.BytesIO(data), mido, pretty_midi)


def _midi_from_bytes(stream, mido, pretty_midi):
    mido_file = mido.MidiFile(file=stream, charset="latin1")
    marker_ticks = []  # read before pretty_midi, which turns delta times into absolute ones
    for track in mido_file.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "marker":
                marker_ticks.append((tick, msg.text))
    midi = pretty_midi.PrettyMIDI(mido_object=mido_file)
    midi.markers = sorted((pretty_midi.Text(text, midi.tick_to_time(tick)) for tick, text in marker_ticks),
                          key=lambda m: m.time)
    return midi


def load_midi(path) -> "object":
    """Parse a MIDI file (markers kept, see `midi_from_bytes`); any failure becomes a
    `MidiError` naming the file, with a one-line reason. Devices, FIFOs and oversized files
    are refused by their metadata, never opened."""
    data, problem = read_file_bytes(path)
    if data is None:
        raise MidiError(f"{path}: {problem}")
    if not data:
        raise MidiError(f"{path}: empty file")
    try:
        return midi_from_bytes(data)
    except Exception as exc:  # mido/pretty_midi raise many kinds of errors on bad bytes
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MidiError(f"{path}: not a readable MIDI file ({msg[:120]})") from None


def encode_midi(midi, config: EncodingConfig, stats: EncodeStats | None = None) -> np.ndarray:
    return notes_to_tokens(midi_to_notes(midi, config, stats), Vocab(config))


def encode_file(path, config: EncodingConfig, stats: EncodeStats | None = None) -> np.ndarray:
    midi = load_midi(path)
    try:
        return encode_midi(midi, config, stats)
    except Exception as exc:  # a broken tempo map and similar
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MidiError(f"{path}: cannot read notes ({msg[:120]})") from None


def decode_to_midi(tokens: Sequence[int], config: EncodingConfig, tempo: float = 120.0, chords=None, **kw):
    """Tokens -> MIDI; `chords` (a `chords.ChordTimeline`, beats from the first note's beat, as
    `chords.encode_lead_sheet` gives it) is written as text events, so chords round-trip."""
    midi = notes_to_midi(tokens_to_notes(tokens, Vocab(config)), config, tempo=tempo, **kw)
    if chords is not None:
        chords.write(midi, tempo)
    return midi

