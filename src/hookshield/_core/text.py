"""Text from a delivery, made safe to print on a terminal or in a log line.

Theory of operation: an event type, an id, a header value, a route's error message
are whatever the sender (or anyone who reached the endpoint) wrote.  Printed as they
are, ESC and the C1 CSI (``\\x9b``) start terminal commands that retitle the window
or clear the screen, CR and BS hide what was printed before them, BEL rings, and a
newline in a log message forges a line of its own.  :func:`printable` escapes every
C0 and C1 control character and DEL as Python writes them (``\\x1b``, ``\\n``,
``\\x9b``), and a lone surrogate (text decoded from malformed JSON, which no stream
can encode) as ``\\ud800``.  So are the characters that reorder or break a line
without being controls: the bidirectional formatting ones (a right-to-left override,
U+202E, shows ``evt_1\\u202e3pm`` as ``evt_1mp3``, so that a log line reads other
than it is) and the line and paragraph separators (U+2028, U+2029), which
``str.splitlines`` and some log viewers take for a new line.  Everything else,
backslashes included, is left as it is.

Every log message and every line of the command's output that carries such text
goes through it.  Nothing here logs or does I/O.
"""

from __future__ import annotations

from typing import Final

__all__ = ["REORDERING", "SEPARATORS", "age", "printable"]

# C0 (U+0000-U+001F), DEL (U+007F) and C1 (U+0080-U+009F): Unicode's category Cc.
_CONTROLS: Final = (*range(0x20), *range(0x7F, 0xA0))
_NAMED: Final = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}

#: Unicode's Bidi_Control characters (ALM, LRM, RLM, the embeddings and overrides,
#: the isolates), and the line and paragraph separators.
REORDERING: Final = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
SEPARATORS: Final = (0x2028, 0x2029)

_ESCAPES: Final = {
    **{code: f"\\x{code:02x}" for code in _CONTROLS},
    **_NAMED,
    **{code: f"\\u{code:04x}" for code in (*range(0xD800, 0xE000), *REORDERING, *SEPARATORS)},
}
_ONE_LINE: Final = str.maketrans(_ESCAPES)
_LINES: Final = str.maketrans({k: v for k, v in _ESCAPES.items() if k not in (0x09, 0x0A)})


def printable(value: object, *, lines: bool = False) -> str:
    """``value`` as text without a control character: each one escaped (``\\x1b``).

    With ``lines=True``, newlines and tabs are kept, for a body shown as it was sent
    (a carriage return is still escaped: it would let one line hide another).
    """
    text = value if isinstance(value, str) else str(value)
    return text.translate(_LINES if lines else _ONE_LINE)


def age(elapsed: float) -> str:
    """A short age for a person: ``42s``, ``5m``, ``3h``, ``2d``."""
    elapsed = max(0.0, elapsed)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if elapsed >= size:
            return f"{int(elapsed // size)}{unit}"
    return f"{int(elapsed)}s"
