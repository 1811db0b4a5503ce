"""The dashboard mounted under a prefix in Flask, Starlette, FastAPI and Django."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import flask
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient as FastAPIClient
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from hookshield import SQLiteInbox
from hookshield.dashboard import asgi_app, django_view, wsgi_app

from ..adapters.support import configure_django
from . import django_urls
from .support import stock, token_of

configure_django()

from django.test import Client as DjangoClient  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.urls import clear_url_caches, re_path  # noqa: E402


@pytest.fixture
def inbox(tmp_path: Path) -> SQLiteInbox:
    return SQLiteInbox(tmp_path / "inbox.db")


def _retry_through(get: Any, post: Any, inbox: SQLiteInbox, headers: dict[str, str]) -> None:
    """List, open the dead delivery, retry it: every link and form under /ops/inbox."""
    dead = stock(inbox, state="dead")
    listing = get("/ops/inbox/")
    assert 'href="/ops/inbox/overview"' in listing
    link = re.search(r'href="(/ops/inbox/delivery\?id=[0-9a-f]+)"', listing)
    assert link is not None
    page = get(link[1])
    assert 'action="/ops/inbox/delivery/retry"' in page
    status, location = post(
        "/ops/inbox/delivery/retry", {"id": dead.id, "token": token_of(page)}, headers
    )
    assert status == 303 and location.startswith("/ops/inbox/delivery?id=")
    assert inbox.get(dead.id).state == "pending"  # type: ignore[union-attr]


def test_flask_mounts_it_with_dispatcher_middleware(inbox: SQLiteInbox) -> None:
    app = flask.Flask(__name__)
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/ops/inbox": wsgi_app(inbox)})  # type: ignore[method-assign]
    client = app.test_client()

    def get(path: str) -> str:
        return client.get(path).get_data(as_text=True)

    def post(path: str, data: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        response = client.post(path, data=data, headers=headers)
        return response.status_code, response.headers["Location"]

    _retry_through(get, post, inbox, {"Sec-Fetch-Site": "same-origin"})


@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
def test_starlette_and_fastapi_mount_the_asgi_app(inbox: SQLiteInbox, framework: str) -> None:
    if framework == "starlette":
        client: TestClient = TestClient(Starlette(routes=[Mount("/ops/inbox", asgi_app(inbox))]))
    else:
        api = FastAPI()
        api.mount("/ops/inbox", asgi_app(inbox))
        client = FastAPIClient(api)

    def get(path: str) -> str:
        return client.get(path).text

    def post(path: str, data: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        response = client.post(path, data=data, headers=headers, follow_redirects=False)
        return response.status_code, response.headers["location"]

    _retry_through(get, post, inbox, {"Sec-Fetch-Site": "same-origin"})
    assert client.post("/ops/inbox/delivery/retry", data={"id": "x"}).status_code == 403


def test_django_routes_the_rest_of_the_path_to_its_view(inbox: SQLiteInbox) -> None:
    django_urls.urlpatterns[:] = [re_path(r"^ops/inbox/(?P<rest>.*)$", django_view(inbox))]
    clear_url_caches()
    try:
        with override_settings(ROOT_URLCONF="tests.dashboard.django_urls"):
            # Django's own CSRF check is on: the view is exempt, and checks POSTs itself.
            client = DjangoClient(enforce_csrf_checks=True)
            morsel = DjangoClient().get("/ops/inbox/").cookies["hookshield_dashboard"]
            assert morsel["httponly"] and morsel["samesite"] == "Strict"
            assert morsel["path"] == "/ops/inbox"

            def get(path: str) -> str:
                return client.get(path).content.decode()

            def post(path: str, data: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
                response = client.post(path, data=data, headers=headers)
                return response.status_code, response["Location"]

            _retry_through(get, post, inbox, {"Sec-Fetch-Site": "same-origin"})
            forged = client.post(
                "/ops/inbox/delivery/retry", {"id": "x"}, headers={"Sec-Fetch-Site": "cross-site"}
            )
            assert forged.status_code == 403
            assert forged["X-Frame-Options"] == "DENY"
    finally:
        django_urls.urlpatterns.clear()
        clear_url_caches()
