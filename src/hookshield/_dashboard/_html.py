"""HTML built from parts, every value escaped: the dashboard's only way to make markup.

Theory of operation: a page is made of :class:`Markup` (text that is HTML already,
made here) and values (anything else).  :func:`tag` escapes every value it is given,
as an element's text or as an attribute's value, and returns :class:`Markup`; so a
value reaches the page escaped unless it went through this module, and nothing a
sender wrote (a body, a header, an event type, an error message) can become markup.

Rules this module owns:

* A value is made printable first (:func:`~hookshield._core.text.printable`: a control
  character becomes ``\\x1b``, a lone surrogate ``\\ud800``), then escaped with
  :func:`html.escape` and ``quote=True``: ``&``, ``<``, ``>``, ``"`` and ``'`` never
  appear as themselves.
* Attributes are always quoted with ``"``, and their names are this module's
  callers' literals, checked to be plain names.
* The only contexts used are an element's text and a quoted attribute's value
  (``href`` included, whose URLs :func:`href` builds from a path and percent-encoded
  query parameters).  No value ever goes into a ``<script>``, a ``style``, an event
  handler or a URL's scheme.

Nothing here does I/O.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Final

from .._core.text import printable

__all__ = ["Markup", "escape", "href", "join", "tag", "text_block"]

_NAME: Final = re.compile(r"[a-z][a-z0-9-]*\Z")
#: Elements that have no end tag.
_VOID: Final = frozenset({"br", "col", "hr", "img", "input", "link", "meta", "wbr"})


class Markup(str):
    """Text that is HTML already: made by this module, never by a value."""

    __slots__ = ()


def escape(value: object) -> Markup:
    """``value`` as HTML text: printable, then with ``& < > " '`` escaped."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(printable(value), quote=True))


def text_block(value: str) -> Markup:
    """``value`` as the text of a ``<pre>``: as :func:`escape`, but newlines and tabs kept."""
    return Markup(html.escape(printable(value, lines=True), quote=True))


def join(parts: Iterable[object]) -> Markup:
    """The parts one after another, each value escaped; a part that is ``None`` is left out."""
    return Markup("".join(escape(part) for part in parts if part is not None))


def tag(name: str, attributes: Mapping[str, object] | None = None, /, *children: object) -> Markup:
    """The element ``name`` with ``attributes`` and ``children``, every value escaped.

    An attribute whose value is ``None`` or ``False`` is left out, and one whose value
    is ``True`` is written bare (``disabled``).  A child that is ``None`` is left out.
    """
    if not _NAME.match(name):
        raise ValueError(f"not an element name: {name!r}")
    parts = [f"<{name}"]
    for key, value in (attributes or {}).items():
        if not _NAME.match(key):
            raise ValueError(f"not an attribute name: {key!r}")
        if value is None or value is False:
            continue
        parts.append(f" {key}" if value is True else f' {key}="{escape(value)}"')
    parts.append(">")
    if name in _VOID:
        if children:
            raise ValueError(f"<{name}> has no children")
        return Markup("".join(parts))
    parts += [escape(child) for child in children if child is not None]
    parts.append(f"</{name}>")
    return Markup("".join(parts))


def href(base: str, path: str, params: Mapping[str, object] | None = None) -> str:
    """A link to ``path`` of the dashboard mounted at ``base``, with query ``params``.

    The parameters are percent-encoded (``None`` and empty ones left out); the result
    is a value for a quoted attribute, which :func:`tag` escapes.
    """
    query = {k: str(v) for k, v in (params or {}).items() if v is not None and v != ""}
    url = base + path
    # surrogatepass: an event type decoded from malformed JSON may hold a lone
    # surrogate, which UTF-8 cannot encode; it is percent-encoded as it stands.
    encoded = urllib.parse.urlencode(query, errors="surrogatepass")
    return url + ("?" + encoded if query else "")
