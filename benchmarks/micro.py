"""In-process measurements: floor, hookshield and the libraries we compare against.

Every group times its cases on the same bytes, interleaved round by round (see
:mod:`benchmarks._timing`).  The floor is the least any receiver must do per delivery:
``hmac.new(key, body, sha256).hexdigest()``, :func:`hmac.compare_digest` and
``json.loads(body)``; the auth-only floor stops before parsing.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from hookshield import (
    MindPeekerEvent,
    MocoEvent,
    MomentumEvent,
    MoonsenseEvent,
    PetalEvent,
    WebhookHandler,
)
from hookshield import _json as hookshield_json
from hookshield._headers import Headers

from . import peers
from ._timing import Timing, measure_group
from .payloads import (
    MAX_BODY_SIZE,
    SECRET,
    SIZES,
    TOKEN,
    Payload,
    momentum_batch,
    padded,
    petal_stream,
)

__all__ = [
    "STEPS",
    "Group",
    "Memory",
    "Row",
    "batch_group",
    "breakdown",
    "fast_loads",
    "memory",
    "payload_groups",
    "standard_json",
    "stream_group",
]

TITLES = {"mindpeeker": "MindPeeker", "moco": "MOCO", "moonsense": "Moonsense"}

# What a row is, for the ratios and the targets.
FLOOR = "floor"
AUTH_FLOOR = "auth floor"
HOOKSHIELD = "hookshield"
TYPED = "hookshield typed"
FAST = "hookshield[speedups] typed"
#: The like-for-like floor of the speedups rows: the same HMAC, msgspec's decoder.
FAST_FLOOR = "floor with msgspec"
PEER = "peer"
INFO = "info"

Call = Callable[[], object]

# hookshield[speedups] (msgspec) decodes JSON bodies when it is installed, as it is in
# the bench session.  Every hookshield row is timed with the standard library's
# decoder, the core as it ships (see standard_json), and the speedups rows switch to
# msgspec's for their own calls only.  (The HTTP servers run with
# HOOKSHIELD_NO_SPEEDUPS=1.)
SPEEDUPS = hookshield_json._FAST


@contextlib.contextmanager
def standard_json() -> Iterator[None]:
    """Within the block, hookshield decodes with the standard library's decoder."""
    saved = hookshield_json._FAST
    hookshield_json._FAST = None
    try:
        yield
    finally:
        hookshield_json._FAST = saved


def _with_speedups(call: Call) -> Call:
    def run() -> object:
        saved = hookshield_json._FAST
        hookshield_json._FAST = SPEEDUPS
        try:
            return call()
        finally:
            hookshield_json._FAST = saved

    return run


@dataclass(frozen=True, slots=True)
class Row:
    """One timed case of a group."""

    case: str
    kind: str
    timing: Timing


@dataclass(slots=True)
class Group:
    """Cases timed side by side on the same bytes; ``per`` deliveries per timed call."""

    title: str
    provider: str
    label: str
    body_size: int
    rows: list[Row] = field(default_factory=list)
    per: int = 1
    notes: list[str] = field(default_factory=list)

    def row(self, kind: str) -> Row:
        """The first row of ``kind``."""
        return next(r for r in self.rows if r.kind == kind)

    def case(self, name: str) -> Row | None:
        """The row named ``name``, if the group has one."""
        return next((r for r in self.rows if r.case == name), None)

    def has(self, kind: str) -> bool:
        """Whether the group has a row of ``kind``."""
        return any(r.kind == kind for r in self.rows)


def fast_loads() -> Callable[[bytes], object] | None:
    """msgspec's JSON decoder, the one hookshield[speedups] uses, if it is installed."""
    try:
        from msgspec import json as msgspec_json
    except ImportError:
        return None
    decode: Callable[[bytes], object] = msgspec_json.decode
    return decode


FAST_FLOOR_CASE = "floor with msgspec: HMAC + compare_digest + msgspec.json.decode"


def _fast_floor(body: bytes, received: str) -> Call | None:
    # What a hand-written receiver that installed msgspec would do: the fair floor for
    # the hookshield[speedups] rows, which would otherwise be set against json.loads.
    decode = fast_loads()
    if decode is None or SPEEDUPS is None:
        return None
    key = SECRET.encode()
    new, compare, sha256 = hmac.new, hmac.compare_digest, hashlib.sha256

    def floor() -> object:
        if not compare(new(key, body, sha256).hexdigest(), received):
            raise ValueError("bad signature")
        return decode(body)

    return floor


def _floor(body: bytes, received: str) -> tuple[Call, Call]:
    key = SECRET.encode()
    new, compare, sha256, loads = hmac.new, hmac.compare_digest, hashlib.sha256, json.loads

    def floor() -> object:
        if not compare(new(key, body, sha256).hexdigest(), received):
            raise ValueError("bad signature")
        return loads(body)

    def auth_floor() -> object:
        if not compare(new(key, body, sha256).hexdigest(), received):
            raise ValueError("bad signature")
        return None

    return floor, auth_floor


def _typed_reader(provider: str) -> Callable[[Any], object]:
    # The typed fields a handler of each sender would typically read.
    def mindpeeker(event: Any) -> object:
        e = cast(MindPeekerEvent, event)
        return (e.type, e.id, e.session_id, e.status, e.confidence, e.completed_at)

    def moco(event: Any) -> object:
        e = cast(MocoEvent, event)
        return (e.type, e.entity_id, e.target, e.action, e.user_id, e.timestamp)

    def moonsense(event: Any) -> object:
        e = cast(MoonsenseEvent, event)
        return (e.type, e.session_id, e.project_id, e.server_time, e.bundle_index)

    return {"mindpeeker": mindpeeker, "moco": moco, "moonsense": moonsense}[provider]


def _payload_cases(
    payload: Payload, *, with_peers: bool, notes: list[str]
) -> list[tuple[str, str, Call]]:
    body, headers = payload.body, payload.headers
    handler = WebhookHandler(
        payload.provider, secret=SECRET, dedupe=None, max_body_size=MAX_BODY_SIZE
    )
    floor, auth_floor = _floor(body, payload.signature)
    read = _typed_reader(payload.provider)
    authenticate, verify = handler.authenticate, handler.verify
    prepared = Headers(headers)

    def hs_auth() -> object:
        authenticate(body, headers)
        return None

    def hs_verify() -> object:
        return verify(body, headers)

    def hs_typed() -> object:
        return read(verify(body, headers).events[0])

    def hs_typed_prepared() -> object:
        return read(verify(body, prepared).events[0])

    cases: list[tuple[str, str, Call]] = [
        ("floor: HMAC + compare_digest + json.loads", FLOOR, floor),
        ("auth floor: HMAC + compare_digest", AUTH_FLOOR, auth_floor),
        ("hookshield `authenticate`", HOOKSHIELD, hs_auth),
        ("hookshield `verify`", HOOKSHIELD, hs_verify),
        ("hookshield `verify` + typed fields", TYPED, hs_typed),
        ("hookshield `verify` + typed fields, `Headers` made beforehand", INFO, hs_typed_prepared),
    ]
    fast_floor = _fast_floor(body, payload.signature)
    if fast_floor is not None:
        cases += [
            (FAST_FLOOR_CASE, FAST_FLOOR, fast_floor),
            ("hookshield[speedups] `verify` + typed fields", FAST, _with_speedups(hs_typed)),
        ]
    if with_peers:
        for peer in peers.PEERS:
            if not peer.available():
                notes.append(f"{peer.name} is not installed: skipped")
                continue
            peers.check(peer, payload)
            cases.append((f"{peer.name}: {peer.what}", PEER, peer.prepare(payload, body)))
    return cases


def _timed(
    group: Group, cases: Sequence[tuple[str, str, Call]], rounds: int, min_time: float
) -> Group:
    timings = measure_group([c for _, _, c in cases], rounds=rounds, min_time=min_time)
    group.rows = [Row(name, kind, t) for (name, kind, _), t in zip(cases, timings, strict=True)]
    return group


def payload_groups(
    providers: Sequence[str],
    sizes: Sequence[str],
    *,
    rounds: int,
    min_time: float,
    with_peers: bool = True,
) -> list[Group]:
    """One group per sender and size: floor, hookshield and the other libraries."""
    groups = []
    for provider in providers:
        for label in sizes:
            payload = padded(provider, label, SIZES[label])
            group = Group(f"{TITLES[provider]}, {label}", provider, label, len(payload.body))
            cases = _payload_cases(payload, with_peers=with_peers, notes=group.notes)
            groups.append(_timed(group, cases, rounds, min_time))
    return groups


# The steps of one delivery, timed each on its own for the breakdown: the floor's,
# then hookshield's in the order verify takes them.
STEP_FLOOR_AUTH = "floor: HMAC + compare_digest"
STEP_FLOOR_LOADS = "floor: `json.loads(body)`"
STEP_HEADERS = "`Headers` from the request's dict"
STEP_AUTH = "credentials: header read, HMAC, constant-time compare"
STEP_DECODE = "JSON decode (strict)"
STEP_PARSE = "parse: decode, then the typed event and the delivery"
STEP_READ = "typed field reads"
STEP_WHOLE = "`verify` + typed fields, the whole call"
STEP_DECODE_FAST = "JSON decode, hookshield[speedups]"
STEPS = (
    STEP_FLOOR_AUTH,
    STEP_FLOOR_LOADS,
    STEP_HEADERS,
    STEP_AUTH,
    STEP_DECODE,
    STEP_PARSE,
    STEP_READ,
    STEP_WHOLE,
    STEP_DECODE_FAST,
)


def breakdown(providers: Sequence[str], *, rounds: int, min_time: float) -> list[Group]:
    """Where the time of a 1 KB delivery goes: the floor's steps and hookshield's, each alone.

    hookshield's steps are the calls ``verify`` makes, on the same bytes and with the
    same prepared state, so that their sum and the whole call can be set side by side.
    """
    groups = []
    for provider in providers:
        payload = padded(provider, "1 KB", SIZES["1 KB"])
        group = Group(f"{TITLES[provider]}, 1 KB", provider, "1 KB", len(payload.body))
        groups.append(_timed(group, _step_cases(payload), rounds, min_time))
    return groups


def _step_cases(payload: Payload) -> list[tuple[str, str, Call]]:
    body, headers = payload.body, payload.headers
    handler = WebhookHandler(payload.provider, secret=SECRET, dedupe=None)
    sender, credentials = handler.verifier.sender, handler.verifier.credentials
    prepared = Headers(headers)
    signature = sender.authenticate(body, prepared, credentials)
    event = sender.parse(body, prepared, signature).events[0]
    read, verify = _typed_reader(payload.provider), handler.verify
    floor, auth_floor = _floor(body, payload.signature)
    loads, decode = json.loads, hookshield_json.decode_json
    cases: list[tuple[str, str, Call]] = [
        ("floor", FLOOR, floor),
        (STEP_FLOOR_AUTH, INFO, auth_floor),
        (STEP_FLOOR_LOADS, INFO, lambda: loads(body)),
        (STEP_HEADERS, INFO, lambda: Headers(headers)),
        (STEP_AUTH, INFO, lambda: sender.authenticate(body, prepared, credentials)),
        (STEP_DECODE, INFO, lambda: decode(body)),
        (STEP_PARSE, INFO, lambda: sender.parse(body, prepared, signature)),
        (STEP_READ, INFO, lambda: read(event)),
        (STEP_WHOLE, TYPED, lambda: read(verify(body, headers).events[0])),
    ]
    if SPEEDUPS is not None:
        cases.append((STEP_DECODE_FAST, INFO, _with_speedups(lambda: decode(body))))
    return cases


TOKEN_HEADER = "X-MessageSystems-Webhook-Token"  # noqa: S105 - a header name
TOKEN_FLOOR_CASE = "token floor: compare_digest of the token's SHA-256 + json.loads"  # noqa: S105 - a label
BATCH_VERIFY_CASE = "hookshield `verify` (decodes the whole batch first) + the same"
BATCH_HANDLE_CASE = "hookshield `handle` (in-memory de-duplication, one route per event)"
#: A row the report sets against the floor beside the typed one (bold, no target).
JUDGED = "judged"


def _token_floor(body: bytes, token: str, loads: Callable[[bytes], object] = json.loads) -> Call:
    expected = hashlib.sha256(TOKEN.encode()).digest()
    compare, sha256 = hmac.compare_digest, hashlib.sha256

    def floor() -> object:
        if not compare(sha256(token.encode()).digest(), expected):
            raise ValueError("bad token")
        return loads(body)

    return floor


def _fast_token_floor(body: bytes, token: str) -> Call | None:
    decode = fast_loads()
    if decode is None or SPEEDUPS is None:
        return None
    return _token_floor(body, token, decode)


def _read_record(event: Any) -> object:
    e = cast(MomentumEvent, event)
    return (e.type, e.id, e.message_id, e.recipient, e.timestamp)


def batch_group(records: int, *, rounds: int, min_time: float) -> Group:
    """A Momentum batch: verify and read every typed event, beside the floor on the same bytes."""
    payload = momentum_batch(records)
    body, headers = payload.body, payload.headers
    group = Group(f"Momentum batch, {records:,} records", "momentum", "batch", len(body))
    hmac_floor, _ = _floor(body, hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest())
    handler = WebhookHandler("momentum", token=TOKEN, dedupe=None)
    verify = handler.verify
    floor = _token_floor(body, headers[TOKEN_HEADER])

    def floor_read() -> object:
        result = None
        records = floor()
        for record in cast(list[dict[str, Any]], records):
            for data in record["msys"].values():
                result = (
                    data.get("type"),
                    data.get("event_id"),
                    data.get("message_id"),
                    data.get("rcpt_to"),
                    data.get("timestamp"),
                )
        return result

    iter_events = handler.iter_events

    def hs_typed() -> object:
        result = None
        for event in iter_events(body, headers):
            result = _read_record(event)
        return result

    def hs_verify() -> object:
        result = None
        for event in verify(body, headers).events:
            result = _read_record(event)
        return result

    def handling(**options: Any) -> Call:
        def run() -> object:
            # A fresh handler, and so a fresh store, each time: the batch is new to it.
            # Building one (a few µs) is charged to hookshield, not left out.
            handler = WebhookHandler("momentum", token=TOKEN, **options)
            handler.on("*")(_read_record)
            outcome = handler.handle(body, headers)
            if outcome.dispatched != records:
                raise AssertionError(f"dispatched {outcome.dispatched} of {records}: {outcome}")
            return outcome

        return run

    cases: list[tuple[str, str, Call]] = [
        (TOKEN_FLOOR_CASE, FLOOR, floor),
        (
            "HMAC floor: HMAC + compare_digest + json.loads (work Momentum does not ask)",
            INFO,
            hmac_floor,
        ),
        ("token floor, then read 5 fields of every record from the dicts", INFO, floor_read),
        ("hookshield `iter_events` + 5 typed fields of every event", TYPED, hs_typed),
        (BATCH_VERIFY_CASE, JUDGED, hs_verify),
        (BATCH_HANDLE_CASE, JUDGED, handling()),
        ("hookshield `handle`, `stream_batches=False`", INFO, handling(stream_batches=False)),
    ]
    fast_floor = _fast_token_floor(body, headers[TOKEN_HEADER])
    if fast_floor is not None:
        cases += [
            (
                "token floor with msgspec: token compare + msgspec.json.decode",
                FAST_FLOOR,
                fast_floor,
            ),
            ("hookshield[speedups] `verify` + the same", FAST, _with_speedups(hs_verify)),
        ]
    group.notes.append(
        "Momentum sends a shared token, not an HMAC, so the floor here is the token's: a "
        "constant-time compare of its SHA-256 and `json.loads`; the HMAC floor is shown "
        "for reference only.  `iter_events` verifies the token, then decodes the batch "
        "one record at a time; `verify` decodes all of it before returning; `handle` "
        "streams batches unless `stream_batches=False`.  `verify` and `handle` are judged "
        "beside `iter_events`: they are what most receivers call."
    )
    return _timed(group, cases, rounds, min_time)


def _read_metrics(event: Any) -> object:
    e = cast(PetalEvent, event)
    return (e.type, e.id, e.blink, e.eye, e.artifacts, e.bandpower)


def stream_group(messages: int, *, rounds: int, min_time: float) -> Group:
    """A stream of Petal ``metrics`` messages, one delivery each; times are per message."""
    stream = list(petal_stream(messages))
    group = Group(
        f"Petal Metrics stream, {messages:,} `metrics` messages",
        "petal",
        "stream",
        sum(len(p.body) for p in stream),
        per=messages,
    )
    key = SECRET.encode()
    signed = [(p.body, hmac.new(key, p.body, hashlib.sha256).hexdigest()) for p in stream]
    deliveries = [(p.body, p.headers) for p in stream]
    token_digest = hashlib.sha256(TOKEN.encode()).digest()
    tokens = [(p.body, p.headers["X-Petal-Token"]) for p in stream]
    new, compare, sha256, loads = hmac.new, hmac.compare_digest, hashlib.sha256, json.loads

    def floor() -> object:
        result = None
        for body, received in signed:
            if not compare(new(key, body, sha256).hexdigest(), received):
                raise ValueError("bad signature")
            result = loads(body)
        return result

    def token_floor() -> object:
        result = None
        for body, token in tokens:
            if not compare(sha256(token.encode()).digest(), token_digest):
                raise ValueError("bad token")
            result = loads(body)
        return result

    handler = WebhookHandler("petal", token=TOKEN, dedupe=None)
    verify = handler.verify

    def hs_typed() -> object:
        result = None
        for body, headers in deliveries:
            result = _read_metrics(verify(body, headers).events[0])
        return result

    def hs_handle() -> object:
        dispatching = WebhookHandler("petal", token=TOKEN)  # a fresh store each time
        dispatching.on("metrics")(_read_metrics)
        result = None
        for body, headers in deliveries:
            result = dispatching.handle(body, headers)
        return result

    cases: list[tuple[str, str, Call]] = [
        (TOKEN_FLOOR_CASE, FLOOR, token_floor),
        ("HMAC floor: HMAC + compare_digest + json.loads (work Petal does not ask)", INFO, floor),
        ("hookshield `verify` + typed fields (blink, eye, artifacts, bandpower)", TYPED, hs_typed),
        ("hookshield `handle` (in-memory de-duplication, one route)", INFO, hs_handle),
    ]
    decode = fast_loads()
    if decode is not None and SPEEDUPS is not None:

        def fast_token_floor() -> object:
            result = None
            for body, token in tokens:
                if not compare(sha256(token.encode()).digest(), token_digest):
                    raise ValueError("bad token")
                result = decode(body)
            return result

        cases += [
            (
                "token floor with msgspec: token compare + msgspec.json.decode",
                FAST_FLOOR,
                fast_token_floor,
            ),
            (
                "hookshield[speedups] `verify` + the same typed fields",
                FAST,
                _with_speedups(hs_typed),
            ),
        ]
    group.notes.append(
        "Petal Metrics authenticates with a shared token, not an HMAC, so the floor here "
        "is the token's, the cheaper one; the HMAC floor is shown for reference only."
    )
    return _timed(group, cases, rounds, min_time)


@dataclass(frozen=True, slots=True)
class Memory:
    """The peak of traced allocations while running one case, against the body's size."""

    case: str
    peak: int
    body_size: int
    #: The floor's own peak (``json.loads`` of the same body), which no receiver that
    #: decodes the body whole can go below.
    floor_peak: int

    @property
    def multiple(self) -> float:
        """The peak as a multiple of the body size."""
        return self.peak / self.body_size

    @property
    def over_floor(self) -> float:
        """The peak over the floor's peak (below 1: less than ``json.loads`` alone)."""
        return self.peak / self.floor_peak


def _peak(func: Call) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def memory(records: int) -> list[Memory]:
    """Peak memory while handling a Momentum batch of ``records`` records."""
    payload = momentum_batch(records)
    body, headers = payload.body, payload.headers
    handler = WebhookHandler("momentum", token=TOKEN)
    handler.on("*")(_read_record)
    whole = WebhookHandler("momentum", token=TOKEN, stream_batches=False)
    whole.on("*")(_read_record)
    verifying = WebhookHandler("momentum", token=TOKEN, dedupe=None)
    size = len(body)

    def iterate() -> None:
        for event in verifying.iter_events(body, headers):
            _read_record(event)

    floor = _peak(lambda: json.loads(body))
    cases: list[tuple[str, Call]] = [
        ("`json.loads` of the body (the floor's parse)", lambda: json.loads(body)),
        (MEMORY_HANDLE, lambda: handler.handle(body, headers)),
        ("hookshield `iter_events`, reading every event", iterate),
        ("hookshield `verify`", lambda: verifying.verify(body, headers)),
        ("hookshield `handle`, `stream_batches=False`", lambda: whole.handle(body, headers)),
    ]
    return [
        Memory(name, floor if i == 0 else _peak(call), size, floor)
        for i, (name, call) in enumerate(cases)
    ]


MEMORY_HANDLE = "hookshield `handle` (in-memory de-duplication, one route)"
