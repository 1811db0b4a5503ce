"""``-p module:attribute``: a sender described with ``HmacSender`` in the user's own code."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookshield import HmacSender, WebhookHandler
from hookshield.cli import main
from tests.cli.helpers import parse_headers, serving, write

SECRET = "acme-secret"

HOOKS = """
from hookshield import HmacSender, WebhookHandler

ACME = HmacSender(
    name="acme",
    title="Acme",
    signature_header="Acme-Signature",
    signature_prefix="v1=",
    type_field="type",
    id_field="id",
    data_field="data",
    event_types=("order.paid", "order.refunded"),
)
acme = WebhookHandler(ACME, secret="the web app's secret")
not_a_sender = 42
"""

BODY = b'{"id": "evt_1", "type": "order.paid", "data": {"total": 12}}'


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The name of an importable module holding ACME and a handler, in the current directory."""
    name = f"acme_hooks_{tmp_path.name}"  # a module of its own for each test
    (tmp_path / f"{name}.py").write_text(HOOKS)
    monkeypatch.chdir(tmp_path)
    yield name
    sys.modules.pop(name, None)


def acme_handler(module: str) -> WebhookHandler:
    description = sys.modules[module].ACME
    assert isinstance(description, HmacSender)
    return WebhookHandler(description, secret=SECRET)


@pytest.mark.parametrize("attribute", ["ACME", "acme"])
def test_sign_and_verify_with_a_sender_from_a_module(
    module: str, attribute: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = write(tmp_path, "body.json", BODY)
    sender = f"{module}:{attribute}"
    assert main(["sign", "-p", sender, "--secret", SECRET, body]) == 0
    headers = parse_headers(capsys.readouterr().out)
    assert headers["Acme-Signature"].startswith("v1=")
    # The library, given the same description and secret, accepts what the CLI signed.
    (event,) = acme_handler(module).verify(BODY, headers).events
    assert (event.type, event.id) == ("order.paid", "evt_1")

    header_args = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    code = main(["verify", "-p", sender, "--secret", SECRET, *header_args, body, "--json"])
    assert code == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["provider"] == "acme"
    assert [e["type"] for e in answer["events"]] == ["order.paid"]
    # Only the sender comes from the module: the credential is the command line's.
    assert main(["verify", "-p", sender, "--secret", "wrong", *header_args, body]) == 1
    assert "does not match" in capsys.readouterr().err


def test_send_to_listen_with_a_sender_from_a_module(
    module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sender = f"{module}:ACME"
    with serving(capsys, "-p", sender, "--secret", SECRET, "--count", "1") as (url, finish):
        args = ["send", url, "-p", sender, "-e", "order.paid", "--secret", SECRET, "--json"]
        assert main(args) == 0
        lines = finish()
    [sent] = [line for line in lines if "request_headers" in line]
    assert (sent["status"], sent["provider"]) == (200, "acme")
    [seen] = [line for line in lines if "path" in line]
    assert [e["type"] for e in seen["delivery"]["events"]] == ["order.paid"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("no_such_module_here:ACME", "-p 'no_such_module_here:ACME': No module named"),
        ("{module}:MISSING", "has no attribute 'MISSING'"),
        ("{module}:not_a_sender", "is int, not an HmacSender or a WebhookHandler"),
        (":ACME", "-p ':ACME': name it as module:attribute"),
    ],
)
def test_a_bad_module_or_attribute_is_a_usage_error(
    module: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["sign"], ["verify"], ["send", "http://127.0.0.1:9/"], ["listen"]):
        argv = [*command, "-p", value.format(module=module), "--secret", SECRET]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("hookshield: error: -p ") and message in err
        assert len(err.splitlines()) == 1
        assert main([*argv, "--json"]) == 2
        assert message in json.loads(capsys.readouterr().out)["error"]


def test_an_unknown_name_is_refused_as_the_arguments_are_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sign", "-p", "gitlab", "--secret", SECRET])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument -p/--provider: unknown sender 'gitlab': choose one of moonsense" in err
    assert "module:attribute" in err
