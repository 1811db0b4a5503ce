"""The dashboard through its WSGI app, on a real inbox: pages, actions, and what it refuses.

Each test runs on an SQLite file and on a real PostgreSQL database (``PostgresInbox``):
the dashboard asks both the same.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from hookshield import (
    DeliveryFilter,
    ManagedInbox,
    RefusedDelivery,
    SQLiteInbox,
    WebhookError,
    WebhookHandler,
)
from hookshield._dashboard import _app
from hookshield._dashboard._http import MAX_FORM
from hookshield._durable.refused import refused_delivery
from hookshield.dashboard import Dashboard, wsgi_app
from hookshield.testing import sample_delivery

from .support import SECRET, Visitor, stock, token_of

PASSWORD = "correct horse battery staple"


@pytest.fixture(params=["sqlite", "postgres"])
def inbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ManagedInbox]:
    made: ManagedInbox
    if request.param == "sqlite":
        made = SQLiteInbox(tmp_path / "inbox.db", keep_refused=10)
    else:
        from hookshield.postgres import PostgresInbox

        url = request.getfixturevalue("postgres_url")
        made = PostgresInbox(url, key="dashboard-tests-inbox-key-0123", keep_refused=10)
    yield made
    made.close()


@pytest.fixture
def visitor(inbox: ManagedInbox) -> Visitor:
    return Visitor(wsgi_app(inbox, handlers=[WebhookHandler("mindpeeker", secret=SECRET)]))


def text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined, no-any-return]


# -- every answer ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/overview", "/refused", "/nowhere", "/static/dashboard.css", "/delivery"]
)
def test_every_answer_carries_the_security_headers(visitor: Visitor, path: str) -> None:
    response = visitor.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp and "unsafe-inline" not in csp  # no script at all
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_the_session_cookie_is_http_only_strict_and_secure_over_https(inbox: ManagedInbox) -> None:
    app = wsgi_app(inbox)
    plain = Visitor(app).get("/").headers["Set-Cookie"]
    assert "HttpOnly" in plain and "SameSite=Strict" in plain and "Path=/" in plain
    assert "Secure" not in plain
    secure = Visitor(app, base_url="https://dash.test").get("/").headers["Set-Cookie"]
    assert "Secure" in secure


def test_no_page_has_a_script_and_the_stylesheet_is_served(
    visitor: Visitor, inbox: ManagedInbox
) -> None:
    stock(inbox)
    for path in ("/", "/overview", "/refused"):
        assert "<script" not in text(visitor.get(path))
    css = visitor.get("/static/dashboard.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")


# -- the list ------------------------------------------------------------------------------


def test_the_list_shows_newest_first_and_filters_by_the_query(
    visitor: Visitor, inbox: ManagedInbox
) -> None:
    old = stock(inbox, sender="moco", event_type="activity.create", ago=7200)
    dead = stock(inbox, state="dead", error="KeyError: 'customer'", ago=600)
    new = stock(inbox, ago=5)
    page = text(visitor.get("/"))
    ids = re.findall(r'href="/delivery\?id=([0-9a-f]+)"', page)
    assert ids == [new.id, dead.id, old.id]
    assert "KeyError: &#x27;customer&#x27;" in page
    assert re.findall(r'delivery\?id=([0-9a-f]+)"', text(visitor.get("/?state=dead"))) == [dead.id]
    assert re.findall(r'delivery\?id=([0-9a-f]+)"', text(visitor.get("/?sender=moco"))) == [old.id]
    by_type = text(visitor.get("/?type=activity.*"))
    assert re.findall(r'delivery\?id=([0-9a-f]+)"', by_type) == [old.id]
    recent = text(visitor.get("/?since=1h"))
    assert re.findall(r'delivery\?id=([0-9a-f]+)"', recent) == [new.id, dead.id]
    assert 'value="1h"' in recent  # the filter's form shows what was asked
    assert ">dead 1<" in recent and "2 matching" in recent


def test_a_bad_filter_is_a_400_that_says_what_to_give(visitor: Visitor) -> None:
    response = visitor.get("/?since=yesterday")
    assert response.status_code == 400
    assert "give a date" in text(response)
    assert visitor.get("/?state=gone").status_code == 400


def test_the_list_pages_by_the_last_id(visitor: Visitor, inbox: ManagedInbox) -> None:
    rows = [stock(inbox, ago=1000 - i) for i in range(_app.PAGE + 3)]
    first = text(visitor.get("/"))
    older = re.search(r'href="(/\?before=[0-9a-f]+)">Older', first)
    assert older is not None
    second = text(visitor.get(older[1].replace("&amp;", "&")))
    assert re.findall(r'delivery\?id=([0-9a-f]+)"', second) == [r.id for r in rows[:3]][::-1]
    assert "Newest" in second and "Older" not in second


# -- one delivery --------------------------------------------------------------------------


def test_a_delivery_page_shows_attempts_headers_hidden_and_the_body(
    visitor: Visitor, inbox: ManagedInbox
) -> None:
    stored = stock(inbox, body=b'{"id":"evt_9","type":"session.completed","data":{"a":1}}')
    leased = inbox.lease(time.time(), ["mindpeeker"])
    assert leased is not None and inbox.retry(leased, time.time(), "ValueError: first try")
    page = text(visitor.get(f"/delivery?id={stored.id}"))
    assert "ValueError: first try" in page and "Attempts" in page
    assert "&lt;hidden&gt;" in page  # the signature header's value
    assert stored.headers[1][1] not in page
    assert "  &quot;data&quot;: {\n    &quot;a&quot;: 1" in page  # pretty-printed JSON
    missing = visitor.get("/delivery?id=nope")
    assert missing.status_code == 404 and "no delivery" in text(missing)
    assert visitor.get("/delivery").status_code == 400


def test_a_delivery_page_shows_the_trace_id_stored_with_it(
    visitor: Visitor, inbox: ManagedInbox
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traced = stock(inbox, traceparent=f"00-{trace_id}-00f067aa0ba902b7-01")
    untraced = stock(inbox, body=b'{"id": "evt_2", "type": "session.completed"}')
    assert trace_id in text(visitor.get(f"/delivery?id={traced.id}"))
    page = text(visitor.get(f"/delivery?id={untraced.id}"))
    assert "Trace" in page and trace_id not in page


def test_retry_makes_it_pending_now_and_a_leased_one_is_left_alone(
    visitor: Visitor, inbox: ManagedInbox
) -> None:
    dead = stock(inbox, state="dead")
    token = visitor.token(f"/delivery?id={dead.id}")
    response = visitor.post("/delivery/retry", {"id": dead.id, "token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/delivery?id={dead.id}&notice=retried"
    after = inbox.get(dead.id)
    assert after is not None and (after.state, after.attempts, after.last_error) == (
        "pending",
        0,
        None,
    )
    assert "Pending again, due now." in text(visitor.get(response.headers["Location"]))
    leased = inbox.lease(time.time(), ["mindpeeker"])
    assert leased is not None
    busy = visitor.post("/delivery/retry", {"id": leased.id, "token": token})
    assert busy.status_code == 409 and "leased" in text(busy)


def test_purge_deletes_a_done_or_dead_delivery_only(visitor: Visitor, inbox: ManagedInbox) -> None:
    done = stock(inbox, state="done")
    pending = stock(inbox)
    token = visitor.token(f"/delivery?id={done.id}")
    assert visitor.post("/delivery/purge", {"id": done.id, "token": token}).status_code == 303
    assert inbox.get(done.id) is None
    refused = visitor.post("/delivery/purge", {"id": pending.id, "token": token})
    assert refused.status_code == 409 and inbox.get(pending.id) is not None


# -- bulk actions: the count first, then the action on confirmation ------------------------


def test_bulk_retry_shows_the_count_then_requeues_the_filter(
    visitor: Visitor, inbox: ManagedInbox
) -> None:
    dead = [stock(inbox, state="dead", sender="mindpeeker") for _ in range(3)]
    other = stock(inbox, state="dead", sender="moco")
    listing = text(visitor.get("/?state=dead&sender=mindpeeker"))
    assert "Retry these 3…" in listing
    confirm = visitor.get("/retry?state=dead&sender=mindpeeker")
    page = text(confirm)
    assert "3 deliveries match state dead, sender mindpeeker" in page
    assert all(inbox.get(row.id).state == "dead" for row in dead)  # type: ignore[union-attr]
    done = visitor.post(
        "/retry", {"state": "dead", "sender": "mindpeeker", "token": token_of(page)}
    )
    assert done.status_code == 303 and "notice=requeued&n=3" in done.headers["Location"]
    assert inbox.count(DeliveryFilter(state="pending")) == 3
    assert inbox.get(other.id).state == "dead"  # type: ignore[union-attr]
    assert "3 deliveries are pending again" in text(visitor.get(done.headers["Location"]))


def test_bulk_retry_needs_a_state(visitor: Visitor, inbox: ManagedInbox) -> None:
    response = visitor.get("/retry?sender=moco")
    assert response.status_code == 400 and "filter them by state first" in text(response)
    token = visitor.token(f"/delivery?id={stock(inbox).id}")
    assert visitor.post("/retry", {"token": token}).status_code == 400


def test_bulk_purge_by_state_and_age(visitor: Visitor, inbox: ManagedInbox) -> None:
    old = stock(inbox, state="done", ago=3 * 86400)
    recent = stock(inbox, state="done", ago=60)
    page = text(visitor.get("/purge?state=done&older_than=1d"))
    assert "1 delivery matches state done" in page
    response = visitor.post(
        "/purge", {"state": "done", "older_than": "1d", "token": token_of(page)}
    )
    assert response.status_code == 303
    assert inbox.get(old.id) is None and inbox.get(recent.id) is not None
    assert visitor.get("/purge?state=pending&older_than=1d").status_code == 400


# -- state changes only from the dashboard's own pages -----------------------------------


def test_a_post_without_the_token_or_from_another_site_is_403_and_changes_nothing(
    visitor: Visitor, inbox: ManagedInbox
) -> None:
    dead = stock(inbox, state="dead")
    token = visitor.token(f"/delivery?id={dead.id}")
    attempts = [
        visitor.post("/delivery/retry", {"id": dead.id}),  # no token
        visitor.post("/delivery/retry", {"id": dead.id, "token": "0" * 32}),  # a wrong one
        visitor.post("/delivery/retry", {"id": dead.id, "token": token}, site="cross-site"),
        visitor.post("/delivery/retry", {"id": dead.id, "token": token}, site="same-site"),
        visitor.post("/delivery/retry", {"id": dead.id, "token": token}, site=None),  # neither
        visitor.post(
            "/delivery/retry", {"id": dead.id, "token": token}, site=None, origin="http://evil.test"
        ),
        visitor.post("/delivery/retry", {"id": dead.id, "token": token}, site=None, origin="null"),
    ]
    assert [response.status_code for response in attempts] == [403] * len(attempts)
    assert "refused" in text(attempts[0])
    assert inbox.get(dead.id).state == "dead"  # type: ignore[union-attr]
    # An older browser without Sec-Fetch-Site: an Origin naming this host is enough.
    ok = visitor.post(
        "/delivery/retry", {"id": dead.id, "token": token}, site=None, origin="http://dash.test"
    )
    assert ok.status_code == 303


def test_another_session_s_token_is_refused(inbox: ManagedInbox) -> None:
    app = wsgi_app(inbox)
    dead = stock(inbox, state="dead")
    mine, theirs = Visitor(app), Visitor(app)
    mine.get("/")
    theirs_token = theirs.token(f"/delivery?id={dead.id}")
    response = mine.post("/delivery/retry", {"id": dead.id, "token": theirs_token})
    assert response.status_code == 403
    assert inbox.get(dead.id).state == "dead"  # type: ignore[union-attr]


def test_a_get_on_an_action_is_405_and_an_unknown_path_404(visitor: Visitor) -> None:
    assert visitor.get("/delivery/retry").status_code == 405
    assert visitor.get("/no/such/page").status_code == 404


def test_a_form_larger_than_the_dashboard_reads_is_413(visitor: Visitor) -> None:
    response = visitor.post("/delivery/retry", {"id": "x" * (MAX_FORM + 1)})
    assert response.status_code == 413


# -- the built-in password ----------------------------------------------------------------


@pytest.fixture
def guarded(inbox: ManagedInbox, monkeypatch: pytest.MonkeyPatch) -> Visitor:
    monkeypatch.setattr(_app, "WRONG_PASSWORD_DELAY", 0.0)
    return Visitor(wsgi_app(inbox, password=PASSWORD))


def test_with_a_password_every_page_asks_to_sign_in_first(
    guarded: Visitor, inbox: ManagedInbox
) -> None:
    dead = stock(inbox, state="dead")
    for path in ("/", "/overview", f"/delivery?id={dead.id}", "/refused"):
        response = guarded.get(path)
        assert response.status_code == 303
        assert response.headers["Location"] == "/login?" + urlencode({"next": path})
    token = guarded.token("/login")
    refused = guarded.post("/delivery/retry", {"id": dead.id, "token": token})
    assert refused.status_code == 403
    assert inbox.get(dead.id).state == "dead"  # type: ignore[union-attr]


def test_signing_in_takes_the_right_password_and_a_new_session(guarded: Visitor) -> None:
    token = guarded.token("/login")
    wrong = guarded.post("/login", {"password": PASSWORD + "!", "token": token})
    assert wrong.status_code == 403 and "wrong password" in text(wrong)
    before = guarded.client.get_cookie("hookshield_dashboard", domain="dash.test")
    right = guarded.post("/login", {"password": PASSWORD, "token": token})
    assert right.status_code == 303
    after = guarded.client.get_cookie("hookshield_dashboard", domain="dash.test")
    assert before is not None and after is not None
    assert after.value.split(".")[0] != before.value.split(".")[0]  # a new session id
    assert guarded.get("/").status_code == 200
    out = guarded.post("/logout", {"token": guarded.token("/")})
    assert out.status_code == 303 and guarded.get("/").status_code == 303


def test_signing_in_returns_to_the_page_asked_for_and_never_elsewhere(
    guarded: Visitor, inbox: ManagedInbox
) -> None:
    dead = stock(inbox, state="dead")
    asked = guarded.get(f"/delivery?id={dead.id}")
    login = guarded.get(asked.headers["Location"])
    page = text(login)
    assert f'name="next" value="/delivery?id={dead.id}"' in page
    token = token_of(page)
    back = guarded.post(
        "/login", {"password": PASSWORD, "token": token, "next": f"/delivery?id={dead.id}"}
    )
    assert back.headers["Location"] == f"/delivery?id={dead.id}"
    for elsewhere in ("//evil.test/x", "/\\evil.test", "https://evil.test/", "/a b", ""):
        other = Visitor(guarded.client.application)
        token = other.token("/login")
        answer = other.post("/login", {"password": PASSWORD, "token": token, "next": elsewhere})
        assert answer.headers["Location"] == "/", elsewhere


def test_a_forged_session_cookie_is_not_signed_in(guarded: Visitor, inbox: ManagedInbox) -> None:
    guarded.get("/login")
    cookie = guarded.client.get_cookie("hookshield_dashboard", domain="dash.test")
    assert cookie is not None
    sid, issued, _, mac = cookie.value.split(".")
    guarded.client.set_cookie("hookshield_dashboard", f"{sid}.{issued}.1.{mac}", domain="dash.test")
    response = guarded.get("/")
    assert response.status_code == 303  # not signed in: the MAC covers the flag
    assert "Set-Cookie" in response.headers  # the forged cookie was read, and replaced


def test_the_password_and_options_are_checked(inbox: ManagedInbox) -> None:
    with pytest.raises(ValueError, match="at least 12"):
        wsgi_app(inbox, password="short")
    with pytest.raises(TypeError, match="ManagedInbox"):
        wsgi_app(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="two handlers"):
        wsgi_app(
            inbox, handlers=[WebhookHandler("moco", secret="a"), WebhookHandler("moco", secret="b")]
        )
    with pytest.raises(ValueError, match="prefix must start"):
        wsgi_app(inbox, prefix="inbox")
    with pytest.raises(ValueError, match="session_key"):
        wsgi_app(inbox, session_key="short")


def test_processes_with_the_same_session_key_share_sessions(inbox: ManagedInbox) -> None:
    one = wsgi_app(inbox, session_key="a shared key of 32 bytes or so..")
    other = wsgi_app(inbox, session_key="a shared key of 32 bytes or so..")
    dead = stock(inbox, state="dead")
    visitor = Visitor(one)
    token = visitor.token(f"/delivery?id={dead.id}")
    visitor.client.application = other  # the next request reaches another process
    assert visitor.post("/delivery/retry", {"id": dead.id, "token": token}).status_code == 303


# -- refused deliveries --------------------------------------------------------------------


def refusal(
    handler: WebhookHandler, body: bytes, headers: dict[str, str], *, peer: str | None, limit: int
) -> RefusedDelivery:
    """What an adapter keeps of this delivery ``handler`` refuses."""
    error = handler.accept(body, headers).error
    assert isinstance(error, WebhookError)
    return refused_delivery(
        handler,
        error,
        received=time.time(),
        peer=peer,
        headers=headers,
        body=body,
        body_limit=limit,
    )


def test_refusals_are_listed_and_rechecked_into_a_pending_delivery(inbox: ManagedInbox) -> None:
    # The app had a stale secret and refused the sender's delivery; it is fixed now.
    stale = WebhookHandler("mindpeeker", secret="whsec_stale")
    body, headers = sample_delivery("mindpeeker", "session.completed", secret=SECRET)
    kept = refusal(stale, body, headers, peer="198.51.100.7", limit=inbox.refused_body_limit)
    assert inbox.keep_refusal(kept)
    visitor = Visitor(wsgi_app(inbox, handlers=[WebhookHandler("mindpeeker", secret=SECRET)]))
    listing = text(visitor.get("/refused"))
    assert "InvalidSignature" in listing and "198.51.100.7" in listing
    page = text(visitor.get(f"/refused/one?id={kept.id}"))
    assert "Re-check" in page and "kept whole" in page
    response = visitor.post("/refused/recheck", {"id": kept.id, "token": token_of(page)})
    assert response.status_code == 303
    stored_id = re.search(r"id=([0-9a-f]+)", response.headers["Location"])
    assert stored_id is not None
    stored = inbox.get(stored_id[1])
    assert stored is not None and stored.state == "pending" and stored.body == body
    assert inbox.get_refused(kept.id) is None  # forgotten once stored
    assert "It verifies now" in text(visitor.get(response.headers["Location"]))


def test_a_recheck_that_fails_says_why_and_keeps_the_refusal(inbox: ManagedInbox) -> None:
    handler = WebhookHandler("mindpeeker", secret=SECRET)
    body, headers = sample_delivery("mindpeeker", "session.completed", secret="whsec_other")
    kept = refusal(handler, body, headers, peer=None, limit=100)
    inbox.keep_refusal(kept)
    visitor = Visitor(wsgi_app(inbox, handlers=[handler]))
    page = f"/refused/one?id={kept.id}"
    response = visitor.post("/refused/recheck", {"id": kept.id, "token": visitor.token(page)})
    assert response.status_code == 200
    assert f"only the first 100 of its {len(body)} bytes were kept" in text(response)
    assert inbox.get_refused(kept.id) is not None
    without = Visitor(wsgi_app(inbox))
    assert "serve the dashboard with the mindpeeker handler" in text(
        without.get(f"/refused/one?id={kept.id}")
    )
    denied = without.post("/refused/recheck", {"id": kept.id, "token": without.token(page)})
    assert denied.status_code == 409
    forgotten = visitor.post("/refused/forget", {"id": kept.id, "token": visitor.token(page)})
    assert forgotten.status_code == 303
    assert inbox.get_refused(kept.id) is None


def test_without_refusals_the_page_says_how_to_keep_them(tmp_path: Path) -> None:
    visitor = Visitor(wsgi_app(SQLiteInbox(tmp_path / "plain.db")))
    page = text(visitor.get("/refused"))
    assert "No refused delivery is kept." in page and "keep_refused=100" in page


# -- the overview --------------------------------------------------------------------------


def test_the_overview_counts_and_charts(visitor: Visitor, inbox: ManagedInbox) -> None:
    stock(inbox, state="dead", ago=3 * 3600)
    stock(inbox, state="done", ago=600)
    stock(inbox, sender="moco", ago=7200)
    page = text(visitor.get("/overview"))
    assert '<span class="count">1</span><span>dead</span>' in page
    assert "The oldest due delivery has waited 2h past its due time." in page
    assert page.count("<rect") >= 3 and "1 dead" in page  # a bar's title
    assert ">moco<" in page
    assert visitor.get("/overview?window=7d").status_code == 200
    assert visitor.get("/overview?window=1y").status_code == 400


# -- paused senders ------------------------------------------------------------------------


def test_the_list_and_the_overview_show_paused_senders(
    visitor: Visitor, inbox: ManagedInbox
) -> None:
    moco = stock(inbox, sender="moco")
    stock(inbox, sender="mindpeeker")
    assert inbox.pause("moco")
    listing = text(visitor.get("/"))
    assert "Paused: no worker runs these senders&#x27; deliveries" in listing
    assert re.search(r"<strong>moco</strong><span [^>]*> paused \d+s ago </span>", listing)
    resume = re.findall(r'<form method="post" action="/sender/resume".*?</form>', listing)
    assert len(resume) == 1 and 'name="sender" value="moco"' in resume[0]
    assert 'name="next" value="/"' in resume[0]
    row = re.search(rf"{moco.id}</a></td><td>(.*?)</td>", listing)
    assert row is not None and row[1] == 'moco<span class="badge paused">paused</span>'
    # Filtered by a sender that runs, the list offers to pause it.
    running = text(visitor.get("/?sender=mindpeeker"))
    assert "Pause mindpeeker" in running and 'value="/?sender=mindpeeker"' in running
    assert "Pause moco" not in text(visitor.get("/?sender=moco"))  # paused already
    overview = text(visitor.get("/overview"))
    rows = dict(re.findall(r"<tr><td>(\w+)</td>.*?<td>(.*?)</td></tr>", overview))
    assert "/sender/resume" in rows["moco"] and "paused" in rows["moco"]
    assert "/sender/pause" in rows["mindpeeker"] and "paused" not in rows["mindpeeker"]


def test_a_paused_sender_without_deliveries_is_on_the_overview_too(
    visitor: Visitor, inbox: ManagedInbox
) -> None:
    assert inbox.pause("github")
    overview = text(visitor.get("/overview"))
    assert "<tr><td>github</td>" in overview and "/sender/resume" in overview


def test_pause_and_resume_change_the_inbox_and_return_to_the_page(
    visitor: Visitor, inbox: ManagedInbox
) -> None:
    stock(inbox, sender="moco")
    token = visitor.token("/overview")
    paused = visitor.post(
        "/sender/pause", {"sender": "moco", "next": "/overview?window=7d", "token": token}
    )
    assert paused.status_code == 303
    assert paused.headers["Location"] == "/overview?window=7d&notice=paused"
    assert list(inbox.paused()) == ["moco"]
    assert inbox.lease(time.time(), ["moco"]) is None  # no worker takes it now
    assert "Paused: no worker runs this sender" in text(visitor.get(paused.headers["Location"]))
    again = visitor.post("/sender/pause", {"sender": "moco", "next": "/", "token": token})
    assert again.headers["Location"] == "/?notice=paused-already"
    resumed = visitor.post(
        "/sender/resume",
        {"sender": "moco", "next": "/?sender=moco&notice=paused", "token": token},
    )
    assert resumed.headers["Location"] == "/?sender=moco&notice=resumed"
    assert inbox.paused() == {}
    assert inbox.lease(time.time(), ["moco"]) is not None
    gone = visitor.post("/sender/resume", {"sender": "moco", "token": token})
    assert gone.headers["Location"] == "/?notice=not-paused"


def test_pause_is_a_post_from_the_dashboard_s_own_page_only(
    visitor: Visitor, inbox: ManagedInbox
) -> None:
    stock(inbox, sender="moco")  # the overview then has its Pause button
    token = visitor.token("/overview")
    refused = [
        visitor.post("/sender/pause", {"sender": "moco"}),  # no token
        visitor.post("/sender/pause", {"sender": "moco", "token": "0" * 32}),
        visitor.post("/sender/pause", {"sender": "moco", "token": token}, site="cross-site"),
        visitor.post(
            "/sender/resume", {"sender": "moco", "token": token}, site=None, origin="null"
        ),
    ]
    assert [answer.status_code for answer in refused] == [403] * 4
    assert inbox.paused() == {}
    assert visitor.get("/sender/pause?sender=moco").status_code == 405
    assert inbox.paused() == {}


def test_pause_takes_a_sender_s_name_and_returns_to_the_dashboard_only(
    visitor: Visitor, inbox: ManagedInbox
) -> None:
    stock(inbox, sender="moco")  # the overview then has its Pause button
    token = visitor.token("/overview")
    for sender in ("", "m" * 65, "moco\x1b[2J", "moco\n"):
        answer = visitor.post("/sender/pause", {"sender": sender, "token": token})
        assert answer.status_code == 400, sender
    assert inbox.paused() == {}
    for elsewhere in ("//evil.test/x", "https://evil.test/", "/\\evil.test"):
        answer = visitor.post(
            "/sender/pause", {"sender": "moco", "next": elsewhere, "token": token}
        )
        assert answer.headers["Location"] == "/?notice=paused", elsewhere
        assert inbox.resume("moco")


def test_with_a_password_pause_needs_signing_in(
    inbox: ManagedInbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    visitor = Visitor(wsgi_app(inbox, password=PASSWORD))
    token = visitor.token("/login")
    answer = visitor.post("/sender/pause", {"sender": "moco", "token": token})
    assert answer.status_code == 403 and inbox.paused() == {}


# -- mounted under a prefix ----------------------------------------------------------------


def test_a_prefix_serves_below_it_only_and_links_carry_it(inbox: ManagedInbox) -> None:
    stock(inbox)
    visitor = Visitor(wsgi_app(inbox, prefix="/ops/inbox"))
    page = text(visitor.get("/ops/inbox/"))
    assert 'href="/ops/inbox/overview"' in page and 'href="/ops/inbox/delivery?id=' in page
    assert visitor.get("/ops/inbox").status_code == 200
    assert visitor.get("/elsewhere").status_code == 404
    fresh = Visitor(wsgi_app(inbox, prefix="/ops/inbox")).get("/ops/inbox/")
    assert "Path=/ops/inbox;" in fresh.headers["Set-Cookie"]


def test_the_dashboard_class_is_the_app_behind_each_adapter(inbox: ManagedInbox) -> None:
    app = wsgi_app(inbox)
    assert isinstance(app.dashboard, Dashboard) and not app.dashboard.has_password
