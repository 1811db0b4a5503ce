"""Prometheus metrics of the deliveries: ``hookshield.add_observer(Metrics())``.

    import hookshield
    from hookshield.prometheus import Metrics

    hookshield.add_observer(Metrics(inboxes={"main": inbox}))

Theory of operation: :class:`Metrics` is an observer (see ``hookshield.Observer``)
that counts what each delivery went through in ``prometheus_client`` metrics, in the
registry given (the default one by default).  Every label is chosen from a bounded
set: the handler's sender name, the route's registered pattern, and a word from a
fixed list for an outcome, a reason, a state or a worker's result.  Nothing a sender
wrote (an event type, a delivery id, a header) ever becomes a label value.

The inboxes given are read when the registry is scraped, by
:class:`InboxCollector`: their counts by state and how long the oldest due delivery
has waited.  Under a multi-process server (gunicorn with prometheus_client's
multiprocess mode) register an :class:`InboxCollector` in the registry that the
``/metrics`` view builds, beside ``MultiProcessCollector``: a gauge read from the
inbox needs no sharing between processes.

Install with ``python -m pip install -e '.[prometheus]'`` from a checkout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, Protocol

from ._durable.inbox import STATES
from ._handling.observe import Answered, Finished, Observer, Refused, Routed
from ._web.adapt import missing

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector
except ImportError as exc:
    raise missing("prometheus_client", extra="prometheus", adapter="hookshield.prometheus") from exc

__all__ = ["InboxCollector", "Metrics"]

logger = logging.getLogger("hookshield.observers")

#: From 5 ms to 10 s: a route that writes a row, up to one that calls a slow API.
DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class CountedInbox(Protocol):
    """An inbox the collector can read: its counts by state (all managed inboxes)."""

    def counts(self) -> dict[str, int]:
        """How many deliveries are in each state."""


class Metrics(Observer):
    """An observer that counts deliveries in Prometheus metrics; add it once per process.

    ``registry`` is where the metrics are registered (``prometheus_client.REGISTRY``
    by default); a second ``Metrics`` on the same registry is refused by it.
    ``inboxes`` (a mapping of names to inboxes, or a sequence of them) are read at
    each scrape, as ``hookshield_inbox_deliveries{inbox, state}`` and
    ``hookshield_inbox_oldest_due_seconds{inbox}``.

    The metrics:

    * ``hookshield_deliveries_total{sender, outcome}``: each request an adapter
      answered, by ``accepted``, ``duplicate``, ``in_progress``, ``refused`` or
      ``failed``;
    * ``hookshield_refusals_total{sender, reason}``: each 4xx refusal, by reason
      (``signature``, ``credentials``, ``timestamp``, ``malformed``, ``too_large``,
      ``source``, ``method``, ``content_type``, ``tampered``, ``other``);
    * ``hookshield_delivery_duration_seconds{sender}``: from the request's arrival
      to its answer;
    * ``hookshield_route_duration_seconds{sender, route}``: each route call, by the
      pattern it was registered for;
    * ``hookshield_worker_deliveries_total{sender, result}``: each attempt of a
      worker (``hookshield worker``, Celery), by ``done``, ``retried``, ``dead`` or
      ``lost`` (its lease ran out and another worker has it).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        inboxes: Mapping[str, CountedInbox] | Iterable[CountedInbox] = (),
    ) -> None:
        if registry is None:
            registry = REGISTRY
        if not isinstance(registry, CollectorRegistry):
            raise TypeError(
                f"registry must be a prometheus_client CollectorRegistry, not {type(registry).__name__}"
            )
        collector = InboxCollector(inboxes) if inboxes else None
        self.registry = registry
        self.deliveries = Counter(
            "hookshield_deliveries",
            "Webhook requests answered, by sender and outcome.",
            ["sender", "outcome"],
            registry=registry,
        )
        self.refusals = Counter(
            "hookshield_refusals",
            "Webhook deliveries refused with a 4xx, by sender and reason.",
            ["sender", "reason"],
            registry=registry,
        )
        self.delivery_duration = Histogram(
            "hookshield_delivery_duration_seconds",
            "From a webhook request's arrival to its answer.",
            ["sender"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.route_duration = Histogram(
            "hookshield_route_duration_seconds",
            "Each call of a webhook route, by the pattern it was registered for.",
            ["sender", "route"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.worker_deliveries = Counter(
            "hookshield_worker_deliveries",
            "A worker's attempts at stored webhook deliveries, by sender and result.",
            ["sender", "result"],
            registry=registry,
        )
        #: The inboxes' collector, registered in ``registry``; ``None`` without inboxes.
        self.inboxes = collector
        if collector is not None:
            registry.register(collector)
        # Each metric's children by their label values, which are few (see above): a
        # dictionary look-up per delivery instead of ``labels()``, which checks them.
        self._children: dict[tuple[object, ...], Any] = {}

    def answered(self, event: Answered) -> None:
        """Count the answer, and time it."""
        self._child(self.deliveries, event.sender, event.result).inc()
        self._child(self.delivery_duration, event.sender).observe(event.seconds)

    def refused(self, event: Refused) -> None:
        """Count the refusal by its reason."""
        self._child(self.refusals, event.sender, event.reason).inc()

    def routed(self, event: Routed) -> None:
        """Time the route call."""
        self._child(self.route_duration, event.sender, event.route).observe(event.seconds)

    def finished(self, event: Finished) -> None:
        """Count the worker's attempt."""
        self._child(self.worker_deliveries, event.sender, event.result).inc()

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def __repr__(self) -> str:
        inboxes = "" if self.inboxes is None else f", inboxes={list(self.inboxes.inboxes)}"
        return f"Metrics(registry={self.registry!r}{inboxes})"


class InboxCollector(Collector):
    """Reads inboxes when the registry is scraped: deliveries by state, and the oldest due.

    ``inboxes`` maps a name (the ``inbox`` label) to an inbox with ``counts()``
    (:class:`~hookshield.SQLiteInbox`, ``PostgresInbox``, ``DjangoInbox``); a sequence
    names each by its type, numbered when two share one.  An inbox with
    ``oldest_due()`` also gives ``hookshield_inbox_oldest_due_seconds``: how long
    the delivery due longest has waited for a worker (0 when none is due).  An inbox
    that fails to answer is left out of that scrape and logged.
    """

    def __init__(self, inboxes: Mapping[str, CountedInbox] | Iterable[CountedInbox]) -> None:
        named = dict(inboxes) if isinstance(inboxes, Mapping) else _named(inboxes)
        for name, inbox in named.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"an inbox's name is a non-empty str, not {name!r}")
            if not callable(getattr(inbox, "counts", None)):
                raise TypeError(
                    f"{type(inbox).__name__} cannot be counted (it has no counts()): "
                    "Metrics reads SQLiteInbox, PostgresInbox and DjangoInbox"
                )
        self.inboxes: dict[str, CountedInbox] = named

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The metric families, without reading any inbox (at registration)."""
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Each inbox's counts and oldest due delivery, read now."""
        deliveries, oldest = self._families()
        now = time.time()
        for name, inbox in self.inboxes.items():
            oldest_due = getattr(inbox, "oldest_due", None)
            try:
                counts = inbox.counts()
                due = oldest_due(now) if callable(oldest_due) else None
            except Exception:
                logger.exception("hookshield: could not read the inbox %r for its metrics", name)
                continue
            for state in STATES:
                deliveries.add_metric([name, state], counts.get(state, 0))
            if callable(oldest_due):
                oldest.add_metric([name], 0.0 if due is None else max(0.0, now - float(due)))
        yield deliveries
        yield oldest

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "hookshield_inbox_deliveries",
                "Deliveries in the inbox, by state (pending, leased, done, dead).",
                labels=["inbox", "state"],
            ),
            GaugeMetricFamily(
                "hookshield_inbox_oldest_due_seconds",
                "How long the delivery due longest has waited for a worker; 0 when none is due.",
                labels=["inbox"],
                unit="",
            ),
        )


def _named(inboxes: Iterable[CountedInbox]) -> dict[str, CountedInbox]:
    named: dict[str, CountedInbox] = {}
    for inbox in inboxes:
        base = type(inbox).__name__
        name, number = base, 1
        while name in named:
            number += 1
            name = f"{base}-{number}"
        named[name] = inbox
    return named
