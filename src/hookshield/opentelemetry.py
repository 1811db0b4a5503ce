"""OpenTelemetry traces of the deliveries: ``hookshield.add_observer(Tracing())``.

    import hookshield
    from hookshield.opentelemetry import Tracing

    hookshield.add_observer(Tracing())

Theory of operation: :class:`Tracing` is an observer (see ``hookshield.Observer``)
that follows OpenTelemetry's semantic conventions for messaging.  Each delivery an
adapter receives is a CONSUMER span named ``process {sender}``, a child of whatever
span is current when the request arrives (the framework's server span, when the app
is instrumented), and current itself while the delivery is handled, so that the
spans a route makes are its children.  Its attributes: ``messaging.system``
(``hookshield``), ``messaging.operation.name`` and ``.type`` (``process``),
``messaging.destination.name`` (the sender), ``messaging.message.id`` (the
delivery's id, hashed when long), ``messaging.batch.message_count`` for a batch,
and ``error.type`` (the error's type name) on a refusal or a failure.

A delivery stored in an inbox carries the W3C ``traceparent`` of its span (see
``Observer.trace_context``); the worker that runs it later, in this process or
another, starts a span of its own that *links* to it, so that one trace leads from
the HTTP request to the route that ran an hour later.  Each span's duration is also
recorded in the ``messaging.process.duration`` histogram of the meter provider.

Only the API package is needed at run time (``opentelemetry-api``): the
application installs and configures the SDK and its exporters.  No attribute
carries a secret, a header or a sender's unbounded text.  Install with
``python -m pip install -e '.[opentelemetry]'`` from a checkout.
"""

from __future__ import annotations

from contextvars import Token
from dataclasses import dataclass
from typing import Any, Final

from ._handling.claims import bounded
from ._handling.observe import (
    Answered,
    Finished,
    Leased,
    Observation,
    Observer,
    Received,
    Refused,
    Routed,
    Stored,
    Verified,
)
from ._version import __version__
from ._web.adapt import missing

try:
    from opentelemetry import context, metrics, trace
    from opentelemetry.context import Context
    from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as exc:
    raise missing(
        "opentelemetry-api", extra="opentelemetry", adapter="hookshield.opentelemetry"
    ) from exc

__all__ = ["Tracing"]

#: The buckets the messaging conventions advise for ``messaging.process.duration``.
DURATION_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
_SYSTEM: Final = "hookshield"


@dataclass(slots=True)
class _Held:
    """A delivery's span, and the token that made it current (to undo at its end)."""

    span: Span
    token: Token[Context]


class Tracing(Observer):
    """An observer that traces each delivery, in the web process and in the worker.

    ``tracer_provider`` and ``meter_provider`` default to the global ones
    (``opentelemetry.trace.set_tracer_provider``): without an SDK configured, the
    spans are the API's no-ops and cost little.
    """

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        self._tracer = trace.get_tracer("hookshield", __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter("hookshield", __version__, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "messaging.process.duration",
            unit="s",
            description="Duration of processing operation.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self._propagator = TraceContextTextMapPropagator()

    # -- a request -------------------------------------------------------------------

    def received(self, event: Received) -> None:
        """Start the delivery's span, a child of the current one (the server's)."""
        self._start(event.observation, event.sender, links=())

    def verified(self, event: Verified) -> None:
        """Name the delivery on its span."""
        held = self._held(event.observation)
        if held is not None:
            held.span.set_attribute("messaging.message.id", bounded(event.delivery.id))

    def refused(self, event: Refused) -> None:
        """Mark the span with the refusal's error type."""
        held = self._held(event.observation)
        if held is not None:
            kind = type(event.error).__name__ if event.error is not None else str(event.status)
            held.span.set_attribute("error.type", kind)
            held.span.set_attribute("hookshield.refusal.reason", event.reason)
            held.span.set_status(Status(StatusCode.ERROR, f"refused: {event.reason}"))

    def routed(self, event: Routed) -> None:
        """Mark the span when a route raised (its type only: its message is the app's)."""
        held = self._held(event.observation)
        if held is not None and event.error is not None:
            held.span.set_attribute("error.type", type(event.error).__name__)
            held.span.set_status(Status(StatusCode.ERROR, f"a route raised ({event.route})"))

    def stored(self, event: Stored) -> None:
        """Name the inbox's id of the stored delivery on the span."""
        held = self._held(event.observation)
        if held is not None:
            held.span.set_attribute("hookshield.inbox.delivery_id", event.stored.id)

    def answered(self, event: Answered) -> None:
        """End the span with what the answer was."""
        observation = event.observation
        held = observation.notes.pop(self, None)
        if held is None:
            return
        span = held.span
        span.set_attribute("hookshield.outcome", event.result)
        span.set_attribute("http.response.status_code", event.outcome.status)
        error_type = None
        if event.result == "failed":
            error = event.outcome.error
            error_type = type(error).__name__ if error is not None else str(event.outcome.status)
            span.set_attribute("error.type", error_type)
            span.set_status(Status(StatusCode.ERROR, "failed"))
        elif event.result == "refused":
            error = event.outcome.error
            error_type = type(error).__name__ if error is not None else str(event.outcome.status)
        self._end(observation, held, event.sender, event.seconds, error_type)

    def trace_context(self, observation: Observation) -> str | None:
        """The ``traceparent`` of the delivery's span (or of the current span)."""
        held = self._held(observation)
        span = held.span if held is not None else trace.get_current_span()
        if not span.get_span_context().is_valid:
            return None
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=trace.set_span_in_context(span))
        return carrier.get("traceparent")

    # -- a worker --------------------------------------------------------------------

    def leased(self, event: Leased) -> None:
        """Start the attempt's span, linked to the request's that stored it."""
        held = self._start(event.observation, event.sender, links=self._links(event))
        held.span.set_attribute("messaging.message.id", event.stored.id)
        held.span.set_attribute("hookshield.attempt", event.stored.attempts)

    def finished(self, event: Finished) -> None:
        """End the attempt's span with its result."""
        observation = event.observation
        held = observation.notes.pop(self, None)
        if held is None:
            return
        held.span.set_attribute("hookshield.worker.result", event.result)
        error_type = None
        if event.result in ("retried", "dead"):
            error_type = event.error_type or "_OTHER"
            held.span.set_attribute("error.type", error_type)
            held.span.set_status(Status(StatusCode.ERROR, event.result))
        self._end(observation, held, event.sender, event.seconds, error_type)

    # -- internals -------------------------------------------------------------------

    def _start(self, observation: Observation, sender: str, links: Any) -> _Held:
        attributes = {
            "messaging.system": _SYSTEM,
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": sender,
        }
        span = self._tracer.start_span(
            f"process {sender}", kind=SpanKind.CONSUMER, attributes=attributes, links=links
        )
        token = context.attach(trace.set_span_in_context(span))
        held = observation.notes[self] = _Held(span, token)
        return held

    def _end(
        self,
        observation: Observation,
        held: _Held,
        sender: str,
        seconds: float,
        error_type: str | None,
    ) -> None:
        span = held.span
        if observation.batch and observation.messages is not None:
            span.set_attribute("messaging.batch.message_count", observation.messages)
        span.end()
        # Made current in this very context, and still current: undo it.  In another
        # context (a framework that ends a request elsewhere) it is left to fall away.
        if trace.get_current_span() is span:
            context.detach(held.token)
        attributes = {
            "messaging.system": _SYSTEM,
            "messaging.operation.name": "process",
            "messaging.destination.name": sender,
        }
        if error_type is not None:
            attributes["error.type"] = error_type
        self._duration.record(seconds, attributes)

    def _held(self, observation: Observation) -> _Held | None:
        held = observation.notes.get(self)
        return held if isinstance(held, _Held) else None

    def _links(self, event: Leased) -> list[Link]:
        """A link to the span of the request that stored the delivery, if it recorded one."""
        traceparent = event.stored.traceparent
        if not traceparent:
            return []
        extracted = self._propagator.extract({"traceparent": traceparent})
        span_context = trace.get_current_span(extracted).get_span_context()
        return [Link(span_context)] if span_context.is_valid else []
