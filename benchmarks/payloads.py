"""The deliveries the benchmarks send: realistic bodies of about 1 KB, 64 KB and 1 MB.

Each body starts as :mod:`hookshield.testing`'s sample of the sender's event and is
padded with more of the fields that sender really sends (MindPeeker observations,
MOCO project tasks, Moonsense pointer samples) until it reaches the size.  Every body
also carries two small top-level keys, ``zen`` and ``hook_id``, so that githubkit's
``ping`` model accepts the very same bytes; hookshield and the other libraries ignore
them.  The signature headers are hookshield's, made by :func:`hookshield.testing.sign`;
each library we compare against signs the same body in its own scheme (see
:mod:`benchmarks.peers`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hookshield import testing

__all__ = [
    "BATCH_TYPES",
    "MAX_BODY_SIZE",
    "SECRET",
    "SIZES",
    "TOKEN",
    "TYPED_FIELDS",
    "Payload",
    "momentum_batch",
    "padded",
]

#: The signing secret every HMAC sender is configured with in the benchmarks.
SECRET = "bench-signing-secret-5f1e0c9a2b7d"  # noqa: S105 - a benchmark fixture
#: Momentum's shared token.
TOKEN = "bench-shared-token-8c41d2"  # noqa: S105 - a benchmark fixture

SIZES: dict[str, int] = {"1 KB": 1024, "64 KB": 64 * 1024, "1 MB": 1024 * 1024}
#: The ``max_body_size`` of the handlers that verify padded bodies: the largest, "1 MB",
#: is a little over MindPeeker's and MOCO's own default of 1 MiB.
MAX_BODY_SIZE = 2 * SIZES["1 MB"]

#: The mix of record types in the Momentum batch: mostly deliveries and engagement.
BATCH_TYPES = ("injection", "delivery", "delivery", "open", "click", "bounce", "delay")

#: The typed fields a route of each sender reads, as hookshield's events name them.
TYPED_FIELDS = {
    "mindpeeker": ("type", "id", "session_id", "status", "confidence", "completed_at"),
    "moco": ("type", "entity_id", "target", "action", "user_id", "timestamp"),
    "moonsense": ("type", "session_id", "project_id", "server_time", "bundle_index"),
}

# What a GitHub ping carries, so that githubkit parses our bodies as one.
_PING = {"zen": "Keep it logically awesome.", "hook_id": 109948940}

# The event each sender's payload is sampled from.
EVENTS = {
    "mindpeeker": "session.completed",
    "moco": "project.update",
    "moonsense": "bundle.received",
}


@dataclass(frozen=True, slots=True)
class Payload:
    """One signed delivery: the sender, its size label, the body and hookshield's headers."""

    provider: str
    label: str
    body: bytes
    headers: dict[str, str]

    @property
    def signature(self) -> str:
        """The hex HMAC-SHA256 the sender sent (without MindPeeker's ``sha256=``)."""
        for name, value in self.headers.items():
            if name.lower().endswith(("-signature", "-signature-256")):
                return value.removeprefix("sha256=")
        raise KeyError("this delivery carries no signature header")


def _observation(i: int) -> dict[str, Any]:
    return {
        "observed_at": f"2025-01-15T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "descriptor": ("urban environment", "water body nearby", "tall structure")[i % 3],
        "confidence": round(0.5 + (i % 50) / 100, 2),
        "coordinates": {"latitude": 40.7128 + i * 1e-5, "longitude": -74.006 - i * 1e-5},
    }


def _task(i: int) -> dict[str, Any]:
    return {
        "id": 658734 + i,
        "name": f"Design iteration {i}",
        "billable": i % 4 != 0,
        "active": True,
        "budget": 1000 + i,
        "hourly_rate": 150.0,
        "description": "Wireframes, review and hand-over",
    }


def _pointer(i: int) -> dict[str, Any]:
    return {"determined_at": 6190 + i, "type": 2, "x": 312.5 + i % 400, "y": 488.0 + i % 300}


def _padding_target(provider: str, payload: dict[str, Any]) -> tuple[list[Any], Callable[..., Any]]:
    # The list inside the sender's payload that grows, and how to make one more item.
    if provider == "mindpeeker":
        results: dict[str, Any] = payload["data"]["results"]
        return results.setdefault("observations", []), _observation
    if provider == "moco":
        tasks: list[Any] = payload.setdefault("tasks", [])
        return tasks, _task
    if provider == "moonsense":
        points: list[Any] = payload["bundle"]["bundle"]["pointer_data"]
        return points, _pointer
    raise ValueError(f"no padding recipe for {provider!r}")


def padded(provider: str, label: str = "1 KB") -> Payload:
    """A signed delivery of ``provider`` whose body is at least ``SIZES[label]`` bytes (within ~1%).

    Each call makes a new event id.
    """
    size, event = SIZES[label], EVENTS[provider]
    payload: dict[str, Any] = json.loads(testing.sample_body(provider, event))
    payload.update(_PING)
    grow, make = _padding_target(provider, payload)
    current = len(json.dumps(payload))
    i = 0
    while current < size:
        item = make(i)
        grow.append(item)
        current += len(json.dumps(item)) + 2  # the item and its ", " separator
        i += 1
    body = json.dumps(payload).encode("utf-8")
    headers = testing.sign(provider, body, secret=SECRET, event=event)
    return Payload(provider, label, body, headers)


def momentum_batch(records: int) -> Payload:
    """A Momentum batch of ``records`` records, with its token and batch id headers."""
    kinds = [BATCH_TYPES[i % len(BATCH_TYPES)] for i in range(records)]
    body = testing.sample_batch(kinds)
    headers = testing.sign("momentum", body, token=TOKEN, batch_id=str(uuid.uuid4()))
    return Payload("momentum", f"{records:,} records", body, headers)
