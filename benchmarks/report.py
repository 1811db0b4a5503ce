"""The Markdown report, ``docs/benchmarks.md``: machine, versions, targets and every table."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass

from . import micro
from .micro import FAST, FLOOR, PEER, TYPED, Group, Memory, Row
from .web import ServerResult

__all__ = ["Target", "machine", "render", "targets", "versions"]

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
    """One target of issue 5: what was measured, and whether it is met (None: not measured)."""

    goal: str
    measured: str
    met: bool | None


def _ratio(group: Group, kind: str) -> float:
    return group.row(kind).timing.best / group.row(FLOOR).timing.best


def _peer_target(groups: Sequence[Group], kind: str, variant: str) -> Target:
    slower = []
    compared = 0
    for group in groups:
        if not group.has(kind):
            continue
        ours = group.row(kind).timing.best
        for row in group.rows:
            if row.kind == PEER:
                compared += 1
                if row.timing.best <= ours:
                    slower.append(
                        f"{row.case.split(':')[0]} at {group.title} ({ours / row.timing.best:.2f}x)"
                    )
    return Target(
        f"faster than every peer on the same work{variant}",
        ("slower than " + "; ".join(slower)) if slower else f"faster in all {compared} comparisons",
        (not slower) if compared else None,
    )


def targets(
    groups: Sequence[Group],
    batch: Group | None,
    memory: Sequence[Memory],
    servers: Sequence[ServerResult],
) -> list[Target]:
    """Evaluate every target of the issue against this run."""
    result = []
    kinds = [(TYPED, "")]
    if any(g.has(FAST) for g in groups):
        kinds.append((FAST, ", with hookshield[speedups]"))
    for kind, variant in kinds:
        for label, limit in (("1 KB", 1.10), ("1 MB", 1.03)):
            goal = f"verify + typed events ≤ {limit:.2f}x floor at {label}{variant}"
            chosen = [g for g in groups if g.label == label and g.has(kind)]
            if not chosen:
                result.append(Target(goal, "not run", None))
                continue
            ratios = [f"{g.title.split(',')[0]} {_ratio(g, kind):.2f}x" for g in chosen]
            met = all(_ratio(g, kind) <= limit for g in chosen)
            result.append(Target(goal, ", ".join(ratios), met))
        result.append(_peer_target(groups, kind, variant))
    if batch is not None:
        ratio = _ratio(batch, TYPED)
        whole = [r for r in batch.rows if r.case.startswith("hookshield `verify`")]
        also = (
            f"; `verify`, decoding it whole first: "
            f"{whole[0].timing.best / batch.row(FLOOR).timing.best:.2f}x"
            if whole
            else ""
        )
        result.append(
            Target(
                "Momentum 10,000-record batch ≤ 1.30x floor",
                f"{ratio:.2f}x with `iter_events` ({batch.title}){also}",
                ratio <= 1.30,
            )
        )
    served = [s for s in servers if s.rps_ratio is not None]
    if served:
        shown = ", ".join(
            f"{s.label} {s.rps_ratio:.2f}x" for s in served if s.rps_ratio is not None
        )
        threaded = ", ".join(
            f"{s.label} {s.thread_ratio:.2f}x" for s in served if s.thread_ratio is not None
        )
        if threaded:
            shown += f"; `/hook/` over the hand-written work in a thread: {threaded}"
        by_cpu = ", ".join(
            f"{s.label} {s.cpu_ratio:.2f}x" for s in served if s.cpu_ratio is not None
        )
        if by_cpu:
            shown += f"; by the server's CPU per request: {by_cpu}"
        met = all(s.rps_ratio is not None and s.rps_ratio >= 0.95 for s in served)
        result.append(
            Target("every adapter ≥ 0.95x requests/s of the hand-written endpoint", shown, met)
        )
    else:
        result.append(
            Target(
                "every adapter ≥ 0.95x requests/s of the hand-written endpoint",
                "not measured (see HTTP)",
                None,
            )
        )
    acks = [s for s in servers if s.ack_p99_ms is not None]
    if acks:
        shown = ", ".join(
            f"{s.label} {s.ack_p99_ms:.1f} ms" for s in acks if s.ack_p99_ms is not None
        )
        met = all(s.ack_p99_ms is not None and s.ack_p99_ms < 50 for s in acks)
        result.append(
            Target("p99 acknowledgement < 50 ms, 10 s handler, background=True", shown, met)
        )
    else:
        result.append(
            Target(
                "p99 acknowledgement < 50 ms, 10 s handler, background=True",
                "not measured (see HTTP)",
                None,
            )
        )
    handling = [m for m in memory if m.case.startswith("hookshield `handle`")]
    if handling:
        peak = handling[0]
        result.append(
            Target(
                "peak memory for the batch ≤ 3x the body",
                f"{peak.multiple:.2f}x",
                peak.multiple <= 3,
            )
        )
    return result


def _us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.0f}" if us >= 1000 else f"{us:.2f}"


def _group_table(group: Group) -> list[str]:
    floor = group.row(FLOOR).timing.best
    ours = group.row(TYPED).timing.best
    fast = group.row(FAST).timing.best if group.has(FAST) else None
    per = " per message" if group.per > 1 else ""
    lines = [
        f"### {group.title} (body {group.body_size:,} bytes{' in all' if group.per > 1 else ''})",
        "",
        f"| case | µs{per}, best | µs{per}, median | x floor | hookshield typed is x "
        "| with speedups is x |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in group.rows:
        t = row.timing
        versus = f"{ours / t.best:.2f}" if row.kind == PEER else ""
        versus_fast = f"{fast / t.best:.2f}" if row.kind == PEER and fast is not None else ""
        name = f"**{row.case}**" if row.kind in (TYPED, FAST) else row.case
        lines.append(
            f"| {name} | {_us(t.best / group.per)} | {_us(t.median / group.per)} "
            f"| {t.best / floor:.2f} | {versus} | {versus_fast} |"
        )
    for note in group.notes:
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
        f"| 1.10x floor, the target | {cells([f * 1.10 for f in floor])} |",
        f"| hookshield over the target | {cells([w - f * 1.10 for w, f in zip(whole, floor, strict=True)])} |",
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
) -> str:
    """The whole report as Markdown."""
    when = datetime.datetime.now(tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        "Generated by `nox -s bench` (`python -m benchmarks`); do not edit by hand.",
        f"Run of {when}{' in **quick** mode: few repetitions, indicative only' if quick else ''}.",
        f"Settings: {settings}.",
        "",
        "Times are microseconds per delivery: the best of interleaved rounds (used for every "
        "ratio) and the median.  The *floor* is what any receiver must do: "
        "`hmac.new(key, body, sha256).hexdigest()`, `hmac.compare_digest` and "
        "`json.loads(body)`.  *x floor* is the time over the floor's on the same bytes; "
        "*hookshield typed is x* is hookshield's `verify` + typed fields over the other "
        "library's time (below 1: hookshield is faster).  hookshield's rows use the "
        "standard library's JSON decoder, as the core ships; the *hookshield[speedups]* "
        "rows, and *with speedups is x*, the same calls with the optional msgspec "
        "decoder installed by `pip install 'hookshield[speedups]'`.",
        "",
        "## Machine and versions",
        "",
        "| | |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v} |" for k, v in machine().items()]
    lines += [f"| {k} | {v} |" for k, v in versions().items()]
    lines += ["", "## Targets (issue 5)", "", "| target | measured | met |", "| --- | --- | --- |"]
    for target in targets(groups, batch, memory, servers):
        met = "n/a" if target.met is None else ("yes" if target.met else "**no**")
        lines.append(f"| {target.goal} | {target.measured} | {met} |")
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
            f"Peak of traced Python allocations (tracemalloc) while running the case, over "
            f"the body size ({memory[0].body_size:,} bytes); the body itself is not counted.",
            "",
            "| case | peak bytes | x body |",
            "| --- | ---: | ---: |",
        ]
        lines += [f"| {m.case} | {m.peak:,} | {m.multiple:.2f} |" for m in memory]
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
            "`/hook-async/` is the same route written `async def`, and `/floor-thread/` "
            "the hand-written endpoint handing its work to the framework's thread pool "
            "(`run_in_threadpool`), as a plain-function route of its own would.  The "
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
                    f"| {server.framework} | {server.server} | {load.endpoint} | {load.requests} "
                    f"| {', '.join(f'{k}: {v}' for k, v in load.statuses.items())} "
                    f"| {load.rps:,.0f} | {load.p50_ms:.2f} | {load.p99_ms:.2f} | {load.ratio_text} "
                    f"| {load.cpu_text} | {load.switches_text} |"
                )
        lines.append("")
    lines += [f"Note: {note}" for note in http_notes]
    return "\n".join(lines).rstrip() + "\n"
