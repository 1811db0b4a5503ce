"""What the dashboard's tests share: stocking a real inbox, and a client that reads pages."""

from __future__ import annotations

import html.parser
import re
import time
from typing import Any

from werkzeug.test import Client, TestResponse

from hookshield import ManagedInbox, StoredDelivery
from hookshield._durable.inbox import new_id
from hookshield.testing import sign

#: Text a sender controls, made to break out of every context it could land in.
HOSTILE = (
    "<script>window.__pwned=1</script>"
    '"><img src=x onerror="window.__pwned=2">'
    "'><svg onload=alert(3)>&amp;<!--"
)
SECRET = "whsec_dashboard"


def stock(
    inbox: ManagedInbox,
    *,
    sender: str = "mindpeeker",
    event_type: str = "session.completed",
    body: bytes | None = None,
    state: str = "pending",
    error: str | None = None,
    ago: float = 60.0,
    traceparent: str | None = None,
) -> StoredDelivery:
    """Store one delivery in ``inbox`` as it would stand in ``state`` (a worker's doing)."""
    now = time.time() - ago
    body = body if body is not None else b'{"id": "evt_1", "type": "session.completed"}'
    stored = StoredDelivery(
        id=new_id(now),
        sender=sender,
        handler=sender,
        body=body,
        headers=tuple(sign("mindpeeker", body, secret=SECRET).items()),
        received=now,
        event_types=(event_type,),
        state=state,  # type: ignore[arg-type]
        attempts={"pending": 0, "dead": 3}.get(state, 1),
        last_error=error
        if error is not None
        else ("RuntimeError: the route failed" if state == "dead" else None),
        next_attempt=now,
        traceparent=traceparent,
    )
    inbox.put(stored)
    return stored


def token_of(page: str) -> str:
    """The session token in a page's forms."""
    found = re.search(r'name="token" value="([0-9a-f]+)"', page)
    assert found is not None, "the page has no form with a token"
    return found[1]


class Visitor:
    """A browser's requests, through Werkzeug's client: cookies kept, forms posted."""

    def __init__(self, app: Any, *, base_url: str = "http://dash.test") -> None:
        self.client = Client(app)
        self.base_url = base_url

    def get(self, path: str, **options: Any) -> TestResponse:
        return self.client.get(path, base_url=self.base_url, **options)

    def post(
        self,
        path: str,
        data: dict[str, str],
        *,
        site: str | None = "same-origin",
        origin: str | None = None,
        **options: Any,
    ) -> TestResponse:
        headers = dict(options.pop("headers", {}))
        if site is not None:
            headers["Sec-Fetch-Site"] = site
        if origin is not None:
            headers["Origin"] = origin
        return self.client.post(path, data=data, headers=headers, base_url=self.base_url, **options)

    def token(self, path: str) -> str:
        """The token of this visitor's session, read from the forms of the page at ``path``."""
        return token_of(self.get(path).get_data(as_text=True))


def structure(page: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """The page's elements in order, each with its attribute names: what markup it has."""
    found: list[tuple[str, str, tuple[str, ...]]] = []

    class Reader(html.parser.HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append(("start", tag, tuple(sorted(name for name, _ in attrs))))

        def handle_endtag(self, tag: str) -> None:
            found.append(("end", tag, ()))

        def handle_comment(self, data: str) -> None:
            found.append(("comment", "", ()))

    reader = Reader(convert_charrefs=True)
    reader.feed(page)
    reader.close()
    return found
