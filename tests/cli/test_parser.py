"""The command line itself: help, examples, exit codes, ``--version``, ``python -m``."""

from __future__ import annotations

import json
import runpy
import sys

import pytest

from hookshield.cli import main
from tests.cli.helpers import run


@pytest.mark.parametrize("command", ["sign", "verify", "send", "listen", "demo"])
def test_every_subcommand_has_help_with_examples(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"hookshield {command}" in out


def test_top_level_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out
    assert "NO_COLOR" in out
    for command in ("sign", "verify", "send", "listen", "demo"):
        assert command in out


def test_no_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_unknown_provider_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sign", "-p", "gitlab", "--secret", "s"])
    assert exit_info.value.code == 2
    assert "moonsense" in capsys.readouterr().err


def test_version_through_python_dash_m() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("hookshield ")


def test_python_dash_m_runs_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["hookshield", "demo", "--json"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("hookshield", run_name="__main__")
    assert exit_info.value.code == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
