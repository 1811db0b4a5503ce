"""tests/servers.py, which every test and benchmark starts its servers through."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from . import servers


def test_a_server_is_served_until_the_block_ends_then_stopped_with_its_children(
    tmp_path: Path,
) -> None:
    # A parent that starts a child and serves HTTP: both must be gone after the block,
    # as a gunicorn master and its workers must.
    port = servers.free_port()
    script = (
        "import subprocess, sys, http.server\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        f"http.server.ThreadingHTTPServer(('127.0.0.1', {port}), "
        "http.server.SimpleHTTPRequestHandler).serve_forever()\n"
    )
    output = tmp_path / "server.out"
    with servers.serving([sys.executable, "-c", script], port=port, output=output) as process:
        assert servers.accepts_connections(port)
        child = int(output.read_text().split()[0])
        assert _running(child)
    assert process.poll() is not None
    assert not servers.accepts_connections(port)
    deadline = time.monotonic() + 5  # signalled with its parent; it may take a moment
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _running(child)


def _running(pid: int) -> bool:
    """Whether ``pid`` runs: a process ended but not yet reaped by its new parent does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_a_server_that_exits_is_reported_with_its_output(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; sys.exit('no such app: hooks:app')"]
    with (
        pytest.raises(servers.ServerDidNotStart, match=r"exited \(1\):\n.*no such app"),
        servers.serving(argv, port=servers.free_port(), output=tmp_path / "server.out"),
    ):
        pytest.fail("the block must not run")
