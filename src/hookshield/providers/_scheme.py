"""How a sender signs with HMAC-SHA256: the one verifier and the one signer of every sender.

Theory of operation: an :class:`HmacScheme` is a frozen description of a signature
alone (which header, which prefix and encoding, what is signed, how the key is
written, the signed timestamp and its window); it says nothing of the payload.  A
scheme may also carry ed25519 signatures of the same signed content under a prefix of
their own (Standard Webhooks' ``v1a,``), checked with public keys (``whpk_<base64>``)
through the optional ``cryptography`` package (``_ed25519``).  Any
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
  the signature matched, and in both directions, within the scheme's ``tolerance``
  unless the handler gives its own.  An ed25519 signature is checked by its public
  key (no secret is involved), and only where the handler holds public keys; an HMAC
  one only where it holds secrets.
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

from .._core.auth import RECEIVED_AT, HmacSha256Key, SecretLike, normalize_secrets, read_header
from .._core.ed25519 import KEY_SIZE, SIGNATURE_SIZE, Ed25519Key, Ed25519SigningKey
from .._core.errors import (
    InvalidSignature,
    MalformedSignature,
    MissingCredentials,
    TimestampOutOfRange,
)
from .._core.events import from_unix
from .._core.headers import Headers

__all__ = [
    "MAX_SIGNATURES",
    "PRIVATE_KEY_PREFIX",
    "PUBLIC_KEY_PREFIX",
    "HmacScheme",
    "Part",
    "check_header_name",
    "check_text",
]

#: The most signatures one header may carry (key rotation needs two or three).
MAX_SIGNATURES = 64
# RFC 9110 section 5.6.2: a header name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_HEX_DIGITS = frozenset("0123456789abcdef")
_BASE64_DIGITS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
# Unix seconds up to the year 33658; longer digits are no timestamp a sender sends.
_MAX_TIMESTAMP_DIGITS = 12
_HMAC_SIZE = 32  # bytes of an HMAC-SHA256
#: How the Standard Webhooks specification writes an ed25519 public and private key.
PUBLIC_KEY_PREFIX = "whpk_"
PRIVATE_KEY_PREFIX = "whsk_"

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
    * ``ed25519_prefix`` (``"v1a,"``): the prefix of ed25519 signatures of the same
      signed content, in the same header and ``encoding``, checked with public keys
      written ``whpk_<base64>`` (the ``hookshield[ed25519]`` extra).
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
    ed25519_prefix: str | None = None
    # Derived once from the fields above: the template's pieces, and the signature
    # prefix as received signatures are compared with it (lower-case for hex).
    _parts: tuple[Part, ...] = field(init=False, repr=False, compare=False)
    _prefix: str = field(init=False, repr=False, compare=False)

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
        self._check_ed25519()
        object.__setattr__(self, "_parts", self._parse_template())
        hexed = self.encoding == "hex"
        object.__setattr__(
            self, "_prefix", self.signature_prefix.lower() if hexed else self.signature_prefix
        )

    def _check_ed25519(self) -> None:
        prefix = self.ed25519_prefix
        if prefix is None:
            return
        check_text(prefix, "ed25519_prefix")
        ours = self.signature_prefix
        if prefix.lower().startswith(ours.lower()) or ours.lower().startswith(prefix.lower()):
            raise ValueError(
                f"signature_prefix={ours!r} and ed25519_prefix={prefix!r} must tell the "
                "signatures apart (as 'v1,' and 'v1a,' do)"
            )
        separator = self.signature_separator
        if separator is not None and separator in prefix:
            raise ValueError(f"ed25519_prefix={prefix!r} contains the separator {separator!r}")

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
        if self.ed25519_prefix is not None:
            if secret.startswith(PUBLIC_KEY_PREFIX.encode()):
                raise ValueError(
                    f"{shown} is an ed25519 public key ({PUBLIC_KEY_PREFIX}...), for "
                    f"'{self.ed25519_prefix}' signatures: pass it as public_key=, not secret="
                )
            if secret.startswith(PRIVATE_KEY_PREFIX.encode()):
                raise ValueError(
                    f"{shown} is an ed25519 private key ({PRIVATE_KEY_PREFIX}...), which "
                    f"stays with the sender: pass its public key ({PUBLIC_KEY_PREFIX}...) "
                    "as public_key="
                )
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

    def public_keys(self, values: tuple[bytes, ...], *, sender: str = "") -> tuple[Ed25519Key, ...]:
        """The ed25519 public keys of ``public_key=`` values, ``whpk_<base64>`` (32 bytes).

        The prefix may be left out.  ``ValueError`` for a value that is no such key
        (saying what to pass instead), ``ImportError`` without the ``cryptography``
        package (the ``hookshield[ed25519]`` extra).
        """
        if self.ed25519_prefix is None:
            raise ValueError(f"{sender or 'this sender'} signs with no ed25519 key")
        return tuple(Ed25519Key(self._public_key(value, sender)) for value in values)

    def _public_key(self, value: bytes, sender: str) -> bytes:
        shown = f"the {sender} public key" if sender else "the public key"
        if value.startswith(PRIVATE_KEY_PREFIX.encode()):
            raise ValueError(
                f"{shown} is a private key ({PRIVATE_KEY_PREFIX}...), which stays with the "
                f"sender: pass its public key ({PUBLIC_KEY_PREFIX}...)"
            )
        if self.key_prefix and value.startswith(self.key_prefix.encode()):
            raise ValueError(
                f"{shown} is an HMAC secret ({self.key_prefix}...): pass it as secret="
            )
        raw = _base64(value.removeprefix(PUBLIC_KEY_PREFIX.encode()))
        if raw is None or len(raw) != KEY_SIZE:
            raise ValueError(
                f"{shown} is not {PUBLIC_KEY_PREFIX}<base64 of 32 bytes>, as an ed25519 "
                "public key is written"
            )
        return raw

    def signing_key(self, value: SecretLike) -> Ed25519SigningKey:
        """The ed25519 private key ``value``, ``whsk_<base64>``, to sign as the sender does."""
        (first, *_) = normalize_secrets(value, name="private_key")
        raw = _base64(first.removeprefix(PRIVATE_KEY_PREFIX.encode()))
        if raw is None:
            raise ValueError(f"the private key is not {PRIVATE_KEY_PREFIX}<base64>")
        return Ed25519SigningKey(raw)

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
        public_keys: Sequence[Ed25519Key] = (),
        tolerance: float | None = None,
    ) -> str:
        """Check the delivery's signature; the matched digest, as lower-case hex.

        ``bodies`` are the byte strings the sender may have signed as ``{body}``, most
        likely first (the raw body; Moonsense's form payload after it); it is read
        lazily, only as far as the first match.  ``keys`` check the HMAC signatures,
        ``public_keys`` the ed25519 ones (whose hex is then returned); ``tolerance``
        (seconds) replaces the scheme's window.  ``sender`` names the sender in the
        refusals.  Raises :class:`MissingCredentials`, :class:`MalformedSignature`,
        :class:`InvalidSignature` or :class:`TimestampOutOfRange`.
        """
        signatures, stamp = self._split(headers, sender)
        hexed = self.encoding == "hex"
        prefix = self._prefix
        received = [
            (s.lower() if hexed else s).encode("utf-8", "surrogatepass") for s in signatures
        ]
        ed25519 = self._ed25519_signatures(signatures) if public_keys else []
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
                            self._check_window(stamp, tolerance)
                        return hexdigest
            for signature in ed25519:
                for public_key in public_keys:
                    if public_key.verify(signature, message):
                        if stamp is not None:
                            self._check_window(stamp, tolerance)
                        return signature.hex()
        raise self._mismatch(signatures, by_hmac=bool(keys), by_ed25519=bool(public_keys))

    def _ed25519_signatures(self, signatures: list[str]) -> list[bytes]:
        """The decoded ed25519 signatures among ``signatures``; ill-formed ones are skipped."""
        prefix = self.ed25519_prefix
        if prefix is None:
            return []
        decoded = (self._decode(text) for text in _after(signatures, prefix, self.encoding))
        return [raw for raw in decoded if raw is not None and len(raw) == SIGNATURE_SIZE]

    def _decode(self, text: str) -> bytes | None:
        """A signature's bytes from its text in the header; ``None`` if it is not encoded so."""
        if not text.isascii():
            return None
        if self.encoding == "base64":
            return _base64(text.encode("ascii"))
        try:
            return bytes.fromhex(text)
        except ValueError:
            return None

    def check_headers(self, headers: Headers, *, sender: str) -> None:
        """Before the body is read: refuse what :meth:`verify` would refuse from the headers.

        The signature header is there and holds signatures (at most
        ``max_signatures``), and so are the timestamp and every other header the
        signature covers (a signed id not empty).  Raises :class:`MissingCredentials`
        or :class:`MalformedSignature`, as :meth:`verify` would for these headers.
        """
        _, stamp = self._split(headers, sender)
        # The signed content of an empty body reads every signed header as verify()
        # does, in the same order, with the same errors.
        self._message(b"", headers, stamp, sender)

    def _split(self, headers: Headers, sender: str) -> tuple[list[str], str | None]:
        """The signatures of the signature header and the timestamp text (``None`` without one).

        :class:`MissingCredentials` without the header (or the timestamp's).
        """
        header = self.signature_header
        value = read_header(headers, header)
        if value is None:
            raise MissingCredentials(
                f"the delivery has no {header} header, but this handler has a secret: "
                f"{sender} signs every delivery once a secret is set on its side"
            )
        separator = self.signature_separator
        pieces = (value,) if separator is None else value.split(separator)
        items = [item for item in map(str.strip, pieces) if item]
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

    def _check_window(self, stamp: str, tolerance: float | None) -> None:
        window = self.tolerance if tolerance is None else tolerance
        received = RECEIVED_AT.get()
        age = (self.clock() if received is None else received) - int(stamp)
        if abs(age) > window:
            when = f"{age:.0f} s ago" if age > 0 else f"{-age:.0f} s in the future"
            raise TimestampOutOfRange(
                f"the delivery was signed {when}, outside the {window:g} s window: "
                "a replay, or a clock that is off (check NTP on both sides)"
            )

    def _mismatch(self, signatures: list[str], *, by_hmac: bool, by_ed25519: bool) -> Exception:
        """Why nothing matched, judged only after every signature was checked."""
        header = self.signature_header
        # The kinds of signature this handler checks: prefix, bytes, what makes one.
        kinds: list[tuple[str, int, str]] = []
        if by_hmac:
            kinds.append((self.signature_prefix, _HMAC_SIZE, "an HMAC-SHA256"))
        if by_ed25519 and self.ed25519_prefix is not None:
            kinds.append((self.ed25519_prefix, SIGNATURE_SIZE, "an ed25519 signature"))
        forms = " or ".join(f"'{self._form(prefix, size)}'" for prefix, size, _ in kinds)
        ours = [
            (text, size)
            for prefix, size, _ in kinds
            for text in _after(signatures, prefix, self.encoding)
        ]
        if not ours:
            return MalformedSignature(
                f"the {header} header holds no signature like {forms}"
                + self._other_kind(signatures, by_hmac=by_hmac)
            )
        if not any(self._well_formed(text, size) for text, size in ours):
            what = " or ".join(name for _, _, name in kinds)
            return MalformedSignature(f"the {header} signature is not of the form {forms} ({what})")
        return InvalidSignature(
            f"the {header} signature does not match the body. Check that you pass the raw "
            "request body, byte for byte as received (not JSON your framework parsed and "
            "re-serialised), and that the secret is the one configured at the sender."
        )

    def _form(self, prefix: str, size: int) -> str:
        """How a signature of ``size`` bytes is written: ``'v1,<44 base64 characters>'``."""
        if self.encoding == "hex":
            return f"{prefix}<{2 * size} hex digits>"
        return f"{prefix}<{4 * math.ceil(size / 3)} base64 characters>"

    def _well_formed(self, text: str, size: int) -> bool:
        if self.encoding == "hex":
            return len(text) == 2 * size and _HEX_DIGITS.issuperset(text.lower())
        return len(text) == 4 * math.ceil(size / 3) and _BASE64_DIGITS.issuperset(text)

    def _other_kind(self, signatures: list[str], *, by_hmac: bool) -> str:
        """Where the header holds only the kind of signature the handler does not check."""
        ed_prefix = self.ed25519_prefix
        if ed_prefix is None:
            return ""
        if by_hmac and _after(signatures, ed_prefix, self.encoding):
            return (
                f"; its '{ed_prefix}' signatures are ed25519: pass the sender's public key "
                "as public_key= to check them"
            )
        if not by_hmac and _after(signatures, self.signature_prefix, self.encoding):
            return (
                f"; its '{self.signature_prefix}' signatures are HMAC: pass the secret as "
                "secret= to check them"
            )
        return ""

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
        secret: SecretLike | None,
        headers: Mapping[str, str] | None = None,
        *,
        timestamp: float | None = None,
        private_key: SecretLike | None = None,
    ) -> dict[str, str]:
        """The signature header (and a timestamp header) the sender adds to ``headers``.

        Signed with the first of ``secret``'s values, and with ``private_key``
        (``whsk_<base64>``, for a scheme with ed25519 signatures) too where given;
        ``headers`` are the delivery's other headers, which ``signed_content`` may
        name; ``timestamp`` is Unix seconds, ``clock()`` by default.
        """
        if secret is None and private_key is None:
            raise ValueError("pass secret= (or private_key=, for ed25519) to sign with")
        if private_key is not None and self.ed25519_prefix is None:
            raise ValueError("this scheme signs with no ed25519 key: pass secret=")
        added: dict[str, str] = {}
        stamp: str | None = None
        if self.timestamp_header is not None:
            stamp = str(int(self.clock() if timestamp is None else timestamp))
            if not self.timestamp_inside:
                added[self.timestamp_header] = stamp
        message = self._message(body, Headers({**(headers or {}), **added}), stamp, "the sender")
        signatures: list[str] = []
        if secret is not None:
            (first, *_) = normalize_secrets(secret, name="secret")
            (key,) = self.keys((first,))
            signatures.append(
                self.signature_prefix + self.encode(hmac.digest(key, message, "sha256"))
            )
        if private_key is not None:
            signed = self.signing_key(private_key).sign(message)
            signatures.append(f"{self.ed25519_prefix}{self.encode(signed)}")
        signature = (self.signature_separator or " ").join(signatures)
        if stamp is not None and self.timestamp_inside:
            separator = self.signature_separator or ","
            signature = self.timestamp_prefix + stamp + separator + signature
        added[self.signature_header] = signature
        return added


def _after(signatures: list[str], prefix: str, encoding: str) -> list[str]:
    """What follows ``prefix`` in the signatures that start with it (a hex one in any case)."""
    if encoding == "hex":
        low = prefix.lower()
        return [item[len(low) :].lower() for item in signatures if item.lower().startswith(low)]
    return [item[len(prefix) :] for item in signatures if item.startswith(prefix)]


def _base64(data: bytes) -> bytes | None:
    """Standard base64, its padding optional; ``None`` if it is not."""
    text = data.strip()
    try:
        return base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except (ValueError, binascii.Error):
        return None


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
