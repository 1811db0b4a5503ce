"""The Markdown report, ``docs/benchmarks.md``: machine, versions, targets and every table."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import micro, peers
from .micro import FAST, FAST_FLOOR, FLOOR, JUDGED, PEER, TYPED, Group, Memory, Row
from .web import ServerResult

__all__ = ["Target", "machine", "noise_note", "parse_http_rows", "render", "targets", "versions"]

#: Distributions whose versions the report lists.
DISTRIBUTIONS = (
    "hookshield",
    "msgspec",
    "standardwebhooks",
    "svix",
    "stripe",
    "gidgethub",
    "githubkit",
    "pydantic",
    "flask",
    "django",
    "starlette",
    "fastapi",
    "gunicorn",
    "uvicorn",
    "httptools",
    "uvloop",
)


def machine() -> dict[str, str]:
    """The CPU model, core count, operating system and Python that ran the benchmarks."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.partition(":")[2].strip()
                    break
    except OSError:
        pass
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "OS": platform.platform(),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def versions() -> dict[str, str]:
    """The installed version of each distribution the benchmarks use."""
    found = {}
    for name in DISTRIBUTIONS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


@dataclass(frozen=True, slots=True)
class Target:
    """One target: what was measured, and whether it is met (``None``: not judged)."""

    goal: str
    measured: str
    met: bool | None


#: The least share of the hand-written endpoint's requests per second an adapter serves.
ADAPTER_TARGET = 0.95
#: The most a served-request row may lose against the baseline.
REGRESSION_LIMIT = 0.05
#: The sizes at which hookshield[speedups] must beat every peer.
PEER_SIZES = ("1 KB", "1 MB")
BASELINE = Path(__file__).resolve().parent / "baseline.md"
#: Served-request rows by (framework, server, endpoint): req/s and x hand-written req/s.
Baseline = Mapping[tuple[str, str, str], tuple[float, float | None]]


def _peer_target(groups: Sequence[Group], label: str, missing: Sequence[str]) -> Target:
    goal = f"`verify` + typed fields with hookshield[speedups] faster than every peer at {label}"
    slower: list[str] = []
    ahead: list[str] = []
    for group in groups:
        if group.label != label or not group.has(FAST):
            continue
        ours = group.row(FAST).timing.best
        for row in group.rows:
            if row.kind != PEER:
                continue
            versus = f"{row.case.split(':')[0]} at {group.title.split(',')[0]} {ours / row.timing.best:.2f}x"
            (slower if row.timing.best <= ours else ahead).append(versus)
    if not slower and not ahead:
        return Target(goal, "not run (needs msgspec and the peers)", None)
    if slower:
        return Target(goal, "slower than " + "; ".join(slower), False)
    if missing:  # faster than the peers that ran says nothing of the others
        return Target(
            goal,
            f"faster in all {len(ahead)} comparisons run; not installed: {', '.join(missing)}",
            None,
        )
    worst = max(ahead, key=lambda text: float(text.rpartition(" ")[2].rstrip("x")))
    return Target(goal, f"faster in all {len(ahead)} comparisons; closest: {worst}", True)


def _adapter_targets(servers: Sequence[ServerResult], *, judged: bool) -> list[Target]:
    result = []
    for server in servers:
        if server.store is not None or server.rps_ratio is None:
            continue  # the store rows are measured for the record, not judged
        goal = f"{server.label}: `/hook/` ≥ {ADAPTER_TARGET:.2f}x the hand-written endpoint's req/s"
        measured = f"{server.rps_ratio:.2f}x"
        if len(server.round_ratios) > 1:
            low, high = min(server.round_ratios), max(server.round_ratios)
            measured += f" (round by round: {low:.2f}-{high:.2f}x)"
        if server.cpu_ratio is not None:
            measured += f" (by server CPU per request: {server.cpu_ratio:.2f}x)"
        if not judged:
            result.append(Target(goal, measured + "; too few requests to judge", None))
        else:
            result.append(Target(goal, measured, server.rps_ratio >= ADAPTER_TARGET))
    if not result:
        goal = f"every adapter ≥ {ADAPTER_TARGET:.2f}x the hand-written endpoint's req/s"
        result.append(Target(goal, "not measured (see HTTP)", None))
    return result


def parse_http_rows(text: str) -> dict[tuple[str, str, str], tuple[float, float | None]]:
    """The HTTP table of a report: (framework, server, endpoint) to (req/s, x hand-written)."""
    rows: dict[tuple[str, str, str], tuple[float, float | None]] = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        if len(cells) != 11 or not cells[2].startswith("/"):
            continue
        ratio = float(cells[8]) if cells[8] else None
        rows[cells[0], cells[1], cells[2]] = (float(cells[5].replace(",", "")), ratio)
    return rows


def _regression_target(
    servers: Sequence[ServerResult],
    baseline: Baseline,
    *,
    judged: bool,
) -> Target:
    goal = (
        f"no served-request row more than {REGRESSION_LIMIT:.0%} below the baseline "
        "(its x hand-written req/s)"
    )
    changes: list[tuple[float, str]] = []
    for server in servers:
        for load in server.loads:
            if not load.endpoint.startswith("/hook"):
                continue  # a hand-written endpoint: the framework's, not hookshield's
            before = baseline.get((server.framework, server.server_text, load.endpoint))
            if load.ratio is None or before is None or before[1] is None:
                continue
            change = load.ratio / before[1] - 1
            changes.append(
                (
                    change,
                    f"{server.label} {load.endpoint} {before[1]:.2f}x → {load.ratio:.2f}x "
                    f"({change:+.0%}; req/s {before[0]:,.0f} → {load.rps:,.0f})",
                )
            )
    if not changes:
        return Target(goal, "no row to compare (see HTTP)", None)
    changes.sort()
    worse = [text for change, text in changes if change < -REGRESSION_LIMIT]
    measured = (
        ("regressed: " + "; ".join(worse))
        if worse
        else f"hookshield rows compared: {len(changes)}; the worst: {changes[0][1]}"
    )
    if not judged:
        return Target(goal, measured + "; too few requests to judge", None)
    return Target(goal, measured, not worse)


def targets(
    groups: Sequence[Group],
    servers: Sequence[ServerResult],
    *,
    http_judged: bool = True,
    baseline: Baseline | None = None,
    missing_peers: Sequence[str] | None = None,
    side_by_side: Sequence[dict[str, Any]] = (),
) -> list[Target]:
    """Evaluate the targets against this run's numbers.

    The regression target is judged on ``side_by_side`` rows (the earlier code served
    in the same run, ``benchmarks.regression``) when there are any, else against the
    report the redesign started from (``benchmarks/baseline.md``).
    """
    if baseline is None:
        baseline = parse_http_rows(BASELINE.read_text(encoding="utf-8"))
    result = _adapter_targets(servers, judged=http_judged)
    if missing_peers is None:
        missing_peers = [peer.name for peer in peers.PEERS if not peer.available()]
    result += [_peer_target(groups, label, missing_peers) for label in PEER_SIZES]
    if side_by_side:
        result.append(_side_by_side_target(side_by_side, judged=http_judged))
    else:
        result.append(_regression_target(servers, baseline, judged=http_judged))
    return result


def _side_by_side_target(rows: Sequence[dict[str, Any]], *, judged: bool) -> Target:
    goal = (
        f"no served-request row more than {REGRESSION_LIMIT:.0%} below the code before the "
        "redesign, served side by side (`/hook/` x `/floor/`)"
    )
    measured_rows = sorted((row["change"], row) for row in rows if "change" in row)
    if not measured_rows:
        return Target(goal, "no row to compare (see the side-by-side table)", None)
    worse = [row for change, row in measured_rows if change < -REGRESSION_LIMIT]
    shown = worse or [measured_rows[0][1]]
    measured = ("regressed: " if worse else "the worst: ") + "; ".join(
        f"{row['server']} {row['before']:.2f}x → {row['now']:.2f}x ({row['change']:+.1%})"
        for row in shown
    )
    if not judged:
        return Target(goal, measured + "; too few requests to judge", None)
    return Target(goal, measured, not worse)


def _us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.0f}" if us >= 1000 else f"{us:.2f}"


def noise_note(group: Group) -> str | None:
    """For a 1 MB group where hookshield's standard-library row beats the floor: why that is noise."""
    if group.label != "1 MB" or not group.has(TYPED):
        return None
    ratio = group.row(TYPED).timing.best / group.row(FLOOR).timing.best
    if ratio >= 1.0:
        return None
    return (
        f"hookshield's `verify` + typed fields at {ratio:.2f}x the floor here is noise, not "
        "a win: at 1 MB both spend nearly all their time in the same C scanner of the "
        "standard library's `json` over the same bytes, and HMAC-SHA256 in the same "
        "OpenSSL; hookshield does strictly more work.  What moves a 1 MB row by a few "
        "per cent is where the allocator finds memory for some thousand objects, and "
        "when the collector runs, not the code; read it as 1.00x."
    )


def _group_table(group: Group) -> list[str]:
    floor = group.row(FLOOR).timing.best
    ours = group.row(TYPED).timing.best
    fast = group.row(FAST).timing.best if group.has(FAST) else None
    fast_floor = group.row(FAST_FLOOR).timing.best if group.has(FAST_FLOOR) else None
    per = " per message" if group.per > 1 else ""
    lines = [
        f"### {group.title} (body {group.body_size:,} bytes{' in all' if group.per > 1 else ''})",
        "",
        f"| case | µs{per}, best | µs{per}, median | x floor | x msgspec floor "
        "| hookshield typed is x | with speedups is x |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in group.rows:
        t = row.timing
        versus = f"{ours / t.best:.2f}" if row.kind == PEER else ""
        versus_fast = f"{fast / t.best:.2f}" if row.kind == PEER and fast is not None else ""
        like = (
            f"{t.best / fast_floor:.2f}"
            if fast_floor is not None and row.kind in (FAST, FAST_FLOOR)
            else ""
        )
        name = f"**{row.case}**" if row.kind in (TYPED, FAST, JUDGED) else row.case
        lines.append(
            f"| {name} | {_us(t.best / group.per)} | {_us(t.median / group.per)} "
            f"| {t.best / floor:.2f} | {like} | {versus} | {versus_fast} |"
        )
    noise = noise_note(group)
    for note in [*group.notes, *([noise] if noise else [])]:
        lines += ["", f"Note: {note}"]
    return [*lines, ""]


def _case(group: Group, step: str) -> Row:
    row = group.case(step)
    if row is None:
        raise ValueError(f"{group.title} has no timing of {step!r}")
    return row


def _breakdown_table(groups: Sequence[Group]) -> list[str]:
    """The 1 KB steps, a column per sender, with the sums and differences they explain."""

    def best(group: Group, step: str) -> float | None:
        row = group.case(step)
        return None if row is None else row.timing.best

    def cells(values: Sequence[float | None]) -> str:
        return " | ".join("" if v is None else f"{v * 1e6:.2f}" for v in values)

    lines = [
        "| step | " + " | ".join(g.title.partition(",")[0] for g in groups) + " |",
        "| --- |" + " ---: |" * len(groups),
    ]
    floor = [g.row(FLOOR).timing.best for g in groups]
    lines.append(f"| **floor, whole** | {cells(floor)} |")
    lines += [
        f"| {step} | {cells([best(g, step) for g in groups])} |"
        for step in (micro.STEP_FLOOR_AUTH, micro.STEP_FLOOR_LOADS)
    ]
    # Every breakdown group times these steps: a missing one is a bug, not a zero.
    steps = {
        step: [_case(g, step).timing.best for g in groups]
        for step in (
            micro.STEP_HEADERS,
            micro.STEP_AUTH,
            micro.STEP_DECODE,
            micro.STEP_PARSE,
            micro.STEP_READ,
            micro.STEP_WHOLE,
        )
    }
    building = [
        p - d for p, d in zip(steps[micro.STEP_PARSE], steps[micro.STEP_DECODE], strict=True)
    ]
    total = [
        h + a + p + r
        for h, a, p, r in zip(
            steps[micro.STEP_HEADERS],
            steps[micro.STEP_AUTH],
            steps[micro.STEP_PARSE],
            steps[micro.STEP_READ],
            strict=True,
        )
    ]
    whole = steps[micro.STEP_WHOLE]
    lines += [
        f"| hookshield: {micro.STEP_HEADERS} | {cells(steps[micro.STEP_HEADERS])} |",
        f"| hookshield: {micro.STEP_AUTH} | {cells(steps[micro.STEP_AUTH])} |",
        f"| hookshield: {micro.STEP_DECODE} | {cells(steps[micro.STEP_DECODE])} |",
        f"| hookshield: typed event and delivery (parse less decode) | {cells(building)} |",
        f"| hookshield: {micro.STEP_READ} | {cells(steps[micro.STEP_READ])} |",
        f"| hookshield: sum of the steps | {cells(total)} |",
        f"| **hookshield: {micro.STEP_WHOLE}** | {cells(whole)} |",
        "| hookshield: the whole call less the steps (its own calls and checks) "
        f"| {cells([w - t for w, t in zip(whole, total, strict=True)])} |",
        f"| hookshield over the floor | {cells([w - f for w, f in zip(whole, floor, strict=True)])} |",
    ]
    if all(g.case(micro.STEP_DECODE_FAST) is not None for g in groups):
        fast = [best(g, micro.STEP_DECODE_FAST) for g in groups]
        lines.append(f"| hookshield: {micro.STEP_DECODE_FAST} | {cells(fast)} |")
    return [*lines, ""]


def render(
    *,
    quick: bool,
    groups: Sequence[Group],
    breakdown: Sequence[Group],
    batch: Group | None,
    stream: Group | None,
    memory: Sequence[Memory],
    servers: Sequence[ServerResult],
    http_notes: Sequence[str],
    settings: str,
    http_judged: bool = True,
    stores: Sequence[dict[str, object]] | None = None,
    stores_note: str = "",
    inbox: str = "",
    side_by_side: Sequence[dict[str, Any]] = (),
    side_by_side_table: str = "",
) -> str:
    """The whole report as Markdown; it ends with the targets, met or not, from these numbers."""
    when = datetime.datetime.now(tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        "Generated by `nox -s bench` (`python -m benchmarks`); do not edit by hand.",
        f"Run of {when}{' in **quick** mode: few repetitions, indicative only' if quick else ''}.",
        f"Settings: {settings}.",
        "",
        "Times are microseconds per delivery: the best of interleaved rounds (used for every "
        "ratio) and the median, timed with the garbage collector enabled, as applications "
        "run (`timeit` pauses it, which hides the collections a case's allocations cause).  "
        "The *floor* is what any receiver must do: "
        "`hmac.new(key, body, sha256).hexdigest()`, `hmac.compare_digest` and "
        "`json.loads(body)`.  *x floor* is the time over the floor's on the same bytes; "
        "*hookshield typed is x* is hookshield's `verify` + typed fields over the other "
        "library's time (below 1: hookshield is faster).  hookshield's rows use the "
        "standard library's JSON decoder, as the core ships; the *hookshield[speedups]* "
        "rows, and *with speedups is x*, the same calls with the optional msgspec "
        "decoder installed by `python -m pip install -e '.[speedups]'`; they are set beside a "
        "like-for-like floor that decodes with msgspec too (*x msgspec floor*), since a "
        "hand-written receiver can install msgspec as well.  The targets, met or not, are "
        "at the end.",
        "",
        "## Machine and versions",
        "",
        "| | |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v} |" for k, v in machine().items()]
    lines += [f"| {k} | {v} |" for k, v in versions().items()]
    if breakdown:
        lines += [
            "",
            "## Where the time goes at 1 KB",
            "",
            "The floor's steps and the calls hookshield's `verify` makes, each timed on its "
            "own on the same 1 KB bodies, in microseconds (best of interleaved rounds), with "
            "the standard library's decoder.  *typed event and delivery* is the sender's "
            "`parse` less its JSON decode: reading the envelope and the sender's headers, "
            "parsing timestamps, and building the frozen event and delivery.  The floor "
            "does none of that work, nor the `Headers` view or the typed reads; hookshield's "
            "own HMAC (pad states computed once per key) and its decode (the C scanner "
            "called directly) cost less than the floor's.  The HMAC-SHA256 and JSON rows "
            "bound what any receiver spends; the rest is what typed, frozen events cost.",
            "",
        ]
        lines += _breakdown_table(breakdown)
    lines += [
        "",
        "## Single deliveries",
        "",
        "Bodies are hookshield's samples padded with the fields each sender sends "
        "(MindPeeker observations, MOCO project tasks, Moonsense pointer samples); each "
        "also carries `zen` and `hook_id`, so that githubkit's `ping` model accepts the "
        "same bytes.  Every library signs the body in its own scheme and is checked to "
        "accept it and to refuse a tampered copy before it is timed.  The libraries read "
        "the same fields from their parsed body that hookshield's typed properties "
        "return; githubkit's model keeps only the `ping` fields, so it reads those.",
        "",
    ]
    for group in groups:
        lines += _group_table(group)
    lines += ["## Batches and streams", ""]
    for extra in (batch, stream):
        if extra is not None:
            lines += _group_table(extra)
    if memory:
        lines += [
            "## Peak memory, Momentum batch",
            "",
            "Peak of traced Python allocations (tracemalloc) while running the case, over "
            f"the body size ({memory[0].body_size:,} bytes; the body itself is not counted) "
            "and over the floor's own peak: `json.loads` of the body builds every record "
            "at once, so no receiver that decodes the body whole peaks lower, and a bound "
            "on *x body* below the floor's would judge the decoder, not hookshield.",
            "",
            "| case | peak bytes | x body | x floor's peak |",
            "| --- | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {m.case} | {m.peak:,} | {m.multiple:.2f} | {m.over_floor:.2f} |" for m in memory
        ]
        lines.append("")
    lines += ["## HTTP", ""]
    if servers:
        lines += [
            "Each framework serves a hookshield endpoint and a hand-written one doing the "
            "floor, from one server process on 127.0.0.1; the load comes from a separate "
            "process.  Acknowledgement latency is measured on a `background=True` endpoint "
            "whose handler sleeps 10 s, each delivery on a new connection, one after "
            "another; its latencies are those of the 2xx answers (a full background pool "
            "answers 503, counted under *answers*).  The target is judged on `/hook/`, "
            "whose route is a plain function, as most are, against the hand-written "
            "endpoint doing its work on the event loop.  On ASGI, hookshield runs a plain "
            "route in a thread, so that a blocking handler cannot stall the server; "
            "`/hook-async/` is the same route written `async def`, `/hook-inline/` the "
            "plain route registered with `inline=True`, which runs it on the loop, "
            "and `/floor-thread/` "
            "the hand-written endpoint handing its work to the framework's thread pool "
            "(`run_in_threadpool`), as a plain-function route of its own would.  Flask is "
            "also served by gunicorn with four workers, once per de-duplication store "
            "(memory, SQLite, Redis on a local `redis-server`); those rows are measured "
            "for the record, and judged by no target.  The "
            "ASGI apps are served twice: by uvicorn with its pure-Python HTTP parser (h11) "
            "on asyncio's loop, and by `uvicorn[standard]`, as most deployments install "
            "it, with httptools on uvloop, where the server's own work per request is "
            "about half and the app's share larger.",
            "",
            "The load is one thread driving every connection over request bytes written "
            "out beforehand, so that it costs the machine little beside the server; each "
            "endpoint is loaded in turn, round after round, and the round with the most "
            "requests per second is shown.  *server CPU µs/req* is the server's CPU time "
            "(user and system, every process and thread, from /proc) over the requests "
            "sent, the least of the rounds, and in brackets the hand-written endpoint's "
            "over it: a second view of the same comparison that the load's own scheduling "
            "on a shared machine does not move.  *switches/req* counts, per request, the "
            "times the server's threads gave up the CPU (context switches, voluntary and "
            "involuntary, from /proc, the fewest of the rounds).  On an event loop busy "
            "with several connections it stays near zero while the work stays on the "
            "loop; a hand-off to a worker thread and back adds the worker's wait for work "
            "and the loop's wait for the interpreter lock, and every wait ends in a "
            "wake-up that costs the server CPU.",
            "",
            "| framework | server | endpoint | requests | answers | req/s | p50 ms | p99 ms "
            "| x hand-written req/s | server CPU µs/req | switches/req |",
            "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for server in servers:
            for load in server.loads:
                lines.append(
                    f"| {server.framework} | {server.server_text} | {load.endpoint} | {load.requests} "
                    f"| {', '.join(f'{k}: {v}' for k, v in load.statuses.items())} "
                    f"| {load.rps:,.0f} | {load.p50_ms:.2f} | {load.p99_ms:.2f} | {load.ratio_text} "
                    f"| {load.cpu_text} | {load.switches_text} |"
                )
        lines.append("")
    lines += [f"Note: {note}" for note in http_notes]
    lines += ["", *_asgi_section(servers)]
    lines += ["", *_stores_section(stores, stores_note)]
    lines += ["", *_inbox_section(inbox)]
    if side_by_side_table:
        lines += [
            "",
            "## Against the code before the redesign, side by side",
            "",
            "Each framework served twice in this run, by the code before the redesign "
            "(exported from git) and by this code, on the same server, their `/floor/` and "
            "`/hook/` loaded in turn round after round (`python -m benchmarks.regression`). "
            "A row's share is `/hook/`'s best req/s over `/floor/`'s; the change compares "
            "the two shares, which the machine's load moves far less than req/s.",
            "",
            side_by_side_table,
        ]
    lines += [
        "",
        "## Targets: met or not",
        "",
        "Computed from this run's numbers.  *n/a*: not judged in this run (not measured, "
        "or too few requests for the HTTP rows to mean anything).  An adapter is judged "
        "on the best round of each endpoint; *round by round* is `/hook/` over `/floor/` "
        "in each round, the two loaded one after the other: where that range straddles "
        "the target, the machine's other load decides the verdict, and the run should be "
        "repeated on a quieter machine.  The regression target compares each row's share "
        "of its own hand-written endpoint's req/s with the same share of the code before "
        "the redesign, served side by side in this run (the table above); without that "
        "table, with the share in `benchmarks/baseline.md`, the report the redesign "
        "started from.",
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
    ]
    for target in targets(groups, servers, http_judged=http_judged, side_by_side=side_by_side):
        met = "n/a" if target.met is None else ("yes" if target.met else "**no**")
        lines.append(f"| {target.goal} | {target.measured} | {met} |")
    return "\n".join(lines).rstrip() + "\n"


#: The ASGI endpoints the hand-off section compares, and what each one is.
HAND_OFFS = (
    ("/floor/", "(d) hand-written, work on the loop"),
    ("/floor-thread/", "(e) hand-written, work in Starlette's thread pool"),
    ("/hook/", "(a) hookshield, plain route in its worker thread (today)"),
    ("/hook-async/", "(b) hookshield, `async def` route"),
    ("/hook-inline/", "(c) hookshield, plain route on the loop (`inline=True`)"),
)


def _asgi_section(servers: Sequence[ServerResult]) -> list[str]:
    """Where the plain ASGI route's time goes: each way of running it, against the floor."""
    served = [s for s in servers if s.server.startswith("uvicorn")]
    lines = ["## The plain ASGI route: what the thread hand-off costs", ""]
    if not served:
        return [*lines, "Not measured in this run (no ASGI server was served)."]
    lines += [
        "The same 1 KB MindPeeker delivery on each ASGI server, run each way below; "
        "*CPU over the floor* is the server's CPU per request less the hand-written "
        "endpoint's on the loop, the least of the rounds (from /proc, in clock ticks of "
        "10 ms over the requests of a round: a few µs of resolution), which the "
        "machine's other load moves far less than requests per second.  *(a) less (c)* "
        "is what handing the plain route to a thread costs per delivery.",
        "",
        "| server | way | x floor req/s | CPU over the floor, µs/req | switches/req |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for server in served:
        loads = {load.endpoint: load for load in server.loads}
        floor = loads.get("/floor/")
        if floor is None or floor.cpu_us is None:
            continue
        for endpoint, way in HAND_OFFS:
            load = loads.get(endpoint)
            if load is None:
                continue
            over = "" if load.cpu_us is None else f"{load.cpu_us - floor.cpu_us:+.1f}"
            ratio = "1.00" if endpoint == "/floor/" else load.ratio_text
            lines.append(f"| {server.label} | {way} | {ratio} | {over} | {load.switches_text} |")
        threaded, inline = loads.get("/hook/"), loads.get("/hook-inline/")
        spent = [None if x is None else x.cpu_us for x in (threaded, inline)]
        if spent[0] is not None and spent[1] is not None:
            lines.append(
                f"| {server.label} | *(a) less (c): the hand-off* | "
                f"| {spent[0] - spent[1]:+.1f} | |"
            )
    return [*lines, "", *ASGI_DESIGN]


#: What the rows above mean for the design; the numbers are in the table.
ASGI_DESIGN = (
    "Why the plain route trails the floor, and what hookshield does about it.  Verifying "
    "a body of up to 64 KB already happens on the loop; what a plain route adds is one "
    "hand-off to a worker thread and back, (a) less (c).  That is the price of a "
    "server that a blocking route (a database call, an HTTP request) cannot stall, and "
    "it stays the default.  Two other hand-offs were tried and dropped: one thread "
    "that settles its results in batches saved 0-10 µs but let one slow route hold up "
    "every other, and a pool woken once per batch saved nothing measurable.  Gating on "
    "the body's size was rejected too: size does not tell whether a route blocks.  A "
    "route that only computes can run on the loop instead: write it `async def`, or "
    "register it with `@handler.on(..., inline=True)`; (b) and (c) are those.",
)


def _inbox_section(tables: str) -> list[str]:
    """The durable inbox's tables, as ``benchmarks.inbox.report`` renders them."""
    lines = ["## Durable inbox", ""]
    if not tables:
        return [*lines, "Not measured in this run."]
    return [
        *lines,
        "Flask on gunicorn with four workers, `background=` an inbox against the in-memory "
        "pool (`background=True`), each delivery acknowledged only once stored; then one "
        "`hookshield worker` process on a no-op route; then the web side's own work per "
        "delivery, against checking the HMAC alone.  Targets: p99 acknowledgement under "
        "50 ms and at least 0.5x the in-memory pool's rate; a worker of 1,000 deliveries/s.",
        "",
        tables,
    ]


def _stores_section(rows: Sequence[dict[str, object]] | None, note: str) -> list[str]:
    """The de-duplication stores' rows, as ``benchmarks.stores.measure`` returns them."""
    lines = ["## De-duplication stores", ""]
    if not rows:
        return [*lines, note or "Not measured in this run."]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines += [
        "| " + " | ".join(columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(column, "")) for column in columns) + " |")
    return [*lines, *(["", f"Note: {note}"] if note else [])]


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|")
