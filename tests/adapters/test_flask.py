"""What only hookshield.flask has, through Flask's own test client.

What it shares with the Django adapter is specified once, in ``test_wsgi.py``.
"""

from __future__ import annotations

import io

import flask
import pytest
from flask.testing import FlaskClient

from hookshield import Delivery
from hookshield.flask import BackgroundPool, verified, webhook_view

from .support import MOCO_SIGNATURE, EndlessStream, Recorder, chunked, delivery, recorder


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
    assert client.post("/hooks", data=body, headers=headers).status_code == 200
    pool.shutdown(wait=True)  # waits for the work taken
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
