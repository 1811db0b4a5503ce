"""The contract every registered sender keeps, whoever wrote it.

:class:`SenderContract` is a set of tests over one sender, named by a ``sender``
fixture: signing and verifying every documented event type, handling (routes run
once per delivery, a replay runs none), refusals of forged, unsigned and malformed
deliveries with the right status, what the headers alone settle before the body is
read, the sender's own body limit, what an inbox keeps of a delivery and runs again,
the framework adapters (Flask's, Django's and
Starlette's own test clients), the command line (``sign``, ``verify``, ``send`` to
``listen``) and ``hookshield demo``.  ``test_contract.py`` runs it for every sender
in the registry; ``test_own_sender.py`` for a sender defined and registered in that
one test module.  Nothing here names a sender: what it needs comes from the
sender's module (``test_credentials``, ``event_types``, ``scheme``, ``demo``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hookshield import (
    AuthenticationError,
    BodyTooLarge,
    EmptyBody,
    InvalidEncoding,
    MalformedPayload,
    MissingCredentials,
    PayloadTooDeep,
    SQLiteInbox,
    UnsupportedContentType,
    WebhookHandler,
    run_worker,
)
from hookshield.cli import main
from hookshield.providers import Provider, get_provider
from hookshield.testing import (
    credentials,
    event_types,
    forged_credentials,
    sample_body,
    sample_delivery,
    sign,
)
from tests.adapters.support import RecordingStream, credential_header
from tests.cli.helpers import parse_headers, serving, write

#: What a request carries besides what its sender's verification and parse read.
UNRELATED = {
    "Cookie": "session=cookie-at-rest",
    "X-Forwarded-For": "203.0.113.77",
    "X-Request-Id": "request-at-rest",
}


def a_type(sender: str) -> str:
    """An event type of ``sender``: its first documented one, or any for a sender with none."""
    return (*event_types(sender), "invoice.paid")[0]


def handler(sender: str, **options: Any) -> WebhookHandler:
    """A handler for ``sender`` with its test credentials, recording nothing."""
    return WebhookHandler(sender, **credentials(sender), **options)


def recording(sender: str) -> tuple[WebhookHandler, list[str]]:
    """A handler whose ``"*"`` route records the type of each event it runs for."""
    made = handler(sender)
    seen: list[str] = []
    made.on("*")(lambda event: seen.append(event.type))
    return made, seen


def signed(sender: str, body: bytes, **headers: str) -> dict[str, str]:
    """The headers ``sender`` signs ``body`` with, some replaced by ``headers``."""
    return {**sign(sender, body, **credentials(sender)), **headers}


def cli_credentials(options: dict[str, Any]) -> list[str]:
    """The command line's options for keyword credentials."""
    words: list[str] = []
    for option, value in options.items():
        if option == "basic_auth":
            words += ["--basic-auth", ":".join(value)]
        else:
            words += ["--" + option.replace("_", "-"), str(value)]
    return words


class SenderContract:
    """What holds for any registered sender; the ``sender`` fixture names it."""

    # -- signing, verifying, handling ------------------------------------------------

    def test_the_sender_declares_what_the_contract_reads(self, sender: str) -> None:
        provider = get_provider(sender)
        assert isinstance(provider, Provider) and provider.name == sender
        assert credentials(sender), "declare test_credentials in the sender's module"
        assert provider.retry_window > 0 and provider.default_dedupe_ttl > provider.retry_window

    def test_every_documented_type_verifies_as_its_typed_event(self, sender: str) -> None:
        provider = get_provider(sender)
        receiver = handler(sender)
        for kind in event_types(sender) or (a_type(sender),):
            delivery = receiver.verify(*sample_delivery(sender, kind, **credentials(sender)))
            assert delivery.provider == sender
            assert [event.type for event in delivery.events] == [kind]
            (event,) = delivery.events
            assert isinstance(event, provider.event_class) and event.provider == sender

    def test_each_sample_runs_the_routes_and_the_same_one_again_none(self, sender: str) -> None:
        receiver, seen = recording(sender)
        kind = a_type(sender)
        deliveries = [sample_delivery(sender, kind, **credentials(sender)) for _ in range(3)]
        for body, headers in deliveries:
            outcome = receiver.handle(body, headers)
            assert outcome.status == 200 and not outcome.duplicate
        assert seen == [kind] * 3
        # The first again, byte for byte: a retry, or a replay of a captured delivery.
        again = receiver.handle(*deliveries[0])
        assert again.status == 200 and seen == [kind] * 3

    def test_a_forged_credential_is_refused(self, sender: str) -> None:
        body = sample_body(sender, a_type(sender))
        headers = sign(sender, body, **forged_credentials(sender))
        receiver, seen = recording(sender)
        assert receiver.handle(body, headers).status == 401 and not seen

    def test_a_changed_body_is_refused_where_the_body_is_signed(self, sender: str) -> None:
        if get_provider(sender).scheme is None:
            pytest.skip(f"{sender}'s credential does not cover the body")
        body = sample_body(sender, a_type(sender))
        headers = signed(sender, body)
        assert handler(sender).handle(body + b" ", headers).status == 401

    def test_no_credential_is_refused(self, sender: str) -> None:
        body = sample_body(sender, a_type(sender))
        outcome = handler(sender).handle(body, {"Content-Type": "application/json"})
        assert outcome.status == 401

    # -- what the headers settle, before the body is read ---------------------------------

    def test_a_delivery_without_its_credential_header_is_refused_before_the_body(
        self, sender: str
    ) -> None:
        flask = pytest.importorskip("flask")
        from hookshield.flask import webhook_view

        body, headers = sample_delivery(sender, a_type(sender), **credentials(sender))
        receiver = handler(sender)
        receiver.check_headers(headers)
        name = credential_header(sender)
        bare = {k: v for k, v in headers.items() if k.lower() != name.lower()}
        with pytest.raises(MissingCredentials, match=name):
            receiver.check_headers(bare)
        # Through an adapter: answered without a byte of the body read, unless valid.
        app = flask.Flask(__name__)
        app.add_url_rule("/hooks", view_func=webhook_view(receiver))
        for sent, status, read in ((bare, 401, False), (headers, 200, True)):
            stream = RecordingStream(body)
            response = app.test_client().post(
                "/hooks",
                headers=sent,
                environ_overrides={"wsgi.input": stream, "CONTENT_LENGTH": str(len(body))},
            )
            assert (response.status_code, stream.touched) == (status, read)

    def test_a_wrong_header_credential_is_refused_before_the_body_a_signature_with_it(
        self, sender: str
    ) -> None:
        body = sample_body(sender, a_type(sender))
        forged = sign(sender, body, **forged_credentials(sender))
        receiver = handler(sender)
        if "secret" in credentials(sender):
            receiver.check_headers(forged)  # a signature over the body is judged with the body
        else:
            with pytest.raises(AuthenticationError):
                receiver.check_headers(forged)
        with pytest.raises(AuthenticationError):
            receiver.authenticate(body, forged)

    def test_the_handler_bounds_the_body_by_the_senders_own_limit(self, sender: str) -> None:
        limit = get_provider(sender).default_max_body_size
        assert type(limit) is int and limit > 0
        receiver = handler(sender)
        assert receiver.max_body_size == limit
        assert handler(sender, max_body_size=10).max_body_size == 10
        body, headers = sample_delivery(sender, a_type(sender), **credentials(sender))
        receiver.check_headers({**headers, "Content-Length": str(limit)})
        with pytest.raises(BodyTooLarge):
            receiver.check_headers({**headers, "Content-Length": str(limit + 1)})
        assert receiver.handle(b" " * (limit + 1), headers).status == 413
        exact = handler(sender, max_body_size=len(body))
        assert exact.handle(body, headers).status == 200
        assert handler(sender, max_body_size=len(body) - 1).handle(body, headers).status == 413

    # -- what an inbox keeps, and runs again ----------------------------------------------

    @pytest.fixture
    def inbox(self, tmp_path: Path) -> Iterator[SQLiteInbox]:
        """An inbox of the test's own, closed after it (Python 3.13 warns of one left open)."""
        made = SQLiteInbox(tmp_path / "inbox.db")
        yield made
        made.close()

    def test_a_stored_delivery_keeps_only_what_verifying_and_parsing_read(
        self, sender: str, inbox: SQLiteInbox
    ) -> None:
        testclient = pytest.importorskip("starlette.testclient")
        from hookshield.asgi import WebhookApp

        kind = a_type(sender)
        body, headers = sample_delivery(sender, kind, **credentials(sender))
        receiver, seen = recording(sender)
        with testclient.TestClient(WebhookApp(receiver, background=inbox)) as client:
            response = client.post("/", content=body, headers={**headers, **UNRELATED})
            assert response.status_code == 200
        [row] = inbox.list()
        kept = {name.lower() for name, _ in row.headers}
        sent = {name.lower() for name in headers}
        assert kept <= sent and "content-type" in kept
        assert {name.lower() for name in get_provider(sender).parse_headers} & sent <= kept
        # A signature is kept, to be checked again; a shared credential is not.
        signs = "secret" in credentials(sender)
        assert (credential_header(sender).lower() in kept) is signs
        assert run_worker(inbox, receiver, burst=True, handle_signals=False).done == 1
        assert seen == [kind]

    def test_a_stored_signature_is_checked_again_by_the_worker(
        self, sender: str, inbox: SQLiteInbox
    ) -> None:
        if "secret" not in credentials(sender):
            pytest.skip(f"{sender}'s credential is checked on arrival; the seal vouches for it")
        testclient = pytest.importorskip("starlette.testclient")
        from hookshield.asgi import WebhookApp

        body, headers = sample_delivery(sender, a_type(sender), **credentials(sender))
        with testclient.TestClient(WebhookApp(handler(sender), background=inbox)) as client:
            assert client.post("/", content=body, headers=headers).status_code == 200
        # A worker whose secret is not the web app's verifies the stored bytes again,
        # and never runs them.
        stranger = WebhookHandler(sender, **forged_credentials(sender))
        ran: list[str] = []
        stranger.on("*")(lambda event: ran.append(event.type))
        stats = run_worker(inbox, stranger, burst=True, handle_signals=False)
        assert (stats.done, stats.dead, ran) == (0, 1, [])

    # -- malformed deliveries, once authenticated ----------------------------------------

    @pytest.mark.parametrize(
        ("body", "error"),
        [
            (b'{"type": ', MalformedPayload),
            (b'{"type": "\xff\xfe"}', InvalidEncoding),
            (b"", EmptyBody),
            (b"[" * 200_000 + b"]" * 200_000, PayloadTooDeep),
            (b'{"type": "x", "value": NaN}', MalformedPayload),
            (b'{"type": "x", "value": ' + b"9" * 5000 + b"}", MalformedPayload),
        ],
        ids=["truncated", "not-utf8", "empty", "too-deep", "nan", "huge-integer"],
    )
    def test_a_malformed_body_is_a_typed_400(
        self, sender: str, body: bytes, error: type[Exception]
    ) -> None:
        with pytest.raises(error):
            handler(sender).verify(body, signed(sender, body))
        assert handler(sender).handle(body, signed(sender, body)).status == 400

    @pytest.mark.parametrize(
        "content_type",
        ["text/xml", "multipart/form-data; boundary=x", "application/json; charset=latin-1"],
    )
    def test_a_body_that_is_not_json_is_a_415(self, sender: str, content_type: str) -> None:
        body = sample_body(sender, a_type(sender))
        headers = signed(sender, body, **{"Content-Type": content_type})
        if get_provider(sender).accepts_any_body:
            # Handed over as it is (Standard Webhooks): an event, never a refusal.
            receiver, seen = recording(sender)
            assert receiver.handle(body, headers).status == 200 and len(seen) == 1
            return
        with pytest.raises(UnsupportedContentType):
            handler(sender).verify(body, headers)

    def test_no_content_type_reads_as_json(self, sender: str) -> None:
        body = sample_body(sender, a_type(sender))
        headers = {k: v for k, v in signed(sender, body).items() if k.lower() != "content-type"}
        assert handler(sender).verify(body, headers).events

    def test_json_of_another_shape_is_refused_or_read_without_fields(self, sender: str) -> None:
        # A sender that names its events in headers (MOCO, GitHub) reads a body that
        # is no object as an event without fields; the others refuse it.
        body = b'"just a string"'
        outcome = handler(sender).handle(body, signed(sender, body))
        assert outcome.status in (200, 400)
        if outcome.status == 200 and outcome.delivery is not None:
            assert all(event.data == {} for event in outcome.delivery.events)

    # -- the framework adapters, through their own test clients --------------------------

    def test_flask(self, sender: str) -> None:
        flask = pytest.importorskip("flask")
        from hookshield.flask import webhook_view

        receiver, seen = recording(sender)
        app = flask.Flask(__name__)
        app.add_url_rule("/hooks", view_func=webhook_view(receiver))
        client = app.test_client()
        body, headers = sample_delivery(sender, a_type(sender), **credentials(sender))
        assert client.post("/hooks", data=body, headers=headers).status_code == 200
        assert client.post("/hooks", data=body, headers=headers).status_code == 200
        forged = sign(sender, body, **forged_credentials(sender))
        assert client.post("/hooks", data=body, headers=forged).status_code == 401
        assert seen == [a_type(sender)]

    def test_django(self, sender: str) -> None:
        pytest.importorskip("django")
        from tests.adapters.support import configure_django

        configure_django()
        from django.test import RequestFactory

        from hookshield.django import webhook_view

        receiver, seen = recording(sender)
        view = webhook_view(receiver)
        body, headers = sample_delivery(sender, a_type(sender), **credentials(sender))
        forged = sign(sender, body, **forged_credentials(sender))
        for sent, status in ((headers, 200), (headers, 200), (forged, 401)):
            rest = {k: v for k, v in sent.items() if k.lower() != "content-type"}
            request = RequestFactory().post(
                "/hooks", data=body, content_type=sent["Content-Type"], headers=rest
            )
            assert view(request).status_code == status
        assert seen == [a_type(sender)]

    def test_starlette(self, sender: str) -> None:
        testclient = pytest.importorskip("starlette.testclient")
        from hookshield.asgi import WebhookApp

        receiver, seen = recording(sender)
        with testclient.TestClient(WebhookApp(receiver)) as client:
            body, headers = sample_delivery(sender, a_type(sender), **credentials(sender))
            assert client.post("/", content=body, headers=headers).status_code == 200
            assert client.post("/", content=body, headers=headers).status_code == 200
            forged = sign(sender, body, **forged_credentials(sender))
            assert client.post("/", content=body, headers=forged).status_code == 401
        assert seen == [a_type(sender)]

    # -- the command line and the demo ----------------------------------------------------

    def test_cli_sign_then_verify(
        self, sender: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        kind = a_type(sender)
        path = write(tmp_path, "body.json", sample_body(sender, kind))
        given = cli_credentials(credentials(sender))
        assert main(["sign", "-p", sender, *given, "--event", kind, path]) == 0
        headers = parse_headers(capsys.readouterr().out)
        header_file = tmp_path / "headers.txt"
        header_file.write_text("".join(f"{k}: {v}\n" for k, v in headers.items()))
        verify = ["verify", "-p", sender, *given, "--header-file", str(header_file)]
        assert main([*verify, "--json", path]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["ok"] is True and [e["type"] for e in result["events"]] == [kind]
        wrong = cli_credentials(forged_credentials(sender))
        assert main(["verify", "-p", sender, *wrong, "--header-file", str(header_file), path]) == 1

    def test_cli_send_to_listen(self, sender: str, capsys: pytest.CaptureFixture[str]) -> None:
        given = cli_credentials(credentials(sender))
        kind = a_type(sender)
        with serving(capsys, "-p", sender, *given, "--count", "1") as (url, finish):
            assert main(["send", url, "-p", sender, "-e", kind, *given, "--json"]) == 0
            lines = finish()
        [sent] = [line for line in lines if "request_headers" in line]
        assert sent["status"] == 200 and sent["duplicate"] is False
        [seen] = [line for line in lines if "path" in line]
        assert [e["type"] for e in seen["delivery"]["events"]] == [kind]

    def test_the_demo(self, sender: str, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["demo", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        cases = [case for case in report["cases"] if case["provider"] == sender]
        script = get_provider(sender).demo
        if script is None:
            assert cases == []  # left out of the demo by its module, and nothing broke
            return
        assert [case["case"] for case in cases] == [
            "valid",
            *(a for a in _ORDER if a in script.attacks),
        ]
        assert all(case["passed"] for case in cases), cases


# The order in which the demo sends the bad deliveries.
_ORDER = ("forged", "tampered", "unsigned", "replayed")
