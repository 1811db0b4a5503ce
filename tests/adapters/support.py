"""What the adapter tests share: each sender's credentials, signed and forged deliveries."""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hookshield import Event, WebhookHandler
from hookshield.providers import get_provider
from hookshield.testing import (
    credentials,
    event_types,
    forged_credentials,
    providers,
    sample_delivery,
)

#: The credential a handler is built with (and hookshield.testing signs with): each
#: registered sender's own test credentials.
CREDENTIALS: dict[str, dict[str, Any]] = {name: credentials(name) for name in providers()}
SENDERS = tuple(CREDENTIALS)
#: Senders whose credential covers the body, so that a changed body fails.
SIGNING = tuple(name for name in SENDERS if get_provider(name).scheme is not None)
#: The largest body of the "small" handlers that the size tests use.
SMALL_LIMIT = 1024
#: A MOCO signature header that matches no body: it passes what is checked before
#: the body is read (a signature is there), so that a test of reading gets that far.
MOCO_SIGNATURE = {"X-Moco-Signature": "0" * 64}


def credential_header(sender: str) -> str:
    """The header ``sender``'s test credential travels in: its signature or its token."""
    provider = get_provider(sender)
    if provider.scheme is not None:
        return provider.scheme.signature_header
    if "token" in credentials(sender) and provider.default_token_header is not None:
        return provider.default_token_header
    return "Authorization"


@dataclass
class Recorder:
    """A handler for one sender that records the events its ``"*"`` route saw."""

    handler: WebhookHandler
    events: list[Event] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)

    def markers(self) -> list[str]:
        """The ``marker`` of each recorded event (see :func:`delivery`)."""
        return [str(event.data.get("marker")) for event in self.events]


def recorder(sender: str, **options: Any) -> Recorder:
    """A fresh handler for ``sender`` with its test credentials, recording every event."""
    rec = Recorder(WebhookHandler(sender, **CREDENTIALS[sender], **options))
    rec.handler.on("*")(rec.record)
    return rec


def first_event_type(sender: str) -> str:
    """The sender's first documented type, or any for a sender that documents none."""
    return (*event_types(sender), "invoice.paid")[0]


def delivery(
    sender: str, *, marker: str | None = None, pad: int = 0
) -> tuple[bytes, dict[str, str], str]:
    """A delivery signed as the real sender signs it, with a unique ``marker`` in its data.

    ``pad`` adds that many bytes of filler, to make a body over a size limit.
    """
    marker = marker or uuid.uuid4().hex
    data: dict[str, Any] = {"marker": marker}
    if pad:
        data["filler"] = "x" * pad
    body, headers = sample_delivery(sender, first_event_type(sender), data, **CREDENTIALS[sender])
    return body, headers, marker


def forged(sender: str) -> tuple[bytes, dict[str, str], str]:
    """A delivery signed with the wrong credential."""
    marker = uuid.uuid4().hex
    wrong = forged_credentials(sender)
    body, headers = sample_delivery(sender, first_event_type(sender), {"marker": marker}, **wrong)
    return body, headers, marker


def tampered(sender: str) -> tuple[bytes, dict[str, str], str]:
    """A signed delivery whose body was changed after signing (the signing senders)."""
    body, headers, marker = delivery(sender)
    return body.replace(marker.encode(), marker[::-1].encode()), headers, marker


def without_content_type(headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Split off Content-Type, which some test clients take apart from the headers."""
    rest = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    return headers.get("Content-Type", "application/json"), rest


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class EndlessStream(io.RawIOBase):
    """A WSGI input that never ends, as a chunked upload that goes on and on."""

    def __init__(self) -> None:
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        buffer[:] = b"x" * len(buffer)
        self.served += len(buffer)
        return len(buffer)


def chunked(stream: io.RawIOBase | io.BytesIO) -> dict[str, Any]:
    """The environ of a chunked upload: no Content-Length, a stream the server ends.

    A WSGI server that decodes chunked bodies (gunicorn) says so with
    ``wsgi.input_terminated``.
    """
    return {"wsgi.input": stream, "wsgi.input_terminated": True, "CONTENT_LENGTH": ""}


class RecordingStream(io.BytesIO):
    """A request body that remembers whether anything read it."""

    touched = False

    def read(self, size: int | None = -1) -> bytes:
        self.touched = True
        return super().read(size)

    def read1(self, size: int | None = -1) -> bytes:
        self.touched = True
        return super().read1(size)

    def readinto(self, buffer: Any) -> int:
        self.touched = True
        return super().readinto(buffer)

    def readline(self, size: int | None = -1) -> bytes:
        self.touched = True
        return super().readline(size)


#: The Django database aliases the tests configure: ``default``, an SQLite file of this
#: test process's own, and ``postgres``, which ``tests/django_db.py`` points at the
#: session's PostgreSQL server when a test asks for it.
POSTGRES_ALIAS = "postgres"


def body_eater(app: Any) -> Any:
    """An ASGI middleware that reads the request body and passes on a receive without it."""

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            while (await receive()).get("more_body", False):
                pass

            async def emptied() -> dict[str, Any]:
                return {"type": "http.request", "body": b"", "more_body": False}

            receive = emptied
        await app(scope, receive, send)

    return middleware


def configure_django() -> None:
    """Configure Django once per test process; each test overrides what it needs.

    ``hookshield.django`` is installed with what its admin needs, on a database that
    the tests which use it migrate (``tests/django_db.py``); the adapter tests need
    neither.
    """
    import atexit
    import shutil
    import tempfile

    import django
    from django.conf import settings

    if settings.configured:
        return
    folder = tempfile.mkdtemp(prefix="hookshield-django-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    settings.configure(
        DEBUG=False,
        SECRET_KEY="adapter-tests-only",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.admin",
            "hookshield.django",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": f"{folder}/default.sqlite3",
                "OPTIONS": {"timeout": 20},
            },
            # Filled in by tests/django_db.py once the PostgreSQL server is up.
            POSTGRES_ALIAS: {"ENGINE": "django.db.backends.postgresql", "NAME": "unset"},
        },
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        USE_TZ=True,
        ROOT_URLCONF="tests.adapters.django_urls",
        MIDDLEWARE=[
            "hookshield.django.WebhookMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
        ],
        HOOKSHIELD_ENDPOINTS={},
    )
    django.setup()
