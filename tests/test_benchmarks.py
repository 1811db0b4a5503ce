"""The benchmark harness runs end to end; its timings are never asserted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from benchmarks import __main__ as bench
from benchmarks import micro, peers
from benchmarks.load import Answer, ResponseReader
from benchmarks.payloads import SECRET, SIZES, TOKEN, momentum_batch, padded
from hypothesis import given
from hypothesis import strategies as st

from hookshield import WebhookHandler


def test_padded_bodies_reach_their_size_and_verify() -> None:
    for provider in ("mindpeeker", "moco", "moonsense"):
        payload = padded(provider, "64 KB", SIZES["64 KB"])
        assert SIZES["64 KB"] <= len(payload.body) < SIZES["64 KB"] * 1.02
        handler = WebhookHandler(provider, secret=SECRET, dedupe=None)
        assert handler.verify(payload.body, payload.headers).events


def test_the_batch_has_one_event_per_record() -> None:
    payload = momentum_batch(50)
    handler = WebhookHandler("momentum", token=TOKEN, dedupe=None)
    assert len(handler.verify(payload.body, payload.headers).events) == 50


def test_every_installed_peer_accepts_its_signature_and_refuses_a_tampered_body() -> None:
    payload = padded("mindpeeker", "1 KB", SIZES["1 KB"])
    for peer in peers.PEERS:
        if peer.available():
            peers.check(peer, payload)  # raises if the setup verifies nothing


def test_quick_tiny_run_writes_the_report(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    text = bench.main(["--tiny", "--output", str(output)])
    assert output.read_text(encoding="utf-8") == text
    for heading in (
        "## Machine and versions",
        "## Targets (issue 5)",
        "## Where the time goes at 1 KB",
        "## HTTP",
    ):
        assert heading in text
    breakdown = text.partition("## Where the time goes at 1 KB")[2].partition("\n## ")[0]
    assert "| step | MindPeeker | MOCO | Moonsense |" in breakdown
    steps = [micro.STEP_FLOOR_AUTH, micro.STEP_HEADERS, micro.STEP_AUTH, micro.STEP_DECODE]
    steps += [micro.STEP_READ, micro.STEP_WHOLE]
    for step in steps:
        # A row of the step with a time for each of the three senders.
        (row,) = [line for line in breakdown.splitlines() if step in line]
        assert len([cell for cell in row.split("|")[2:-1] if float(cell)]) == 3, row
    assert "MindPeeker, 1 KB" in text
    assert "Momentum batch, 100 records" in text
    http = text.partition("## HTTP")[2]
    assert "| server CPU µs/req | switches/req |" in http
    loaded = [
        line.split("|")[1:-1]
        for line in http.splitlines()
        if line.startswith("| ") and ("/floor/" in line or "| /hook/ |" in line)
    ]
    assert len(loaded) >= 2 * 4  # the two endpoints of Flask, Django, Starlette, FastAPI
    if sys.platform == "linux":  # read from /proc
        for cells in loaded:
            float(cells[-2].split()[0])  # the server CPU per request
            assert float(cells[-1]) >= 0, cells  # the context switches per request


def test_profiles_tiny_run_writes_the_report(tmp_path: Path) -> None:
    from benchmarks import profiles

    why = profiles.can_profile()
    if why is not None:
        pytest.skip(why)
    output = tmp_path / "profiles.md"
    text = profiles.main(["--tiny", "--output", str(output)])
    assert output.read_text(encoding="utf-8") == text
    singles = text.partition("## Single deliveries")[2].partition("\n## ")[0]
    for sender in ("MindPeeker", "MOCO", "Moonsense"):
        profile = singles.partition(f"{sender}, 1 KB")[2].partition("####")[0]
        shares = {
            cells[0].strip(" `"): float(cells[1].strip(" %"))
            for cells in (line.split("|")[1:-1] for line in profile.splitlines())
            if len(cells) == 3 and cells[1].strip().endswith("%")
        }
        # py-spy saw the decoder at work, and the shares cover every sample.
        assert "decode_json (hookshield/_json.py)" in shares, profile
        assert sum(shares.values()) == pytest.approx(100, abs=1), profile
    server = text.partition("## The plain ASGI route")[2]
    rows = {
        tuple(cell.strip(" *") for cell in line.split("|")[1:3]): line.split("|")[3:-1]
        for line in server.splitlines()
        if line.startswith("| ") and "CPU" in line
    }
    loop, workers = rows["event loop", "CPU, µs"], rows["worker threads", "CPU, µs"]
    floor, hook = (profiles.ENDPOINTS.index(e) for e in ("/floor/", "/hook/"))
    # Both endpoints cost the loop thread something; only the plain route's handler
    # runs in worker threads.
    assert float(loop[floor]) > 0 and float(loop[hook]) > 0
    assert float(workers[floor]) == 0 < float(workers[hook])


def test_the_asgi_apps_serve_every_measured_endpoint_alike() -> None:
    # The HTTP benchmark compares these endpoints; each must do the same work: accept
    # the signed delivery and refuse a tampered one.
    from benchmarks import apps
    from starlette.testclient import TestClient

    payload = padded("mindpeeker", "1 KB", SIZES["1 KB"])
    tampered = payload.body.replace(b"completed", b"c0mpleted", 1)
    for factory in (apps.starlette_app, apps.fastapi_app):
        with TestClient(factory()) as client:
            for path in ("/floor/", "/floor-thread/", "/hook/", "/hook-async/"):
                good = client.post(path, content=payload.body, headers=payload.headers)
                bad = client.post(path, content=tampered, headers=payload.headers)
                assert (path, good.status_code, bad.status_code) == (path, 200, 401)


# One response as a server writes it: status, body, framing, whether it closes.
responses = st.tuples(
    st.sampled_from([200, 401, 413, 503]),
    st.binary(max_size=300),
    st.sampled_from(["length", "chunked"]),
    st.booleans(),
)


def _written(status: int, body: bytes, framing: str, close: bool, cuts: list[int]) -> bytes:
    head = f"HTTP/1.1 {status} Whatever\r\nServer: test\r\n"
    if close:
        head += "Connection: close\r\n"
    if framing == "length":
        return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    chunks, last = [], 0
    for cut in sorted({c % (len(body) + 1) for c in cuts} | {len(body)}):
        if cut > last:
            chunks.append(f"{cut - last:x};ext=1\r\n".encode() + body[last:cut] + b"\r\n")
            last = cut
    trailer = b"0\r\nX-Trailer: 1\r\n\r\n" if cuts else b"0\r\n\r\n"
    return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + b"".join(chunks) + trailer


@given(
    answers=st.lists(responses, min_size=1, max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=4),
    pieces=st.lists(st.integers(min_value=1, max_value=200), min_size=1),
    unframed=st.one_of(st.none(), st.binary(max_size=50)),
)
def test_the_load_generator_reads_every_response_however_it_arrives(
    answers: list[tuple[int, bytes, str, bool]],
    cuts: list[int],
    pieces: list[int],
    unframed: bytes | None,
) -> None:
    # The HTTP benchmark counts answers by status from raw bytes; a response split
    # anywhere, chunked or not, or ended by the connection, must count once.
    stream = b"".join(_written(*answer, cuts) for answer in answers)
    if unframed is not None:  # a last response without framing, ended by the close
        stream += b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + unframed
    reader = ResponseReader()
    got: list[Answer] = []
    position = 0
    for size in pieces * (len(stream) // sum(pieces) + 1):
        got += reader.feed(stream[position : position + size])
        position += size
    last = reader.finish()
    if last is not None:
        got.append(last)
    expected = [Answer(status, close) for status, _, _, close in answers]
    if unframed is not None:
        expected.append(Answer(200, close=True))
    assert got == expected
