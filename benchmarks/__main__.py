"""``python -m benchmarks [--quick] [--tiny] [--no-http] [--output PATH]``: run and report."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import micro, report, web
from .payloads import SIZES

__all__ = ["main"]

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


#: The HTTP load of each mode: requests per run, rounds, acknowledgements, the sleep of
#: the background handler.  A quick run's rows must still mean something: at a few
#: thousand requests per second, 2,000 requests take about half a second, long enough
#: for the scheduler's noise to average out, and three rounds give the best of three.
#: A tiny run only checks that the harness works: its HTTP rows are judged by no target.
HTTP_LOAD = {
    "full": (4000, 5, 200, 10.0),
    "quick": (2000, 3, 20, 10.0),
    "tiny": (30, 1, 5, 1.0),
}


def stores_section(quick: bool) -> tuple[list[dict[str, object]], str]:
    """The de-duplication stores' rows from ``benchmarks.stores``, or why there are none."""
    try:
        stores = importlib.import_module("benchmarks.stores")
    except ModuleNotFoundError as exc:
        if exc.name != "benchmarks.stores":
            raise
        return [], "Not measured: `benchmarks/stores.py` is not written yet."
    rows: list[dict[str, object]] = stores.measure(quick)
    return rows, ""


def main(argv: Sequence[str] | None = None) -> str:
    """Run the benchmarks, write the Markdown report, and return it."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions: indicative only")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="1 KB bodies, small batches, a few requests: checks the harness (implies --quick)",
    )
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP servers")
    parser.add_argument("--no-peers", action="store_true", help="skip the other libraries")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the report's path")
    args = parser.parse_args(argv)
    quick = args.quick or args.tiny
    rounds, min_time = (3, 0.01) if quick else (9, 0.1)
    sizes = ["1 KB"] if args.tiny else list(SIZES)
    records = 100 if args.tiny else 10_000
    messages = 100 if args.tiny else 10_000
    settings = (
        f"{rounds} rounds of at least {min_time * 1e3:.0f} ms per case; "
        f"batch of {records:,} records; stream of {messages:,} messages"
    )
    started = time.perf_counter()

    with micro.standard_json():
        _say("single deliveries ...")
        groups = micro.payload_groups(
            ["mindpeeker", "moco", "moonsense"],
            sizes,
            rounds=rounds,
            min_time=min_time,
            with_peers=not args.no_peers,
        )
        _say("where the time goes at 1 KB ...")
        breakdown = micro.breakdown(
            ["mindpeeker", "moco", "moonsense"], rounds=rounds, min_time=min_time
        )
        _say("Momentum batch ...")
        batch = micro.batch_group(records, rounds=rounds, min_time=min_time)
        _say("Petal Metrics stream ...")
        stream = micro.stream_group(messages, rounds=rounds, min_time=min_time)
        _say("peak memory ...")
        memory = micro.memory(records)
    servers: list[web.ServerResult] = []
    mode = "tiny" if args.tiny else ("quick" if quick else "full")
    if args.no_http:
        http_notes = ["HTTP part not run (--no-http)."]
    else:
        _say("HTTP ...")
        requests, http_rounds, acks, sleep = HTTP_LOAD[mode]
        servers, http_notes = web.run_http(
            requests=requests, rounds=http_rounds, ack_requests=acks, sleep=sleep
        )
        settings += f"; HTTP: {http_rounds} rounds of {requests:,} requests per endpoint"
    _say("de-duplication stores ...")
    store_rows, store_note = stores_section(quick)
    inbox_tables = ""
    side_by_side: list[dict[str, object]] = []
    side_by_side_table = ""
    if not args.no_http and not args.tiny:
        _say("against the code before the redesign ...")
        regression = importlib.import_module("benchmarks.regression")
        side_by_side = regression.measure(quick)
        side_by_side_table = regression.render(side_by_side)
    if not args.no_http:
        _say("durable inbox ...")
        durable = importlib.import_module("benchmarks.inbox")
        inbox_tables = durable.report(durable.measure(quick))
    text = report.render(
        quick=quick,
        groups=groups,
        breakdown=breakdown,
        batch=batch,
        stream=stream,
        memory=memory,
        servers=servers,
        http_notes=http_notes,
        settings=settings,
        http_judged=mode != "tiny",
        stores=store_rows,
        stores_note=store_note,
        inbox=inbox_tables,
        side_by_side=side_by_side,
        side_by_side_table=side_by_side_table,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    _say(f"wrote {args.output} in {time.perf_counter() - started:.0f} s")
    for note in http_notes:
        _say(note)
    return text


if __name__ == "__main__":
    main()
