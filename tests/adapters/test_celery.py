"""hookshield.celery in one process: the message it sends, and the task run eagerly.

The real worker on a real Redis is in tests/integration/test_durable.py.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import json
import re
import sys

import celery
import pytest

from hookshield import Inbox, InboxKey, StoredDelivery, TamperedDelivery, WebhookHandler
from hookshield._durable.inbox import new_id
from hookshield.celery import CeleryInbox, payload, stored_from
from hookshield.testing import sample_batch, sample_body, sample_delivery, sign

from .support import CREDENTIALS

KEY = "celery-unit-tests-inbox-key"


def stored(event_id: str = "evt_1", **changes: object) -> StoredDelivery:
    data = json.loads(sample_body("mindpeeker", "session.completed"))
    data["id"] = event_id
    body = json.dumps(data).encode()
    headers = sign("mindpeeker", body, **CREDENTIALS["mindpeeker"])
    made = StoredDelivery(
        id=new_id(),
        sender="mindpeeker",
        handler="mindpeeker",
        body=body + b"\x00\xff" if changes.pop("binary", False) else body,
        headers=tuple(headers.items()),
        received=1.5,
        event_types=("session.completed",),
    )
    return dataclasses.replace(made, **changes)  # type: ignore[arg-type]


@pytest.fixture
def recorded() -> tuple[CeleryInbox, list[str | None]]:
    app = celery.Celery("hookshield_unit", broker="memory://")
    app.conf.task_always_eager = True  # apply_async runs the task here, now
    app.conf.task_eager_propagates = True
    handler = WebhookHandler("mindpeeker", **CREDENTIALS["mindpeeker"])
    seen: list[str | None] = []
    handler.on("*")(lambda event: seen.append(event.id))
    return CeleryInbox(app, handler, key=KEY), seen


def test_the_message_is_json_with_the_body_in_base64() -> None:
    delivery = stored(binary=True, events=("a", "b"))
    message = payload(delivery)
    assert json.loads(json.dumps(message)) == message  # JSON-safe, nothing pickled
    assert isinstance(message["body"], str)
    back = stored_from(message)
    assert back == dataclasses.replace(delivery, next_attempt=0.0)
    assert stored_from(payload(InboxKey(KEY).seal(delivery))).seal == InboxKey(KEY).seal_of(back)
    assert stored_from(payload(stored())).events is None


def test_put_runs_the_routes_in_the_task(recorded: tuple[CeleryInbox, list[str | None]]) -> None:
    inbox, seen = recorded
    assert isinstance(inbox, Inbox)
    inbox.put(stored("evt_celery"))
    assert seen == ["evt_celery"]
    assert repr(inbox) == "CeleryInbox('hookshield_unit', task='hookshield.deliver')"
    assert inbox.task.acks_late and inbox.task.reject_on_worker_lost


def test_a_delivery_that_no_longer_verifies_is_refused_and_not_retried(
    recorded: tuple[CeleryInbox, list[str | None]], caplog: pytest.LogCaptureFixture
) -> None:
    from hookshield import InvalidSignature

    inbox, seen = recorded
    good = stored("evt_x")
    with pytest.raises(InvalidSignature):
        inbox.put(dataclasses.replace(good, body=good.body.replace(b"evt_x", b"evt_y")))
    assert seen == []
    assert "does not verify" in caplog.text


def test_put_refuses_a_delivery_for_a_handler_it_cannot_run(
    recorded: tuple[CeleryInbox, list[str | None]],
) -> None:
    inbox, _ = recorded
    with pytest.raises(ValueError, match="no handler for 'moco'"):
        inbox.put(stored(handler="moco"))
    with pytest.raises(ValueError, match="no handler for 'moco'"):
        inbox.run(payload(stored(handler="moco")))


def test_a_missing_celery_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "celery", None)
    monkeypatch.delitem(sys.modules, "hookshield.celery", raising=False)
    with pytest.raises(ImportError, match=re.escape("python -m pip install -e '.[celery]'")):
        importlib.import_module("hookshield.celery")


def test_a_message_changed_in_the_broker_or_sent_unsealed_is_refused_and_not_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Momentum's token does not cover the body: only the seal tells a changed batch.
    app = celery.Celery("hookshield_unit", broker="memory://")
    handler = WebhookHandler("momentum", **CREDENTIALS["momentum"])
    seen: list[str] = []
    handler.on("*")(lambda event: seen.append(event.type))
    inbox = CeleryInbox(app, handler, key=KEY)
    body = sample_batch(["bounce"])
    headers = sign("momentum", body, **CREDENTIALS["momentum"])
    delivery = StoredDelivery(
        id=new_id(),
        sender="momentum",
        handler="momentum",
        body=body,
        headers=tuple(headers.items()),
        received=1.5,
    )
    message = payload(inbox.key.seal(delivery))
    changed = dict(
        message, body=base64.b64encode(body.replace(b'"bounce"', b'"delivery"')).decode()
    )
    for refused in (changed, dict(message, seal=None), dict(message, received=2.5)):
        with pytest.raises(TamperedDelivery):
            inbox.run(refused)
    assert seen == []
    assert (
        "does not verify; it is not run: the stored delivery's seal does not match" in caplog.text
    )
    assert "has no seal" in caplog.text
    assert inbox.run(message) == 1 and seen == ["bounce"]


def test_a_celery_inbox_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    handler = WebhookHandler("mindpeeker", **CREDENTIALS["mindpeeker"])
    monkeypatch.delenv("HOOKSHIELD_INBOX_KEY", raising=False)
    with pytest.raises(ValueError, match="CeleryInbox needs the key that seals its messages"):
        CeleryInbox(celery.Celery("no_key", broker="memory://"), handler)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        CeleryInbox(celery.Celery("short_key", broker="memory://"), handler, key="short")
    monkeypatch.setenv("HOOKSHIELD_INBOX_KEY", KEY)
    from_env = CeleryInbox(celery.Celery("env_key", broker="memory://"), handler)
    assert from_env.key.id == InboxKey(KEY).id


def test_the_message_holds_only_the_headers_verification_and_parsing_read() -> None:
    import flask

    from hookshield.flask import webhook_view

    # Sent through the broker (in memory here), not run eagerly: what the broker holds.
    app = celery.Celery("hookshield_broker", broker="memory://")
    secret = "github-celery-secret"
    handler = WebhookHandler("github", secret=secret)
    seen: list[str] = []
    handler.on("*")(lambda event: seen.append(event.type))
    inbox = CeleryInbox(app, handler, key=KEY)
    web = flask.Flask(__name__)
    web.add_url_rule("/hooks", view_func=webhook_view(handler, background=inbox))
    body, headers = sample_delivery("github", "issues.opened", secret=secret)
    unrelated = {
        "Cookie": "session=cookie-in-broker",
        "X-Forwarded-For": "203.0.113.78",
        "Authorization": "Bearer bearer-in-broker",
    }
    sent = web.test_client().post("/hooks", data=body, headers={**headers, **unrelated})
    assert sent.status_code == 200
    with app.connection_for_read() as connection:
        queued = connection.SimpleQueue("celery").get(timeout=5)
        raw = queued.body if isinstance(queued.body, bytes) else str(queued.body).encode()
        queued.ack()
    for value in unrelated.values():
        assert value.encode() not in raw
    (message,), _, _ = json.loads(raw)
    assert {name for name, _ in message["headers"]} == {
        "content-type",
        "x-hub-signature-256",
        "x-github-event",
        "x-github-delivery",
    }
    assert inbox.run(message) == 1 and seen == ["issues.opened"]
