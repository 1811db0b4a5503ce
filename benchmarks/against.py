"""``python -m benchmarks.against REV``: the cost per request here, beside revision REV's.

The same signed 1 KB MindPeeker deliveries (made once, by this checkout) go through
Flask's ``webhook_view`` and Starlette's ``WebhookApp`` with the plain route run on
the loop, each app built from this checkout's ``src`` or from REV's (``git archive``),
each in a process of its own, with the standard library's JSON decoder.  The
processes alternate, round after round; a process's figure is its least time per
request over its timed batches, and the table keeps each side's least.  The design's
target, each request within 5 µs of the code before the redesign, reads from
``python -m benchmarks.against a1aa633``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("Flask", "Starlette")
Deliveries = list[tuple[bytes, dict[str, str]]]


def main(argv: Sequence[str] | None = None) -> str:
    """Measure, print the table and return it."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.against", description=__doc__)
    parser.add_argument("revision", metavar="REV", help="the revision to compare with")
    parser.add_argument("--rounds", type=int, default=3, help="processes per side (default 3)")
    parser.add_argument(
        "--batch", type=int, default=2000, help="deliveries per timed batch (default 2000)"
    )
    parser.add_argument("--batches", type=int, default=7, help="timed batches (default 7)")
    parser.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        framework, path = args.child
        print(f"{_time(framework, Path(path)):.2f}")
        return ""
    with tempfile.TemporaryDirectory(prefix="hookshield-against-") as scratch:
        folder = Path(scratch)
        archive = subprocess.run(  # noqa: S603 - git, with a revision the user named
            ["git", "archive", args.revision, "src"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        extract = ["tar", "-x", "-C", str(folder)]
        subprocess.run(extract, input=archive, check=True)  # noqa: S603
        deliveries = folder / "deliveries.pickle"
        _write_deliveries(deliveries, count=args.batch * (args.batches + 1))
        sides = {args.revision: folder / "src", "this checkout": ROOT / "src"}
        best: dict[tuple[str, str], float] = {}
        for _ in range(args.rounds):
            for framework in FRAMEWORKS:
                for side, src in sides.items():
                    found = _child(framework, src, deliveries, args.batch, args.batches)
                    key = (framework, side)
                    best[key] = min(found, best.get(key, found))
    lines = [
        f"| framework | {args.revision} µs | this checkout µs | added µs |",
        "| --- | ---: | ---: | ---: |",
    ]
    for framework in FRAMEWORKS:
        then, now = best[(framework, args.revision)], best[(framework, "this checkout")]
        lines.append(f"| {framework} | {then:.1f} | {now:.1f} | {now - then:+.1f} |")
    table = "\n".join(lines)
    print(table)
    return table


def _write_deliveries(path: Path, *, count: int) -> None:
    from .payloads import SECRET, padded

    made = [padded("mindpeeker") for _ in range(count)]
    found: dict[str, Any] = {
        "secret": SECRET,
        "deliveries": [(p.body, dict(p.headers)) for p in made],
    }
    path.write_bytes(pickle.dumps(found))


def _child(framework: str, src: Path, deliveries: Path, batch: int, batches: int) -> float:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}", "HOOKSHIELD_NO_SPEEDUPS": "1"}
    env["HOOKSHIELD_AGAINST_LOAD"] = f"{batch},{batches}"
    command = [sys.executable, "-m", "benchmarks.against", "-", "--child", framework]
    done = subprocess.run(  # noqa: S603 - this module, in a process of its own
        [*command, str(deliveries)], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{framework} from {src}: {done.stderr[-2000:]}")
    return float(done.stdout.split()[-1])


# -- in the child process: the app of the hookshield on PYTHONPATH ---------------------


def _time(framework: str, path: Path) -> float:
    """The least µs per request over the timed batches."""
    loaded = pickle.loads(path.read_bytes())  # noqa: S301 - written by the parent above
    secret: str = loaded["secret"]
    deliveries: Deliveries = loaded["deliveries"]
    batch, batches = (int(n) for n in os.environ["HOOKSHIELD_AGAINST_LOAD"].split(","))
    send = _flask(secret) if framework == "Flask" else _starlette(secret)
    assert send(deliveries[:1]) == [200], "the first delivery was not accepted"
    least = float("inf")
    for n in range(batches):
        timed = deliveries[1 + n * batch : 1 + (n + 1) * batch]
        started = time.perf_counter()
        statuses = send(timed)
        least = min(least, (time.perf_counter() - started) / len(timed))
        assert statuses == [200] * len(timed)
    return least * 1e6


def _handler(secret: str, *, inline: bool) -> Any:
    import inspect

    from hookshield import WebhookHandler

    def route(event: Any) -> object:
        return (event.session_id, event.status, event.confidence)

    options: dict[str, Any] = {}
    if inline and "inline" not in inspect.signature(WebhookHandler.on).parameters:
        # Before inline= a plain route ran on the loop with this handler option.
        hooks = WebhookHandler("mindpeeker", secret=secret, sync_handlers_in_thread=False)
    else:
        hooks = WebhookHandler("mindpeeker", secret=secret)
        options = {"inline": True} if inline else {}
    hooks.on("session.completed", **options)(route)
    return hooks


def _flask(secret: str) -> Callable[[Deliveries], list[int]]:
    from flask import Flask

    from hookshield.flask import webhook_view

    app: Any = Flask("against")  # called as a server would: WSGI, untyped here
    app.add_url_rule("/hooks/", "hooks", webhook_view(_handler(secret, inline=False)))
    base = {
        "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": "/hooks/", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000", "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": False,
        "wsgi.multiprocess": False, "wsgi.run_once": False,
    }  # fmt: skip

    def one(body: bytes, headers: dict[str, str]) -> int:
        environ = {**base, "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
        status: list[int] = []
        answer = app(environ, lambda line, headers, exc_info=None: status.append(int(line[:3])))
        for _ in answer:
            pass
        answer.close()
        return status[0]

    return lambda deliveries: [one(body, headers) for body, headers in deliveries]


def _starlette(secret: str) -> Callable[[Deliveries], list[int]]:
    from starlette.applications import Starlette
    from starlette.routing import Route

    from hookshield.asgi import WebhookApp

    app = Starlette(routes=[Route("/hooks/", WebhookApp(_handler(secret, inline=True)))])
    loop = asyncio.new_event_loop()

    async def one(body: bytes, headers: dict[str, str]) -> int:
        raw = [(b"host", b"127.0.0.1:8000"), (b"content-length", b"%d" % len(body))]
        raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": "/hooks/", "raw_path": b"/hooks/", "query_string": b"",
            "root_path": "", "headers": raw, "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }  # fmt: skip
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        status: list[int] = []

        async def receive() -> MutableMapping[str, Any]:
            return messages.pop()

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        return status[0]

    async def each(deliveries: Deliveries) -> list[int]:
        return [await one(body, headers) for body, headers in deliveries]

    return lambda deliveries: loop.run_until_complete(each(deliveries))


if __name__ == "__main__":
    main()
