"""Routes: exact names, prefix wildcards and ``"*"``, error hooks, and typo warnings.

Registration is where a mistake is found (a bad pattern raises, a likely typo warns);
``routes_for`` is what dispatching asks, and it always reflects every registration.
"""

from __future__ import annotations

import warnings

import pytest

from hookshield import Event
from hookshield._handling.routing import Router
from hookshield.providers import get_provider
from hookshield.testing import sample_delivery

from .conftest import CREDENTIALS, make_handler


def router(provider: str) -> Router:
    """A handler's router, on its own: what the dispatch loop asks."""
    sender = get_provider(provider)
    return Router(sender.title, sender.event_types)


def test_exact_names_wildcards_and_star_run_in_registration_order() -> None:
    handler = make_handler("mindpeeker")
    calls: list[str] = []

    @handler.on("session.completed", "analysis.completed")
    def completed(event: Event) -> None:
        calls.append("completed:" + event.type)

    @handler.on("session.*")
    def sessions(event: Event) -> None:
        calls.append("session.*:" + event.type)

    @handler.on("*")
    def everything(event: Event) -> None:
        calls.append("*:" + event.type)

    for kind in ("session.completed", "analysis.completed", "dowsing.query_created"):
        body, headers = sample_delivery("mindpeeker", kind, **CREDENTIALS["mindpeeker"])
        assert handler.handle(body, headers).status == 200
    assert calls == [
        "completed:session.completed",
        "session.*:session.completed",
        "*:session.completed",
        "completed:analysis.completed",
        "*:analysis.completed",
        "*:dowsing.query_created",
    ]


def test_on_returns_the_function_it_registers() -> None:
    handler = make_handler("moco")

    def route(event: Event) -> None: ...

    assert handler.on("activity.create")(route) is route

    def hook(error: Exception, event: Event) -> None: ...

    assert handler.on_error(hook) is hook


def test_routes_for_reflects_later_registrations() -> None:
    handler = router("moco")
    assert handler.routes_for("activity.create") == ()

    def first(event: Event) -> None: ...

    def second(event: Event) -> None: ...

    handler.on("activity.*")(first)
    assert handler.routes_for("activity.create") == (first,)
    handler.on("activity.create")(second)
    assert handler.routes_for("activity.create") == (first, second)
    # A prefix wildcard matches at a dot, not any name that starts alike.
    assert handler.routes_for("activityxcreate") == ()
    assert handler.routes_for("activity") == ()


def test_many_distinct_event_types_keep_routing_right() -> None:
    handler = router("mindpeeker")

    def sessions(event: Event) -> None: ...

    handler.on("session.*")(sessions)
    for number in range(5000):
        assert handler.routes_for(f"other.{number}") == ()
    assert handler.routes_for("session.x") == (sessions,)


def test_a_very_long_event_type_is_matched_like_any_other() -> None:
    handler = router("mindpeeker")

    def sessions(event: Event) -> None: ...

    handler.on("session.*")(sessions)
    assert handler.routes_for("session." + "x" * 1000) == (sessions,)
    assert handler.routes_for("other." + "x" * 1000) == ()


@pytest.mark.parametrize("pattern", ["session*", "*.completed", "a.*.*", "**"])
def test_a_wildcard_is_star_or_a_prefix(pattern: str) -> None:
    with pytest.raises(ValueError, match="wildcard"):
        make_handler("mindpeeker").on(pattern)


@pytest.mark.parametrize("pattern", ["", 42, None])
def test_an_event_type_is_a_non_empty_string(pattern: object) -> None:
    with pytest.raises(TypeError, match="non-empty string"):
        make_handler("mindpeeker").on(pattern)  # type: ignore[arg-type]


def test_on_needs_a_name_and_a_function() -> None:
    handler = make_handler("mindpeeker")
    with pytest.raises(TypeError, match="at least one event type"):
        handler.on()
    with pytest.raises(TypeError, match="decorates a function"):
        handler.on("session.created")(42)  # type: ignore[type-var]
    with pytest.raises(TypeError, match="decorates a function"):
        handler.on_error(42)  # type: ignore[type-var]
    assert (
        handler.handle(
            *sample_delivery("mindpeeker", "session.created", **CREDENTIALS["mindpeeker"])
        ).dispatched
        == 0
    )


def test_a_likely_typo_warns_and_names_the_documented_type() -> None:
    handler = make_handler("mindpeeker")
    with pytest.warns(UserWarning, match="did you mean 'session.completed'"):
        handler.on("session.complete")


def test_the_typo_warning_points_at_the_callers_line() -> None:
    handler = make_handler("mindpeeker")
    with pytest.warns(UserWarning, match="did you mean") as caught:
        handler.on("session.complete")
    assert caught[0].filename == __file__


@pytest.mark.parametrize("name", ["brand.new_event", "session.completed", "session.*", "*"])
def test_a_documented_or_unrelated_type_registers_without_a_warning(name: str) -> None:
    handler = router("mindpeeker")

    def route(event: Event) -> None: ...

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        handler.on(name)(route)
    assert caught == []
    kind = name.replace("*", "x") if name != "*" else "anything"
    assert handler.routes_for(kind) == (route,)
