"""A small labelled corpus the project makes itself, for `ganmusic demo` and first runs: no
download, the same files for the same seed.

SYNTHETIC, and only a first run: "jazz" here is bebop-flavoured lines over ii-V-I progressions
(swung eighths, chord tones on the beat, chromatic approach notes, triplets, leaps, rests);
"not_jazz" is diatonic folk-style tunes (straight eighths and quarters, stepwise motion, phrases
that end on the tonic). The two differ in ways a model can learn in minutes; real style needs
real data (see datasets/README.md).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ganmusic.encoding import beats_to_midi
from ganmusic.midi_writer import write_midi

MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
# ii7, V7, Imaj7 as (root degree offset in semitones from the key, chord tones from the root)
II_V_I = [(2, (0, 3, 7, 10)), (7, (0, 4, 7, 10)), (0, (0, 4, 7, 11))]
LOW, HIGH = 55, 84


def _nearest(pitch: int, pitch_classes, rng, spread: int = 0) -> int:
    """The pitch in `pitch_classes` closest to `pitch` (ties and `spread` randomised), in range."""
    candidates = [p for p in range(LOW, HIGH + 1) if p % 12 in pitch_classes]
    dist = np.abs(np.array(candidates) - pitch) + rng.random(len(candidates)) * (1 + spread)
    return int(candidates[int(np.argmin(dist))])


def jazz_line(rng: np.random.Generator) -> tuple[list[tuple[float, float, int]], float]:
    """(start beat, duration in beats, pitch) notes of a bebop-style line, and a tempo."""
    key = int(rng.integers(0, 12))
    bars = int(rng.integers(8, 17))
    notes, pitch, beat = [], int(rng.integers(62, 76)), 0.0
    for bar in range(bars):
        root, chord = II_V_I[(bar // 2) % 3]  # two bars each of ii, V, I
        tones = {(key + root + c) % 12 for c in chord}
        scale = {(key + root + d) % 12 for d in MAJOR} | tones
        end = (bar + 1) * 4.0
        while beat < end - 1e-9:
            r = rng.random()
            if r < 0.08:  # a rest of one swung eighth or a beat
                beat += 2 / 3 if rng.random() < 0.5 else 1.0
                continue
            if r < 0.18 and end - beat >= 1:  # an eighth-note triplet
                for k in range(3):
                    pitch = _nearest(pitch + int(rng.choice([-2, -1, 1, 2])), scale, rng)
                    notes.append((beat + k / 3, 0.3, pitch))
                beat += 1.0
                continue
            on_beat = abs(beat - round(beat)) < 1e-9
            if on_beat:  # chord tone on the beat, sometimes after a leap
                leap = int(rng.choice([-7, -5, -4, -3, 3, 4, 5, 8])) if rng.random() < 0.3 else int(rng.choice([-2, -1, 1, 2]))
                target = _nearest(pitch + leap, tones, rng)
                dur = 2 / 3
            else:  # off-beat: a chromatic approach to the next chord tone or a scale step
                nxt = _nearest(pitch + int(rng.choice([-3, 3])), tones, rng)
                target = nxt + (1 if rng.random() < 0.5 else -1) if rng.random() < 0.5 else _nearest(pitch + int(rng.choice([-2, -1, 1, 2])), scale, rng)
                target = int(np.clip(target, LOW, HIGH))
                dur = 1 / 3
            pitch = target
            notes.append((beat, dur * float(rng.uniform(0.75, 0.95)), pitch))
            beat += dur
    return notes, float(rng.integers(140, 260))


def folk_tune(rng: np.random.Generator) -> tuple[list[tuple[float, float, int]], float]:
    """A diatonic tune in straight eighths and quarters, 4-bar phrases ending on the tonic."""
    key = int(rng.integers(0, 12))
    beats_per_bar = int(rng.choice([3, 4]))
    scale = {(key + d) % 12 for d in MAJOR}
    tonic = {key % 12}
    phrases = int(rng.integers(2, 5))
    notes, pitch, beat = [], _nearest(int(rng.integers(64, 74)), tonic, rng), 0.0
    for phrase in range(phrases):
        end = (phrase + 1) * 4 * beats_per_bar
        while beat < end - 1e-9:
            left = end - beat
            if left <= 2:  # cadence: the tonic, held to the end of the phrase
                pitch = _nearest(pitch, tonic, rng)
                notes.append((beat, left, pitch))
                beat = end
                break
            dur = 0.5 if rng.random() < 0.7 else 1.0
            step = int(rng.choice([-2, -1, -1, 1, 1, 2, 0, 3, -3, 4]))
            pitch = _nearest(pitch + step, scale, rng)
            notes.append((beat, dur, pitch))
            beat += dur
    return notes, float(rng.choice([100, 110, 120, 132]))


def build_demo_corpus(out: str | Path, files_per_class: int = 200, seed: int = 0) -> Path:
    """Write `out/jazz/*.mid`, `out/not_jazz/*.mid` and `out/manifest.csv` (path, label, group:
    ten files per made-up composer, so splits hold composers out). Deterministic in `seed`."""
    out = Path(out)
    rows = []
    for label, make in (("jazz", jazz_line), ("not_jazz", folk_tune)):
        (out / label).mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([seed, 0 if label == "jazz" else 1])
        for k in range(files_per_class):
            notes, tempo = make(rng)
            path = f"{label}/{label}-{k:04d}.mid"
            write_midi(beats_to_midi(notes, tempo), out / path)
            rows.append({"path": path, "label": label, "group": f"{label}-composer-{k // 10:02d}"})
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "group"])
        writer.writeheader()
        writer.writerows(rows)
    (out / "README.md").write_text(
        "# ganmusic demo corpus (synthetic)\n\nMade by `ganmusic demo` (ganmusic/democorpus.py, seed "
        f"{seed}): {files_per_class} bebop-style lines over ii-V-I progressions (jazz/) and {files_per_class} "
        "diatonic folk-style tunes (not_jazz/). Synthetic and simple: good for a first run, not for learning "
        "real style.\n")
    return out
