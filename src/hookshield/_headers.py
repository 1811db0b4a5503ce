"""A case-insensitive, read-only view of a delivery's headers.

HTTP header names are case-insensitive (RFC 9110, section 5.1), and every framework
hands them over differently: WSGI as ``HTTP_X_MOCO_SIGNATURE``, ASGI as lower-case byte
pairs, Django as a case-insensitive dict.  The core only ever sees this one type.

A header given more than once is remembered, so that a sender's authentication can
refuse a repeated signature rather than pick one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

__all__ = ["Headers", "HeadersLike"]

_NO_REPEATS: dict[str, list[str]] = {}

HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]


class Headers(Mapping[str, str]):
    """Headers keyed by lower-case name.

    Build it from a mapping or from ``(name, value)`` pairs; with pairs, a name given
    more than once keeps all its values (:meth:`getall`), and ``headers[name]`` joins
    them with ``", "`` as RFC 9110 section 5.3 allows.
    """

    __slots__ = ("_items", "_repeated")

    _items: dict[str, str]
    _repeated: dict[str, list[str]]

    def __init__(self, headers: HeadersLike = ()) -> None:
        # type() before isinstance(): an ABC isinstance check costs as much as
        # lower-casing a whole dict of headers, and a plain dict is the common case.
        if type(headers) is not dict and isinstance(headers, Headers):
            self._items = headers._items
            self._repeated = headers._repeated
            return
        if type(headers) is dict or isinstance(headers, Mapping):
            # One value per name, lower-cased in a single pass; names that differ only
            # in case collapse, and then the slow path below keeps both values.
            items = {name.lower(): value for name, value in headers.items()}
            if len(items) == len(headers):
                self._items = items
                self._repeated = _NO_REPEATS
                return
        items = {}
        repeated: dict[str, list[str]] = {}
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in pairs:
            key = name.lower()
            if key in items:
                repeated.setdefault(key, [items[key]]).append(value)
                items[key] = items[key] + ", " + value
            else:
                items[key] = value
        self._items = items
        self._repeated = repeated

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """The header's value, or ``default`` when it is absent."""
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
        return name.lower() in self._repeated

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        # A delivery ends up in logs; its credentials must not.
        shown = {k: ("<redacted>" if _is_secret(k) else v) for k, v in self._items.items()}
        return f"Headers({shown!r})"


_new = object.__new__
_set_items = Headers.__dict__["_items"].__set__
_set_repeated = Headers.__dict__["_repeated"].__set__


def lowercase_headers(items: dict[str, str]) -> Headers:
    """``Headers(items)`` for a dict whose names are already lower-case, without a copy.

    For the adapters, which build such a dict from the request themselves.
    """
    headers: Headers = _new(Headers)
    _set_items(headers, items)
    _set_repeated(headers, _NO_REPEATS)
    return headers


_SECRET_WORDS = ("authorization", "token", "signature", "secret", "cookie", "key")


def _is_secret(name: str) -> bool:
    return any(word in name for word in _SECRET_WORDS)
