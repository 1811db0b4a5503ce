"""Routes typed with their sender's event class type-check, and keep their own type.

Two checks of one promise.  The routes at the top of this module are checked by
``mypy --strict`` with the rest of the tests (the typecheck session); the tests below
run mypy itself on small programs (mypy is in the test group), so that a regression
fails here, by name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import hookshield
from hookshield import Event, MindPeekerEvent, MocoEvent, WebhookHandler
from hookshield.testing import sample_delivery

ROOT = Path(__file__).resolve().parent.parent
TYPING_PAGE = ROOT / "docs" / "typing.md"

mindpeeker = WebhookHandler("mindpeeker", secret="whsec_typing")
moco = WebhookHandler("moco", secret="0123456789abcdef0123456789abcdef")
seen: list[str | None] = []


@mindpeeker.on("session.completed")
def completed(event: MindPeekerEvent) -> None:
    seen.append(event.session_id)


@mindpeeker.on("*")
def every(event: Event) -> None:
    seen.append(event.type)


@moco.on("invoice.*")
async def invoice(event: MocoEvent) -> None:
    seen.append(str(event.entity_id))


@mindpeeker.on_error
def failed(error: Exception, event: MindPeekerEvent) -> None:
    seen.append(event.session_id)


def test_typed_routes_are_registered_and_called_unchanged() -> None:
    seen.clear()
    body, headers = sample_delivery("mindpeeker", "session.completed", secret="whsec_typing")
    assert mindpeeker.handle(body, headers).status == 200
    assert seen == ["sess_123456789", "session.completed"]
    assert completed.__name__ == "completed"  # the function itself, not a wrapper


# -- mypy itself ---------------------------------------------------------------------


TYPED = """
from typing import Any

from hookshield import (
    Event, GitHubEvent, MindPeekerEvent, MocoEvent, MomentumEvent, MoonsenseEvent,
    PetalEvent, StandardWebhooksEvent, WebhookHandler,
)
from hookshield.mindpeeker import WebhookHandler as MindPeekerSDK

mindpeeker = WebhookHandler("mindpeeker", secret="s")


@mindpeeker.on("session.completed")
def completed(event: MindPeekerEvent) -> None:
    print(event.session_id)


@mindpeeker.on("*", inline=True)
def every(event: Event) -> None:
    print(event.type)


@WebhookHandler("moonsense", secret="s").on("session.created")
def moonsense(event: MoonsenseEvent) -> None:
    print(event.session_id)


@WebhookHandler("petal", token="t").on("blink")
def petal(event: PetalEvent) -> None:
    print(event.device_id)


@WebhookHandler("moco", secret="s").on("activity.*")
async def moco(event: MocoEvent) -> None:
    print(event.entity_id)


@WebhookHandler("momentum", token="t").on("bounce")
def momentum(event: MomentumEvent) -> int:
    return event.bounce_class or 0


@WebhookHandler("github", secret="s").on("issues.opened")
def github(event: GitHubEvent) -> None:
    print(event.repository)


@WebhookHandler("standard-webhooks", secret="whsec_c2VjcmV0").on("*")
def standard(event: StandardWebhooksEvent) -> None:
    print(event.message_id)


@mindpeeker.on_error
def failed(error: Exception, event: MindPeekerEvent) -> None:
    print(error, event.session_id)


@MindPeekerSDK("s").on("session.completed")
def sdk(event: MindPeekerEvent) -> None:
    print(event.session_id)


@mindpeeker.on("session.completed")
def loose(event: Any) -> None:
    print(event)


reveal_type(completed)
reveal_type(moco)
reveal_type(momentum)
reveal_type(failed)
reveal_type(sdk)
"""

WRONG = """
from hookshield import MindPeekerEvent, WebhookHandler

mindpeeker = WebhookHandler("mindpeeker", secret="s")
mindpeeker.on("session.completed")(42)


@mindpeeker.on("session.completed")
def two(event: MindPeekerEvent, other: MindPeekerEvent) -> None: ...


@mindpeeker.on_error
def hook(event: MindPeekerEvent) -> None: ...


@mindpeeker.on("session.started")
def nothing() -> None: ...
"""


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for this module's runs: hookshield is analysed once, not per program."""
    return tmp_path_factory.mktemp("mypy-cache")


def mypy_strict(tmp_path: Path, source: str, cache: Path) -> tuple[int, str]:
    """Run ``mypy --strict`` on ``source``; its exit status and report."""
    from mypy import api

    sample = tmp_path / "sample.py"
    sample.write_text(source, encoding="utf-8")
    # mypy finds the hookshield these tests import: a checkout's src/ by path, an
    # installed one among the site's packages (which MYPYPATH must not name).
    package_root = Path(hookshield.__file__).resolve().parent.parent
    env = {} if package_root.name == "site-packages" else {"MYPYPATH": str(package_root)}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        out, err, status = api.run(
            [
                "--strict",
                "--python-version",
                "3.10",
                "--config-file",
                "",  # the project's settings are for its own tree, not for a user's module
                "--cache-dir",
                str(cache),
                str(sample),
            ]
        )
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return status, out + err


def test_routes_typed_with_each_senders_event_class_pass_mypy_strict(
    tmp_path: Path, mypy_cache: Path
) -> None:
    status, report = mypy_strict(tmp_path, TYPED, mypy_cache)
    assert status == 0, report
    # mypy releases differ in whether they print "builtins." and "typing.".
    revealed = [
        re.sub(r"\b(builtins|typing|hookshield\.providers\.\w+)\.", "", found)
        for found in re.findall(r'Revealed type is "(.*)"', report)
    ]
    # Each decorator gives back the function with its own type, async included.
    assert revealed == [
        "def (event: MindPeekerEvent)",
        "def (event: MocoEvent) -> Coroutine[Any, Any, None]",
        "def (event: MomentumEvent) -> int",
        "def (error: Exception, event: MindPeekerEvent)",
        "def (event: MindPeekerEvent)",
    ], report


def test_what_is_not_a_route_is_a_type_error(tmp_path: Path, mypy_cache: Path) -> None:
    status, report = mypy_strict(tmp_path, WRONG, mypy_cache)
    assert status == 1
    lines = [line for line in report.splitlines() if ": error:" in line]
    assert [int(line.split(":")[1]) for line in lines] == [5, 8, 12, 16], report


def test_the_typing_page_passes_mypy_strict(tmp_path: Path, mypy_cache: Path) -> None:
    text = TYPING_PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)
    assert blocks, "docs/typing.md shows a typed route"
    for block in blocks:
        status, report = mypy_strict(tmp_path, block, mypy_cache)
        assert status == 0, report
