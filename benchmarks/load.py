"""Load generator, run in its own process: ``python -m benchmarks.load --url URL ...``.

It makes ``--requests`` distinct signed MindPeeker deliveries of about 1 KB (distinct
event ids, so that de-duplication drops none), sends them over ``--concurrency``
connections, kept alive where the server allows it, and prints one line of JSON:
requests per second, p50 and p99 latency, and the count of each status.

The load must cost the machine far less than the server's work, or the numbers
measure the client: with :mod:`http.client` in threads, a server answering in 180 us
sat idle in ``epoll`` for 60% of a run.  So the requests are written out as bytes
before the clock starts, and one thread drives every connection with
:mod:`selectors`, reading only the status line and ``Content-Length`` of each answer.

With ``--ack`` every delivery is sent alone, on a new connection, one after another:
what is timed is how soon the server acknowledges (latencies of 2xx answers only; the
other statuses are counted).  Only 127.0.0.1 is accepted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import selectors
import socket
import statistics
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from .payloads import padded

__all__ = ["CHUNKED", "Answer", "ResponseReader", "drive", "main", "percentile", "request_bytes"]


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


def request_bytes(path: str, port: int, body: bytes, headers: dict[str, str]) -> bytes:
    """One POST of ``body`` to ``127.0.0.1:port``, written out as HTTP/1.1 bytes."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass(frozen=True, slots=True)
class Answer:
    """A response read in full: its status, and whether the server closes after it."""

    status: int
    close: bool


@dataclass(slots=True)
class ResponseReader:
    """Reads HTTP/1.1 responses out of bytes received in pieces of any size.

    A response is framed by ``Content-Length`` or chunked; one with neither ends where
    the connection does (:meth:`finish`).
    """

    _buffer: bytearray = field(default_factory=bytearray)
    _head: tuple[int, int | None, bool, int] | None = None  # status, length, close, start

    def feed(self, data: bytes) -> list[Answer]:
        """The responses that ``data`` completes, in order."""
        self._buffer += data
        answers: list[Answer] = []
        while True:
            if self._head is None:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    return answers
                self._head = _parse_head(bytes(self._buffer[:end]), end + 4)
            status, length, close, start = self._head
            if length == CHUNKED:
                size = _chunked_size(self._buffer, start)
                if size is None:
                    return answers
            elif length is None or len(self._buffer) < start + length:
                return answers
            else:
                size = length
            del self._buffer[: start + size]
            self._head = None
            answers.append(Answer(status, close))

    def finish(self) -> Answer | None:
        """At the end of the connection: the response that ran to it, if one did."""
        if self._head is None or self._head[1] is not None:  # framed: it is incomplete
            return None
        status, _, _, _ = self._head
        self._head = None
        return Answer(status, close=True)


#: The ``length`` of a chunked response's head.
CHUNKED = -1


def _parse_head(head: bytes, start: int) -> tuple[int, int | None, bool, int]:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1."):  # strict, so that a framing slip shows at once
        raise ValueError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    status = int(rest[:3])
    length, close = None, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            close = "close" in value
        elif name == "transfer-encoding" and value.endswith("chunked"):
            length = CHUNKED
    return status, length, close, start


def _chunked_size(buffer: bytearray, start: int) -> int | None:
    """The length of the chunked body at ``start``, trailers included; ``None`` if cut short."""
    position = start
    while True:
        end = buffer.find(b"\r\n", position)
        if end < 0:
            return None
        digits = bytes(buffer[position:end]).split(b";")[0]
        if not digits.isalnum():  # int() alone would skip stray whitespace
            raise ValueError(f"not a chunk size: {digits[:20]!r}")
        size = int(digits, 16)
        position = end + 2
        if size:
            position += size + 2  # the data and its CRLF
            continue
        while True:  # trailer lines, up to the empty one
            end = buffer.find(b"\r\n", position)
            if end < 0:
                return None
            if end == position:
                return end + 2 - start
            position = end + 2


@dataclass(slots=True)
class _Connection:
    sock: socket.socket
    reader: ResponseReader = field(default_factory=ResponseReader)
    sent_at: float = 0.0


def drive(
    port: int, requests: Sequence[bytes], concurrency: int, *, timeout: float = 30.0
) -> tuple[list[float], Counter[int]]:
    """Send every request, each connection sending its next as soon as it is answered.

    Returns the latency of each request (seconds, in order of answer) and the count
    of each status.  A connection the server closes is replaced for the next request.
    """
    selector = selectors.DefaultSelector()
    queue = iter(requests)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    clock = time.perf_counter

    def send_next(conn: _Connection | None) -> None:
        request = next(queue, None)
        if request is None:
            if conn is not None:
                selector.unregister(conn.sock)
                conn.sock.close()
            return
        if conn is None:
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(sock)
            selector.register(sock, selectors.EVENT_READ, conn)
        conn.sent_at = clock()
        conn.sock.sendall(request)

    def answered(conn: _Connection, answer: Answer) -> None:
        latencies.append(clock() - conn.sent_at)
        statuses[answer.status] += 1

    try:
        for _ in range(concurrency):
            send_next(None)
        while selector.get_map():
            ready = selector.select(timeout)
            if not ready:
                raise RuntimeError(f"no answer within {timeout} s")
            for key, _ in ready:
                conn: _Connection = key.data
                data = conn.sock.recv(65536)
                if not data:
                    last = conn.reader.finish()
                    if last is None:
                        raise RuntimeError("the server closed a connection without answering")
                    answered(conn, last)
                    selector.unregister(conn.sock)
                    conn.sock.close()
                    send_next(None)
                    continue
                for answer in conn.reader.feed(data):
                    answered(conn, answer)
                    if answer.close:
                        selector.unregister(conn.sock)
                        conn.sock.close()
                        send_next(None)
                    else:
                        send_next(conn)
    finally:
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        selector.close()
    return latencies, statuses


def run(url: str, requests: int, concurrency: int, *, ack: bool, warmup: int) -> dict[str, object]:
    """Send the deliveries and summarise the answers."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname != "127.0.0.1" or parts.port is None:
        raise SystemExit("the load generator only targets http://127.0.0.1:<port>/")
    host, port, path = parts.hostname, parts.port, parts.path or "/"
    deliveries = _deliveries(requests + warmup)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()

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
        written = [request_bytes(path, port, body, headers) for body, headers in deliveries]
        drive(port, written[:warmup], 1)
        start = time.perf_counter()
        latencies, statuses = drive(port, written[warmup:], concurrency)
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
