"""How a solo's pace and register run from its start: notes a beat in each stretch of 48 beats,
and how far each stretch's mean pitch lies from the first stretch's, for the real solos of a
lead-sheet corpus (grouped by their length) and for runs that play whole solos over its test
changes from the first bar.

    python scripts/solo_arc.py [RUN ...] [--data ../shared/data/lead-sheets] [--beats 288]
                               [--num 64] [--seeds 0 1] [--out arc.json]

Real solos pace themselves by their length: short ones are dense from the start, long ones begin
sparse and build. A generator that thins out over a long song shows here, where the two-sample
test on 128-note chunks cannot see it; so does one whose songs start in more scattered registers
than the solos (the spread, across songs, of the first stretch's mean pitch) and move back
towards the middle. Prints two tables and saves JSON; 15 s for the pretrained
generator, calibrated and raw, on a 2-core CPU. A run's folder name ending in `:raw` plays
without its calibration.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
STRETCH_BEATS = 48
LENGTH_GROUPS = ((0, 96), (96, 192), (192, 288), (288, None))  # real solos by beats from first to last onset


def stretch_of(onsets, steps_per_beat: int, origin: int | None = None) -> np.ndarray:
    """Which stretch of `STRETCH_BEATS` beats from `origin` (grid steps; None: the first onset)
    each onset falls in."""
    onsets = np.asarray(onsets, np.int64)
    start = (onsets.min() if len(onsets) else 0) if origin is None else origin
    return (onsets - start) // (STRETCH_BEATS * steps_per_beat)


def arc(onsets, steps_per_beat: int, stretches: int, origin: int | None = None) -> np.ndarray:
    """Notes a beat in each of the first `stretches` stretches (`stretch_of`)."""
    k = stretch_of(onsets, steps_per_beat, origin)
    return np.bincount(k[(k >= 0) & (k < stretches)], minlength=stretches) / STRETCH_BEATS


def registers(onsets, pitches, steps_per_beat: int, stretches: int, origin: int | None = None) -> np.ndarray:
    """The mean pitch of each of the first `stretches` stretches (NaN: no note in it)."""
    k = stretch_of(onsets, steps_per_beat, origin)
    inside = (k >= 0) & (k < stretches)
    count = np.bincount(k[inside], minlength=stretches)
    total = np.bincount(k[inside], weights=np.asarray(pitches, np.float64)[inside], minlength=stretches)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def played(notes, steps_per_beat: int, beats: float, stretches: int, origin: int | None = None) -> tuple:
    """One solo or song as `summary` takes it: (beats it lasts, `arc`, `registers`)."""
    onsets, pitches = [n.onset for n in notes], [n.pitch for n in notes]
    return (beats, arc(onsets, steps_per_beat, stretches, origin),
            registers(onsets, pitches, steps_per_beat, stretches, origin))


def summary(solos, most: int) -> dict:
    """Of (beats lasted, arc, registers) per solo: each stretch's notes a beat and its mean pitch's
    distance from the first stretch's (semitones), averaged over the solos that last through it
    (up to `most` stretches), and the spread (sd) of the first stretch's mean pitch."""
    pace, moved = [], []
    for k in range(most):
        through = [(a[k], abs(r[k] - r[0])) for beats, a, r in solos if beats >= (k + 1) * STRETCH_BEATS]
        if not through:
            break
        pace.append(float(np.mean([a for a, _ in through])))
        distances = [m for _, m in through if not np.isnan(m)]  # NaN: a stretch without notes
        moved.append(float(np.mean(distances)) if distances else None)
    starts = [r[0] for _, _, r in solos if not np.isnan(r[0])]
    return {"count": len(solos), "arc": pace, "register_moved": moved,
            "register_spread": float(np.std(starts)) if starts else None}


def real_arcs(sequences, vocab, groups=LENGTH_GROUPS, most: int = 6) -> list[dict]:
    """Per length group of the solos, its `summary`."""
    from ganmusic import encoding as enc

    spb, solos = vocab.config.steps_per_beat, []
    for notes in (enc.tokens_to_notes(s, vocab) for s in sequences):
        if notes:
            solos.append(played(notes, spb, (notes[-1].onset - notes[0].onset) / spb, most))
    return [{"solos": f"{low}-{high} beats" if high else f"{low}+ beats",
             **summary([x for x in solos if low <= x[0] < (high or np.inf)], most)} for low, high in groups]


def run_arc(run: str, forms, num: int, seeds) -> dict:
    """Each stretch's notes a beat over `num` songs a seed sampled over `forms`, from the form's
    start (a song that waits before its first note is sparse there)."""
    import jax

    from ganmusic import encoding as enc, runs, sampling, songs

    raw = run.endswith(":raw")
    config, params = runs.restore_params(run.removesuffix(":raw"), "best", calibrated=not raw)
    vocab, spb = enc.Vocab(config.encoding), config.encoding.steps_per_beat
    stretches = int(forms[0].beats // STRETCH_BEATS)
    length, cond = songs.over_forms(forms, spb)
    cond = cond if config.generator.chords else None
    songs_played = []
    for seed in seeds:
        tokens = sampling.sample(params, config.generator, config.encoding, jax.random.PRNGKey(seed), num, length,
                                 step_cond=cond)
        songs_played += [played(enc.tokens_to_notes(t, vocab), spb, forms[0].beats, stretches, origin=0) for t in tokens]
    return {"solos": Path(run.removesuffix(":raw")).name + ":raw" * raw, **summary(songs_played, stretches)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "lead-sheets")
    parser.add_argument("--beats", type=int, default=288, help="length of the runs' songs")
    parser.add_argument("--num", type=int, default=64, help="songs per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", type=Path, default=Path("solo_arc.json"))
    args = parser.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    from ganmusic import changes, data
    from ganmusic.configs import EncodingConfig

    corpus = data.load_corpus(args.data, EncodingConfig(), positive="jazz", progress=False)
    rows = []
    for split in ("train", "test"):
        for row in real_arcs([corpus.sequence(i) for i in corpus.indices(split, positive=True)], corpus.vocab):
            rows.append({**row, "solos": f"real {split}, {row['solos']}"})
    forms = changes.corpus_forms(corpus, "test", args.beats, args.num)
    rows += [run_arc(run, forms, args.num, args.seeds) for run in args.runs]
    stretches = max(len(row["arc"]) for row in rows)
    spans = [f"{k * STRETCH_BEATS}-{(k + 1) * STRETCH_BEATS}" for k in range(stretches)]
    pace = Table(title=f"notes a beat per {STRETCH_BEATS} beats from the start of a solo")
    register = Table(title=f"semitones each {STRETCH_BEATS} beats' mean pitch lies from the first {STRETCH_BEATS}'s "
                           "(spread: the sd of the first's across solos)")
    for table, extra in ((pace, []), (register, ["spread"])):
        for name in ("solos", "count", *extra, *spans[len(extra):]):
            table.add_column(name, justify="left" if name == "solos" else "right", no_wrap=True)
    for row in rows:
        pace.add_row(row["solos"], str(row["count"]), *(f"{v:.2f}" for v in row["arc"]))
        register.add_row(row["solos"], str(row["count"]), *(f"{v:.1f}" if v is not None else "-"
                                                            for v in [row["register_spread"], *row["register_moved"][1:]]))
    console = Console(width=max(Console().width, 48 + 10 * stretches))
    console.print(pace)
    console.print(register)
    args.out.write_text(json.dumps({"stretch_beats": STRETCH_BEATS, "beats": args.beats, "rows": rows}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    from ganmusic.errors import GanmusicError

    try:
        raise SystemExit(main())
    except GanmusicError as e:  # a missing corpus or run: one line, no traceback
        raise SystemExit(f"error: {e}")
