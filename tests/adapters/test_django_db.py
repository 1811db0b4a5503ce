"""``hookshield.django`` on Django's own database: migrate, the view, the worker command, the admin.

Each test runs on SQLite and on a real PostgreSQL server (``tests/django_db.py``),
through Django's own ``migrate``, test client and ``call_command``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from ..django_db import django_database
from ..postgres_server import PostgresServer
from .support import CREDENTIALS, configure_django, delivery, forged, without_content_type

configure_django()

from django.contrib import admin  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import CommandError, call_command  # noqa: E402
from django.db import connections, transaction  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

from hookshield import WebhookHandler  # noqa: E402
from hookshield.django import DjangoDedupeStore, DjangoInbox, webhook_view  # noqa: E402
from hookshield.django.models import Delivery  # noqa: E402

KEY = "django-db-tests-inbox-key-0123456789"
#: What the worker command's routes saw, by marker: HOOKSHIELD_HANDLERS names this module's.
RAN: list[str] = []


def _handler(**options: Any) -> WebhookHandler:
    handler = WebhookHandler("mindpeeker", **CREDENTIALS["mindpeeker"], **options)
    handler.on("*")(lambda event: RAN.append(str(event.data.get("marker"))))
    return handler


#: The handler the worker command runs (named in HOOKSHIELD_HANDLERS).
mindpeeker = _handler()


@pytest.fixture(params=["sqlite", "postgres"])
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    server: PostgresServer | None = None
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
    RAN.clear()
    yield django_database(server)
    connections.close_all()


def urlconf(*patterns: Any) -> ModuleType:
    module = ModuleType("hookshield_db_test_urls")
    module.__dict__["urlpatterns"] = list(patterns)
    return module


def post(client: Client, url: str, body: bytes, headers: dict[str, str]) -> Any:
    content_type, rest = without_content_type(headers)
    return client.post(url, data=body, content_type=content_type, headers=rest)


def test_migrate_makes_the_tables(alias: str) -> None:
    tables = set(connections[alias].introspection.table_names())
    assert {"hookshield_delivery", "hookshield_paused", "hookshield_meta"} <= tables
    assert {"hookshield_dedupe_key", "hookshield_refused"} <= tables
    columns = connections[alias].introspection.get_table_description(
        connections[alias].cursor(), "hookshield_delivery"
    )
    assert "attempt_log" in {column.name for column in columns}
    out = io.StringIO()
    call_command("migrate", "hookshield", database=alias, stdout=out, verbosity=1)
    assert "No migrations to apply" in out.getvalue()


def test_the_migrations_make_what_the_models_say(alias: str) -> None:
    # makemigrations --check exits 1 when a model changed without its migration.
    out = io.StringIO()
    call_command("makemigrations", "hookshield", check=True, dry_run=True, stdout=out)
    assert "No changes detected" in out.getvalue()


def test_the_view_keeps_a_refusal_in_the_database(alias: str) -> None:
    inbox = DjangoInbox(alias, key=KEY, keep_refused=5, keep_refused_bytes=10)
    urls = urlconf(path("hooks/", webhook_view(_handler(), background=inbox)))
    body, headers, _ = forged("mindpeeker")
    with override_settings(ROOT_URLCONF=urls):
        client = Client(REMOTE_ADDR="198.51.100.4")
        assert post(client, "/hooks/", body, headers).status_code == 401
    (kept,) = DjangoInbox(alias, key=KEY).refused()
    assert (kept.sender, kept.status, kept.error) == ("mindpeeker", 401, "InvalidSignature")
    assert kept.peer == "198.51.100.4" and kept.body == body[:10] and kept.body_size == len(body)
    signature = dict(kept.headers)["x-mindpeeker-signature"]
    assert signature == headers["X-MindPeeker-Signature"]  # the signature: kept to check again
    assert inbox.counts() == {"pending": 0, "leased": 0, "done": 0, "dead": 0}


def test_the_view_stores_each_new_delivery_once_and_the_command_runs_it(alias: str) -> None:
    inbox = DjangoInbox(alias, key=KEY)
    handler = _handler(dedupe=DjangoDedupeStore(alias))
    urls = urlconf(path("hooks/", webhook_view(handler, background=inbox)))
    body, headers, marker = delivery("mindpeeker")
    with override_settings(ROOT_URLCONF=urls):
        client = Client(enforce_csrf_checks=True)
        assert post(client, "/hooks/", body, headers).status_code == 200
        assert post(client, "/hooks/", body, headers).status_code == 200  # a duplicate
        bad_body, bad_headers, _ = forged("mindpeeker")
        assert post(client, "/hooks/", bad_body, bad_headers).status_code == 401
    assert inbox.counts()["pending"] == 1 and RAN == []  # stored, not run in the view
    (row,) = Delivery.objects.using(alias).all()
    assert bytes(row.body) == body and row.seal
    out = io.StringIO()
    with override_settings(
        HOOKSHIELD_HANDLERS=[f"{__name__}:mindpeeker"], HOOKSHIELD_INBOX_KEY=KEY
    ):
        call_command(
            "hookshield_worker", "--burst", "--concurrency", "2", database=alias, stdout=out
        )
    assert out.getvalue() == "hookshield worker: 1 done, 0 retried, 0 dead-lettered\n"
    assert [marker] == RAN
    assert inbox.counts()["done"] == 1


def test_a_delivery_is_committed_before_the_answer_even_with_atomic_requests(alias: str) -> None:
    inbox = DjangoInbox(alias, key=KEY)
    urls = urlconf(path("hooks/", webhook_view(_handler(), background=inbox)))
    settings = connections[alias].settings_dict
    settings["ATOMIC_REQUESTS"] = True
    try:
        with override_settings(ROOT_URLCONF=urls):
            body, headers, _ = delivery("mindpeeker")
            assert post(Client(), "/hooks/", body, headers).status_code == 200
    finally:
        settings["ATOMIC_REQUESTS"] = False
    assert inbox.counts()["pending"] == 1


def test_a_put_inside_a_transaction_of_the_callers_is_refused(alias: str) -> None:
    inbox = DjangoInbox(alias, key=KEY)
    from ..test_inbox_contract import stored

    with transaction.atomic(using=alias), pytest.raises(RuntimeError, match="durable"):
        inbox.put(stored())


def test_the_middleware_setting_stores_in_the_database(alias: str) -> None:
    from . import django_endpoints

    inbox = DjangoInbox(alias, key=KEY)
    with override_settings(
        HOOKSHIELD_ENDPOINTS={"/hooks/moco/": django_endpoints.moco}, HOOKSHIELD_INBOX=inbox
    ):
        body, headers, _ = delivery("moco")
        assert post(Client(), "/hooks/moco/", body, headers).status_code == 200
    assert inbox.waiting() == {"moco": 1}


def test_the_worker_command_says_what_is_wrong_with_its_settings(alias: str) -> None:
    with pytest.raises(CommandError, match="HOOKSHIELD_HANDLERS"):
        call_command("hookshield_worker", "--burst", database=alias)
    with (
        override_settings(HOOKSHIELD_HANDLERS=["tests.nowhere:moco"]),
        pytest.raises(CommandError, match="No module named"),
    ):
        call_command("hookshield_worker", "--burst", database=alias)
    with (
        override_settings(HOOKSHIELD_HANDLERS=[f"{__name__}.KEY"]),
        pytest.raises(CommandError, match="not a WebhookHandler"),
    ):
        call_command("hookshield_worker", "--burst", database=alias)
    with (
        override_settings(HOOKSHIELD_HANDLERS=[f"{__name__}:mindpeeker"]),
        pytest.raises(CommandError, match="needs the key"),
    ):
        call_command("hookshield_worker", "--burst", database=alias)
    with (
        override_settings(HOOKSHIELD_HANDLERS=[f"{__name__}:mindpeeker"]),
        pytest.raises(CommandError, match="--concurrency"),
    ):
        call_command("hookshield_worker", "--burst", "--concurrency", "0", database=alias)


# -- the admin -----------------------------------------------------------------------------


@pytest.fixture
def staff(alias: str) -> Iterator[Client]:
    """A logged-in superuser's client of the admin, on the database under test."""
    User.objects.using(alias).filter(username="admin").delete()
    user = User.objects.db_manager(alias).create_superuser("admin", "a@example.com", "pw")
    urls = urlconf(path("admin/", admin.site.urls))
    middleware = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ]
    # The admin reads the default database; the PostgreSQL one is routed to it here.
    with override_settings(
        ROOT_URLCONF=urls, MIDDLEWARE=middleware, DATABASE_ROUTERS=[_Router(alias)]
    ):
        client = Client()
        client.force_login(user)
        yield client


class _Router:
    """Every model on the database under test."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return self.alias

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return self.alias

    def allow_relation(self, *args: Any, **hints: Any) -> bool:
        return True


def _stored_three(alias: str) -> dict[str, str]:
    """A done MindPeeker delivery, a dead MOCO one and a pending Petal one: their ids."""
    inbox = DjangoInbox(alias, key=KEY)
    from ..test_inbox_contract import stored

    made = {}
    for index, sender in enumerate(("mindpeeker", "moco", "petal")):
        delivery_ = stored(index, handler=sender, at=time.time() - 10)
        inbox.put(delivery_)
        made[sender] = delivery_.id
    for sender, settle in (("mindpeeker", inbox.done), ("moco", lambda d: inbox.dead(d, "boom"))):
        taken = inbox.lease(time.time(), [sender])
        assert taken is not None and settle(taken)
    return made


def test_the_admin_lists_filters_and_searches_deliveries(alias: str, staff: Client) -> None:
    ids = _stored_three(alias)
    url = "/admin/hookshield/delivery/"
    every = staff.get(url)
    assert every.status_code == 200
    assert _ids(every.content) == set(ids.values())
    assert _ids(staff.get(url, {"state": "dead"}).content) == {ids["moco"]}
    assert _ids(staff.get(url, {"sender__exact": "petal"}).content) == {ids["petal"]}
    assert _ids(staff.get(url, {"event_type": "é"}).content) == set(ids.values())
    assert _ids(staff.get(url, {"event_type": "nothing.such"}).content) == set()
    assert _ids(staff.get(url, {"q": ids["moco"][:20]}).content) <= set(ids.values())
    assert ids["moco"] in _ids(staff.get(url, {"q": ids["moco"][:20]}).content)
    assert _ids(staff.get(url, {"q": ids["moco"]}).content) == {ids["moco"]}


def _ids(page: bytes) -> set[str]:
    return set(re.findall(r"/hookshield/delivery/([0-9a-f]{24})/change/", page.decode()))


def test_a_delivery_page_hides_credentials_and_changes_nothing(alias: str, staff: Client) -> None:
    inbox = DjangoInbox(alias, key=KEY)
    from ..test_inbox_contract import stored

    secret = "sha256=" + "ab" * 32
    delivery_ = dataclasses.replace(
        stored(), headers=(("x-mindpeeker-signature", secret), ("content-type", "application/json"))
    )
    inbox.put(delivery_)
    page = staff.get(f"/admin/hookshield/delivery/{delivery_.id}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert secret not in text and "x-mindpeeker-signature: &lt;hidden&gt;" in text
    assert "content-type: application/json" in text
    assert '{"n": 0}' in text.replace("&quot;", '"')
    # Read-only: a POST changes nothing, and no delivery can be added.
    staff.post(f"/admin/hookshield/delivery/{delivery_.id}/change/", {"state": "done"})
    got = inbox.get(delivery_.id)
    assert got is not None and got.state == "pending"
    assert staff.get("/admin/hookshield/delivery/add/").status_code == 403


def test_odd_text_a_sender_wrote_is_shown_escaped_not_a_500(alias: str, staff: Client) -> None:
    from ..test_inbox_contract import stored

    odd = dataclasses.replace(
        stored(), event_types=("odd\udc80\x1b[2J", "ok"), last_error="KeyError: \x1b[2J"
    )  # and a header "x-odd: a\udc80"
    DjangoInbox(alias, key=KEY).put(odd)
    listing = staff.get("/admin/hookshield/delivery/")
    assert listing.status_code == 200
    assert "odd\\udc80\\x1b[2J, ok" in listing.content.decode()
    page = staff.get(f"/admin/hookshield/delivery/{odd.id}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "x-odd: a\\udc80" in text and "\x1b" not in text
    assert staff.get("/admin/hookshield/delivery/", {"event_type": "ok"}).status_code == 200


def test_a_delivery_page_shows_its_attempts(alias: str, staff: Client) -> None:
    ids = _stored_three(alias)
    page = staff.get(f"/admin/hookshield/delivery/{ids['moco']}/change/").content.decode()
    assert re.search(r"<code>[0-9T:+-]+</code> attempt 1: dead \(boom\)", page)
    pending = staff.get(f"/admin/hookshield/delivery/{ids['petal']}/change/").content.decode()
    assert "none yet" in pending


def test_the_admin_retries_and_purges_the_selected_deliveries(alias: str, staff: Client) -> None:
    ids = _stored_three(alias)
    inbox = DjangoInbox(alias, key=KEY)
    url = "/admin/hookshield/delivery/"
    answer = staff.post(url, {"action": "retry", "_selected_action": [ids["moco"]]}, follow=True)
    assert answer.status_code == 200 and "1 of 1 deliveries are due now" in answer.content.decode()
    moco = inbox.get(ids["moco"])
    assert moco is not None and (moco.state, moco.attempts, moco.last_error) == ("pending", 0, None)
    answer = staff.post(
        url, {"action": "purge", "_selected_action": list(ids.values())}, follow=True
    )
    assert "Deleted 1 of 3 selected deliveries" in answer.content.decode()
    assert inbox.get(ids["mindpeeker"]) is None  # done: purged
    assert inbox.get(ids["petal"]) is not None and inbox.get(ids["moco"]) is not None  # to run
    assert "delete_selected" not in answer.content.decode()


def test_the_stored_rows_are_what_the_worker_runs(alias: str) -> None:
    # A json list in the event types column: the admin's filter relies on it.
    from ..test_inbox_contract import stored

    DjangoInbox(alias, key=KEY).put(stored())
    (row,) = Delivery.objects.using(alias).all()
    assert json.loads(row.event_types) == ["session.completed", "é"]
    assert row.types == ["session.completed", "é"]
    assert str(row).startswith("mindpeeker delivery ")
    assert row.received_at.tzinfo is not None
