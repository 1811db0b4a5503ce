"""Decoding bodies, and read-only views of the decoded JSON.

Theory of operation: the body is decoded once, strictly (UTF-8, no ``NaN``), by the
standard library's C decoder, and every way that can fail becomes a typed
:class:`~hookshield.MalformedPayload`.  The C decoder guards its own recursion, so a
hostile nesting depth ends as :class:`~hookshield.PayloadTooDeep`, never as a stray
``RecursionError``; nothing in hookshield walks the data recursively afterwards.

Events hand the decoded data out through :class:`FrozenObject` and
:class:`FrozenArray`: thin wrappers made on access, so a 10,000-record batch costs
one wrapper per record, and handlers can share an event without one of them changing
what the next one sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NoReturn, overload

from ._errors import EmptyBody, InvalidEncoding, MalformedPayload, PayloadTooDeep

__all__ = ["FrozenArray", "FrozenObject", "decode_json", "freeze", "thaw"]


def _reject_constant(name: str) -> NoReturn:
    # NaN and Infinity are not JSON (RFC 8259 section 6); Python accepts them by default.
    raise MalformedPayload(f"the body is not valid JSON: {name} is not a JSON value")


# One decoder, made once: json.loads(s, **kwargs) would build a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decode_json(body: bytes) -> Any:
    """Decode a JSON body strictly, raising a :class:`MalformedPayload` subclass."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEncoding(
            f"the body is not valid UTF-8 (byte {exc.start}): JSON must be UTF-8 encoded"
        ) from None
    # isspace() stops at the first other character; strip() would copy the whole body.
    if not text or text.isspace():
        raise EmptyBody("the body is empty: expected a JSON payload")
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise PayloadTooDeep("the JSON body nests too deeply to be decoded safely") from None
    except json.JSONDecodeError as exc:
        raise MalformedPayload(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:
        # For example an integer longer than sys.get_int_max_str_digits() allows.
        raise MalformedPayload(f"the body is not valid JSON: {exc}") from None


def freeze(value: Any) -> Any:
    """Wrap a decoded JSON value in a read-only view (scalars are returned as they are)."""
    if isinstance(value, dict):
        return FrozenObject(value)
    if isinstance(value, list):
        return FrozenArray(value)
    return value


def thaw(value: Any) -> Any:
    """A mutable deep copy of a frozen view, as plain ``dict`` and ``list``."""
    if isinstance(value, (FrozenObject, FrozenArray)):
        value = value._raw
    if not isinstance(value, (dict, list)):
        return value  # a scalar is its own copy
    # Iterative, not copy.deepcopy: the decoder accepts nesting as deep as the C
    # stack allows, deeper than a recursive copy in Python could follow.
    root: Any = {} if isinstance(value, dict) else []
    stack: list[tuple[Any, Any]] = [(value, root)]
    while stack:
        source, target = stack.pop()
        pairs = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in pairs:
            if isinstance(item, (dict, list)):
                child: Any = {} if isinstance(item, dict) else []
                stack.append((item, child))
                item = child
            if isinstance(target, dict):
                target[key] = item
            else:
                target.append(item)
    return root


class FrozenObject(Mapping[str, Any]):
    """A read-only view of a JSON object; nested objects and arrays are read-only too."""

    __slots__ = ("_raw",)

    def __init__(self, raw: dict[str, Any] | None = None) -> None:
        self._raw: dict[str, Any] = {} if raw is None else raw

    def __getitem__(self, key: str) -> Any:
        return freeze(self._raw[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, key: object) -> bool:
        return key in self._raw

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (FrozenObject, FrozenArray)):
            return self._raw == other._raw
        if isinstance(other, Mapping):
            return self._raw == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        raise TypeError("unhashable type: 'FrozenObject'")

    def __repr__(self) -> str:
        return f"FrozenObject({self._raw!r})"

    def thaw(self) -> dict[str, Any]:
        """A mutable deep copy as a plain ``dict``."""
        result: dict[str, Any] = thaw(self)
        return result


class FrozenArray(Sequence[Any]):
    """A read-only view of a JSON array."""

    __slots__ = ("_raw",)

    def __init__(self, raw: list[Any] | None = None) -> None:
        self._raw: list[Any] = [] if raw is None else raw

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> FrozenArray: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return FrozenArray(self._raw[index])
        return freeze(self._raw[index])

    def __len__(self) -> int:
        return len(self._raw)

    def __iter__(self) -> Iterator[Any]:
        return map(freeze, self._raw)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenArray):
            return self._raw == other._raw
        if isinstance(other, (list, tuple)):
            return self._raw == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        raise TypeError("unhashable type: 'FrozenArray'")

    def __repr__(self) -> str:
        return f"FrozenArray({self._raw!r})"

    def thaw(self) -> list[Any]:
        """A mutable deep copy as a plain ``list``."""
        result: list[Any] = thaw(self)
        return result
