"""hookshield.django, through Django's own test client."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from .support import (
    CREDENTIALS,
    SIGNING,
    SMALL_LIMIT,
    Recorder,
    configure_django,
    delivery,
    forged,
    recorder,
    tampered,
    wait_for,
    without_content_type,
)

configure_django()

from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed  # noqa: E402
from django.core.handlers.wsgi import WSGIRequest  # noqa: E402
from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.test import Client, RequestFactory, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

from hookshield import Delivery, Event  # noqa: E402
from hookshield.django import BackgroundPool, WebhookMiddleware, verified, webhook_view  # noqa: E402

from . import django_endpoints  # noqa: E402

MIDDLEWARE = [
    "hookshield.django.WebhookMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]


def urlconf(*patterns: Any) -> ModuleType:
    """A URLconf module made on the spot, so that each test routes to its own views."""
    module = ModuleType("hookshield_test_urls")
    module.__dict__["urlpatterns"] = list(patterns)
    return module


def post(client: Client, url: str, body: bytes, headers: dict[str, str]) -> Any:
    content_type, rest = without_content_type(headers)
    return client.post(url, data=body, content_type=content_type, headers=rest)


@pytest.fixture
def serving() -> Iterator[Callable[..., Client]]:
    """Serve the given URL patterns (and settings) to a CSRF-enforcing test client."""
    overrides: list[override_settings] = []

    def serve(*patterns: Any, **settings: Any) -> Client:
        override = override_settings(ROOT_URLCONF=urlconf(*patterns), **settings)
        override.enable()
        overrides.append(override)
        return Client(enforce_csrf_checks=True, raise_request_exception=False)

    yield serve
    for override in reversed(overrides):
        override.disable()


@pytest.fixture
def rec(sender: str) -> Recorder:
    return recorder(sender)


@pytest.fixture
def client(rec: Recorder, serving: Callable[..., Client]) -> Client:
    return serving(path("hooks/", webhook_view(rec.handler)))


def test_a_valid_delivery_runs_the_handler(sender: str, rec: Recorder, client: Client) -> None:
    body, headers, marker = delivery(sender)
    response = post(client, "/hooks/", body, headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"ok": True}
    assert rec.markers() == [marker]


def test_a_forged_delivery_is_refused(sender: str, rec: Recorder, client: Client) -> None:
    body, headers, _ = forged(sender)
    response = post(client, "/hooks/", body, headers)
    assert response.status_code == 401
    assert set(json.loads(response.content)) == {"error"}
    for secret in CREDENTIALS[sender].values():
        assert secret.encode() not in response.content
    assert rec.events == []


@pytest.mark.parametrize("sender", SIGNING)
def test_a_tampered_body_is_refused(sender: str, rec: Recorder, client: Client) -> None:
    body, headers, _ = tampered(sender)
    assert post(client, "/hooks/", body, headers).status_code == 401
    assert rec.events == []


def test_a_body_over_the_limit_gets_413(sender: str, serving: Callable[..., Client]) -> None:
    rec = recorder(sender, max_body_size=SMALL_LIMIT)
    client = serving(path("hooks/", webhook_view(rec.handler)))
    body, headers, _ = delivery(sender, pad=2 * SMALL_LIMIT)
    response = post(client, "/hooks/", body, headers)
    assert response.status_code == 413
    assert rec.events == []


def test_a_body_larger_than_djangos_upload_limit_is_accepted(
    serving: Callable[..., Client],
) -> None:
    # DATA_UPLOAD_MAX_MEMORY_SIZE guards request.POST; a large Momentum batch must pass.
    rec = recorder("momentum")
    client = serving(path("hooks/", webhook_view(rec.handler)), DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
    body, headers, marker = delivery("momentum", pad=5000)
    assert post(client, "/hooks/", body, headers).status_code == 200
    assert rec.markers() == [marker]


def test_another_method_gets_405(sender: str, rec: Recorder, client: Client) -> None:
    for response in (client.get("/hooks/"), client.put("/hooks/", data=b"{}")):
        assert response.status_code == 405
        assert response["Allow"] == "POST"
        assert "POST" in json.loads(response.content)["error"]
    assert rec.events == []


def test_a_duplicate_is_acknowledged_and_not_run_again(
    sender: str, rec: Recorder, client: Client
) -> None:
    body, headers, marker = delivery(sender)
    assert post(client, "/hooks/", body, headers).status_code == 200
    assert post(client, "/hooks/", body, headers).status_code == 200
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


class BrokenStream(io.RawIOBase):
    """A WSGI input whose sender hung up."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        raise OSError("connection reset by peer")


def chunked_request(stream: io.RawIOBase | io.BytesIO, headers: dict[str, str]) -> HttpRequest:
    """A request as a WSGI server that decodes chunked bodies hands it over.

    There is no Content-Length; ``wsgi.input_terminated`` says the stream ends itself.
    """
    content_type, rest = without_content_type(headers)
    request = RequestFactory().post("/hooks/", data=b"", content_type=content_type, headers=rest)
    request.META.pop("CONTENT_LENGTH", None)
    request.META.update({"wsgi.input": stream, "wsgi.input_terminated": True})
    return request


def test_a_chunked_body_is_cut_off_at_the_limit() -> None:
    rec = recorder("moco", max_body_size=SMALL_LIMIT)
    stream = EndlessStream()
    response = webhook_view(rec.handler)(chunked_request(stream, {}))
    assert response.status_code == 413
    assert stream.served <= SMALL_LIMIT + 1
    assert rec.events == []


def test_a_chunked_body_within_the_limit_is_read_whole() -> None:
    rec = recorder("moco")
    body, headers, marker = delivery("moco")
    response = webhook_view(rec.handler)(chunked_request(io.BytesIO(body), headers))
    assert response.status_code == 200
    assert rec.markers() == [marker]


def test_a_sender_hanging_up_mid_body_gets_400() -> None:
    rec = recorder("moco")
    body, headers, _ = delivery("moco")
    view = webhook_view(rec.handler)
    assert view(chunked_request(BrokenStream(), headers)).status_code == 400
    sized = RequestFactory().post("/hooks/", data=body, content_type="application/json")
    broken = WSGIRequest({**sized.META, "wsgi.input": BrokenStream()})
    assert view(broken).status_code == 400
    assert rec.events == []


def test_a_malformed_content_length_gets_400() -> None:
    rec = recorder("moco")
    body, headers, _ = delivery("moco")
    content_type, rest = without_content_type(headers)
    request = RequestFactory().post("/hooks/", data=body, content_type=content_type, headers=rest)
    request.META["CONTENT_LENGTH"] = "-5"
    assert webhook_view(rec.handler)(request).status_code == 400


def test_a_failing_handler_gets_500_and_its_retry_is_processed(
    serving: Callable[..., Client],
) -> None:
    rec = recorder("mindpeeker")
    calls: list[str] = []

    @rec.handler.on("*")
    def flaky(event: Event) -> None:
        calls.append(event.type)
        if len(calls) == 1:
            raise RuntimeError("database is down")

    client = serving(path("hooks/", webhook_view(rec.handler)))
    body, headers, _ = delivery("mindpeeker")
    failed = post(client, "/hooks/", body, headers)
    assert failed.status_code == 500
    assert b"database" not in failed.content
    assert post(client, "/hooks/", body, headers).status_code == 200
    assert len(calls) == 2


# -- background=True -----------------------------------------------------------------


def test_background_work_runs_after_the_answer(sender: str, serving: Callable[..., Client]) -> None:
    rec = recorder(sender)
    pool = BackgroundPool(max_workers=2)
    client = serving(path("hooks/", webhook_view(rec.handler, background=pool)))
    body, headers, marker = delivery(sender)
    assert post(client, "/hooks/", body, headers).status_code == 200
    assert post(client, "/hooks/", body, headers).status_code == 200
    pool.shutdown(wait=True)
    assert rec.markers() == [marker]


def test_a_full_pool_answers_503_and_the_retry_is_processed(
    serving: Callable[..., Client],
) -> None:
    rec = recorder("moonsense")
    release = threading.Event()
    rec.handler.on("*")(lambda event: release.wait(10))
    pool = BackgroundPool(max_workers=1, max_pending=0)
    client = serving(path("hooks/", webhook_view(rec.handler, background=pool)))
    first_body, first_headers, first = delivery("moonsense")
    assert post(client, "/hooks/", first_body, first_headers).status_code == 200
    body, headers, second = delivery("moonsense")
    assert post(client, "/hooks/", body, headers).status_code == 503
    forged_body, forged_headers, _ = forged("moonsense")
    assert post(client, "/hooks/", forged_body, forged_headers).status_code == 401
    release.set()
    assert wait_for(lambda: rec.markers() == [first])
    # The slot is free again and the refused delivery was never claimed.
    assert wait_for(lambda: post(client, "/hooks/", body, headers).status_code == 200)
    pool.shutdown(wait=True)
    assert rec.markers() == [first, second]


# -- WebhookMiddleware ----------------------------------------------------------------


def other_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("other")


def test_the_middleware_serves_its_endpoints_ahead_of_csrf(
    serving: Callable[..., Client],
) -> None:
    rec = recorder("mindpeeker")
    client = serving(
        path("other/", other_view),
        MIDDLEWARE=MIDDLEWARE,
        HOOKSHIELD_ENDPOINTS={
            "/hooks/moco/": "tests.adapters.django_endpoints.moco",
            "/hooks/mindpeeker": rec.handler,
        },
    )
    body, headers, marker = delivery("moco")
    assert post(client, "/hooks/moco/", body, headers).status_code == 200
    assert post(client, "/hooks/moco/", body, headers).status_code == 200
    assert django_endpoints.MOCO.markers().count(marker) == 1
    forged_body, forged_headers, _ = forged("moco")
    assert post(client, "/hooks/moco", forged_body, forged_headers).status_code == 401
    assert client.get("/hooks/moco/").status_code == 405
    # The trailing slash is optional.
    body, headers, marker = delivery("mindpeeker")
    assert post(client, "/hooks/mindpeeker/", body, headers).status_code == 200
    assert rec.markers() == [marker]
    # Everything else goes through the rest of the stack, CSRF included.
    assert client.get("/other/").content == b"other"
    assert client.post("/other/").status_code == 403
    assert client.get("/missing/").status_code == 404


def test_the_middleware_can_work_in_the_background(serving: Callable[..., Client]) -> None:
    rec = recorder("petal")
    client = serving(
        MIDDLEWARE=MIDDLEWARE,
        HOOKSHIELD_ENDPOINTS={"/": rec.handler},
        HOOKSHIELD_BACKGROUND=True,
    )
    body, headers, marker = delivery("petal")
    assert post(client, "/", body, headers).status_code == 200
    assert wait_for(lambda: rec.markers() == [marker])


def test_the_middleware_steps_aside_without_endpoints() -> None:
    with override_settings(HOOKSHIELD_ENDPOINTS={}), pytest.raises(MiddlewareNotUsed):
        WebhookMiddleware(other_view)


@pytest.mark.parametrize(
    ("endpoints", "message"),
    [
        (["/hooks/"], "maps paths to handlers"),
        ({"hooks/": "tests.adapters.django_endpoints.moco"}, "starting with '/'"),
        ({"/hooks/": "tests.adapters.django_endpoints.nothing"}, "nothing"),
        ({"/hooks/": "tests.adapters.django_endpoints.not_a_handler"}, "not a WebhookHandler"),
    ],
)
def test_the_middleware_refuses_a_wrong_setting(endpoints: object, message: str) -> None:
    with (
        override_settings(HOOKSHIELD_ENDPOINTS=endpoints),
        pytest.raises(ImproperlyConfigured, match=message),
    ):
        WebhookMiddleware(other_view)


# -- @verified -------------------------------------------------------------------------


def verified_urls(rec: Recorder, seen: list[Delivery], *, fail: int = 0) -> Any:
    failures = [fail]

    @verified(rec.handler)
    def hook(request: HttpRequest, delivery: Delivery, tenant: str) -> JsonResponse:
        if failures[0]:
            failures[0] -= 1
            raise RuntimeError("view failed")
        seen.append(delivery)
        return JsonResponse({"tenant": tenant, "events": len(delivery.events)})

    return path("hooks/<str:tenant>/", hook)


def test_verified_passes_the_delivery_to_the_view(
    sender: str, serving: Callable[..., Client]
) -> None:
    rec = recorder(sender)
    seen: list[Delivery] = []
    client = serving(verified_urls(rec, seen))
    body, headers, marker = delivery(sender)
    response = post(client, "/hooks/acme/", body, headers)
    assert response.status_code == 200
    assert json.loads(response.content) == {"tenant": "acme", "events": 1}
    assert [d.events[0].data.get("marker") for d in seen] == [marker]
    assert rec.events == []


def test_verified_refuses_bad_deliveries_before_the_view(
    sender: str, serving: Callable[..., Client]
) -> None:
    seen: list[Delivery] = []
    client = serving(verified_urls(recorder(sender, max_body_size=SMALL_LIMIT), seen))
    body, headers, _ = forged(sender)
    assert post(client, "/hooks/acme/", body, headers).status_code == 401
    body, headers, _ = delivery(sender, pad=2 * SMALL_LIMIT)
    assert post(client, "/hooks/acme/", body, headers).status_code == 413
    assert client.get("/hooks/acme/").status_code == 405
    assert seen == []


def test_verified_acknowledges_a_duplicate_without_the_view(
    sender: str, serving: Callable[..., Client]
) -> None:
    seen: list[Delivery] = []
    client = serving(verified_urls(recorder(sender), seen))
    body, headers, _ = delivery(sender)
    assert post(client, "/hooks/acme/", body, headers).status_code == 200
    duplicate = post(client, "/hooks/acme/", body, headers)
    assert duplicate.status_code == 200
    assert json.loads(duplicate.content) == {"ok": True, "duplicate": True}
    assert len(seen) == 1


def test_verified_forgets_a_delivery_whose_view_raised(serving: Callable[..., Client]) -> None:
    seen: list[Delivery] = []
    client = serving(verified_urls(recorder("moco"), seen, fail=1))
    body, headers, _ = delivery("moco")
    assert post(client, "/hooks/acme/", body, headers).status_code == 500
    assert post(client, "/hooks/acme/", body, headers).status_code == 200
    assert len(seen) == 1
