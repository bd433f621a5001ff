"""`ganmusic data weimar` on small hand-made stand-ins for the Weimar Jazz Database."""

import csv
import sqlite3

import numpy as np

from conftest import run_cli
from ganmusic import data
from ganmusic import encoding as enc
from ganmusic.importers import seconds_to_beats


def make_db(path, with_beats=True):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE solo_info (melid INTEGER, performer TEXT, title TEXT, avgtempo REAL)")
    db.execute("CREATE TABLE melody (eventid INTEGER, melid INTEGER, onset REAL, pitch REAL, duration REAL)")
    db.execute("CREATE TABLE beats (beatid INTEGER, melid INTEGER, onset REAL, bar INTEGER, beat INTEGER)")
    for melid, performer in ((1, "Charlie Parker"), (2, "Sonny Rollins")):
        db.execute("INSERT INTO solo_info VALUES (?, ?, ?, ?)", (melid, performer, f"Tune {melid}", 200.0))
        # The band speeds up: beat lengths shrink from 0.4 s to 0.25 s over 40 beats.
        beat_onsets = 1.0 + np.concatenate([[0], np.cumsum(np.linspace(0.4, 0.25, 39))])
        for k, onset in enumerate(beat_onsets):
            db.execute("INSERT INTO beats VALUES (?, ?, ?, ?, ?)", (k, melid, float(onset), k // 4, k % 4))
        for k in range(38):  # eighth notes, placed on the beat track
            on = float(np.interp(k + (0.5 if k % 2 else 0.0), np.arange(40), beat_onsets))
            db.execute("INSERT INTO melody VALUES (?, ?, ?, ?, ?)", (k, melid, on, 60 + k % 12 + melid, 0.1))
    if not with_beats:
        db.execute("DROP TABLE beats")
    db.commit()
    db.close()


def test_beats_from_a_beat_track_and_from_a_tempo():
    beats = np.array([1.0, 1.5, 2.0, 2.25])
    np.testing.assert_allclose(seconds_to_beats([1.0, 1.75, 2.125, 2.5, 0.5], beats, 120), [0, 1.5, 2.5, 4, -1])
    np.testing.assert_allclose(seconds_to_beats([0.0, 1.0], None, 120), [0, 2])


def test_weimar_database_becomes_a_labelled_corpus_on_the_beat_grid(tmp_path):
    make_db(tmp_path / "wjazzd.db")
    result = run_cli("data", "weimar", tmp_path / "wjazzd.db", tmp_path / "corpus")
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "corpus" / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["group"] for r in rows] == ["Charlie Parker", "Sonny Rollins"]
    corpus = data.load_corpus(tmp_path / "corpus", cache_dir=tmp_path / "cache", progress=False)
    assert len(corpus) == 2 and set(corpus.groups) == {"Charlie Parker", "Sonny Rollins"}
    # Despite the accelerating band, every note lands on the beat or half beat.
    notes = enc.tokens_to_notes(corpus.sequence(0), corpus.vocab)
    spb = corpus.config.steps_per_beat
    assert len(notes) == 38 and all(n.onset % (spb // 2) == 0 for n in notes)


def test_solo_csv_folder_and_bad_sources(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "JohnColtrane_GiantSteps_FINAL.csv").write_text(
        "pitch,onset,duration\n" + "".join(f"{60 + k},{0.25 * k},0.2\n" for k in range(20)))
    result = run_cli("data", "weimar", folder, tmp_path / "out", "--tempo", "120")
    assert result.returncode == 0, result.stderr
    corpus = data.load_corpus(tmp_path / "out", cache_dir=tmp_path / "cache", progress=False, require_positive=True)
    assert corpus.groups == ["JohnColtrane"]
    assert {n.onset % 6 for n in enc.tokens_to_notes(corpus.sequence(0), corpus.vocab)} == {0}  # eighths at 120
    (tmp_path / "bad.db").write_bytes(b"this is not sqlite")
    only_broken = tmp_path / "only-broken"
    only_broken.mkdir()
    (only_broken / "broken.csv").write_text("a,b\n1,2\n")
    (tmp_path / "empty-folder").mkdir()
    make_db(tmp_path / "nobeats.db", with_beats=False)
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE x (y INTEGER)").connection.commit()
    for source, message in ((tmp_path / "bad.db", "not a readable SQLite"), (only_broken, "needs the columns"),
                            (tmp_path / "empty-folder", "no solo CSV files"),
                            (tmp_path / "other.db", "no table 'solo_info'"), (tmp_path / "missing", "no such")):
        result = run_cli("data", "weimar", source, tmp_path / "o2")
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert run_cli("data", "weimar", tmp_path / "nobeats.db", tmp_path / "o3").returncode == 0  # average tempo then


def test_damaged_solo_csvs_are_skipped_with_their_reasons_and_the_rest_imported(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    good = ["ArtPepper_Anthropology", "CliffordBrown_Joyspring", "LesterYoung_DBBlues"]
    for k, stem in enumerate(good):
        (folder / f"{stem}_FINAL.csv").write_text(
            "onset,pitch,duration\n" + "".join(f"{0.25 * i},{60 + k + i % 7},0.2\n" for i in range(16)))
    (folder / "BadOne_Cut_FINAL.csv").write_text("onset,pitch,duration\n0.0,60,0.2\n0.25,sixty-two,0.2\n")
    (folder / "BadTwo_Binary_FINAL.csv").write_bytes(b"\xff\xfe\x00garbage\x81\n")
    result = run_cli("data", "weimar", folder, tmp_path / "out")
    assert result.returncode == 1  # some solos skipped
    assert "Traceback" not in result.stderr
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 2, result.stderr
    assert "BadOne_Cut_FINAL.csv" in skipped[0] and "line 3" in skipped[0] and "not all numbers" in skipped[0]
    assert "BadTwo_Binary_FINAL.csv" in skipped[1] and "not a UTF-8 text file" in skipped[1]
    assert "wrote 3 solos by 3 performers" in result.stderr
    with open(tmp_path / "out" / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["group"] for r in rows) == ["ArtPepper", "CliffordBrown", "LesterYoung"]
    corpus = data.load_corpus(tmp_path / "out", cache_dir=tmp_path / "cache", progress=False, require_positive=True)
    assert len(corpus) == 3 and not corpus.skipped


def test_damaged_solo_in_the_database_is_skipped(tmp_path):
    make_db(tmp_path / "wjazzd.db")
    db = sqlite3.connect(tmp_path / "wjazzd.db")
    db.execute("INSERT INTO solo_info VALUES (3, 'Dexter Gordon', 'Cheese Cake', 180.0)")
    db.execute("INSERT INTO melody VALUES (100, 3, 1.0, NULL, 0.1)")  # a pitch lost
    db.execute("INSERT INTO solo_info VALUES (4, 'Hank Mobley', 'Soul Station', 130.0)")
    db.execute("INSERT INTO melody VALUES (101, 4, 1.0, 300, 0.1)")  # no such MIDI pitch
    db.commit()
    db.close()
    result = run_cli("data", "weimar", tmp_path / "wjazzd.db", tmp_path / "corpus")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 2, result.stderr
    assert "melid 3 (Dexter Gordon - Cheese Cake)" in skipped[0] and "missing" in skipped[0]
    assert "melid 4 (Hank Mobley - Soul Station)" in skipped[1] and "0-127" in skipped[1]
    with open(tmp_path / "corpus" / "manifest.csv") as f:
        assert [r["group"] for r in csv.DictReader(f)] == ["Charlie Parker", "Sonny Rollins"]
