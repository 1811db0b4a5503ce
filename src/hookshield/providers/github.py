"""GitHub: ``X-Hub-Signature-256: sha256=<hex>`` over the raw body.

Rules (GitHub's "Validating webhook deliveries" and "Webhook events and payloads"):

* HMAC-SHA256 of the raw body, keyed with the secret's UTF-8 bytes, sent as
  ``sha256=`` and lower-case hex.  The page's example: secret
  ``It's a Secret to Everybody`` and body ``Hello, World!`` give ``757107ea...3e17``.
* ``X-GitHub-Event`` names the event (``issues``), the payload's ``action`` the
  change (``opened``): the type is ``issues.opened``, or ``ping`` for the ping sent
  when the hook is created.  Bodies are JSON, or a form with the JSON in ``payload``.
* ``X-GitHub-Delivery`` is a GUID per delivery and is **not** signed, so it cannot be
  the de-duplication key (docs/security.md, "Replay and de-duplication"); sent twice, it is a malformed header
  (400), not a failed credential.  ``X-GitHub-Event`` is not signed either, so it is
  left out of the key too: the key is the body's SHA-256 alone.  Every GitHub event
  has a body of its own (its ``action``, the object it is about, the repository's
  state at that moment), so no two events share one; a captured body replayed under
  another ``X-GitHub-Event`` is a duplicate of the delivery it was captured from, and
  runs no route a second time, for as long as that key is kept.
* GitHub signs no timestamp, so there is no window to check.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar

from .._core.events import Event, as_int
from ._base import MIB, DemoScript, unique_clock
from ._hmac import HmacProvider, HmacSender

__all__ = ["GITHUB", "GitHubEvent", "GitHubProvider"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GitHubEvent(Event):
    """A GitHub event: ``type`` is ``<X-GitHub-Event>.<action>`` (``issues.opened``).

    ``id`` is the ``X-GitHub-Delivery`` GUID; ``data`` is the whole payload.
    """

    @property
    def event(self) -> str:
        """The ``X-GitHub-Event`` name, without the action (``"issues"``)."""
        return self.type.partition(".")[0]

    @property
    def action(self) -> str | None:
        """The payload's ``action`` (``"opened"``), where the event has one."""
        return self._str("action")

    @property
    def delivery_id(self) -> str | None:
        """The ``X-GitHub-Delivery`` GUID (unsigned: not a de-duplication key)."""
        return self.id

    @property
    def repository(self) -> str | None:
        """The repository's full name, ``owner/name``."""
        return _nested_str(self._get("repository"), "full_name")

    @property
    def sender(self) -> str | None:
        """The login of the user who triggered the event."""
        return _nested_str(self._get("sender"), "login")

    @property
    def installation_id(self) -> int | None:
        """The GitHub App installation the event was sent for."""
        installation = self._get("installation")
        return as_int(installation.get("id")) if isinstance(installation, dict) else None


def _nested_str(value: Any, key: str) -> str | None:
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, str) else None


#: GitHub's scheme, as an :class:`HmacSender` description.
GITHUB = HmacSender(
    name="github",
    title="GitHub",
    signature_header="X-Hub-Signature-256",
    signature_prefix="sha256=",
    encoding="hex",
    type_header="X-GitHub-Event",
    type_detail_field="action",
    id_header="X-GitHub-Delivery",
    type_in_key=False,
    accepts_form=True,
    # "Payloads are capped at 25 MB. If an event generates a larger payload, GitHub
    # will not deliver a payload for that webhook event." (GitHub's "Webhook events
    # and payloads" page.)  A push or create event of many commits, branches or tags
    # comes close, and GitHub does not retry a refused delivery, so the cap is the
    # default.
    max_body_size=25 * MIB,
    event_class=GitHubEvent,
    event_types=(
        "ping",
        "push",
        "create",
        "delete",
        "fork",
        *(f"issues.{a}" for a in ("opened", "edited", "closed", "reopened", "deleted")),
        *(f"issues.{a}" for a in ("assigned", "unassigned", "labeled", "unlabeled")),
        *(f"issue_comment.{a}" for a in ("created", "edited", "deleted")),
        *(f"pull_request.{a}" for a in ("opened", "edited", "closed", "reopened")),
        *(f"pull_request.{a}" for a in ("synchronize", "ready_for_review", "labeled")),
        *(f"pull_request_review.{a}" for a in ("submitted", "edited", "dismissed")),
        *(f"release.{a}" for a in ("published", "created", "released", "prereleased")),
        "star.created",
        "star.deleted",
        "watch.started",
        *(f"workflow_run.{a}" for a in ("requested", "in_progress", "completed")),
        *(f"check_suite.{a}" for a in ("requested", "rerequested", "completed")),
        *(f"installation.{a}" for a in ("created", "deleted", "suspend", "unsuspend")),
    ),
)


class GitHubProvider(HmacProvider):
    """GitHub's repository, organisation and App webhooks."""

    sender = GITHUB
    test_credentials: ClassVar[Mapping[str, Any]] = {"secret": "It's a Secret to Everybody"}
    demo = DemoScript(
        credentials={"secret": "demo-github-secret"},
        event_types=("issues.opened",),
        accepted="X-Hub-Signature-256 verified",
    )

    def sign(self, body: bytes, **options: Any) -> dict[str, str]:
        """The headers GitHub sends: the event, a delivery GUID and the signature."""
        options["event_id"] = options.get("event_id") or str(uuid.uuid4())
        return {
            "User-Agent": "GitHub-Hookshot/5f8b2c1",
            "X-GitHub-Hook-ID": "458734501",
            **super().sign(body, **options),
        }

    def sample(self, event_type: str, overrides: Mapping[str, Any]) -> bytes:
        """A payload in the shape of GitHub's documented examples."""
        event, _, action = event_type.partition(".")
        payload: dict[str, Any] = {"action": action} if action else {}
        payload.update(_SAMPLE_OBJECTS.get(event, {}))
        # The repository's pushed_at moves on, so two samples are never the same bytes,
        # which a receiver de-duplicating on the body would drop.
        repository = {**_REPOSITORY, "pushed_at": _iso_seconds(unique_clock())}
        payload.update(repository=repository, sender=_USER, installation={"id": 61482})
        payload.update(overrides)
        return json.dumps(payload, allow_nan=False).encode("utf-8")


_USER = {"login": "octocat", "id": 1, "type": "User"}
_REPOSITORY = {
    "id": 1296269,
    "name": "Hello-World",
    "full_name": "octocat/Hello-World",
    "private": False,
    "owner": _USER,
    "default_branch": "main",
}
_ISSUE = {"id": 1, "number": 1347, "title": "Found a bug", "state": "open", "user": _USER}

# Shapes from GitHub's "Webhook events and payloads", cut to their main fields.
_SAMPLE_OBJECTS: dict[str, dict[str, Any]] = {
    "ping": {
        "zen": "Keep it logically awesome.",
        "hook_id": 458734501,
        "hook": {"type": "Repository", "id": 458734501, "events": ["issues", "push"]},
    },
    "push": {
        "ref": "refs/heads/main",
        "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
        "commits": [{"id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "message": "Fix"}],
        "pusher": {"name": "octocat", "email": "octocat@github.com"},
    },
    "issues": {"issue": _ISSUE},
    "issue_comment": {"issue": _ISSUE, "comment": {"id": 1, "body": "Me too"}},
    "pull_request": {
        "number": 1347,
        "pull_request": {"id": 1, "number": 1347, "title": "Amazing new feature", "state": "open"},
    },
    "release": {"release": {"id": 1, "tag_name": "v1.0.0", "name": "v1.0.0"}},
}


def _iso_seconds(nanoseconds: int) -> str:
    """An ISO 8601 UTC time with microseconds, as a sample's timestamp."""
    moment = datetime.fromtimestamp(nanoseconds / 1e9, timezone.utc)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
