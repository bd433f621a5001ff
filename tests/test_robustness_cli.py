"""Hostile configs and options: damaged classifier and run `config.json`s, out-of-range and
non-finite options, escaping names, bad primers, odd file names, what goes to stdout.

As in test_robustness.py: no traceback, one `error:` line naming the file or option, the
documented exit code, and the good inputs of the same call still processed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import TINY_CLASSIFIER, TINY_GAN, make_tiny_corpus, run_cli, swing_line, write_midi
from test_robustness import assert_no_traceback, assert_one_line_error, error_lines


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A tiny corpus, classifier and generator run, made with the commands a user types."""
    cwd = tmp_path_factory.mktemp("cli")
    make_tiny_corpus(cwd / "corpus")
    result = run_cli("train-classifier", "corpus", "--name", "tiny", *TINY_CLASSIFIER, cwd=cwd)
    assert result.returncode == 0, result.stderr
    result = run_cli("train-gan", "corpus", "--name", "tiny", *TINY_GAN, "--mle-steps", "4", "--eval-every", "2",
                     "--checkpoint-every", "2", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return cwd


# ---------------------------------------------------------------------------------------------
# Classifier config.json
# ---------------------------------------------------------------------------------------------


def set_key(path: str, value):
    def mutate(config):
        *parents, last = path.split(".")
        node = config
        for p in parents:
            node = node[p]
        node[last] = value
        return config
    return mutate


def drop_key(key: str):
    def mutate(config):
        del config[key]
        return config
    return mutate


CLASSIFIER_CONFIGS = {
    "top_level_list": lambda c: [],
    "top_level_null": lambda c: None,
    "top_level_number": lambda c: 3,
    "missing_window": drop_key("window"),
    "missing_threshold": drop_key("threshold"),
    "missing_positive": drop_key("positive"),
    "missing_model": drop_key("model"),
    "window_zero": set_key("window", 0),
    "window_negative": set_key("window", -5),
    "window_huge": set_key("window", 10**7),
    "window_float": set_key("window", 24.5),
    "window_bool": set_key("window", True),
    "threshold_string": set_key("threshold", "high"),
    "threshold_null": set_key("threshold", None),
    "threshold_above_one": set_key("threshold", 2.0),
    "threshold_nan": set_key("threshold", float("nan")),
    "empty_positive": set_key("positive", ""),
    "model_list": set_key("model", []),
    "hidden_string": set_key("model.hidden", "16"),
    "hidden_huge": set_key("model.hidden", 10**6),
    "embed_dim_zero": set_key("model.embed_dim", 0),
    "dropout_string": set_key("model.dropout", "0.1"),
    "encoding_melody_string": set_key("encoding.melody", "yes"),
    "encoding_steps_string": set_key("encoding.steps_per_beat", "12"),
    "encoding_null": set_key("encoding", None),
}


@pytest.mark.parametrize("case", sorted(CLASSIFIER_CONFIGS))
def test_bad_classifier_config_is_one_line_naming_it(work, tmp_path, case):
    broken = tmp_path / "broken"
    shutil.copytree(work / "classifiers" / "tiny", broken)
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps(CLASSIFIER_CONFIGS[case](config)))
    result = run_cli("score", work / "corpus" / "jazz" / "swing0.mid", "--classifier", broken, "--json")
    assert_one_line_error(result, broken / "config.json")
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("content", [b"", b"{", b"\xff\xfe{}", b"[1, 2"], ids=["zero_bytes", "cut_json",
                                                                                "not_utf8", "cut_list"])
def test_unreadable_classifier_config_is_one_line(work, tmp_path, content):
    broken = tmp_path / "broken"
    shutil.copytree(work / "classifiers" / "tiny", broken)
    (broken / "config.json").write_bytes(content)
    result = run_cli("score", work / "corpus" / "jazz" / "swing0.mid", "--classifier", broken)
    assert_one_line_error(result, broken / "config.json")


# ---------------------------------------------------------------------------------------------
# Run config.json and run checkpoints
# ---------------------------------------------------------------------------------------------

RUN_CONFIGS = {
    "top_level_list": lambda c: [],
    "embed_dim_string": set_key("generator.embed_dim", "16"),
    "generator_list": set_key("generator", []),
    "layers_string": set_key("generator.layers", "16"),
    "layers_huge": set_key("generator.layers", [10**6]),
    "lr_negative": set_key("lr", -1),
    "lr_string": set_key("lr", "fast"),
    "window_huge": set_key("window", 10**8),
    "melody_string": set_key("encoding.melody", "yes"),
    "seed_string": set_key("seed", "0"),
    "missing_generator": lambda c: {k: v for k, v in c.items() if k != "generator"},
}


@pytest.mark.parametrize("case", sorted(RUN_CONFIGS))
def test_bad_run_config_is_one_line_naming_it(work, tmp_path, case):
    broken = tmp_path / "run"
    shutil.copytree(work / "runs" / "tiny", broken)
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps(RUN_CONFIGS[case](config)))
    result = run_cli("sample", broken, "--num", 1, "--length", 12, "--out", tmp_path / "out")
    assert_one_line_error(result, broken / "config.json")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", ["zero_byte_manifest", "flipped_bytes"])
def test_damaged_run_best_checkpoint_is_refused(work, tmp_path, damage):
    broken = tmp_path / "run"
    shutil.copytree(work / "runs" / "tiny", broken)
    (step,) = [p for p in (broken / "best").iterdir() if p.name.isdigit()]
    if damage == "zero_byte_manifest":
        (step / "default" / "manifest.ocdbt").write_bytes(b"")
    else:
        for f in sorted((step / "default").rglob("d/*")):
            data = bytearray(f.read_bytes())
            data[len(data) // 2] ^= 0xFF
            f.write_bytes(bytes(data))
    result = run_cli("sample", broken, "--num", 1, "--length", 12, "--out", tmp_path / "out")
    assert_one_line_error(result, step.resolve())
    assert len(result.stderr.strip().splitlines()) == 1  # no orbax asyncio traceback after it


# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------

SAMPLE_OPTIONS = {
    "seed_overflow": (["--seed", str(2**64)], "seed"),
    "seed_negative_overflow": (["--seed", str(-2**64)], "seed"),
    "temperature_inf": (["--temperature", "inf"], "temperature"),
    "temperature_nan": (["--temperature", "nan"], "temperature"),
    "top_p_nan": (["--top-p", "nan"], "top_p"),
    "repetition_penalty_inf": (["--repetition-penalty", "inf"], "repetition_penalty"),
    "length_absurd": (["--length", "100000000"], "length"),
    "num_absurd": (["--num", "100000000"], "num"),
    "bars_absurd": (["--bars", "10000000"], "bars"),
    "checkpoint_unknown": (["--checkpoint", "banana"], "banana"),
}


@pytest.mark.parametrize("case", sorted(SAMPLE_OPTIONS))
def test_out_of_range_sample_option_is_one_line_naming_it(work, tmp_path, case):
    args, name = SAMPLE_OPTIONS[case]
    result = run_cli("sample", work / "runs" / "tiny", "--num", 1, "--length", 12, *args, "--out", tmp_path / "out")
    assert_one_line_error(result, name)
    assert not list((tmp_path / "out").glob("*.mid")) if (tmp_path / "out").exists() else True


def test_sample_out_that_is_a_file_is_one_line(work, tmp_path):
    existing = tmp_path / "existing.txt"
    existing.write_text("keep me")
    result = run_cli("sample", work / "runs" / "tiny", "--num", 1, "--length", 12, "--out", existing)
    assert_one_line_error(result, existing)
    assert existing.read_text() == "keep me"


def bad_primers(tmp_path: Path) -> dict[str, Path]:
    text = tmp_path / "text.mid"
    text.write_text("not midi")
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    drums = write_midi(tmp_path / "drums.mid", [(i, 0.5, 38) for i in range(8)], drum=True)
    fifo = tmp_path / "fifo.mid"
    os.mkfifo(fifo)
    return {"missing": tmp_path / "missing.mid", "text": text, "empty": empty, "drums_only": drums,
            "fifo": fifo, "device": Path("/dev/zero"), "folder": tmp_path}


@pytest.mark.parametrize("case", ["missing", "text", "empty", "drums_only", "fifo", "device", "folder"])
def test_bad_primer_is_one_line_naming_the_file(work, tmp_path, case):
    primer = bad_primers(tmp_path)[case]
    result = run_cli("sample", work / "runs" / "tiny", "--num", 1, "--length", 12, "--primer", primer,
                     "--out", tmp_path / "out")
    assert_one_line_error(result, primer)


GAN_OPTIONS = {
    "name_escapes_root": (["--name", "../escaped_run"], "--name"),
    "name_absolute": (["--name", "/tmp/abs_run"], "--name"),
    "name_dotdot": (["--name", ".."], "--name"),
    "name_hidden": (["--name", ".hidden"], "--name"),
    "name_empty": (["--name", ""], "--name"),
    "lr_negative": (["--lr", "-1"], "lr"),
    "lr_nan": (["--lr", "nan"], "lr"),
    "lr_inf": (["--lr", "inf"], "lr"),
    "adv_lr_nan": (["--adv-lr", "nan", "--adv-steps", "2", "--classifier", "classifiers/tiny"], "lr"),
    "lambda_adv_nan": (["--lambda-adv", "nan"], "lambda_adv"),
    "seed_overflow": (["--seed", str(2**64)], "seed"),
    "window_absurd": (["--window", "100000000"], "window"),
    "layers_absurd": (["--layers", "100000000"], "layers"),
}


@pytest.mark.parametrize("case", sorted(GAN_OPTIONS))
def test_out_of_range_train_gan_option_is_one_line_naming_it(work, case):
    args, name = GAN_OPTIONS[case]
    before = sorted(p.name for p in work.parent.iterdir())
    result = run_cli("train-gan", "corpus", "--layers", "16", "--embed-dim", "8", "--window", "24", "--batch-size", "4",
                     "--mle-steps", "2", "--name", f"opt-{case}", *args, cwd=work)
    assert_one_line_error(result, name)
    assert not (work / "runs" / f"opt-{case}").exists() or case.startswith("name")
    assert sorted(p.name for p in work.parent.iterdir()) == before  # nothing written outside --root


CLASSIFIER_OPTIONS = {
    "lr_nan": (["--lr", "nan"], "lr"),
    "lr_negative": (["--lr", "-1"], "lr"),
    "name_escapes_root": (["--name", "../escaped"], "--name"),
    "seed_overflow": (["--seed", str(2**64)], "seed"),
    "positive_empty": (["--positive", ""], "positive"),
}


@pytest.mark.parametrize("case", sorted(CLASSIFIER_OPTIONS))
def test_out_of_range_train_classifier_option_is_one_line_naming_it(work, case):
    args, name = CLASSIFIER_OPTIONS[case]
    result = run_cli("train-classifier", "corpus", "--window", "24", "--steps", "2", "--batch-size", "8",
                     "--hidden", "8", "--layers", "2", *args, cwd=work)
    assert_one_line_error(result, name)
    assert not list((work / "classifiers").glob(".*partial"))


# ---------------------------------------------------------------------------------------------
# File names and streams
# ---------------------------------------------------------------------------------------------


def test_score_windows_with_a_non_utf8_file_name_still_reports_every_file(work, tmp_path):
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9-\xff.mid"))
    write_midi(odd, swing_line(4))
    good = work / "corpus" / "jazz" / "swing1.mid"
    result = run_cli("score", good, odd, "--classifier", work / "classifiers" / "tiny", "--windows",
                     "--out", tmp_path / "timelines", "--csv")
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and any(line.startswith(str(good)) for line in lines)
    assert any("caf" in line for line in lines[1:])
    assert len(list((tmp_path / "timelines").glob("*-timeline.png"))) == 2


def test_data_inspect_prints_its_tables_on_stdout_without_cutting_names(work, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(work / "corpus", corpus)
    long_name = "a-file-with-a-rather-long-name-that-a-narrow-table-would-cut-" + "x" * 60 + ".mid"
    (corpus / "jazz" / long_name).write_text("not midi")
    result = run_cli("data", "inspect", corpus, "--out", tmp_path / "report")
    assert result.returncode == 0, result.stderr
    assert "not_jazz" in result.stdout and long_name in result.stdout
    assert "not_jazz" not in result.stderr


def test_score_names_with_markup_or_too_long_for_a_timeline_are_reported_not_fatal(work, tmp_path):
    markup = write_midi(tmp_path / "[bold red]loud[/].mid", swing_line(5))
    long_name = write_midi(tmp_path / ("n" * 250 + ".mid"), swing_line(6))  # stem + "-timeline.png" > 255 bytes
    good = work / "corpus" / "jazz" / "swing1.mid"
    result = run_cli("score", markup, long_name, good, "--classifier", work / "classifiers" / "tiny", "--windows",
                     "--out", tmp_path / "timelines")
    assert result.returncode == 1  # documented: 1 when any file failed
    assert_no_traceback(result)
    assert "[bold red]loud[/].mid" in result.stdout and good.name in result.stdout
    (line,) = error_lines(result)
    assert str(long_name) in line and "timeline PNG" in line
    assert len(list((tmp_path / "timelines").glob("*-timeline.png"))) == 2
