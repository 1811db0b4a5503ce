"""How a sender signs with HMAC-SHA256: the one verifier and the one signer of every sender.

Theory of operation: an :class:`HmacScheme` is a frozen description of a signature
alone (which header, which prefix and encoding, what is signed, how the key is
written, the signed timestamp and its window); it says nothing of the payload.  Any
:class:`~hookshield.providers.Provider` may carry one as its ``scheme``: the
hand-written senders (Moonsense), the described ones (``HmacSender``: MindPeeker,
MOCO, GitHub, Standard Webhooks, and yours).  :meth:`HmacScheme.verify` is the only
place a received signature is compared, and :meth:`HmacScheme.sign` the only place
one is made, for ``hookshield.testing`` and the command line alike.

Rules this module owns:

* Every misconfiguration is refused when the scheme is built (``ValueError`` or
  ``TypeError``), never at the first delivery.  A timestamp window is refused unless
  the signature covers the timestamp: an unsigned timestamp stops no replay
  (docs/security.md, "Replay and de-duplication").
* Verification reads only bounded headers (:func:`read_header`), at most
  ``max_signatures`` signatures per header, and compares each one, prefix included,
  with :func:`hmac.compare_digest` on its normalised bytes (lower-case hex) *before*
  anything about its form is judged: no early return on a length or a prefix.  Only
  once nothing matched is the form looked at, to say precisely what is wrong.  Every
  bad input is a typed :class:`WebhookError`; the timestamp window is judged only once
  the signature matched, and in both directions.
* :meth:`HmacScheme.check_headers`, run before the body is read, refuses exactly what
  :meth:`HmacScheme.verify` would refuse from the headers alone, with the same errors
  in the same order (a missing or malformed signature header, timestamp or signed
  header), so that a delivery it lets through is judged again, whole, by ``verify``.

Nothing here logs, awaits, touches a store or starts a thread.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from .._auth import RECEIVED_AT, HmacSha256Key, SecretLike, normalize_secrets, read_header
from .._errors import (
    InvalidSignature,
    MalformedSignature,
    MissingCredentials,
    TimestampOutOfRange,
)
from .._events import from_unix
from .._headers import Headers

__all__ = ["MAX_SIGNATURES", "HmacScheme", "Part", "check_header_name", "check_text"]

#: The most signatures one header may carry (key rotation needs two or three).
MAX_SIGNATURES = 64
# RFC 9110 section 5.6.2: a header name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_HEX_DIGITS = frozenset(b"0123456789abcdef")
_BASE64_DIGITS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
# Unix seconds up to the year 33658; longer digits are no timestamp a sender sends.
_MAX_TIMESTAMP_DIGITS = 12

#: One piece of ``signed_content``: literal text, the body, the timestamp or a header.
Part = tuple[Literal["text", "body", "timestamp", "header"], str]


@dataclass(frozen=True, kw_only=True)
class HmacScheme:
    """How a sender signs each delivery with HMAC-SHA256; its payload is not its concern.

    * ``signature_header``; ``signature_prefix`` before each signature (``"sha256="``,
      ``"v1,"``); ``encoding``, ``"hex"`` or ``"base64"``; ``signature_separator``
      between several signatures in the header (``" "``), signatures with another
      prefix being skipped; at most ``max_signatures`` of them.
    * ``signed_content``: a template over ``{body}`` (the raw bytes, exactly once),
      ``{timestamp}`` and named headers, e.g. ``"{webhook-id}.{webhook-timestamp}.{body}"``.
    * ``key_encoding`` of the secrets, ``"text"`` (UTF-8), ``"hex"`` or ``"base64"``,
      with ``key_prefix`` (``"whsec_"``) stripped where present.
    * ``timestamp_header`` with Unix seconds, checked within ``tolerance`` seconds of
      ``clock()`` in both directions; when it is the signature header itself, the
      timestamp is its item that starts with ``timestamp_prefix`` (``"t="``).
    * ``id_header``: the header of the message id; where ``signed_content`` covers it,
      an empty one is refused (the signed id is the de-duplication key).
    """

    signature_header: str
    signature_prefix: str = ""
    encoding: Literal["hex", "base64"] = "hex"
    signature_separator: str | None = None
    max_signatures: int = 8
    signed_content: str = "{body}"
    key_encoding: Literal["text", "hex", "base64"] = "text"
    key_prefix: str = ""
    timestamp_header: str | None = None
    timestamp_prefix: str = ""
    tolerance: float = 300.0
    clock: Callable[[], float] = time.time
    id_header: str | None = None
    # Derived once from the fields above.
    _parts: tuple[Part, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_header_name(self.signature_header, "signature_header")
        check_text(self.signature_prefix, "signature_prefix", empty=True)
        if self.encoding not in ("hex", "base64"):
            raise ValueError(f"encoding={self.encoding!r}: use 'hex' or 'base64'")
        self._check_separator()
        self._check_timestamp()
        if self.key_encoding not in ("text", "hex", "base64"):
            raise ValueError(f"key_encoding={self.key_encoding!r}: use 'text', 'hex' or 'base64'")
        check_text(self.key_prefix, "key_prefix", empty=True)
        if self.id_header is not None:
            check_header_name(self.id_header, "id_header")
        object.__setattr__(self, "_parts", self._parse_template())

    def _check_separator(self) -> None:
        separator = self.signature_separator
        if separator is not None:
            check_text(separator, "signature_separator")
            if any(c.isalnum() for c in separator):
                raise ValueError(
                    f"signature_separator={separator!r} holds letters or digits, which "
                    "signatures themselves contain"
                )
            if separator in self.signature_prefix:
                raise ValueError(
                    f"signature_prefix={self.signature_prefix!r} contains the separator "
                    f"{separator!r}, so the header could not be split"
                )
        limit = self.max_signatures
        if type(limit) is not int or not 1 <= limit <= MAX_SIGNATURES:
            raise ValueError(f"max_signatures must be an int from 1 to {MAX_SIGNATURES}")

    def _check_timestamp(self) -> None:
        header = self.timestamp_header
        if not callable(self.clock):
            raise TypeError("clock must be a function returning Unix seconds, like time.time")
        tolerance = self.tolerance
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
            raise TypeError("tolerance is a number of seconds")
        if not (math.isfinite(tolerance) and tolerance > 0):
            raise ValueError("tolerance must be a positive, finite number of seconds")
        check_text(self.timestamp_prefix, "timestamp_prefix", empty=True)
        if header is None:
            if self.timestamp_prefix:
                raise ValueError("timestamp_prefix needs timestamp_header")
            return
        check_header_name(header, "timestamp_header")
        inside = self.timestamp_inside
        if inside and not (self.signature_separator and self.timestamp_prefix):
            raise ValueError(
                "a timestamp in the signature header needs signature_separator and "
                "timestamp_prefix (as in 't=<seconds>,v1=<signature>')"
            )
        if self.timestamp_prefix and not inside:
            raise ValueError("timestamp_prefix is for a timestamp inside the signature header")
        if inside and self.timestamp_prefix.startswith(self.signature_prefix):
            raise ValueError("timestamp_prefix and signature_prefix must tell the items apart")

    def _parse_template(self) -> tuple[Part, ...]:
        template = self.signed_content
        check_text(template, "signed_content")
        parts: list[Part] = []
        position = 0
        for match in _PLACEHOLDER.finditer(template):
            parts.extend(_literal(template[position : match.start()]))
            name = match.group(1)
            if name == "body":
                parts.append(("body", name))
            elif name == "timestamp":
                parts.append(("timestamp", name))
            elif _TOKEN.fullmatch(name):
                parts.append(("header", name.lower()))
            else:
                raise ValueError(
                    f"signed_content: {{{name}}} is neither {{body}}, {{timestamp}} nor a header name"
                )
            position = match.end()
        parts.extend(_literal(template[position:]))
        if sum(kind == "body" for kind, _ in parts) != 1:
            raise ValueError(
                "signed_content must hold {body} exactly once: the body is what is signed"
            )
        headers = {value for kind, value in parts if kind == "header"}
        if self.signature_header.lower() in headers:
            raise ValueError("signed_content cannot hold the signature header itself")
        stamp = self.timestamp_header
        has_placeholder = any(kind == "timestamp" for kind, _ in parts)
        if has_placeholder and stamp is None:
            raise ValueError("signed_content holds {timestamp}: set timestamp_header")
        if stamp is not None and not (has_placeholder or stamp.lower() in headers):
            raise ValueError(
                f"signed_content does not hold the timestamp ({{timestamp}} or {{{stamp}}}): "
                "a window over an unsigned timestamp stops no replay"
            )
        return tuple(parts)

    # -- derived -------------------------------------------------------------------

    @property
    def signed_parts(self) -> tuple[Part, ...]:
        """``signed_content`` parsed into its pieces: text, ``{body}``, the timestamp, headers."""
        return self._parts

    @property
    def signed_headers(self) -> tuple[str, ...]:
        """The (lower-case) headers the signature covers."""
        return tuple(value for kind, value in self._parts if kind == "header")

    @property
    def read_headers(self) -> tuple[str, ...]:
        """Every (lower-case) header :meth:`verify` reads: the signature, timestamp, signed ones.

        What an inbox keeps with a stored delivery so that it can be verified again.
        """
        names = [self.signature_header.lower()]
        if self.timestamp_header is not None:
            names.append(self.timestamp_header.lower())
        names.extend(self.signed_headers)
        return tuple(dict.fromkeys(names))

    @property
    def timestamp_inside(self) -> bool:
        """Whether the timestamp is an item of the signature header (``t=...,v1=...``)."""
        stamp = self.timestamp_header
        return stamp is not None and stamp.lower() == self.signature_header.lower()

    def keys(self, secrets: tuple[bytes, ...], *, sender: str = "") -> tuple[bytes, ...]:
        """The HMAC keys of ``secrets`` as the sender writes them (``ValueError`` if not).

        ``sender`` names the sender in the refusal.
        """
        return tuple(self._key(secret, sender) for secret in secrets)

    def _key(self, secret: bytes, sender: str) -> bytes:
        shown = f"the {sender} secret" if sender else "the secret"
        prefix = self.key_prefix.encode("utf-8")
        if prefix and secret.startswith(prefix):
            secret = secret[len(prefix) :]
        try:
            if self.key_encoding == "hex":
                key = bytes.fromhex(secret.decode("ascii"))
            elif self.key_encoding == "base64":
                text = secret.strip()
                key = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
            else:
                key = secret
        except (ValueError, binascii.Error):
            raise ValueError(
                f"{shown} is not valid {self.key_encoding}"
                + (f" after its {self.key_prefix!r} prefix" if self.key_prefix else "")
            ) from None
        if not key:
            raise ValueError(f"{shown} is empty once decoded: an empty key authenticates anyone")
        return key

    def write_secret(self, key: bytes) -> str:
        """The secret whose HMAC key is ``key``, written as the sender writes its secrets.

        With ``key_prefix`` and in ``key_encoding`` (a ``"text"`` key must be UTF-8):
        what :meth:`keys` reads back as ``key``.
        """
        if self.key_encoding == "hex":
            text = key.hex()
        elif self.key_encoding == "base64":
            text = base64.b64encode(key).decode("ascii")
        else:
            text = key.decode("utf-8")
        return self.key_prefix + text

    def encode(self, digest: bytes) -> str:
        """A raw HMAC digest as the header carries it, without the prefix."""
        if self.encoding == "hex":
            return digest.hex()
        return base64.b64encode(digest).decode("ascii")

    # -- receiving -----------------------------------------------------------------

    def verify(
        self,
        bodies: Iterable[bytes],
        headers: Headers,
        keys: Sequence[HmacSha256Key],
        *,
        sender: str,
    ) -> str:
        """Check the delivery's signature; the matched digest, as lower-case hex.

        ``bodies`` are the byte strings the sender may have signed as ``{body}``, most
        likely first (the raw body; Moonsense's form payload after it); it is read
        lazily, only as far as the first match.  ``sender`` names the sender in the
        refusals.  Raises :class:`MissingCredentials`, :class:`MalformedSignature`,
        :class:`InvalidSignature` or :class:`TimestampOutOfRange`.
        """
        signatures, stamp = self._split(self._signature(headers, sender), headers, sender)
        hexed = self.encoding == "hex"
        prefix = self.signature_prefix.lower() if hexed else self.signature_prefix
        received = [
            (s.lower() if hexed else s).encode("utf-8", "surrogatepass") for s in signatures
        ]
        for body in bodies:
            message = self._message(body, headers, stamp, sender)
            for key in keys:
                if hexed:
                    matched = hexdigest = key.hexdigest(message)
                else:
                    digest = key.digest(message)
                    matched, hexdigest = self.encode(digest), digest.hex()
                expected = (prefix + matched).encode("ascii")
                # Every candidate goes through the constant-time compare, prefix
                # included, before anything about its form is judged.
                for candidate in received:
                    if hmac.compare_digest(expected, candidate):
                        if stamp is not None:
                            self._check_window(stamp)
                        return hexdigest
        raise self._mismatch(received, prefix.encode("utf-8"))

    def check_headers(self, headers: Headers, *, sender: str) -> None:
        """Before the body is read: refuse what :meth:`verify` would refuse from the headers.

        The signature header is there and holds signatures (at most
        ``max_signatures``), and so are the timestamp and every other header the
        signature covers (a signed id not empty).  Raises :class:`MissingCredentials`
        or :class:`MalformedSignature`, as :meth:`verify` would for these headers.
        """
        _, stamp = self._split(self._signature(headers, sender), headers, sender)
        # The signed content of an empty body reads every signed header as verify()
        # does, in the same order, with the same errors.
        self._message(b"", headers, stamp, sender)

    def _signature(self, headers: Headers, sender: str) -> str:
        """The signature header's value; :class:`MissingCredentials` without one."""
        header = self.signature_header
        value = read_header(headers, header)
        if value is None:
            raise MissingCredentials(
                f"the delivery has no {header} header, but this handler has a secret: "
                f"{sender} signs every delivery once a secret is set on its side"
            )
        return value

    def _split(self, value: str, headers: Headers, sender: str) -> tuple[list[str], str | None]:
        """The signatures of the header and the timestamp text (``None`` without one)."""
        header = self.signature_header
        separator = self.signature_separator
        items = [value.strip()] if separator is None else value.split(separator)
        items = [item.strip() for item in items if item.strip()]
        if not items:
            raise MalformedSignature(f"the {header} header is empty")
        stamp_header = self.timestamp_header
        stamp: str | None = None
        if stamp_header is not None and self.timestamp_inside:
            prefix = self.timestamp_prefix
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
                    f"the delivery has no {stamp_header} header; {sender} signs one"
                )
            stamp = stamp.strip()
        if len(items) > self.max_signatures:
            raise MalformedSignature(
                f"the {header} header holds {len(items)} signatures; at most "
                f"{self.max_signatures} are accepted"
            )
        if stamp is not None and not (
            stamp.isascii() and stamp.isdigit() and len(stamp) <= _MAX_TIMESTAMP_DIGITS
        ):
            raise MalformedSignature(
                f"the {stamp_header} timestamp must be Unix seconds (digits only)"
            )
        return items, stamp

    def _message(self, body: bytes, headers: Headers, stamp: str | None, sender: str) -> bytes:
        """The bytes the sender signed, from the ``signed_content`` template."""
        parts = self._parts
        if len(parts) == 1:
            return body  # "{body}": no copy
        stamp_header = (self.timestamp_header or "").lower()
        id_header = (self.id_header or "").lower()
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
                        f"the delivery has no {value} header; {sender} signs one"
                    )
                text = found.strip()
                if not text and value == id_header:
                    # The signed id is the de-duplication key: an empty one would key
                    # the delivery on nothing the sender chose (and the Standard
                    # Webhooks specification requires one).
                    raise MalformedSignature(
                        f"the {self.id_header} header is empty; {sender} "
                        "signs the message's id there"
                    )
            try:
                chunks.append(text.encode("utf-8"))
            except UnicodeEncodeError:
                raise MalformedSignature("a signed header of the delivery is not text") from None
        return b"".join(chunks)

    def _check_window(self, stamp: str) -> None:
        received = RECEIVED_AT.get()
        age = (self.clock() if received is None else received) - int(stamp)
        if abs(age) > self.tolerance:
            when = f"{age:.0f} s ago" if age > 0 else f"{-age:.0f} s in the future"
            raise TimestampOutOfRange(
                f"the delivery was signed {when}, outside the {self.tolerance:g} s window: "
                "a replay, or a clock that is off (check NTP on both sides)"
            )

    def _mismatch(self, received: list[bytes], prefix: bytes) -> Exception:
        """Why nothing matched, judged only after every constant-time compare."""
        header = self.signature_header
        if self.encoding == "hex":
            digits, size, unit = _HEX_DIGITS, 64, "hex digits"
        else:
            digits, size, unit = _BASE64_DIGITS, 44, "base64 characters"
        form = f"{self.signature_prefix}<{size} {unit}>"
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

    def signed_time(self, headers: Headers) -> datetime | None:
        """The signed timestamp of a verified delivery, or ``None`` without one."""
        if self.timestamp_header is None:
            return None
        value = headers.get(self.timestamp_header) or ""
        if self.timestamp_inside:
            items = (item.strip() for item in value.split(self.signature_separator or ","))
            prefix = self.timestamp_prefix
            value = next((i[len(prefix) :] for i in items if i.startswith(prefix)), "")
        return from_unix(int(value)) if value.strip().isdigit() else None

    # -- imitating the sender --------------------------------------------------------

    def sign(
        self,
        body: bytes,
        secret: SecretLike,
        headers: Mapping[str, str] | None = None,
        *,
        timestamp: float | None = None,
    ) -> dict[str, str]:
        """The signature header (and a timestamp header) the sender adds to ``headers``.

        Signed with the first of ``secret``'s values; ``headers`` are the delivery's
        other headers, which ``signed_content`` may name; ``timestamp`` is Unix
        seconds, ``clock()`` by default.
        """
        (first, *_) = normalize_secrets(secret, name="secret")
        (key,) = self.keys((first,))
        added: dict[str, str] = {}
        stamp: str | None = None
        if self.timestamp_header is not None:
            stamp = str(int(self.clock() if timestamp is None else timestamp))
            if not self.timestamp_inside:
                added[self.timestamp_header] = stamp
        message = self._message(body, Headers({**(headers or {}), **added}), stamp, "the sender")
        signature = self.signature_prefix + self.encode(hmac.digest(key, message, "sha256"))
        if stamp is not None and self.timestamp_inside:
            separator = self.signature_separator or ","
            signature = self.timestamp_prefix + stamp + separator + signature
        added[self.signature_header] = signature
        return added


def _literal(text: str) -> list[Part]:
    if "{" in text or "}" in text:
        raise ValueError("signed_content has an unmatched brace; placeholders are {name}")
    return [("text", text)] if text else []


def check_text(value: object, option: str, *, empty: bool = False) -> str:
    """``value`` if it is a string fit for an option: no control characters, not empty."""
    if not isinstance(value, str):
        raise TypeError(f"{option} must be a str, not {type(value).__name__}")
    if not value and not empty:
        raise ValueError(f"{option} must not be empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{option}={value!r} holds control characters")
    return value


def check_header_name(value: object, option: str) -> None:
    """Refuse ``value`` unless it is an HTTP header name (RFC 9110's token)."""
    if not _TOKEN.fullmatch(check_text(value, option)):
        raise ValueError(f"{option}={value!r} is not an HTTP header name")
