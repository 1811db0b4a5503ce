"""The Celery app of the tracing test: ``celery_app``'s, with spans written to a file.

``celery -A tests.integration.celery_traced worker`` runs the same task as
``celery_app``, with a :class:`~hookshield.opentelemetry.Tracing` observer whose
spans the SDK's console exporter writes, one JSON object a line, to the file named
by ``HOOKSHIELD_TEST_SPANS``: the test reads the worker's span there.
"""

from __future__ import annotations

import os

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

import hookshield
from hookshield.opentelemetry import Tracing

from .celery_app import app, inbox

__all__ = ["app", "inbox"]


def _one_line(span: ReadableSpan) -> str:
    text: str = span.to_json(indent=None)
    return text + "\n"


_spans = open(os.environ["HOOKSHIELD_TEST_SPANS"], "a", encoding="utf-8")  # noqa: SIM115 - the worker's lifetime
provider = TracerProvider()
provider.add_span_processor(
    SimpleSpanProcessor(ConsoleSpanExporter(out=_spans, formatter=_one_line))
)
hookshield.add_observer(Tracing(tracer_provider=provider))
