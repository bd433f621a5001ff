"""Hostile inputs, generated here with fixed seeds: truncated, byte-flipped and crafted MIDI,
files that are not files, hostile manifests and corpus folders, damaged checkpoints.

Every case runs the command a user would run and checks what the user sees: no traceback, one
line naming the file (or folder, or option) and the problem, the documented exit code, and every
good input of the same call still processed. The category of each input is in the test's name or
its parametrize id.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import mido
import numpy as np
import pytest

from conftest import make_tiny_corpus, run_cli, straight_tune, swing_line, write_midi
from ganmusic import checkpoints, classify, data
from ganmusic.models import ClassifierConfig

SEED = 17


def assert_no_traceback(result):
    for text in (result.stdout, result.stderr):
        assert "Traceback" not in text and "RuntimeWarning" not in text and "absl" not in text, text


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def assert_one_line_error(result, *names, code=2):
    """Exit code `code` and exactly one `error:` line, which names each of `names`."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert_no_traceback(result)
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


# ---------------------------------------------------------------------------------------------
# Fixtures: one tiny classifier for the module
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("robust")
    root = make_tiny_corpus(tmp / "corpus")
    corpus = data.load_corpus(root, cache_dir=tmp / "cache", progress=False, split_fractions=(4, 1, 1))
    out = tmp / "classifiers" / "tiny"
    classify.train_classifier(corpus, out, ClassifierConfig.for_vocab(corpus.vocab, embed_dim=8, hidden=8, layers=2),
                              classify.TrainConfig(window=24, steps=6, batch_size=8, eval_every=3, warmup=2),
                              progress=False)
    return root, out


# ---------------------------------------------------------------------------------------------
# Bad MIDI: truncated, byte-flipped, crafted
# ---------------------------------------------------------------------------------------------


def good_bytes(tmp: Path) -> bytes:
    return write_midi(tmp / "source.mid", swing_line(5)).read_bytes()


def truncations(raw: bytes) -> dict[str, bytes]:
    cuts = sorted({0, 1, 4, 13, 14, 18, 22, 30, len(raw) // 3, len(raw) // 2, len(raw) - 3, len(raw) - 1})
    return {f"truncated_at_{n}": raw[:n] for n in cuts}


def byte_flips(raw: bytes, count: int = 12, flips: int = 8) -> dict[str, bytes]:
    rng = np.random.default_rng(SEED)
    out = {}
    for k in range(count):
        b = bytearray(raw)
        for pos in rng.choice(len(b), size=flips, replace=False):
            b[pos] ^= int(rng.integers(1, 256))
        out[f"flipped_{k}"] = bytes(b)
    return out


def varlen(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def chunk(kind: bytes, body: bytes, length: int | None = None) -> bytes:
    return kind + (len(body) if length is None else length).to_bytes(4, "big") + body


def crafted() -> dict[str, bytes]:
    """Hand-made byte strings that have broken MIDI readers."""
    header = chunk(b"MThd", (1).to_bytes(2, "big") + (1).to_bytes(2, "big") + (96).to_bytes(2, "big"))
    note_on = b"\x00\x90\x3c\x40" + b"\x60\x80\x3c\x40"
    end = b"\x00\xff\x2f\x00"
    return {
        "crafted_header_only": header,
        "crafted_track_length_lies": header + chunk(b"MTrk", note_on + end, length=2**31 - 1),
        "crafted_zero_division": chunk(b"MThd", (0).to_bytes(2, "big") + (1).to_bytes(2, "big") + (0).to_bytes(2, "big"))
        + chunk(b"MTrk", note_on + end),
        "crafted_running_status_without_status": header + chunk(b"MTrk", b"\x00\x3c\x40" + end),
        "crafted_huge_delta": header + chunk(b"MTrk", b"\xff\xff\xff\xff\x7f\x90\x3c\x40" + end),
        "crafted_meta_length_lies": header + chunk(b"MTrk", b"\x00\xff\x51" + varlen(2**27) + b"\x07\xa1\x20"),
        "crafted_many_tracks_claimed": chunk(b"MThd", (1).to_bytes(2, "big") + (65535).to_bytes(2, "big")
                                             + (96).to_bytes(2, "big")) + chunk(b"MTrk", note_on + end),
        "crafted_text": b"this is not a MIDI file at all\n" * 4,
        "crafted_empty": b"",
        "crafted_zero_tempo": header + chunk(b"MTrk", b"\x00\xff\x51\x03\x00\x00\x00" + note_on + end),
    }


def type2_file(path: Path) -> Path:
    """A type-2 file with a tempo on its second track: pretty_midi warns about it; we must not."""
    mid = mido.MidiFile(type=2, ticks_per_beat=96)
    for t in range(2):
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
        for i in range(12):
            track.append(mido.Message("note_on", note=60 + i, velocity=80, time=0))
            track.append(mido.Message("note_off", note=60 + i, velocity=0, time=48))
        mid.tracks.append(track)
    mid.save(str(path))
    return path


def test_score_survives_truncated_flipped_and_crafted_midi(trained, tmp_path):
    root, clf = trained
    raw = good_bytes(tmp_path)
    bad = {**truncations(raw), **byte_flips(raw), **crafted()}
    folder = tmp_path / "bad"
    folder.mkdir()
    for name, content in bad.items():
        (folder / f"{name}.mid").write_bytes(content)
    type2 = type2_file(folder / "type2_tempo_on_track_2.mid")
    good = [root / "jazz" / "swing0.mid", root / "not_jazz" / "folk1.mid"]
    result = run_cli("score", good[0], folder, good[1], "--classifier", clf, "--json")
    assert result.returncode == 1, result.stderr  # documented: 1 when any file failed
    assert_no_traceback(result)
    rows = {Path(r["file"]).name: r for r in json.loads(result.stdout)["results"]}
    assert set(rows) == {p.name for p in good} | {f"{n}.mid" for n in bad} | {type2.name}
    for p in good:  # the good files of the same call are scored
        assert 0.0 <= rows[p.name]["probability"] <= 1.0 and rows[p.name]["notes"] == 48
    assert "probability" in rows[type2.name]
    failed = [r for r in rows.values() if "error" in r]
    for r in rows.values():  # a mutated file is either refused or scored with a real number
        assert "error" in r or np.isfinite(r["probability"])
    for name in ("truncated_at_0", "truncated_at_13", "crafted_text", "crafted_empty", "crafted_header_only"):
        assert "error" in rows[f"{name}.mid"], name
    lines = error_lines(result)
    assert len(lines) == len(failed)  # one line per failed file, naming it
    for r in failed:
        assert sum(r["file"] in line for line in lines) == 1


def test_score_refuses_non_regular_and_oversized_files_by_name(trained, tmp_path):
    root, clf = trained
    fifo = tmp_path / "fifo.mid"
    os.mkfifo(fifo)
    # If score ever opened the FIFO it would block; this writer ends such a hang with EOF.
    guard = threading.Timer(60, lambda: open(fifo, "wb").close())
    guard.daemon = True
    guard.start()
    big = tmp_path / "oversized.mid"
    with open(big, "wb") as f:
        f.truncate(data.DEFAULT_MAX_FILE_BYTES + 1)  # sparse: costs no disk
    folder_named_mid = tmp_path / "folder.mid"
    folder_named_mid.mkdir()
    write_midi(folder_named_mid / "inner.mid", swing_line(9))
    cases = {"/dev/zero": "not a regular file", str(fifo): "not a regular file", str(big): "file too large",
             str(tmp_path / "missing.mid"): "cannot read file"}
    good = root / "jazz" / "swing2.mid"
    try:
        result = run_cli("score", "/dev/zero", fifo, good, big, tmp_path / "missing.mid", folder_named_mid,
                         "--classifier", clf, "--json")
    finally:
        guard.cancel()
    assert result.returncode == 1
    assert_no_traceback(result)
    rows = {r["file"]: r for r in json.loads(result.stdout)["results"]}
    assert rows[str(good)]["notes"] == 48 and rows[str(folder_named_mid / "inner.mid")]["notes"] == 48
    for path, reason in cases.items():
        assert reason in rows[path]["error"], (path, rows[path])
        assert sum(path in line and reason in line for line in error_lines(result)) == 1


def test_score_no_stray_noise_on_stderr_for_a_good_run(trained, tmp_path):
    """Type-2 files and restoring checkpoints print nothing but the result (no pretty_midi
    RuntimeWarning, no absl 'Failed to json parse' lines)."""
    _, clf = trained
    type2 = type2_file(tmp_path / "type2.mid")
    result = run_cli("score", type2, "--classifier", clf, "--csv")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""
    assert result.stdout.splitlines()[1].startswith(str(type2))


# ---------------------------------------------------------------------------------------------
# Damaged checkpoints
# ---------------------------------------------------------------------------------------------


def step_folder(classifier_dir: Path) -> Path:
    (step,) = [p for p in (classifier_dir / "checkpoint").iterdir() if p.name.isdigit()]
    return step


def flip_bytes(path: Path, rng, flips: int = 8) -> None:
    b = bytearray(path.read_bytes())
    for pos in rng.choice(len(b), size=min(flips, len(b)), replace=False):
        b[pos] ^= 0xFF
    path.write_bytes(bytes(b))


def test_flipped_bytes_in_any_classifier_checkpoint_file_are_refused(trained, tmp_path):
    root, clf = trained
    song = root / "jazz" / "swing3.mid"
    names = sorted(p.relative_to(step_folder(clf)) for p in step_folder(clf).rglob("*") if p.is_file())
    assert len(names) >= 8 and Path(checkpoints.INTEGRITY) in names
    rng = np.random.default_rng(SEED)
    for name in names:
        damaged = tmp_path / f"damaged-{name.as_posix().replace('/', '_')}"
        shutil.copytree(clf, damaged)
        flip_bytes(step_folder(damaged) / name, rng)
        result = run_cli("score", song, "--classifier", damaged, "--json")
        assert_one_line_error(result, step_folder(damaged).resolve())
        assert "damaged" in result.stderr, (name, result.stderr)
        assert "NaN" not in result.stdout and result.stdout.strip() == ""


def nan_checkpoint(step_dir: Path) -> None:
    """Re-save the step with NaN weights and a matching integrity record (a checkpoint written
    by a diverged run): the hash holds, the values do not."""
    directory, step = step_dir.parent, int(step_dir.name)
    with checkpoints.Manager(directory, read_only=True) as manager:
        tree = manager._read(step)
    shutil.rmtree(step_dir)
    tree = {k: v for k, v in tree.items()}
    poisoned = __import__("jax").tree.map(lambda x: np.full_like(np.asarray(x), np.nan), tree)
    with checkpoints.Manager(directory) as manager:
        manager.save(step, poisoned)


@pytest.mark.parametrize("damage", ["zero_byte_manifest", "deleted_array_file", "extra_file",
                                    "missing_integrity_record", "non_finite_values", "truncated_array_file"])
def test_damaged_classifier_checkpoint_is_refused_naming_the_folder(trained, tmp_path, damage):
    root, clf = trained
    damaged = tmp_path / "damaged"
    shutil.copytree(clf, damaged)
    step = step_folder(damaged)
    arrays = sorted((step / "default").rglob("d/*"))
    if damage == "zero_byte_manifest":
        (step / "default" / "manifest.ocdbt").write_bytes(b"")
    elif damage == "deleted_array_file":
        arrays[0].unlink()
    elif damage == "extra_file":
        (step / "default" / "d" / "planted").write_bytes(b"\x00" * 64)
    elif damage == "missing_integrity_record":
        (step / checkpoints.INTEGRITY).unlink()
    elif damage == "non_finite_values":
        nan_checkpoint(step)
    elif damage == "truncated_array_file":
        arrays[-1].write_bytes(arrays[-1].read_bytes()[:10])
    result = run_cli("score", root / "jazz" / "swing3.mid", "--classifier", damaged)
    where = step.resolve() if damage != "missing_integrity_record" else damaged / "checkpoint"
    line = assert_one_line_error(result, damaged)
    assert str(where) in line or str(damaged) in line
    assert ("non-finite" if damage == "non_finite_values" else
            "no complete checkpoint" if damage == "missing_integrity_record" else "damaged") in line
    assert "NaN" not in result.stdout


# ---------------------------------------------------------------------------------------------
# Hostile manifests and corpus folders
# ---------------------------------------------------------------------------------------------

GOOD_ROWS = ["jazz/swing0.mid,jazz", "jazz/swing1.mid,jazz", "jazz/swing2.mid,jazz",
             "not_jazz/folk0.mid,not_jazz", "not_jazz/folk1.mid,not_jazz", "not_jazz/folk2.mid,not_jazz"]

HOSTILE_ROWS = {
    "nul_byte_in_path": ("jazz/swi\0ng3.mid,jazz", "NUL byte"),
    "row_with_only_a_path": ("jazz/swing3.mid", "no label"),
    "empty_label": ("jazz/swing4.mid,", "no label"),
    "blank_label": ("jazz/swing5.mid,   ", "no label"),
    "empty_path": (",jazz", "no path"),
    "dotdot_escape": ("../../../../../../../../etc/passwd,jazz", "leaves the corpus folder"),
    "absolute_path_outside": ("/etc/passwd,not_jazz", "leaves the corpus folder"),
    "escape_then_back_in": ("jazz/../../corpus-sibling/x.mid,jazz", "leaves the corpus folder"),
}


def inspect(path, tmp_path, *extra):
    result = run_cli("data", "inspect", path, "--out", tmp_path / "report", "--json", *extra)
    assert_no_traceback(result)
    return result


@pytest.mark.parametrize("case", sorted(HOSTILE_ROWS))
def test_hostile_manifest_row_is_skipped_with_a_reason(tmp_path, case):
    root = make_tiny_corpus(tmp_path / "corpus")
    row, reason = HOSTILE_ROWS[case]
    lines = ["path,label", *GOOD_ROWS[:3], row, *GOOD_ROWS[3:]]
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    result = inspect(root, tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["usable_files"] == 6 and set(report["labels"]) == {"jazz", "not_jazz"}
    (skipped,) = report["skipped"]
    assert reason in skipped["reason"] and "manifest line 5" in skipped["reason"]


def test_manifest_with_a_utf8_bom_is_read(tmp_path):
    root = make_tiny_corpus(tmp_path / "corpus")
    (root / "manifest.csv").write_bytes(("\ufeffpath,label\n" + "\n".join(GOOD_ROWS) + "\n").encode("utf-8"))
    result = inspect(root, tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["usable_files"] == 6


@pytest.mark.parametrize("content", [b"", b"label,group\njazz,a\n", b"\xff\xfe\x00p\x00a\x00t\x00h",
                                     b"path,label\n"], ids=["empty_manifest", "no_path_column",
                                                            "utf16_manifest", "header_only"])
def test_unusable_manifest_is_one_line_naming_it(tmp_path, content):
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes(content)
    result = run_cli("data", "inspect", manifest, "--out", tmp_path / "report")
    assert_one_line_error(result, manifest)


def test_manifest_paths_outside_the_corpus_need_an_explicit_option(tmp_path):
    root = make_tiny_corpus(tmp_path / "corpus")
    outside = write_midi(tmp_path / "elsewhere" / "far.mid", swing_line(11))
    (root / "manifest.csv").write_text("\n".join(["path,label", *GOOD_ROWS, f"{outside},jazz",
                                                  "../elsewhere/far.mid,jazz"]) + "\n")
    refused = json.loads(inspect(root, tmp_path).stdout)
    assert refused["usable_files"] == 6 and len(refused["skipped"]) == 2
    allowed = inspect(root, tmp_path, "--allow-outside")
    assert allowed.returncode == 0, allowed.stderr
    report = json.loads(allowed.stdout)
    assert report["usable_files"] == 7  # the two rows are one file: the second is a duplicate
    assert [s["reason"] for s in report["skipped"]] == [f"duplicate of {outside}"] or \
        [s["reason"] for s in report["skipped"]] == ["duplicate of ../elsewhere/far.mid"]


def make_link(link: Path, target: str) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)


HOSTILE_FOLDERS = {
    "symlink_loop_to_parent": (lambda r: make_link(r / "jazz" / "deeper" / "up", ".."), "jazz/deeper/up", "loop"),
    "symlink_loop_to_root": (lambda r: make_link(r / "jazz" / "root", ".."), "jazz/root", "loop"),
    "self_referencing_link": (lambda r: make_link(r / "jazz" / "self.mid", "self.mid"), "jazz/self.mid", "loop"),
    "broken_link": (lambda r: make_link(r / "not_jazz" / "gone.mid", "nowhere.mid"), "not_jazz/gone.mid", "broken"),
    "link_to_dot_at_top": (lambda r: make_link(r / "everything", "."), "everything", "corpus folder"),
    "link_to_parent_at_top": (lambda r: make_link(r / "parent", ".."), "parent", "corpus folder"),
    "fifo_in_label_folder": (lambda r: os.mkfifo(r / "jazz" / "pipe.mid"), "jazz/pipe.mid", "not a regular file"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_FOLDERS))
def test_hostile_corpus_folder_entry_is_reported_not_silently_skipped(tmp_path, case):
    root = make_tiny_corpus(tmp_path / "corpus")
    make, where, reason = HOSTILE_FOLDERS[case]
    make(root)
    result = inspect(root, tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["usable_files"] == 12 and set(report["labels"]) == {"jazz", "not_jazz"}  # no third label
    assert [(s["path"], reason in s["reason"]) for s in report["skipped"]] == [(where, True)], report["skipped"]


def test_symlinked_music_folder_inside_a_label_is_still_read(tmp_path):
    """Links are followed when they lead somewhere new: a corpus of links to a music library works."""
    root = make_tiny_corpus(tmp_path / "corpus")
    library = tmp_path / "library"
    write_midi(library / "extra.mid", straight_tune(50))
    make_link(root / "not_jazz" / "library", str(library))
    report = json.loads(inspect(root, tmp_path).stdout)
    assert report["usable_files"] == 13 and report["skipped"] == []
