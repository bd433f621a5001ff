"""What a newcomer reads: --help, --version, and output redirected to a file."""

import re
import subprocess
import sys

import pytest

from conftest import run_cli

BOX_DRAWING = re.compile("[\u2500-\u257f\u2580-\u259f]")
COMMANDS = [[], ["data"], ["data", "inspect"], ["data", "weimar"], ["train-classifier"], ["score"], ["train-gan"],
            ["sample"], ["evaluate"], ["demo"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "ganmusic")
def test_help_is_plain_and_consistent(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert not BOX_DRAWING.search(text), text
    assert "<bool>" not in text, text
    usage = next(line for line in text.splitlines() if line.startswith("Usage:"))
    placeholders = re.findall(r"[{\[]([A-Za-z_.]+)[}\]]", usage)
    assert all(p == p.upper() for p in placeholders), usage
    if "--name" in text:
        assert "default: built from the settings, e.g." in " ".join(text.split())


def test_version():
    from importlib.metadata import version

    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"ganmusic {version('ganmusic')}"


def test_every_command_takes_seed():
    from typer.main import get_command

    from ganmusic.cli import app

    def leaves(group, path=()):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from leaves(cmd, path + (name,))
            else:
                yield " ".join(path + (name,)), cmd

    missing = [name for name, cmd in leaves(get_command(app)) if "seed" not in {p.name for p in cmd.params}]
    assert not missing, missing


def test_usage_errors_redirected_to_a_file_are_plain_lines(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ganmusic", "train-gan", "x", "--bogus"], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert "No such option: --bogus" in result.stderr and not BOX_DRAWING.search(result.stderr), result.stderr


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_long_job_says_early_about_how_long_it_will_take(capsys):
    from ganmusic.ui import Estimate

    clock = FakeClock()
    guess = Estimate("training generator", total=2000, clock=clock)
    clock.now = 20.0  # the first step compiles
    assert guess.advance() is None
    said = []
    for _ in range(10):  # then 0.5 s a step: the rest takes 1000 s, about 17 minutes in all
        clock.now += 0.5
        said.append(guess.advance())
    line = next(s for s in said if s)
    assert line.startswith("training generator: about 17 minutes on this machine"), line
    assert sum(map(bool, said)) == 1 and capsys.readouterr().err.count("on this machine") == 1  # said once

    resumed = Estimate("training generator", total=2000, clock=clock)
    resumed.advance(1900)  # a resumed run starts at step 1900: 100 steps left
    for _ in range(12):
        clock.now += 0.5
        resumed.advance()
    assert "under a minute" in resumed.said
    quick = Estimate("parsing", total=3, clock=clock)
    for _ in range(3):
        clock.now += 1
        quick.advance()
    assert quick.said is None  # done before it could say anything useful


def test_help_warns_where_the_defaults_take_long():
    """train-gan's defaults take over 10 minutes on a 2-core CPU; its --help says so."""
    text = " ".join(run_cli("train-gan", "--help").stdout.split())
    assert "45 minutes or more on a 2-core CPU" in text and "pretrained default" in text


def test_a_second_command_loads_what_the_first_compiled(tmp_path):
    # On a GPU or TPU GANMUSIC_CACHE/xla keeps the compiled programs; the same sampling again
    # compiles nothing new and writes the same songs. Here (a CPU) the accelerator is pretended.
    import os
    from pathlib import Path

    run = Path(__file__).resolve().parent / "data" / "run_before_chords"
    pretend = ("import sys; from ganmusic import cli_common; cli_common.accelerator_plugin_installed = lambda: True; "
               "from ganmusic.cli import main; main()")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(GANMUSIC_CACHE=str(tmp_path / "cache"), JAX_PLATFORMS="cpu",
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")  # the tiny programs compile fast

    def sample(out: str, *command: str):
        return subprocess.run([*command, "sample", str(run), "--num", "2", "--length", "60", "--no-png",
                               "--out", str(tmp_path / out)], env=env, capture_output=True, text=True)

    # On the CPU alone nothing is kept (XLA rejects its own CPU programs on many x86 CPUs).
    assert sample("plain", sys.executable, "-m", "ganmusic").returncode == 0
    assert not (tmp_path / "cache" / "xla").exists()
    entries = []
    for out in ("a", "b"):
        assert sample(out, sys.executable, "-c", pretend).returncode == 0
        entries.append(sorted(p.name for p in (tmp_path / "cache" / "xla").iterdir()))
    assert entries[0] and any("sample" in name for name in entries[0]), entries[0]
    assert entries[1] == entries[0]
    for song in ("sample-000.mid", "sample-001.mid"):
        assert (tmp_path / "a" / song).read_bytes() == (tmp_path / "b" / song).read_bytes()
        assert (tmp_path / "plain" / song).read_bytes() == (tmp_path / "b" / song).read_bytes()
    # Where no cache folder can be made, the command compiles as without one, and says nothing.
    (tmp_path / "a-file").write_text("")
    env["GANMUSIC_CACHE"] = str(tmp_path / "a-file" / "cache")
    out = sample("c", sys.executable, "-c", pretend)
    assert out.returncode == 0 and "Warning" not in out.stderr, out.stderr
    assert (tmp_path / "c" / "sample-000.mid").read_bytes() == (tmp_path / "a" / "sample-000.mid").read_bytes()


def test_sample_lets_xla_take_gpu_memory_on_demand_unless_told_otherwise(tmp_path):
    """`sample` needs little device memory: XLA takes it as needed, not 75% of the card up front,
    unless an XLA_PYTHON_CLIENT_* variable says otherwise or JAX was imported first."""
    import os
    from pathlib import Path

    run = Path(__file__).resolve().parent / "data" / "run_before_chords"
    command = ("import os, sys\nfrom ganmusic.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
               "print(os.environ.get('XLA_PYTHON_CLIENT_PREALLOCATE'))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("XLA_PYTHON_CLIENT_")}

    def preallocate(**variables: str):
        out = subprocess.run([sys.executable, "-c", command, "sample", str(run), "--num", "1", "--length", "30",
                              "--no-png", "--out", str(tmp_path / f"s{len(os.listdir(tmp_path))}")],
                             env={**env, **variables}, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()[-1]

    assert preallocate() == "false"
    assert preallocate(XLA_PYTHON_CLIENT_MEM_FRACTION="0.5") == "None"
    assert preallocate(XLA_PYTHON_CLIENT_PREALLOCATE="true") == "true"
    command = "import jax\n" + command
    assert preallocate() == "None"


def test_an_accelerator_is_a_jax_plugin_unless_jax_platforms_says_cpu(monkeypatch):
    import importlib.metadata

    from ganmusic.cli_common import accelerator_plugin_installed

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: ["xla_cuda12"] if group == "jax_plugins" else [])
    for platforms, accelerator in ((None, True), ("cuda,cpu", True), ("cpu", False), ("CPU,", False)):
        if platforms is None:
            monkeypatch.delenv("JAX_PLATFORMS", raising=False)
        else:
            monkeypatch.setenv("JAX_PLATFORMS", platforms)
        assert accelerator_plugin_installed() == accelerator, platforms
