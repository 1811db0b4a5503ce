"""The webhook libraries we compare against, each doing hookshield's work on the same bytes.

Each library signs the body in its own scheme with a secret of the form it requires
(a ``whsec_`` base64 secret and id/timestamp headers for standardwebhooks and svix,
a ``t=...,v1=...`` header for stripe, ``X-Hub-Signature-256`` for gidgethub and
githubkit), so that its verification succeeds; then it parses the body its own way and
the benchmark reads the same fields hookshield's typed events expose.
:func:`check` proves every setup right before it is timed: the genuine delivery is
accepted and a tampered one refused.

The libraries are optional: one that is not installed is skipped with a note.  They
are imported by name at run time, so the harness type-checks without them.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import importlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .payloads import SECRET, Payload

__all__ = ["FIELDS", "PEERS", "Peer", "check", "read_fields"]

#: The fields read from each sender's parsed body, as key paths: the same data that
#: hookshield's typed properties return (``session_id``, ``confidence``, ...).
FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "mindpeeker": (
        ("type",),
        ("id",),
        ("data", "session_id"),
        ("data", "status"),
        ("data", "confidence_score"),
        ("data", "completed_at"),
    ),
    "moco": (("id",), ("name",), ("updated_at",), ("customer", "id")),
    "moonsense": (
        ("event_type",),
        ("session_id",),
        ("project_id",),
        ("bundle", "server_time_millis"),
        ("bundle", "bundle", "index"),
    ),
}

Call = Callable[[], object]


def read_fields(parsed: Any, paths: Sequence[tuple[str, ...]]) -> list[Any]:
    """Read each key path from a parsed body (a dict, or a library's dict-like object)."""
    values = []
    for path in paths:
        value = parsed
        for key in path:
            value = value[key]
        values.append(value)
    return values


def _hex_hmac(key: bytes, body: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def _import(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _standard_secret() -> tuple[str, datetime.datetime, str]:
    # standardwebhooks and svix take a "whsec_" base64 secret, and sign
    # "<id>.<timestamp>.<body>"; the timestamp must be within five minutes of now.
    secret = "whsec_" + base64.b64encode(SECRET.encode()).decode("ascii")
    return secret, datetime.datetime.now(tz=datetime.timezone.utc), "msg_" + uuid.uuid4().hex


def _standardwebhooks(payload: Payload, body: bytes) -> Call:
    module = importlib.import_module("standardwebhooks.webhooks")
    secret, now, msg_id = _standard_secret()
    webhook = module.Webhook(secret)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": webhook.sign(msg_id, now, payload.body.decode("utf-8")),
    }
    paths = FIELDS[payload.provider]
    verify = webhook.verify

    def run() -> object:
        return read_fields(verify(body, headers), paths)

    return run


def _svix(payload: Payload, body: bytes) -> Call:
    module = importlib.import_module("svix.webhooks")
    secret, now, msg_id = _standard_secret()
    webhook = module.Webhook(secret)
    headers = {
        "svix-id": msg_id,
        "svix-timestamp": str(int(now.timestamp())),
        "svix-signature": webhook.sign(msg_id, now, payload.body.decode("utf-8")),
    }
    paths = FIELDS[payload.provider]
    verify = webhook.verify
    loads = json.loads

    def run() -> object:
        verify(body, headers)  # svix's verify returns nothing: parsing is the caller's
        return read_fields(loads(body), paths)

    return run


def _stripe(payload: Payload, body: bytes) -> Call:
    stripe = importlib.import_module("stripe")
    secret = "whsec_" + SECRET
    header = stripe.WebhookSignature.generate_signature_header(payload.body.decode("utf-8"), secret)
    paths = FIELDS[payload.provider]
    construct = stripe.Webhook.construct_event

    def run() -> object:
        return read_fields(construct(body, header, secret, tolerance=300), paths)

    return run


def _gidgethub(payload: Payload, body: bytes) -> Call:
    sansio = importlib.import_module("gidgethub.sansio")
    headers = {
        "content-type": "application/json",
        "x-github-event": "ping",
        "x-github-delivery": str(uuid.uuid4()),
        "x-hub-signature-256": "sha256=" + _hex_hmac(SECRET.encode(), payload.body),
    }
    paths = FIELDS[payload.provider]
    from_http = sansio.Event.from_http

    def run() -> object:
        return read_fields(from_http(headers, body, secret=SECRET).data, paths)

    return run


def _githubkit(payload: Payload, body: bytes) -> Call:
    webhooks = importlib.import_module("githubkit.webhooks")
    signature = "sha256=" + _hex_hmac(SECRET.encode(), payload.body)
    verify, parse = webhooks.verify, webhooks.parse

    def run() -> object:
        if not verify(SECRET, body, signature):
            raise ValueError("githubkit refused the signature")
        # githubkit's typed model is GitHub's "ping" event: it keeps only its own
        # fields of our bodies, so those are the fields read.
        event = parse("ping", body)
        return (event.zen, event.hook_id, event.hook, event.sender)

    return run


@dataclass(frozen=True, slots=True)
class Peer:
    """A library we compare against: its name, a module to find it by, how to set it up."""

    name: str
    probe: str
    prepare: Callable[[Payload, bytes], Call]
    what: str

    def available(self) -> bool:
        """Whether the library is installed."""
        return _import(self.probe) is not None


PEERS: tuple[Peer, ...] = (
    Peer(
        "standardwebhooks",
        "standardwebhooks",
        _standardwebhooks,
        "`Webhook.verify` (verifies and parses)",
    ),
    Peer("svix", "svix", _svix, "`Webhook.verify` + `json.loads`"),
    Peer("stripe", "stripe", _stripe, "`Webhook.construct_event` (tolerance 300 s)"),
    Peer("gidgethub", "gidgethub", _gidgethub, "`sansio.Event.from_http`"),
    Peer(
        "githubkit",
        "githubkit.webhooks",
        _githubkit,
        "`webhooks.verify` + `webhooks.parse('ping', ...)`",
    ),
)


def check(peer: Peer, payload: Payload) -> None:
    """Prove ``peer``'s setup: the genuine body is accepted, a tampered one refused."""
    peer.prepare(payload, payload.body)()
    tampered = payload.body.replace(b"}", b" }", 1)
    try:
        peer.prepare(payload, tampered)()
    except Exception:  # each library has its own error type
        return
    raise AssertionError(f"{peer.name} accepted a tampered body: its setup verifies nothing")
