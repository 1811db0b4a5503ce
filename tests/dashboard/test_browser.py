"""The dashboard in a real browser: Debian's Chromium, driven by Playwright.

Served three ways, each by a real server on 127.0.0.1: ``hookshield inbox serve``, a Flask
app under gunicorn and a Starlette app under uvicorn (both mounting it at
``/ops/inbox``); and ``hookshield inbox serve`` on a real PostgreSQL inbox too.  Playwright's own browser download is never used: the tests launch
``/usr/bin/chromium`` (``apt-get install chromium``; the ``tests`` nox session installs
it on a fresh machine), and are skipped without it, or failed under CI.

With ``HOOKSHIELD_SCREENSHOTS=1`` the screenshot test rewrites docs/images/dashboard-*.png,
the pictures the dashboard's page shows; otherwise it writes them to a temporary
directory, so that a normal run leaves the checkout as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hookshield import SQLiteInbox, StoredDelivery, WebhookHandler
from hookshield._durable.inbox import new_id
from hookshield._durable.refused import refused_delivery
from hookshield.testing import sample_delivery, sign

from .. import servers
from ..required import unavailable
from .support import HOSTILE, SECRET, stock

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"
#: Headless, and nothing that would reach the network on its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IMAGES = servers.ROOT / "docs" / "images"
PASSWORD = "a dashboard password for the tests"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, launched once for the module."""
    if not os.path.exists(CHROMIUM):
        unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (the test dependency group has it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab with no cookie, its console messages kept in ``page.console``."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    messages: list[str] = []
    tab.on("console", lambda message: messages.append(message.text))
    tab.console = messages  # type: ignore[attr-defined]
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def inbox(tmp_path: Path) -> SQLiteInbox:
    made = SQLiteInbox(tmp_path / "webhooks.db", keep_refused=20)
    made.counts()  # the file exists before a server opens it
    return made


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own server
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def served(
    kind: str, inbox: SQLiteInbox | None, tmp_path: Path, *, where: str = "", **env: str
) -> Iterator[str]:
    """Serve the dashboard of ``inbox`` (or of the inbox ``where`` names) ``kind``'s way.

    Yields its URL.
    """
    where = where or str(inbox.path if inbox is not None else "")
    port = servers.free_port()
    environ = servers.environment(HOOKSHIELD_TEST_INBOX=where)
    environ.pop("HOOKSHIELD_DASHBOARD_PASSWORD", None)  # only what the test gives
    environ.update(env)
    if kind == "cli":
        argv = [sys.executable, "-m", "hookshield", "inbox", "serve", "--inbox", where]
        argv += ["--port", str(port), "--handler", "tests.dashboard.apps:mindpeeker"]
        url = f"http://127.0.0.1:{port}/"
    elif kind == "flask":
        argv = [sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}"]
        argv += ["--no-control-socket"] if servers.gunicorn_has_control_socket() else []
        argv.append("tests.dashboard.apps:flask_app()")
        url = f"http://127.0.0.1:{port}/ops/inbox/"
    else:
        argv = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--no-access-log", "--factory", "tests.dashboard.apps:starlette_app"]
        url = f"http://127.0.0.1:{port}/ops/inbox/"
    output = tmp_path / f"{kind}.out"
    with servers.serving(argv, port=port, ready=lambda: _answers(url), env=environ, output=output):
        yield url


def _rows(page: Page) -> list[str]:
    return page.locator("table.deliveries a.id").all_inner_texts()


# -- the list, a filter, a delivery, Retry: served three ways -------------------------------


@pytest.mark.parametrize("kind", ["cli", "flask", "asgi"])
def test_list_filter_open_and_retry_change_the_inbox_file(
    page: Page, inbox: SQLiteInbox, tmp_path: Path, kind: str
) -> None:
    moco = stock(inbox, sender="moco", event_type="activity.create", ago=900)
    dead = stock(inbox, state="dead", error="KeyError: 'customer'", ago=300)
    stock(inbox, ago=30)
    with served(kind, inbox, tmp_path) as url:
        page.goto(url)
        assert len(_rows(page)) == 3
        page.fill("input[name=sender]", "moco")
        page.click("form.filters button")
        page.wait_for_url("**sender=moco**")
        assert _rows(page) == [moco.id]  # the filter is in the URL: a bookmark
        page.click("a.state.dead")
        page.wait_for_url("**state=dead**")
        assert _rows(page) == []  # moco and dead: none
        page.goto(url + "?state=dead")
        page.click(f"text={dead.id}")
        page.wait_for_url(f"**/delivery?id={dead.id}")
        assert "KeyError: 'customer'" in page.inner_text("pre.error")
        page.click("form[action$='/delivery/retry'] button")
        page.wait_for_url("**notice=retried**")
        assert "Pending again, due now." in page.inner_text(".notice")
    # Read from the file itself, by another process's way in.
    after = SQLiteInbox(inbox.path, read_only=True).get(dead.id)
    assert after is not None and (after.state, after.attempts) == ("pending", 0)


# -- a PostgreSQL inbox: the list, pausing a sender, a retry -------------------------------

PG_KEY = "browser-tests-inbox-key-0123456789"


def test_serve_a_postgresql_inbox_pause_resume_and_retry(
    page: Page, postgres_url: str, tmp_path: Path
) -> None:
    from hookshield.postgres import PostgresInbox

    inbox = PostgresInbox(postgres_url, key=PG_KEY)
    moco = stock(inbox, sender="moco", event_type="activity.create", ago=900)
    dead = stock(inbox, state="dead", error="KeyError: 'customer'", ago=300)
    with served("cli", None, tmp_path, where=postgres_url, HOOKSHIELD_INBOX_KEY=PG_KEY) as url:
        page.goto(url)
        assert sorted(_rows(page)) == sorted([moco.id, dead.id])
        page.fill("input[name=type]", "activity.*")
        page.click("form.filters button")
        page.wait_for_url("**type=activity.**")
        assert _rows(page) == [moco.id]
        # Pause moco from the overview: every worker leaves its deliveries waiting.
        page.goto(url + "overview")
        page.click("table.senders tr:has(td:text-is('moco')) form[action$='/sender/pause'] button")
        page.wait_for_url("**/overview?notice=paused")
        assert "Paused" in page.inner_text(".notice")
        assert list(inbox.paused()) == ["moco"]
        assert inbox.lease(time.time(), ["moco"]) is None
        # The list says so, and resumes it.
        page.goto(url)
        assert "moco" in page.inner_text("div.paused-senders")
        assert page.locator("table.deliveries .badge.paused").count() == 1
        page.click("div.paused-senders form[action$='/sender/resume'] button")
        page.wait_for_url("**/?notice=resumed")
        assert inbox.paused() == {}
        assert page.locator("div.paused-senders").count() == 0
        # Retry the dead one from its page.
        page.goto(url + f"delivery?id={dead.id}")
        page.click("form[action$='/delivery/retry'] button")
        page.wait_for_url("**notice=retried**")
    after = inbox.get(dead.id)
    assert after is not None and (after.state, after.attempts) == ("pending", 0)
    assert [a.state for a in inbox.history(dead.id)] == ["requeued"]
    inbox.close()


# -- sender text is text --------------------------------------------------------------------


def test_a_hostile_delivery_shows_as_text_and_nothing_runs_or_is_injected(
    page: Page, inbox: SQLiteInbox, tmp_path: Path
) -> None:
    body = json.dumps({"id": "evt_x", "type": "session.completed", "note": HOSTILE}).encode()
    hostile = stock(inbox, event_type=HOSTILE, body=body, state="dead", error=HOSTILE)
    with served("cli", inbox, tmp_path) as url:
        for path in ("", "?state=dead", f"delivery?id={hostile.id}", "overview"):
            page.goto(url + path)
            assert page.evaluate("() => window.__pwned") is None
            assert page.locator("script").count() == 0
            assert page.locator("img").count() == 0
            assert page.locator("[onerror], [onload]").count() == 0
        shown = page.goto(url + f"delivery?id={hostile.id}")
        assert shown is not None and shown.status == 200
        assert "<script>window.__pwned=1</script>" in page.inner_text("pre.body")
        assert HOSTILE in page.inner_text("pre.error")
    assert not [m for m in page.console if "Content Security Policy" in m]  # type: ignore[attr-defined]


# -- state changes only from the dashboard's pages ------------------------------------------


def test_a_cross_site_post_gets_403_and_changes_nothing(
    page: Page, inbox: SQLiteInbox, tmp_path: Path
) -> None:
    dead = stock(inbox, state="dead")
    with served("cli", inbox, tmp_path) as url:
        page.goto(url)  # a session with the dashboard, as its user has
        attacker = f"""<!DOCTYPE html><html><body>
            <form id="f" method="post" action="{url}delivery/retry">
              <input name="id" value="{dead.id}"><input name="token" value="{"0" * 32}">
            </form>
            <script>document.getElementById("f").submit()</script></body></html>"""
        page.route(
            "http://attacker.test/**",
            lambda route: route.fulfill(status=200, content_type="text/html", body=attacker),
        )
        with page.expect_response(lambda r: r.url.endswith("/delivery/retry")) as answer:
            page.goto("http://attacker.test/")
        assert answer.value.status == 403
        assert "did not come from a page of the dashboard" in page.inner_text("main")
        # A script (were one injected) could not even send a request from the
        # dashboard's page: its Content-Security-Policy allows no connection.
        page.goto(url)
        sent = page.evaluate(
            "(to) => fetch(to, {method: 'POST'}).then(() => 'sent', () => 'blocked')",
            url + "delivery/retry",
        )
        assert sent == "blocked"
        # A form from the dashboard's own origin but without the page's token: 403 too.
        with page.expect_response(lambda r: r.url.endswith("/delivery/retry")) as answer:
            page.evaluate(
                """([to, id]) => {
                    const form = Object.assign(document.createElement("form"),
                                               {method: "post", action: to});
                    form.append(Object.assign(document.createElement("input"),
                                              {name: "id", value: id}));
                    document.body.append(form);
                    form.submit();
                }""",
                [url + "delivery/retry", dead.id],
            )
        assert answer.value.status == 403
    after = SQLiteInbox(inbox.path, read_only=True).get(dead.id)
    assert after is not None and after.state == "dead"


# -- the loopback rule, and the built-in password -------------------------------------------


def test_serve_refuses_another_address_without_a_password_and_asks_for_it_when_set(
    page: Page, inbox: SQLiteInbox, tmp_path: Path
) -> None:
    env = {k: v for k, v in servers.environment().items() if k != "HOOKSHIELD_DASHBOARD_PASSWORD"}
    argv = [sys.executable, "-m", "hookshield", "inbox", "serve", "--inbox", str(inbox.path)]
    argv += ["--host", "0.0.0.0"]  # noqa: S104 - refused before anything is bound
    refused = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert refused.returncode == 2 and "is not a loopback address" in refused.stderr
    stock(inbox)
    with served("cli", inbox, tmp_path, HOOKSHIELD_DASHBOARD_PASSWORD=PASSWORD) as url:
        page.goto(url)
        page.wait_for_url("**/login?next=*")
        page.fill("input[name=password]", "not it at all, no")
        page.click("form.login button")
        assert "wrong password" in page.inner_text("main")
        page.goto(url + "login?next=%2F")
        page.fill("input[name=password]", PASSWORD)
        page.click("form.login button")
        page.wait_for_url(url)
        assert len(_rows(page)) == 1
        cookie = next(c for c in page.context.cookies() if c["name"] == "hookshield_dashboard")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


# -- a refusal checked again ----------------------------------------------------------------


def test_a_kept_refusal_is_rechecked_into_a_pending_delivery(
    page: Page, inbox: SQLiteInbox, tmp_path: Path
) -> None:
    stale = WebhookHandler("mindpeeker", secret="whsec_before_the_rotation")
    body, headers = sample_delivery("mindpeeker", "session.completed", secret=SECRET)
    error = stale.accept(body, headers).error
    refused = refused_delivery(
        stale,
        error,  # type: ignore[arg-type]
        received=time.time() - 120,
        peer="203.0.113.7",
        headers=headers,
        body=body,
        body_limit=inbox.refused_body_limit,
    )
    assert inbox.keep_refusal(refused)
    with served("cli", inbox, tmp_path) as url:
        page.goto(url + "refused")
        page.click("table.refusals a")
        page.click("form[action$='/refused/recheck'] button")
        page.wait_for_url("**notice=stored**")
        assert "It verifies now" in page.inner_text(".notice")
    assert inbox.get_refused(refused.id) is None
    assert len(SQLiteInbox(inbox.path, read_only=True).find_ids("", limit=5)[0]) == 1


# -- the pictures in the docs ----------------------------------------------------------------


def _showcase(inbox: SQLiteInbox) -> StoredDelivery:
    """A few hours of a receiver's life; returns the dead delivery the docs walk through."""
    now = time.time()
    for hours, sender, kind in (
        (20, "github", "push"),
        (14, "moco", "activity.create"),
        (9, "mindpeeker", "session.completed"),
        (5, "github", "pull_request.opened"),
        (2, "moco", "invoice.paid"),
    ):
        stock(inbox, sender=sender, event_type=kind, state="done", ago=hours * 3600)
    body = json.dumps(
        {
            "id": "evt_7c1f0a",
            "type": "session.completed",
            "created_at": "2026-05-01T09:12:44Z",
            "data": {"session_id": "sess_4821", "confidence_score": 0.91, "target": "T-77"},
        }
    ).encode()
    received = now - 47 * 60
    dead = StoredDelivery(
        id=new_id(received),
        sender="mindpeeker",
        handler="mindpeeker",
        body=body,
        headers=tuple(sign("mindpeeker", body, secret=SECRET).items()),
        received=received,
        event_types=("session.completed",),
        next_attempt=received,
    )
    inbox.put(dead)
    error = "KeyError: 'customer_id' (in record_session, myapp/hooks.py line 31)"
    for attempt in range(3):
        leased = inbox.lease(received + attempt * 600 + 1, ["mindpeeker"])
        assert leased is not None and leased.id == dead.id
        if attempt < 2:
            inbox.retry(leased, received + (attempt + 1) * 600, error)
        else:
            inbox.dead(leased, error)
    stock(inbox, sender="github", event_type="push", ago=600)
    stock(inbox, sender="moco", event_type="activity.update", ago=60)
    return dead


def test_screenshots_of_the_list_and_a_delivery(
    page: Page, inbox: SQLiteInbox, tmp_path: Path
) -> None:
    dead = _showcase(inbox)
    into = IMAGES if os.environ.get("HOOKSHIELD_SCREENSHOTS") == "1" else tmp_path
    into.mkdir(parents=True, exist_ok=True)
    shots: dict[str, Any] = {}
    with served("cli", inbox, tmp_path) as url:
        page.goto(url)
        shots["list"] = page.screenshot(path=str(into / "dashboard-list.png"), full_page=True)
        page.goto(url + f"delivery?id={dead.id}")
        shots["delivery"] = page.screenshot(
            path=str(into / "dashboard-delivery.png"), full_page=True
        )
    for name, png in shots.items():
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000, name
