"""The async twins: plain routes in worker threads, async ones on the loop, via handle_async."""

from __future__ import annotations

import asyncio
import contextvars
import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

from hookshield import Claim, Event, MemoryDedupeStore, Outcome, WebhookHandler
from hookshield._handling.asynchronous import max_workers
from hookshield.testing import sample_batch, sample_delivery, sign

from .conftest import CREDENTIALS, make_handler
from .doubles import AsyncStore, NetworkStore, SlowStore

MAX_WORKERS = max_workers()
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


def _deliveries(count: int) -> list[tuple[bytes, dict[str, str]]]:
    # Each sample has an event id of its own, so none is taken for a duplicate.
    return [
        sample_delivery("mindpeeker", "session.completed", **CREDENTIALS["mindpeeker"])
        for _ in range(count)
    ]


def _handle_all(handler: WebhookHandler, count: int) -> list[Outcome]:
    async def main() -> list[Outcome]:
        calls = [handler.handle_async(body, headers) for body, headers in _deliveries(count)]
        return await asyncio.wait_for(asyncio.gather(*calls), timeout=30)

    return asyncio.run(main())


def test_a_plain_route_sees_the_callers_context_variables() -> None:
    handler = make_handler("mindpeeker")
    seen: list[str] = []
    handler.on("session.completed")(lambda event: seen.append(REQUEST_ID.get("unset")))
    ((body, headers),) = _deliveries(1)

    async def main() -> Outcome:
        REQUEST_ID.set("req-42")
        return await handler.handle_async(body, headers)

    assert asyncio.run(main()).dispatched == 1
    assert seen == ["req-42"]


def test_plain_routes_of_concurrent_deliveries_run_at_the_same_time() -> None:
    # The barrier lets the routes through only once all of them wait at it together.
    parties = min(4, MAX_WORKERS)
    barrier = threading.Barrier(parties, timeout=10)
    handler = make_handler("mindpeeker")
    handler.on("session.completed")(lambda event: barrier.wait())
    outcomes = _handle_all(handler, parties)
    assert [o.status for o in outcomes] == [200] * parties


def test_deliveries_beyond_the_pool_size_wait_their_turn() -> None:
    handler = make_handler("mindpeeker")
    running, most = 0, 0
    lock = threading.Lock()

    @handler.on("session.completed")
    def slow(event: Event) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    outcomes = _handle_all(handler, MAX_WORKERS + 3)
    assert [o.dispatched for o in outcomes] == [1] * (MAX_WORKERS + 3)
    assert most <= MAX_WORKERS


def test_a_route_raising_stopiteration_gives_500_rather_than_a_hang() -> None:
    # Beside an async route, each plain route is a call of its own to a worker thread.
    handler = make_handler("mindpeeker")

    @handler.on("session.completed")
    async def first(event: Event) -> None:
        return None

    @handler.on("session.completed")
    def odd(event: Event) -> None:
        raise StopIteration

    (outcome,) = _handle_all(handler, 1)
    assert outcome.status == 500 and outcome.dispatched == 1
    assert isinstance(outcome.error, RuntimeError)
    assert isinstance(outcome.error.__cause__, StopIteration)


def test_a_cancelled_delivery_lets_its_route_finish_and_the_next_one_run() -> None:
    handler = make_handler("mindpeeker")
    release, finished = threading.Event(), threading.Event()

    @handler.on("session.completed")
    def route(event: Event) -> None:
        if not release.is_set():
            release.wait(10)
            finished.set()

    first, second = _deliveries(2)

    reported: list[dict[str, object]] = []

    async def main() -> Outcome:
        asyncio.get_running_loop().set_exception_handler(
            lambda _, context: reported.append(context)
        )
        task = asyncio.ensure_future(handler.handle_async(*first))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        return await asyncio.wait_for(handler.handle_async(*second), timeout=10)

    assert asyncio.run(main()).status == 200
    assert finished.wait(10)
    assert reported == []  # the late answer to the cancelled call was dropped quietly


def _run_script(script: str, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **environ},
    )


def test_the_interpreter_waits_at_exit_for_a_route_still_running() -> None:
    # asyncio.run cancels the delivery's task as it returns; the route goes on in
    # its thread, and the process does not exit before it is done.
    done = _run_script(
        """
        import asyncio, time
        from hookshield import WebhookHandler
        from hookshield.testing import sample_batch, sample_delivery, sign

        handler = WebhookHandler("mindpeeker", secret="s3cret")

        @handler.on("session.completed")
        def slow(event):
            time.sleep(0.3)
            print("route finished", flush=True)

        body, headers = sample_delivery("mindpeeker", "session.completed", secret="s3cret")

        async def main():
            asyncio.ensure_future(handler.handle_async(body, headers))
            await asyncio.sleep(0.05)

        asyncio.run(main())
        print("main returned", flush=True)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["main returned", "route finished"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_runs_plain_routes_in_threads_of_its_own() -> None:
    # As a pre-forking server does: the parent has used its threads before the fork.
    done = _run_script(
        """
        import asyncio, os, signal, threading, warnings
        from hookshield import WebhookHandler
        from hookshield.testing import sample_batch, sample_delivery, sign

        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
        handler = WebhookHandler("mindpeeker", secret="s3cret")
        handler.on("session.completed")(lambda event: print(os.getpid(), flush=True))

        def handle():
            body, headers = sample_delivery("mindpeeker", "session.completed", secret="s3cret")
            return asyncio.run(handler.handle_async(body, headers)).status

        assert handle() == 200
        pid = os.fork()
        if pid == 0:
            signal.alarm(20)  # a child whose call never came back would hang the test
            os._exit(0 if handle() == 200 else 1)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status), flush=True)
        """
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "child 0"
    assert len(set(lines[:-1])) == 2  # the route ran in the parent and in the child


@pytest.mark.parametrize(("threads", "statuses"), [("1", [500, 500]), ("2", [200, 200])])
def test_hookshield_threads_sets_how_many_routes_run_at_once(
    threads: str, statuses: list[int]
) -> None:
    # Two routes that each wait for the other: they meet only with two threads.
    done = _run_script(
        """
        import asyncio, threading
        from hookshield import WebhookHandler
        from hookshield.testing import sample_batch, sample_delivery, sign

        handler = WebhookHandler("mindpeeker", secret="s3cret")
        barrier = threading.Barrier(2, timeout=1)
        handler.on("session.completed")(lambda event: barrier.wait())

        async def main():
            deliveries = [
                sample_delivery("mindpeeker", "session.completed", secret="s3cret")
                for _ in range(2)
            ]
            outcomes = await asyncio.gather(*(handler.handle_async(*d) for d in deliveries))
            print(sorted(o.status for o in outcomes))

        asyncio.run(main())
        """,
        HOOKSHIELD_THREADS=threads,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(statuses)


@pytest.mark.parametrize("value", ["0", "-3", "two", "99999", "1e3"])
def test_a_bad_hookshield_threads_is_reported_when_the_pool_is_first_needed(value: str) -> None:
    # A Flask or Django app never needs the pool: importing hookshield must not fail.
    imported = _run_script("import hookshield, hookshield.flask", HOOKSHIELD_THREADS=value)
    assert imported.returncode == 0, imported.stderr
    done = _run_script(
        """
        import asyncio
        from hookshield import WebhookHandler
        from hookshield.testing import sample_batch, sample_delivery, sign

        handler = WebhookHandler("mindpeeker", secret="s3cret")
        handler.on("session.completed")(lambda event: None)
        body, headers = sample_delivery("mindpeeker", "session.completed", secret="s3cret")
        asyncio.run(handler.handle_async(body, headers))
        """,
        HOOKSHIELD_THREADS=value,
    )
    assert done.returncode != 0
    assert "HOOKSHIELD_THREADS" in done.stderr and "whole number from 1 to 1024" in done.stderr


# -- where each call runs ----------------------------------------------------------------


def test_async_routes_run_on_the_loop_and_plain_ones_in_a_thread() -> None:
    handler = make_handler("mindpeeker")
    threads: dict[str, int] = {}

    @handler.on("session.completed")
    async def on_loop(event: Event) -> None:
        threads["async"] = threading.get_ident()

    @handler.on("session.completed")
    def in_thread(event: Event) -> None:
        threads["plain"] = threading.get_ident()

    ((body, headers),) = _deliveries(1)

    async def main() -> tuple[Outcome, int]:
        return await handler.handle_async(body, headers), threading.get_ident()

    outcome, loop_thread = asyncio.run(main())
    assert outcome.dispatched == 2
    assert threads["async"] == loop_thread
    assert threads["plain"] != loop_thread


def test_a_batch_of_plain_routes_runs_in_one_worker_thread() -> None:
    handler = make_handler("momentum")
    threads: list[int] = []
    handler.on("*")(lambda event: threads.append(threading.get_ident()))
    body = sample_batch(["delivery", "open", "click", "bounce"])
    headers = sign("momentum", body, **CREDENTIALS["momentum"])

    async def main() -> tuple[Outcome, int]:
        return await handler.handle_async(body, headers), threading.get_ident()

    outcome, loop_thread = asyncio.run(main())
    assert outcome.dispatched == 4
    assert len(threads) == 4
    assert len(set(threads)) == 1 and loop_thread not in threads


def test_nothing_routed_is_acknowledged_without_a_thread() -> None:
    handler = make_handler("mindpeeker")
    ((body, headers),) = _deliveries(1)
    outcome = asyncio.run(handler.handle_async(body, headers))
    assert outcome.status == 200 and outcome.dispatched == 0
    assert "no handler" in outcome.reason


def test_plain_routes_run_on_the_loop_when_asked() -> None:
    handler = make_handler("mindpeeker", sync_handlers_in_thread=False)
    threads: list[int] = []
    handler.on("*")(lambda event: threads.append(threading.get_ident()))
    ((body, headers),) = _deliveries(1)

    async def main() -> int:
        assert await handler.dispatch_async(handler.verify(body, headers)) == 1
        assert (await handler.handle_async(body, headers)).dispatched == 1
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert threads == [loop_thread, loop_thread]


def test_a_route_registered_inline_runs_on_the_loop_and_the_others_in_a_thread() -> None:
    handler = make_handler("mindpeeker")
    where: dict[str, list[int]] = {"inline": [], "threaded": []}
    handler.on("session.completed", inline=True)(
        lambda event: where["inline"].append(threading.get_ident())
    )
    handler.on("session.created")(lambda event: where["threaded"].append(threading.get_ident()))
    completed = sample_delivery("mindpeeker", "session.completed", **CREDENTIALS["mindpeeker"])
    created = sample_delivery("mindpeeker", "session.created", **CREDENTIALS["mindpeeker"])

    async def main() -> int:
        assert (await handler.handle_async(*completed)).dispatched == 1
        assert (await handler.handle_async(*created)).dispatched == 1
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert where["inline"] == [loop_thread]
    assert len(where["threaded"]) == 1 and where["threaded"] != [loop_thread]


def test_an_inline_route_beside_a_threaded_one_runs_where_it_is_safe() -> None:
    # With one route that must leave the loop, the delivery goes to one thread whole:
    # running the inline route there too is harmless, and saves a second hop.
    handler = make_handler("mindpeeker")
    ran: list[str] = []
    handler.on("*", inline=True)(lambda event: ran.append("inline"))
    handler.on("*")(lambda event: ran.append("threaded"))
    ((body, headers),) = _deliveries(1)
    assert asyncio.run(handler.handle_async(body, headers)).dispatched == 2
    assert ran == ["inline", "threaded"]


def test_a_plain_function_returning_a_coroutine_is_awaited() -> None:
    handler = make_handler("mindpeeker")
    seen: list[str] = []

    async def later(event: Event) -> None:
        seen.append(event.type)

    handler.on("*")(lambda event: later(event))
    ((body, headers),) = _deliveries(1)
    assert asyncio.run(handler.handle_async(body, headers)).dispatched == 1
    assert seen == ["session.completed"]


def test_async_failures_call_async_error_hooks() -> None:
    handler = make_handler("mindpeeker")
    hooked: list[str] = []

    @handler.on("*")
    async def boom(event: Event) -> None:
        raise RuntimeError("x")

    @handler.on_error
    async def hook(error: Exception, event: Event) -> None:
        hooked.append(str(error))

    @handler.on_error
    async def broken(error: Exception, event: Event) -> None:
        raise KeyError("hook")

    first, second = _deliveries(2)
    with pytest.raises(RuntimeError):
        asyncio.run(handler.dispatch_async(handler.verify(*first)))
    assert hooked == ["x"]
    assert asyncio.run(handler.handle_async(*second)).status == 500
    assert hooked == ["x", "x"]


def test_finish_async_of_a_mixed_delivery_awaits_async_routes_on_the_loop() -> None:
    handler = make_handler("mindpeeker")
    seen: list[str] = []

    @handler.on("session.completed")
    async def on_loop(event: Event) -> None:
        seen.append("async")

    handler.on("session.completed")(lambda event: seen.append("plain"))
    ((body, headers),) = _deliveries(1)

    async def main() -> Outcome:
        return await (await handler.accept_async(body, headers)).finish_async()

    assert asyncio.run(main()).dispatched == 2
    assert seen == ["async", "plain"]


class _RecordingMemoryStore(MemoryDedupeStore):
    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        self.threads.append(threading.get_ident())
        return super().claim(key, lease)


SMALL = sample_delivery("mindpeeker", "session.created", **CREDENTIALS["mindpeeker"])
BIG = sample_delivery(
    "mindpeeker", "session.created", {"notes": ["x" * 100] * 1000}, **CREDENTIALS["mindpeeker"]
)


def test_large_bodies_and_blocking_stores_are_verified_off_the_loop() -> None:
    assert len(BIG.body) > 64 * 1024
    network = NetworkStore()
    memory = _RecordingMemoryStore()
    on_network = make_handler("mindpeeker", dedupe=network)
    in_memory = make_handler("mindpeeker", dedupe=memory)

    async def main() -> int:
        assert (await on_network.accept_async(*SMALL)).ok
        assert (await in_memory.accept_async(*SMALL)).ok
        assert (await in_memory.accept_async(*BIG)).ok
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert len(network.threads) == 1 and loop_thread not in network.threads
    assert memory.threads[0] == loop_thread  # small body, in-memory store: inline
    assert memory.threads[1] != loop_thread  # large body: in a thread


def test_a_large_body_with_an_async_store_is_verified_in_a_thread_and_claimed_on_the_loop() -> None:
    handler = make_handler("mindpeeker", dedupe=AsyncStore())
    seen: list[str] = []
    handler.on("*")(lambda event: seen.append(event.type))
    forged = (BIG.body, {**BIG.headers, "X-MindPeeker-Signature": "sha256=" + "0" * 64})

    async def main() -> tuple[Outcome, Outcome, Outcome]:
        refused = await handler.handle_async(*forged)
        first = await handler.handle_async(*BIG)
        again = await handler.handle_async(*BIG)
        return refused, first, again

    refused, first, again = asyncio.run(main())
    assert refused.status == 401
    assert first.dispatched == 1 and again.duplicate
    assert seen == ["session.created"]


def test_a_large_body_with_plain_routes_is_handled_in_one_worker_thread() -> None:
    threads: list[int] = []
    handler = make_handler("mindpeeker", dedupe=NetworkStore())
    handler.on("*")(lambda event: threads.append(threading.get_ident()))

    async def main() -> tuple[Outcome, int]:
        return await handler.handle_async(*BIG), threading.get_ident()

    outcome, loop_thread = asyncio.run(main())
    assert outcome.dispatched == 1 and threads and loop_thread not in threads


def test_a_thread_that_cannot_start_fails_its_call_rather_than_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hookshield._handling import asynchronous as _async

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(_async, "_pool", _async._Pool(1))
    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        asyncio.run(_async.run_in_thread(lambda: None))
    pool = _async._pool
    assert pool is not None and (pool._threads, pool._pending) == (0, 0)


@pytest.mark.parametrize(("value", "expected"), [("", None), (" 3 ", 3), ("1024", 1024)])
def test_hookshield_threads_sizes_the_pool(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: int | None
) -> None:
    monkeypatch.setenv("HOOKSHIELD_THREADS", value)
    default = min(32, (os.cpu_count() or 1) + 4)
    assert max_workers() == (default if expected is None else expected)


def test_a_bad_hookshield_threads_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKSHIELD_THREADS", "0")
    with pytest.raises(ValueError, match="whole number from 1 to 1024"):
        max_workers()


async def _cancel_after(coroutine: Any, seconds: float) -> None:
    task = asyncio.ensure_future(coroutine)
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("routes", ["plain", "async"])
def test_a_caller_cancelled_while_a_blocking_store_claims_leaves_nothing_held(
    routes: str,
) -> None:
    # The claim goes on in its thread after the cancel; it must still be released,
    # or every retry would be told "in progress" for the whole lease.
    store = SlowStore(0.3)
    handler = make_handler("mindpeeker", dedupe=store)
    seen: list[str] = []
    if routes == "plain":
        handler.on("*")(lambda event: seen.append(event.type))
    else:

        async def record(event: Event) -> None:
            seen.append(event.type)

        handler.on("*")(record)
    ((body, headers),) = _deliveries(1)
    call = handler.accept_async if routes == "plain" else handler.handle_async
    store.delay = 0.3

    async def main() -> Outcome:
        await _cancel_after(call(body, headers), 0.1)
        store.delay = 0
        return await handler.handle_async(body, headers)

    retry = asyncio.run(main())
    assert (retry.status, retry.dispatched, seen) == (200, 1, ["session.completed"])


def test_a_large_batch_accepted_with_inline_routes_runs_them_on_the_loop_in_order() -> None:
    # accept_async keeps only the new records' keys; finish_async decodes the batch
    # again (off the loop, being large) and runs the inline routes on the loop.
    handler = make_handler("momentum")
    calls: list[tuple[str | None, int]] = []
    handler.on("*", inline=True)(lambda event: calls.append((event.id, threading.get_ident())))
    body = sample_batch(["delivery", "click", "bounce", "open"] * 40)
    assert len(body) > 64 * 1024
    headers = sign("momentum", body, **CREDENTIALS["momentum"])

    async def main() -> tuple[Outcome, Outcome, int]:
        accepted = await handler.accept_async(body, headers)
        return accepted, await accepted.finish_async(), threading.get_ident()

    accepted, finished, loop_thread = asyncio.run(main())
    assert len(accepted.pending) == 160 and finished.dispatched == 160
    assert [event_id for event_id, _ in calls] == [event.id for event in accepted.pending]
    assert {thread for _, thread in calls} == {loop_thread}
