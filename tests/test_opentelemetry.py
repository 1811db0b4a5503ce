"""hookshield.opentelemetry: the spans of a delivery, read from the SDK's InMemorySpanExporter.

The framework's server span is made as an instrumented app makes it, by
OpenTelemetry's own WSGI and ASGI middleware around the app; the consumer span must
be its child, and the worker's span, a request and a real SQLite inbox later, must
link to it.  The tracer provider is passed explicitly: the global one is never set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import flask
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as AsgiMiddleware
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware as WsgiMiddleware
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from hookshield import Event, SQLiteInbox, WebhookHandler, add_observer, remove_observer, run_worker
from hookshield.asgi import WebhookApp
from hookshield.flask import webhook_view
from hookshield.opentelemetry import Tracing
from hookshield.testing import sample_batch, sample_body, sign

SECRET = "whsec_traces"


class Traced:
    """A tracer provider exporting to memory, and a Tracing observer added on it."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meters = MeterProvider(metric_readers=[self.reader])
        self.tracing = Tracing(tracer_provider=self.provider, meter_provider=self.meters)
        self.tracer = self.provider.get_tracer("tests")

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans() if span.name == name]


@pytest.fixture
def traced() -> Iterator[Traced]:
    made = Traced()
    add_observer(made.tracing)
    yield made
    remove_observer(made.tracing)
    made.provider.shutdown()
    made.meters.shutdown()


def signed(event_id: str) -> tuple[bytes, dict[str, str]]:
    payload = json.loads(sample_body("mindpeeker", "session.completed"))
    payload["id"] = event_id
    body = json.dumps(payload).encode()
    return body, sign("mindpeeker", body, secret=SECRET)


def traced_handler(traced: Traced) -> WebhookHandler:
    """A handler whose route makes a span of its own, as a route's code would."""
    handler = WebhookHandler("mindpeeker", secret=SECRET)

    @handler.on("*")
    def route(event: Event) -> None:
        with traced.tracer.start_as_current_span("route work"):
            if event.id == "evt_fails":
                raise RuntimeError("the database is down")

    return handler


def flask_client(
    traced: Traced, handler: WebhookHandler, **options: object
) -> flask.testing.FlaskClient:
    app = flask.Flask(__name__)
    app.add_url_rule("/hooks", view_func=webhook_view(handler, **options))  # type: ignore[arg-type]
    app.wsgi_app = WsgiMiddleware(app.wsgi_app, tracer_provider=traced.provider)  # type: ignore[method-assign]
    return app.test_client()


def parent_of(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def test_the_consumer_span_is_the_server_spans_child_and_the_routes_parent(
    traced: Traced,
) -> None:
    client = flask_client(traced, traced_handler(traced))
    assert (
        client.post("/hooks", data=signed("evt_1")[0], headers=signed("evt_1")[1]).status_code
        == 200
    )
    (server,) = [s for s in traced.spans() if s.kind is SpanKind.SERVER]
    (consumer,) = traced.named("process mindpeeker")
    (work,) = traced.named("route work")
    assert consumer.kind is SpanKind.CONSUMER
    assert parent_of(consumer) == server.context.span_id
    assert consumer.context.trace_id == server.context.trace_id
    assert parent_of(work) == consumer.context.span_id
    assert dict(consumer.attributes or {}) == {
        "messaging.system": "hookshield",
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
        "messaging.destination.name": "mindpeeker",
        "messaging.message.id": "event:evt_1",
        "hookshield.outcome": "accepted",
        "http.response.status_code": 200,
    }
    assert consumer.status.status_code is StatusCode.UNSET


def test_a_forged_delivery_and_a_failed_route_carry_their_error_type(traced: Traced) -> None:
    client = flask_client(traced, traced_handler(traced))
    body, _ = signed("evt_forged")
    forged = sign("mindpeeker", body, secret="not-the-secret")
    assert client.post("/hooks", data=body, headers=forged).status_code == 401
    assert (
        client.post(
            "/hooks", data=signed("evt_fails")[0], headers=signed("evt_fails")[1]
        ).status_code
        == 500
    )
    refused, failed = traced.named("process mindpeeker")
    assert refused.attributes is not None and failed.attributes is not None
    assert refused.attributes["error.type"] == "InvalidSignature"
    assert refused.attributes["hookshield.refusal.reason"] == "signature"
    assert refused.status.status_code is StatusCode.ERROR
    assert "messaging.message.id" not in refused.attributes  # never read: not verified
    assert failed.attributes["error.type"] == "RuntimeError"
    assert failed.attributes["hookshield.outcome"] == "failed"
    assert failed.status.status_code is StatusCode.ERROR
    # And the duration histogram of the conventions, with the error's type.
    data = traced.reader.get_metrics_data()
    assert data is not None
    points = [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "messaging.process.duration"
        for point in metric.data.data_points
    ]
    assert sorted(str(p.attributes.get("error.type")) for p in points) == [  # type: ignore[union-attr]
        "InvalidSignature",
        "RuntimeError",
    ]


def test_under_asgi_a_plain_route_in_a_thread_is_the_consumer_spans_child(
    traced: Traced,
) -> None:
    app = Starlette(routes=[Route("/hooks", WebhookApp(traced_handler(traced)))])
    client = TestClient(AsgiMiddleware(app, tracer_provider=traced.provider))
    body, headers = signed("evt_1")
    assert client.post("/hooks", content=body, headers=headers).status_code == 200
    servers = [s for s in traced.spans() if s.kind is SpanKind.SERVER]
    (consumer,) = traced.named("process mindpeeker")
    (work,) = traced.named("route work")
    assert parent_of(consumer) in {s.context.span_id for s in servers}
    assert parent_of(work) == consumer.context.span_id


def test_a_batchs_span_counts_its_messages(traced: Traced) -> None:
    handler = WebhookHandler("momentum", token="momentum-token")
    handler.on("*")(lambda event: None)
    app = flask.Flask(__name__)
    app.add_url_rule("/hooks", view_func=webhook_view(handler))
    body = sample_batch(["delivery", "bounce", "open"])
    headers = sign("momentum", body, token="momentum-token")
    assert app.test_client().post("/hooks", data=body, headers=headers).status_code == 200
    (consumer,) = traced.named("process momentum")
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.batch.message_count"] == 3
    assert parent_of(consumer) is None  # no server span: a root of its own


def test_the_worker_span_links_to_the_request_through_a_real_sqlite_inbox(
    traced: Traced, tmp_path: Path
) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    handler = traced_handler(traced)
    client = flask_client(traced, handler, background=inbox)
    body, headers = signed("evt_1")
    assert client.post("/hooks", data=body, headers=headers).status_code == 200
    (server,) = [s for s in traced.spans() if s.kind is SpanKind.SERVER]
    (consumer,) = traced.named("process mindpeeker")
    assert parent_of(consumer) == server.context.span_id
    (stored,) = inbox.list()
    assert stored.traceparent is not None
    assert stored.traceparent.startswith(
        f"00-{consumer.context.trace_id:032x}-{consumer.context.span_id:016x}-"
    )
    assert consumer.attributes is not None
    assert consumer.attributes["hookshield.inbox.delivery_id"] == stored.id
    assert traced.named("route work") == []  # nothing ran in the request

    run_worker(inbox, handler, burst=True, handle_signals=False)
    worker, _ = traced.named("process mindpeeker")[1], None
    (work,) = traced.named("route work")
    assert worker.kind is SpanKind.CONSUMER
    assert worker.parent is None  # a trace of its own, an hour later perhaps ...
    (link,) = worker.links  # ... linked to the request's
    assert (link.context.trace_id, link.context.span_id) == (
        consumer.context.trace_id,
        consumer.context.span_id,
    )
    assert parent_of(work) == worker.context.span_id
    assert worker.attributes is not None
    assert worker.attributes["messaging.message.id"] == stored.id
    assert worker.attributes["hookshield.worker.result"] == "done"
    assert worker.attributes["hookshield.attempt"] == 1


def test_a_failed_attempt_in_the_worker_carries_the_routes_error_type(
    traced: Traced, tmp_path: Path
) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    handler = traced_handler(traced)
    client = flask_client(traced, handler, background=inbox)
    body, headers = signed("evt_fails")
    assert client.post("/hooks", data=body, headers=headers).status_code == 200
    run_worker(inbox, handler, burst=True, handle_signals=False)
    worker = traced.named("process mindpeeker")[-1]
    assert worker.attributes is not None
    assert worker.attributes["hookshield.worker.result"] == "retried"
    assert worker.attributes["error.type"] == "RuntimeError"
    assert worker.status.status_code is StatusCode.ERROR


def test_without_an_sdk_the_spans_are_no_ops_and_nothing_is_stored(tmp_path: Path) -> None:
    tracing = Tracing(tracer_provider=trace.NoOpTracerProvider())
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    handler = WebhookHandler("mindpeeker", secret=SECRET)
    handler.on("*")(lambda event: None)
    app = flask.Flask(__name__)
    app.add_url_rule("/hooks", view_func=webhook_view(handler, background=inbox))
    add_observer(tracing)
    try:
        body, headers = signed("evt_1")
        assert app.test_client().post("/hooks", data=body, headers=headers).status_code == 200
        assert run_worker(inbox, handler, burst=True, handle_signals=False).done == 1
    finally:
        remove_observer(tracing)
    (stored,) = inbox.list()
    assert stored.traceparent is None  # an invalid (no-op) span context is not stored
    assert trace.get_current_span() is trace.INVALID_SPAN  # every span made current was undone
