"""What each page of the dashboard shows, as HTML made by ``_html.py`` only.

Theory of operation: each function takes what its page shows (rows of the inbox, a
filter, a token for its forms) and returns :class:`~hookshield._dashboard._html.Markup`;
it never reads the inbox, the request or the clock itself (the caller passes ``now``).
Every value a sender chose goes through :func:`~hookshield._dashboard._html.tag` (or
:func:`text_block`), and so is escaped.  A credential header's value is never shown,
by the rule the command line follows (``Headers.redacted``).

The page's structure does not depend on what a sender wrote: a value changes the text
of an element or the value of an attribute, never which elements there are.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from .._core.headers import Headers
from .._core.text import age
from .._durable.browse import Attempt, DeliveryFilter, InboxOverview
from .._durable.inbox import STATES, StoredDelivery
from .._durable.refused import RefusedDelivery
from ._chart import chart
from ._html import Markup, href, join, tag, text_block

__all__ = [
    "confirm_purge",
    "confirm_retry",
    "deliveries",
    "delivery",
    "layout",
    "login",
    "overview",
    "problem",
    "refusal",
    "refusals",
]

#: The most of a body a page shows, and the largest it pretty-prints as JSON.
SHOWN_BODY: Final = 256 * 1024
PRETTY_BODY: Final = 1024 * 1024
#: What a page shows for a value that is not there.
NONE: Final = "\u2013"  # an en dash


def _trace_id(traceparent: str | None) -> str:
    """The trace id of the W3C trace context stored with a delivery: what a tracing UI finds.

    Only a well-formed ``traceparent`` is stored (``version-traceid-spanid-flags``).
    """
    parts = (traceparent or "").split("-")
    return parts[1] if len(parts) == 4 else NONE


#: Where the cells of the lists cut long text.
_CUT: Final = 160

_NAV: Final = (("/", "Deliveries"), ("/overview", "Overview"), ("/refused", "Refused"))


def layout(
    base: str,
    title: str,
    content: Markup,
    *,
    current: str,
    signed_in: bool | None,
    token: str,
    notice: str | None,
) -> str:
    """The whole page: head, navigation, an optional notice, and ``content``."""
    links = [
        tag(
            "a",
            {"href": href(base, path), "aria-current": "page" if path == current else None},
            label,
        )
        for path, label in _NAV
    ]
    if signed_in:
        links.append(_post_form(base, "/logout", token, {}, "Sign out", css="inline"))
    head = join(
        [
            tag("meta", {"charset": "utf-8"}),
            tag("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
            tag("title", None, f"{title} · hookshield"),
            tag("link", {"rel": "stylesheet", "href": href(base, "/static/dashboard.css")}),
        ]
    )
    body = join(
        [
            tag(
                "header",
                None,
                tag("nav", None, tag("span", {"class": "brand"}, "hookshield inbox"), *links),
            ),
            tag(
                "main",
                None,
                tag("h1", None, title),
                None if notice is None else tag("p", {"class": "notice", "role": "status"}, notice),
                content,
            ),
        ]
    )
    return "<!DOCTYPE html>\n" + tag(
        "html", {"lang": "en"}, tag("head", None, head), tag("body", None, body)
    )


def problem(message: str) -> Markup:
    """The content of an error page."""
    return tag("p", {"class": "problem", "role": "alert"}, message)


# -- the list ----------------------------------------------------------------------------


def deliveries(
    base: str,
    *,
    where: DeliveryFilter,
    given: Mapping[str, str],
    rows: Sequence[StoredDelivery],
    total: int,
    states: Mapping[str, int],
    older: str | None,
    paged: bool,
    paused: Mapping[str, float],
    token: str,
    back: str,
    now: float,
) -> Markup:
    """``/``: the filter's form, the paused senders, counts by state, the bulk actions, rows.

    ``paused`` are the paused senders and since when; ``back`` is this page (below
    the mount point), where Pause and Resume return.
    """
    params = _filter_params(given)
    tabs = [
        tag(
            "a",
            {
                "href": href(base, "/", {**params, "state": state}),
                "class": f"state {state}",
                "aria-current": "true" if where.state == state else None,
            },
            f"{state} {states.get(state, 0)}",
        )
        for state in STATES
    ]
    table = _table(
        ("Id", "Sender", "Events", "State", "Attempts", "Last error", "Age"),
        [
            (
                tag("a", {"href": href(base, "/delivery", {"id": row.id}), "class": "id"}, row.id),
                join(
                    [
                        row.sender,
                        tag("span", {"class": "badge paused"}, "paused")
                        if row.sender in paused
                        else None,
                    ]
                ),
                _cut(", ".join(row.event_types)) or NONE,
                _state(row.state),
                str(row.attempts),
                tag(
                    "span",
                    {"class": "error" if row.last_error else None},
                    _cut(row.last_error or NONE),
                ),
                tag("time", {"title": _when(row.received)}, age(now - row.received)),
            )
            for row in rows
        ],
        empty="No delivery matches.",
        css="deliveries",
    )
    pages = [
        tag("a", {"href": href(base, "/", params)}, "← Newest") if paged else None,
        tag("a", {"href": href(base, "/", {**params, "before": older})}, "Older →")
        if older
        else None,
    ]
    # The sender the list is filtered by can be paused from here; each paused one resumed.
    pause = None
    if where.sender is not None and where.sender not in paused:
        pause = tag(
            "div",
            {"class": "actions"},
            _post_form(
                base,
                "/sender/pause",
                token,
                {"sender": where.sender, "next": back},
                f"Pause {where.sender}",
            ),
            tag("span", {"class": "note"}, "No worker runs its deliveries until it is resumed."),
        )
    return join(
        [
            _filter_form(base, given),
            _paused(base, paused, token=token, back=back, now=now),
            pause,
            tag("p", {"class": "tabs"}, *tabs),
            tag(
                "p",
                {"class": "summary"},
                f"{total} matching",
                *_bulk_links(base, where, params, total),
            ),
            table,
            tag("p", {"class": "pages"}, *pages),
            _purge_form(base),
        ]
    )


def _paused(
    base: str, paused: Mapping[str, float], *, token: str, back: str, now: float
) -> Markup | None:
    """The paused senders, each with since when and its Resume button; nothing if none is."""
    if not paused:
        return None
    items = [
        tag(
            "li",
            None,
            tag("strong", None, sender),
            tag("span", {"title": _when(since)}, f" paused {age(now - since)} ago "),
            _post_form(
                base,
                "/sender/resume",
                token,
                {"sender": sender, "next": back},
                "Resume",
                css="compact",
            ),
        )
        for sender, since in paused.items()
    ]
    return tag(
        "div",
        {"class": "paused-senders", "role": "status"},
        tag("p", None, "Paused: no worker runs these senders' deliveries until they are resumed."),
        tag("ul", None, *items),
    )


def _filter_form(base: str, given: Mapping[str, str]) -> Markup:
    options = [tag("option", {"value": ""}, "any")] + [
        tag("option", {"value": state, "selected": given.get("state") == state}, state)
        for state in STATES
    ]
    fields = [
        tag("label", None, "State ", tag("select", {"name": "state"}, *options)),
        _input("Sender", "sender", given.get("sender", ""), "moco"),
        _input("Event type", "type", given.get("type", ""), "invoice.paid, invoice.*"),
        _input("Since", "since", given.get("since", ""), "2h, 2026-05-01"),
        _input("Until", "until", given.get("until", ""), "30m, 2026-05-02T12:00"),
        tag("button", {"type": "submit"}, "Filter"),
        tag("a", {"href": href(base, "/")}, "Clear"),
    ]
    return tag("form", {"class": "filters", "method": "get", "action": href(base, "/")}, *fields)


def _input(label: str, name: str, value: str, placeholder: str) -> Markup:
    field = tag("input", {"name": name, "value": value, "placeholder": placeholder, "size": "14"})
    return tag("label", None, label + " ", field)


def _bulk_links(
    base: str, where: DeliveryFilter, params: Mapping[str, str], total: int
) -> list[Markup]:
    if where.state not in ("dead", "done", "pending") or not total:
        return []
    return [
        tag("a", {"href": href(base, "/retry", params), "class": "button"}, f"Retry these {total}…")
    ]


def _purge_form(base: str) -> Markup:
    options = [tag("option", {"value": state}, state) for state in ("done", "dead")]
    return tag(
        "form",
        {"class": "purge", "method": "get", "action": href(base, "/purge")},
        tag("label", None, "Purge ", tag("select", {"name": "state"}, *options)),
        _input("older than", "older_than", "7d", "7d"),
        tag("button", {"type": "submit"}, "Purge…"),
    )


def _filter_params(given: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in given.items() if value}


# -- one delivery ------------------------------------------------------------------------


def delivery(
    base: str, row: StoredDelivery, history: Sequence[Attempt], *, token: str, now: float
) -> Markup:
    """``/delivery``: its facts, Retry and Purge, its attempts, headers and body."""
    actions: list[Markup] = []
    if row.state == "leased":
        actions.append(tag("p", {"class": "note"}, "A worker is running it now."))
    else:
        actions.append(_post_form(base, "/delivery/retry", token, {"id": row.id}, "Retry"))
    if row.state in ("done", "dead"):
        actions.append(
            _post_form(base, "/delivery/purge", token, {"id": row.id}, "Purge", css="danger")
        )
    due = NONE
    if row.state in ("pending", "leased"):
        due = "now" if row.next_attempt <= now else _when(row.next_attempt)
    facts = _facts(
        [
            ("Id", tag("code", None, row.id)),
            ("Sender", f"{row.sender} (handler {row.handler})"),
            ("State", _state(row.state)),
            ("Attempts", str(row.attempts)),
            ("Received", f"{_when(row.received)} ({age(now - row.received)} ago)"),
            (
                "Due"
                if row.state == "pending"
                else "Lease ends"
                if row.state == "leased"
                else "Next attempt",
                due,
            ),
            ("Events", ", ".join(row.event_types) or NONE),
            (
                "To run",
                "every event" if row.events is None else f"{len(row.events)} event(s) of the batch",
            ),
            ("Seal", "sealed" if row.seal else "none: a worker refuses it (hookshield inbox seal)"),
            ("Trace", _trace_id(row.traceparent)),
        ]
    )
    attempts = _table(
        ("When", "Attempt", "Outcome", "Error"),
        [
            (
                _when(a.at),
                str(a.attempt) if a.attempt else NONE,
                a.state,
                _cut(a.error or NONE, 500),
            )
            for a in history
        ],
        empty="No attempt yet.",
        css="attempts",
    )
    return join(
        [
            tag("div", {"class": "actions"}, *actions),
            facts,
            tag("h2", None, "Last error"),
            tag("pre", {"class": "error"}, text_block(row.last_error or NONE)),
            tag("h2", None, "Attempts"),
            attempts,
            tag("h2", None, "Headers"),
            _headers(row.headers),
            tag("h2", None, "Body"),
            *_body(row.body, len(row.body)),
        ]
    )


def confirm_retry(base: str, where: DeliveryFilter, count: int, *, token: str) -> Markup:
    """``/retry``: the count first; the button acts only when pressed."""
    if not count:
        return tag("p", None, f"No delivery matches {_describe(where)}: nothing to retry.")
    return join(
        [
            tag(
                "p",
                None,
                f"{_deliveries(count)} {'match' if count > 1 else 'matches'} {_describe(where)}.",
            ),
            tag(
                "p",
                {"class": "note"},
                "Retrying makes each pending and due now, with its attempts reset; a "
                "delivery a worker holds leased is left to it.",
            ),
            tag(
                "div",
                {"class": "actions"},
                _post_form(base, "/retry", token, _hidden_filter(where), f"Retry these {count}"),
                tag("a", {"href": href(base, "/", _hidden_filter(where))}, "Cancel"),
            ),
        ]
    )


def confirm_purge(base: str, where: DeliveryFilter, count: int, *, token: str) -> Markup:
    """``/purge``: the count of done or dead deliveries to delete, then the button."""
    if not count:
        return tag("p", None, f"No delivery matches {_describe(where)}: nothing to purge.")
    return join(
        [
            tag(
                "p",
                None,
                f"{_deliveries(count)} {'match' if count > 1 else 'matches'} {_describe(where)}.",
            ),
            tag("p", {"class": "note"}, "Purging deletes them from the inbox for good."),
            tag(
                "div",
                {"class": "actions"},
                _post_form(
                    base,
                    "/purge",
                    token,
                    _hidden_filter(where),
                    f"Delete these {count}",
                    css="danger",
                ),
                tag("a", {"href": href(base, "/")}, "Cancel"),
            ),
        ]
    )


def _deliveries(count: int) -> str:
    return f"{count} {'delivery' if count == 1 else 'deliveries'}"


def _describe(where: DeliveryFilter) -> str:
    parts = [f"state {where.state}"] if where.state else []
    if where.sender:
        parts.append(f"sender {where.sender}")
    if where.event_type:
        parts.append(f"event type {where.event_type}")
    if where.since is not None:
        parts.append(f"received since {_when(where.since)}")
    if where.until is not None:
        parts.append(f"received before {_when(where.until)}")
    return ", ".join(parts) or "no filter"


def _hidden_filter(where: DeliveryFilter) -> dict[str, str]:
    """The filter as form fields, times as Unix seconds (what was typed, made exact)."""
    fields = {
        "state": where.state or "",
        "sender": where.sender or "",
        "type": where.event_type or "",
        "since": "" if where.since is None else repr(where.since),
        "until": "" if where.until is None else repr(where.until),
    }
    return {name: value for name, value in fields.items() if value}


# -- the overview --------------------------------------------------------------------------


def overview(
    base: str,
    view: InboxOverview,
    window: str,
    *,
    paused: Mapping[str, float],
    token: str,
    back: str,
) -> Markup:
    """``/overview``: counts by state and by sender, paused senders, the oldest due, the chart.

    Each sender's row has its Pause or Resume button; ``back`` is this page.
    """
    cards = [
        tag(
            "a",
            {"href": href(base, "/", {"state": state}), "class": f"card {state}"},
            tag("span", {"class": "count"}, str(view.counts.get(state, 0))),
            tag("span", None, state),
        )
        for state in STATES
    ]
    if view.oldest_due is None:
        due = "No delivery is due: the workers keep up."
    else:
        due = f"The oldest due delivery has waited {age(view.now - view.oldest_due)} past its due time."
    windows = [
        tag(
            "a",
            {
                "href": href(base, "/overview", {"window": name}),
                "aria-current": "true" if name == window else None,
            },
            label,
        )
        for name, label in (("24h", "last 24 hours"), ("7d", "last 7 days"))
    ]
    # Every sender with deliveries, and every paused one (it may have none yet).
    every = {**{sender: {} for sender in paused}, **view.by_sender}
    senders = _table(
        ("Sender", *STATES, "Workers"),
        [
            (
                sender,
                *(
                    tag(
                        "a",
                        {"href": href(base, "/", {"sender": sender, "state": state})},
                        str(counts.get(state, 0)),
                    )
                    for state in STATES
                ),
                _pause_button(
                    base, sender, paused.get(sender), token=token, back=back, now=view.now
                ),
            )
            for sender, counts in sorted(every.items())
        ],
        empty="No delivery yet.",
        css="senders",
    )
    return join(
        [
            tag("div", {"class": "cards"}, *cards),
            tag("p", {"class": "due"}, due),
            _paused(base, paused, token=token, back=back, now=view.now),
            tag("h2", None, "Deliveries received, by state now"),
            tag("p", {"class": "tabs"}, *windows),
            chart(view),
            tag("h2", None, "By sender"),
            senders,
        ]
    )


def _pause_button(
    base: str, sender: str, since: float | None, *, token: str, back: str, now: float
) -> Markup:
    """A sender's Pause button, or, when it is paused, since when and its Resume button."""
    fields = {"sender": sender, "next": back}
    if since is None:
        return _post_form(base, "/sender/pause", token, fields, "Pause", css="compact")
    return join(
        [
            tag(
                "span",
                {"class": "badge paused", "title": _when(since)},
                f"paused {age(now - since)}",
            ),
            _post_form(base, "/sender/resume", token, fields, "Resume", css="compact"),
        ]
    )


# -- refused deliveries --------------------------------------------------------------------


def refusals(
    base: str,
    rows: Sequence[RefusedDelivery],
    *,
    older: str | None,
    now: float,
) -> Markup:
    """``/refused``: the kept refusals, newest first."""
    # Whether they are kept is the web app's setting, not this process's.
    note = (
        "The latest deliveries refused with a 4xx, kept for diagnosis with their "
        "credentials hidden and at most a bounded prefix of their body, when the web "
        "app opens its inbox with keep_refused=N: SQLiteInbox(path, keep_refused=100), "
        "PostgresInbox(dsn, keep_refused=100) or DjangoInbox(keep_refused=100)."
    )
    table = _table(
        ("Received", "Sender", "Status", "Refused for", "Reason", "Peer", "Body"),
        [
            (
                tag(
                    "a",
                    {
                        "href": href(base, "/refused/one", {"id": row.id}),
                        "title": _when(row.received),
                    },
                    f"{age(now - row.received)} ago",
                ),
                row.sender,
                str(row.status),
                row.error,
                tag("span", {"class": "error"}, _cut(row.reason)),
                row.peer or NONE,
                _kept_size(row),
            )
            for row in rows
        ],
        empty="No refused delivery is kept.",
        css="refusals",
    )
    more = (
        tag("a", {"href": href(base, "/refused", {"before": older})}, "Older →") if older else None
    )
    return join([tag("p", {"class": "note"}, note), table, tag("p", {"class": "pages"}, more)])


def refusal(
    base: str,
    refused: RefusedDelivery,
    *,
    can_recheck: bool,
    result: str | None,
    token: str,
    now: float,
) -> Markup:
    """``/refused/one``: a kept refusal, its re-check button, headers and body kept."""
    if can_recheck:
        recheck = _post_form(base, "/refused/recheck", token, {"id": refused.id}, "Re-check")
    else:
        recheck = tag(
            "p",
            {"class": "note"},
            f"To check it again, serve the dashboard with the {refused.handler} handler "
            "(handlers=, or hookshield inbox serve --handler).",
        )
    forget = _post_form(base, "/refused/forget", token, {"id": refused.id}, "Forget", css="danger")
    facts = _facts(
        [
            ("Sender", f"{refused.sender} (handler {refused.handler})"),
            ("Answer", f"{refused.status}, {refused.error}"),
            ("Reason", refused.reason),
            ("Peer", refused.peer or NONE),
            ("Received", f"{_when(refused.received)} ({age(now - refused.received)} ago)"),
            ("Body", _kept_size(refused)),
        ]
    )
    explained = tag(
        "p",
        {"class": "note"},
        "Re-check verifies it again with the handler's current credentials (after a rotated "
        "secret is fixed); if it verifies, it becomes a pending delivery.  Only a delivery "
        "whose whole body was kept, signed over its body, can verify.",
    )
    return join(
        [
            None
            if result is None
            else tag("p", {"class": "problem", "role": "alert"}, f"Re-check: {result}."),
            tag("div", {"class": "actions"}, recheck, forget),
            explained,
            facts,
            tag("h2", None, "Headers"),
            _headers(refused.headers),
            tag("h2", None, "Body"),
            *_body(refused.body, refused.body_size),
        ]
    )


def _kept_size(refused: RefusedDelivery) -> str:
    if refused.body_size is None:
        return "not read (refused before its body)"
    if refused.complete:
        return f"{refused.body_size} bytes, kept whole"
    return f"first {len(refused.body)} of {refused.body_size} bytes kept"


# -- signing in ----------------------------------------------------------------------------


def login(base: str, token: str, target: str) -> Markup:
    """``/login``: the password form."""
    field = tag(
        "input",
        {
            "type": "password",
            "name": "password",
            "autocomplete": "current-password",
            "required": True,
        },
    )
    return tag(
        "form",
        {"method": "post", "action": href(base, "/login"), "class": "login"},
        tag("input", {"type": "hidden", "name": "token", "value": token}),
        tag("input", {"type": "hidden", "name": "next", "value": target}),
        tag("label", None, "Password ", field),
        tag("button", {"type": "submit"}, "Sign in"),
    )


# -- pieces --------------------------------------------------------------------------------


def _post_form(
    base: str, path: str, token: str, fields: Mapping[str, str], button: str, *, css: str = ""
) -> Markup:
    """A form that POSTs ``fields`` and the session's token to ``path``."""
    hidden = [
        tag("input", {"type": "hidden", "name": name, "value": value})
        for name, value in {**fields, "token": token}.items()
    ]
    return tag(
        "form",
        {"method": "post", "action": href(base, path), "class": css or None},
        *hidden,
        tag("button", {"type": "submit"}, button),
    )


def _table(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, empty: str, css: str
) -> Markup:
    body = [tag("tr", None, *(tag("td", None, cell) for cell in row)) for row in rows]
    if not body:
        return tag("p", {"class": "empty"}, empty)
    head = tag("thead", None, tag("tr", None, *(tag("th", None, name) for name in header)))
    return tag("table", {"class": css}, head, tag("tbody", None, *body))


def _facts(pairs: Iterable[tuple[str, object]]) -> Markup:
    items = [
        part for name, value in pairs for part in (tag("dt", None, name), tag("dd", None, value))
    ]
    return tag("dl", {"class": "facts"}, *items)


def _headers(pairs: Iterable[tuple[str, str]]) -> Markup:
    rows = [(name, tag("code", None, _shown(name, value))) for name, value in pairs]
    return _table(("Name", "Value"), rows, empty="No header kept.", css="headers")


def _shown(name: str, value: str) -> str:
    # A signature is kept to verify again, but a page (and a screenshot of it) need
    # not show it: Headers decides what is a credential, as for its repr in logs.
    (redacted,) = Headers({name: ""}).redacted().values()
    return "<hidden>" if redacted else value


def _body(body: bytes, size: int | None) -> list[Markup]:
    """A note on the body and the body itself, as text; JSON pretty-printed."""
    if size is None:
        return [tag("p", {"class": "note"}, "Refused before its body was read: none kept.")]
    text = body[:SHOWN_BODY].decode("utf-8", "replace")
    how = "as text"
    if len(body) <= PRETTY_BODY:
        try:
            text = json.dumps(json.loads(body), indent=2, ensure_ascii=False)[:SHOWN_BODY]
            how = "JSON, pretty-printed"
        except (ValueError, RecursionError):
            pass
    cut = len(body) > SHOWN_BODY
    note = f"{len(body)} bytes, {how}" + (f"; the first {SHOWN_BODY} shown" if cut else "")
    return [tag("p", {"class": "note"}, note), tag("pre", {"class": "body"}, text_block(text))]


def _state(state: str) -> Markup:
    return tag("span", {"class": f"state {state}"}, state)


def _when(when: float) -> str:
    moment = datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
    return moment.isoformat(sep=" ", timespec="seconds").replace("+00:00", "Z")


def _cut(text: str, width: int = _CUT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
