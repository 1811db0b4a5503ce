"""``background=inbox`` in every adapter: stored before the 2xx, 503 when it cannot be."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
from fastapi.testclient import TestClient as FastAPIClient
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from hookshield import SQLiteInbox, StoredDelivery, WebhookHandler, run_worker
from hookshield.asgi import WebhookApp, WebhookMiddleware
from hookshield.flask import webhook_view as flask_view
from hookshield.testing import sample_batch, sample_delivery, sign

from . import inbox_fastapi
from .support import CREDENTIALS, Recorder, configure_django, delivery, forged, recorder

configure_django()

from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import RequestFactory, override_settings  # noqa: E402

from hookshield.django import WebhookMiddleware as DjangoMiddleware  # noqa: E402
from hookshield.django import webhook_view as django_view  # noqa: E402

from .support import without_content_type  # noqa: E402

#: Sends one delivery: (body, headers) -> (status, response headers).
Post = Callable[[bytes, dict[str, str]], tuple[int, dict[str, str]]]


def _flask(handler: WebhookHandler, inbox: Any) -> Post:
    app = flask.Flask(__name__)
    app.add_url_rule("/hooks", view_func=flask_view(handler, background=inbox))
    client = app.test_client()

    def post(body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        response = client.post("/hooks", data=body, headers=headers)
        return response.status_code, dict(response.headers)

    return post


def _django_request(body: bytes, headers: dict[str, str]) -> HttpRequest:
    content_type, rest = without_content_type(headers)
    return RequestFactory().post("/hooks/", data=body, content_type=content_type, headers=rest)


def _django_answer(response: HttpResponse) -> tuple[int, dict[str, str]]:
    return response.status_code, dict(response.items())


def _django(handler: WebhookHandler, inbox: Any) -> Post:
    view = django_view(handler, background=inbox)
    return lambda body, headers: _django_answer(view(_django_request(body, headers)))


def _django_middleware(handler: WebhookHandler, inbox: Any) -> Post:
    with override_settings(HOOKSHIELD_ENDPOINTS={"/hooks/": handler}, HOOKSHIELD_INBOX=inbox):
        middleware = DjangoMiddleware(lambda request: HttpResponse(status=404))
    return lambda body, headers: _django_answer(middleware(_django_request(body, headers)))


def _client(app: Any) -> Post:
    client = TestClient(app)

    def post(body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        response = client.post("/hooks", content=body, headers=headers)
        return response.status_code, dict(response.headers)

    return post


def _asgi(handler: WebhookHandler, inbox: Any) -> Post:
    return _client(Starlette(routes=[Route("/hooks", WebhookApp(handler, background=inbox))]))


def _asgi_middleware(handler: WebhookHandler, inbox: Any) -> Post:
    inner = Starlette(routes=[Route("/", lambda request: PlainTextResponse("home"))])
    return _client(WebhookMiddleware(inner, endpoints={"/hooks": handler}, background=inbox))


def _fastapi(handler: WebhookHandler, inbox: Any, *, decorated: bool = False) -> Post:
    app = inbox_fastapi.app_for(handler, inbox, decorated=decorated)
    client = FastAPIClient(app)

    def post(body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        response = client.post("/hooks", content=body, headers=headers)
        if response.status_code == 200 and "stored" in response.json():
            assert response.json()["events"] == 1
        return response.status_code, dict(response.headers)

    return post


ADAPTERS: dict[str, Callable[[WebhookHandler, Any], Post]] = {
    "flask": _flask,
    "django": _django,
    "django-middleware": _django_middleware,
    "asgi": _asgi,
    "asgi-middleware": _asgi_middleware,
    "fastapi": _fastapi,
    "fastapi-decorator": functools.partial(_fastapi, decorated=True),
}


@pytest.fixture(params=list(ADAPTERS))
def serve(request: pytest.FixtureRequest) -> Callable[[WebhookHandler, Any], Post]:
    served: Callable[[WebhookHandler, Any], Post] = ADAPTERS[request.param]
    return served


@pytest.fixture
def inbox(tmp_path: Path) -> SQLiteInbox:
    return SQLiteInbox(tmp_path / "inbox.db", timeout=0.05)


@pytest.fixture
def rec() -> Recorder:
    return recorder("mindpeeker")


def test_a_delivery_is_stored_before_the_answer_and_a_retry_is_a_duplicate(
    serve: Callable[[WebhookHandler, Any], Post], inbox: SQLiteInbox, rec: Recorder
) -> None:
    post = serve(rec.handler, inbox)
    body, headers, marker = delivery("mindpeeker")
    assert post(body, headers)[0] == 200
    [row] = inbox.list()
    assert (row.sender, row.handler, row.body, row.state) == (
        "mindpeeker",
        "mindpeeker",
        body,
        "pending",
    )
    assert rec.markers() == []  # the routes run in the worker, not in the request
    assert post(body, headers)[0] == 200  # the sender's retry
    assert len(inbox.list()) == 1
    run_worker(inbox, rec.handler, burst=True)
    assert rec.markers() == [marker]


def test_a_forged_delivery_is_refused_and_not_stored(
    serve: Callable[[WebhookHandler, Any], Post], inbox: SQLiteInbox, rec: Recorder
) -> None:
    body, headers, _ = forged("mindpeeker")
    assert serve(rec.handler, inbox)(body, headers)[0] == 401
    assert inbox.list() == []


def test_an_inbox_keeping_refusals_is_handed_each_one(
    serve: Callable[[WebhookHandler, Any], Post], tmp_path: Path, rec: Recorder
) -> None:
    keeping = SQLiteInbox(tmp_path / "keeping.db", keep_refused=10)
    post = serve(rec.handler, keeping)
    body, headers, _ = forged("mindpeeker")
    assert post(body, headers)[0] == 401  # refused by its signature, over the body read
    assert post(b"{}", {"Content-Type": "application/json"})[0] == 401  # before the body
    good, good_headers, _ = delivery("mindpeeker")
    assert post(good, good_headers)[0] == 200
    kept = keeping.refused()
    assert [(r.error, r.body, r.body_size) for r in kept] == [
        ("MissingCredentials", b"", None),
        ("InvalidSignature", body, len(body)),
    ]
    assert all(r.peer for r in kept)  # the connection's address, as the server gave it


@pytest.fixture
def locked(inbox: SQLiteInbox) -> Iterator[Callable[[], None]]:
    """Hold the inbox's write lock until the returned function is called."""
    inbox.list()  # creates the file
    holder = sqlite3.connect(inbox.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    held = [True]

    def unlock() -> None:
        if held[0]:
            holder.execute("ROLLBACK")
            held[0] = False

    yield unlock
    unlock()
    holder.close()


def test_a_failed_put_answers_503_and_the_retry_is_stored(
    serve: Callable[[WebhookHandler, Any], Post],
    inbox: SQLiteInbox,
    rec: Recorder,
    locked: Callable[[], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    post = serve(rec.handler, inbox)
    body, headers, marker = delivery("mindpeeker")
    status, answer = post(body, headers)
    assert status == 503
    assert answer.get("Retry-After", answer.get("retry-after")) == "30"
    assert "could not store a mindpeeker delivery" in caplog.text
    locked()
    # The claim was released: the sender's retry is stored, not taken for a duplicate.
    assert post(body, headers)[0] == 200
    assert len(inbox.list()) == 1
    run_worker(inbox, rec.handler, burst=True)
    assert rec.markers() == [marker]


class Interrupted:
    """An inbox whose put is interrupted (a worker timeout's SystemExit, Ctrl-C)."""

    def put(self, delivery: StoredDelivery) -> None:
        raise KeyboardInterrupt


def test_an_interrupted_put_releases_the_claim(rec: Recorder, inbox: SQLiteInbox) -> None:
    body, headers, _ = delivery("mindpeeker")
    with pytest.raises(KeyboardInterrupt):
        _flask(rec.handler, Interrupted())(body, headers)
    assert _flask(rec.handler, inbox)(body, headers)[0] == 200
    assert len(inbox.list()) == 1


def test_only_the_new_events_of_a_batch_are_stored_and_run(
    serve: Callable[[WebhookHandler, Any], Post], inbox: SQLiteInbox
) -> None:
    handler = WebhookHandler("momentum", **CREDENTIALS["momentum"])
    seen: list[str | None] = []
    handler.on("*")(lambda event: seen.append(event.id))
    records = json.loads(sample_batch(["delivery", "bounce"]))
    first = json.dumps(records[:1]).encode()
    assert handler.handle(
        first, sign("momentum", first, batch_id="b-1", **CREDENTIALS["momentum"])
    ).ok
    both = json.dumps(records).encode()
    status, _ = serve(handler, inbox)(
        both, sign("momentum", both, batch_id="b-2", **CREDENTIALS["momentum"])
    )
    assert status == 200
    [row] = inbox.list()
    ids = [event.id for event in records_of(handler, both)]
    assert row.events == (ids[1],)
    assert row.event_types == ("bounce",)
    seen.clear()
    run_worker(inbox, handler, burst=True)
    assert seen == [ids[1]]


def records_of(handler: WebhookHandler, body: bytes) -> list[Any]:
    return list(handler.iter_events(body, sign("momentum", body, **CREDENTIALS["momentum"])))


def test_the_django_inbox_setting_refuses_what_is_not_an_inbox(
    rec: Recorder,
) -> None:
    endpoints = {"/hooks/": rec.handler}
    for setting, message in (("no.such.inbox", "HOOKSHIELD_INBOX"), ("json.dumps", "not an inbox")):
        with (
            override_settings(HOOKSHIELD_ENDPOINTS=endpoints, HOOKSHIELD_INBOX=setting),
            pytest.raises(ImproperlyConfigured, match=message),
        ):
            DjangoMiddleware(lambda request: HttpResponse())


#: What a request carries besides what its sender's verification and parse read.
UNRELATED = {
    "Cookie": "session=cookie-at-rest",
    "X-Forwarded-For": "203.0.113.77",
    "Authorization": "Bearer bearer-at-rest",
    "X-Request-Id": "request-at-rest",
}


@pytest.mark.parametrize(
    ("sender", "credentials", "kept"),
    [
        (
            "github",
            {"secret": "github-adapter-secret"},
            {"content-type", "x-hub-signature-256", "x-github-event", "x-github-delivery"},
        ),
        # A shared token is not kept at rest: the inbox's seal vouches for the row.
        ("momentum", CREDENTIALS["momentum"], {"content-type", "x-messagesystems-batch-id"}),
    ],
)
def test_only_the_headers_verification_and_parsing_read_are_kept_at_rest(
    serve: Callable[[WebhookHandler, Any], Post],
    inbox: SQLiteInbox,
    sender: str,
    credentials: dict[str, Any],
    kept: set[str],
) -> None:
    handler = WebhookHandler(sender, **credentials)
    seen: list[str] = []
    handler.on("*")(lambda event: seen.append(event.type))
    kind = "issues.opened" if sender == "github" else "bounce"
    body, headers = sample_delivery(sender, kind, **credentials)
    assert serve(handler, inbox)(body, {**headers, **UNRELATED})[0] == 200
    [row] = inbox.list()
    assert {name.lower() for name, _ in row.headers} == kept
    # Nor anywhere in the file, nor in its log (WAL).
    inbox.close()
    at_rest = b"".join(
        path.read_bytes() for path in inbox.path.parent.iterdir() if path.name.startswith("inbox")
    )
    for value in (*UNRELATED.values(), *credentials.values()):
        assert str(value).encode() not in at_rest
    assert run_worker(inbox, handler, burst=True).done == 1
    assert seen == [kind]
