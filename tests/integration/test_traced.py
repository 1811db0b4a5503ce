"""One trace, or a link, from the HTTP request to the route a real Celery worker ran later.

The web side runs here, in a Flask app behind OpenTelemetry's WSGI middleware, with
its spans in an InMemorySpanExporter; the worker is a real ``celery worker`` process
on a real Redis broker, whose spans its app writes to a file (``celery_traced.py``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celery
import flask
import pytest
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from hookshield import add_observer, remove_observer
from hookshield.celery import CeleryInbox
from hookshield.flask import webhook_view
from hookshield.opentelemetry import Tracing

from .apps import hooks
from .test_durable import Processes, environment, processes, signed, wait_for

__all__ = ["processes"]  # the fixture, used by name


@pytest.fixture
def tracing() -> Iterator[tuple[Tracing, TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observer = Tracing(tracer_provider=provider)
    add_observer(observer)
    yield observer, provider, exporter
    remove_observer(observer)
    provider.shutdown()


def worker_spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_celery_workers_span_links_to_the_requests(
    tmp_path: Path,
    processes: Processes,
    redis_url: str,
    tracing: tuple[Tracing, TracerProvider, InMemorySpanExporter],
) -> None:
    _, provider, exporter = tracing
    broker = redis_url.rsplit("/", 1)[0] + "/14"  # a database of its own on the server
    spans_file = tmp_path / "worker-spans.jsonl"
    env = environment(
        tmp_path, HOOKSHIELD_TEST_BROKER=broker, HOOKSHIELD_TEST_SPANS=str(spans_file)
    )
    # The web side's own Celery app, sending the task the worker's app runs (the same
    # name and key): its connections are its own, whatever other tests did with theirs.
    sending = celery.Celery("hookshield_traced_web", broker=broker, set_as_current=False)
    with sending:
        inbox = CeleryInbox(sending, hooks, key="durable-tests-inbox-key")
        web = flask.Flask(__name__)
        web.add_url_rule("/hooks", view_func=webhook_view(hooks, background=inbox))
        web.wsgi_app = OpenTelemetryMiddleware(web.wsgi_app, tracer_provider=provider)  # type: ignore[method-assign]
        body, headers = signed("evt-traced")
        assert web.test_client().post("/hooks", data=body, headers=headers).status_code == 200
    spans = exporter.get_finished_spans()
    (server,) = [span for span in spans if span.kind is SpanKind.SERVER]
    (consumer,) = [span for span in spans if span.name == "process mindpeeker"]
    assert consumer.parent is not None and consumer.parent.span_id == server.context.span_id

    argv = [sys.executable, "-m", "celery", "-A", "tests.integration.celery_traced", "worker"]
    argv += ["-P", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    argv += ["-l", "info", "-n", "traced@%h"]
    processes.start(argv, env, "celery-traced")
    wait_for(lambda: bool(worker_spans(spans_file)), 40, "the worker's span")
    (worker,) = worker_spans(spans_file)
    assert worker["name"] == "process mindpeeker"
    assert worker["kind"] == "SpanKind.CONSUMER"
    assert worker["parent_id"] is None
    assert worker["attributes"]["hookshield.worker.result"] == "done"
    assert worker["attributes"]["messaging.destination.name"] == "mindpeeker"
    (link,) = worker["links"]
    assert link["context"]["trace_id"] == f"0x{consumer.context.trace_id:032x}"
    assert link["context"]["span_id"] == f"0x{consumer.context.span_id:016x}"
