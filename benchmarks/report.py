"""``docs/benchmarks.md`` and its charts, made from the JSON a run wrote, and nothing else.

:func:`write` reads pytest-benchmark's JSON (``stdlib.json``, and ``speedups.json``
for the hookshield[speedups] rows) and the served comparisons' (``served.json``) from
one folder, and writes the page and its SVG charts.  Every number on the page is a
measured one, or a ratio of two.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

__all__ = ["TARGETS", "Row", "bar_chart", "render", "rows", "write"]

#: The design's targets: hookshield's share of the hand-written endpoint's throughput,
#: through the framework's whole stack, in process.
TARGETS = {"FastAPI": 0.90, "Starlette": 0.75}
COMMAND = "python -m benchmarks"
FRAMEWORK_COMMAND = (
    "HOOKSHIELD_NO_SPEEDUPS=1 python -m pytest benchmarks/in_process.py -k test_framework"
)
MODES = {
    "tiny": "**A tiny run** (`python -m benchmarks --tiny`), which checks that every part "
    "runs and the page's format: one round of each case on a shared machine, so its numbers "
    "are not measurements to read or cite.  The lead regenerates this page with "
    "`nox -s bench` on a quiet machine.",
    "quick": "**A quick run** (`python -m benchmarks --quick`): few rounds, indicative only.",
    "full": "",
}


@dataclass(frozen=True, slots=True)
class Row:
    """One measured case: microseconds per delivery, least and median over the rounds."""

    claim: str
    group: str
    case: str
    us: float
    median_us: float
    info: dict[str, Any]


def rows(benchmarks: Iterable[dict[str, Any]]) -> list[Row]:
    """pytest-benchmark's entries as rows, per delivery (``extra_info["per"]``)."""
    found = []
    for entry in benchmarks:
        info, stats = entry["extra_info"], entry["stats"]
        per = info.get("per", 1)
        found.append(
            Row(
                info["claim"],
                info["group"],
                info["case"],
                stats["min"] * 1e6 / per,
                stats["median"] * 1e6 / per,
                info,
            )
        )
    return found


#: The order of the cases within a group: the reference first, then hookshield's.
_RANK = {"floor": 0, "hand-written": 0, "floor with msgspec": 1, "hookshield": 2}
_RANK["hookshield[speedups]"] = 3


def _us(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _table(header: Sequence[str], lines: Iterable[Sequence[str]]) -> list[str]:
    rule = ["---"] + ["---:"] * (len(header) - 1)
    return [f"| {' | '.join(cells)} |" for cells in (header, rule, *lines)] + [""]


def _groups(found: Sequence[Row], claim: str) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = {}
    for row in found:
        if row.claim == claim:
            groups.setdefault(row.group, []).append(row)
    return groups


def _style(case: str) -> str:
    if case.startswith(("floor", "hand-written", "token floor")):
        return "ref"
    return "ours" if "hookshield" in case else "other"


# -- charts ------------------------------------------------------------------------------

_COLOURS = {"ref": "#8c8c8c", "ours": "#2a6fdb", "other": "#c9c9c9"}
_ROW, _LABEL, _BAR, _TEXT = 20, 300, 330, 110
#: A bar longer than this many times its panel's first bar is cut, its value still written.
_CUT = 4.0


def bar_chart(title: str, unit: str, panels: Sequence[tuple[str, Sequence[Row]]]) -> str:
    """Horizontal bars, a panel per group, each scaled to its own first (reference) bar."""
    width = _LABEL + _BAR + _TEXT
    parts, y = [], 30
    parts.append(f'<text x="0" y="18" font-weight="bold">{escape(title)}</text>')
    for heading, bars in panels:
        parts.append(f'<text x="0" y="{y + 14}" font-style="italic">{escape(heading)}</text>')
        y += 20
        top = min(max(bar.us for bar in bars), _CUT * bars[0].us)
        for bar in bars:
            length = _BAR * min(bar.us, top) / top
            cut = bar.us > top
            parts += [
                f'<text x="{_LABEL - 6}" y="{y + 14}" text-anchor="end">{escape(bar.case)}</text>',
                f'<rect x="{_LABEL}" y="{y + 3}" width="{length:.1f}" height="{_ROW - 6}" '
                f'fill="{_COLOURS[_style(bar.case)]}"/>',
                f'<text x="{_LABEL + length + 4:.1f}" y="{y + 14}">'
                f"{'» ' if cut else ''}{escape(_us(bar.us))} {escape(unit)}</text>",
            ]
            y += _ROW
        y += 8
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" '
        f'viewBox="0 0 {width} {y}" font-family="sans-serif" font-size="12">\n'
        f'<rect width="{width}" height="{y}" fill="white"/>\n' + "\n".join(parts) + "\n</svg>\n"
    )


def _served_rows(served: dict[str, Any]) -> list[Row]:
    # Charted as µs per request at the server's best rate: shorter is better, as elsewhere.
    return [
        Row("served", "uvicorn", entry["endpoint"], 1e6 / entry["rps"], 0.0, entry)
        for entry in served.get("asgi", [])
    ]


# -- the page -------------------------------------------------------------------------------


#: Distributions whose versions the page lists.
DISTRIBUTIONS = (
    "hookshield", "msgspec", "standardwebhooks", "svix", "stripe", "gidgethub", "githubkit",
    "flask", "django", "starlette", "fastapi", "gunicorn", "uvicorn",
)  # fmt: skip


def versions() -> str:
    """The installed version of each distribution the benchmarks use."""
    found = []
    for name in DISTRIBUTIONS:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def _header(stdlib: dict[str, Any], mode: str) -> list[str]:
    machine, commit = stdlib["machine_info"], stdlib.get("commit_info", {})
    cpu = machine.get("cpu", {})
    when = stdlib["datetime"][:16].replace("T", " ")
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `nox -s bench` (`{COMMAND}`); do not edit by hand.",
        f"Run of {when} UTC on {cpu.get('brand_raw', machine['processor'])} "
        f"({cpu.get('count', '?')} cores), {machine['system']} {machine['release']}, "
        f"{machine['python_implementation']} {machine['python_version']}, commit "
        f"`{commit.get('id', 'unknown')[:10]}`{' with changes' if commit.get('dirty') else ''}.",
        f"Versions: {versions()}.",
        "",
    ]
    if MODES[mode]:
        lines += [MODES[mode], ""]
    return [
        *lines,
        "In process, each case is timed by [pytest-benchmark]"
        f"(https://pytest-benchmark.readthedocs.io) {stdlib['version']} with the garbage "
        "collector running, as in a server; *µs* is the least time per delivery over its "
        "rounds, which every ratio uses, and *median* the median round.  hookshield's rows "
        "use the standard library's JSON decoder, as the core ships; *hookshield[speedups]* "
        "the optional msgspec decoder.  The cases are in `benchmarks/in_process.py`, the "
        "served ones in `benchmarks/web.py`.",
        "",
        "![hookshield beside the floor and the peer libraries](benchmarks/deliveries.svg)",
        "",
        "![hookshield beside a hand-written endpoint, through each framework's stack]"
        "(benchmarks/frameworks.svg)",
        "",
        "![Starlette on uvicorn: each way of running a plain route](benchmarks/served.svg)",
        "",
    ]


def _deliveries(found: Sequence[Row]) -> list[str]:
    lines = [
        "## Beside the floor and the peer libraries",
        "",
        "The *floor* is the least a safe receiver does: `hmac.new(key, body, sha256)."
        "hexdigest()`, `hmac.compare_digest` and `json.loads(body)`; *floor with msgspec* "
        "decodes with msgspec instead.  hookshield's case is `verify` and reading the typed "
        "fields a route reads.  Each peer library signs the same body in its own scheme, "
        "is checked to accept it and to refuse a tampered copy, then verifies, parses and "
        "reads the same fields (githubkit's `ping` model keeps only its own).  Bodies are "
        "hookshield's samples padded with the fields each sender sends.",
        "",
    ]
    for group, members in _groups(found, "deliveries").items():
        floor = members[0].us
        lines += [f"### {group}", ""]
        lines += _table(
            ["case", "µs", "median", "x floor"],
            ([r.case, _us(r.us), _us(r.median_us), f"{r.us / floor:.2f}"] for r in members),
        )
    return lines


def _decode(found: Sequence[Row]) -> list[str]:
    table = []
    for size, members in _groups(found, "decode").items():
        times = {row.case: row.us for row in members}
        if {"json", "msgspec"} <= times.keys():
            ratio = times["json"] / times["msgspec"]
            table.append([size, _us(times["json"]), _us(times["msgspec"]), f"{ratio:.1f}x"])
    return [
        "## The speedups' decoder",
        "",
        "What `hookshield[speedups]` changes: the body decoded by msgspec's decoder rather "
        "than the standard library's, the same MindPeeker bodies, µs.",
        "",
        *_table(["body", "`json.loads`", "msgspec", "msgspec is faster by"], table),
    ]


def framework_ratios(found: Sequence[Row]) -> dict[str, float]:
    """hookshield's share of the hand-written endpoint's deliveries per second, per framework."""
    ratios = {}
    for framework, members in _groups(found, "frameworks").items():
        times = {row.case: row.us for row in members}
        if {"hand-written", "hookshield"} <= times.keys():
            ratios[framework] = times["hand-written"] / times["hookshield"]
    return ratios


def _frameworks(found: Sequence[Row], mode: str) -> list[str]:
    groups, ratios = _groups(found, "frameworks"), framework_ratios(found)
    table = []
    for framework, ratio in ratios.items():
        times = {row.case: row.us for row in groups[framework]}
        target = TARGETS.get(framework)
        met = (
            ""
            if target is None
            else "n/a"
            if mode == "tiny"
            else "yes"
            if ratio >= target
            else "**no**"
        )
        table.append(
            [
                framework,
                _us(times["hand-written"]),
                _us(times["hookshield"]),
                f"{ratio:.2f}x",
                "" if target is None else f"≥ {target:.2f}x",
                met,
            ]
        )
    return [
        "## Through each framework's stack, against a hand-written endpoint",
        "",
        "Each 1 KB MindPeeker delivery (a new one each time) passed to the framework's "
        "ASGI or WSGI app in process, as a server passes it, one after another; µs per "
        "delivery.  The hand-written endpoint reads the body, compares its HMAC with "
        "`hmac.compare_digest`, `json.loads` it, remembers its id in a set and calls the "
        "route.  FastAPI: the README's `verified_route` decorator and `dispatch_async` to "
        "a plain route, which hookshield runs in its thread, against an endpoint running its "
        "plain route in the thread pool, as FastAPI runs plain code; *FastAPI, dependency* "
        "is the same with the `verified` dependency (a dependency with `yield`).  Starlette: `WebhookApp` "
        "with the route registered `inline=True`, against an endpoint calling it on the loop.  "
        "Flask and Django: `webhook_view` against a view.  *share* is hookshield's "
        "deliveries per second over the hand-written endpoint's.  The design's targets are "
        f"judged on this table (*n/a* in a tiny run).  Alone: `{FRAMEWORK_COMMAND}`.  "
        "Beside an earlier revision's code on the same deliveries (the design's target: "
        "each request within 5 µs of the code before the redesign): "
        "`python -m benchmarks.against a1aa633`.",
        "",
        *_table(["framework", "hand-written µs", "hookshield µs", "share", "target", "met"], table),
    ]


def _served(served: dict[str, Any], labels: dict[str, str]) -> list[str]:
    lines = ["## Served: a plain ASGI route on uvicorn", ""]
    asgi = served.get("asgi", [])
    if not asgi:
        return [*lines, "Not measured in this run.", ""]
    requests, rounds, concurrency = served["load"]
    reference = next(e["rps"] for e in asgi if e["endpoint"] == "/hand-written/")
    lines += [
        f"Starlette on uvicorn, one process on 127.0.0.1, {requests:,} distinct 1 KB "
        f"deliveries per endpoint over {concurrency} connections, each endpoint loaded in "
        f"turn, the best of {rounds} round(s); the same plain route run each way.",
        "",
    ]
    return lines + _table(
        ["endpoint", "way", "req/s", "x hand-written", "p50 ms", "p99 ms"],
        (
            [
                f"`{e['endpoint']}`",
                labels.get(e["endpoint"], ""),
                f"{e['rps']:,.0f}",
                f"{e['rps'] / reference:.2f}",
                f"{e['p50_ms']:.2f}",
                f"{e['p99_ms']:.2f}",
            ]
            for e in asgi
        ),
    )


def _batch(found: Sequence[Row]) -> list[str]:
    lines = []
    for group, members in _groups(found, "batch").items():
        body = members[0].info["body_bytes"]
        floor = members[0].us
        lines += [
            "## A Momentum batch",
            "",
            f"One delivery of {group}, {body:,} bytes: ms to handle it, and the peak of the Python "
            "allocations while doing so (tracemalloc, the body itself not counted), over "
            "the body's size.",
            "",
            *_table(
                ["case", "ms", "x floor", "peak MB", "peak x body"],
                (
                    [
                        r.case,
                        f"{r.us / 1e3:,.1f}",
                        f"{r.us / floor:.2f}",
                        f"{r.info['peak'] / 1e6:,.1f}",
                        f"{r.info['peak'] / body:.2f}",
                    ]
                    for r in members
                ),
            ),
        ]
    return lines


def _durable(found: Sequence[Row], served: dict[str, Any]) -> list[str]:
    stores = _groups(found, "stores").get("claim + complete", [])
    lines = ["## De-duplication stores and the durable inbox", ""]
    if stores:
        memory = stores[0].us
        lines += [
            "One delivery's work in each store, a claim and a completion on a new key "
            "(Redis: a redis-server of its own on 127.0.0.1), µs.",
            "",
            *_table(
                ["store", "µs", "added over memory"],
                ([r.case, _us(r.us), _us(r.us - memory)] for r in stores),
            ),
        ]
    inbox = _groups(found, "inbox")
    if inbox:
        lines += ["The web side's own work per delivery with an SQLite inbox, µs.", ""]
        times = {(size, row.case): row.us for size, members in inbox.items() for row in members}
        cases = dict.fromkeys(case for _, case in times)
        lines += _table(
            ["work", *inbox],
            ([case, *(_us(times[size, case]) for size in inbox)] for case in cases),
        )
    for row in _groups(found, "worker").get("SQLite inbox, no-op route", []):
        lines += [f"One `hookshield worker` runs {1e6 / row.us:,.0f} stored deliveries a second "
                  "(SQLite inbox, a route that does nothing).", ""]  # fmt: skip
    if served.get("inbox"):
        pool = {r["size"]: r["rps"] for r in served["inbox"] if r["background"] == "memory"}
        lines += [
            "Flask on gunicorn with four workers, deliveries over 8 connections: each "
            "acknowledged only once stored, except with `background=True` (memory); "
            "`postgres` keeps its claims in the same PostgreSQL database "
            "(`PostgresDedupeStore`), the others in memory.",
            "",
            *_table(
                [
                    "`background=`",
                    "size",
                    "acknowledged/s",
                    "vs memory",
                    "p50 ms",
                    "p99 ms",
                    "answers",
                ],
                (
                    [
                        r["background"],
                        r["size"],
                        f"{r['rps']:,.0f}",
                        f"{r['rps'] / pool[r['size']]:.2f}x" if pool.get(r["size"]) else "-",
                        f"{r['p50_ms']:.1f}",
                        f"{r['p99_ms']:.1f}",
                        ", ".join(f"{k}: {v}" for k, v in r["statuses"].items()),
                    ]
                    for r in served["inbox"]
                ),
            ),
        ]
    if served.get("workers"):
        one = {r["inbox"]: r["per_second"] for r in served["workers"] if r["workers"] == 1}
        lines += [
            "`hookshield worker` processes on one inbox, a route that does nothing: "
            "deliveries started a second, from the first start to the last (how soon "
            "an idle worker notices a delivery is the next table's).",
            "",
            *_table(
                ["inbox", "workers", "deliveries/s", "vs one worker"],
                (
                    [
                        r["inbox"],
                        str(r["workers"]),
                        f"{r['per_second']:,.0f}",
                        f"{r['per_second'] / one[r['inbox']]:.2f}x",
                    ]
                    for r in served["workers"]
                ),
            ),
        ]
    if served.get("wakeup"):
        lines += [
            "From `put` to a waiting worker starting the delivery (default `--poll 0.5`): "
            "PostgreSQL wakes it with `LISTEN/NOTIFY`, SQLite's worker finds it at its "
            "next poll.",
            "",
            *_table(
                ["inbox", "puts", "p50 ms", "p99 ms"],
                (
                    [r["inbox"], str(r["puts"]), f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}"]
                    for r in served["wakeup"]
                ),
            ),
        ]
    return lines


def _observers(found: Sequence[Row]) -> list[str]:
    lines: list[str] = []
    for group, members in _groups(found, "observers").items():
        floor = next((row.us for row in members if row.case.endswith("removed")), None)
        lines += [
            "## Observers: metrics and traces",
            "",
            f"One delivery through {group} (`WebhookApp`, a route that reads three fields), "
            "µs, with each observer added (`hookshield.add_observer`): none, "
            "`hookshield.prometheus.Metrics`, and `hookshield.opentelemetry.Tracing` on the "
            "API without an SDK (its spans are no-ops) and on the SDK with a span processor "
            "exporting to memory.  The first row is the floor: the same delivery with every "
            "call into the observers replaced by a function that does nothing, so the "
            "no-observer row's difference is all that observability costs a team that "
            "adds no observer.",
            "",
            *_table(
                ["observer", "µs", "median", "added over the floor"],
                (
                    [
                        r.case,
                        _us(r.us),
                        _us(r.median_us),
                        "-" if floor is None or r.case.endswith("removed") else _us(r.us - floor),
                    ]
                    for r in members
                ),
            ),
        ]
    return lines


def render(found: Sequence[Row], stdlib: dict[str, Any], served: dict[str, Any], mode: str) -> str:
    """The page, from the rows of a run, its pytest-benchmark JSON and its served results."""
    from .apps import SERVED_ENDPOINTS  # the labels only

    lines = _header(stdlib, mode)
    lines += _deliveries(found)
    lines += _decode(found)
    lines += _frameworks(found, mode)
    lines += _served(served, SERVED_ENDPOINTS)
    lines += _batch(found)
    lines += _durable(found, served)
    lines += _observers(found)
    lines += [f"Note: {note}" for note in served.get("notes", [])]
    return "\n".join(lines).rstrip() + "\n"


def charts(found: Sequence[Row], served: dict[str, Any]) -> dict[str, str]:
    """The SVG charts by file name: one per claim."""
    panels = list(_groups(found, "deliveries").items())
    frameworks = list(_groups(found, "frameworks").items())
    return {
        "deliveries.svg": bar_chart("µs per delivery (shorter is faster)", "µs", panels),
        "frameworks.svg": bar_chart(
            "µs per delivery through the framework's stack, in process", "µs", frameworks
        ),
        "served.svg": bar_chart(
            "Starlette on uvicorn: µs per request at the best rate",
            "µs",
            [("uvicorn", _served_rows(served))] if served.get("asgi") else [],
        ),
    }


def write(results: Path, output: Path, mode: str) -> str:
    """Read a run's JSON from ``results``; write the page at ``output`` and its charts."""
    stdlib = json.loads((results / "stdlib.json").read_text(encoding="utf-8"))
    entries = list(stdlib["benchmarks"])
    if (results / "speedups.json").exists():
        entries += json.loads((results / "speedups.json").read_text(encoding="utf-8"))["benchmarks"]
    served_file = results / "served.json"
    served = json.loads(served_file.read_text(encoding="utf-8")) if served_file.exists() else {}
    found = sorted(rows(entries), key=lambda row: _RANK.get(row.case, len(_RANK)))
    text = render(found, stdlib, served, mode)
    folder = output.parent / output.stem
    folder.mkdir(parents=True, exist_ok=True)
    for name, svg in charts(found, served).items():
        (folder / name).write_text(svg, encoding="utf-8")
    output.write_text(text, encoding="utf-8")
    return text
