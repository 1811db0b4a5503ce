"""``python -m benchmarks.profiles [--tiny] [--no-http] [--output PATH]``: where the time goes.

The targets of issue 5 that the benchmarks show missed are profiled here, and the
results written to ``docs/profiles.md``:

* single deliveries, by py-spy: hookshield's ``verify`` + typed fields on 1 KB bodies
  with the standard library's decoder, and at 64 KB hookshield[speedups] beside
  githubkit;
* the plain ASGI route, thread by thread: Starlette on uvicorn serving the
  hand-written endpoint and hookshield's routes under the HTTP benchmark's load, with
  each thread's CPU time and wake-ups read from ``/proc``.

py-spy samples a process from outside, so nothing in it is instrumented: the
microsecond-sized calls of a 1 KB delivery keep their proportions, where an in-process
profiler's own cost per call would swamp them.  It runs in its default blocking mode,
pausing the process for each sample, so that every stack is read whole.  A single
delivery is profiled in a child process (``--loop``) that first times its call without
the profiler, then repeats it while py-spy samples; each function's share of the
samples (the function on top of the stack: its own lines and the C functions it
calls) is multiplied by that unprofiled time per call.

A server's time is not profiled that way: what a hand-off to a thread costs is spent
in the kernel and in waiting for the interpreter lock, where a sampling profiler sees
no Python frame (and py-spy's own pauses would add wake-ups of their own).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import timeit
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests import servers

from hookshield import WebhookHandler

from . import peers, web
from .payloads import MAX_BODY_SIZE, SECRET, TYPED_FIELDS, padded

__all__ = ["Profile", "ServerProfile", "main", "parse_raw"]

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "profiles.md"
SENDERS = {"mindpeeker": "MindPeeker", "moco": "MOCO", "moonsense": "Moonsense"}
RATE = 500  # samples a second: each pauses the process, so fewer disturb it less
TOP = 8  # functions listed per single-delivery profile
ENDPOINTS = ("/hand-written/", "/hookshield-async/", "/hookshield-thread/", "/hand-written-thread/")
# The nox session's own py-spy, or the one beside this interpreter.
_PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
_KINDS = {
    "hookshield": "hookshield `verify` + typed fields (standard library decoder)",
    "speedups": "hookshield[speedups] `verify` + typed fields",
    "githubkit": "githubkit `webhooks.verify` + `webhooks.parse('ping', ...)`",
}

# -- the child process: one call, repeated --------------------------------------------


def _call(kind: str, provider: str, label: str) -> Callable[[], object]:
    """The call a ``--loop`` child repeats: as the benchmarks time it."""
    payload = padded(provider, label)
    if kind == "githubkit":
        (peer,) = [p for p in peers.PEERS if p.name == "githubkit"]
        return peer.prepare(payload, payload.body)
    verify = WebhookHandler(
        provider, secret=SECRET, dedupe=None, max_body_size=MAX_BODY_SIZE
    ).verify
    body, headers, fields = payload.body, payload.headers, TYPED_FIELDS[provider]

    def hookshield_typed() -> object:
        event = verify(body, headers).events[0]
        return [getattr(event, name) for name in fields]

    return hookshield_typed


def _loop(kind: str, provider: str, label: str) -> None:
    """Time the call unprofiled, print the microseconds per call, then repeat it until killed."""
    call = _call(kind, provider, label)
    timer = timeit.Timer(call)
    loops, _ = timer.autorange()
    best = min(timer.repeat(5, loops)) / loops
    print(json.dumps({"us": best * 1e6}), flush=True)
    while True:
        call()


# -- reading py-spy's raw output --------------------------------------------------------


def parse_raw(text: str) -> Iterator[tuple[list[str], int]]:
    """The stacks of py-spy's ``--format raw`` output, outermost frame first, with their counts."""
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


def _function(frame: str) -> str:
    # "decode_json (hookshield/_core/frozen_json.py:97)" -> "decode_json (hookshield/_core/frozen_json.py)"
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rpartition(':')[0]})" if where else name


def _record(pid: int, seconds: float) -> str:
    """py-spy's raw samples of process ``pid`` over ``seconds``."""
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "profile.txt"
        done = subprocess.run(  # noqa: S603 - py-spy, arguments built here
            [
                _PY_SPY, "record", "--pid", str(pid), "--rate", str(RATE),
                "--duration", str(max(1, round(seconds))),
                "--format", "raw", "--output", str(output),
            ],
            capture_output=True, text=True, timeout=seconds + 60, check=False,
        )  # fmt: skip
        if not output.exists():
            raise RuntimeError(f"py-spy wrote no profile: {(done.stderr or done.stdout)[-300:]}")
        return output.read_text(encoding="utf-8")


# -- single deliveries ------------------------------------------------------------------


@dataclass(slots=True)
class Profile:
    """One call's profile: microseconds per call and its top functions' shares."""

    title: str
    us_per_call: float
    samples: int
    shares: list[tuple[str, float]] = field(default_factory=list)  # (function, share)


def profile_call(
    kind: str, provider: str, label: str, *, seconds: float, env: dict[str, str]
) -> Profile:
    """Profile ``kind``'s call on ``provider``'s ``label`` body in a child process."""
    child = subprocess.Popen(  # noqa: S603 - this interpreter, arguments built here
        [sys.executable, "-m", "benchmarks.profiles", "--loop", kind, provider, label],
        env=env,
        cwd=servers.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            error = child.stderr.read().decode(errors="replace") if child.stderr else ""
            raise RuntimeError(f"the profiled process ended: {error.strip()[-300:]}")
        us = float(json.loads(line)["us"])
        text = _record(child.pid, seconds)
    finally:
        child.kill()
        child.wait(timeout=10)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    own: Counter[str] = Counter()
    for frames, count in parse_raw(text):
        own[_function(frames[-1])] += count
    total = sum(own.values())
    if not total:
        raise RuntimeError("py-spy took no samples")
    title = f"{_KINDS[kind]}, {SENDERS[provider]}, {label}"
    shares = [(name, count / total) for name, count in own.most_common()]
    return Profile(title, us, total, shares)


# -- the ASGI server --------------------------------------------------------------------


@dataclass(slots=True)
class ServerProfile:
    """Per endpoint and thread group, CPU µs and times put on a CPU per request."""

    server: str
    requests: int
    #: endpoint -> "loop" or "workers" -> CPU µs per request (schedstat, unprofiled run)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)
    #: endpoint -> "loop" or "workers" -> times put on a CPU, per request
    slices: dict[str, dict[str, float]] = field(default_factory=dict)


def _schedstat(pid: int) -> dict[int, tuple[int, int]]:
    """Each thread's nanoseconds on a CPU and times put on one, from its schedstat."""
    stats: dict[int, tuple[int, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            ran, _, slices = (task / "schedstat").read_text().split()[:3]
            stats[int(task.name)] = int(ran), int(slices)
        except (OSError, ValueError):  # the thread ended meanwhile
            continue
    return stats


def profile_server(*, requests: int, env: dict[str, str]) -> ServerProfile:
    """Starlette's server under each endpoint's load: CPU and wake-ups, thread by thread."""
    port = servers.free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.apps:served_starlette"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    result = ServerProfile("uvicorn", requests)
    with servers.serving([*argv, "--no-access-log"], port=port, env=env) as process:
        for endpoint in ENDPOINTS:
            web.drive(port, [web.request(endpoint, port) for _ in range(requests)], 4)  # warm-up
            load = [web.request(endpoint, port) for _ in range(requests)]
            before = _schedstat(process.pid)
            web.drive(port, load, 4)
            after = _schedstat(process.pid)
            cpu, slices = {"loop": 0.0, "workers": 0.0}, {"loop": 0.0, "workers": 0.0}
            for tid, (ran, times) in after.items():
                group = "loop" if tid == process.pid else "workers"
                ran_before, times_before = before.get(tid, (0, 0))
                cpu[group] += (ran - ran_before) / requests / 1e3
                slices[group] += (times - times_before) / requests
            result.cpu[endpoint], result.slices[endpoint] = cpu, slices
    return result


# -- the report -------------------------------------------------------------------------


def _function_table(profile: Profile) -> list[str]:
    lines = [
        f"#### {profile.title}",
        "",
        f"{profile.us_per_call:,.2f} µs per call unprofiled; {profile.samples:,} samples.",
        "",
        "| function (its own lines and the C functions it calls) | share | µs per call |",
        "| --- | ---: | ---: |",
    ]
    for name, share in profile.shares[:TOP]:
        lines.append(f"| `{name}` | {share:.1%} | {share * profile.us_per_call:,.2f} |")
    rest = sum(share for _, share in profile.shares[TOP:])
    if rest:
        lines.append(f"| everything else | {rest:.1%} | {rest * profile.us_per_call:,.2f} |")
    return [*lines, ""]


def _server_table(result: ServerProfile) -> list[str]:
    endpoints = [e for e in ENDPOINTS if e in result.cpu]
    lines = [
        "| thread | per request | " + " | ".join(f"`{e}`" for e in endpoints) + " |",
        "| --- | --- |" + " ---: |" * len(endpoints),
    ]

    def row(thread: str, what: str, cells: list[str]) -> None:
        lines.append(f"| {thread} | {what} | " + " | ".join(cells) + " |")

    titles = {"loop": "event loop", "workers": "worker threads"}
    for group, title in titles.items():
        row(title, "CPU, µs", [f"{result.cpu[e][group]:.1f}" for e in endpoints])
    row(
        "every thread", "**CPU, µs**", [f"**{sum(result.cpu[e].values()):.1f}**" for e in endpoints]
    )
    for group, title in titles.items():
        row(title, "times put on a CPU", [f"{result.slices[e][group]:.2f}" for e in endpoints])
    return lines


def render(
    *, calls: list[Profile], server: ServerProfile | None, notes: list[str], quick: bool
) -> str:
    """The Markdown of ``docs/profiles.md``."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    spy = importlib.metadata.version("py-spy")
    lines = [
        "# Profiles",
        "",
        "Generated by `nox -s profile` (`python -m benchmarks.profiles`); do not edit by hand.",
        f"Run of {now} with py-spy {spy}, {RATE} samples a second, on the machine of "
        "[the benchmarks](benchmarks.md)." + (" **Quick run: too few samples to read.**" if quick else ""),
        "",
        "Where the time goes in the targets [the benchmarks](benchmarks.md) show missed.",
        "",
        "## Single deliveries",
        "",
        "py-spy samples the process from outside, pausing it for each sample, so nothing "
        "in it is instrumented and microsecond-sized calls keep their proportions.  "
        "Each call runs in a process of its own that first times it without the profiler, "
        "then repeats it while py-spy samples.  A function's share is the share of "
        "samples with it on top of the stack: its own lines and the C functions they call "
        "(the JSON scanner under `decode_json`, OpenSSL under `hexdigest`).  The µs are "
        "that share of the unprofiled time per call.  `hookshield_typed` is the benchmark's "
        "own call of `verify` and the typed reads.  Objects "
        "are freed on the line that drops them, so `hookshield_typed`'s share grows with "
        "the body: when it returns, the delivery and every object decoded from the body "
        "are released.  githubkit's model keeps only the `ping` fields, so it builds and "
        "frees far fewer objects.",
        "",
    ]  # fmt: skip
    for profile in calls:
        lines += _function_table(profile)
    if server is not None:
        lines += [
            "## The plain ASGI route",
            "",
            f"Starlette on {server.server}, one process, loaded endpoint by endpoint "
            f"with {server.requests:,} requests by the HTTP benchmark's load generator "
            "(4 connections).  `/hand-written/` is the hand-written endpoint calling its "
            "route on the loop, `/hookshield-async/` hookshield's `async def` route, "
            "`/hookshield-thread/` its plain route (in hookshield's worker threads), "
            "`/hand-written-thread/` the "
            "hand-written work in Starlette's thread pool.",
            "",
            "*CPU* is the threads' time on a CPU over the requests sent, and *times put "
            "on a CPU* how often the scheduler ran them: each wake-up, for a call to run, "
            "for its answer, or for the interpreter lock, is one.  Both come from "
            "`/proc/<pid>/task/<tid>/schedstat`, read before and after the load.  Neither "
            "is sampled: what a hand-off to a thread costs is spent in the kernel and in "
            "waiting for the interpreter lock, where a sampling profiler sees no Python "
            "frame.",
            "",
            *_server_table(server),
            "",
        ]  # fmt: skip
    if notes:
        lines += ["## Notes", "", *(f"- {note}" for note in notes), ""]
    return "\n".join(lines)


def can_profile() -> str | None:
    """Why py-spy cannot profile here, or None when it can."""
    if not Path(_PY_SPY).exists():
        return "py-spy is not installed"
    probe = subprocess.Popen(
        [sys.executable, "-c", "import time; print(flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
    )
    try:
        assert probe.stdout is not None
        probe.stdout.readline()  # the interpreter is up
        done = subprocess.run(  # noqa: S603 - py-spy, arguments built here
            [_PY_SPY, "dump", "--pid", str(probe.pid)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        probe.kill()
        probe.wait(timeout=10)
        if probe.stdout is not None:
            probe.stdout.close()
    if done.returncode != 0:
        return f"py-spy cannot read a process here: {(done.stderr or done.stdout).strip()[-200:]}"
    return None


def main(argv: Sequence[str] | None = None) -> str:
    """Profile, write the Markdown report, and return it."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiles", description=__doc__)
    parser.add_argument(
        "--tiny", action="store_true", help="1 KB bodies, short samples: a smoke run"
    )
    parser.add_argument("--no-http", action="store_true", help="skip the server")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the report's path")
    parser.add_argument(
        "--loop", nargs=3, metavar=("KIND", "PROVIDER", "LABEL"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.loop:
        _loop(*args.loop)
        return ""
    why = can_profile()
    if why is not None:
        raise SystemExit(why)
    fast = {k: v for k, v in servers.environment().items() if k != "HOOKSHIELD_NO_SPEEDUPS"}
    plain = {**fast, "HOOKSHIELD_NO_SPEEDUPS": "1"}
    seconds = 1.0 if args.tiny else 5.0
    notes: list[str] = []
    calls = [
        profile_call("hookshield", provider, "1 KB", seconds=seconds, env=plain)
        for provider in SENDERS
    ]
    if not args.tiny:
        for provider in SENDERS:
            if importlib.util.find_spec("msgspec") is None:
                notes.append(
                    "msgspec is not installed: the hookshield[speedups] profiles are skipped"
                )
            else:
                calls.append(profile_call("speedups", provider, "64 KB", seconds=seconds, env=fast))
            if importlib.util.find_spec("githubkit") is None:
                notes.append("githubkit is not installed: its profiles are skipped")
            else:
                calls.append(
                    profile_call("githubkit", provider, "64 KB", seconds=seconds, env=fast)
                )
    server = None
    if args.no_http:
        notes.append("The server was not profiled (--no-http).")
    elif not Path("/proc/self/schedstat").exists():
        notes.append("The server was not profiled: this system has no /proc/<pid>/schedstat.")
    else:
        server = profile_server(requests=300 if args.tiny else 10_000, env=plain)
    text = render(calls=calls, server=server, notes=sorted(set(notes)), quick=args.tiny)
    args.output.write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    main()
