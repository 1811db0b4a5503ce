"""The README's "In production" sample, run as it says: gunicorn -w 2, then its worker command.

The sample is saved as ``myapp/hooks.py`` in a fresh directory, served by real gunicorn
workers with the README's arguments, and the README's ``hookshield worker`` command
then runs what they stored.  Every delivery acknowledged by either web worker must be
run: the web workers and the worker share one inbox, and one de-duplication store.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hookshield import SQLiteInbox
from hookshield.testing import sample_body, sign

from .. import servers
from ..test_docs import blocks
from .test_durable import Processes, processes, wait_for

pytestmark = pytest.mark.integration

__all__ = ["processes"]  # the fixture, shared with test_durable

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_from_the_dashboard"  # the README's


def section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def readme_sample() -> tuple[str, list[str], list[str]]:
    """The production sample's code, its gunicorn arguments and its worker command."""
    [code] = [b.code for b in blocks(ROOT / "README.md", "python") if "SQLiteInbox(" in b.code]
    assert code in section("In production")
    shown = [b.code for b in blocks(ROOT / "README.md", "sh") if b.code in section("In production")]
    # The commands as the section shows them: in a shell block, or in a comment of the
    # sample ("# and run the routes with: hookshield worker ...").
    commands = [
        shlex.split(os.path.expandvars(line), comments=True)
        for text in [*shown, code]
        for line in re.findall(r"^[^\n]*?((?:gunicorn|hookshield worker) [^`\n]*)$", text, re.M)
    ]
    gunicorn = next((c[1:] for c in commands if c[0] == "gunicorn"), ["-w", "2", "myapp.hooks:app"])
    [worker, *_] = [c[1:] for c in commands if c[:2] == ["hookshield", "worker"]]
    return code, gunicorn, worker


def signed(n: int) -> tuple[bytes, dict[str, str]]:
    payload = json.loads(sample_body("mindpeeker", "session.completed"))
    payload["id"] = f"evt_readme_{n:02d}"
    body = json.dumps(payload).encode()
    return body, sign("mindpeeker", body, secret=SECRET)


def test_the_production_sample_runs_every_delivery_behind_two_web_workers(
    tmp_path: Path, processes: Processes
) -> None:
    data = tmp_path / "data"
    env = {
        **os.environ,
        "HOOKSHIELD_DATA": str(data),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(tmp_path)]),
    }
    saved = os.environ.get("HOOKSHIELD_DATA")
    os.environ["HOOKSHIELD_DATA"] = str(data)  # what the README's commands expand
    try:
        code, gunicorn_args, worker_args = readme_sample()
    finally:
        if saved is None:
            del os.environ["HOOKSHIELD_DATA"]
        else:
            os.environ["HOOKSHIELD_DATA"] = saved
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "hooks.py").write_text(code)

    sock = servers.listening_socket()
    port: int = sock.getsockname()[1]
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"fd://{sock.fileno()}"]
    argv += ["--no-control-socket"] if servers.gunicorn_has_control_socket() else []
    web = processes.start(
        [*argv, *gunicorn_args], env, "gunicorn", pass_fds=(sock.fileno(),), cwd=tmp_path
    )
    sock.close()

    def ready() -> bool:
        if web.poll() is not None:
            pytest.fail(f"gunicorn exited:\n{processes.output('gunicorn')}")
        try:
            return servers.post(port, "/hooks/mindpeeker", b"", {}, timeout=5) == 401
        except OSError:
            return False

    wait_for(ready, 30, "gunicorn to serve")
    deliveries = [signed(n) for n in range(20)]
    with ThreadPoolExecutor(4) as pool:  # concurrent, so that both web workers answer
        statuses = list(
            pool.map(lambda d: servers.post(port, "/hooks/mindpeeker", *d, timeout=10), deliveries)
        )
    assert statuses == [200] * 20
    assert servers.post(port, "/hooks/mindpeeker", *deliveries[0], timeout=10) == 200  # a replay
    processes.kill(web)

    worker = processes.start(
        [sys.executable, "-m", "hookshield", *worker_args, "--burst"], env, "worker", cwd=tmp_path
    )
    assert worker.wait(60) == 0, processes.output("worker")
    # One inbox, where HOOKSHIELD_DATA says, holding every acknowledged delivery once,
    # and the README's worker command ran them all.
    assert SQLiteInbox(data / "webhooks.db").counts() == {
        "pending": 0,
        "leased": 0,
        "done": 20,
        "dead": 0,
    }
