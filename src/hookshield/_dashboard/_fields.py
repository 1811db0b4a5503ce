"""The filter a page's query or form names, read as a person typed it.

Theory of operation: the list, the bulk actions and their confirmations all take the
same fields, ``state sender type since until`` (and ``older_than`` for a purge), as a
bookmark or a form has them: text.  This module reads them into a
:class:`~hookshield.DeliveryFilter` (times with :func:`~hookshield._durable.browse.moment`),
and writes a filter back as fields, its times made exact (Unix seconds), so that a
confirmation acts on what was counted.  A field that cannot be read is
:class:`~._http.Refused` with 400 and says what to give.  Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping

from .._durable.browse import DeliveryFilter, moment
from .._durable.inbox import STATES
from ._http import Refused

__all__ = ["bulk_filter", "filter_of", "given", "params", "purge_filter", "required"]


def required(fields: Mapping[str, str], name: str) -> str:
    """The field ``name``, which must be given (400 otherwise)."""
    value = fields.get(name, "")
    if not value:
        raise Refused(400, f"the request names no {name}")
    return value


def given(fields: Mapping[str, str]) -> dict[str, str]:
    """The filter's fields as typed, to show them again in its form."""
    return {name: fields.get(name, "") for name in ("state", "sender", "type", "since", "until")}


def filter_of(fields: Mapping[str, str]) -> DeliveryFilter:
    """The filter the query (or form) names: ``state sender type since until``."""
    now = time.time()
    state = fields.get("state") or None
    if state is not None and state not in STATES:
        raise Refused(400, f"state must be one of {', '.join(STATES)}")
    times: dict[str, float | None] = {}
    for name in ("since", "until"):
        text = fields.get(name, "").strip()
        try:
            times[name] = moment(text, now=now) if text else None
        except ValueError as exc:
            raise Refused(400, f"{name}: {exc}") from None
    try:
        return DeliveryFilter(
            state=state,
            sender=fields.get("sender") or None,
            event_type=fields.get("type") or None,
            since=times["since"],
            until=times["until"],
        )
    except (TypeError, ValueError) as exc:
        raise Refused(400, str(exc)) from None


def bulk_filter(fields: Mapping[str, str], states: tuple[str, ...], what: str) -> DeliveryFilter:
    """The filter, which for a bulk action must name one of ``states`` (400 otherwise)."""
    where = filter_of(fields)
    if where.state not in states:
        raise Refused(
            400, f"to {what} deliveries in bulk, filter them by state first ({', '.join(states)})"
        )
    return where


def purge_filter(fields: Mapping[str, str]) -> DeliveryFilter:
    """The done or dead deliveries older than ``older_than`` (an age), and the rest of the filter."""
    where = bulk_filter(fields, ("done", "dead"), "purge")
    age = fields.get("older_than", "").strip()
    if not age:
        return where
    try:
        limit = moment(age, now=time.time())
    except ValueError as exc:
        raise Refused(400, f"older than: {exc}") from None
    until = limit if where.until is None else min(where.until, limit)
    if not math.isfinite(until):
        raise Refused(400, "older than: not a time")
    return dataclasses.replace(where, until=until)


def params(where: DeliveryFilter) -> dict[str, object]:
    """The query parameters of a filter, times as Unix seconds."""
    return {
        "state": where.state,
        "sender": where.sender,
        "type": where.event_type,
        "since": None if where.since is None else repr(where.since),
        "until": None if where.until is None else repr(where.until),
    }
