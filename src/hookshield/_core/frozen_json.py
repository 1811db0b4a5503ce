"""Decoding bodies, and read-only views of the decoded JSON.

Theory of operation: the body is decoded once, strictly (UTF-8, no ``NaN``), by the
standard library's C decoder (or first by msgspec's, with ``hookshield[speedups]``,
falling back to the standard library's for anything msgspec refuses), and every way
that can fail becomes a typed
:class:`~hookshield.MalformedPayload`.  The C decoder guards its own recursion, so a
hostile nesting depth ends as :class:`~hookshield.PayloadTooDeep`, never as a stray
``RecursionError``; nothing in hookshield walks the data recursively afterwards.

Events hand the decoded data out through :class:`FrozenObject` and
:class:`FrozenArray`: thin wrappers made on access, so a 10,000-record batch costs
one wrapper per record, and handlers can share an event without one of them changing
what the next one sees.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NoReturn, overload

from .errors import EmptyBody, InvalidEncoding, MalformedPayload, PayloadTooDeep

__all__ = [
    "FrozenArray",
    "FrozenObject",
    "decode_json",
    "freeze",
    "iter_json_array",
    "json_backend",
    "thaw",
    "unwrap",
]


def _reject_constant(name: str) -> NoReturn:
    # NaN and Infinity are not JSON (RFC 8259 section 6); Python accepts them by default.
    raise MalformedPayload(f"the body is not valid JSON: {name} is not a JSON value")


# One decoder, made once: json.loads(s, **kwargs) would build a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# Its C scanner, called directly: JSONDecoder.decode adds two regex matches and two
# Python calls around it, about a tenth of the whole decode of a 1 KB body.
# (JSONDecoder.__init__ sets it; the type stubs do not declare it.)
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
# JSON's whitespace (RFC 8259 section 2); str.isspace() and str.strip() know more.
_JSON_SPACE = " \t\n\r"
_SPACE = re.compile(r"[ \t\n\r]+")


def _speedups() -> Callable[[bytes], Any] | None:
    # msgspec, when installed (pip install 'hookshield[speedups]'), decodes about
    # three times faster.  It is used only where its answer is the standard
    # library's: anything it refuses (integers past Python's digit limit, 1e400, NaN,
    # lone surrogate escapes, deep nesting, every malformed body) is decoded again
    # by the standard library, which accepts it or raises the usual typed error.
    # tests/test_properties.py holds the two to the same values and types.
    if os.environ.get("HOOKSHIELD_NO_SPEEDUPS"):
        return None
    try:
        msgspec = importlib.import_module("msgspec")
    except ImportError:
        return None
    decode: Callable[[bytes], Any] = msgspec.json.Decoder().decode
    return decode


# msgspec is imported when the first body is decoded (or json_backend() is asked), so
# that ``import hookshield`` loads no module outside the standard library.
_FAST: Callable[[bytes], Any] | None = None
_CHOSEN = False


def _fast() -> Callable[[bytes], Any] | None:
    global _FAST, _CHOSEN
    if not _CHOSEN:
        _FAST, _CHOSEN = _speedups(), True
    return _FAST


def json_backend() -> str:
    """The decoder of JSON bodies: ``"msgspec"`` with ``hookshield[speedups]``, else ``"json"``.

    Setting ``HOOKSHIELD_NO_SPEEDUPS=1`` before hookshield is imported keeps the
    standard library's decoder.  Either way a body decodes to the same values, and
    a body refused is refused with the same message.
    """
    return "json" if _fast() is None else "msgspec"


def decode_json(body: bytes) -> Any:
    """Decode a JSON body strictly, raising a :class:`MalformedPayload` subclass."""
    fast = _FAST if _CHOSEN else _fast()
    if fast is not None:
        try:
            value = fast(body)
        except Exception:  # noqa: S110 - the standard library decides, below
            pass
        else:
            return value
    text = _text(body)
    start = _skip_leading_space(text)
    try:
        value, end = _SCAN(text, start)
    except (StopIteration, RecursionError, ValueError) as exc:
        raise _decode_error(exc, text) from None
    # Only the tail is copied, and it is empty or a newline for every sender.
    if end != len(text) and text[end:].strip(_JSON_SPACE):
        raise _malformed(text, "Extra data", len(text) - len(text[end:].lstrip(_JSON_SPACE)))
    return value


def iter_json_array(body: bytes, *, not_array: str) -> Iterator[Any]:
    """The elements of a JSON array body, decoded one at a time as they are read.

    Only the element being read is held in memory besides the body's text, so a
    consumer that lets each element go keeps a 10,000-record batch at about the size
    of its body, where decoding it whole takes four times that.  The body's encoding,
    emptiness and first character are checked before this returns; an element that
    is not valid JSON raises :class:`MalformedPayload` when iteration reaches it, and
    a body that is valid JSON but no array raises it at once, with ``not_array``.
    """
    text = _text(body)
    start = _skip_leading_space(text)
    if text[start] != "[":
        decode_json(body)  # malformed JSON is reported as such, not as "no array"
        raise MalformedPayload(not_array)
    return _array_elements(text, start + 1)


def _array_elements(text: str, index: int) -> Iterator[Any]:
    scan, space, skip = _SCAN, _JSON_SPACE, _skip_space
    if text[index : index + 1] in space:
        index = skip(text, index)
    if text[index : index + 1] == "]":
        index += 1
    else:
        while True:
            try:
                value, index = scan(text, index)
            except (StopIteration, RecursionError, ValueError) as exc:
                raise _decode_error(exc, text) from None
            yield value
            # A test of one character first: the regex match costs more, per record,
            # than everything else in this loop, and compact JSON has no spaces.
            if text[index : index + 1] in space:
                index = skip(text, index)
            char = text[index : index + 1]
            if char == ",":
                index += 1
                if text[index : index + 1] in space:
                    index = skip(text, index)
            elif char == "]":
                index += 1
                break
            else:
                raise _malformed(text, "Expecting ',' delimiter", index)
    if index != len(text) and text[index:].strip(space):
        raise _malformed(text, "Extra data", len(text) - len(text[index:].lstrip(space)))


def _skip_space(text: str, index: int) -> int:
    match = _SPACE.match(text, index)
    return match.end() if match else index


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEncoding(
            f"the body is not valid UTF-8 (byte {exc.start}): JSON must be UTF-8 encoded"
        ) from None


def _skip_leading_space(text: str) -> int:
    if text[:1] not in _JSON_SPACE:  # an empty text is "in" any string
        return 0
    # Measured on the stripped copy's length, so only leading whitespace is skipped.
    start = len(text) - len(text.lstrip(_JSON_SPACE))
    if start == len(text):
        raise EmptyBody("the body is empty: expected a JSON payload")
    return start


def _decode_error(exc: BaseException, text: str) -> MalformedPayload:
    """The typed error for what the C scanner raised."""
    if isinstance(exc, StopIteration):
        return _malformed(text, "Expecting value", exc.value)
    if isinstance(exc, RecursionError):
        return PayloadTooDeep("the JSON body nests too deeply to be decoded safely")
    if isinstance(exc, json.JSONDecodeError):
        return MalformedPayload(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        )
    # For example an integer longer than sys.get_int_max_str_digits() allows.
    return MalformedPayload(f"the body is not valid JSON: {exc}")


def _malformed(text: str, message: str, position: int) -> MalformedPayload:
    # json.JSONDecodeError computes the line and column as the decoder would report them.
    exc = json.JSONDecodeError(message, text, position)
    return MalformedPayload(
        f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    )


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
        value = unwrap(value)
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
    """A read-only view of a JSON object; nested objects and arrays are read-only too.

    Keys read as items (``data["session_id"]``) and, where a key is an identifier,
    as attributes (``data.session_id``), as MindPeeker's own SDK offers.  The
    mapping's own methods win over keys: ``data.items`` is always the method, and a
    key named ``items`` is read as ``data["items"]``.  A missing key raises
    ``KeyError`` as an item and ``AttributeError`` as an attribute.  Nothing can be
    set or deleted.
    """

    __slots__ = ("_raw",)

    _raw: dict[str, Any]

    def __init__(self, raw: dict[str, Any] | None = None) -> None:
        object.__setattr__(self, "_raw", {} if raw is None else raw)

    def __getitem__(self, key: str) -> Any:
        return freeze(self._raw[key])

    def __getattr__(self, name: str) -> Any:
        # Called only when normal lookup fails, so methods and slots are never
        # shadowed.  Dunder names stay protocol names (copy, pickle and friends probe
        # them), never keys.
        if name != "_raw" and not (name.startswith("__") and name.endswith("__")):
            try:
                return freeze(self._raw[name])
            except KeyError:
                pass
        raise AttributeError(f"the JSON object has no key {name!r}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a FrozenObject is read-only; thaw() it for a mutable copy")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a FrozenObject is read-only; thaw() it for a mutable copy")

    def __dir__(self) -> list[str]:
        keys = (key for key in self._raw if key.isidentifier() and not key.startswith("__"))
        return sorted({*object.__dir__(self), *keys})

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

    def __reduce__(self) -> tuple[type[FrozenObject], tuple[dict[str, Any]]]:
        # copy and pickle would otherwise restore the slot through __setattr__.
        return (FrozenObject, (self._raw,))

    def __repr__(self) -> str:
        return f"FrozenObject({self._raw!r})"

    def thaw(self) -> dict[str, Any]:
        """A mutable deep copy as a plain ``dict``."""
        result: dict[str, Any] = thaw(self)
        return result


@overload
def unwrap(view: FrozenObject) -> dict[str, Any]: ...
@overload
def unwrap(view: FrozenArray) -> list[Any]: ...
def unwrap(view: FrozenObject | FrozenArray) -> dict[str, Any] | list[Any]:
    """The decoded value behind a view, itself, not a copy.

    For hookshield's typed properties, which read it and never change it: they
    test a field's type and convert it without building a view per access.  Code
    that may change the value wants :func:`thaw`.
    """
    return view._raw


class FrozenArray(Sequence[Any]):
    """A read-only view of a JSON array."""

    __slots__ = ("_raw",)

    _raw: list[Any]

    def __init__(self, raw: list[Any] | None = None) -> None:
        object.__setattr__(self, "_raw", [] if raw is None else raw)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a FrozenArray is read-only; thaw() it for a mutable copy")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a FrozenArray is read-only; thaw() it for a mutable copy")

    def __reduce__(self) -> tuple[type[FrozenArray], tuple[list[Any]]]:
        return (FrozenArray, (self._raw,))

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
