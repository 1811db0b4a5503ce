"""hookshield.flask, through Flask's own test client."""

from __future__ import annotations

import io
import json
import threading

import flask
import pytest
from flask.testing import FlaskClient

from hookshield import Claim, Delivery, Event
from hookshield.flask import BackgroundPool, verified, webhook_view
from hookshield.testing import sample_batch, sign

from .support import (
    CREDENTIALS,
    SIGNING,
    SMALL_LIMIT,
    Recorder,
    delivery,
    forged,
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


def test_a_valid_delivery_runs_the_handler(sender: str, rec: Recorder, client: FlaskClient) -> None:
    body, headers, marker = delivery(sender)
    response = client.post("/hooks", data=body, headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"ok": True}
    assert response.mimetype == "application/json"
    assert rec.markers() == [marker]


def test_a_forged_delivery_is_refused(sender: str, rec: Recorder, client: FlaskClient) -> None:
    body, headers, _ = forged(sender)
    response = client.post("/hooks", data=body, headers=headers)
    assert response.status_code == 401
    assert set(response.get_json()) == {"error"}
    for secret in CREDENTIALS[sender].values():
        assert secret not in response.get_data(as_text=True)
    assert rec.events == []


@pytest.mark.parametrize("sender", SIGNING)
def test_a_tampered_body_is_refused(sender: str, rec: Recorder, client: FlaskClient) -> None:
    body, headers, _ = tampered(sender)
    response = client.post("/hooks", data=body, headers=headers)
    assert response.status_code == 401
    assert rec.events == []


def test_a_body_over_the_limit_gets_413(sender: str) -> None:
    rec = recorder(sender, max_body_size=SMALL_LIMIT)
    client = app_for(webhook_view(rec.handler))
    body, headers, _ = delivery(sender, pad=2 * SMALL_LIMIT)
    response = client.post("/hooks", data=body, headers=headers)
    assert response.status_code == 413
    assert "max_body_size" in response.get_json()["error"]
    assert rec.events == []


def test_another_method_gets_405(sender: str, rec: Recorder, client: FlaskClient) -> None:
    # The view is registered for POST only, so Flask's router answers.
    assert client.get("/hooks").status_code == 405
    # Registered for more methods, the view answers itself, in JSON.
    also_get = app_for(webhook_view(rec.handler), methods=["GET", "POST", "PUT"])
    for method in ("GET", "PUT"):
        response = also_get.open("/hooks", method=method)
        assert response.status_code == 405
        assert response.headers["Allow"] == "POST"
        assert "POST" in response.get_json()["error"]
    assert rec.events == []


def test_a_duplicate_is_acknowledged_and_not_run_again(
    sender: str, rec: Recorder, client: FlaskClient
) -> None:
    body, headers, marker = delivery(sender)
    first = client.post("/hooks", data=body, headers=headers)
    second = client.post("/hooks", data=body, headers=headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert rec.markers() == [marker]


class EndlessStream(io.RawIOBase):
    """A WSGI input that never ends, as a chunked upload that goes on and on."""

    def __init__(self) -> None:
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        buffer[:] = b"x" * len(buffer)
        self.served += len(buffer)
        return len(buffer)


def chunked(stream: io.RawIOBase | io.BytesIO) -> dict[str, object]:
    """The environ of a chunked upload: no Content-Length, a stream the server ends.

    A WSGI server that decodes chunked bodies (gunicorn) says so with
    ``wsgi.input_terminated``.
    """
    return {"wsgi.input": stream, "wsgi.input_terminated": True, "CONTENT_LENGTH": ""}


def test_a_body_without_length_is_cut_off_at_the_limit() -> None:
    rec = recorder("moco", max_body_size=SMALL_LIMIT)
    client = app_for(webhook_view(rec.handler))
    stream = EndlessStream()
    response = client.post(
        "/hooks", headers={"Content-Type": "application/json"}, environ_overrides=chunked(stream)
    )
    assert response.status_code == 413
    assert stream.served <= SMALL_LIMIT + 1
    assert rec.events == []


def test_a_body_without_length_within_the_limit_is_read_whole() -> None:
    rec = recorder("moco")
    client = app_for(webhook_view(rec.handler))
    body, headers, marker = delivery("moco")
    response = client.post("/hooks", headers=headers, environ_overrides=chunked(io.BytesIO(body)))
    assert response.status_code == 200
    assert rec.markers() == [marker]


def test_a_malformed_content_length_gets_400() -> None:
    rec = recorder("moco")
    client = app_for(webhook_view(rec.handler))
    body, headers, _ = delivery("moco")
    response = client.post(
        "/hooks", data=body, headers=headers, environ_overrides={"CONTENT_LENGTH": "12abc"}
    )
    assert response.status_code == 400
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
        headers={"Content-Type": "application/json"},
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


def test_a_failing_handler_gets_500_and_its_retry_is_processed() -> None:
    rec = recorder("mindpeeker")
    calls: list[str] = []

    @rec.handler.on("*")
    def flaky(event: Event) -> None:
        calls.append(event.type)
        if len(calls) == 1:
            raise RuntimeError("database is down")

    client = app_for(webhook_view(rec.handler))
    body, headers, _ = delivery("mindpeeker")
    failed = client.post("/hooks", data=body, headers=headers)
    assert failed.status_code == 500
    assert "database" not in failed.get_data(as_text=True)
    assert client.post("/hooks", data=body, headers=headers).status_code == 200
    assert len(calls) == 2


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


def test_background_true_makes_a_pool_of_its_own() -> None:
    rec = recorder("moco")
    client = app_for(webhook_view(rec.handler, background=True))
    body, headers, marker = delivery("moco")
    assert client.post("/hooks", data=body, headers=headers).status_code == 200
    forged_body, forged_headers, _ = forged("moco")
    assert client.post("/hooks", data=forged_body, headers=forged_headers).status_code == 401
    from .support import wait_for

    assert wait_for(lambda: rec.markers() == [marker])


def test_a_full_pool_answers_503_and_the_retry_is_processed() -> None:
    rec = recorder("mindpeeker")
    release = threading.Event()
    rec.handler.on("*")(lambda event: release.wait(10))
    pool = BackgroundPool(max_workers=1, max_pending=0)
    client = app_for(webhook_view(rec.handler, background=pool))

    first_body, first_headers, first = delivery("mindpeeker")
    assert client.post("/hooks", data=first_body, headers=first_headers).status_code == 200
    body, headers, second = delivery("mindpeeker")
    busy = client.post("/hooks", data=body, headers=headers)
    assert busy.status_code == 503
    assert busy.get_json() == {"error": "the delivery could not be processed; please retry"}
    # A forged delivery still gets its 401, not a 503 that invites retries.
    forged_body, forged_headers, _ = forged("mindpeeker")
    refused = client.post("/hooks", data=forged_body, headers=forged_headers)
    assert refused.status_code == 401

    release.set()
    pool.shutdown(wait=True)
    # The refused delivery was never claimed, so its retry runs.
    pool2 = BackgroundPool(max_workers=1, max_pending=0)
    client2 = app_for(webhook_view(rec.handler, background=pool2))
    assert client2.post("/hooks", data=body, headers=headers).status_code == 200
    pool2.shutdown(wait=True)
    assert rec.markers() == [first, second]


def test_a_shut_down_pool_answers_503_and_forgets_the_delivery() -> None:
    rec = recorder("moco")
    pool = BackgroundPool()
    pool.shutdown()
    client = app_for(webhook_view(rec.handler, background=pool))
    body, headers, marker = delivery("moco")
    assert client.post("/hooks", data=body, headers=headers).status_code == 503
    # The claim was released: the same delivery is processed once a pool runs.
    client2 = app_for(webhook_view(rec.handler))
    assert client2.post("/hooks", data=body, headers=headers).status_code == 200
    assert rec.markers() == [marker]


def test_a_failing_background_handler_calls_the_error_hooks() -> None:
    rec = recorder("moco")
    errors: list[str] = []

    @rec.handler.on("*")
    def boom(event: Event) -> None:
        raise ValueError("no such project")

    rec.handler.on_error(lambda exc, event: errors.append(str(exc)))
    pool = BackgroundPool()
    client = app_for(webhook_view(rec.handler, background=pool))
    body, headers, _ = delivery("moco")
    assert client.post("/hooks", data=body, headers=headers).status_code == 200
    pool.shutdown(wait=True)
    assert errors == ["no such project"]


# -- @verified -------------------------------------------------------------------------


def verified_app(rec: Recorder, seen: list[Delivery], *, fail: int = 0) -> FlaskClient:
    app = flask.Flask(__name__)
    failures = [fail]

    @app.post("/hooks/<tenant>")
    @verified(rec.handler)
    def hook(delivery: Delivery, tenant: str) -> flask.Response:
        if failures[0]:
            failures[0] -= 1
            raise RuntimeError("view failed")
        seen.append(delivery)
        return flask.jsonify(tenant=tenant, events=len(delivery.events))

    return app.test_client()


def test_verified_passes_the_delivery_to_the_view(sender: str) -> None:
    rec = recorder(sender)
    seen: list[Delivery] = []
    client = verified_app(rec, seen)
    body, headers, marker = delivery(sender)
    response = client.post("/hooks/acme", data=body, headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"tenant": "acme", "events": 1}
    assert [d.events[0].data.get("marker") for d in seen] == [marker]
    assert seen[0].body == body
    # The view is the handler: routes are not called.
    assert rec.events == []


def test_verified_refuses_a_forged_delivery_before_the_view(sender: str) -> None:
    seen: list[Delivery] = []
    client = verified_app(recorder(sender), seen)
    body, headers, _ = forged(sender)
    assert client.post("/hooks/acme", data=body, headers=headers).status_code == 401
    assert client.get("/hooks/acme").status_code == 405
    assert seen == []


def test_verified_acknowledges_a_duplicate_without_the_view(sender: str) -> None:
    seen: list[Delivery] = []
    client = verified_app(recorder(sender), seen)
    body, headers, _ = delivery(sender)
    assert client.post("/hooks/acme", data=body, headers=headers).status_code == 200
    duplicate = client.post("/hooks/acme", data=body, headers=headers)
    assert duplicate.status_code == 200
    assert duplicate.get_json() == {"ok": True, "duplicate": True}
    assert len(seen) == 1


def test_verified_answers_413_over_the_limit() -> None:
    seen: list[Delivery] = []
    client = verified_app(recorder("moco", max_body_size=SMALL_LIMIT), seen)
    body, headers, _ = delivery("moco", pad=2 * SMALL_LIMIT)
    assert client.post("/hooks/acme", data=body, headers=headers).status_code == 413
    assert seen == []


def test_verified_forgets_a_delivery_whose_view_raised() -> None:
    seen: list[Delivery] = []
    client = verified_app(recorder("moco"), seen, fail=1)
    body, headers, _ = delivery("moco")
    assert client.post("/hooks/acme", data=body, headers=headers).status_code == 500
    assert client.post("/hooks/acme", data=body, headers=headers).status_code == 200
    assert len(seen) == 1


def test_verified_hands_over_only_the_new_events_of_a_batch() -> None:
    rec = recorder("momentum")
    seen: list[Delivery] = []
    client = verified_app(rec, seen)
    records = json.loads(sample_batch(["delivery", "open", "click"]))
    token = CREDENTIALS["momentum"]["token"]
    first = json.dumps(records[:2]).encode()
    second = json.dumps(records[1:]).encode()
    for batch_id, body in (("batch-1", first), ("batch-2", second)):
        headers = sign("momentum", body, token=token, batch_id=batch_id)
        assert client.post("/hooks/acme", data=body, headers=headers).status_code == 200
    assert [[e.type for e in d.events] for d in seen] == [["delivery", "open"], ["click"]]


def test_verified_without_de_duplication_runs_the_view_for_every_copy() -> None:
    seen: list[Delivery] = []
    client = verified_app(recorder("moco", dedupe=None), seen, fail=1)
    body, headers, _ = delivery("moco")
    assert client.post("/hooks/acme", data=body, headers=headers).status_code == 500
    assert client.post("/hooks/acme", data=body, headers=headers).status_code == 200
    assert client.post("/hooks/acme", data=body, headers=headers).status_code == 200
    assert len(seen) == 2


def test_verified_forgets_every_event_of_a_batch_whose_view_raised() -> None:
    seen: list[Delivery] = []
    client = verified_app(recorder("momentum"), seen, fail=1)
    records = json.loads(sample_batch(["delivery", "open"]))
    del records[1]["msys"]["track_event"]["event_id"]  # an event without an id
    body = json.dumps(records).encode()
    headers = sign("momentum", body, token=CREDENTIALS["momentum"]["token"], batch_id="b-1")
    assert client.post("/hooks/acme", data=body, headers=headers).status_code == 500
    assert client.post("/hooks/acme", data=body, headers=headers).status_code == 200
    assert [[e.type for e in d.events] for d in seen] == [["delivery", "open"]]


class BrokenStore:
    """A de-duplication store whose backend is down."""

    def claim(self, key: str, lease: float) -> Claim:
        raise ConnectionError("store unreachable")

    def complete(self, key: str, ttl: float) -> None:
        raise ConnectionError("store unreachable")

    def release(self, key: str) -> None:
        raise ConnectionError("store unreachable")


def test_a_store_failure_in_background_mode_gives_503_and_frees_the_slot() -> None:
    rec = recorder("moco", dedupe=BrokenStore())
    pool = BackgroundPool(max_workers=1, max_pending=0)
    app = flask.Flask(__name__)
    app.add_url_rule("/hooks", view_func=webhook_view(rec.handler, background=pool))
    client = app.test_client()
    body, headers, _ = delivery("moco")
    response = client.post("/hooks", data=body, headers=headers)
    assert response.status_code == 503  # the sender retries once the store is back
    assert response.headers["Retry-After"] == "30"
    assert pool.reserve()  # the slot taken for the delivery was given back
    assert rec.events == []


def test_a_delivery_among_many_other_headers_is_read_right() -> None:
    # More header names than hookshield remembers how to read, and an empty one.
    rec = recorder("moco")
    client = app_for(webhook_view(rec.handler))
    body, headers, marker = delivery("moco")
    extra = {f"X-Extra-{i}": str(i) for i in range(1100)}
    response = client.post("/hooks", data=body, headers={**extra, "X-Empty": "", **headers})
    assert response.status_code == 200
    assert rec.markers() == [marker]
