"""IP allow-lists in every adapter, through each framework's own test client.

A delivery from outside ``allowed_ips`` is answered 403 before a byte of its body is
read: the streams here record whether anything read them.
"""

from __future__ import annotations

import asyncio
import json
from types import ModuleType
from typing import Annotated, Any

import flask
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Route

from hookshield import MINDPEEKER_IPS, Delivery
from hookshield._web.asgi_types import Message, Scope
from hookshield.asgi import WebhookApp
from hookshield.fastapi import verified as fastapi_verified
from hookshield.flask import verified as flask_verified
from hookshield.flask import webhook_view as flask_view

from .support import Recorder, RecordingStream, configure_django, delivery, recorder

configure_django()

from django.core.handlers.wsgi import WSGIRequest  # noqa: E402
from django.test import Client, RequestFactory, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

from hookshield.django import webhook_view as django_view  # noqa: E402


def urlconf(*patterns: Any) -> ModuleType:
    """A URLconf module made on the spot."""
    module = ModuleType("hookshield_allowlist_urls")
    module.__dict__["urlpatterns"] = list(patterns)
    return module


ALLOWED = [*MINDPEEKER_IPS, "2001:db8:52::/48"]
PROXIES = ["10.0.0.0/8", "fd00::/8"]
OUTSIDER = "203.0.113.7"

#: (peer, headers, whether the delivery is accepted)
CASES = {
    "allowed peer": ("52.52.52.52", {}, True),
    "allowed IPv6 range": ("2001:db8:52::9", {}, True),
    "IPv4-mapped peer": ("::ffff:52.53.53.53", {}, True),
    "peer outside": (OUTSIDER, {}, False),
    "IPv6 outside the range": ("2001:db8:53::9", {}, False),
    "spoofed X-Forwarded-For from an untrusted peer": (
        OUTSIDER,
        {"X-Forwarded-For": "52.52.52.52"},
        False,
    ),
    "spoofed Forwarded from an untrusted peer": (OUTSIDER, {"Forwarded": "for=52.52.52.52"}, False),
    "through a trusted proxy": ("10.0.0.2", {"X-Forwarded-For": "52.52.52.52"}, True),
    "a trusted proxy is not the client": ("10.0.0.2", {}, False),
    "two trusted proxies": ("10.0.0.2", {"X-Forwarded-For": "52.52.52.52, fd00::3"}, True),
    "spoofed left-most entry behind a proxy": (
        "10.0.0.2",
        {"X-Forwarded-For": f"52.52.52.52, {OUTSIDER}"},
        False,
    ),
    "Forwarded with a quoted IPv6 and port": (
        "fd00::1",
        {"Forwarded": 'for="[2001:db8:52::1]:4711";proto=https, for=10.1.1.1'},
        True,
    ),
    "malformed X-Forwarded-For from a trusted proxy": (
        "10.0.0.2",
        {"X-Forwarded-For": "52.52.52.52, unknown"},
        False,
    ),
    "malformed Forwarded from a trusted proxy": ("10.0.0.2", {"Forwarded": "for=[::1]"}, False),
    "oversized X-Forwarded-For from a trusted proxy": (
        "10.0.0.2",
        {"X-Forwarded-For": "52.52.52.52, " * 1000 + "52.52.52.52"},
        False,
    ),
    "no peer address": ("", {}, False),
}


def allowlisted() -> Recorder:
    return recorder("mindpeeker", allowed_ips=ALLOWED, trusted_proxies=PROXIES)


def check(status: int, reply: dict[str, Any], accepted: bool, rec: Recorder, marker: str) -> None:
    if accepted:
        assert status == 200, reply
        assert rec.markers() == [marker]
    else:
        assert status == 403, reply
        assert rec.events == []


# -- Flask ------------------------------------------------------------------------------


def flask_client(rec: Recorder) -> Any:
    app = flask.Flask(__name__)
    app.add_url_rule("/hooks", view_func=flask_view(rec.handler))
    return app.test_client()


@pytest.mark.parametrize(("peer", "extra", "accepted"), CASES.values(), ids=CASES)
def test_flask(peer: str, extra: dict[str, str], accepted: bool) -> None:
    rec = allowlisted()
    body, headers, marker = delivery("mindpeeker")
    response = flask_client(rec).post(
        "/hooks", data=body, headers={**headers, **extra}, environ_base={"REMOTE_ADDR": peer}
    )
    check(response.status_code, response.get_json(), accepted, rec, marker)
    if not accepted:
        assert set(response.get_json()) == {"error"}


@pytest.mark.parametrize(("peer", "accepted"), [(OUTSIDER, False), ("52.52.52.52", True)])
def test_flask_refuses_before_reading_the_body(peer: str, accepted: bool) -> None:
    rec = allowlisted()
    body, headers, _ = delivery("mindpeeker")
    stream = RecordingStream(body)
    response = flask_client(rec).post(
        "/hooks",
        headers=headers,
        environ_base={"REMOTE_ADDR": peer},
        environ_overrides={"wsgi.input": stream, "CONTENT_LENGTH": str(len(body))},
    )
    assert response.status_code == (200 if accepted else 403)
    assert stream.touched is accepted


def test_flask_verified_view_checks_the_peer_too() -> None:
    rec = allowlisted()
    app = flask.Flask(__name__)
    seen: list[Delivery] = []

    @app.post("/hooks")
    @flask_verified(rec.handler)
    def hook(delivery: Delivery) -> str:
        seen.append(delivery)
        return "ok"

    body, headers, _ = delivery("mindpeeker")
    client = app.test_client()
    refused = client.post(
        "/hooks", data=body, headers=headers, environ_base={"REMOTE_ADDR": OUTSIDER}
    )
    assert refused.status_code == 403 and seen == []
    taken = client.post(
        "/hooks", data=body, headers=headers, environ_base={"REMOTE_ADDR": "52.52.52.52"}
    )
    assert taken.status_code == 200 and len(seen) == 1


# -- Django -----------------------------------------------------------------------------


@pytest.mark.parametrize(("peer", "extra", "accepted"), CASES.values(), ids=CASES)
def test_django(peer: str, extra: dict[str, str], accepted: bool) -> None:
    rec = allowlisted()
    body, headers, marker = delivery("mindpeeker")
    with override_settings(ROOT_URLCONF=urlconf(path("hooks/", django_view(rec.handler)))):
        response = Client().post(
            "/hooks/",
            data=body,
            content_type=headers.pop("Content-Type", "application/json"),
            headers={**headers, **extra},
            REMOTE_ADDR=peer,
        )
    check(response.status_code, json.loads(response.content), accepted, rec, marker)


def test_django_without_remote_addr_is_refused() -> None:
    rec = allowlisted()
    body, headers, _ = delivery("mindpeeker")
    request = RequestFactory().post(
        "/hooks/", data=body, content_type="application/json", headers=headers
    )
    del request.META["REMOTE_ADDR"]
    assert django_view(rec.handler)(request).status_code == 403


@pytest.mark.parametrize(("peer", "accepted"), [(OUTSIDER, False), ("52.52.52.52", True)])
def test_django_refuses_before_reading_the_body(peer: str, accepted: bool) -> None:
    rec = allowlisted()
    body, headers, _ = delivery("mindpeeker")
    sized = RequestFactory().post(
        "/hooks/", data=body, content_type="application/json", headers=headers
    )
    stream = RecordingStream(body)
    request = WSGIRequest({**sized.META, "wsgi.input": stream, "REMOTE_ADDR": peer})
    response = django_view(rec.handler)(request)
    assert response.status_code == (200 if accepted else 403)
    assert stream.touched is accepted


# -- ASGI (Starlette) -----------------------------------------------------------------------


@pytest.mark.parametrize(("peer", "extra", "accepted"), CASES.values(), ids=CASES)
def test_starlette(peer: str, extra: dict[str, str], accepted: bool) -> None:
    rec = allowlisted()
    body, headers, marker = delivery("mindpeeker")
    app = Starlette(routes=[Route("/hooks", WebhookApp(rec.handler))])
    with TestClient(from_peer(app, peer)) as client:
        response = client.post("/hooks", content=body, headers={**headers, **extra})
    check(response.status_code, response.json(), accepted, rec, marker)


def from_peer(app: Any, peer: str) -> Any:
    """``app`` as a server would call it for a connection from ``peer``.

    Starlette's TestClient takes ``client=`` only from 0.38 on; this works on every
    release the adapters support.
    """

    async def served(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": (peer, 50000)}
        await app(scope, receive, send)

    return served


def asgi_scope(headers: dict[str, str], client: tuple[str, int] | None) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/hooks",
        "raw_path": b"/hooks",
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": client,
        "server": ("127.0.0.1", 8000),
    }


def call_asgi(app: Any, body: bytes, headers: dict[str, str], client: Any) -> tuple[int, int]:
    """Call ``app`` as a server would; return the status and how many receives it made."""
    received = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(asgi_scope(headers, client), receive, send))
    return sent[0]["status"], received


@pytest.mark.parametrize(
    ("client", "accepted"),
    [((OUTSIDER, 1), False), (None, False), (("52.52.52.52", 1), True)],
    ids=["outside", "no client", "allowed"],
)
def test_asgi_refuses_before_reading_the_body(client: Any, accepted: bool) -> None:
    rec = allowlisted()
    body, headers, _ = delivery("mindpeeker")
    status, received = call_asgi(WebhookApp(rec.handler), body, headers, client)
    assert status == (200 if accepted else 403)
    assert (received > 0) is accepted


# -- FastAPI ------------------------------------------------------------------------------


def fastapi_app(rec: Recorder, seen: list[Delivery]) -> FastAPI:
    app = FastAPI()
    verified_delivery = Depends(fastapi_verified(rec.handler))

    async def hook(delivery: Delivery) -> dict[str, int]:
        seen.append(delivery)
        return {"events": len(delivery.events)}

    # Set as an object: this module's annotations are strings, which FastAPI resolves
    # in the module's globals, where this handler's dependency is not.
    hook.__annotations__["delivery"] = Annotated[Delivery, verified_delivery]
    app.post("/hooks")(hook)
    return app


@pytest.mark.parametrize(("peer", "extra", "accepted"), CASES.values(), ids=CASES)
def test_fastapi(peer: str, extra: dict[str, str], accepted: bool) -> None:
    seen: list[Delivery] = []
    rec = allowlisted()
    body, headers, _ = delivery("mindpeeker")
    client = TestClient(from_peer(fastapi_app(rec, seen), peer))
    response = client.post("/hooks", content=body, headers={**headers, **extra})
    if accepted:
        assert response.status_code == 200 and len(seen) == 1
    else:
        assert response.status_code == 403 and seen == []
        assert set(response.json()) == {"detail"}


@pytest.mark.parametrize(
    ("client", "accepted"),
    [((OUTSIDER, 1), False), (None, False), (("52.52.52.52", 1), True)],
    ids=["outside", "no client", "allowed"],
)
def test_fastapi_refuses_before_reading_the_body(client: Any, accepted: bool) -> None:
    seen: list[Delivery] = []
    body, headers, _ = delivery("mindpeeker")
    status, received = call_asgi(fastapi_app(allowlisted(), seen), body, headers, client)
    assert status == (200 if accepted else 403)
    assert (received > 0) is accepted
    assert len(seen) == int(accepted)
