"""The observability page's gunicorn sample, run as written: metrics added up across workers.

The page's ``gunicorn.conf.py`` and app (docs/observability.md, "gunicorn's
multi-process mode") are taken from the page itself and served by ``gunicorn -w 2``
with ``PROMETHEUS_MULTIPROC_DIR`` set, as the page says to run them.  Deliveries go to
either worker; one scrape must count them all, and read the inbox.
"""

from __future__ import annotations

import concurrent.futures
import json
import sys
import urllib.request
from pathlib import Path

from hookshield.testing import sample_body, sign

from .. import servers
from ..test_docs import ROOT, blocks
from .test_durable import Processes, processes, wait_for

__all__ = ["processes"]  # the fixture, used by name

SECRET = "gunicorn-metrics-secret"
PAGE = ROOT / "docs" / "observability.md"


def page_samples() -> tuple[str, str]:
    """The page's gunicorn.conf.py and its app, as a reader copies them."""
    python = blocks(PAGE, "python")
    (config,) = [block.code for block in python if "def child_exit" in block.code]
    (app,) = [block.code for block in python if "MultiProcessCollector" in block.code]
    return config, app


def booted(folder: Path) -> int:
    """How many workers gunicorn has said it booted."""
    output = folder / "gunicorn.out"
    return output.read_text(errors="replace").count("Booting worker") if output.exists() else 0


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text: str = answer.read().decode()
    return text


def sample(text: str, line_start: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(line_start + " ")]
    return float(line.rsplit(" ", 1)[1])


def test_the_pages_multi_process_setup_adds_up_every_workers_counts(
    tmp_path: Path, processes: Processes
) -> None:
    config, app = page_samples()
    (tmp_path / "gunicorn.conf.py").write_text(config, encoding="utf-8")
    (tmp_path / "app.py").write_text(app, encoding="utf-8")
    (tmp_path / "metrics").mkdir()
    env = servers.environment(
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        HOOKSHIELD_INBOX=str(tmp_path / "inbox.db"),
        MOCO_SECRET=SECRET,
    )
    env["PYTHONPATH"] = f"{tmp_path}:{env['PYTHONPATH']}"
    sock = servers.listening_socket()
    port: int = sock.getsockname()[1]
    argv = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--workers", "2"]
    argv += ["--bind", f"fd://{sock.fileno()}"]
    argv += ["--no-control-socket"] if servers.gunicorn_has_control_socket() else []
    process = processes.start([*argv, "app:app"], env, "gunicorn", (sock.fileno(),), tmp_path)
    sock.close()

    def ready() -> bool:
        try:
            return servers.accepts_connections(port) and "hookshield" in scrape(port)
        except OSError:
            return False

    servers.wait_until_ready(process, ready, output=tmp_path / "gunicorn.out")
    wait_for(lambda: booted(tmp_path) == 2, 30, "both gunicorn workers to boot")
    payload = json.loads(sample_body("moco", "activity.create"))
    sent = 0

    def deliver(number: int) -> int:
        body = json.dumps({**payload, "id": number}).encode()
        headers = sign("moco", body, secret=SECRET, event="activity.create")
        return servers.post(port, "/hooks/moco", body, headers, timeout=10)

    # Sixteen at a time, until both workers have served some (a sync worker serves one
    # request at a time, so both soon do): each writes its counts to a file of its own.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        while sent < 320 and len(list((tmp_path / "metrics").glob("counter_*.db"))) < 2:
            assert list(pool.map(deliver, range(sent, sent + 16))) == [200] * 16
            sent += 16
    assert len(list((tmp_path / "metrics").glob("counter_*.db"))) == 2
    body = json.dumps(payload).encode()
    forged = sign("moco", body, secret="not-the-secret", event="activity.create")
    for _ in range(3):
        assert servers.post(port, "/hooks/moco", body, forged, timeout=10) == 401

    text = scrape(port)
    accepted = 'hookshield_deliveries_total{outcome="accepted",sender="moco"}'
    refused = 'hookshield_refusals_total{reason="signature",sender="moco"}'
    # One scrape adds up both workers' counts, and reads the inbox.
    assert sample(text, accepted) == sent
    assert sample(text, refused) == 3
    assert sample(text, 'hookshield_inbox_deliveries{inbox="main",state="pending"}') == sent
