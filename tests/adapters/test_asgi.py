"""hookshield.asgi, through Starlette's TestClient and by calling the ASGI app directly."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from hookshield import Event
from hookshield._durable.background import BackgroundPool
from hookshield._web.asgi_types import Message, Scope
from hookshield.asgi import WebhookApp, WebhookMiddleware

from ..doubles import BrokenStore
from .support import (
    CREDENTIALS,
    MOCO_SIGNATURE,
    SIGNING,
    SMALL_LIMIT,
    Recorder,
    body_eater,
    delivery,
    forged,
    recorder,
    tampered,
)


def starlette_client(app: WebhookApp) -> TestClient:
    return TestClient(Starlette(routes=[Route("/hooks", app)]))


@pytest.fixture
def rec(sender: str) -> Recorder:
    return recorder(sender)


@pytest.fixture
def client(rec: Recorder) -> Iterator[TestClient]:
    with starlette_client(WebhookApp(rec.handler)) as client:
        yield client


def test_a_valid_delivery_runs_the_handler(sender: str, rec: Recorder, client: TestClient) -> None:
    body, headers, marker = delivery(sender)
    response = client.post("/hooks", content=body, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"ok": True}
    assert rec.markers() == [marker]


def test_a_forged_delivery_is_refused(sender: str, rec: Recorder, client: TestClient) -> None:
    body, headers, _ = forged(sender)
    response = client.post("/hooks", content=body, headers=headers)
    assert response.status_code == 401
    assert set(response.json()) == {"error"}
    for secret in CREDENTIALS[sender].values():
        assert secret not in response.text
    assert rec.events == []


@pytest.mark.parametrize("sender", SIGNING)
def test_a_tampered_body_is_refused(sender: str, rec: Recorder, client: TestClient) -> None:
    body, headers, _ = tampered(sender)
    assert client.post("/hooks", content=body, headers=headers).status_code == 401
    assert rec.events == []


def test_a_body_over_the_limit_gets_413(sender: str) -> None:
    rec = recorder(sender, max_body_size=SMALL_LIMIT)
    client = starlette_client(WebhookApp(rec.handler))
    body, headers, _ = delivery(sender, pad=2 * SMALL_LIMIT)
    response = client.post("/hooks", content=body, headers=headers)
    assert response.status_code == 413
    assert "max_body_size" in response.json()["error"]
    assert rec.events == []


def test_another_method_gets_405(sender: str, rec: Recorder, client: TestClient) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = client.request(method, "/hooks")
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert "POST" in response.json()["error"]
    assert rec.events == []


def test_a_duplicate_is_acknowledged_and_not_run_again(
    sender: str, rec: Recorder, client: TestClient
) -> None:
    body, headers, marker = delivery(sender)
    assert client.post("/hooks", content=body, headers=headers).status_code == 200
    assert client.post("/hooks", content=body, headers=headers).status_code == 200
    assert rec.markers() == [marker]


def test_a_failing_handler_gets_500_and_its_retry_is_processed() -> None:
    rec = recorder("mindpeeker")
    calls: list[str] = []

    @rec.handler.on("*")
    async def flaky(event: Event) -> None:
        calls.append(event.type)
        if len(calls) == 1:
            raise RuntimeError("database is down")

    client = starlette_client(WebhookApp(rec.handler))
    body, headers, _ = delivery("mindpeeker")
    failed = client.post("/hooks", content=body, headers=headers)
    assert failed.status_code == 500
    assert "database" not in failed.text
    assert client.post("/hooks", content=body, headers=headers).status_code == 200
    assert len(calls) == 2


def test_async_handlers_run_on_the_loop_and_plain_ones_in_a_thread() -> None:
    rec = recorder("moco")
    threads: dict[str, int] = {}

    @rec.handler.on("*")
    async def on_loop(event: Event) -> None:
        threads["async"] = threading.get_ident()
        threads["loop"] = id(asyncio.get_running_loop())

    @rec.handler.on("*")
    def in_thread(event: Event) -> None:
        threads["plain"] = threading.get_ident()

    client = starlette_client(WebhookApp(rec.handler))
    body, headers, _ = delivery("moco")
    assert client.post("/hooks", content=body, headers=headers).status_code == 200
    assert threads["async"] != threads["plain"]


def test_background_work_runs_and_duplicates_are_dropped(sender: str) -> None:
    rec = recorder(sender)
    client = starlette_client(WebhookApp(rec.handler, background=True))
    body, headers, marker = delivery(sender)
    assert client.post("/hooks", content=body, headers=headers).status_code == 200
    assert client.post("/hooks", content=body, headers=headers).status_code == 200
    forged_body, forged_headers, _ = forged(sender)
    assert client.post("/hooks", content=forged_body, headers=forged_headers).status_code == 401
    # The TestClient returns once the ASGI call is over, background work included.
    assert rec.markers() == [marker]


# -- the ASGI protocol, driven by hand ------------------------------------------------


def http_scope(headers: dict[str, str], *, method: str = "POST", path: str = "/hooks") -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


class Conversation:
    """The server's side of one ASGI call: what the app receives and what it sends."""

    def __init__(self, body: bytes | None = None, *, chunk: int = 100, endless: bool = False):
        self.body = body
        self.chunk = chunk
        self.endless = endless
        self.received = 0
        self.log: list[str] = []
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.endless:
            self.received += self.chunk
            return {"type": "http.request", "body": b"x" * self.chunk, "more_body": True}
        if self.body is None:
            return {"type": "http.disconnect"}
        piece, self.body = self.body[: self.chunk], self.body[self.chunk :]
        self.received += len(piece)
        more = bool(self.body)
        if not more:
            self.body = None
        return {"type": "http.request", "body": piece, "more_body": more}

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        self.log.append(message["type"])

    @property
    def status(self) -> int:
        status: int = self.sent[0]["status"]
        return status


def run(app: Any, scope: Scope, talk: Conversation) -> None:
    asyncio.run(app(scope, talk.receive, talk.send))


def test_the_body_is_read_in_pieces_as_it_arrives() -> None:
    rec = recorder("momentum")
    body, headers, marker = delivery("momentum", pad=3000)
    talk = Conversation(body, chunk=256)
    run(WebhookApp(rec.handler), http_scope(headers), talk)
    assert talk.status == 200
    assert rec.markers() == [marker]


def test_a_body_without_length_is_cut_off_at_the_limit() -> None:
    rec = recorder("moco", max_body_size=SMALL_LIMIT)
    talk = Conversation(endless=True, chunk=100)
    scope = http_scope({"content-type": "application/json", **MOCO_SIGNATURE})
    run(WebhookApp(rec.handler), scope, talk)
    assert talk.status == 413
    assert talk.received <= SMALL_LIMIT + talk.chunk
    assert rec.events == []


def test_a_content_length_over_the_limit_is_refused_before_reading() -> None:
    rec = recorder("moco", max_body_size=SMALL_LIMIT)
    talk = Conversation(endless=True)
    scope = http_scope({"content-length": str(SMALL_LIMIT + 1), **MOCO_SIGNATURE})
    run(WebhookApp(rec.handler), scope, talk)
    assert talk.status == 413
    assert talk.received == 0


@pytest.mark.parametrize("length", ["abc", "+5", "-1", "1_0", "\u00b2"])
def test_a_malformed_content_length_gets_400(length: str) -> None:
    rec = recorder("moco")
    body, headers, _ = delivery("moco")
    talk = Conversation(body)
    run(WebhookApp(rec.handler), http_scope({**headers, "content-length": length}), talk)
    assert talk.status == 400
    assert rec.events == []


def test_a_sender_that_hangs_up_gets_no_answer() -> None:
    rec = recorder("moco")
    talk = Conversation(None)
    run(WebhookApp(rec.handler), http_scope(MOCO_SIGNATURE), talk)
    assert talk.sent == []


@pytest.mark.parametrize("mount", ["app", "middleware"])
def test_a_body_read_before_hookshield_is_a_500_that_says_why(
    mount: str, caplog: pytest.LogCaptureFixture
) -> None:
    rec = recorder("mindpeeker")
    if mount == "app":
        inner: Any = Starlette(routes=[Route("/hooks", WebhookApp(rec.handler))])
    else:
        inner = WebhookMiddleware(PlainTextResponse("app"), endpoints={"/hooks": rec.handler})
    client = TestClient(body_eater(inner))
    body, headers, _ = delivery("mindpeeker")
    with caplog.at_level(logging.ERROR, logger="hookshield"):
        response = client.post("/hooks", content=body, headers=headers)
    # The app is at fault, not the sender: a 500 makes it retry, and no forgery is claimed.
    assert response.status_code == 500
    assert "signature" not in response.text
    assert rec.events == []
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "read before hookshield" in record.getMessage()
    assert "replay" in record.getMessage()  # how to avoid it


# ASGI asks servers for lower-case names but does not promise them: a repeat in
# another case is a repeat too.
@pytest.mark.parametrize("name", [b"x-moco-signature", b"X-Moco-Signature"])
def test_a_repeated_signature_header_is_refused(name: bytes) -> None:
    rec = recorder("moco")
    body, headers, _ = delivery("moco")
    scope = http_scope(headers)
    scope["headers"].append((name, headers["X-Moco-Signature"].encode()))
    talk = Conversation(body)
    run(WebhookApp(rec.handler), scope, talk)
    assert talk.status == 401
    assert rec.events == []


def test_headers_given_as_any_iterable_are_read() -> None:
    for shape in (tuple, iter):
        rec = recorder("moco")
        body, headers, _ = delivery("moco")
        scope = http_scope(headers)
        scope["headers"] = shape(scope["headers"])
        talk = Conversation(body)
        run(WebhookApp(rec.handler), scope, talk)
        assert talk.status == 200
        assert len(rec.events) == 1


def test_background_handlers_run_after_the_response_is_sent() -> None:
    rec = recorder("mindpeeker")
    talk = Conversation()

    @rec.handler.on("*")
    async def handled(event: Event) -> None:
        talk.log.append("handled")

    body, headers, _ = delivery("mindpeeker")
    talk.body = body
    run(WebhookApp(rec.handler, background=True), http_scope(headers), talk)
    assert talk.log == ["http.response.start", "http.response.body", "handled"]
    assert talk.status == 200


def test_background_work_is_done_even_if_the_answer_cannot_be_sent() -> None:
    rec = recorder("mindpeeker")
    body, headers, marker = delivery("mindpeeker")
    talk = Conversation(body)

    async def gone(message: Message) -> None:
        raise OSError("the sender hung up")

    with pytest.raises(OSError, match="hung up"):
        asyncio.run(
            WebhookApp(rec.handler, background=True)(http_scope(headers), talk.receive, gone)
        )
    # The delivery is claimed, so the retry will be a duplicate: it must be handled now.
    assert rec.markers() == [marker]


def test_the_app_completes_the_lifespan_and_refuses_websockets() -> None:
    rec = recorder("moco")
    with TestClient(WebhookApp(rec.handler)) as client:
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/"):
            pass
        assert refused.value.code == 1008


def test_the_app_refuses_an_unknown_scope() -> None:
    talk = Conversation()
    with pytest.raises(ValueError, match="'telepathy'"):
        run(WebhookApp(recorder("moco").handler), {"type": "telepathy"}, talk)


def test_the_app_takes_only_a_handler() -> None:
    with pytest.raises(TypeError, match="WebhookHandler"):
        WebhookApp("moco")  # type: ignore[arg-type]
    assert "moco" in repr(WebhookApp(recorder("moco").handler))


# -- WebhookMiddleware ----------------------------------------------------------------


def inner_app(started: list[str]) -> Starlette:
    async def other(request: Request) -> PlainTextResponse:
        return PlainTextResponse("other " + request.method)

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started.append("up")
        yield
        started.append("down")

    return Starlette(
        routes=[Route("/other", other, methods=["GET", "POST"]), WebSocketRoute("/ws", echo)],
        lifespan=lifespan,
    )


def test_the_middleware_serves_its_endpoints_and_passes_the_rest(sender: str) -> None:
    rec = recorder(sender)
    started: list[str] = []
    app = WebhookMiddleware(inner_app(started), endpoints={f"/hooks/{sender}/": rec.handler})
    with TestClient(app) as client:
        body, headers, marker = delivery(sender)
        assert client.post(f"/hooks/{sender}", content=body, headers=headers).status_code == 200
        assert client.post(f"/hooks/{sender}/", content=body, headers=headers).status_code == 200
        assert rec.markers() == [marker]
        forged_body, forged_headers, _ = forged(sender)
        response = client.post(f"/hooks/{sender}", content=forged_body, headers=forged_headers)
        assert response.status_code == 401
        assert client.get(f"/hooks/{sender}").status_code == 405
        # Other HTTP requests, WebSockets and the lifespan reach the app untouched.
        assert client.post("/other", content=b"x").text == "other POST"
        with client.websocket_connect("/ws") as websocket:
            websocket.send_text("ping")
            assert websocket.receive_text() == "ping"
        assert started == ["up"]
    assert started == ["up", "down"]


def test_the_middleware_works_in_the_background() -> None:
    rec = recorder("petal")
    app = Starlette(routes=[])
    app.add_middleware(WebhookMiddleware, endpoints={"/": rec.handler}, background=True)
    client = TestClient(app)
    body, headers, marker = delivery("petal")
    assert client.post("/", content=body, headers=headers).status_code == 200
    assert rec.markers() == [marker]


@pytest.mark.parametrize(
    ("endpoints", "error"),
    [({"hooks": "x"}, ValueError), ({"/hooks": "moco"}, TypeError)],
)
def test_the_middleware_refuses_wrong_endpoints(endpoints: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        WebhookMiddleware(Starlette(), endpoints=endpoints)


def test_a_background_async_route_that_raises_calls_the_error_hooks_after_the_answer() -> None:
    rec = recorder("mindpeeker")
    talk = Conversation()
    errors: list[str] = []

    @rec.handler.on("*")
    async def boom(event: Event) -> None:
        talk.log.append("route")
        raise RuntimeError("database is down")

    rec.handler.on_error(lambda exc, event: errors.append(str(exc)))
    body, headers, _ = delivery("mindpeeker")
    talk.body = body
    run(WebhookApp(rec.handler, background=True), http_scope(headers), talk)
    assert talk.status == 200  # answered before the route ran: it cannot make a retry
    assert talk.log == ["http.response.start", "http.response.body", "route"]
    assert errors == ["database is down"]
    # The failed attempt let its claim go: the sender's own retry would run it again.
    assert rec.handler.accept(body, headers).pending


@pytest.mark.parametrize("background", [False, True])
def test_409_and_503_carry_retry_after(background: bool) -> None:
    rec = recorder("moco")
    body, headers, _ = delivery("moco")
    running = rec.handler.accept(body, headers)
    client = starlette_client(WebhookApp(rec.handler, background=background))
    in_progress = client.post("/hooks", content=body, headers=headers)
    assert (in_progress.status_code, in_progress.headers["retry-after"]) == (409, "30")
    running.release()
    down = starlette_client(WebhookApp(recorder("moco", dedupe=BrokenStore()).handler))
    unavailable = down.post("/hooks", content=body, headers=headers)
    assert (unavailable.status_code, unavailable.headers["retry-after"]) == (503, "30")
    assert rec.events == []


def test_background_takes_true_false_or_an_inbox_and_says_so_at_once() -> None:
    rec = recorder("moco")
    with pytest.raises(TypeError, match="True, False or an inbox"):
        WebhookApp(rec.handler, background=BackgroundPool())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not str"):
        WebhookMiddleware(
            WebhookApp(rec.handler),
            endpoints={"/x": rec.handler},
            background="yes",  # type: ignore[arg-type]
        )
