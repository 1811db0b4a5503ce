"""``LISTEN`` in a thread of its own: wake idle workers the moment a delivery is stored.

Theory of operation: a :class:`Listener` holds a connection of its own (never one of
a pool: a ``LISTEN`` belongs to its session) in a daemon thread, and calls the given
``wake`` at each notification on its channel, and once after each (re)connection,
since anything sent while it was away was missed.  Used by ``PostgresInbox`` and by
``DjangoInbox`` on a PostgreSQL database (psycopg 3); imports psycopg only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg

__all__ = ["Listener"]

logger = logging.getLogger("hookshield")


class Listener:
    """``LISTEN channel`` on a connection of its own, in a daemon thread: ``wake()`` at each NOTIFY.

    A lost connection is made again, with a pause that doubles up to five seconds;
    ``wake()`` is called after each (re)connection, since a notification sent while
    it was away was missed.  :meth:`close` stops the thread within a second.
    """

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        channel: str,
        wake: Callable[[], None],
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._wake = wake
        self._stop = threading.Event()
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hookshield-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pause = 0.1
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f'LISTEN "{self._channel}"')  # a plain name: checked by the owner
                    self.connected.set()
                    pause = 0.1
                    self._wake()
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self._wake()
            except Exception as exc:
                self.connected.clear()
                if self._stop.is_set():
                    return
                logger.warning(
                    "hookshield: listening for new deliveries failed (%s); polling until it "
                    "is back, trying again in %.1f s",
                    " ".join(str(exc).split()),
                    pause,
                )
                self._wake()
                self._stop.wait(pause)
                pause = min(pause * 2, 5.0)

    def close(self) -> None:
        """Stop listening; returns once the thread has ended (within about a second)."""
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
