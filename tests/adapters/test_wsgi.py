"""What Flask's and Django's adapters share, specified once and run through each one's test client.

Each scenario is parametrised over a small "site" per framework: it serves a
``webhook_view`` or a ``@verified`` view at ``/hooks`` and posts to it through the
framework's own test client, with extra WSGI environ keys when a scenario needs
them.  What only one framework has (Flask's app context and ``MAX_CONTENT_LENGTH``,
Django's middleware and settings) stays in ``test_flask.py`` and ``test_django.py``.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

import pytest

from hookshield import Delivery, Event, WebhookHandler
from hookshield.testing import sample_batch, sign

from ..doubles import BrokenStore, NetworkStore
from .support import (
    CREDENTIALS,
    MOCO_SIGNATURE,
    SIGNING,
    SMALL_LIMIT,
    EndlessStream,
    chunked,
    configure_django,
    delivery,
    forged,
    recorder,
    tampered,
    wait_for,
    without_content_type,
)

configure_django()

import flask  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

import hookshield.django  # noqa: E402
import hookshield.flask  # noqa: E402
from hookshield.flask import BackgroundPool  # noqa: E402


@dataclass(frozen=True)
class Answer:
    """What the sender gets back."""

    status: int
    body: Any
    headers: Mapping[str, str]


class Poster(Protocol):
    def post(self, body: bytes, headers: Mapping[str, str], **environ: Any) -> Answer: ...

    def request(self, method: str) -> Answer: ...


#: A ``@verified`` view's own work: it gets the delivery, and may raise.
View = Callable[[Delivery], None]


class Site(Protocol):
    name: str

    def webhook(self, handler: WebhookHandler, *, background: Any = False) -> Poster: ...

    def verified(self, handler: WebhookHandler, view: View) -> Poster: ...


class FlaskPoster:
    def __init__(self, app: flask.Flask) -> None:
        self.client = app.test_client()

    def post(self, body: bytes, headers: Mapping[str, str], **environ: Any) -> Answer:
        response = self.client.post(
            "/hooks", data=body, headers=dict(headers), environ_overrides=environ
        )
        return Answer(response.status_code, response.get_json(), dict(response.headers))

    def request(self, method: str) -> Answer:
        response = self.client.open("/hooks", method=method)
        return Answer(response.status_code, response.get_json(), dict(response.headers))


class FlaskSite:
    name = "flask"
    methods = ("GET", "POST", "PUT")  # so that the view answers other methods itself

    def webhook(self, handler: WebhookHandler, *, background: Any = False) -> Poster:
        app = flask.Flask(__name__)
        view = hookshield.flask.webhook_view(handler, background=background)
        app.add_url_rule("/hooks", view_func=view, methods=self.methods)
        return FlaskPoster(app)

    def verified(self, handler: WebhookHandler, view: View) -> Poster:
        app = flask.Flask(__name__)

        @app.route("/hooks", methods=self.methods)
        @hookshield.flask.verified(handler)
        def hook(delivery: Delivery) -> flask.Response:
            view(delivery)
            return flask.jsonify(events=len(delivery.events))

        return FlaskPoster(app)


class DjangoPoster:
    def __init__(self) -> None:
        self.client = Client(enforce_csrf_checks=True, raise_request_exception=False)

    def post(self, body: bytes, headers: Mapping[str, str], **environ: Any) -> Answer:
        content_type, rest = without_content_type(dict(headers))
        response = self.client.post(
            "/hooks", data=body, content_type=content_type, headers=rest, **environ
        )
        return _django_answer(response)

    def request(self, method: str) -> Answer:
        return _django_answer(self.client.generic(method, "/hooks"))


def _django_answer(response: Any) -> Answer:
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    return Answer(response.status_code, body, response.headers)


class DjangoSite:
    name = "django"

    def __init__(self) -> None:
        self.overrides: list[override_settings] = []

    def _serve(self, view: Any) -> Poster:
        module = ModuleType("hookshield_wsgi_test_urls")
        module.__dict__["urlpatterns"] = [path("hooks", view)]
        override = override_settings(ROOT_URLCONF=module)
        override.enable()
        self.overrides.append(override)
        return DjangoPoster()

    def webhook(self, handler: WebhookHandler, *, background: Any = False) -> Poster:
        return self._serve(hookshield.django.webhook_view(handler, background=background))

    def verified(self, handler: WebhookHandler, view: View) -> Poster:
        @hookshield.django.verified(handler)
        def hook(request: HttpRequest, delivery: Delivery) -> JsonResponse:
            view(delivery)
            return JsonResponse({"events": len(delivery.events)})

        return self._serve(hook)

    def close(self) -> None:
        for override in reversed(self.overrides):
            override.disable()


@pytest.fixture(params=["flask", "django"])
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    """Flask, then Django."""
    if request.param == "flask":
        yield FlaskSite()
        return
    django_site = DjangoSite()
    yield django_site
    django_site.close()


# -- webhook_view ------------------------------------------------------------------------


def test_a_valid_delivery_runs_the_handler(site: Site, sender: str) -> None:
    rec = recorder(sender)
    body, headers, marker = delivery(sender)
    answer = site.webhook(rec.handler).post(body, headers)
    assert (answer.status, answer.body) == (200, {"ok": True})
    assert answer.headers["Content-Type"] == "application/json"
    assert rec.markers() == [marker]


def test_a_forged_delivery_is_refused(site: Site, sender: str) -> None:
    rec = recorder(sender)
    body, headers, _ = forged(sender)
    answer = site.webhook(rec.handler).post(body, headers)
    assert answer.status == 401
    assert set(answer.body) == {"error"}
    for secret in CREDENTIALS[sender].values():
        assert secret not in json.dumps(answer.body)
    assert rec.events == []


@pytest.mark.parametrize("sender", SIGNING)
def test_a_tampered_body_is_refused(site: Site, sender: str) -> None:
    rec = recorder(sender)
    body, headers, _ = tampered(sender)
    assert site.webhook(rec.handler).post(body, headers).status == 401
    assert rec.events == []


def test_a_body_over_the_limit_gets_413(site: Site, sender: str) -> None:
    rec = recorder(sender, max_body_size=SMALL_LIMIT)
    body, headers, _ = delivery(sender, pad=2 * SMALL_LIMIT)
    answer = site.webhook(rec.handler).post(body, headers)
    assert answer.status == 413
    assert "max_body_size" in answer.body["error"]
    assert rec.events == []


def test_another_method_gets_405_naming_post(site: Site) -> None:
    rec = recorder("moco")
    poster = site.webhook(rec.handler)
    for method in ("GET", "PUT"):
        answer = poster.request(method)
        assert answer.status == 405
        assert answer.headers["Allow"] == "POST"
        assert "POST" in answer.body["error"]
    assert rec.events == []


def test_a_duplicate_is_acknowledged_and_not_run_again(site: Site, sender: str) -> None:
    rec = recorder(sender)
    poster = site.webhook(rec.handler)
    body, headers, marker = delivery(sender)
    assert poster.post(body, headers).status == 200
    again = poster.post(body, headers)
    assert (again.status, again.body) == (200, {"ok": True, "duplicate": True})
    assert rec.markers() == [marker]


def test_a_chunked_body_is_cut_off_at_the_limit(site: Site) -> None:
    rec = recorder("moco", max_body_size=SMALL_LIMIT)
    stream = EndlessStream()
    answer = site.webhook(rec.handler).post(b"", MOCO_SIGNATURE, **chunked(stream))
    assert answer.status == 413
    assert stream.served <= SMALL_LIMIT + 1
    assert rec.events == []


def test_a_chunked_body_within_the_limit_is_read_whole(site: Site) -> None:
    rec = recorder("moco")
    body, headers, marker = delivery("moco")
    answer = site.webhook(rec.handler).post(b"", headers, **chunked(io.BytesIO(body)))
    assert answer.status == 200
    assert rec.markers() == [marker]


@pytest.mark.parametrize("length", ["12abc", "-5", "+5"])
def test_a_malformed_content_length_gets_400(site: Site, length: str) -> None:
    rec = recorder("moco")
    body, headers, _ = delivery("moco")
    answer = site.webhook(rec.handler).post(body, headers, CONTENT_LENGTH=length)
    assert answer.status == 400
    assert "Content-Length" in answer.body["error"]
    assert rec.events == []


def test_a_failing_handler_gets_500_and_its_retry_is_processed(site: Site) -> None:
    rec = recorder("mindpeeker")
    calls: list[str] = []

    @rec.handler.on("*")
    def flaky(event: Event) -> None:
        calls.append(event.type)
        if len(calls) == 1:
            raise RuntimeError("database is down")

    poster = site.webhook(rec.handler)
    body, headers, _ = delivery("mindpeeker")
    failed = poster.post(body, headers)
    assert failed.status == 500
    assert "database" not in json.dumps(failed.body)
    assert poster.post(body, headers).status == 200
    assert len(calls) == 2


def test_a_retry_while_an_attempt_runs_gets_409_with_retry_after(site: Site) -> None:
    rec = recorder("mindpeeker")
    body, headers, marker = delivery("mindpeeker")
    running = rec.handler.accept(body, headers)  # another worker's attempt, still running
    poster = site.webhook(rec.handler)
    answer = poster.post(body, headers)
    assert answer.status == 409
    assert answer.headers["Retry-After"] == "30"
    assert rec.events == []
    running.finish()
    assert poster.post(body, headers).body == {"ok": True, "duplicate": True}
    assert rec.markers() == [marker]


def test_a_store_that_is_down_gets_503_with_retry_after(site: Site) -> None:
    rec = recorder("moco", dedupe=BrokenStore())
    body, headers, _ = delivery("moco")
    answer = site.webhook(rec.handler).post(body, headers)
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "30"
    assert rec.events == []


def test_a_delivery_among_many_other_headers_is_read_right(site: Site) -> None:
    # More header names than hookshield remembers how to read, and an empty one.
    rec = recorder("moco")
    body, headers, marker = delivery("moco")
    extra = {f"X-Extra-{i}": str(i) for i in range(1100)}
    answer = site.webhook(rec.handler).post(body, {**extra, "X-Empty": "", **headers})
    assert answer.status == 200
    assert rec.markers() == [marker]


# -- one warning for a per-process store behind several processes --------------------------


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "several processes" in r.getMessage()]


def test_several_processes_with_the_memory_store_warn_once(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    rec = recorder("moco")
    poster = site.webhook(rec.handler)
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        for _ in range(3):
            body, headers, _marker = delivery("moco")
            assert poster.post(body, headers, **{"wsgi.multiprocess": True}).status == 200
    (message,) = _warnings(caplog)
    assert "moco" in message and "SQLiteDedupeStore" in message


@pytest.mark.parametrize(
    ("store", "multiprocess"),
    [("memory", False), ("shared", True), ("none", True)],
)
def test_one_process_or_another_store_gives_no_warning(
    site: Site, caplog: pytest.LogCaptureFixture, store: str, multiprocess: bool
) -> None:
    stores: dict[str, Any] = {"shared": NetworkStore(), "none": None}
    options: dict[str, Any] = {"dedupe": stores[store]} if store in stores else {}
    rec = recorder("moco", **options)
    body, headers, _ = delivery("moco")
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        answer = site.webhook(rec.handler).post(
            body, headers, **{"wsgi.multiprocess": multiprocess}
        )
    assert answer.status == 200
    assert _warnings(caplog) == []


# -- background=True --------------------------------------------------------------------


def test_background_work_runs_after_the_answer(site: Site, sender: str) -> None:
    rec = recorder(sender)
    pool = BackgroundPool(max_workers=2)
    poster = site.webhook(rec.handler, background=pool)
    body, headers, marker = delivery(sender)
    assert poster.post(body, headers).status == 200
    assert poster.post(body, headers).status == 200
    pool.shutdown(wait=True)  # waits for the work taken
    assert rec.markers() == [marker]


def test_background_true_makes_a_pool_of_its_own(site: Site) -> None:
    rec = recorder("moco")
    poster = site.webhook(rec.handler, background=True)
    body, headers, marker = delivery("moco")
    assert poster.post(body, headers).status == 200
    forged_body, forged_headers, _ = forged("moco")
    assert poster.post(forged_body, forged_headers).status == 401
    assert wait_for(lambda: rec.markers() == [marker])


def test_a_full_pool_answers_503_and_the_retry_is_processed(site: Site) -> None:
    rec = recorder("mindpeeker")
    release = threading.Event()
    rec.handler.on("*")(lambda event: release.wait(10))
    pool = BackgroundPool(max_workers=1, max_pending=0)
    poster = site.webhook(rec.handler, background=pool)
    first_body, first_headers, first = delivery("mindpeeker")
    assert poster.post(first_body, first_headers).status == 200
    body, headers, second = delivery("mindpeeker")
    busy = poster.post(body, headers)
    assert busy.status == 503
    assert busy.headers["Retry-After"] == "30"
    assert busy.body == {"error": "the delivery could not be processed; please retry"}
    # A forged delivery still gets its 401, not a 503 that invites retries.
    forged_body, forged_headers, _ = forged("mindpeeker")
    assert poster.post(forged_body, forged_headers).status == 401
    release.set()
    # The slot is free again and the refused delivery was never claimed.
    assert wait_for(lambda: poster.post(body, headers).status == 200)
    pool.shutdown(wait=True)
    assert rec.markers() == [first, second]


def test_a_shut_down_pool_answers_503_and_forgets_the_delivery(site: Site) -> None:
    rec = recorder("moco")
    pool = BackgroundPool()
    pool.shutdown()
    body, headers, marker = delivery("moco")
    assert site.webhook(rec.handler, background=pool).post(body, headers).status == 503
    # The claim was released: the same delivery is processed once a pool runs.
    assert site.webhook(rec.handler).post(body, headers).status == 200
    assert rec.markers() == [marker]


def test_a_failing_background_handler_calls_the_error_hooks(site: Site) -> None:
    rec = recorder("moco")
    errors: list[str] = []

    @rec.handler.on("*")
    def boom(event: Event) -> None:
        raise ValueError("no such project")

    rec.handler.on_error(lambda exc, event: errors.append(str(exc)))
    pool = BackgroundPool()
    body, headers, _ = delivery("moco")
    assert site.webhook(rec.handler, background=pool).post(body, headers).status == 200
    pool.shutdown(wait=True)
    assert errors == ["no such project"]


def test_a_store_failure_in_background_mode_gives_503_and_frees_the_slot(site: Site) -> None:
    rec = recorder("moco", dedupe=BrokenStore())
    pool = BackgroundPool(max_workers=1, max_pending=0)
    body, headers, _ = delivery("moco")
    answer = site.webhook(rec.handler, background=pool).post(body, headers)
    assert answer.status == 503  # the sender retries once the store is back
    assert answer.headers["Retry-After"] == "30"
    assert pool.reserve()  # the slot taken for the delivery was given back
    assert rec.events == []


# -- @verified ---------------------------------------------------------------------------


class ViewLog:
    """A ``@verified`` view's work: records each delivery; raises ``fail`` first, if set."""

    def __init__(self, fail: list[BaseException] | None = None) -> None:
        self.seen: list[Delivery] = []
        self.fail = list(fail or [])

    def __call__(self, delivery: Delivery) -> None:
        if self.fail:
            raise self.fail.pop(0)
        self.seen.append(delivery)

    def types(self) -> list[list[str]]:
        return [[event.type for event in d.events] for d in self.seen]


def test_verified_passes_the_delivery_to_the_view(site: Site, sender: str) -> None:
    rec = recorder(sender)
    view = ViewLog()
    body, headers, marker = delivery(sender)
    answer = site.verified(rec.handler, view).post(body, headers)
    assert (answer.status, answer.body) == (200, {"events": 1})
    assert [d.events[0].data.get("marker") for d in view.seen] == [marker]
    assert view.seen[0].body == body
    assert rec.events == []  # the view is the handler: routes are not called


def test_verified_refuses_bad_deliveries_before_the_view(site: Site, sender: str) -> None:
    view = ViewLog()
    poster = site.verified(recorder(sender, max_body_size=SMALL_LIMIT).handler, view)
    body, headers, _ = forged(sender)
    assert poster.post(body, headers).status == 401
    body, headers, _ = delivery(sender, pad=2 * SMALL_LIMIT)
    assert poster.post(body, headers).status == 413
    assert poster.request("GET").status == 405
    assert view.seen == []


def test_verified_acknowledges_a_duplicate_without_the_view(site: Site, sender: str) -> None:
    view = ViewLog()
    poster = site.verified(recorder(sender).handler, view)
    body, headers, _ = delivery(sender)
    assert poster.post(body, headers).status == 200
    duplicate = poster.post(body, headers)
    assert (duplicate.status, duplicate.body) == (200, {"ok": True, "duplicate": True})
    assert len(view.seen) == 1


def test_verified_answers_409_with_retry_after_while_an_attempt_runs(site: Site) -> None:
    rec = recorder("moco")
    view = ViewLog()
    body, headers, _ = delivery("moco")
    running = rec.handler.accept(body, headers)
    answer = site.verified(rec.handler, view).post(body, headers)
    assert (answer.status, answer.headers["Retry-After"]) == (409, "30")
    assert view.seen == []
    running.release()


def test_a_verified_view_that_returns_completes_the_delivery(site: Site) -> None:
    rec = recorder("moco")
    view = ViewLog()
    poster = site.verified(rec.handler, view)
    body, headers, _ = delivery("moco")
    assert poster.post(body, headers).status == 200
    # Completed, not merely held: the retry is a duplicate, not "still running".
    assert rec.handler.accept(body, headers).duplicate
    assert len(view.seen) == 1


def test_a_verified_view_that_raises_releases_the_delivery(site: Site) -> None:
    view = ViewLog(fail=[RuntimeError("view failed")])
    poster = site.verified(recorder("moco").handler, view)
    body, headers, _ = delivery("moco")
    assert poster.post(body, headers).status == 500
    assert poster.post(body, headers).status == 200
    assert len(view.seen) == 1


def test_a_verified_view_stopped_by_systemexit_releases_the_delivery(site: Site) -> None:
    # A worker timeout (gunicorn) raises SystemExit in the view: the retry must run it.
    view = ViewLog(fail=[SystemExit(1)])
    poster = site.verified(recorder("moco").handler, view)
    body, headers, _ = delivery("moco")
    with pytest.raises(SystemExit):
        poster.post(body, headers)
    assert poster.post(body, headers).status == 200
    assert len(view.seen) == 1


def test_verified_hands_over_only_the_new_events_of_a_batch(site: Site) -> None:
    view = ViewLog()
    poster = site.verified(recorder("momentum").handler, view)
    records = json.loads(sample_batch(["delivery", "open", "click"]))
    token = CREDENTIALS["momentum"]["token"]
    for batch_id, part in (("batch-1", records[:2]), ("batch-2", records[1:])):
        body = json.dumps(part).encode()
        headers = sign("momentum", body, token=token, batch_id=batch_id)
        assert poster.post(body, headers).status == 200
    assert view.types() == [["delivery", "open"], ["click"]]


def test_verified_without_de_duplication_runs_the_view_for_every_copy(site: Site) -> None:
    view = ViewLog(fail=[RuntimeError("view failed")])
    poster = site.verified(recorder("moco", dedupe=None).handler, view)
    body, headers, _ = delivery("moco")
    assert [poster.post(body, headers).status for _ in range(3)] == [500, 200, 200]
    assert len(view.seen) == 2


def test_verified_forgets_every_event_of_a_batch_whose_view_raised(site: Site) -> None:
    view = ViewLog(fail=[RuntimeError("view failed")])
    poster = site.verified(recorder("momentum").handler, view)
    records = json.loads(sample_batch(["delivery", "open"]))
    del records[1]["msys"]["track_event"]["event_id"]  # an event without an id
    body = json.dumps(records).encode()
    headers = sign("momentum", body, token=CREDENTIALS["momentum"]["token"], batch_id="b-1")
    assert poster.post(body, headers).status == 500
    assert poster.post(body, headers).status == 200
    assert view.types() == [["delivery", "open"]]
