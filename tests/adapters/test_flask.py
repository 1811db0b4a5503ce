"""What only hookshield.flask has, through Flask's own test client.

What it shares with the Django adapter is specified once, in ``test_wsgi.py``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

import flask
import pytest
from flask.testing import FlaskClient

from hookshield import Delivery, WebhookHandler
from hookshield.flask import BackgroundPool, verified, webhook_view
from hookshield.testing import sample_delivery

from .support import (
    CREDENTIALS,
    MOCO_SIGNATURE,
    SIGNING,
    EndlessStream,
    Recorder,
    chunked,
    delivery,
    recorder,
    tampered,
)


def app_for(view: object, path: str = "/hooks", **options: object) -> FlaskClient:
    app = flask.Flask(__name__)
    app.add_url_rule(path, view_func=view, **options)  # type: ignore[arg-type]
    return app.test_client()


@pytest.fixture
def rec(sender: str) -> Recorder:
    return recorder(sender)


@pytest.fixture
def client(rec: Recorder) -> FlaskClient:
    return app_for(webhook_view(rec.handler))


def test_the_view_is_registered_for_post_only_by_default(
    rec: Recorder, client: FlaskClient
) -> None:
    # Flask's router answers the other methods (the view answers them itself when it
    # is registered for them, see test_wsgi.py).
    response = client.get("/hooks")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"] and "GET" not in response.headers["Allow"]
    assert rec.events == []


def test_a_body_shorter_than_its_content_length_gets_400() -> None:
    rec = recorder("moco")
    client = app_for(webhook_view(rec.handler))
    body, headers, _ = delivery("moco")
    response = client.post(
        "/hooks",
        input_stream=io.BytesIO(body),
        headers=headers,
        environ_overrides={"CONTENT_LENGTH": str(len(body) + 10)},
    )
    assert response.status_code == 400
    assert rec.events == []


def test_the_apps_own_max_content_length_gives_a_json_413() -> None:
    rec = recorder("moco")
    app = flask.Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 100
    app.add_url_rule("/hooks", view_func=webhook_view(rec.handler))
    response = app.test_client().post(
        "/hooks",
        headers={"Content-Type": "application/json", **MOCO_SIGNATURE},
        environ_overrides=chunked(EndlessStream()),
    )
    assert response.status_code == 413
    assert "MAX_CONTENT_LENGTH" in response.get_json()["error"]


def test_the_view_is_named_after_the_sender_and_takes_url_values() -> None:
    rec = recorder("moco")
    view = webhook_view(rec.handler)
    assert view.__name__ == "hookshield_moco"
    client = app_for(view, path="/hooks/<tenant>")
    body, headers, marker = delivery("moco")
    assert client.post("/hooks/acme", data=body, headers=headers).status_code == 200
    assert rec.markers() == [marker]


# -- background=True -----------------------------------------------------------------


def test_background_work_runs_after_the_answer_in_the_app_context(sender: str) -> None:
    rec = recorder(sender)
    apps: list[str] = []
    rec.handler.on("*")(lambda event: apps.append(flask.current_app.name))
    pool = BackgroundPool(max_workers=2)
    client = app_for(webhook_view(rec.handler, background=pool))
    body, headers, marker = delivery(sender)
    response = client.post("/hooks", data=body, headers=headers)
    assert response.status_code == 200
    pool.shutdown(wait=True)  # waits for the work taken
    # Once the work is done the same delivery is a duplicate: answered, never run again
    # (while it still ran, it was in progress: a 409).
    assert client.post("/hooks", data=body, headers=headers).status_code == 200
    assert rec.markers() == [marker]
    assert apps == [__name__]


# -- @verified -------------------------------------------------------------------------


def verified_app(rec: Recorder, seen: list[Delivery]) -> FlaskClient:
    app = flask.Flask(__name__)

    @app.post("/hooks/<tenant>")
    @verified(rec.handler)
    def hook(delivery: Delivery, tenant: str) -> flask.Response:
        seen.append(delivery)
        return flask.jsonify(tenant=tenant, events=len(delivery.events))

    return app.test_client()


def test_verified_passes_the_delivery_before_the_url_values(sender: str) -> None:
    rec = recorder(sender)
    seen: list[Delivery] = []
    client = verified_app(rec, seen)
    body, headers, marker = delivery(sender)
    response = client.post("/hooks/acme", data=body, headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"tenant": "acme", "events": 1}
    assert [d.events[0].data.get("marker") for d in seen] == [marker]
    assert seen[0].body == body
    assert rec.events == []
    assert hook_name(client) == "hook"


def hook_name(client: FlaskClient) -> str:
    """The endpoint name of the decorated view: functools.wraps keeps the view's own."""
    (rule,) = [r for r in client.application.url_map.iter_rules() if r.rule == "/hooks/<tenant>"]
    endpoint: str = rule.endpoint
    return endpoint


# -- a body that code of the app read first ------------------------------------------


def app_reading_first(handler: WebhookHandler, read: Callable[[], object]) -> FlaskClient:
    """An app whose before_request reads the body (as an auth or logging hook does)."""
    app = flask.Flask(__name__)

    @app.before_request
    def read_first() -> None:
        read()

    app.add_url_rule("/hooks", view_func=webhook_view(handler))

    @app.post("/verified")
    @verified(handler)
    def own_view(delivery: Delivery) -> dict[str, int]:
        return {"events": len(delivery.events)}

    return app.test_client()


@pytest.mark.parametrize(
    "read",
    [
        lambda: flask.request.get_json(silent=True),
        lambda: flask.request.data,
        lambda: flask.request.get_data(),
    ],
    ids=["get_json", "data", "get_data"],
)
def test_a_body_werkzeug_kept_for_code_that_read_it_first_is_verified(
    sender: str, read: Callable[[], object]
) -> None:
    rec = recorder(sender)
    client = app_reading_first(rec.handler, read)
    body, headers, marker = delivery(sender)
    response = client.post("/hooks", data=body, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert rec.markers() == [marker]
    # The exact bytes are verified: a tampered body is still refused.
    if sender in SIGNING:
        changed, headers, _ = tampered(sender)
        assert client.post("/hooks", data=changed, headers=headers).status_code == 401
    body, headers, _ = delivery(sender)
    assert client.post("/verified", data=body, headers=headers).get_json() == {"events": 1}


@pytest.mark.parametrize(
    "read",
    [lambda: flask.request.stream.read(), lambda: flask.request.stream.read(10)],
    ids=["whole stream", "part of the stream"],
)
def test_a_body_read_first_and_not_kept_is_a_500_that_says_why(
    read: Callable[[], object], caplog: pytest.LogCaptureFixture
) -> None:
    rec = recorder("mindpeeker")
    client = app_reading_first(rec.handler, read)
    body, headers, _ = delivery("mindpeeker")
    with caplog.at_level(logging.ERROR, logger="hookshield"):
        response = client.post("/hooks", data=body, headers=headers)
    # The app is at fault, not the sender: it retries, and once fixed, is received.
    assert response.status_code == 500
    assert "signature" not in response.get_data(as_text=True)  # no detail for the sender
    assert rec.events == []
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "read before hookshield" in record.getMessage()
    assert "request.get_data()" in record.getMessage()  # how to avoid it
    assert client.post("/verified", data=body, headers=headers).status_code == 500


def test_a_form_read_first_is_refused_as_read_not_as_forged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Moonsense posts forms; request.form consumes the stream and Werkzeug keeps no bytes.
    rec = recorder("moonsense")
    client = app_reading_first(rec.handler, lambda: flask.request.form)
    body, headers = sample_delivery(
        "moonsense",
        "session.created",
        content_type="application/x-www-form-urlencoded",
        **CREDENTIALS["moonsense"],
    )
    with caplog.at_level(logging.ERROR, logger="hookshield"):
        response = client.post("/hooks", data=body, headers=headers)
    assert response.status_code == 500
    assert rec.events == []
    assert "request.form" in caplog.text
    assert "does not match" not in caplog.text


def test_a_chunked_body_werkzeug_kept_is_verified_and_still_bounded() -> None:
    rec = recorder("moco", max_body_size=4096)
    client = app_reading_first(rec.handler, lambda: flask.request.get_data())
    body, headers, marker = delivery("moco")
    response = client.post("/hooks", headers=headers, environ_overrides=chunked(io.BytesIO(body)))
    assert response.status_code == 200
    assert rec.markers() == [marker]
    big, headers, _ = delivery("moco", pad=5000)
    response = client.post("/hooks", headers=headers, environ_overrides=chunked(io.BytesIO(big)))
    assert response.status_code == 413
