"""What only hookshield.django has, through Django's own test client.

What it shares with the Flask adapter is specified once, in ``test_wsgi.py``.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from .support import (
    SIGNING,
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

from hookshield import Delivery  # noqa: E402
from hookshield.django import WebhookMiddleware, verified, webhook_view  # noqa: E402

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


def test_a_body_larger_than_djangos_upload_limit_is_accepted(
    serving: Callable[..., Client],
) -> None:
    # DATA_UPLOAD_MAX_MEMORY_SIZE guards request.POST; a large Momentum batch must pass.
    rec = recorder("momentum")
    client = serving(path("hooks/", webhook_view(rec.handler)), DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
    body, headers, marker = delivery("momentum", pad=5000)
    assert post(client, "/hooks/", body, headers).status_code == 200
    assert rec.markers() == [marker]


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


def test_a_sender_hanging_up_mid_body_gets_400() -> None:
    rec = recorder("moco")
    body, headers, _ = delivery("moco")
    view = webhook_view(rec.handler)
    assert view(chunked_request(BrokenStream(), headers)).status_code == 400
    content_type, rest = without_content_type(headers)
    sized = RequestFactory().post("/hooks/", data=body, content_type=content_type, headers=rest)
    broken = WSGIRequest({**sized.META, "wsgi.input": BrokenStream()})
    assert view(broken).status_code == 400
    assert rec.events == []


# -- background=True -----------------------------------------------------------------


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


def verified_urls(rec: Recorder, seen: list[Delivery]) -> Any:
    @verified(rec.handler)
    def hook(request: HttpRequest, delivery: Delivery, tenant: str) -> JsonResponse:
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


# -- a body that code of the app read first ------------------------------------------


class ReadsBody:
    """A middleware that reads ``request.body`` (which Django keeps), then its stream."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        json.loads(request.body or b"null")
        request.read()  # the kept copy's stream, too: only request.body holds the bytes now
        return self.get_response(request)


class ReadsStream:
    """A middleware that parses the stream itself, which Django does not keep."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        json.load(request)
        return self.get_response(request)


def test_a_body_django_kept_for_a_middleware_that_read_it_first_is_verified(
    serving: Callable[..., Client], sender: str
) -> None:
    rec = recorder(sender)
    mindpeeker = recorder("mindpeeker")

    @verified(mindpeeker.handler)
    def own_view(request: HttpRequest, delivery: Delivery) -> JsonResponse:
        return JsonResponse({"events": len(delivery.events)})

    client = serving(
        path("hooks/", webhook_view(rec.handler)),
        path("own/", own_view),
        MIDDLEWARE=[f"{__name__}.ReadsBody"],
    )
    body, headers, marker = delivery(sender)
    assert post(client, "/hooks/", body, headers).status_code == 200
    assert rec.markers() == [marker]
    if sender in SIGNING:  # the exact bytes are verified
        assert post(client, "/hooks/", *tampered(sender)[:2]).status_code == 401
    body, headers, _ = delivery("mindpeeker")
    assert post(client, "/own/", body, headers).json() == {"events": 1}


def test_a_body_read_first_and_not_kept_is_a_500_that_says_why(
    serving: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    rec = recorder("mindpeeker")
    client = serving(
        path("hooks/", webhook_view(rec.handler)), MIDDLEWARE=[f"{__name__}.ReadsStream"]
    )
    body, headers, _ = delivery("mindpeeker")
    with caplog.at_level(logging.ERROR, logger="hookshield"):
        response = post(client, "/hooks/", body, headers)
    # The app is at fault, not the sender: it retries, and once fixed, is received.
    assert response.status_code == 500
    assert b"signature" not in response.content  # no detail for the sender
    assert rec.events == []
    [record] = [r for r in caplog.records if r.name == "hookshield"]
    assert record.levelno == logging.ERROR
    assert "read before hookshield" in record.getMessage()
    assert "request.body" in record.getMessage()  # how to avoid it
