"""The ``webhook`` fixture, run by pytest's own ``pytester`` as an installed plugin.

Nothing here imports the plugin or names it with ``-p``: each inner run finds it as
pytest finds any installed plugin, through the ``pytest11`` entry point of
hookshield's installed metadata (a checkout installed with ``pip install -e .``, as
every nox session does).  The testing page's samples are run the same way.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

import hookshield_pytest
from tests.test_docs import Block, blocks

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "testing.md"
#: The testing page's samples that are test modules using the fixture.
SAMPLES = [block for block in blocks(PAGE, "python") if "def test_" in block.code]


@pytest.fixture(autouse=True)
def _installed() -> None:
    """The plugin must come from hookshield's installed metadata, not from this test."""
    found = [
        entry
        for entry in importlib.metadata.distribution("hookshield").entry_points
        if entry.group == "pytest11"
    ]
    assert [entry.value for entry in found] == ["hookshield_pytest"], (
        "the installed hookshield does not declare the pytest11 entry point; "
        "reinstall the checkout (python -m pip install -e .)"
    )


def test_pyproject_registers_the_plugin() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[project.entry-points.pytest11]\n", 1)[1].split("\n[", 1)[0]
    assert re.findall(r'^(\w+) = "([\w.]+)"$', section, re.M) == [
        ("hookshield", "hookshield_pytest")
    ]


def test_pytest_loads_it_from_the_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import hookshield_pytest

        def test_loaded(request, webhook):
            manager = request.config.pluginmanager
            assert manager.get_plugin("hookshield") is hookshield_pytest
            names = [dist.project_name for _, dist in manager.list_plugin_distinfo()]
            assert "hookshield" in names
            assert isinstance(webhook, hookshield_pytest.Webhooks)
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_delivery_is_what_the_sender_sends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from hookshield import InvalidSignature, WebhookHandler

        def test_signed_with_the_given_secret(webhook):
            body, headers = webhook.delivery("mindpeeker", "session.completed", secret="s")
            assert headers["X-MindPeeker-Signature"].startswith("sha256=")
            [event] = WebhookHandler("mindpeeker", secret="s").verify(body, headers).events
            assert event.type == "session.completed"
            with pytest.raises(InvalidSignature):
                WebhookHandler("mindpeeker", secret="other").verify(body, headers)

        def test_the_test_credentials_and_first_type_by_default(webhook):
            delivery = webhook.delivery("moco")
            handler = WebhookHandler("moco", **webhook.credentials("moco"))
            [event] = handler.verify(*delivery).events
            assert event.type == "activity.create"

        def test_data_and_a_body_of_your_own(webhook):
            handler = WebhookHandler("github", secret="s")
            body, headers = webhook.delivery("github", "issues.opened", {"number": 7}, secret="s")
            assert handler.verify(body, headers).events[0].data["number"] == 7
            own = webhook.delivery("github", "ping", body=b'{"zen": "Keep it simple."}', secret="s")
            assert own.headers["X-GitHub-Event"] == "ping"
            assert handler.verify(*own).events[0].data["zen"] == "Keep it simple."
            with pytest.raises(TypeError, match="not both"):
                webhook.delivery("github", "ping", {"a": 1}, body=b"{}", secret="s")

        def test_options_of_sign_reach_it(webhook):
            delivery = webhook.delivery(
                "standard-webhooks", "invoice.paid", event_id="msg_7", timestamp=1700000000
            )
            assert delivery.headers["webhook-id"] == "msg_7"
            assert delivery.headers["webhook-timestamp"] == "1700000000"

        def test_a_client_it_does_not_know(webhook):
            with pytest.raises(TypeError, match="Flask's, Django's or Starlette's"):
                webhook.post(object(), "/", webhook.delivery("moco"))
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=5)


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample.id for sample in SAMPLES])
def test_the_testing_pages_samples_pass_under_pytest(
    pytester: pytest.Pytester, sample: Block
) -> None:
    code = sample.code
    framework = next(name for name in ("flask", "django", "starlette") if f"from {name}" in code)
    pytest.importorskip(framework)
    pytester.makepyfile(test_sample=code)
    # A process of its own: Django's settings are configured once per process.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    tests = code.count("\ndef test_")
    result.assert_outcomes(passed=tests)


def test_the_page_has_one_sample_per_framework() -> None:
    frameworks = sorted(
        name
        for sample in SAMPLES
        for name in ("flask", "django", "starlette")
        if f"from {name}" in sample.code
    )
    assert frameworks == ["django", "flask", "starlette"]
    assert hookshield_pytest.webhook.__doc__


def test_loading_the_plugin_imports_none_of_hookshield() -> None:
    # pytest loads it before coverage starts: a hookshield module it imported would
    # count its definitions as never run in every project that measures hookshield.
    code = (
        "import sys, hookshield_pytest; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'hookshield'))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"
