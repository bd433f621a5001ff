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
