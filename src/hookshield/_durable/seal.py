"""Sealing stored deliveries: an HMAC over what a worker will run, with a local key.

Theory of operation: a sender's credential does not always cover what an inbox keeps.
A shared token or a Basic/Bearer credential (Momentum, Petal) says nothing of the
body, and an event type read from an unsigned header (GitHub, MOCO, Moonsense) is
covered by no signature.  So whoever can change a stored row could change what runs.
An inbox therefore *seals* each delivery it stores, an HMAC-SHA256 keyed with an
:class:`InboxKey` that is kept outside the inbox, and a worker runs a delivery only
once its seal matches.

Rules this module owns:

* The seal covers every field that decides what runs: ``id``, ``sender``,
  ``handler``, ``received`` (a signed timestamp is judged by it), ``body``, the
  headers as kept, ``event_types`` and ``events`` (the events of a batch still to
  run).  It does not cover the schedule (``state``, ``attempts``, ``next_attempt``,
  ``last_error``, ``lease_id``), which workers and ``hookshield inbox`` change.
* The fields are encoded canonically: a versioned label, then each field as its
  length (8 bytes, big-endian) and its bytes, a list as its count and then its items.
  No two different deliveries encode alike.
* The key given is never used as it is: one HMAC over a fixed label derives the
  sealing key, another a short public id that tells keys apart in messages.
* A seal is compared in constant time.

Nothing here touches a file, logs or starts a thread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
from collections.abc import Iterator
from typing import Final

from .._core.errors import TamperedDelivery
from .inbox import StoredDelivery

__all__ = ["ENV_KEY", "MIN_KEY_BYTES", "InboxKey", "inbox_key"]

#: The environment variable an inbox reads its key from when none is passed.
ENV_KEY: Final = "HOOKSHIELD_INBOX_KEY"
#: The shortest key accepted: 128 bits.
MIN_KEY_BYTES: Final = 16

_SEAL_LABEL: Final = b"hookshield inbox seal key v1"
_ID_LABEL: Final = b"hookshield inbox key id v1"
_MESSAGE_LABEL: Final = b"hookshield stored delivery v1"


class InboxKey:
    """The local key that seals the deliveries an inbox stores, and checks them.

    Give the same key to the web app, which stores deliveries, and to the workers,
    which run them: ``SQLiteInbox(path, key=...)``, ``CeleryInbox(app, ..., key=...)``,
    or the ``HOOKSHIELD_INBOX_KEY`` environment variable.  Keep it where the inbox
    is not (a secret store, the service's environment): whoever holds both can seal
    a row of their own.  Text or bytes, at least 16 bytes; make one with
    ``python -c "import secrets; print(secrets.token_hex(32))"``.
    """

    __slots__ = ("_seal_key", "id")

    def __init__(self, secret: str | bytes) -> None:
        if isinstance(secret, str):
            raw = secret.strip().encode("utf-8")
        elif isinstance(secret, (bytes, bytearray)):
            raw = bytes(secret)
        else:
            raise TypeError(f"an inbox key is text or bytes, not {type(secret).__name__}")
        if len(raw) < MIN_KEY_BYTES:
            raise ValueError(
                f"an inbox key must be at least {MIN_KEY_BYTES} bytes, not {len(raw)}; make one "
                'with python -c "import secrets; print(secrets.token_hex(32))"'
            )
        self._seal_key = hmac.digest(raw, _SEAL_LABEL, "sha256")
        #: A short public name of the key, the same wherever the key is: not secret.
        self.id = hmac.new(raw, _ID_LABEL, hashlib.sha256).hexdigest()[:16]

    def seal(self, delivery: StoredDelivery) -> StoredDelivery:
        """``delivery`` with its seal set: an HMAC-SHA256 of what it will run, in hex."""
        return dataclasses.replace(delivery, seal=self.seal_of(delivery))

    def seal_of(self, delivery: StoredDelivery) -> str:
        """The seal ``delivery`` must carry, in hex."""
        mac = hmac.new(self._seal_key, digestmod=hashlib.sha256)
        for part in _parts(delivery):
            mac.update(len(part).to_bytes(8, "big"))
            mac.update(part)
        return mac.hexdigest()

    def check(self, delivery: StoredDelivery) -> None:
        """Raise :class:`~hookshield.TamperedDelivery` unless ``delivery``'s seal matches."""
        if delivery.seal is None:
            raise TamperedDelivery(
                "the stored delivery has no seal: an older hookshield stored it, or "
                "something other than hookshield did; check it, then vouch for it with "
                "`hookshield inbox seal <id>`"
            )
        expected = self.seal_of(delivery).encode("ascii")
        given = delivery.seal.encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(expected, given):
            raise TamperedDelivery(
                "the stored delivery's seal does not match: it was changed after it was "
                f"stored, or sealed with another key than this one (key id {self.id})"
            )

    def __repr__(self) -> str:
        return f"InboxKey(id={self.id!r})"


def inbox_key(key: InboxKey | str | bytes | None, *, environ: bool = True) -> InboxKey | None:
    """The key given, or the one in ``HOOKSHIELD_INBOX_KEY`` (with ``environ``), or ``None``."""
    if isinstance(key, InboxKey):
        return key
    if key is not None:
        return InboxKey(key)
    text = os.environ.get(ENV_KEY, "") if environ else ""
    return InboxKey(text) if text.strip() else None


def _parts(delivery: StoredDelivery) -> Iterator[bytes]:
    """The sealed fields of ``delivery`` in their canonical order, each as bytes."""
    yield _MESSAGE_LABEL
    for text in (delivery.id, delivery.sender, delivery.handler):
        yield _utf8(text)
    yield float(delivery.received).hex().encode("ascii")
    yield delivery.body
    yield b"%d" % len(delivery.headers)
    for name, value in delivery.headers:
        yield _utf8(name)
        yield _utf8(value)
    yield b"%d" % len(delivery.event_types)
    for kind in delivery.event_types:
        yield _utf8(kind)
    if delivery.events is None:
        yield b"*"  # every event: distinct from any count
    else:
        yield b"%d" % len(delivery.events)
        for key in delivery.events:
            yield _utf8(key)


def _utf8(text: str) -> bytes:
    # surrogatepass: a header decoded from odd bytes still encodes, and only one way.
    return text.encode("utf-8", "surrogatepass")
