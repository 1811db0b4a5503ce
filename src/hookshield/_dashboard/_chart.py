"""The overview's chart: deliveries received per span of time, stacked by state, in SVG.

Theory of operation: drawn on the server as inline SVG made by ``_html.py`` (no
script, no build chain, nothing for the Content-Security-Policy to allow: colours
are presentation attributes, not styles).  One bar per bucket of
:class:`~hookshield.InboxOverview`, its parts by the state the deliveries are in now,
each with a ``<title>`` that a pointer shows; the axis says the largest count and
the span.  Nothing here does I/O.
"""

from __future__ import annotations

import datetime
from typing import Final

from .._durable.browse import InboxOverview
from .._durable.inbox import STATES
from ._html import Markup, tag

__all__ = ["COLOURS", "chart"]

#: Each state's colour, as the stylesheet's badges have it.
COLOURS: Final = {"pending": "#5b6b8c", "leased": "#c98a12", "done": "#2f8a4c", "dead": "#c0392b"}
_WIDTH: Final = 720
_HEIGHT: Final = 180
_LEFT: Final = 40
_BOTTOM: Final = 24
_TOP: Final = 10


def chart(view: InboxOverview) -> Markup:
    """The stacked bars of ``view.buckets``, oldest on the left."""
    buckets = view.buckets
    tallest = max([sum(bucket.values()) for bucket in buckets] + [1])
    plot_width = _WIDTH - _LEFT - 4
    plot_height = _HEIGHT - _BOTTOM - _TOP
    step = plot_width / len(buckets)
    width = max(1.0, step * 0.8)
    span = view.span / len(buckets)
    start = view.now - view.span
    bars: list[Markup] = []
    for index, bucket in enumerate(buckets):
        x = _LEFT + index * step + (step - width) / 2
        y = float(_TOP + plot_height)
        begins = start + index * span
        counts = ", ".join(f"{bucket.get(state, 0)} {state}" for state in STATES)
        for state in STATES:
            count = bucket.get(state, 0)
            if not count:
                continue
            height = plot_height * count / tallest
            y -= height
            bars.append(
                tag(
                    "rect",
                    {
                        "x": f"{x:.1f}",
                        "y": f"{y:.1f}",
                        "width": f"{width:.1f}",
                        "height": f"{height:.1f}",
                        "fill": COLOURS[state],
                    },
                    tag("title", None, f"from {_hour(begins)}: {counts}"),
                )
            )
    axis = [
        tag(
            "line",
            {
                "x1": _LEFT,
                "y1": _TOP + plot_height,
                "x2": _WIDTH - 4,
                "y2": _TOP + plot_height,
                "stroke": "#999",
            },
        ),
        tag(
            "text",
            {"x": _LEFT - 6, "y": _TOP + 8, "text-anchor": "end", "font-size": "11"},
            str(tallest),
        ),
        tag(
            "text",
            {"x": _LEFT - 6, "y": _TOP + plot_height, "text-anchor": "end", "font-size": "11"},
            "0",
        ),
        tag("text", {"x": _LEFT, "y": _HEIGHT - 6, "font-size": "11"}, _hour(start)),
        tag(
            "text",
            {"x": _WIDTH - 4, "y": _HEIGHT - 6, "text-anchor": "end", "font-size": "11"},
            "now",
        ),
    ]
    legend = [
        tag(
            "li",
            None,
            tag(
                "svg",
                {"width": "10", "height": "10", "aria-hidden": "true"},
                tag("rect", {"width": "10", "height": "10", "fill": COLOURS[state]}),
            ),
            f" {state}",
        )
        for state in STATES
    ]
    total = sum(sum(bucket.values()) for bucket in buckets)
    svg = tag(
        "svg",
        {
            "class": "chart",
            "viewbox": f"0 0 {_WIDTH} {_HEIGHT}",
            "role": "img",
            "aria-label": f"{total} deliveries received in the window, by state",
        },
        *axis,
        *bars,
    )
    return tag("figure", {"class": "chart"}, svg, tag("ul", {"class": "legend"}, *legend))


def _hour(when: float) -> str:
    moment = datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%MZ")
