"""Corpus build and reload on the shared jazz-vs-folk corpus.

Reports files/s of the first (uncached) parse with the parallel workers and with one process,
the time of a second, cached load (target < 1 s), and the peak resident memory of the build,
parent and workers (target < 1 GiB).

    python benchmarks/data_bench.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_path, report, run_child  # noqa: E402

CHILD = r"""
import json, resource, sys, time
from ganmusic.data import load_corpus
path, cache, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = time.perf_counter()
corpus = load_corpus(path, cache_dir=cache, workers=workers, progress=False)
seconds = time.perf_counter() - t
kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"seconds": seconds, "usable": len(corpus), "skipped": len(corpus.skipped),
                  "parsed": corpus.parsed_now, "peak_rss_mib": kib / 1024}))
"""


def main():
    path = str(data_path())
    with tempfile.TemporaryDirectory() as parallel_cache, tempfile.TemporaryDirectory() as serial_cache:
        first = run_child(CHILD, path, parallel_cache, "0")  # 0: all cores
        second = run_child(CHILD, path, parallel_cache, "0")
        serial = run_child(CHILD, path, serial_cache, "1")
    files = first["usable"] + first["skipped"]
    rows = [
        ("files found (usable + skipped)", f"{files} ({first['usable']} + {first['skipped']})", "1218"),
        ("first parse, all cores", f"{first['parsed'] / first['seconds']:.0f} files/s ({first['seconds']:.1f} s)", ""),
        ("first parse, one process", f"{serial['parsed'] / serial['seconds']:.0f} files/s ({serial['seconds']:.1f} s)", ""),
        ("parallel speed-up", f"{serial['seconds'] / first['seconds']:.2f}x", ""),
        ("second (cached) load", f"{second['seconds']:.3f} s", "< 1 s"),
        ("peak RSS of the build", f"{max(first['peak_rss_mib'], serial['peak_rss_mib']):.0f} MiB", "< 1024 MiB"),
    ]
    report("data_bench", f"corpus build: {path}", rows,
           {"first_parallel": first, "second_cached": second, "first_serial": serial,
            "files_per_second": first["parsed"] / first["seconds"]})
    ok = second["seconds"] < 1.0 and max(first["peak_rss_mib"], serial["peak_rss_mib"]) < 1024
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
