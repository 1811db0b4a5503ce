"""hookshield.fastapi, through FastAPI's TestClient.

No ``from __future__ import annotations`` here: FastAPI reads the route annotations
at run time, and they name handlers local to each test.
"""

import json
import logging
from typing import Annotated, Any

import pytest
from fastapi import BackgroundTasks, Depends, FastAPI, Request
from fastapi.testclient import TestClient
from starlette.routing import Route

from hookshield import Delivery, WebhookHandler
from hookshield.asgi import WebhookApp
from hookshield.fastapi import verified, verified_route

from ..doubles import BrokenStore
from .support import (
    CREDENTIALS,
    SIGNING,
    SMALL_LIMIT,
    body_eater,
    delivery,
    forged,
    recorder,
    tampered,
)

#: The two ways a route gets the delivery: the dependency, and the decorator.
SHAPES = ("dependency", "decorator")


@pytest.fixture(params=SHAPES)
def shape(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def app_for(
    handler: WebhookHandler, seen: list[Delivery], shape: str, *, fail: int = 0
) -> TestClient:
    """An app with an async route taking a path value, and a plain one taking any method."""
    app = FastAPI()
    failures = [fail]

    async def hook(delivery: Delivery, tenant: str) -> dict[str, Any]:
        if failures[0]:
            failures[0] -= 1
            raise RuntimeError("route failed")
        seen.append(delivery)
        return {"tenant": tenant, "events": len(delivery.events)}

    def any_method(delivery: Delivery) -> dict[str, int]:
        seen.append(delivery)
        return {"events": len(delivery.events)}

    if shape == "decorator":
        app.post("/hooks/{tenant}")(verified_route(handler)(hook))
        app.api_route("/any", methods=["GET", "POST", "PUT"])(verified_route(handler)(any_method))
        return TestClient(app, raise_server_exceptions=False)
    Verified = Annotated[Delivery, Depends(verified(handler))]

    @app.post("/hooks/{tenant}")
    async def hook_with_dependency(tenant: str, delivery: Verified) -> dict[str, Any]:
        return await hook(delivery, tenant)

    @app.api_route("/any", methods=["GET", "POST", "PUT"])
    def any_method_with_dependency(delivery: Verified) -> dict[str, int]:
        return any_method(delivery)

    return TestClient(app, raise_server_exceptions=False)


def test_the_route_gets_the_verified_delivery(sender: str, shape: str) -> None:
    seen: list[Delivery] = []
    rec = recorder(sender)
    client = app_for(rec.handler, seen, shape)
    body, headers, marker = delivery(sender)
    response = client.post("/hooks/acme", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"tenant": "acme", "events": 1}
    assert [d.events[0].data.get("marker") for d in seen] == [marker]
    assert seen[0].body == body
    assert rec.events == []  # the route is the handler


def test_a_forged_delivery_is_refused_before_the_route(sender: str, shape: str) -> None:
    seen: list[Delivery] = []
    client = app_for(recorder(sender).handler, seen, shape)
    body, headers, _ = forged(sender)
    response = client.post("/hooks/acme", content=body, headers=headers)
    assert response.status_code == 401
    for secret in CREDENTIALS[sender].values():
        assert secret not in response.text
    assert seen == []


@pytest.mark.parametrize("sender", SIGNING)
def test_a_tampered_body_is_refused(sender: str, shape: str) -> None:
    seen: list[Delivery] = []
    client = app_for(recorder(sender).handler, seen, shape)
    body, headers, _ = tampered(sender)
    assert client.post("/hooks/acme", content=body, headers=headers).status_code == 401
    assert seen == []


def test_a_body_read_before_hookshield_is_a_500_that_says_why(
    shape: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Delivery] = []
    client = app_for(recorder("mindpeeker").handler, seen, shape)
    body, headers, _ = delivery("mindpeeker")
    with caplog.at_level(logging.ERROR, logger="hookshield"):
        response = TestClient(body_eater(client.app)).post(
            "/hooks/acme", content=body, headers=headers
        )
    assert response.status_code == 500
    assert "signature" not in response.text
    assert seen == []
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "read before hookshield" in record.getMessage()


def test_a_body_over_the_limit_gets_413(sender: str, shape: str) -> None:
    seen: list[Delivery] = []
    client = app_for(recorder(sender, max_body_size=SMALL_LIMIT).handler, seen, shape)
    body, headers, _ = delivery(sender, pad=2 * SMALL_LIMIT)
    assert client.post("/hooks/acme", content=body, headers=headers).status_code == 413

    def chunks() -> Any:
        yield body[:SMALL_LIMIT]
        yield body[SMALL_LIMIT:]

    # Without a Content-Length (a streamed upload), reading stops at the limit.
    streamed = client.post("/hooks/acme", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert seen == []


def test_another_method_gets_405(sender: str, shape: str) -> None:
    seen: list[Delivery] = []
    client = app_for(recorder(sender).handler, seen, shape)
    assert client.get("/hooks/acme").status_code == 405  # FastAPI's router
    for method in ("GET", "PUT"):
        response = client.request(method, "/any")  # the dependency
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
    assert seen == []


def test_a_duplicate_is_acknowledged_without_the_route(sender: str, shape: str) -> None:
    seen: list[Delivery] = []
    client = app_for(recorder(sender).handler, seen, shape)
    body, headers, _ = delivery(sender)
    assert client.post("/hooks/acme", content=body, headers=headers).status_code == 200
    duplicate = client.post("/hooks/acme", content=body, headers=headers)
    assert duplicate.status_code == 200
    assert "duplicate" in duplicate.json()["detail"]
    assert len(seen) == 1


def test_a_delivery_whose_route_raised_is_processed_again(shape: str) -> None:
    seen: list[Delivery] = []
    client = app_for(recorder("moco").handler, seen, shape, fail=1)
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


def test_a_route_that_returns_completes_the_delivery(shape: str) -> None:
    seen: list[Delivery] = []
    handler = recorder("moco").handler
    client = app_for(handler, seen, shape)
    body, headers, _ = delivery("moco")
    assert client.post("/hooks/acme", content=body, headers=headers).status_code == 200
    # Completed, not merely held: the retry is a duplicate, not "still running".
    assert handler.accept(body, headers).duplicate


def test_409_and_503_carry_retry_after(shape: str) -> None:
    seen: list[Delivery] = []
    handler = recorder("moco").handler
    body, headers, _ = delivery("moco")
    running = handler.accept(body, headers)
    client = app_for(handler, seen, shape)
    in_progress = client.post("/hooks/acme", content=body, headers=headers)
    assert (in_progress.status_code, in_progress.headers["retry-after"]) == (409, "30")
    running.release()
    down = app_for(recorder("moco", dedupe=BrokenStore()).handler, seen, shape)
    unavailable = down.post("/hooks/acme", content=body, headers=headers)
    assert (unavailable.status_code, unavailable.headers["retry-after"]) == (503, "30")
    # Our side's trouble (the store's error) is not the sender's to read.
    assert unavailable.json() == {"detail": "the delivery could not be processed; please retry"}
    assert seen == []


# -- the decorator's own contract ---------------------------------------------------------


def test_a_decorated_route_keeps_its_other_parameters() -> None:
    handler = recorder("moco").handler
    app = FastAPI()
    ran: list[str] = []

    def tenant_name(tenant: str) -> str:
        return tenant.upper()

    @app.post("/hooks/{tenant}")
    @verified_route(handler)
    async def hook(
        delivery: "Delivery",  # a string, as under `from __future__ import annotations`
        request: Request,
        background: BackgroundTasks,
        name: Annotated[str, Depends(tenant_name)],
        attempt: "int" = 0,
    ) -> dict[str, Any]:
        background.add_task(ran.append, delivery.id)
        return {"name": name, "attempt": attempt, "path": request.url.path}

    client = TestClient(app)
    body, headers, _ = delivery("moco")
    response = client.post("/hooks/acme?attempt=2", content=body, headers=headers)
    assert response.json() == {"name": "ACME", "attempt": 2, "path": "/hooks/acme"}
    assert len(ran) == 1
    # A query value of the wrong type is FastAPI's 422, before the delivery is read.
    assert client.post("/hooks/acme?attempt=x", content=body, headers=headers).status_code == 422
    # The delivery and the request hookshield reads are not parameters of the API.
    operation = app.openapi()["paths"]["/hooks/{tenant}"]["post"]
    assert sorted(p["name"] for p in operation["parameters"]) == ["attempt", "tenant"]
    assert "requestBody" not in operation


def test_a_decorated_route_must_take_the_delivery() -> None:
    handler = recorder("moco").handler

    async def nothing() -> None:
        return None

    async def clashing(delivery: Delivery, hookshield_request: str) -> None:
        return None

    async def keyword_only(*, delivery: Delivery) -> None:
        return None

    async def variadic(delivery: Delivery, *more: str) -> None:
        return None

    with pytest.raises(TypeError, match="first one"):
        verified_route(handler)(nothing)
    with pytest.raises(TypeError, match="first one"):
        verified_route(handler)(keyword_only)
    with pytest.raises(TypeError, match=r"\*args"):
        verified_route(handler)(variadic)
    with pytest.raises(TypeError, match="hookshield_request"):
        verified_route(handler)(clashing)


def test_a_decorated_callable_object_with_an_async_call_is_awaited() -> None:
    handler = recorder("moco").handler
    seen: list[str] = []

    class Hook:
        async def __call__(self, delivery: Delivery) -> dict[str, int]:
            seen.append(delivery.id)
            return {"events": len(delivery.events)}

    app = FastAPI()
    app.post("/hooks")(verified_route(handler)(Hook()))
    body, headers, _ = delivery("moco")
    response = TestClient(app).post("/hooks", content=body, headers=headers)
    assert (response.status_code, response.json()) == (200, {"events": 1})
    assert len(seen) == 1
