"""hookshield.prometheus: what deliveries through each adapter, and a worker, do to the metrics.

Each test adds a :class:`~hookshield.prometheus.Metrics` on a registry of its own,
sends real requests through the framework's own test client (Flask, Django,
Starlette, FastAPI), and reads the samples back from the registry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.routing import Route

from hookshield import (
    Delivery,
    Event,
    SQLiteInbox,
    WebhookHandler,
    add_observer,
    remove_observer,
    run_worker,
)
from hookshield._handling.handler import dispatcher_of
from hookshield.asgi import WebhookApp
from hookshield.fastapi import verified
from hookshield.flask import webhook_view
from hookshield.prometheus import CountedInbox, InboxCollector, Metrics
from hookshield.testing import sample_body, sign

from .adapters.support import configure_django

SECRET = "whsec_metrics"
FRAMEWORKS = ["flask", "django", "starlette", "fastapi"]

Send = Callable[..., int]


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    """A registry of this test's own, counted into by an observer added for the test."""
    found = CollectorRegistry()
    metrics = Metrics(found)
    add_observer(metrics)
    yield found
    remove_observer(metrics)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def signed(event_id: str, event_type: str = "session.completed") -> tuple[bytes, dict[str, str]]:
    payload = json.loads(sample_body("mindpeeker", "session.completed"))
    payload["id"], payload["type"] = event_id, event_type
    body = json.dumps(payload).encode()
    return body, sign("mindpeeker", body, secret=SECRET)


def forged(event_id: str) -> tuple[bytes, dict[str, str]]:
    body, _ = signed(event_id)
    return body, sign("mindpeeker", body, secret="not-the-secret")


def handler_with_route(fail: bool = False) -> WebhookHandler:
    handler = WebhookHandler("mindpeeker", secret=SECRET)

    @handler.on("session.*")
    def route(event: Event) -> None:
        if fail:
            raise RuntimeError("the database is down")

    return handler


# -- one client per framework, each answering the status of a POST -------------------


def flask_sender(handler: WebhookHandler, **options: Any) -> Send:
    app = flask.Flask(__name__)
    app.add_url_rule("/hooks", view_func=webhook_view(handler, **options))
    client = app.test_client()

    def send(body: bytes, headers: dict[str, str], method: str = "POST") -> int:
        return client.open("/hooks", method=method, data=body, headers=headers).status_code

    return send


def django_sender(handler: WebhookHandler, **options: Any) -> Send:
    configure_django()
    from django.test import Client, override_settings
    from django.urls import path

    from hookshield.django import webhook_view as django_view

    from .adapters.test_django import urlconf

    override = override_settings(ROOT_URLCONF=urlconf(path("hooks/", django_view(handler))))
    override.enable()
    _overrides.append(override)
    client = Client(raise_request_exception=False)

    def send(body: bytes, headers: dict[str, str], method: str = "POST") -> int:
        rest = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        response = client.generic(
            method, "/hooks/", data=body, content_type="application/json", headers=rest
        )
        return int(response.status_code)

    return send


_overrides: list[Any] = []


@pytest.fixture(autouse=True)
def _undo_django_settings() -> Iterator[None]:
    yield
    while _overrides:
        _overrides.pop().disable()


def starlette_sender(handler: WebhookHandler, **options: Any) -> Send:
    client = TestClient(Starlette(routes=[Route("/hooks", WebhookApp(handler, **options))]))

    def send(body: bytes, headers: dict[str, str], method: str = "POST") -> int:
        return client.request(method, "/hooks", content=body, headers=headers).status_code

    return send


def fastapi_sender(handler: WebhookHandler, **options: Any) -> Send:
    app = FastAPI()
    dependency = verified(handler, **options)

    @app.api_route("/hooks", methods=["GET", "POST"])
    def hook(delivery: Delivery = Depends(dependency)) -> dict[str, int]:  # noqa: B008
        # The route is the handler: it does the work of the handler's routes itself,
        # which are not dispatched (nor timed as routes).
        for event in delivery.events:
            for route in dispatcher_of(handler).router.routes_for(event.type):
                route(event)
        return {"events": len(delivery.events)}

    client = TestClient(app, raise_server_exceptions=False)

    def send(body: bytes, headers: dict[str, str], method: str = "POST") -> int:
        return client.request(method, "/hooks", content=body, headers=headers).status_code

    return send


SENDERS: dict[str, Callable[..., Send]] = {
    "flask": flask_sender,
    "django": django_sender,
    "starlette": starlette_sender,
    "fastapi": fastapi_sender,
}


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> Callable[..., Send]:
    return SENDERS[request.param]


def dispatches(framework: Callable[..., Send]) -> int:
    """1 where the handler's routes are dispatched (and timed), 0 for FastAPI's ``verified``."""
    return 0 if framework is fastapi_sender else 1


# -- through each adapter -----------------------------------------------------------


def test_valid_duplicate_and_forged_deliveries_are_counted_as_such(
    registry: CollectorRegistry, framework: Callable[..., Send]
) -> None:
    send = framework(handler_with_route())
    sender = {"sender": "mindpeeker"}
    assert send(*signed("evt_1")) == 200
    assert value(registry, "hookshield_deliveries_total", **sender, outcome="accepted") == 1
    assert value(registry, "hookshield_delivery_duration_seconds_count", **sender) == 1
    route = {**sender, "route": "session.*"}
    timed = dispatches(framework)
    assert value(registry, "hookshield_route_duration_seconds_count", **route) == timed

    assert send(*signed("evt_1")) == 200  # the sender's retry
    assert value(registry, "hookshield_deliveries_total", **sender, outcome="duplicate") == 1
    assert value(registry, "hookshield_route_duration_seconds_count", **route) == timed

    assert send(*forged("evt_2")) == 401
    assert value(registry, "hookshield_deliveries_total", **sender, outcome="refused") == 1
    assert value(registry, "hookshield_refusals_total", **sender, reason="signature") == 1
    assert value(registry, "hookshield_delivery_duration_seconds_count", **sender) == 3

    body, _ = signed("evt_3")
    assert send(body, {"Content-Type": "application/json"}) == 401  # refused before the body
    assert value(registry, "hookshield_refusals_total", **sender, reason="credentials") == 1
    assert value(registry, "hookshield_deliveries_total", **sender, outcome="refused") == 2
    assert value(registry, "hookshield_deliveries_total", **sender, outcome="failed") == 0


def test_a_route_that_raises_is_a_failed_delivery_and_still_timed(
    registry: CollectorRegistry, framework: Callable[..., Send]
) -> None:
    send = framework(handler_with_route(fail=True))
    assert send(*signed("evt_1")) == 500
    sender = {"sender": "mindpeeker"}
    assert value(registry, "hookshield_deliveries_total", **sender, outcome="failed") == 1
    assert value(registry, "hookshield_deliveries_total", **sender, outcome="accepted") == 0
    route = {**sender, "route": "session.*"}
    timed = dispatches(framework)
    assert value(registry, "hookshield_route_duration_seconds_count", **route) == timed
    assert value(registry, "hookshield_refusals_total", **sender, reason="signature") == 0


@pytest.mark.parametrize("name", ["django", "starlette", "fastapi"])
def test_another_method_than_post_is_a_refusal_for_its_method(
    registry: CollectorRegistry, name: str
) -> None:
    send = SENDERS[name](handler_with_route())
    assert send(b"", {}, method="GET") == 405
    sender = {"sender": "mindpeeker"}
    assert value(registry, "hookshield_refusals_total", **sender, reason="method") == 1
    assert value(registry, "hookshield_deliveries_total", **sender, outcome="refused") == 1


def test_a_delivery_in_progress_is_counted_apart(registry: CollectorRegistry) -> None:
    handler = handler_with_route()
    send = flask_sender(handler)
    body, headers = signed("evt_1")
    held = handler.accept(body, headers)  # another attempt holds it
    assert send(body, headers) == 409
    assert (
        value(registry, "hookshield_deliveries_total", sender="mindpeeker", outcome="in_progress")
        == 1
    )
    held.release()


# -- the inbox and the worker ---------------------------------------------------------


def test_a_worker_run_changes_the_worker_and_the_inbox_metrics(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    registry = CollectorRegistry()
    metrics = Metrics(registry, inboxes={"main": inbox})
    handler = WebhookHandler("mindpeeker", secret=SECRET)

    @handler.on("*")
    def route(event: Event) -> None:
        if event.id == "evt_fails":
            raise RuntimeError("not yet")

    add_observer(metrics)
    try:
        send = flask_sender(handler, background=inbox)
        assert send(*signed("evt_runs")) == 200
        assert send(*signed("evt_fails")) == 200
        inbox_state = {"inbox": "main"}
        assert value(registry, "hookshield_inbox_deliveries", **inbox_state, state="pending") == 2
        assert value(registry, "hookshield_inbox_oldest_due_seconds", **inbox_state) >= 0
        accepted = {"sender": "mindpeeker", "outcome": "accepted"}
        assert value(registry, "hookshield_deliveries_total", **accepted) == 2
        assert (
            value(
                registry, "hookshield_route_duration_seconds_count", sender="mindpeeker", route="*"
            )
            == 0
        )

        run_worker(inbox, handler, burst=True, handle_signals=False)
    finally:
        remove_observer(metrics)
    worker = {"sender": "mindpeeker"}
    assert value(registry, "hookshield_worker_deliveries_total", **worker, result="done") == 1
    assert value(registry, "hookshield_worker_deliveries_total", **worker, result="retried") == 1
    assert value(registry, "hookshield_route_duration_seconds_count", **worker, route="*") == 2
    assert value(registry, "hookshield_inbox_deliveries", inbox="main", state="done") == 1
    assert value(registry, "hookshield_inbox_deliveries", inbox="main", state="pending") == 1
    # The retry is not due yet: nothing waits for a worker.
    assert value(registry, "hookshield_inbox_oldest_due_seconds", inbox="main") == 0


def test_the_oldest_due_delivery_is_how_long_it_has_waited(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    handler = handler_with_route()
    flask_sender(handler, background=inbox)(*signed("evt_1"))
    registry = CollectorRegistry()
    registry.register(InboxCollector([inbox]))
    time.sleep(0.05)
    waited = value(registry, "hookshield_inbox_oldest_due_seconds", inbox="SQLiteInbox")
    assert 0.05 <= waited < 60
    assert value(registry, "hookshield_inbox_deliveries", inbox="SQLiteInbox", state="pending") == 1


def test_inboxes_are_named_and_must_be_countable(tmp_path: Path) -> None:
    first, second = SQLiteInbox(tmp_path / "a.db"), SQLiteInbox(tmp_path / "b.db")
    assert list(InboxCollector([first, second]).inboxes) == ["SQLiteInbox", "SQLiteInbox-2"]
    with pytest.raises(TypeError, match="no counts"):
        InboxCollector({"queue": object()})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="registry must be"):
        Metrics(registry="default")  # type: ignore[arg-type]


def test_an_inbox_that_fails_is_left_out_of_the_scrape(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = SQLiteInbox(tmp_path / "good.db")

    class Down:
        def counts(self) -> dict[str, int]:
            raise OSError("the database is down")

    registry = CollectorRegistry()
    inboxes: dict[str, CountedInbox] = {"good": good, "down": Down()}
    registry.register(InboxCollector(inboxes))
    assert value(registry, "hookshield_inbox_deliveries", inbox="good", state="pending") == 0
    assert (
        registry.get_sample_value(
            "hookshield_inbox_deliveries", {"inbox": "down", "state": "pending"}
        )
        is None
    )
    assert "could not read the inbox 'down'" in caplog.text


def test_two_metrics_on_one_registry_are_refused_by_it() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    with pytest.raises(ValueError, match="Duplicated"):
        Metrics(registry)


# -- labels are bounded ---------------------------------------------------------------


def label_values(registry: CollectorRegistry) -> set[str]:
    return {
        value
        for family in registry.collect()
        for sample in family.samples
        for name, value in sample.labels.items()
        if name != "le"
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_type=st.text(min_size=1, max_size=80), event_id=st.text(min_size=1, max_size=80))
def test_a_senders_text_never_becomes_a_label_value(event_type: str, event_id: str) -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    handler = WebhookHandler("mindpeeker", secret=SECRET)
    handler.on("*")(lambda event: None)
    handler.on("session.*")(lambda event: None)
    add_observer(metrics)
    try:
        send = flask_sender(handler)
        body, headers = signed(event_id, event_type)
        assert send(body, headers) in (200, 400)
        send(*forged(event_id))
    finally:
        remove_observer(metrics)
    allowed = {
        "mindpeeker",
        "*",
        "session.*",
        *("accepted", "duplicate", "in_progress", "refused", "failed"),
        *("signature", "malformed", "credentials"),
    }
    assert label_values(registry) <= allowed
    assert (
        value(registry, "hookshield_deliveries_total", sender="mindpeeker", outcome="refused") >= 1
    )
