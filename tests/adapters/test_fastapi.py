"""hookshield.fastapi, through FastAPI's TestClient.

No ``from __future__ import annotations`` here: FastAPI reads the route annotations
at run time, and they name handlers local to each test.
"""

import json
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Route

from hookshield import Delivery, WebhookHandler
from hookshield.asgi import WebhookApp
from hookshield.fastapi import verified

from ..doubles import BrokenStore
from .support import CREDENTIALS, SIGNING, SMALL_LIMIT, delivery, forged, recorder, tampered


def app_for(handler: WebhookHandler, seen: list[Delivery], *, fail: int = 0) -> TestClient:
    app = FastAPI()
    failures = [fail]
    Verified = Annotated[Delivery, Depends(verified(handler))]

    @app.post("/hooks/{tenant}")
    async def hook(tenant: str, delivery: Verified) -> dict[str, Any]:
        if failures[0]:
            failures[0] -= 1
            raise RuntimeError("route failed")
        seen.append(delivery)
        return {"tenant": tenant, "events": len(delivery.events)}

    @app.api_route("/any", methods=["GET", "POST", "PUT"])
    def any_method(delivery: Verified) -> dict[str, int]:
        seen.append(delivery)
        return {"events": len(delivery.events)}

    return TestClient(app, raise_server_exceptions=False)


def test_the_route_gets_the_verified_delivery(sender: str) -> None:
    seen: list[Delivery] = []
    rec = recorder(sender)
    client = app_for(rec.handler, seen)
    body, headers, marker = delivery(sender)
    response = client.post("/hooks/acme", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"tenant": "acme", "events": 1}
    assert [d.events[0].data.get("marker") for d in seen] == [marker]
    assert seen[0].body == body
    assert rec.events == []  # the route is the handler


def test_a_forged_delivery_is_refused_before_the_route(sender: str) -> None:
    seen: list[Delivery] = []
    client = app_for(recorder(sender).handler, seen)
    body, headers, _ = forged(sender)
    response = client.post("/hooks/acme", content=body, headers=headers)
    assert response.status_code == 401
    for secret in CREDENTIALS[sender].values():
        assert secret not in response.text
    assert seen == []


@pytest.mark.parametrize("sender", SIGNING)
def test_a_tampered_body_is_refused(sender: str) -> None:
    seen: list[Delivery] = []
    client = app_for(recorder(sender).handler, seen)
    body, headers, _ = tampered(sender)
    assert client.post("/hooks/acme", content=body, headers=headers).status_code == 401
    assert seen == []


def test_a_body_over_the_limit_gets_413(sender: str) -> None:
    seen: list[Delivery] = []
    client = app_for(recorder(sender, max_body_size=SMALL_LIMIT).handler, seen)
    body, headers, _ = delivery(sender, pad=2 * SMALL_LIMIT)
    assert client.post("/hooks/acme", content=body, headers=headers).status_code == 413

    def chunks() -> Any:
        yield body[:SMALL_LIMIT]
        yield body[SMALL_LIMIT:]

    # Without a Content-Length (a streamed upload), reading stops at the limit.
    streamed = client.post("/hooks/acme", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert seen == []


def test_another_method_gets_405(sender: str) -> None:
    seen: list[Delivery] = []
    client = app_for(recorder(sender).handler, seen)
    assert client.get("/hooks/acme").status_code == 405  # FastAPI's router
    for method in ("GET", "PUT"):
        response = client.request(method, "/any")  # the dependency
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
    assert seen == []


def test_a_duplicate_is_acknowledged_without_the_route(sender: str) -> None:
    seen: list[Delivery] = []
    client = app_for(recorder(sender).handler, seen)
    body, headers, _ = delivery(sender)
    assert client.post("/hooks/acme", content=body, headers=headers).status_code == 200
    duplicate = client.post("/hooks/acme", content=body, headers=headers)
    assert duplicate.status_code == 200
    assert "duplicate" in duplicate.json()["detail"]
    assert len(seen) == 1


def test_a_delivery_whose_route_raised_is_processed_again() -> None:
    seen: list[Delivery] = []
    client = app_for(recorder("moco").handler, seen, fail=1)
    body, headers, _ = delivery("moco")
    assert client.post("/hooks/acme", content=body, headers=headers).status_code == 500
    assert client.post("/hooks/acme", content=body, headers=headers).status_code == 200
    assert len(seen) == 1


def test_a_webhook_app_serves_a_fastapi_route(sender: str) -> None:
    rec = recorder(sender)
    app = FastAPI()
    app.router.routes.append(Route("/hooks", WebhookApp(rec.handler)))
    client = TestClient(app)
    body, headers, marker = delivery(sender)
    assert client.post("/hooks", content=body, headers=headers).status_code == 200
    assert client.post("/hooks", content=body, headers=headers).status_code == 200
    assert json.loads(client.get("/hooks").text)["error"].startswith("webhooks are delivered")
    assert rec.markers() == [marker]


def test_a_route_that_returns_completes_the_delivery() -> None:
    seen: list[Delivery] = []
    handler = recorder("moco").handler
    client = app_for(handler, seen)
    body, headers, _ = delivery("moco")
    assert client.post("/hooks/acme", content=body, headers=headers).status_code == 200
    # Completed, not merely held: the retry is a duplicate, not "still running".
    assert handler.accept(body, headers).duplicate


def test_409_and_503_carry_retry_after() -> None:
    seen: list[Delivery] = []
    handler = recorder("moco").handler
    body, headers, _ = delivery("moco")
    running = handler.accept(body, headers)
    in_progress = app_for(handler, seen).post("/hooks/acme", content=body, headers=headers)
    assert (in_progress.status_code, in_progress.headers["retry-after"]) == (409, "30")
    running.release()
    down = app_for(recorder("moco", dedupe=BrokenStore()).handler, seen)
    unavailable = down.post("/hooks/acme", content=body, headers=headers)
    assert (unavailable.status_code, unavailable.headers["retry-after"]) == (503, "30")
    # Our side's trouble (the store's error) is not the sender's to read.
    assert unavailable.json() == {"detail": "the delivery could not be processed; please retry"}
    assert seen == []
