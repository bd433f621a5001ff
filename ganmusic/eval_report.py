"""The evaluation report as people read it: the summary table (each figure with the real
music's value and the distance to it), the Jazz Transformer table, `report.md` and `chunks.csv`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from ganmusic import metrics

SCALAR_FEATURES = [name for name in metrics.FEATURES if name not in metrics.HISTOGRAM_BINS]

# (label, where in a source's entry, format, real): `real` is what the distance is measured to:
# "reference" (the reference's own value: real music measured the same way), a number (the
# ideal), or "" (a figure with no real counterpart; its label says which way is better).
SUMMARY_ROWS = [
    ("two-sample accuracy (0.5: like real; real: real-vs-real floor)", ("realism", "accuracy"), "{:.3f}", "reference"),
    ("H1, 1-bar pitch-class entropy (bits)", ("lead_sheet", "H1"), "{:.3f}", "reference"),
    ("H4, 4-bar pitch-class entropy (bits)", ("lead_sheet", "H4"), "{:.3f}", "reference"),
    ("GS, grooving pattern similarity", ("lead_sheet", "GS"), "{:.3f}", "reference"),
    ("chord-tone share", ("lead_sheet", "chord_tone_share"), "{:.3f}", "reference"),
    ("chord-tone share, notes on beats", ("lead_sheet", "chord_tone_share_on_beats"), "{:.3f}", "reference"),
    ("P(jazz), classifier", ("p_jazz",), "{:.3f}", "reference"),
    ("  standard error", ("p_jazz_se",), "{:.3f}", ""),
    ("P(jazz), sklearn baseline", ("p_jazz_baseline",), "{:.3f}", "reference"),
    ("  standard error", ("p_jazz_baseline_se",), "{:.3f}", ""),
    ("closeness (mean overlap; 1: same as real)", ("closeness",), "{:.3f}", 1.0),
    ("mean KL divergence (0: same as real)", ("mean_kl",), "{:.3f}", 0.0),
    ("NLL of reference (nats/token; lower is better)", ("reference_nll",), "{:.3f}", ""),
    *[(name.replace("_", " "), ("means", name), "{:.3f}", "reference") for name in SCALAR_FEATURES],
    ("longest repeated token n-gram", ("means", "longest_repeated_ngram"), "{:.1f}", "reference"),
    ("novelty (8-note n-grams not in training)", ("means", "novelty"), "{:.3f}", "reference"),
]


def _lookup(entry: dict, keys) -> float | None:
    value = entry
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _cell(value, real, fmt: str) -> str:
    """`value (±distance to real)`, or just the value where there is nothing to compare with."""
    if value is None:
        return "-"
    if real is None:
        return fmt.format(value)
    return f"{fmt.format(value)} ({'+' if value >= real else '-'}{fmt.format(abs(value - real))})"


def summary_table(report: dict) -> list[list[str]]:
    """Rows `[metric, real value, value and distance to real per source...]` (the sources after
    the reference), only rows some source has."""
    entries = list(report["sources"].values())
    reference, others = entries[0], entries[1:]
    rows = []
    for label, keys, fmt, real in SUMMARY_ROWS:
        real_value = _lookup(reference, keys) if real == "reference" else (real if real != "" else None)
        values = [_lookup(e, keys) for e in others]
        if all(v is None for v in values) and (real != "reference" or real_value is None):
            continue
        rows.append([label, "-" if real_value is None else fmt.format(real_value),
                     *[_cell(v, real_value, fmt) for v in values]])
    return rows


APART_COLUMNS = ["source", "feature", "value", "real", "difference (sd)"]


def apart_table(report: dict) -> list[list[str]]:
    """Rows `APART_COLUMNS`: per source the features that set it apart most from the reference
    (`realism.most_apart`), largest difference first."""
    return [[name, f["feature"], f"{f['value']:.3f}", f"{f['real']:.3f}", f"{f['d']:+.2f}"]
            for name, entry in list(report["sources"].items())[1:] for f in entry.get("apart", [])]


def jazz_transformer_table(report: dict) -> list[list[str]]:
    """H1, H4 and GS beside the Jazz Transformer paper's Table 2 (real WJazzD, their best model)."""
    names = list(report["sources"])
    rows = []
    for metric, paper in metrics.JAZZ_TRANSFORMER_TABLE2.items():
        real_value = report["sources"][names[0]]["lead_sheet"][metric]
        lo, hi = paper["best"]
        rows.append([metric, f"{paper['real']:.2f}", f"{lo:.2f}-{hi:.2f}",
                     "-" if real_value is None else f"{real_value:.3f} ({'+' if real_value >= paper['real'] else '-'}"
                                                    f"{abs(real_value - paper['real']):.3f})",
                     *[_cell(report["sources"][n]["lead_sheet"][metric], real_value, "{:.3f}") for n in names[1:]]])
    return rows


def markdown(report: dict) -> str:
    names = list(report["sources"])
    others = names[1:]
    realism_ref = report["sources"][names[0]].get("realism", {})
    lines = [f"# Evaluation against {report['reference']}", "",
             f"{report['num']} samples of {report['length']} tokens per run (checkpoint {report['checkpoint']}, "
             f"seed {report['seed']}); every source cut into chunks of {report['length']} tokens "
             f"({report['length'] // 3} notes). Each cell: the value, then in brackets its distance to the real "
             "value (the reference's, or the ideal where the metric compares with the reference itself).", "",
             "| metric | real | " + " | ".join(others) + " |", "|---|---|" + "---|" * len(others)]
    lines += ["| " + " | ".join(row) + " |" for row in summary_table(report)]
    lines += ["", "## What sets each source apart most", "",
              "The chunk features (a scalar, or one bin of a histogram) whose means differ most from the "
              "reference's, in pooled standard deviations: where to look first.", "",
              "| " + " | ".join(APART_COLUMNS) + " |", "|---" * len(APART_COLUMNS) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in apart_table(report)]
    lines += ["", "## The Jazz Transformer's metrics (Wu and Yang, ISMIR 2020, Table 2)", "",
              "Per piece, averaged over pieces as in MusDr: H1/H4, pitch-class histogram entropy in bits over "
              "every 1-/4-bar window; GS, 1 - XOR/positions between the onset vectors (16 per beat) of every "
              "pair of bars. Sources' brackets: distance to our reference; the reference's: to the paper's "
              "real WJazzD.", "",
              "| metric | paper: real WJazzD | paper: best model | reference | " + " | ".join(others) + " |",
              "|---|---|---|---|" + "---|" * len(others)]
    lines += ["| " + " | ".join(row) + " |" for row in jazz_transformer_table(report)]
    lines += ["", "## Two-sample realism test", "",
              f"A fresh logistic regression on musical features of {report['length'] // 3}-note chunks, real "
              "(reference) against each source, equal chunk counts, cross-validated with each file's chunks "
              "in one fold (a performer's, where the corpus names performers). 0.5: indistinguishable. "
              "Real-vs-real floor (the reference split in two halves by file, mean of "
              f"{realism_ref.get('splits', 0)} halvings): "
              + ("-" if realism_ref.get("accuracy") is None else f"{realism_ref['accuracy']:.3f}") + ".", "",
              "| source | accuracy | fold spread | chunks per side | groups (real, source) | chord features |",
              "|---|---|---|---|---|---|"]
    for n in others:
        r = report["sources"][n].get("realism", {})
        acc = "-" if r.get("accuracy") is None else f"{r['accuracy']:.3f}"
        spread = "-" if r.get("fold_std") is None else f"{r['fold_std']:.3f}"
        lines.append(f"| {n} | {acc} | {spread} | {r.get('chunks_per_side', 0)} | "
                     f"{', '.join(str(g) for g in r.get('groups', []))} | {'yes' if r.get('chords') else 'no'} |")
    lines += ["", "## Overlapping area per feature (Yang and Lerch), against the reference", "",
              "| feature | " + " | ".join(others) + " |", "|---|" + "---|" * len(others)]
    for feature in metrics.FEATURES:
        cells = [f"{report['sources'][n]['features'][feature]['overlap']:.3f}" for n in others]
        lines.append(f"| {feature} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_chunks_csv(all_rows: dict[str, list[dict]], path: Path) -> None:
    """One line per chunk and source with the scalar features (histograms are in report.json)."""
    columns = ["source", "chunk", "notes", *SCALAR_FEATURES, "longest_repeated_ngram", "training_ngram_share",
               "p_jazz", "p_jazz_baseline"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for rows in all_rows.values():
            writer.writerows(rows)
