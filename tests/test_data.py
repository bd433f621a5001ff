import shutil

import numpy as np
import pytest

from conftest import run_cli, straight_tune, swing_line, write_midi
from ganmusic import data, windows
from ganmusic import encoding as enc
from ganmusic.data import CorpusError, load_corpus


def add_bad_files(root):
    good = (root / "jazz" / "swing0.mid").read_bytes()
    (root / "jazz" / "truncated.mid").write_bytes(good[: len(good) // 2])
    (root / "jazz" / "notes.mid").write_text("these are my practice notes, not MIDI\n")
    (root / "not_jazz" / "empty.mid").write_bytes(b"")
    write_midi(root / "not_jazz" / "drums.mid", [(i * 0.5, 0.25, 36) for i in range(32)], drum=True)
    write_midi(root / "not_jazz" / "short.mid", [(0, 1, 60), (1, 1, 62)])


def test_bad_files_are_skipped_with_reasons_and_the_rest_loads(tiny_corpus, cache_dir):
    add_bad_files(tiny_corpus)
    corpus = load_corpus(tiny_corpus, cache_dir=cache_dir, progress=False)
    assert len(corpus) == 12
    reasons = dict(corpus.skipped)
    assert set(reasons) == {"jazz/truncated.mid", "jazz/notes.mid", "not_jazz/empty.mid",
                            "not_jazz/drums.mid", "not_jazz/short.mid"}
    assert "not a readable MIDI" in reasons["jazz/truncated.mid"]
    assert "not a readable MIDI" in reasons["jazz/notes.mid"]
    assert reasons["not_jazz/empty.mid"] == "empty file"
    assert "drum-only" in reasons["not_jazz/drums.mid"]
    assert "too few notes" in reasons["not_jazz/short.mid"]
    assert all("\n" not in r for r in reasons.values())


def test_huge_files_are_skipped_before_parsing(tiny_corpus, cache_dir):
    corpus = load_corpus(tiny_corpus, cache_dir=cache_dir, progress=False, max_file_bytes=100)
    assert len(corpus) == 0 and all("too large" in r for _, r in corpus.skipped)


def test_sequences_are_grammatical_and_labels_follow_folders(tiny_corpus, cache_dir):
    corpus = load_corpus(tiny_corpus, cache_dir=cache_dir, progress=False)
    grammar = enc.Grammar(corpus.vocab)
    assert all(grammar.is_grammatical(corpus.sequence(i)) for i in range(len(corpus)))
    assert corpus.is_positive.sum() == 6
    assert all(p.startswith("jazz/") == pos for p, pos in zip(corpus.paths, corpus.is_positive))


def test_cache_reuses_unchanged_files_and_reparses_changed_ones(tiny_corpus, cache_dir):
    first = load_corpus(tiny_corpus, cache_dir=cache_dir, progress=False)
    assert first.parsed_now == 12
    second = load_corpus(tiny_corpus, cache_dir=cache_dir, progress=False)
    assert second.parsed_now == 0
    np.testing.assert_array_equal(first.tokens, second.tokens)
    write_midi(tiny_corpus / "jazz" / "swing0.mid", swing_line(99))  # changed
    write_midi(tiny_corpus / "jazz" / "new.mid", swing_line(77))  # added
    third = load_corpus(tiny_corpus, cache_dir=cache_dir, progress=False)
    assert third.parsed_now == 2 and len(third) == 13


def test_a_damaged_cache_is_rebuilt_not_trusted(tiny_corpus, cache_dir):
    first = load_corpus(tiny_corpus, cache_dir=cache_dir, progress=False)
    (cache_file,) = cache_dir.glob("corpus-*.npz")
    raw = bytearray(cache_file.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = b"\x00" * 64
    cache_file.write_bytes(bytes(raw))
    again = load_corpus(tiny_corpus, cache_dir=cache_dir, progress=False)
    assert again.parsed_now == 12
    np.testing.assert_array_equal(first.tokens, again.tokens)
    cache_file.write_bytes(b"garbage")
    assert load_corpus(tiny_corpus, cache_dir=cache_dir, progress=False).parsed_now == 12


def test_cache_key_depends_on_the_encoding(tiny_corpus, cache_dir):
    load_corpus(tiny_corpus, cache_dir=cache_dir, progress=False)
    other = load_corpus(tiny_corpus, enc.EncodingConfig(steps_per_beat=4), cache_dir=cache_dir, progress=False)
    assert other.parsed_now == 12 and other.config.steps_per_beat == 4


def test_duplicates_count_once(tiny_corpus, cache_dir):
    shutil.copy(tiny_corpus / "jazz" / "swing1.mid", tiny_corpus / "jazz" / "swing1-copy.mid")
    corpus = load_corpus(tiny_corpus, cache_dir=cache_dir, progress=False)
    assert len(corpus) == 12
    (skipped, reason), = corpus.skipped
    pair = {"jazz/swing1.mid", "jazz/swing1-copy.mid"}
    assert skipped in pair and reason == f"duplicate of {(pair - {skipped}).pop()}"


def test_manifest_with_groups_splits_by_group(tmp_path, cache_dir):
    root = tmp_path / "m"
    rows = ["path,label,performer"]
    for i in range(40):
        performer = f"p{i % 10}"
        write_midi(root / f"j{i}.mid", swing_line(i))
        write_midi(root / f"f{i}.mid", straight_tune(1000 + i))
        rows += [f"j{i}.mid,jazz,{performer}", f"f{i}.mid,folk,"]
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    corpus = load_corpus(root, cache_dir=cache_dir, progress=False, workers=2)
    assert len(corpus) == 80
    for g in {g for g in corpus.groups if g}:
        assert len({int(s) for s, gg in zip(corpus.split, corpus.groups) if gg == g}) == 1
    for positive in (True, False):
        counts = [len(corpus.indices(s, positive)) for s in data.SPLITS]
        assert all(c > 0 for c in counts) and counts[0] > counts[1]
    again = load_corpus(root, cache_dir=cache_dir, progress=False)
    np.testing.assert_array_equal(corpus.split, again.split)


@pytest.mark.parametrize("layout", ["missing", "flat", "bad-manifest"])
def test_bad_layouts_raise_one_line_errors(tmp_path, layout):
    if layout == "flat":
        write_midi(tmp_path / "a.mid", swing_line(0))
    if layout == "bad-manifest":
        (tmp_path / "manifest.csv").write_text("file,genre\na.mid,jazz\n")
    with pytest.raises(CorpusError) as err:
        data.find_entries(tmp_path / "nope" if layout == "missing" else tmp_path)
    assert "\n" not in str(err.value)


def test_missing_positive_label_is_an_error(tiny_corpus, cache_dir):
    with pytest.raises(CorpusError, match="positive label 'bebop'"):
        load_corpus(tiny_corpus, positive="bebop", cache_dir=cache_dir, progress=False)


def test_window_sampler_windows_start_on_note_boundaries_and_stay_in_range(tiny_corpus, cache_dir):
    corpus = load_corpus(tiny_corpus, cache_dir=cache_dir, progress=False, split_fractions=(1, 0, 0))
    sampler = windows.WindowSampler(corpus, "train", window=31, batch_size=64, seed=3, transpose=12)
    grammar = enc.Grammar(corpus.vocab)
    batch = sampler.batch(0)
    assert batch.tokens.shape == (64, 31)
    first_types = corpus.vocab.token_type[batch.tokens[:, 0]]
    assert set(first_types) <= {enc.T_BOS, enc.T_SHIFT}
    for row, mask in zip(batch.tokens, batch.mask):
        assert grammar.is_grammatical(row[mask], start_with_bos=row[0] == enc.BOS)
    # Transposition happened, and kept every pitch in range.
    pitches = corpus.vocab.token_value[batch.tokens][corpus.vocab.token_type[batch.tokens] == enc.T_PITCH]
    assert pitches.min() >= corpus.config.pitch_min and pitches.max() <= corpus.config.pitch_max
    plain = windows.WindowSampler(corpus, "train", 31, 64, seed=3, transpose=0).batch(0)
    assert (plain.tokens != batch.tokens).any()
    # Reproducible from (seed, step); other steps differ.
    np.testing.assert_array_equal(sampler.batch(0).tokens, batch.tokens)
    assert (sampler.batch(1).tokens != batch.tokens).any()


def test_balanced_sampling_evens_out_the_labels(tmp_path, cache_dir):
    for i in range(2):
        write_midi(tmp_path / "c" / "jazz" / f"j{i}.mid", swing_line(i))
    for i in range(10):
        write_midi(tmp_path / "c" / "folk" / f"f{i}.mid", straight_tune(i, n=96))
    corpus = load_corpus(tmp_path / "c", cache_dir=cache_dir, progress=False, split_fractions=(1, 0, 0))
    labels = windows.WindowSampler(corpus, "train", 24, 2000, seed=0).batch(0).labels
    assert 0.45 < labels.mean() < 0.55
    only = windows.WindowSampler(corpus, "train", 24, 200, seed=0, positive=True).batch(0).labels
    assert only.all()


def test_eval_windows_tile_files_without_overlap(tiny_corpus, cache_dir):
    corpus = load_corpus(tiny_corpus, cache_dir=cache_dir, progress=False)
    batch = windows.eval_windows(corpus, np.arange(len(corpus)), 30)
    assert set(batch.file_index) == set(range(len(corpus)))
    assert batch.mask.sum() <= len(corpus.tokens)


def test_data_inspect_reports_bad_files_and_exit_codes(tiny_corpus, tmp_path, monkeypatch):
    add_bad_files(tiny_corpus)
    monkeypatch.setenv("GANMUSIC_CACHE", str(tmp_path / "cache"))
    result = run_cli("data", "inspect", tiny_corpus, "--out", tmp_path / "out", "--json")
    assert result.returncode == 0, result.stderr
    import json

    report = json.loads(result.stdout)
    assert report["usable_files"] == 12 and report["skipped_files"] == 5
    assert (tmp_path / "out" / "corpus-inspect.png").stat().st_size > 1000

    bad_only = tmp_path / "bad"
    (bad_only / "jazz").mkdir(parents=True)
    (bad_only / "jazz" / "x.mid").write_bytes(b"")
    result = run_cli("data", "inspect", bad_only, "--out", tmp_path / "out2")
    assert result.returncode == 1 and "no usable MIDI file" in result.stderr
    assert "Traceback" not in result.stderr

    result = run_cli("data", "inspect", tmp_path / "missing")
    assert result.returncode == 2 and "no such file or folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_real_corpus_is_fully_accounted_for(real_corpus, real_corpus_path):
    manifest_rows = len((real_corpus_path / "manifest.csv").read_text().strip().splitlines()) - 1
    assert len(real_corpus) + len(real_corpus.skipped) == manifest_rows == 1218
    assert all(reason.startswith("duplicate of") for _, reason in real_corpus.skipped)
    # No performer in two splits.
    for g in {g for g in real_corpus.groups if g}:
        assert len({int(s) for s, gg in zip(real_corpus.split, real_corpus.groups) if gg == g}) == 1
    for split in data.SPLITS:
        assert len(real_corpus.indices(split, positive=True)) >= 20


def test_data_inspect_writes_its_report_under_reports_not_the_current_folder(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("GANMUSIC_CACHE", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    result = run_cli("data", "inspect", tiny_corpus, cwd=work)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in work.iterdir()) == ["reports"]
    assert sorted(p.name for p in (work / "reports").iterdir()) == ["corpus-inspect.json", "corpus-inspect.png"]
    assert "report: reports/corpus-inspect.json" in result.stderr
