"""The benchmark harness runs end to end; its timings are never asserted."""

from __future__ import annotations

from pathlib import Path

from benchmarks import __main__ as bench
from benchmarks import peers
from benchmarks.payloads import SECRET, SIZES, TOKEN, momentum_batch, padded

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
    for heading in ("## Machine and versions", "## Targets (issue 5)", "## HTTP"):
        assert heading in text
    assert "MindPeeker, 1 KB" in text
    assert "Momentum batch, 100 records" in text


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
