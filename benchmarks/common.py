"""Shared by the benchmark scripts: machine facts, result files, tables, child processes."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "jazz-vs-folk"


def data_path() -> Path:
    path = Path(os.environ.get("GANMUSIC_BENCH_DATA", DEFAULT_DATA))
    if not path.exists():
        sys.exit(f"benchmark data not found at {path}: set GANMUSIC_BENCH_DATA to the jazz-vs-folk folder")
    return path


def machine() -> dict:
    facts = {"python": platform.python_version(), "platform": platform.platform(),
             "cpus": os.cpu_count()}
    try:
        import jax

        facts["jax"] = jax.__version__
        facts["jax_devices"] = [str(d) for d in jax.devices()]
    except Exception:  # facts only; a benchmark without JAX still reports
        pass
    return facts


def run_child(code: str, *args: str) -> dict:
    """Run a Python snippet in a fresh process; it prints one JSON object as its last line."""
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        raise RuntimeError(f"child failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(name: str, title: str, rows: list[tuple[str, ...]], results: dict,
           columns: tuple[str, ...] = ("metric", "value", "target")) -> Path:
    """Print a table (metric/value/target by default) and save the results with machine facts as JSON."""
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **results}, indent=2))
    print(f"saved {path}")
    return path
