"""The :class:`Provider` that an :class:`HmacSender` description drives.

Theory of operation: :func:`provider_of` makes, once per description, a subclass of
:class:`HmacProvider` whose ``sender`` is that description; the class verifies, parses
and signs by it.  ``_hmac`` owns the description and its validation (every
misconfiguration is refused there, at construction); this module owns what a delivery
meets, reading the description only through its public attributes (the parsed
``signed_content`` is ``HmacSender.signed_parts``).

Rules this module owns:

* Verification reads only bounded headers (:func:`read_header`), at most
  ``max_signatures`` signatures per header, and compares each one with
  :func:`hmac.compare_digest` on its normalised bytes *before* judging its form.
  Every bad input is a typed :class:`WebhookError`; the timestamp window is judged
  only once the signature matched, and in both directions (docs/security.md, "Replay
  and de-duplication").
* The de-duplication key is the event id when the signature covers it, otherwise the
  body's SHA-256 plus the event type (but for a type from a header when the
  description says ``type_in_key=False``): an unsigned id (a delivery GUID) would let
  a replay through with a fresh one.

Nothing here logs, awaits, touches a store or starts a thread.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from .._auth import RECEIVED_AT, normalize_secrets, read_header
from .._errors import (
    InvalidSignature,
    MalformedPayload,
    MalformedSignature,
    MissingCredentials,
    TimestampOutOfRange,
)
from .._events import Delivery, as_str, from_epoch_by_magnitude, from_iso, from_unix
from .._headers import Headers
from .._json import FrozenObject
from ._base import Credentials, Provider

if TYPE_CHECKING:
    from ._hmac import HmacSender

__all__ = ["HmacProvider", "provider_of"]

_HEX_DIGITS = frozenset(b"0123456789abcdef")
_BASE64_DIGITS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
# Unix seconds up to the year 33658; longer digits are no timestamp a sender sends.
_MAX_TIMESTAMP_DIGITS = 12
# A header part of an event type (MOCO's X-Moco-Target) is cut to this length.
_MAX_TYPE_PART = 64
_UNKNOWN = "unknown"


def _at(payload: Any, path: str) -> Any:
    """The value at the dotted ``path`` of ``payload``, or ``None``."""
    for key in path.split("."):
        if type(payload) is not dict:
            return None
        payload = payload.get(key)
    return payload


def _when(value: Any) -> datetime | None:
    """An event time: ISO 8601 text, or an epoch number read by its magnitude."""
    if isinstance(value, str):
        return from_iso(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return from_epoch_by_magnitude(value)
    if isinstance(value, float) and math.isfinite(value):
        return from_unix(value)
    return None


@functools.lru_cache(maxsize=64)
def provider_of(sender: HmacSender) -> HmacProvider:
    title = sender.title or sender.name
    attributes = {"sender": sender, "__doc__": f"{title}'s webhooks, from an HmacSender."}
    cls = type(f"HmacProvider[{sender.name}]", (HmacProvider,), attributes)
    provider: HmacProvider = cls()
    return provider


class HmacProvider(Provider):
    """A :class:`Provider` driven by its :class:`HmacSender` description, ``sender``."""

    sender: ClassVar[HmacSender]
    accepts = frozenset({"secret"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        sender: HmacSender | None = cls.__dict__.get("sender")
        if sender is not None:
            # The Provider attributes that the registry, testing and the CLI read.
            defaults = {
                "name": sender.name,
                "title": sender.title or sender.name,
                "event_class": sender.event_class,
                "event_types": sender.event_types,
                "signature_header": sender.signature_header,
                "signature_prefix": sender.signature_prefix,
                "accepts_form": sender.accepts_form,
                "default_max_body_size": sender.max_body_size,
                # What parse() reads: the type and id headers, and the signed time.
                "parse_headers": tuple(
                    name
                    for name in (*sender.type_headers, sender.id_header, sender.timestamp_header)
                    if name is not None
                ),
            }
            for attribute, value in defaults.items():
                if attribute not in cls.__dict__:
                    setattr(cls, attribute, value)
        super().__init_subclass__(**kwargs)

    def signing_keys(self, secrets: tuple[bytes, ...]) -> tuple[bytes, ...]:
        """The secrets decoded as the description says (``whsec_`` base64, hex...)."""
        return self.sender.keys(secrets)

    def stored_headers(self, credentials: Credentials) -> frozenset[str]:
        """What :meth:`Provider.stored_headers` keeps, and every header the signature covers."""
        signed = {self.sender.signature_header, *self.sender.signed_headers}
        return super().stored_headers(credentials) | {name.lower() for name in signed}

    # -- receiving -----------------------------------------------------------------

    def authenticate(self, body: bytes, headers: Headers, credentials: Credentials) -> str | None:
        """Check the signature (and the signed timestamp's window); the matched hex digest."""
        sender = self.sender
        keys = credentials.hmac_keys
        if not keys:  # pragma: no cover - WebhookHandler refuses a handler with no secret
            raise MissingCredentials(f"a {self.title} handler needs secret=")
        signatures, stamp = self._split(self._signature(headers), headers)
        message = self._message(body, headers, stamp)
        prefix = sender.signature_prefix
        hexed = sender.encoding == "hex"
        if hexed:
            prefix = prefix.lower()
        # Every candidate goes through the constant-time compare, prefix included,
        # before anything about its form is judged.
        received = [
            (s.lower() if hexed else s).encode("utf-8", "surrogatepass") for s in signatures
        ]
        for key in keys:
            digest = bytes.fromhex(key.hexdigest(message))
            expected = (prefix + sender.encode(digest)).encode("ascii")
            for candidate in received:
                if hmac.compare_digest(expected, candidate):
                    if stamp is not None:
                        self._check_window(stamp)
                    return digest.hex()
        raise self._mismatch(received, prefix.encode("utf-8"))

    def check_headers(self, headers: Headers, credentials: Credentials) -> None:
        """Before the body is read: the signature header is there and well formed, and
        so are the timestamp and the other headers it signs."""
        _, stamp = self._split(self._signature(headers), headers)
        # The signed content of an empty body reads every signed header as
        # authenticate() does, in the same order, with the same errors.
        self._message(b"", headers, stamp)

    def _signature(self, headers: Headers) -> str:
        header = self.sender.signature_header
        value = read_header(headers, header)
        if value is None:
            raise MissingCredentials(
                f"the delivery has no {header} header, but this handler has a secret: "
                f"{self.title} signs every delivery"
            )
        return value

    def _split(self, value: str, headers: Headers) -> tuple[list[str], str | None]:
        """The signatures of the header and the timestamp text (``None`` without one)."""
        sender = self.sender
        header = sender.signature_header
        separator = sender.signature_separator
        items = [value.strip()] if separator is None else value.split(separator)
        items = [item.strip() for item in items if item.strip()]
        if not items:
            raise MalformedSignature(f"the {header} header is empty")
        stamp_header = sender.timestamp_header
        stamp: str | None = None
        if stamp_header is not None and stamp_header.lower() == header.lower():
            prefix = sender.timestamp_prefix
            stamps = [item for item in items if item.startswith(prefix)]
            items = [item for item in items if not item.startswith(prefix)]
            if len(stamps) != 1:
                raise MalformedSignature(
                    f"the {header} header must hold exactly one {prefix}<Unix seconds> item"
                )
            stamp = stamps[0][len(prefix) :].strip()
        elif stamp_header is not None:
            stamp = read_header(headers, stamp_header)
            if stamp is None:
                raise MissingCredentials(
                    f"the delivery has no {stamp_header} header; {self.title} signs one"
                )
            stamp = stamp.strip()
        if len(items) > sender.max_signatures:
            raise MalformedSignature(
                f"the {header} header holds {len(items)} signatures; at most "
                f"{sender.max_signatures} are accepted"
            )
        if stamp is not None and not (
            stamp.isascii() and stamp.isdigit() and len(stamp) <= _MAX_TIMESTAMP_DIGITS
        ):
            raise MalformedSignature(
                f"the {stamp_header} timestamp must be Unix seconds (digits only)"
            )
        return items, stamp

    def _message(self, body: bytes, headers: Headers, stamp: str | None) -> bytes:
        """The bytes the sender signed, from the ``signed_content`` template."""
        parts = self.sender.signed_parts
        if len(parts) == 1:
            return body  # "{body}": no copy
        stamp_header = (self.sender.timestamp_header or "").lower()
        id_header = (self.sender.id_header or "").lower()
        chunks: list[bytes] = []
        for kind, value in parts:
            if kind == "body":
                chunks.append(body)
                continue
            if kind == "text":
                text = value
            elif kind == "timestamp" or value == stamp_header:
                text = stamp or ""
            else:
                found = read_header(headers, value)
                if found is None:
                    raise MissingCredentials(
                        f"the delivery has no {value} header; {self.title} signs one"
                    )
                text = found.strip()
                if not text and value == id_header:
                    # The signed id is the de-duplication key: an empty one would key
                    # the delivery on nothing the sender chose (and the Standard
                    # Webhooks specification requires one).
                    raise MalformedSignature(
                        f"the {self.sender.id_header} header is empty; {self.title} "
                        "signs the message's id there"
                    )
            try:
                chunks.append(text.encode("utf-8"))
            except UnicodeEncodeError:
                raise MalformedSignature("a signed header of the delivery is not text") from None
        return b"".join(chunks)

    def _check_window(self, stamp: str) -> None:
        sender = self.sender
        received = RECEIVED_AT.get()
        age = (sender.clock() if received is None else received) - int(stamp)
        if abs(age) > sender.tolerance:
            when = f"{age:.0f} s ago" if age > 0 else f"{-age:.0f} s in the future"
            raise TimestampOutOfRange(
                f"the delivery was signed {when}, outside the {sender.tolerance:g} s window: "
                "a replay, or a clock that is off (check NTP on both sides)"
            )

    def _mismatch(self, received: list[bytes], prefix: bytes) -> Exception:
        """Why nothing matched, judged only after every constant-time compare."""
        sender = self.sender
        header = sender.signature_header
        digits, size = (_HEX_DIGITS, 64) if sender.encoding == "hex" else (_BASE64_DIGITS, 44)
        form = f"{sender.signature_prefix}<{size} {sender.encoding} characters>"
        ours = [item[len(prefix) :] for item in received if item.startswith(prefix)]
        if not ours:
            return MalformedSignature(f"the {header} header holds no signature like '{form}'")
        if not any(len(s) == size and digits.issuperset(s) for s in ours):
            return MalformedSignature(
                f"the {header} signature is not of the form '{form}' (an HMAC-SHA256)"
            )
        return InvalidSignature(
            f"the {header} signature does not match the body. Check that you pass the raw "
            "request body, byte for byte as received (not JSON your framework parsed and "
            "re-serialised), and that the secret is the one configured at the sender."
        )

    def parse(self, body: bytes, headers: Headers, signature: str | None) -> Delivery:
        """One event, its type, id and data read where the description says."""
        sender = self.sender
        payload = self.payload(body, headers)
        if sender.type_field is not None:
            if type(payload) is not dict:
                raise MalformedPayload(f"a {self.title} event is a JSON object")
            kind = _at(payload, sender.type_field)
            if not isinstance(kind, str) or not kind:
                raise MalformedPayload(f"a {self.title} event has a string {sender.type_field!r}")
        else:
            kind = self._header_type(headers)
        if sender.type_detail_field is not None:
            detail = _at(payload, sender.type_detail_field)
            if isinstance(detail, str) and detail:
                kind = f"{kind}.{detail}"
        event_id = self._event_id(payload, headers)
        data = payload if sender.data_field is None else _at(payload, sender.data_field)
        if sender.time_field is not None:
            when = _when(_at(payload, sender.time_field))
        else:
            when = self._signed_time(headers)
        event = sender.event_class(
            provider=self.name,
            type=kind,
            id=event_id,
            timestamp=when,
            data=FrozenObject(data if type(data) is dict else {}),
        )
        if event_id is not None and sender.id_is_signed:
            key = "event:" + event_id
        elif sender.type_field is None and not sender.type_in_key:
            key = f"sha256:{hashlib.sha256(body).hexdigest()}"  # the type is unsigned
        else:
            key = f"sha256:{hashlib.sha256(body).hexdigest()}:{kind}"
        return Delivery(provider=self.name, id=key, events=(event,), headers=headers, body=body)

    def _header_type(self, headers: Headers) -> str:
        parts = []
        for name in self.sender.type_headers:
            value = (headers.get(name) or "").strip()[:_MAX_TYPE_PART]
            parts.append(value or _UNKNOWN)
        kind = ".".join(parts)
        return kind.lower() if self.sender.type_lowercase else kind

    def _event_id(self, payload: Any, headers: Headers) -> str | None:
        sender = self.sender
        if sender.id_field is not None:
            return as_str(_at(payload, sender.id_field))
        if sender.id_header is not None:
            # An unsigned id (GitHub's delivery GUID) is no credential: sent twice, it
            # is a malformed header (400), not a failed authentication.
            value = read_header(headers, sender.id_header, credential=sender.id_is_signed)
            return (value.strip() or None) if value is not None else None
        return None

    def _signed_time(self, headers: Headers) -> datetime | None:
        sender = self.sender
        if sender.timestamp_header is None:
            return None
        value = headers.get(sender.timestamp_header) or ""
        if sender.timestamp_prefix:
            items = (item.strip() for item in value.split(sender.signature_separator or ","))
            value = next(
                (
                    i[len(sender.timestamp_prefix) :]
                    for i in items
                    if i.startswith(sender.timestamp_prefix)
                ),
                "",
            )
        return from_unix(int(value)) if value.strip().isdigit() else None

    # -- imitating the sender, for hookshield.testing ------------------------------

    def sign(self, body: bytes, **options: Any) -> dict[str, str]:
        """The headers the sender sends with ``body``, signed with the first secret.

        Options: ``event`` (for a type carried in headers), ``event_id`` (for an id
        header), ``timestamp`` (Unix seconds; now by default), ``content_type``.
        """
        sender = self.sender
        (secret, *_) = normalize_secrets(options["secret"], name="secret")
        (key,) = sender.keys((secret,))
        headers: dict[str, str] = {
            "Content-Type": str(options.get("content_type") or "application/json")
        }
        names = sender.type_headers
        if names:
            event = str(options.get("event") or (self.event_types or (_UNKNOWN,))[0])
            # With a detail field (GitHub's action) the last part is in the body.
            values = event.split(".", len(names) - (sender.type_detail_field is None))
            headers.update(zip(names, values[: len(names)], strict=False))
        if sender.id_header is not None:
            headers[sender.id_header] = str(
                options.get("event_id") or "msg_" + secrets.token_hex(12)
            )
        stamp = options.get("timestamp")
        stamp_text = str(int(sender.clock() if stamp is None else stamp))
        inside = False
        if sender.timestamp_header is not None:
            inside = sender.timestamp_header.lower() == sender.signature_header.lower()
            if not inside:
                headers[sender.timestamp_header] = stamp_text
        lowered = Headers(headers)
        message = self._message(body, lowered, stamp_text if sender.timestamp_header else None)
        signature = sender.signature_prefix + sender.encode(hmac.digest(key, message, "sha256"))
        if inside:
            separator = sender.signature_separator or ","
            signature = sender.timestamp_prefix + stamp_text + separator + signature
        headers[sender.signature_header] = signature
        return headers

    def sample(self, event_type: str, overrides: Mapping[str, Any]) -> bytes:
        """A body of ``event_type`` in the described shape, ``overrides`` in its data."""
        sender = self.sender
        payload: dict[str, Any] = {}
        if sender.type_field is not None:
            _put(payload, sender.type_field, event_type)
        elif sender.type_detail_field is not None:
            names = sender.type_headers
            pieces = event_type.split(".", len(names))
            if len(pieces) > len(names):
                _put(payload, sender.type_detail_field, pieces[-1])
        if sender.id_field is not None:
            _put(payload, sender.id_field, "evt_" + secrets.token_hex(8))
        if sender.time_field is not None:
            _put(payload, sender.time_field, "2025-01-15T10:30:00Z")
        if sender.data_field is not None:
            _put(payload, sender.data_field, dict(overrides))
        else:
            payload.update(overrides)
        return json.dumps(payload, allow_nan=False).encode("utf-8")


def _put(payload: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        payload = payload.setdefault(key, {})
    payload[last] = value
