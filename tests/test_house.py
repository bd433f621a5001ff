"""The house rules: the README's Python examples run, the import graph flows one way, configs
round-trip through JSON and refuse what they cannot hold, runs resume only as they may."""

import ast
import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest

from ganmusic import configs, runs
from ganmusic.configs import (AdvConfig, ClassifierConfig, EncodingConfig, GeneratorConfig, RunConfig,
                              SamplingConfig, TrainConfig)
from ganmusic.encoding import Vocab
from ganmusic.errors import ConfigError, GanmusicError

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "ganmusic"

# The data flow, bottom first: a module may import only modules of a lower rank (lazy imports
# inside functions included).
RANKS = {
    "errors": 0, "ui": 0, "jsontypes": 0, "midi_writer": 0,
    "configs": 1, "checkpoints": 1, "chord_symbols": 1, "corpusfiles": 1, "pretrained": 1, "tboard": 1,
    "encoding": 2,
    "chords": 3, "metrics": 3, "plots": 3, "democorpus": 3, "importers": 3,
    "lead_sheets": 4, "realism": 4, "eval_report": 4,
    "parsing": 5, "pieces": 5, "pitch_scores": 5, "changes": 5,
    "data": 6, "models": 6,
    "windows": 7, "sampling": 7,
    "mle": 8, "classify": 8, "runs": 8,
    "gan": 9, "songs": 9, "calibration": 9,
    "train": 10, "evaluate": 10,
    "demo": 11,
    "cli_common": 12, "cli_generator": 13, "cli": 14,
    "__main__": 15, "__init__": 15,
}


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "ganmusic":
                found |= {alias.name for alias in node.names}
            elif node.module.startswith("ganmusic."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("ganmusic.")}
    return found


def test_import_graph_flows_one_way():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules == set(RANKS), f"rank the new or removed modules: {modules ^ set(RANKS)}"
    upward = [(m, dep) for m in sorted(modules) for dep in sorted(imports_of(PACKAGE / f"{m}.py"))
              if RANKS[dep] >= RANKS[m]]
    assert not upward, f"modules importing one at or above their level: {upward}"
    # The rules the ranks encode, spelled out.
    for low, high in [("encoding", "models"), ("data", "models"), ("models", "data"), ("models", "checkpoints"),
                      ("configs", "encoding"), ("mle", "train"), ("gan", "train"), ("runs", "train")]:
        assert high not in imports_of(PACKAGE / f"{low}.py"), f"{low} imports {high}"


def test_the_command_imports_the_cli_only_when_it_runs():
    # Writer processes (spawned) re-run the `ganmusic` script: its import must stay light.
    import subprocess
    import sys
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"ganmusic": "ganmusic.__main__:main"}
    probe = ("import sys, ganmusic.__main__; print(sorted(m for m in ('jax', 'typer', 'rich', 'ganmusic.cli') "
             "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_no_module_over_400_lines():
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert max(sizes.values()) <= 420, sizes


def test_every_library_error_derives_from_one_base():
    import ganmusic.checkpoints
    import ganmusic.chord_symbols
    import ganmusic.classify
    import ganmusic.data
    import ganmusic.encoding
    import ganmusic.evaluate
    import ganmusic.importers

    for cls in (ganmusic.checkpoints.CheckpointError, ganmusic.classify.ClassifierError, ganmusic.data.CorpusError,
                ganmusic.encoding.MidiError, ganmusic.evaluate.EvaluateError, ganmusic.importers.SourceError,
                ganmusic.chord_symbols.ChordSymbolError, runs.RunError, ConfigError):
        assert issubclass(cls, GanmusicError), cls
    # Library messages do not name CLI flags: a notebook user typed none.
    flag = re.compile(r"""(?<![\w-])--[a-z][a-z-]+""")
    for path in PACKAGE.glob("*.py"):
        if path.stem.startswith("cli") or path.stem in ("demo", "__main__"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                text = ast.unparse(node.exc)
                assert not flag.search(text), f"{path.name}: {text}"


def tiny_run_config(data="corpus", **kw):
    gen = GeneratorConfig(vocab_size=Vocab(EncodingConfig()).size, layers=(16,), embed_dim=8)
    return RunConfig(**{**dict(data=data, generator=gen, window=24, batch_size=4, mle_steps=6), **kw})


def test_every_config_round_trips_through_json_and_refuses_unknown_keys():
    vocab = Vocab(EncodingConfig())
    run = tiny_run_config(adv=AdvConfig(steps=3, classifier="classifiers/x"))
    for config in (EncodingConfig(melody=True), ClassifierConfig.for_vocab(vocab, timing=False),
                   GeneratorConfig(vocab_size=vocab.size, layers=(8, 4)), SamplingConfig(top_k=3),
                   TrainConfig(steps=7), AdvConfig(steps=2, classifier="c"), run):
        d = json.loads(json.dumps(config.to_dict() if hasattr(config, "to_dict") else dataclasses.asdict(config)))
        back = type(config).from_dict(d) if hasattr(type(config), "from_dict") else \
            configs.config_from_dict(type(config), d, "test")
        assert back == config
        with pytest.raises(ConfigError, match="unknown"):
            type(config).from_dict({**d, "typo": 1}) if hasattr(type(config), "from_dict") else \
                configs.config_from_dict(type(config), {**d, "typo": 1}, "test")
    d = run.to_dict()
    d["adv"]["lamda_adv"] = 0.5  # AdvConfig inside a run config is checked too
    with pytest.raises(ConfigError, match="lamda_adv"):
        RunConfig.from_dict(d)


@pytest.mark.parametrize("bad", [dict(window=0), dict(batch_size=0), dict(eval_every=0), dict(transpose=30),
                                 dict(optimizer="sgd"), dict(weight_decay=0.1), dict(clip=-1)])
def test_run_config_refuses_values_out_of_range(bad):
    with pytest.raises(ConfigError):
        tiny_run_config(**bad)


@pytest.mark.parametrize("bad", [dict(motif_span=4), dict(motif_span=65), dict(pitch_memory=65), dict(register_span=65)])
def test_generator_config_refuses_score_spans_out_of_range(bad):
    vocab = Vocab(EncodingConfig())
    assert GeneratorConfig.for_vocab(vocab).motif_span == 32  # new runs score motifs
    with pytest.raises(ConfigError, match=next(iter(bad))):
        GeneratorConfig.for_vocab(vocab, **bad)
    with pytest.raises(ConfigError, match="need pitch_tokens"):  # no pitch tokens: nothing to score motifs on
        GeneratorConfig(vocab_size=vocab.size, motif_span=16)


def test_weight_decay_saved_is_what_ran():
    assert tiny_run_config(optimizer="adamw").weight_decay == 1e-4
    assert tiny_run_config(optimizer="adamw", weight_decay=0.0).weight_decay == 0.0
    assert tiny_run_config().weight_decay == 0.0
    import optax

    from ganmusic.mle import make_optimizer

    params = {"w": __import__("jax").numpy.ones(3)}
    for decay in (0.0, 0.5):  # the decay given is the decay applied
        opt = make_optimizer("adamw", 0.1, weight_decay=decay)
        updates, _ = opt.update({"w": params["w"] * 0}, opt.init(params), params)
        expected = optax.adamw(0.1, weight_decay=decay).update({"w": params["w"] * 0},
                                                                optax.adamw(0.1, weight_decay=decay).init(params),
                                                                params)[0]
        assert float(abs(updates["w"] - expected["w"]).max()) == 0.0
        assert (float(updates["w"][0]) < 0) == (decay > 0)


def test_defaults_have_one_source():
    assert ClassifierConfig(vocab_size=10).hidden == 64  # what `ganmusic train-classifier` trained with
    assert configs.default(RunConfig, "adv.lambda_adv") == AdvConfig().lambda_adv
    assert configs.default(RunConfig, "window") == 256
    from typer.main import get_command

    from ganmusic import calibration, cli, cli_common, cli_generator

    command = get_command(cli.app)
    defaults = {p.name: p.default for p in command.commands["train-gan"].params}
    for param, field in cli_generator.RUN_FIELDS.items():
        if field in ("data", "generator.layers", "adv.classifier", "init_from"):
            continue
        assert defaults[param] == configs.default(RunConfig, field) if "." not in field or field.startswith("adv.") \
            else True, param
    assert defaults["embed_dim"] == configs.default(GeneratorConfig, "embed_dim")
    assert defaults["calibrate"] == cli_common.param_default(calibration.calibrate, "rounds")
    assert defaults["layers"] == ",".join(map(str, configs.default(GeneratorConfig, "layers")))
    clf = {p.name: p.default for p in command.commands["train-classifier"].params}
    assert clf["hidden"] == ClassifierConfig(vocab_size=10).hidden and clf["window"] == TrainConfig().window


def test_resume_honours_changeable_settings_and_names_the_others():
    saved = tiny_run_config()
    assert runs.resumed(saved, None) == saved
    more = dataclasses.replace(saved, mle_steps=20, eval_every=2)
    assert runs.resumed(saved, more) == more
    with pytest.raises(runs.RunError, match="cannot resume with different window, lr"):
        runs.resumed(saved, dataclasses.replace(saved, lr=1.0, window=48))
    adv = tiny_run_config(adv=AdvConfig(steps=4, classifier="c"))
    with pytest.raises(runs.RunError, match="adv.steps"):  # adding a phase is a new run
        runs.resumed(saved, adv)
    assert runs.resumed(adv, configs.replace(adv, {"adv.steps": 9})).adv.steps == 9
    with pytest.raises(runs.RunError, match="mle_steps"):  # the MLE phase of a GAN run is fixed
        runs.resumed(adv, configs.replace(adv, {"mle_steps": 9}))


def test_a_run_folder_of_the_old_layout_says_retrain(tmp_path):
    d = tiny_run_config().to_dict()
    d["format"] = "ganmusic-run/1"
    (tmp_path / "config.json").write_text(json.dumps(d))
    with pytest.raises(runs.RunError, match="retrain it"):
        runs.restore_params(str(tmp_path), "best")


def readme_python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Python API"):]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_python_examples_run(tmp_path, monkeypatch):
    """The README's API examples, on a small synthetic corpus and tiny models: only sizes are
    substituted (each substitution must find its text, so the examples cannot drift away)."""
    from ganmusic import democorpus

    use, training = readme_python_blocks()
    corpus = democorpus.build_demo_corpus(tmp_path / "corpus", files_per_class=30, seed=0)
    monkeypatch.setenv("GANMUSIC_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    shutil.copy(next((corpus / "jazz").glob("*.mid")), tmp_path / "my_song.mid")
    sizes = {
        '"../shared/data/jazz-vs-folk"': repr(str(corpus)),
        "TrainConfig(steps=1500)": "TrainConfig(steps=10, window=24, batch_size=8, warmup=2)",
        "ClassifierConfig.for_vocab(corpus.vocab)": "ClassifierConfig.for_vocab(corpus.vocab, hidden=8, layers=2)",
        "GeneratorConfig.for_vocab(corpus.vocab)":
            "GeneratorConfig.for_vocab(corpus.vocab, layers=(16,), embed_dim=8), window=24, mle_steps=4, "
            "batch_size=4, eval_every=2, lr=5e-3",  # the tiny generator of the other tests (compiled once)
        "num=64": "num=4",
        "length=384": "length=48",
    }
    for block in (training, use):
        for old, new in sizes.items():
            block = block.replace(old, new)
        exec(compile(block, "README.md", "exec"), {})
    for old in sizes:
        assert old in training + use, f"README no longer says {old}"
    assert (tmp_path / "song.mid").stat().st_size > 0
    assert len(json.loads((tmp_path / "songs" / "summary.json").read_text())["samples"]) == 2
    assert (tmp_path / "eval" / "report.json").is_file()
    assert json.loads((tmp_path / "reports" / "corpus-inspect.json").read_text())["usable_files"] == 60
    assert (tmp_path / "reports" / "corpus-inspect.png").stat().st_size > 1000


def test_range_checks_live_in_the_library_and_the_cli_says_them_in_one_line(tmp_path):
    from conftest import run_cli
    from ganmusic import evaluate, importers

    (tmp_path / "songs").mkdir()
    with pytest.raises(evaluate.EvaluateError, match="num=0"):
        evaluate.evaluate([tmp_path / "songs"], tmp_path / "eval", against=tmp_path / "songs", num=0)
    with pytest.raises(evaluate.EvaluateError, match="length=12"):
        evaluate.evaluate([tmp_path / "songs"], tmp_path / "eval", against=tmp_path / "songs", length=12)
    with pytest.raises(ConfigError, match="tempo"):
        importers.import_weimar(tmp_path / "songs", tmp_path / "out", tempo=0.0)
    for args in (["evaluate", tmp_path / "songs", "--against", tmp_path / "songs", "--num", "0", "--out", tmp_path / "eval"],
                 ["data", "weimar", tmp_path / "songs", tmp_path / "out", "--tempo", "5"]):
        result = run_cli(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "eval").exists() and not (tmp_path / "out").exists()
