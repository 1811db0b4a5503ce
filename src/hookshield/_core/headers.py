"""A case-insensitive, read-only view of a delivery's headers.

HTTP header names are case-insensitive (RFC 9110, section 5.1), and every framework
hands them over differently: WSGI as ``HTTP_X_MOCO_SIGNATURE``, ASGI as lower-case byte
pairs, Django as a case-insensitive dict.  The core only ever sees this one type.

A header given more than once is remembered, so that a sender's authentication can
refuse a repeated signature rather than pick one of them.

What the caller hands over is the caller's: a wrong type there (``None``, a string,
an ``email.message.Message``, a header value that is a number) is a bug in the
calling code, and raises ``TypeError``.  Answering it with a 400 would be final for
the sender, and every delivery would be lost to that bug.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["Headers", "HeadersLike", "as_headers", "lowercase_headers"]

_NO_REPEATS: dict[str, list[str]] = {}

# Text or bytes names and values; see Headers.
HeadersLike = Mapping[Any, Any] | Iterable[tuple[Any, Any]]


class Headers(Mapping[str, str]):
    """Headers keyed by lower-case name.

    Build it from a mapping (a dict, Django's or Starlette's ``request.headers``) or
    from an iterable of ``(name, value)`` pairs (ASGI's ``scope["headers"]``,
    Werkzeug's ``request.headers``, ``list(message.items())`` of an
    ``email.message.Message``); with pairs, a name given more than once keeps all its
    values (:meth:`getall`), and ``headers[name]`` joins them with ``", "`` as RFC 9110
    section 5.3 allows.  Names and values given as ``bytes`` are decoded as Latin-1,
    as ASGI servers send them; a value given as a list or tuple counts as the header
    repeated, and a value of ``None`` as the header absent (what ``.get(name)`` gives
    for a header the request did not carry).  Anything else raises ``TypeError``.
    """

    __slots__ = ("_items", "_repeated")

    _items: dict[str, str]
    _repeated: dict[str, list[str]]

    def __init__(self, headers: HeadersLike = (), *, _lowercase: bool = False) -> None:
        # _lowercase: the caller (an adapter) built a dict of str names already
        # lower-cased and str values, which is then kept as it is, without a copy.
        if _lowercase and type(headers) is dict:
            self._items = headers
            self._repeated = _NO_REPEATS
            return
        # type() before isinstance(): an ABC isinstance check costs as much as
        # lower-casing a whole dict of headers, and a plain dict is the common case.
        if type(headers) is not dict and isinstance(headers, Headers):
            self._items = headers._items
            self._repeated = headers._repeated
            return
        if type(headers) is not dict:
            _check_container(headers)
        if type(headers) is dict or isinstance(headers, Mapping):
            # One str value per str name, lower-cased in a single pass that stops at
            # the first other type; names that differ only in case collapse, and then
            # the general path below keeps both.  (One loop: a comprehension and then
            # an all() over a generator cost twice as much for a request's headers.)
            items: dict[str, str] = {}
            for name, value in headers.items():
                if type(name) is not str or type(value) is not str:
                    break
                items[name.lower()] = value
            else:
                if items and len(items) == len(headers):
                    self._items = items
                    self._repeated = _NO_REPEATS
                    return
        self._items, self._repeated = _collect(
            headers.items() if isinstance(headers, Mapping) else headers, headers
        )

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """The header's value (repeated values joined by ``", "``), or ``default``."""
        return self._items.get(name.lower(), default)

    def getall(self, name: str) -> list[str]:
        """Every value given for ``name``, in order (empty when it is absent)."""
        key = name.lower()
        if key in self._repeated:
            return list(self._repeated[key])
        value = self._items.get(key)
        return [] if value is None else [value]

    def is_repeated(self, name: str) -> bool:
        """Whether ``name`` was given more than once."""
        # Asked of every credential header, and most requests repeat none.
        return bool(self._repeated) and name.lower() in self._repeated

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def redacted(self) -> dict[str, str]:
        """The headers with every credential's value replaced by ``<redacted>``."""
        return {k: ("<redacted>" if _is_secret(k) else v) for k, v in self._items.items()}

    def __repr__(self) -> str:
        # A delivery ends up in logs; its credentials must not.
        return f"Headers({self.redacted()!r})"


def as_headers(headers: HeadersLike) -> Headers:
    """``headers`` itself where it is a :class:`Headers` already, else ``Headers(headers)``."""
    # A plain dict, the common case, is told apart without an ABC isinstance check,
    # which costs as much as lower-casing its few names.
    if type(headers) is not dict and isinstance(headers, Headers):
        return headers
    return Headers(headers)


def lowercase_headers(items: dict[str, str]) -> Headers:
    """``Headers(items)`` for a dict of ``str`` to ``str`` whose names are lower-case.

    For the adapters, which build such a dict from the request themselves: it is
    kept as it is, without a copy.
    """
    return Headers(items, _lowercase=True)


_EXPECTED = "headers must be a mapping or an iterable of (name, value) pairs"


def _check_container(headers: object) -> None:
    """Refuse what iterates but holds no headers: text, bytes, an email message."""
    if headers is None or isinstance(headers, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"{_EXPECTED}, not {type(headers).__name__}")
    # Loaded already if the caller holds a Message (or http.server's HTTPMessage); it
    # iterates over its names only, and an empty one would read as no headers at all.
    message = sys.modules.get("email.message")
    if message is not None and isinstance(headers, message.Message):
        raise TypeError(
            f"{_EXPECTED}, not {type(headers).__name__}: pass list(message.items()), "
            "which keeps a repeated header repeated"
        )


def _collect(pairs: Iterable[Any], given: object) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The values by lower-case name, and every value of the names given repeatedly."""
    items: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    try:
        iterator = iter(pairs)
    except TypeError:
        raise TypeError(f"{_EXPECTED}, not {type(given).__name__}") from None
    for pair in iterator:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(
                f"{_EXPECTED}; this {type(given).__name__} holds a {type(pair).__name__}"
            )
        key = _text(pair[0], "a header name").lower()
        raw = pair[1]
        for value in raw if isinstance(raw, (list, tuple)) else (raw,):
            if value is None:
                continue  # a header the request did not carry
            text = _text(value, f"the value of the header {key!r}")
            if key in items:
                repeated.setdefault(key, [items[key]]).append(text)
                items[key] = items[key] + ", " + text
            else:
                items[key] = text
    return items, repeated


def _text(value: object, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        # ASGI servers send header bytes; HTTP allows only Latin-1 (RFC 9110, 5.5).
        return bytes(value).decode("latin-1")
    raise TypeError(f"{what} must be text or bytes, not {type(value).__name__}")


_SECRET_WORDS = ("authorization", "token", "signature", "secret", "cookie", "key")


def _is_secret(name: str) -> bool:
    return any(word in name for word in _SECRET_WORDS)
