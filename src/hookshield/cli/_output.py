"""What the ``hookshield`` command prints: styled lines, aligned tables, events as text or JSON.

Theory of operation: people get aligned columns, coloured only when stdout is a
terminal and neither ``NO_COLOR`` (https://no-color.org: set and not empty) nor
``TERM=dumb`` says otherwise; scripts get one JSON document per line with ``--json``.
An event is shown through its typed fields (the dataclass fields and properties of
its sender's class), so a new typed property appears here without a change.

Rule: what a sender wrote (event types, ids, fields, paths, header values, error
text) is printed only through :func:`~hookshield._core.text.printable`, which escapes
control characters, so that it cannot command the terminal; every table cell is, and
JSON output escapes what ``json.dumps`` leaves (DEL, C1, lone surrogates, the
bidirectional formatting characters and the line and paragraph separators).  Only
:meth:`Printer.style` writes escape sequences.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import textwrap
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import IO, Any, Final

from .._core.events import Delivery, Event
from .._core.frozen_json import FrozenArray, FrozenObject
from .._core.text import REORDERING, SEPARATORS, printable
from ..providers.petal import BadData
from ._server import Received

__all__ = [
    "MIN_LAST_COLUMN",
    "Printer",
    "delivery_json",
    "event_json",
    "event_lines",
    "plain",
    "printable",
    "received_json",
    "received_lines",
    "show",
    "table",
    "typed_fields",
    "use_colour",
]


def use_colour(stream: IO[str]) -> bool:
    """Colour only on a terminal, and never with ``NO_COLOR`` (no-color.org) or TERM=dumb."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


_CODES: Final = {"green": "32", "red": "31", "yellow": "33", "bold": "1", "dim": "2"}


class Printer:
    """Writes human output to stdout, styled when colour is allowed."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.colour = use_colour(self.stream)
        self._lock = threading.Lock()

    def style(self, text: str, *styles: str) -> str:
        """``text`` in the given styles, or as it is without colour."""
        if not self.colour or not styles:
            return text
        codes = ";".join(_CODES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def line(self, text: str = "") -> None:
        """Write one line, whole, even when receiver threads print at once."""
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def lines(self, texts: Iterable[str]) -> None:
        """Write several lines as one block."""
        with self._lock:
            for text in texts:
                self.stream.write(text + "\n")
            self.stream.flush()

    def json(self, value: Any) -> None:
        """Write one JSON document on one line, with no control character in it."""
        text = json.dumps(value, ensure_ascii=False, sort_keys=False)
        # json.dumps escapes C0 controls; these it leaves raw.  Each is inside a string
        # (the structure is ASCII), where \uXXXX means the same character.
        self.line(text.translate(_JSON_ESCAPES))


_JSON_ESCAPES: Final = str.maketrans(
    {
        code: f"\\u{code:04x}"
        for code in (*range(0x7F, 0xA0), *range(0xD800, 0xE000), *REORDERING, *SEPARATORS)
    }
)


#: The narrowest last column worth wrapping beside the others; below it, it goes under them.
MIN_LAST_COLUMN: Final = 24


def table(
    printer: Printer,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    styles: Sequence[Sequence[tuple[str, ...]]] | None = None,
    width: int | None = None,
) -> list[str]:
    """Rows aligned in columns, no line wider than ``width``.

    The last column (free text) is wrapped to the room the others leave; when that is
    under ``MIN_LAST_COLUMN``, it is wrapped on indented lines below its row instead.
    Widths come from the plain text, so colour keeps them.  Every cell is printed
    through :func:`printable`: a control character in it is shown escaped.
    """
    rows = [[printable(cell) for cell in row] for row in rows]
    last = len(header) - 1
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(last)]
    indent = sum(widths) + 2 * last
    room = (width or 10**6) - indent
    beside = room >= MIN_LAST_COLUMN
    if not beside:
        indent, room = 4, max((width or 80) - 4, 8)

    def render(cells: Sequence[str], cell_styles: Sequence[tuple[str, ...]]) -> list[str]:
        out = []
        for i, cell in enumerate(cells[:last]):
            padded = cell.ljust(widths[i])
            if cell_styles[i]:
                padded = printer.style(cell, *cell_styles[i]) + padded[len(cell) :]
            out.append(padded)
        text = textwrap.wrap(cells[last], room, break_on_hyphens=False) or [""]
        if cell_styles[last]:
            text = [printer.style(t, *cell_styles[last]) for t in text]
        first = "  ".join(out)
        if not beside:
            return [first.rstrip(), *(" " * indent + t for t in text if t)]
        return [(first + "  " + text[0]).rstrip(), *(" " * indent + t for t in text[1:])]

    lines = render(header, [("bold",)] * len(header))
    for n, row in enumerate(rows):
        lines += render(row, styles[n] if styles else [()] * len(row))
    return lines


def _record(value: Any) -> dict[str, Any] | None:
    """The named fields of a dataclass instance or a named tuple (Coordinates, BandPower)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        fields: dict[str, Any] = value._asdict()
        return fields
    return None


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: datetimes as ISO 8601, BAD_DATA as ``"bad_data"``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, BadData):
        return "bad_data"
    if isinstance(value, (FrozenObject, FrozenArray)):
        return value.thaw()
    record = _record(value)
    if record is not None:
        return {name: plain(item) for name, item in record.items()}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def show(value: Any, width: int = 72) -> str:
    """A short, one-line rendering of a typed field for people."""
    if isinstance(value, BadData):
        return "BAD_DATA"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, FrozenObject):
        return f"{{{len(value)} keys}}"
    record = _record(value)
    if record is not None:
        parts = (f"{name} {show(item, 16)}" for name, item in record.items())
        return show("  ".join(parts), width)
    if isinstance(value, str):
        text = printable(value)
    elif isinstance(value, float):
        text = repr(value) if len(repr(value)) <= 12 else format(value, ".10g")
    elif isinstance(value, (bool, int)):
        text = str(value)
    else:
        text = printable(json.dumps(plain(value), ensure_ascii=False, separators=(", ", ": ")))
    return text if len(text) <= width else text[: width - 1] + "…"


_ENVELOPE: Final = frozenset({"provider", "type", "id", "timestamp", "data"})


def typed_fields(event: Event) -> dict[str, Any]:
    """The event's typed fields and properties that have a value, in declaration order."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        if f.name not in _ENVELOPE:
            values[f.name] = getattr(event, f.name)
    for klass in reversed(type(event).__mro__):
        for name, attribute in vars(klass).items():
            if isinstance(attribute, property) and not name.startswith("_"):
                values[name] = getattr(event, name)
    return {
        name: value
        for name, value in values.items()
        if value is not None
        and not (isinstance(value, (tuple, FrozenObject, FrozenArray)) and len(value) == 0)
    }


def event_json(event: Event) -> dict[str, Any]:
    """An event for ``--json`` output: envelope, typed fields and data."""
    return {
        "type": event.type,
        "id": event.id,
        "timestamp": plain(event.timestamp),
        "fields": {name: plain(value) for name, value in typed_fields(event).items()},
        "data": event.data.thaw(),
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    """A delivery for ``--json`` output."""
    return {
        "provider": delivery.provider,
        "id": delivery.id,
        "events": [event_json(event) for event in delivery.events],
    }


def event_lines(printer: Printer, event: Event, indent: str = "  ") -> list[str]:
    """An event for people: its type, id and time, then its typed fields aligned."""
    head = [printer.style(printable(event.type), "bold")]
    if event.id is not None:
        head.append(f"id {printable(event.id)}")
    if event.timestamp is not None:
        head.append(event.timestamp.isoformat())
    lines = [indent + "  ".join(head)]
    rows: list[tuple[str, str]] = []
    for name, value in typed_fields(event).items():
        if isinstance(value, dict):
            # Per-channel readings and the like: one line per key reads better than JSON.
            rows += [(f"{name}.{printable(key)}", show(item)) for key, item in value.items()]
        else:
            rows.append((name, show(value)))
    if rows:
        width = max(len(name) for name, _ in rows)
        for name, text in rows:
            lines.append(f"{indent}    {printer.style(name.ljust(width), 'dim')}  {text}")
    return lines


def received_json(received: Received) -> dict[str, Any]:
    """A received request for ``listen --json``."""
    outcome = received.outcome
    result: dict[str, Any] = {
        "time": datetime.now().astimezone().isoformat(timespec="seconds"),
        "path": received.path,
        "client": received.client,
        "status": outcome.status,
        "reason": outcome.reason,
        "duplicate": outcome.duplicate,
    }
    if outcome.error is not None:
        result["error"] = type(outcome.error).__name__
    if outcome.delivery is not None:
        result["delivery"] = delivery_json(outcome.delivery)
    return result


def received_lines(out: Printer, received: Received) -> list[str]:
    """A received request for people: one status line, then its events."""
    outcome = received.outcome
    colour = "green" if outcome.ok else "red"
    if outcome.duplicate:
        colour = "yellow"
    clock = datetime.now().strftime("%H:%M:%S")
    status = out.style(str(outcome.status), colour, "bold")
    lines = [f"{clock}  POST {printable(received.path)}  {status}  {printable(outcome.reason)}"]
    if outcome.delivery is not None:
        count = len(outcome.delivery.events)
        lines.append(
            f"  delivery {printable(outcome.delivery.id)}  {count} event{'s' if count != 1 else ''}"
            + ("  (duplicate: acknowledged, not handled again)" if outcome.duplicate else "")
        )
        for event in outcome.delivery.events:
            lines += event_lines(out, event, indent="    ")
    return lines
