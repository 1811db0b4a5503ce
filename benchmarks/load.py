"""Load generator, run in its own process: ``python -m benchmarks.load --url URL ...``.

It makes ``--requests`` distinct signed MindPeeker deliveries of about 1 KB (distinct
event ids, so that de-duplication drops none), sends them from ``--concurrency``
threads over keep-alive connections where the server allows them, and prints one line
of JSON: requests per second, p50 and p99 latency, and the count of each status.
With ``--ack`` every delivery is sent alone, on a new connection, one after another:
what is timed is how soon the server acknowledges (latencies of 2xx answers only; the
other statuses are counted).  Only 127.0.0.1 is accepted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence

from .payloads import padded

__all__ = ["main", "percentile"]


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def _deliveries(count: int) -> list[tuple[bytes, dict[str, str]]]:
    made = []
    for _ in range(count):
        payload = padded("mindpeeker", "1 KB", 1024)
        made.append((payload.body, payload.headers))
    return made


def _send(
    connection: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]
) -> int:
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    if response.will_close:
        connection.close()  # the next request opens a new connection
    return response.status


def run(url: str, requests: int, concurrency: int, *, ack: bool, warmup: int) -> dict[str, object]:
    """Send the deliveries and summarise the answers."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname != "127.0.0.1" or parts.port is None:
        raise SystemExit("the load generator only targets http://127.0.0.1:<port>/")
    host, port, path = parts.hostname, parts.port, parts.path or "/"
    deliveries = _deliveries(requests + warmup)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    if ack:
        for index, (body, headers) in enumerate(deliveries):
            connection = http.client.HTTPConnection(host, port, timeout=30)
            start = time.perf_counter()
            status = _send(connection, path, body, {**headers, "Connection": "close"})
            elapsed = time.perf_counter() - start
            connection.close()
            if index >= warmup:
                statuses[status] += 1
                # Only a 2xx is an acknowledgement; a 503 from a full pool is not.
                if 200 <= status < 300:
                    latencies.append(elapsed)
        seconds = sum(latencies)
    else:
        warm = http.client.HTTPConnection(host, port, timeout=30)
        for body, headers in deliveries[:warmup]:
            _send(warm, path, body, headers)
        warm.close()
        work = deliveries[warmup:]
        shares = [work[i::concurrency] for i in range(concurrency)]

        def worker(share: list[tuple[bytes, dict[str, str]]]) -> None:
            connection = http.client.HTTPConnection(host, port, timeout=30)
            mine: list[float] = []
            seen: Counter[int] = Counter()
            for body, headers in share:
                start = time.perf_counter()
                seen[_send(connection, path, body, headers)] += 1
                mine.append(time.perf_counter() - start)
            connection.close()
            with lock:
                latencies.extend(mine)
                statuses.update(seen)

        threads = [threading.Thread(target=worker, args=(share,)) for share in shares]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - start
    if not latencies:
        raise SystemExit(f"no request was acknowledged: {dict(statuses)}")
    return {
        "requests": sum(statuses.values()),
        "seconds": seconds,
        "rps": len(latencies) / seconds if seconds else 0.0,  # acknowledged per second
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, send the load, print the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--ack", action="store_true")
    args = parser.parse_args(argv)
    if not 0 < args.requests <= 100_000:
        raise SystemExit("--requests must be between 1 and 100,000")
    summary = run(args.url, args.requests, args.concurrency, ack=args.ack, warmup=args.warmup)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
