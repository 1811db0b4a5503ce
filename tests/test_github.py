"""GitHub: its documented example, its event naming, and its unsigned delivery GUID."""

from __future__ import annotations

import hashlib
import urllib.parse

import pytest

from hookshield import (
    Event,
    GitHubEvent,
    InvalidSignature,
    MalformedHeader,
    MalformedSignature,
    MissingCredentials,
    WebhookHandler,
)
from hookshield.testing import sample_delivery, sign

SECRET = "It's a Secret to Everybody"
# GitHub's "Validating webhook deliveries": this secret and body give this signature.
EXAMPLE_BODY = b"Hello, World!"
EXAMPLE_SIGNATURE = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


@pytest.fixture
def github() -> WebhookHandler:
    return WebhookHandler("github", secret=SECRET)


def test_githubs_documented_example(github: WebhookHandler) -> None:
    headers = {"X-Hub-Signature-256": "sha256=" + EXAMPLE_SIGNATURE, "X-GitHub-Event": "ping"}
    github.authenticate(EXAMPLE_BODY, headers)  # raises if refused
    assert sign("github", EXAMPLE_BODY, secret=SECRET)["X-Hub-Signature-256"] == (
        "sha256=" + EXAMPLE_SIGNATURE
    )
    upper = {"X-Hub-Signature-256": "SHA256=" + EXAMPLE_SIGNATURE.upper()}
    github.authenticate(EXAMPLE_BODY, upper)  # hex is compared in its lower-case form


@pytest.mark.parametrize(
    ("signature", "error"),
    [
        ("sha256=" + EXAMPLE_SIGNATURE[:-1] + "0", InvalidSignature),
        (EXAMPLE_SIGNATURE, MalformedSignature),  # no sha256= prefix
        ("sha1=" + EXAMPLE_SIGNATURE, MalformedSignature),
        ("sha256=" + EXAMPLE_SIGNATURE[:-2], MalformedSignature),
        ("sha256=" + "z" * 64, MalformedSignature),
        ("sha256=" + EXAMPLE_SIGNATURE + "\u00e9", MalformedSignature),
    ],
)
def test_a_wrong_or_malformed_signature_is_refused(
    github: WebhookHandler, signature: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        github.authenticate(EXAMPLE_BODY, {"X-Hub-Signature-256": signature})


def test_a_delivery_without_signature_is_refused(github: WebhookHandler) -> None:
    with pytest.raises(MissingCredentials, match="X-Hub-Signature-256"):
        github.verify(*sample_delivery("github", "ping", secret=SECRET)._replace(headers={}))


def test_a_repeated_signature_header_is_refused(github: WebhookHandler) -> None:
    value = "sha256=" + EXAMPLE_SIGNATURE
    with pytest.raises(MalformedSignature, match="more than once"):
        github.authenticate(
            EXAMPLE_BODY, [("X-Hub-Signature-256", value), ("X-Hub-Signature-256", value)]
        )


def test_a_repeated_delivery_guid_is_a_malformed_header_not_a_bad_credential(
    github: WebhookHandler,
) -> None:
    # X-GitHub-Delivery is no credential: the signature checked out, so a 401 would
    # tell the operator to look at the secret.  GitHub sends the GUID once.
    body, headers = sample_delivery("github", "issues.opened", secret=SECRET)
    pairs = [*headers.items(), ("X-GitHub-Delivery", "00000000-0000-0000-0000-000000000000")]
    with pytest.raises(MalformedHeader, match="X-GitHub-Delivery header was sent more than once"):
        github.verify(body, pairs)
    outcome = github.handle(body, pairs)
    assert (outcome.status, outcome.dispatched) == (400, 0)


def test_the_type_joins_the_event_header_and_the_action(github: WebhookHandler) -> None:
    seen: list[str] = []

    @github.on("issues.*")
    def any_issue(event: Event) -> None:
        seen.append("issues.* " + event.type)

    @github.on("issues.opened")
    def opened(event: Event) -> None:
        seen.append("issues.opened " + event.type)

    @github.on("ping")
    def ping(event: Event) -> None:
        seen.append("ping " + event.type)

    for kind in ("issues.opened", "issues.closed", "ping", "push"):
        assert github.handle(*sample_delivery("github", kind, secret=SECRET)).ok
    assert seen == [
        "issues.* issues.opened",
        "issues.opened issues.opened",
        "issues.* issues.closed",
        "ping ping",
    ]


def test_the_event_is_typed(github: WebhookHandler) -> None:
    body, headers = sample_delivery("github", "issues.opened", secret=SECRET)
    (event,) = github.verify(body, headers).events
    assert isinstance(event, GitHubEvent)
    assert (event.event, event.action) == ("issues", "opened")
    assert event.repository == "octocat/Hello-World"
    assert event.sender == "octocat"
    assert event.installation_id == 61482
    assert event.delivery_id == event.id == headers["X-GitHub-Delivery"]
    assert event.data["issue"]["number"] == 1347
    (ping,) = github.verify(*sample_delivery("github", "ping", secret=SECRET)).events
    assert isinstance(ping, GitHubEvent)
    assert (ping.type, ping.action) == ("ping", None)
    (bare,) = github.verify(b"{}", sign("github", b"{}", secret=SECRET, event="push")).events
    assert isinstance(bare, GitHubEvent)
    assert (bare.type, bare.repository, bare.sender, bare.installation_id) == (
        "push",
        None,
        None,
        None,
    )


def test_the_unsigned_delivery_guid_is_not_the_dedupe_key(github: WebhookHandler) -> None:
    body, headers = sample_delivery("github", "issues.opened", secret=SECRET)
    replayed = {**headers, "X-GitHub-Delivery": "00000000-0000-0000-0000-000000000000"}
    first, second = github.verify(body, headers), github.verify(body, replayed)
    assert first.id == second.id
    assert headers["X-GitHub-Delivery"] not in first.id
    assert first.id == "sha256:" + hashlib.sha256(body).hexdigest()
    assert github.handle(body, headers).duplicate is False
    assert github.handle(body, replayed).duplicate is True


def test_a_body_replayed_under_another_event_header_runs_nothing(
    github: WebhookHandler,
) -> None:
    # X-GitHub-Event is unsigned: keyed on it, a captured body re-sent as "push",
    # "pull_request", ... was a new delivery each time, and a route on "*" (or one on
    # several of those types) ran once per header.  Every GitHub event has a body of
    # its own, so the body alone is the key.
    seen: list[str] = []
    github.on("*")(lambda event: seen.append(event.type))
    body, headers = sample_delivery("github", "issues.opened", secret=SECRET)
    assert github.handle(body, headers).dispatched == 1
    for other in ("pull_request", "push", "Issues", "ping", "x"):
        replayed = {**headers, "X-GitHub-Event": other}
        assert github.verify(body, replayed).id == github.verify(body, headers).id
        assert github.handle(body, replayed).duplicate
    assert seen == ["issues.opened"]


def test_a_form_encoded_delivery(github: WebhookHandler) -> None:
    payload = sample_delivery("github", "push", secret=SECRET).body.decode()
    body = urllib.parse.urlencode({"payload": payload}).encode()
    headers = sign(
        "github",
        body,
        secret=SECRET,
        event="push",
        content_type="application/x-www-form-urlencoded",
    )
    (event,) = github.verify(body, headers).events
    assert isinstance(event, GitHubEvent)
    assert event.type == "push"
    assert event.repository == "octocat/Hello-World"


def test_a_missing_event_header_reads_unknown(github: WebhookHandler) -> None:
    body = b'{"action": "opened"}'
    headers = sign("github", body, secret=SECRET)
    del headers["X-GitHub-Event"]
    (event,) = github.verify(body, headers).events
    assert event.type == "unknown.opened"
