"""`ganmusic sample --num 256 --length 768` end to end against the generation alone.

Three fresh processes, on JAX's default device, one after the other (their order rotates each
round so that other load on a shared machine falls on all alike):

- **end to end**: `ganmusic sample RUN --num 256 --length 768 --out DIR` (the installed command, as
  a user runs it; `python -m ganmusic` where none is installed), from process start to the last
  file it writes (imports, restore, compile, sampling, every MIDI and PNG, summary.json: the
  issue's measure), and to its exit (the interpreter's teardown after that: about 0.4 s with JAX
  loaded, the time before the shell prompt returns);
- **end to end, --no-png**: the same without piano rolls;
- **generation alone**: a process that restores the same checkpoint and calls
  `sampling.sample` for the same 256 x 768 tokens (over the same changes, `songs.plan_songs`, for a
  run that reads chords: the command then plays as many choruses of the default form as 768
  tokens last); the time of that call, compile included, as
  the command pays it (its warm time, a second call, is reported beside it).

A fourth process runs the end-to-end command again with its phases timed (the command's own code,
with `runs.restore_params` and `sampling.sample` wrapped in timestamps), so the table says where the
time beyond the generation goes: imports before the restore, the restore, the sampling, the writing
after it (and the writers' shutdown), and Python's start-up and exit.

Each process compiles its programs (the command's compilation cache is off), except, where JAX
has a GPU or TPU plugin (the command keeps compiled programs only there), one more end-to-end
call, timed after an earlier call filled the cache: what a second `ganmusic sample` of the same
run and sizes costs.

The headline is end to end (to the last file, and to exit) / generation alone; target <= 2x. The run is RUN (`--run`), or else
a fresh one trained for a few MLE steps with the default generator (2x256 LSTM) on the shared
jazz-vs-folk data: the timing needs a real checkpoint of the default size, not a good one.

    python benchmarks/songs_bench.py [--run runs/NAME] [--rounds 2] [--num 256] [--length 768]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, data_path, report  # noqa: E402

from ganmusic.cli_common import accelerator_plugin_installed  # noqa: E402

TRAIN_STEPS = 20

GENERATE = r"""
import json, sys, time
t0 = time.perf_counter()
import jax
from ganmusic import sampling, songs
from ganmusic.runs import restore_params
run, num, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config, params = restore_params(run, "best")
plan = songs.plan_songs(run, length)  # a chord-reading run plays over the default changes, as in the command
t1 = time.perf_counter()
times = []
for seed in (0, 1):
    t = time.perf_counter()
    tokens = sampling.sample(params, config.generator, config.encoding, jax.random.PRNGKey(seed), num, plan.length,
                             sampling.SamplingConfig(), step_cond=plan.step_cond)
    jax.block_until_ready(tokens)
    times.append(time.perf_counter() - t)
print(json.dumps({"imports_and_restore": t1 - t0, "generation": times[0], "generation_warm": times[1],
                  "device": str(jax.devices()[0])}))
"""

PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
marks = {}
from ganmusic import cli_common
cli_common.allocate_on_demand()  # as the command does before it imports JAX (imported next, to time it)
from ganmusic import cli, runs, sampling


def stamped(module, name):
    inner = getattr(module, name)

    def wrapper(*args, **kwargs):
        marks.setdefault(name + "_start", time.perf_counter() - t0)
        out = inner(*args, **kwargs)
        marks[name + "_done"] = time.perf_counter() - t0
        return out
    setattr(module, name, wrapper)


stamped(runs, "restore_params")
stamped(sampling, "sample")
sys.argv = ["ganmusic"] + sys.argv[1:]
try:
    cli.app()
except SystemExit as stop:
    assert not stop.code, stop.code
marks["command_done"] = time.perf_counter() - t0
print(json.dumps(marks))
"""


def phases(command: list[str]) -> dict:
    """The end-to-end command with its phases timed (PHASES), as seconds per phase."""
    wall, out = timed([sys.executable, "-c", PHASES] + command)
    m = json.loads(out.stdout.splitlines()[-1])
    return {"imports and checks": m["restore_params_start"],
            "restore": m["restore_params_done"] - m["restore_params_start"],
            "restore to sampling (writers start)": m["sample_start"] - m["restore_params_done"],
            "sampling (compile included)": m["sample_done"] - m["sample_start"],
            "writing after sampling": m["command_done"] - m["sample_done"],
            "Python start-up and exit": wall - m["command_done"], "end to end": wall}


# Every process compiles its programs, as in a first call: the command's compilation cache
# (`ganmusic` keeps compiled programs for the next call) is off, except where a row says so.
NO_COMPILE_CACHE = {**os.environ, "JAX_ENABLE_COMPILATION_CACHE": "false"}


def timed(command: list[str], env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env or NO_COMPILE_CACHE)
    seconds = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return seconds, out


def end_to_end(command: list[str], out_dir: Path, env: dict | None = None) -> dict:
    """Seconds from process start to the last file written under `out_dir` (its modification
    time), and to the process's exit; and what the command said on stderr about the compilation
    cache (a user would see it: JAX warns when it cannot write or read an entry)."""
    start = time.time()
    wall, out = timed(command + ["--out", str(out_dir)], env)
    cache_lines = [line for line in out.stderr.splitlines() if "compilation cache" in line or "AOT" in line]
    return {"last_file": max(p.stat().st_mtime for p in out_dir.rglob("*")) - start, "exit": wall,
            "cache_messages": cache_lines}


def warm_cache_call(sample: list[str], scratch: Path, k: int) -> dict:
    """`end_to_end` of a later call, the command's compilation cache (in its own folder here) filled
    by an earlier one: what a user's second `ganmusic sample` of the same run and sizes pays."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("JAX_")}
    env["GANMUSIC_CACHE"] = str(scratch / "cache")
    if k == 0:
        end_to_end(sample, scratch / "fill-cache", env)
    return end_to_end(sample, scratch / f"warm-cache-{k}", env)


def train_run(root: Path) -> Path:
    command = [sys.executable, "-m", "ganmusic", "train-gan", str(data_path()), "--root", str(root),
               "--name", "songs-bench", "--mle-steps", str(TRAIN_STEPS), "--eval-every", "10", "--checkpoint-every", "10",
               "--seed", "0"]
    seconds, _ = timed(command)
    print(f"trained a {TRAIN_STEPS}-step run for the timing in {seconds:.0f} s")
    return root / "songs-bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--num", type=int, default=256)
    parser.add_argument("--length", type=int, default=768)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="songs-bench-"))
    run = args.run or train_run(scratch)
    script = Path(sys.executable).with_name("ganmusic")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "ganmusic"]
    sample = command + ["sample", str(run), "--num", str(args.num), "--length", str(args.length), "--seed", "0"]
    sides = {
        "end to end": lambda k: end_to_end(sample, scratch / f"png-{k}"),
        "end to end, --no-png": lambda k: end_to_end(sample + ["--no-png"], scratch / f"nopng-{k}"),
        "generation alone": lambda k: json.loads(timed([sys.executable, "-c", GENERATE, str(run), str(args.num),
                                                        str(args.length)])[1].stdout.splitlines()[-1]),
        "end to end, phases": lambda k: phases(sample[len(command):] + ["--out", str(scratch / f"phases-{k}")]),
    }
    if accelerator_plugin_installed():
        sides["end to end, compile cache warm"] = lambda k: warm_cache_call(sample, scratch, k)
    results: dict[str, list] = {name: [] for name in sides}
    names = list(sides)
    for k in range(args.rounds):
        for name in names[k % len(names):] + names[:k % len(names)]:
            results[name].append(sides[name](k))
            print(f"round {k}: {name}: {results[name][-1]}", flush=True)

    songs = len(list((scratch / "png-0").glob("*.mid")))
    pngs = len(list((scratch / "png-0").glob("*.png")))
    generation = min(r["generation"] for r in results["generation alone"])
    warm = min(r["generation_warm"] for r in results["generation alone"])
    setup = min(r["imports_and_restore"] for r in results["generation alone"])
    e2e, e2e_nopng, cached = ({end: min(r[end] for r in results[side]) for end in ("last_file", "exit")}
                              if side in results else None
                              for side in ("end to end", "end to end, --no-png", "end to end, compile cache warm"))
    device = results["generation alone"][0]["device"]
    fastest_phases = min(results["end to end, phases"], key=lambda r: r["end to end"])
    rows = [
        ("device", device, ""),
        ("songs written (MIDI / PNG)", f"{songs} / {pngs}", f"{args.num} / {args.num}"),
        ("imports and restore", f"{setup:.1f} s", ""),
        ("generation alone (compile included)", f"{generation:.1f} s", ""),
        ("generation alone, warm", f"{warm:.1f} s", ""),
        ("command", " ".join(Path(command[0]).name if k == 0 else c for k, c in enumerate(command)), ""),
        ("end to end, to the last file / to exit", f"{e2e['last_file']:.1f} s / {e2e['exit']:.1f} s", ""),
        ("end to end, --no-png", f"{e2e_nopng['last_file']:.1f} s / {e2e_nopng['exit']:.1f} s", ""),
        *([("end to end, a later call (compile cache warm)", f"{cached['last_file']:.1f} s / {cached['exit']:.1f} s",
            ""), ("  its stderr lines about the cache (JSON: raw)",
                  str(sum(len(r["cache_messages"]) for r in results["end to end, compile cache warm"])), "0")]
          if cached else []),
        ("one more end-to-end call, its phases", f"{fastest_phases['end to end']:.1f} s", ""),
        *((f"  {phase}", f"{seconds:.1f} s", "") for phase, seconds in fastest_phases.items() if phase != "end to end"),
        ("end to end / generation, to the last file", f"{e2e['last_file'] / generation:.2f}x", "<= 2x"),
        ("end to end / generation, to exit", f"{e2e['exit'] / generation:.2f}x", ""),
        ("end to end --no-png / generation, last file / exit",
         f"{e2e_nopng['last_file'] / generation:.2f}x / {e2e_nopng['exit'] / generation:.2f}x", "<= 2x"),
    ]
    report("songs_bench", f"sample --num {args.num} --length {args.length}, best of {args.rounds} ({device}, "
           f"load {os.getloadavg()[0]:.1f})", rows,
           {"num": args.num, "length": args.length, "rounds": args.rounds, "run": str(run), "raw": results,
            "ratio_to_last_file": e2e["last_file"] / generation, "ratio_to_exit": e2e["exit"] / generation,
            "ratio_no_png_to_last_file": e2e_nopng["last_file"] / generation,
            "ratio_no_png_to_exit": e2e_nopng["exit"] / generation})


if __name__ == "__main__":
    main()
