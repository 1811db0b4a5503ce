"""What the headers alone settle is refused before a byte of the body is read.

A delivery without its sender's credential header, or with a wrong credential that
travels in a header alone (a token, Basic, Bearer), or with a ``Content-Length`` over
``max_body_size``, is answered without reading its body, in every adapter, through
each framework's own test client: the request bodies here record whether anything
read them.  A signature over the body can only be checked once the body is read, and
the controls show that such a delivery, and a valid one, are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import flask
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Route

from hookshield import Delivery, WebhookHandler
from hookshield._web.asgi_types import Message, Receive, Scope, Send
from hookshield.asgi import WebhookApp
from hookshield.fastapi import verified as fastapi_verified
from hookshield.flask import webhook_view as flask_view
from hookshield.testing import sample_delivery

from .support import (
    CREDENTIALS,
    SENDERS,
    SIGNING,
    RecordingStream,
    configure_django,
    credential_header,
    delivery,
    forged,
    without_content_type,
)

configure_django()

from django.core.handlers.wsgi import WSGIRequest  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from hookshield.django import webhook_view as django_view  # noqa: E402

TOKEN_SENDERS = tuple(sender for sender in SENDERS if sender not in SIGNING)


@dataclass(frozen=True)
class Case:
    """A request, the handler it goes to, and how it must be answered."""

    handler: dict[str, Any]
    sender: str
    body: bytes
    headers: dict[str, str]
    status: int
    read: bool  # whether the body must be read to answer
    length: int | None = None  # a Content-Length other than the body's
    options: dict[str, Any] = field(default_factory=dict)

    def build(self) -> WebhookHandler:
        return WebhookHandler(self.sender, **self.handler, **self.options)


def without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != name.lower()}


def cases() -> dict[str, Case]:
    found: dict[str, Case] = {}
    for sender in SENDERS:
        body, headers, _ = delivery(sender)
        creds = CREDENTIALS[sender]
        found[f"{sender}: valid"] = Case(creds, sender, body, headers, 200, read=True)
        bare = without(headers, credential_header(sender))
        found[f"{sender}: no credential header"] = Case(creds, sender, body, bare, 401, read=False)
        forged_body, forged_headers, _ = forged(sender)
        # A wrong token is known from the header; a wrong signature only from the body.
        found[f"{sender}: wrong credential"] = Case(
            creds, sender, forged_body, forged_headers, 401, read=sender in SIGNING
        )
    body, headers, _ = delivery("moco")
    found["moco: Content-Length over the limit"] = Case(
        CREDENTIALS["moco"], "moco", body, headers, 413, read=False, length=10**7,
        options={"max_body_size": 1024},
    )  # fmt: skip
    basic: dict[str, Any] = {"basic_auth": ("hooks", "right")}
    bearer: dict[str, Any] = {"bearer_token": "right"}
    attempts: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("wrong Basic password", basic, {"basic_auth": ("hooks", "wrong")}),
        ("wrong Bearer token", bearer, {"bearer_token": "wrong"}),
        ("Bearer for a Basic handler", basic, {"bearer_token": "right"}),
    ]
    for name, configured, sent in attempts:
        body, headers = sample_delivery("momentum", "delivery", **sent)
        found[f"momentum: {name}"] = Case(configured, "momentum", body, headers, 401, read=False)
    body, headers = sample_delivery("momentum", "delivery", **basic)
    found["momentum: right Basic"] = Case(basic, "momentum", body, headers, 200, read=True)
    return found


CASES = cases()


def check(case: Case, status: int, read: bool) -> None:
    assert status == case.status
    assert read is case.read


# -- Flask and Django: a recording WSGI input ----------------------------------------------


@pytest.mark.parametrize("case", CASES.values(), ids=CASES)
def test_flask(case: Case) -> None:
    app = flask.Flask(__name__)
    app.add_url_rule("/hooks", view_func=flask_view(case.build()))
    stream = RecordingStream(case.body)
    length = len(case.body) if case.length is None else case.length
    response = app.test_client().post(
        "/hooks",
        headers=case.headers,
        environ_overrides={"wsgi.input": stream, "CONTENT_LENGTH": str(length)},
    )
    check(case, response.status_code, stream.touched)
    assert set(response.get_json()) == ({"ok"} if case.status == 200 else {"error"})


@pytest.mark.parametrize("case", CASES.values(), ids=CASES)
def test_django(case: Case) -> None:
    content_type, rest = without_content_type(case.headers)
    sized = RequestFactory().post(
        "/hooks/", data=case.body, content_type=content_type, headers=rest
    )
    stream = RecordingStream(case.body)
    length = len(case.body) if case.length is None else case.length
    request = WSGIRequest({**sized.META, "wsgi.input": stream, "CONTENT_LENGTH": str(length)})
    response = django_view(case.build())(request)
    check(case, response.status_code, stream.touched)


# -- Starlette and FastAPI: a recording receive channel -----------------------------------


class Recording:
    """An ASGI app in front of another, counting the body bytes that one received."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.received = 0
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def recorded() -> Message:
            message = await receive()
            self.calls += 1
            self.received += len(message.get("body", b""))
            return message

        await self.app(scope, recorded, send)


def asgi_post(app: Recording, case: Case) -> int:
    headers = dict(case.headers)
    if case.length is not None:
        headers["Content-Length"] = str(case.length)
    with TestClient(app) as client:
        response = client.post("/hooks", content=case.body, headers=headers)
    status: int = response.status_code
    return status


@pytest.mark.parametrize("case", CASES.values(), ids=CASES)
def test_starlette(case: Case) -> None:
    app = Recording(Starlette(routes=[Route("/hooks", WebhookApp(case.build()))]))
    check(case, asgi_post(app, case), app.calls > 0)
    if not case.read:
        assert app.received == 0


def fastapi_app(handler: WebhookHandler) -> FastAPI:
    app = FastAPI()
    verified_delivery = Depends(fastapi_verified(handler))

    async def hook(delivery: Delivery) -> dict[str, int]:
        return {"events": len(delivery.events)}

    # Set as an object: this module's annotations are strings, which FastAPI resolves
    # in the module's globals, where this handler's dependency is not.
    hook.__annotations__["delivery"] = Annotated[Delivery, verified_delivery]
    app.post("/hooks")(hook)
    return app


@pytest.mark.parametrize("case", CASES.values(), ids=CASES)
def test_fastapi(case: Case) -> None:
    app = Recording(fastapi_app(case.build()))
    check(case, asgi_post(app, case), app.calls > 0)
    if not case.read:
        assert app.received == 0
