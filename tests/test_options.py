"""Every constructor option refuses a wrong type when the object is made, naming the option.

A wrong type found at the first request (``max_body_size="1MB"`` compared with a
body's length) is an outage; found at construction it is a line in a traceback at
startup.  Each option of ``WebhookHandler``, of the de-duplication stores and of the
inboxes is given values of every other type here, and each must be a ``TypeError``
whose message names the option.  ``True`` is an ``int`` to Python, never a number of
bytes or seconds.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import celery
import pytest
import redis
import redis.asyncio
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hookshield import MemoryDedupeStore, SQLiteDedupeStore, SQLiteInbox, WebhookHandler
from hookshield.celery import CeleryInbox
from hookshield.django import CacheDedupeStore
from hookshield.mindpeeker import WebhookHandler as MindPeekerSDK
from hookshield.redis import AsyncRedisDedupeStore, RedisDedupeStore

#: Values of many types, each option's own type filtered out per case below.
ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.tuples(st.integers(), st.text(max_size=2)),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.just(object()),
)

# Nothing is created by a refused constructor, nor by a good one before first use.
#: A key to seal Celery messages with: refused types are judged before a missing key.
KEY = "k" * 32
FILE = Path(tempfile.gettempdir()) / "hookshield-options-never-created.db"
APP = celery.Celery("hookshield_options", broker="memory://")


def is_bool(value: object) -> bool:
    return isinstance(value, bool)


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_secret(value: object) -> bool:
    """str, bytes, or a sequence of them (an empty one is a wrong value, not type)."""
    if isinstance(value, (str, bytes)):
        return True
    return isinstance(value, Sequence) and all(isinstance(v, (str, bytes)) for v in value)


def is_basic_auth(value: object) -> bool:
    def pair(item: object) -> bool:
        return isinstance(item, tuple) and len(item) == 2 and all(isinstance(v, str) for v in item)

    return pair(value) or (isinstance(value, (list, tuple)) and all(pair(item) for item in value))


def is_addresses(value: object) -> bool:
    kinds = (str, ipaddress.IPv4Address, ipaddress.IPv6Address)
    if isinstance(value, kinds):
        return True
    return (
        isinstance(value, Iterable)
        and not isinstance(value, (bytes, bytearray))
        and all(isinstance(v, kinds) for v in value)
    )


def optional(right: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: value is None or right(value)


@dataclass(frozen=True)
class Option:
    """One option of one constructor: how to build with it, and which values are its type."""

    owner: str
    name: str
    build: Callable[[Any], object]
    right: Callable[[object], bool]

    @property
    def id(self) -> str:
        return f"{self.owner}.{self.name}"


def handler(
    name: str, right: Callable[[object], bool], provider: str = "mindpeeker", **base: Any
) -> Option:
    """An option of ``WebhookHandler(provider, **base)``; by default a MindPeeker secret."""
    options: dict[str, Any] = base or {"secret": "s"}

    def build(value: Any) -> object:
        return WebhookHandler(provider, **options, **{name: value})

    return Option("WebhookHandler", name, build, right)


def handler_provider(value: Any) -> object:
    return WebhookHandler(value, secret="s")


OPTIONS = [
    Option("WebhookHandler", "provider", handler_provider, lambda v: isinstance(v, str)),
    handler("secret", optional(is_secret), allow_unsigned=False),
    handler("token", optional(is_secret), provider="petal", bearer_token="b"),
    handler("token_header", optional(lambda v: isinstance(v, str)), provider="petal", token="t"),
    handler("basic_auth", optional(is_basic_auth), provider="petal", token="t"),
    handler("bearer_token", optional(is_secret), provider="petal", token="t"),
    handler("allow_unsigned", lambda v: isinstance(v, bool)),
    handler("max_body_size", optional(is_int)),  # None: the sender's own default
    handler("dedupe", lambda v: v is None),
    handler("dedupe_ttl", optional(is_number)),
    handler("dedupe_lease", is_number),
    handler("sync_handlers_in_thread", lambda v: isinstance(v, bool)),
    handler("stream_batches", lambda v: isinstance(v, bool)),
    handler("allowed_ips", optional(is_addresses)),
    handler("trusted_proxies", optional(is_addresses)),
    Option(
        "hookshield.mindpeeker.WebhookHandler",
        "debug",
        lambda v: MindPeekerSDK("s", debug=v),
        lambda v: isinstance(v, bool),
    ),
    Option("MemoryDedupeStore", "max_entries", lambda v: MemoryDedupeStore(max_entries=v), is_int),
    Option("MemoryDedupeStore", "clock", lambda v: MemoryDedupeStore(clock=v), callable),
    Option(
        "SQLiteDedupeStore",
        "path",
        lambda v: SQLiteDedupeStore(v),
        lambda v: isinstance(v, (str, os.PathLike)),
    ),
    Option("SQLiteDedupeStore", "timeout", lambda v: SQLiteDedupeStore(FILE, timeout=v), is_number),
    Option("SQLiteDedupeStore", "clock", lambda v: SQLiteDedupeStore(FILE, clock=v), callable),
    Option("RedisDedupeStore", "client", lambda v: RedisDedupeStore(v), lambda v: False),
    Option(
        "RedisDedupeStore",
        "prefix",
        lambda v: RedisDedupeStore(redis.Redis(), prefix=v),
        lambda v: isinstance(v, str),
    ),
    Option("AsyncRedisDedupeStore", "client", lambda v: AsyncRedisDedupeStore(v), lambda v: False),
    Option(
        "AsyncRedisDedupeStore",
        "prefix",
        lambda v: AsyncRedisDedupeStore(redis.asyncio.Redis(), prefix=v),
        lambda v: isinstance(v, str),
    ),
    Option(
        "CacheDedupeStore", "alias", lambda v: CacheDedupeStore(v), lambda v: isinstance(v, str)
    ),
    Option(
        "CacheDedupeStore",
        "prefix",
        lambda v: CacheDedupeStore(prefix=v),
        lambda v: isinstance(v, str),
    ),
    Option(
        "SQLiteInbox", "path", lambda v: SQLiteInbox(v), lambda v: isinstance(v, (str, os.PathLike))
    ),
    Option("SQLiteInbox", "lease", lambda v: SQLiteInbox(FILE, lease=v), is_number),
    Option("SQLiteInbox", "timeout", lambda v: SQLiteInbox(FILE, timeout=v), is_number),
    Option("SQLiteInbox", "create", lambda v: SQLiteInbox(FILE, create=v), is_bool),
    Option("SQLiteInbox", "read_only", lambda v: SQLiteInbox(FILE, read_only=v), is_bool),
    Option(
        "CeleryInbox", "app", lambda v: CeleryInbox(v, make_handler(), key=KEY), lambda v: False
    ),
    Option("CeleryInbox", "handlers", lambda v: CeleryInbox(APP, v, key=KEY), lambda v: False),
    Option(
        "CeleryInbox",
        "name",
        lambda v: CeleryInbox(APP, make_handler(), key=KEY, name=v),
        lambda v: isinstance(v, str),
    ),
    Option(
        "CeleryInbox",
        "max_retries",
        lambda v: CeleryInbox(APP, make_handler(), key=KEY, max_retries=v),
        is_int,
    ),
    Option(
        "CeleryInbox",
        "retry_backoff_max",
        lambda v: CeleryInbox(APP, make_handler(), key=KEY, retry_backoff_max=v),
        is_int,
    ),
    Option(
        "CeleryInbox",
        "send_options",
        lambda v: CeleryInbox(APP, make_handler(), key=KEY, send_options=v),
        optional(lambda v: isinstance(v, Mapping)),
    ),
]


def make_handler() -> WebhookHandler:
    return WebhookHandler("mindpeeker", secret="s")


@pytest.mark.parametrize("option", [pytest.param(o, id=o.id) for o in OPTIONS])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(value=ANYTHING)
def test_a_wrong_type_is_refused_at_construction_naming_the_option(
    option: Option, value: object
) -> None:
    assume(not option.right(value))
    with pytest.raises(TypeError) as refused:
        option.build(value)
    assert option.name in str(refused.value), str(refused.value)


def test_the_reported_max_body_size_is_refused_in_words() -> None:
    with pytest.raises(TypeError) as refused:
        WebhookHandler("mindpeeker", secret="s", max_body_size="1MB")  # type: ignore[arg-type]
    assert str(refused.value) == "max_body_size must be an int (bytes), not str"
    # A float would have reached the body's reads, and failed there.
    with pytest.raises(TypeError, match="max_body_size must be an int"):
        WebhookHandler("mindpeeker", secret="s", max_body_size=1e6)  # type: ignore[arg-type]


def test_true_is_not_a_number_anywhere_one_is_meant() -> None:
    refusals: list[Callable[[], object]] = [
        lambda: WebhookHandler("mindpeeker", secret="s", max_body_size=True),
        lambda: WebhookHandler("mindpeeker", secret="s", dedupe_ttl=True),
        lambda: WebhookHandler("mindpeeker", secret="s", dedupe_lease=True),
        lambda: MemoryDedupeStore(max_entries=True),
        lambda: SQLiteDedupeStore(FILE, timeout=True),
        lambda: SQLiteInbox(FILE, lease=True),
        lambda: SQLiteInbox(FILE, timeout=False),  # 0 means "fail at once"; False does not
        lambda: CeleryInbox(APP, make_handler(), key=KEY, max_retries=True),
    ]
    for refused in refusals:
        with pytest.raises(TypeError, match=r"must be an int|must be a number"):
            refused()


def test_a_wrong_type_is_named_before_a_missing_credential() -> None:
    # Without a secret the handler is also misconfigured; the type is what to fix first.
    with pytest.raises(TypeError, match="dedupe_lease"):
        WebhookHandler("mindpeeker", dedupe_lease="300")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dedupe must have"):
        WebhookHandler("mindpeeker", dedupe="redis://localhost")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="secret must be a str"):
        WebhookHandler("petal", secret=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="trusted_proxies"):
        WebhookHandler("mindpeeker", secret="s", trusted_proxies=42)  # type: ignore[arg-type]


def test_the_right_types_are_still_taken() -> None:
    handler = WebhookHandler(
        "mindpeeker", secret="s", max_body_size=1, dedupe_ttl=60, dedupe_lease=1.5
    )
    assert (handler.max_body_size, handler.dedupe_ttl, handler.dedupe_lease) == (1, 60.0, 1.5)
    assert SQLiteInbox(FILE, timeout=0).timeout == 0.0
    assert MemoryDedupeStore(max_entries=1).max_entries == 1
    assert not FILE.exists()
