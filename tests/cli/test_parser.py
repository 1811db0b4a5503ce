"""The command line itself: help, examples, exit codes, ``--version``, ``python -m``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hookshield
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


def test_python_dash_m_runs_main() -> None:
    # A process of its own, as a user runs it: inside pytest, hookshield's modules load
    # through pytest's assertion-rewriting import hook (hookshield ships a pytest
    # plugin), which runpy cannot run a module from.
    package_root = str(Path(hookshield.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    ran = subprocess.run(
        [sys.executable, "-m", "hookshield", "demo", "--json"],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["ok"] is True
