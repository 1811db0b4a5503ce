"""The ``webhook`` pytest fixture: deliveries signed exactly as each sender signs them.

Theory of operation: pytest loads this module through the ``pytest11`` entry point
that hookshield's distribution declares (a top-level module beside the ``hookshield``
package, so that loading it imports none of hookshield), so the fixture is there in every test suite of a
project that installs hookshield, with no ``conftest.py`` line.  It is a thin layer
over :mod:`hookshield.testing` (the same bodies and headers), plus one helper that
posts a delivery through a framework's own test client, each of which wants the raw
body and its headers passed its own way.

Rules: importing this module imports pytest only, never hookshield's own modules:
pytest loads it at every start, before coverage starts measuring, so a module it
imported would show its definitions as never run.  hookshield.testing is imported when
a test first asks for a delivery; a framework is never imported here, only recognised
by the class of the client a test passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from hookshield.testing import SampleDelivery

__all__ = ["Webhooks", "webhook"]


class Webhooks:
    """What the ``webhook`` fixture gives a test: signed deliveries, and a way to post them."""

    def delivery(
        self,
        sender: str,
        event_type: str | None = None,
        data: Mapping[str, Any] | None = None,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        **credentials: Any,
    ) -> SampleDelivery:
        """A signed ``(body, headers)`` of ``event_type``, exactly as ``sender`` makes it.

        ``event_type`` is the sender's first documented one when left out; ``data`` is
        merged into the sample's data; ``body`` signs bytes of your own instead of a
        sample.  ``credentials`` are those of :func:`hookshield.testing.sign`
        (``secret=``, ``token=``, ... and its options: ``event_id=``, ``timestamp=``,
        ``private_key=``); without any, the sender's test credentials
        (:meth:`credentials`), which a handler built with them verifies.
        """
        from hookshield.testing import SampleDelivery, sample_body, sign

        kind = event_type if event_type is not None else _first_type(sender)
        if body is None:
            body = sample_body(sender, kind, data, content_type=content_type)
        elif data is not None:
            raise TypeError("give data= (merged into a sample) or body= (your own), not both")
        signing = {key: value for key, value in credentials.items() if key in _CREDENTIALS}
        options = {key: value for key, value in credentials.items() if key not in _CREDENTIALS}
        given = signing or self.credentials(sender)
        options.setdefault("event", kind)
        headers = sign(sender, body, content_type=content_type, **given, **options)
        return SampleDelivery(body, headers)

    def credentials(self, sender: str) -> dict[str, Any]:
        """The sender's test credentials: ``WebhookHandler(sender, **webhook.credentials(sender))``."""
        from hookshield.testing import credentials

        return credentials(sender)

    def post(
        self, client: Any, path: str, delivery: SampleDelivery | tuple[bytes, Mapping[str, str]]
    ) -> Any:
        """Post ``delivery`` to ``path`` through a framework's test client; its response.

        ``client`` is Flask's (any Werkzeug test client), Django's
        (``django.test.Client``) or Starlette's (``TestClient``, FastAPI's too).  The
        body goes as the raw bytes that were signed, with every header.
        """
        body, headers = delivery
        kind = _client_kind(client)
        if kind == "werkzeug":
            return client.post(path, data=body, headers=dict(headers))
        if kind == "httpx":
            return client.post(path, content=body, headers=dict(headers))
        # Django takes the Content-Type apart from the other headers.
        content_type = "application/octet-stream"
        others: dict[str, str] = {}
        for name, value in headers.items():
            if name.lower() == "content-type":
                content_type = value
            else:
                others[name] = value
        return client.post(path, data=body, content_type=content_type, headers=others)


_CREDENTIALS = frozenset(
    {"secret", "private_key", "token", "token_header", "basic_auth", "bearer_token"}
)
#: The test clients :meth:`Webhooks.post` knows, by the module of a class they derive from.
_CLIENTS = (
    ("werkzeug.test", "werkzeug"),
    ("django.test", "django"),
    ("httpx", "httpx"),  # Starlette's TestClient is an httpx (or httpx2) client
)


def _client_kind(client: Any) -> str:
    for cls in type(client).__mro__:
        for module, kind in _CLIENTS:
            if cls.__module__.startswith(module):
                return kind
    raise TypeError(
        f"webhook.post() takes Flask's, Django's or Starlette's test client, not "
        f"{type(client).__name__}; for another, post webhook.delivery()'s body and "
        "headers yourself"
    )


def _first_type(sender: str) -> str:
    """The type a delivery of ``sender`` has when the test names none."""
    from hookshield.testing import event_types

    return (*event_types(sender), "invoice.paid")[0]


@pytest.fixture
def webhook() -> Webhooks:
    """Deliveries signed exactly as each sender signs them, and a way to post them.

    ``webhook.delivery("github", "issues.opened", secret=...)`` is a signed ``(body,
    headers)``; ``webhook.post(client, "/hooks", delivery)`` posts it through Flask's,
    Django's or Starlette's test client.
    """
    return Webhooks()
