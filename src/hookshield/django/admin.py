"""The admin's page of stored deliveries: find them, read them, run them again, purge them.

Theory of operation: deliveries are listed newest first, filtered by state, sender
and event type and searched by id (or its start); a delivery's page shows it read-only,
its latest attempts (each with its time, outcome and error), its credential headers
hidden (as ``hookshield inbox show`` hides them), its body as text.  Nothing here edits a row: a changed row would no longer match its seal.
The two actions go through :class:`~hookshield.django.DjangoInbox`, as ``hookshield
inbox retry`` and ``purge`` do: *retry* makes the selected deliveries due now with
their attempts reset (a leased one is left to its worker), *purge* deletes the
selected ones that are done or dead-lettered (never one still waiting to run).

Every value a sender wrote is shown through ``printable``: a control character or a
lone surrogate (a header or an event type decoded from odd bytes) is escaped, never
left for the page's encoding to fail on.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join

from .._core.headers import Headers
from .._core.text import printable
from .._durable.browse import attempts_of
from ._inbox import requeue
from .models import Delivery

__all__ = ["DeliveryAdmin"]

#: How much of a body a delivery's page shows.
_BODY_SHOWN = 20_000
#: Rows the event type filter reads to offer its choices (newest first).
_TYPES_SAMPLED = 1000


class EventTypeFilter(admin.SimpleListFilter):
    """Deliveries that carry one event type (among those of the newest deliveries)."""

    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        seen: set[str] = set()
        rows = model_admin.get_queryset(request).values_list("event_types", flat=True)
        for text in rows[:_TYPES_SAMPLED]:
            seen.update(str(kind) for kind in json.loads(text))
        # A type holding a lone surrogate cannot be a link's query: it is not offered.
        return [(kind, printable(kind)) for kind in sorted(seen) if _encodable(kind)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        kind = self.value()
        if not kind:
            return queryset
        # The column holds a JSON list: the type's JSON string is in it, quotes and all.
        found: QuerySet[Any] = queryset.filter(event_types__contains=json.dumps(kind))
        return found


def _when(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(
        timespec="seconds"
    )


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Stored webhook deliveries: read-only, with *retry* and *purge* actions."""

    list_display = ("id", "sender", "types", "state", "attempts", "received_at", "error")
    list_filter = ("state", "sender", EventTypeFilter)
    search_fields = ("^id",)
    search_help_text = "a delivery id, or its start"
    actions = ("retry", "purge")
    list_per_page = 50
    fields = (
        "id",
        "sender",
        "handler",
        "state",
        "attempts",
        "received_at",
        "due",
        "full_error",
        "attempt_history",
        "types",
        "events_to_run",
        "shown_headers",
        "shown_body",
        "sealed",
        "traceparent",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # deliveries come from senders only

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The list's actions need it; a delivery's own page is read-only.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.state in ("pending", "leased"):
            return False  # still to run: never deleted from its page
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        found = super().get_actions(request)
        found.pop("delete_selected", None)  # purge deletes only what has run
        return found

    @admin.display(description="event types")
    def types(self, obj: Delivery) -> str:
        return printable(", ".join(obj.types)) or "-"

    @admin.display(description="last error")
    def error(self, obj: Delivery) -> str:
        text = printable(obj.last_error or "-")
        return text if len(text) <= 80 else text[:79] + "…"

    @admin.display(description="last error")
    def full_error(self, obj: Delivery) -> str:
        return printable(obj.last_error or "-")

    @admin.display(description="due / lease ends")
    def due(self, obj: Delivery) -> str:
        return _when(obj.next_attempt) if obj.state in ("pending", "leased") else "-"

    @admin.display(description="attempts")
    def attempt_history(self, obj: Delivery) -> str:
        rows = [
            (
                _when(attempt.at),
                attempt.attempt or "-",
                attempt.state,
                printable(attempt.error or "-"),
            )
            for attempt in attempts_of(obj.attempt_log)
        ]
        if not rows:
            return "none yet"
        return format_html_join("\n", "<div><code>{}</code> attempt {}: {} ({})</div>", rows)

    @admin.display(description="events to run")
    def events_to_run(self, obj: Delivery) -> str:
        if obj.events is None:
            return "all"
        return f"{len(json.loads(obj.events))} event(s) of the batch"

    @admin.display(description="headers")
    def shown_headers(self, obj: Delivery) -> str:
        pairs = [(str(n), str(v)) for n, v in json.loads(obj.headers)]
        return format_html_join(
            "\n",
            "<div><code>{}: {}</code></div>",
            ((printable(n), _shown(n, v)) for n, v in pairs),
        )

    @admin.display(description="body")
    def shown_body(self, obj: Delivery) -> str:
        body = bytes(obj.body)
        text = body[:_BODY_SHOWN].decode("utf-8", "replace")
        more = f"\n… ({len(body) - _BODY_SHOWN} more bytes)" if len(body) > _BODY_SHOWN else ""
        return format_html_join("", "<pre>{}{}</pre>", [(text, more)])

    @admin.display(description="seal")
    def sealed(self, obj: Delivery) -> str:
        return "sealed" if obj.seal else "none: a worker refuses it (hookshield inbox seal)"

    @admin.action(description="Retry the selected deliveries now", permissions=["change"])
    def retry(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        count = requeue(queryset.db, ids)
        self.message_user(
            request,
            f"{count} of {len(ids)} deliveries are due now (one a worker holds is left to it).",
            messages.SUCCESS if count == len(ids) else messages.WARNING,
        )

    @admin.action(
        description="Purge the selected deliveries that are done or dead", permissions=["delete"]
    )
    def purge(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        ids = list(queryset.filter(state__in=("done", "dead")).values_list("id", flat=True))
        deleted, _ = queryset.filter(pk__in=ids, state__in=("done", "dead")).delete()
        total = queryset.count() + deleted
        self.message_user(
            request,
            f"Deleted {deleted} of {total} selected deliveries (those still to run are kept).",
            messages.SUCCESS if deleted == total else messages.WARNING,
        )


def _shown(name: str, value: str) -> str:
    """``value``, unless ``name`` is a credential's header (a token, a signature, a cookie)."""
    # Headers decides what is a credential, as for its repr in logs: asked about an
    # empty value, it answers a non-empty one only for a credential.
    (redacted,) = Headers(((name, ""),)).redacted().values()
    return "<hidden>" if redacted else printable(value)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
