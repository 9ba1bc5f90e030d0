"""The `tlgen` command line: help, exit codes, user errors."""

import subprocess
import sys

import pytest

from tlgen.cli import main as cli


def test_every_subcommand_has_help_with_examples(capsys):
    for name in cli.COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            cli.main([name, "--help"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert f"usage: tlgen {name}" in out and "Examples:" in out and "tlgen " + name in out


def test_unbuilt_family_exits_2_with_one_sentence(capsys):
    assert cli.main(["generate", "--frames", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tlgen generate: error:") and "not built yet" in err
    assert len(err.splitlines()) == 1


def test_config_overrides_rejected_where_not_accepted(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["generate", "--config.seed=1"])
    assert exit_info.value.code == 2
    assert "takes no --config" in capsys.readouterr().err


def test_console_script_runs_as_module():
    done = subprocess.run([sys.executable, "-m", "tlgen", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for name in cli.COMMANDS:
        assert name in done.stdout
    done = subprocess.run([sys.executable, "-m", "tlgen", "nosuch"], capture_output=True, text=True)
    assert done.returncode == 2 and "invalid choice" in done.stderr
