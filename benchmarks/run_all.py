"""Every benchmark, one after the other (never in parallel: they time things), then one summary
table of their headline numbers; each benchmark's own JSON stays in benchmarks/results/, and the
summary is saved there as run_all.json with the machine's facts.

    python benchmarks/run_all.py [--only data_bench,score_bench] [--base runs/BASE --classifier classifiers/NAME]

`adversarial_compare` needs an MLE run and a classifier (`--base`, `--classifier`) and is skipped
without them; `train_bench` needs PyTorch (`pip install torch==2.13.0`, benchmark-only) and is
skipped without it (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, RESULTS, report  # noqa: E402

HERE = Path(__file__).resolve().parent

# benchmark -> (label, path into its JSON, format, target) for the summary
HEADLINES = {
    "data_bench": [
        ("first parse, files/s (2 workers)", ("files_per_second",), "{:.0f}", ""),
        ("cached reload, s", ("second_cached", "seconds"), "{:.3f}", "< 1"),
        ("peak RSS of the build, MiB", ("first_parallel", "peak_rss_mib"), "{:.0f}", "< 1024"),
    ],
    "inspect_bench": [
        ("data inspect per note, lead sheets / jazz-vs-folk, first parse (CPU)", ("ratios_per_note", "first_cpu_s"), "{:.2f}x", "<= 1.5x"),
        ("data inspect per note, lead sheets / jazz-vs-folk, cached (CPU)", ("ratios_per_note", "cached_cpu_s"), "{:.2f}x", "<= 1.5x"),
        ("lead sheets: notes under a chord symbol parsed", ("results", "lead-sheets", "first", "parsed_share"), "{:.2%}", ">= 99%"),
    ],
    "score_bench": [
        ("score, files/s end to end", ("files_per_second",), "{:.0f}", ">= 100"),
    ],
    "sample_bench": [
        ("sample 64x1024, s after compile", ("batch64", "scan_s"), "{:.2f}", ""),
        ("scan's share of the network-alone ceiling, batch 64", ("batch64", "share_of_ceiling"), "{:.2f}",
         ">= 0.80 on a GPU"),
        ("scan vs Python loop, batch 64", ("batch64", "speedup"), "{:.1f}x", ""),
        ("scan vs Python loop, batch 1", ("single", "speedup"), "{:.1f}x", ""),
    ],
    "train_bench": [
        ("MLE tokens/s, ours / PyTorch (fastest steps, first batch size)", ("ratio_ours_over_torch",), "{:.2f}x",
         ">= 1.05x on a GPU"),
        ("peak RSS of training, MiB", ("peak_rss_mib",), "{:.0f}", "< 3072"),
    ],
    "pmap_bench": [
        ("MLE step, 1 device, s", ("one_device", "mle"), "{:.3f}", ""),
        ("MLE step, 8 forced CPU devices, s", ("eight_devices", "mle"), "{:.3f}", "overhead only on 2 cores"),
        ("adversarial step, 1 device, s", ("one_device", "adversarial"), "{:.3f}", ""),
        ("adversarial step, 8 forced CPU devices, s", ("eight_devices", "adversarial"), "{:.3f}", ""),
    ],
    "adversarial_compare": [
        ("judge P(jazz): MLE", ("results", "mle", "p_jazz_judge"), "{:.3f}", ""),
        ("judge P(jazz): adversarial", ("results", "adversarial", "p_jazz_judge"), "{:.3f}", "> MLE"),
        ("repeat rate: MLE / adversarial", None, "", "adversarial lower"),
        ("val NLL: MLE / adversarial", None, "", "within 10%"),
    ],
}


def lookup(results: dict, keys):
    value = results
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def pair(results: dict, metric: str) -> str:
    mle, adv = (lookup(results, ("results", side, metric)) for side in ("mle", "adversarial"))
    return f"{mle:.3f} / {adv:.3f}" if mle is not None and adv is not None else "-"


def skip_reason(name: str, args) -> str | None:
    if name == "train_bench" and importlib.util.find_spec("torch") is None:
        return "PyTorch not installed (pip install -e '.[bench]')"
    if name == "adversarial_compare" and not (args.base and args.classifier):
        return "needs --base RUN and --classifier NAME"
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--base", help="MLE run for adversarial_compare")
    parser.add_argument("--classifier", help="classifier for adversarial_compare")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(HEADLINES)
    unknown = set(names) - set(HEADLINES)
    if unknown:
        sys.exit(f"unknown benchmarks: {sorted(unknown)} (have: {', '.join(HEADLINES)})")

    status = {}
    for name in names:
        reason = skip_reason(name, args)
        if reason:
            status[name] = {"status": f"skipped: {reason}"}
            continue
        extra = ["--base", args.base, "--classifier", args.classifier] if name == "adversarial_compare" else []
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        rc = subprocess.run([sys.executable, str(HERE / f"{name}.py"), *extra], cwd=REPO).returncode
        status[name] = {"status": "ok" if rc == 0 else f"exit {rc} (a target missed or a failure; see above)",
                        "seconds": round(time.perf_counter() - start, 1)}

    rows = []
    for name in names:
        path = RESULTS / f"{name}.json"
        results = json.loads(path.read_text()) if path.exists() and status[name].get("seconds") else {}
        status[name]["headlines"] = {}
        for label, keys, fmt, target in HEADLINES[name]:
            if keys is None:
                metric = "same_pitch_repeat_rate" if label.startswith("repeat") else "val_nll"
                text = pair(results, metric) if results else "-"
            else:
                value = lookup(results, keys) if results else None
                text = fmt.format(value) if isinstance(value, (int, float)) else "-"
            status[name]["headlines"][label] = text
            rows.append((name, label, text, target))
        rows.append((name, "status", status[name]["status"], ""))
    report("run_all", "all benchmarks (details: benchmarks/results/NAME.json)", rows, {"benchmarks": status},
           columns=("benchmark", "metric", "value", "target"))


if __name__ == "__main__":
    main()
