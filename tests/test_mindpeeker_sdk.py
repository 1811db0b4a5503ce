"""MindPeeker's SDK sample runs on hookshield with one changed import."""

from __future__ import annotations

import textwrap
from typing import Any

import flask
import pytest

from hookshield import AuthenticationError, DeliveryInProgress, MalformedPayload
from hookshield.mindpeeker import WebhookHandler
from hookshield.testing import sample_delivery

#: The sample from MindPeeker's page (seeds/003), verbatim but for its first import.
SEED_SAMPLE = """
from hookshield.mindpeeker import WebhookHandler
handler = WebhookHandler('your_webhook_secret')
@handler.on('session.completed')
def handle_session_completed(event):
    print(f"Session {event.data.session_id} completed")
@app.route('/webhook', methods=['POST'])
def webhook():
    event = handler.construct_event(request.data, request.headers['X-MindPeeker-Signature'])
    handler.process_event(event)
    return 'OK'
"""


def seed_app() -> tuple[flask.Flask, dict[str, Any]]:
    app = flask.Flask(__name__)
    namespace: dict[str, Any] = {"app": app, "request": flask.request}
    exec(textwrap.dedent(SEED_SAMPLE), namespace)  # noqa: S102 - the page's own sample
    return app, namespace


def test_the_seed_sample_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    app, _ = seed_app()
    body, headers = sample_delivery("mindpeeker", "session.completed", secret="your_webhook_secret")
    client = app.test_client()
    response = client.post("/webhook", data=body, headers=headers)
    assert (response.status_code, response.data) == (200, b"OK")
    assert capsys.readouterr().out == "Session sess_123456789 completed\n"
    # The sender's retry of the same event is acknowledged and not run again.
    assert client.post("/webhook", data=body, headers=headers).status_code == 200
    assert capsys.readouterr().out == ""


def test_a_forged_event_is_refused_before_any_route() -> None:
    _, namespace = seed_app()
    handler: WebhookHandler = namespace["handler"]
    body, headers = sample_delivery("mindpeeker", "session.completed", secret="wrong")
    with pytest.raises(AuthenticationError) as raised:
        handler.construct_event(body, headers["X-MindPeeker-Signature"])
    assert raised.value.status == 401
    with pytest.raises(AuthenticationError, match="no X-MindPeeker-Signature"):
        handler.construct_event(body, None)


def test_a_body_that_is_not_the_envelope_is_a_400() -> None:
    handler = WebhookHandler("s3cret")
    with pytest.raises(MalformedPayload):
        handler.construct_event("[1, 2]", _signature(b"[1, 2]", "s3cret"))


def test_text_payloads_are_verified_as_their_utf8_bytes() -> None:
    handler = WebhookHandler("s3cret")
    body, headers = sample_delivery("mindpeeker", "session.created", secret="s3cret")
    event = handler.construct_event(body.decode(), headers["X-MindPeeker-Signature"])
    assert event.type == "session.created" and event.data.session_id == "sess_123456789"


def test_a_route_that_raises_propagates_and_the_retry_runs() -> None:
    handler = WebhookHandler("s3cret")
    calls: list[str] = []

    @handler.on("session.completed")
    def route(event: Any) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise RuntimeError("database down")

    body, headers = sample_delivery("mindpeeker", "session.completed", secret="s3cret")
    event = handler.construct_event(body, headers["X-MindPeeker-Signature"])
    with pytest.raises(RuntimeError, match="database down"):
        handler.process_event(event)
    assert handler.process_event(event).dispatched == 1
    assert handler.process_event(event).duplicate
    assert len(calls) == 2


def test_a_retry_while_the_first_attempt_runs_is_told_to_come_back() -> None:
    handler = WebhookHandler("s3cret")
    body, headers = sample_delivery("mindpeeker", "session.completed", secret="s3cret")
    handler.handler.accept(body, headers)  # a first attempt, still running elsewhere
    event = handler.construct_event(body, headers["X-MindPeeker-Signature"])
    with pytest.raises(DeliveryInProgress) as raised:
        handler.process_event(event)
    assert raised.value.status == 409


def test_an_event_without_an_id_runs_every_time() -> None:
    handler = WebhookHandler("s3cret")
    seen: list[str] = []
    handler.on("*")(lambda event: seen.append(event.type))
    body = b'{"type": "system.security_alert", "data": {}}'
    event = handler.construct_event(body, _signature(body, "s3cret"))
    assert handler.process_event(event).dispatched == 1
    assert handler.process_event(event).dispatched == 1
    assert seen == ["system.security_alert"] * 2


def test_debug_logs_each_event_and_options_reach_the_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = WebhookHandler("s3cret", debug=True, dedupe=None, max_body_size=4096)
    handler.on_error(lambda error, event: None)
    assert handler.handler.dedupe is None and handler.handler.max_body_size == 4096
    body, headers = sample_delivery("mindpeeker", "analysis.completed", secret="s3cret")
    caplog.set_level("INFO", logger="hookshield.mindpeeker")
    handler.process_event(handler.construct_event(body, headers["X-MindPeeker-Signature"]))
    assert "constructed MindPeeker analysis.completed" in caplog.text
    assert "processed MindPeeker event" in caplog.text
    assert "mindpeeker" in repr(handler)


def _signature(body: bytes, secret: str) -> str:
    import hashlib
    import hmac

    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
