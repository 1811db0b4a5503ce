"""What the command prints: colour only on a terminal, never with NO_COLOR."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from hookshield.cli import main
from hookshield.cli._demo import demo_cases
from tests.cli.helpers import PY, TIMEOUT, clean_env, run


class FakeTerminal(io.StringIO):
    """A stdout that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("env", "coloured"),
    [({}, True), ({"NO_COLOR": "1"}, False), ({"TERM": "dumb"}, False)],
)
def test_colour_follows_the_terminal_and_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], coloured: bool
) -> None:
    monkeypatch.delenv("TERM", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert main(["demo"]) == 0
    assert ("\x1b[" in terminal.getvalue()) is coloured


def read_pty(argv: list[str], env: dict[str, str]) -> str:
    """Run ``argv`` with its stdout on a pseudo-terminal; what it wrote there."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdout=slave, stderr=subprocess.DEVNULL, env=env)
        os.close(slave)
        slave = -1
        chunks = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif proc.poll() is not None:
                break
        proc.wait(timeout=TIMEOUT)
        assert proc.returncode == 0
        return b"".join(chunks).decode()
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    coloured = read_pty([*PY, "demo"], clean_env(TERM="xterm"))
    assert "\x1b[32m" in coloured
    plain = read_pty([*PY, "demo"], clean_env(TERM="xterm", NO_COLOR="1"))
    assert f"all {len(demo_cases())} cases" in plain
    assert "\x1b[" not in plain
    piped = run("demo")
    assert piped.returncode == 0
    assert "\x1b[" not in piped.stdout
