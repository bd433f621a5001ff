"""`ganmusic data inspect` on the lead-sheet corpus (chords read, parsed and encoded as
conditioning) side by side with the jazz-vs-folk corpus (no chords), per note.

Each corpus is inspected twice with a fresh cache: the first run parses every file, the second
reads the cache. Both wall time and CPU time (user + system of the command and its parser
processes) are measured: CPU time is the steadier figure on a shared machine. Target: the
lead-sheet corpus no more than 1.5x slower per note than jazz-vs-folk.

    python benchmarks/inspect_bench.py [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, data_path, report  # noqa: E402

TARGET = 1.5


def inspect(path: Path, cache: str, out: str, workers: int) -> dict:
    """One `ganmusic data inspect` run: wall and CPU seconds, notes, chord coverage."""
    env = {**os.environ, "GANMUSIC_CACHE": cache}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ganmusic", "data", "inspect", str(path), "--out", out,
                           "--workers", str(workers), "--json"], capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"data inspect failed:\n{done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    notes = sum(row["notes"] for row in summary["labels"].values())
    chords = summary["chords"]["labels"]
    with_symbol = sum(r["notes_with_symbol"] for r in chords.values())
    with_chord = sum(r["notes_with_chord"] for r in chords.values())
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "files": summary["usable_files"], "notes": notes, "notes_with_symbol": with_symbol,
            "notes_with_chord": with_chord, "parsed_share": with_chord / with_symbol if with_symbol else None,
            "unparsed_symbols": len(summary["chords"]["unparsed"])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=0, help="parser processes (0: all cores)")
    args = parser.parse_args()
    old = data_path()
    lead = Path(os.environ.get("GANMUSIC_BENCH_LEAD_SHEETS", old.parent / "lead-sheets"))
    if not lead.exists():
        sys.exit(f"lead-sheet corpus not found at {lead}: set GANMUSIC_BENCH_LEAD_SHEETS")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in (("jazz-vs-folk", old), ("lead-sheets", lead)):
            cache, out = f"{tmp}/{name}-cache", f"{tmp}/{name}-out"
            results[name] = {"first": inspect(path, cache, out, args.workers),
                             "cached": inspect(path, cache, out, args.workers)}
    rows, ratios = [], {}
    for phase in ("first", "cached"):
        old_r, new_r = results["jazz-vs-folk"][phase], results["lead-sheets"][phase]
        for clock in ("cpu_s", "wall_s"):
            per_old = old_r[clock] / old_r["notes"] * 1e6
            per_new = new_r[clock] / new_r["notes"] * 1e6
            ratios[f"{phase}_{clock}"] = per_new / per_old
            rows.append((f"{phase}, {clock[:-2]} time", f"{old_r[clock]:.1f} s ({per_old:.0f} us/note)",
                         f"{new_r[clock]:.1f} s ({per_new:.0f} us/note)", f"{per_new / per_old:.2f}x",
                         f"<= {TARGET}x" if clock == "cpu_s" else ""))
    lr = results["lead-sheets"]["first"]
    rows.append(("files / notes", f"{results['jazz-vs-folk']['first']['files']} / {results['jazz-vs-folk']['first']['notes']:,}",
                 f"{lr['files']} / {lr['notes']:,}", "", ""))
    rows.append(("notes under a chord symbol: parsed", "-",
                 f"{lr['notes_with_chord']:,} / {lr['notes_with_symbol']:,} ({lr['parsed_share']:.2%})", "", ">= 99%"))
    rows.append(("unparsed distinct symbols", "-", str(lr["unparsed_symbols"]), "", ""))
    report("inspect_bench", "ganmusic data inspect, per note: lead sheets (chords) vs jazz-vs-folk", rows,
           {"workers": args.workers, "results": results, "ratios_per_note": ratios, "target": TARGET},
           columns=("measure", "jazz-vs-folk", "lead-sheets", "ratio per note", "target"))
    ok = max(ratios["first_cpu_s"], ratios["cached_cpu_s"]) <= TARGET and (lr["parsed_share"] or 0) >= 0.99
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
