"""What the adapters share: the background pool and the reading of Content-Length."""

from __future__ import annotations

import functools
import threading

import pytest

from hookshield.flask import BackgroundPool

from .support import wait_for


def test_a_pool_refuses_a_wrong_size() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        BackgroundPool(max_workers=0)
    with pytest.raises(ValueError, match="max_pending"):
        BackgroundPool(max_pending=-1)
    assert repr(BackgroundPool(2, 3)) == "BackgroundPool(max_workers=2, max_pending=3)"


def test_a_pool_holds_running_and_waiting_jobs_up_to_its_size() -> None:
    pool = BackgroundPool(max_workers=1, max_pending=1)
    gate = threading.Event()
    done: list[int] = []

    def job(n: int) -> None:
        gate.wait(10)
        done.append(n)

    for n in (1, 2):
        assert pool.reserve()
        assert pool.start(functools.partial(job, n))
    assert not pool.reserve()  # one running, one waiting: full
    gate.set()
    pool.shutdown(wait=True)
    assert done == [1, 2]
    assert pool.reserve()
    assert not pool.start(lambda: None)  # shut down: the slot is given back
    assert pool.reserve()


def test_a_failing_job_is_logged_and_frees_its_slot(caplog: pytest.LogCaptureFixture) -> None:
    pool = BackgroundPool(max_workers=1, max_pending=0)

    def boom() -> None:
        raise RuntimeError("lost")

    assert pool.reserve()
    assert pool.start(boom)
    assert wait_for(pool.reserve)  # the slot came back
    pool.unreserve()
    pool.shutdown(wait=True)
    assert "background work failed" in caplog.text
