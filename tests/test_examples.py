"""The runnable receivers in ``examples/`` work, each through its framework's test client."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from hookshield import Event, WebhookHandler
from hookshield.testing import sample_delivery

from .adapters.support import configure_django, wait_for, without_content_type

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ENVIRONMENT = {
    "MINDPEEKER_SECRET": "whsec_example",
    "MOCO_SECRET": "0123456789abcdef0123456789abcdef",
    "MOONSENSE_SECRET": "moonsense_example",
    "MOMENTUM_TOKEN": "token_example",
}


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


class Output:
    """What the example printed, gathered as it comes (handlers may run in a thread)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.text = ""

    def shows(self, words: str) -> bool:
        self.text += self.capsys.readouterr().out
        return words in self.text


@pytest.fixture
def output(capsys: pytest.CaptureFixture[str]) -> Output:
    return Output(capsys)


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def signed(provider: str, event: str, *, forge: bool = False) -> tuple[bytes, dict[str, str]]:
    option, name = {
        "mindpeeker": ("secret", "MINDPEEKER_SECRET"),
        "moco": ("secret", "MOCO_SECRET"),
        "moonsense": ("secret", "MOONSENSE_SECRET"),
        "momentum": ("token", "MOMENTUM_TOKEN"),
    }[provider]
    credential = "forged" if forge else ENVIRONMENT[name]
    if option == "token":
        return sample_delivery(provider, event, token=credential)
    return sample_delivery(provider, event, secret=credential)


def test_the_flask_example(output: Output) -> None:
    client = load("flask_app").app.test_client()
    body, headers = signed("mindpeeker", "session.completed")
    assert client.post("/hooks/mindpeeker", data=body, headers=headers).status_code == 200
    assert wait_for(lambda: output.shows("mindpeeker session.completed"))
    body, headers = signed("moco", "activity.create")
    response = client.post("/hooks/moco", data=body, headers=headers)
    assert response.get_json() == {"ok": True, "events": 1}
    assert output.shows("moco activity.create")
    body, headers = signed("moco", "activity.create", forge=True)
    assert client.post("/hooks/moco", data=body, headers=headers).status_code == 401


def test_the_fastapi_example(output: Output) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(load("fastapi_app").app)
    body, headers = signed("moco", "activity.create")
    response = client.post("/hooks/moco", content=body, headers=headers)
    assert response.json() == {"received": ["activity.create"]}
    body, headers = signed("mindpeeker", "session.started")
    response = client.post("/hooks/mindpeeker", content=body, headers=headers)
    assert response.json() == {"ok": True}
    assert output.shows("mindpeeker session.started")
    body, headers = signed("moco", "activity.create", forge=True)
    assert client.post("/hooks/moco", content=body, headers=headers).status_code == 401


def test_the_fastapi_example_refuses_in_one_shape() -> None:
    """Both webhook endpoints answer a refusal as FastAPI answers its own errors."""
    from fastapi.testclient import TestClient

    client = TestClient(load("fastapi_app").app)
    answers = {}
    for provider, event in (("moco", "activity.create"), ("mindpeeker", "session.started")):
        body, headers = signed(provider, event, forge=True)
        answers[provider] = client.post(f"/hooks/{provider}", content=body, headers=headers)
        body, headers = signed(provider, event)
        answers[f"{provider} as GET"] = client.get(f"/hooks/{provider}", headers=headers)
    answers["an unknown path"] = client.post("/hooks/nobody", content=b"{}")
    assert [a.status_code for a in answers.values()] == [401, 405, 401, 405, 404]
    for what, answer in answers.items():
        assert answer.headers["content-type"] == "application/json", what
        shape = answer.json()
        assert list(shape) == ["detail"], what
        assert isinstance(shape["detail"], str) and shape["detail"], what
    assert "signature does not match" in answers["moco"].json()["detail"]
    assert "signature does not match" in answers["mindpeeker"].json()["detail"]


def test_the_fastapi_example_lets_the_sender_retry_when_a_route_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failing @handler.on route gives 500, and the retry is dispatched, not a duplicate."""
    from fastapi.testclient import TestClient

    example = load("fastapi_app")
    mindpeeker: WebhookHandler = example.mindpeeker
    calls: list[str] = []

    @mindpeeker.on("session.completed")
    def flaky(event: Event) -> None:
        calls.append(event.type)
        if len(calls) == 1:
            raise RuntimeError("the database is away")

    client = TestClient(example.app, raise_server_exceptions=False)
    body, headers = signed("mindpeeker", "session.completed")
    assert client.post("/hooks/mindpeeker", content=body, headers=headers).status_code == 500
    assert client.post("/hooks/mindpeeker", content=body, headers=headers).status_code == 200
    assert calls == ["session.completed", "session.completed"]


def test_the_starlette_example(output: Output) -> None:
    from starlette.testclient import TestClient

    client = TestClient(load("starlette_app").app)
    assert client.get("/").text == "webhook receiver"
    body, headers = signed("momentum", "bounce")
    assert client.post("/hooks/momentum", content=body, headers=headers).status_code == 200
    assert output.shows("momentum bounce")
    body, headers = signed("moonsense", "session.created")
    assert client.post("/hooks/moonsense", content=body, headers=headers).status_code == 200
    assert output.shows("moonsense session.created")
    body, headers = signed("momentum", "bounce", forge=True)
    assert client.post("/hooks/momentum", content=body, headers=headers).status_code == 401


@pytest.fixture
def django_project(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The example project's settings, in force for one test."""
    configure_django()
    from django.test import override_settings

    monkeypatch.syspath_prepend(str(EXAMPLES / "django_project"))
    settings = importlib.import_module("webhooks_site.settings")
    # DATABASES cannot be overridden once connections exist; both configure none.
    values = {
        name: getattr(settings, name)
        for name in dir(settings)
        if name.isupper() and name != "DATABASES"
    }
    values["ALLOWED_HOSTS"] = [*values["ALLOWED_HOSTS"], "testserver"]
    try:
        with override_settings(**values):
            yield settings
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "webhooks_site"]:
            del sys.modules[name]


def test_the_django_example(django_project: ModuleType, output: Output) -> None:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)

    def post(url: str, body: bytes, headers: dict[str, str]) -> object:
        content_type, rest = without_content_type(headers)
        return client.post(url, data=body, content_type=content_type, headers=rest)

    body, headers = signed("moonsense", "session.created")
    assert post("/hooks/moonsense/", body, headers).status_code == 200  # type: ignore[attr-defined]
    assert output.shows("moonsense session.created")
    body, headers = signed("moco", "activity.create")
    response = post("/hooks/moco/", body, headers)
    assert json.loads(response.content) == {"ok": True, "events": 1}  # type: ignore[attr-defined]
    body, headers = signed("moco", "activity.create", forge=True)
    assert post("/hooks/moco/", body, headers).status_code == 401  # type: ignore[attr-defined]


def test_the_django_example_passes_djangos_checks() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=EXAMPLES / "django_project",
        env={**os.environ, **ENVIRONMENT},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


# -- how to run them ----------------------------------------------------------------

RUN_TEXTS = sorted(EXAMPLES.rglob("*.py"))


@pytest.mark.parametrize("path", RUN_TEXTS, ids=lambda path: str(path.relative_to(EXAMPLES)))
def test_the_servers_an_example_runs_on_are_installed_first(path: Path) -> None:
    """No extra installs a server: a page that runs one says to install it."""
    text = path.read_text(encoding="utf-8")
    run = set(re.findall(r"^\s*(?:``)?(gunicorn|uvicorn|hypercorn|waitress-serve)\b", text, re.M))
    installed = {
        name
        for line in re.findall(r"pip install [^\n]*", text)
        for name in ("gunicorn", "uvicorn", "hypercorn", "waitress-serve")
        if name.split("-")[0] in re.findall(r"[\w.-]+", line)
    }
    assert run <= installed, f"{path.name} runs {sorted(run - installed)} without installing it"


def test_every_example_says_how_to_run_it() -> None:
    runnable = [
        *EXAMPLES.glob("*.py"),
        EXAMPLES / "django_project" / "webhooks_site" / "settings.py",
    ]
    for path in runnable:
        text = path.read_text(encoding="utf-8")
        assert "python -m pip install -e '.[" in text, path.name
        assert "python -m hookshield send" in text, path.name
