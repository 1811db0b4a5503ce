"""``hookshield sign`` and ``hookshield verify``: one delivery, no network."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hookshield import WebhookHandler, testing
from hookshield.cli import main
from tests.cli.helpers import (
    MOCO_KEY,
    TIMEOUT,
    clean_env,
    listening,
    parse_headers,
    records,
    run,
    write,
)
from tests.required import tool


def test_sign_matches_mocos_documented_test_vector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = write(tmp_path, "body.txt", b'{id: 111, description: "a description"}')
    assert (
        main(["sign", "-p", "moco", "--secret", MOCO_KEY, "--event", "invoice.create", body]) == 0
    )
    headers = parse_headers(capsys.readouterr().out)
    assert headers["X-Moco-Signature"] == (
        "09f9ebc0adeb597cb7cb37fd72b20be0caeca6bd9fb67416b663606bd7f89183"
    )
    assert headers["X-Moco-Target"] == "Invoice"
    assert headers["X-Moco-Event"] == "create"


@pytest.mark.parametrize(
    ("provider", "header", "prefix"),
    [
        ("moco", "X-Moco-Signature", ""),
        ("moonsense", "X-Moonsense-Signature-256", ""),
        ("mindpeeker", "X-MindPeeker-Signature", "sha256="),
    ],
)
def test_sign_matches_openssl_hmac(tmp_path: Path, provider: str, header: str, prefix: str) -> None:
    key = "k3y-with-ünïcode"
    body = write(
        tmp_path, "body.json", testing.sample_body(provider, testing.event_types(provider)[0])
    )
    openssl = subprocess.run(
        [tool("openssl"), "dgst", "-sha256", "-hmac", key, body],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    expected = openssl.stdout.strip().rsplit(" ", 1)[-1]
    result = run("sign", "-p", provider, "--secret", key, body)
    assert result.returncode == 0, result.stderr
    assert parse_headers(result.stdout)[header] == prefix + expected


def test_sign_reads_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = b'{"id": "evt_1", "type": "session.created", "data": {}}'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body)))
    assert main(["sign", "-p", "mindpeeker", "--secret", "whsec", "-"]) == 0
    signature = parse_headers(capsys.readouterr().out)["X-MindPeeker-Signature"]
    assert signature == "sha256=" + hmac.new(b"whsec", body, hashlib.sha256).hexdigest()


def test_sign_json_and_token_senders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = write(tmp_path, "blink.json", testing.sample_body("petal", "blink"))
    assert (
        main(["sign", "-p", "petal", "--token", "t0k", "--token-header", "X-Mine", "--json", body])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["headers"]["X-Mine"] == "t0k"


def test_sign_takes_the_secret_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body_bytes = b'{"id": 1}'
    body = write(tmp_path, "b.json", body_bytes)
    monkeypatch.setenv("HOOKSHIELD_SECRET", "from-env")
    assert main(["sign", "-p", "moco", body]) == 0
    signature = parse_headers(capsys.readouterr().out)["X-Moco-Signature"]
    assert signature == hmac.new(b"from-env", body_bytes, hashlib.sha256).hexdigest()


def test_sign_curl_posts_the_exact_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = write(tmp_path, "batch.json", testing.sample_batch(["click"]))
    code = main(
        [
            "sign",
            "-p",
            "momentum",
            "--basic-auth",
            "user:pa ss",
            "--curl",
            "http://127.0.0.1:1/",
            body,
        ]
    )
    assert code == 0
    command = capsys.readouterr().out.strip()
    assert command.startswith("curl ")
    assert f"--data-binary @{body}" in command
    assert "'Authorization: Basic dXNlcjpwYSBzcw=='" in command


def test_sign_curl_with_a_body_on_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = b'{"id": 7, "note": "it\'s here"}\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body)))
    args = ["sign", "-p", "moco", "--secret", MOCO_KEY, "--curl", "http://127.0.0.1:1/", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    command = shlex.split(result["curl"])
    assert command[-2:] == ["--data-raw", body.decode()]
    assert f"X-Moco-Signature: {result['headers']['X-Moco-Signature']}" in command


def test_the_printed_curl_command_is_accepted_by_a_receiver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tool("curl")
    body = write(
        tmp_path, "body with space.json", testing.sample_body("moco", "deal.create") + b"\n"
    )
    with listening("-p", "moco", "--secret", MOCO_KEY, "--count", "1") as (url, proc):
        args = ["sign", "-p", "moco", "--secret", MOCO_KEY, "--event", "deal.create"]
        assert main([*args, "--curl", url, body]) == 0
        command = shlex.split(capsys.readouterr().out)
        env = clean_env(NO_PROXY="*", no_proxy="*")
        curl = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env)
        assert curl.stdout == '{"ok":true}', curl.stderr
        seen = records(proc)
    assert seen[0]["delivery"]["events"][0]["type"] == "deal.create"


def test_sign_bearer_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = write(tmp_path, "b.json", testing.sample_batch(["open"]))
    assert main(["sign", "-p", "momentum", "--bearer-token", "oauth-token", body]) == 0
    assert parse_headers(capsys.readouterr().out)["Authorization"] == "Bearer oauth-token"


@pytest.mark.parametrize(
    ("option", "value", "handler_options"),
    [
        ("--bearer-token", "oauth", {"bearer_token": "oauth"}),
        ("--basic-auth", "petal:pw", {"basic_auth": ("petal", "pw")}),
    ],
)
def test_sign_petal_with_an_authorization_header(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    handler_options: dict[str, Any],
) -> None:
    body_bytes = testing.sample_body("petal", "eye")
    body = write(tmp_path, "eye.json", body_bytes)
    assert main(["sign", "-p", "petal", option, value, body]) == 0
    headers = parse_headers(capsys.readouterr().out)
    handler = WebhookHandler("petal", **handler_options)
    assert handler.verify(body_bytes, headers).events[0].type == "eye"


def test_sign_a_signing_sender_without_secret_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = write(tmp_path, "b.json", b"{}")
    assert main(["sign", "-p", "moco", body]) == 2
    err = capsys.readouterr().err
    assert "hookshield: error:" in err
    assert "--secret" in err


def test_sign_missing_file_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sign", "-p", "moco", "--secret", "s", str(tmp_path / "nope.json")]) == 3
    assert "cannot read" in capsys.readouterr().err


def test_verify_accepts_a_signed_delivery(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body, headers = testing.sample_delivery("mindpeeker", "session.completed", secret="whsec")
    path = write(tmp_path, "body.json", body)
    flags = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    assert main(["verify", "-p", "mindpeeker", "--secret", "whsec", *flags, path]) == 0
    out = capsys.readouterr().out
    assert "verified" in out
    assert "session.completed" in out
    assert "confidence" in out
    assert "0.87" in out


def test_verify_rejects_a_tampered_delivery_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body, headers = testing.sample_delivery("moco", "activity.create", secret=MOCO_KEY)
    path = write(tmp_path, "body.json", body.replace(b"2.5", b"9.5"))
    flags = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    assert main(["verify", "-p", "moco", "--secret", MOCO_KEY, *flags, path]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "401 InvalidSignature" in captured.err
    assert "raw request body" in captured.err


def test_verify_json_through_a_header_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body, headers = testing.sample_delivery("momentum", "bounce", token="s3cret")
    path = write(tmp_path, "batch.json", body)
    lines = "".join(f"{k}: {v}\n" for k, v in headers.items())
    header_file = write(tmp_path, "h.txt", lines.encode())
    args = ["verify", "-p", "momentum", "--header-file", header_file, "--json", path]
    assert main([*args, "--token", "s3cret"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is True
    [event] = result["events"]
    assert event["type"] == "bounce"
    assert event["fields"]["bounce_class"] == 10
    assert event["data"]["error_code"] == "554"
    assert main([*args, "--token", "other"]) == 1
    rejected = json.loads(capsys.readouterr().out)
    assert rejected == {
        "ok": False,
        "status": 401,
        "error": "InvalidSignature",
        "reason": rejected["reason"],
    }


def test_verify_json_shows_bad_data_and_per_channel_readings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body, _ = testing.sample_delivery("petal", "metrics")
    path = write(tmp_path, "m.json", body)
    monkeypatch.setenv("HOOKSHIELD_TOKEN", "unused: a credential option is given")
    args = ["verify", "-p", "petal", "--bearer-token", "b", "--json", path]
    assert main([*args, "-H", "Authorization: Bearer b"]) == 0
    fields = json.loads(capsys.readouterr().out)["events"][0]["fields"]
    assert fields["bandpower"]["ch4"] == dict.fromkeys(
        ("delta", "theta", "alpha", "beta"), "bad_data"
    )
    assert fields["artifacts"] == {"ch1": False, "ch2": False, "ch3": True, "ch4": False}


def test_verify_takes_a_token_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body, headers = testing.sample_delivery("petal", "eye", token="from-env")
    path = write(tmp_path, "e.json", body)
    header_file = write(
        tmp_path, "h.txt", "".join(f"{k}: {v}\n" for k, v in headers.items()).encode()
    )
    monkeypatch.setenv("HOOKSHIELD_TOKEN", "from-env")
    assert main(["verify", "-p", "petal", "--header-file", header_file, path]) == 0
    assert "eye" in capsys.readouterr().out


def test_verify_accepts_any_of_several_secrets(tmp_path: Path) -> None:
    body, headers = testing.sample_delivery("moonsense", "session.created", secret="new")
    path = write(tmp_path, "b.json", body)
    flags = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    result = run("verify", "-p", "moonsense", "--secret", "old", "--secret", "new", *flags, path)
    assert result.returncode == 0, result.stderr


def test_verify_configuration_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "b.json", testing.sample_body("petal", "blink"))
    assert main(["verify", "-p", "petal", path]) == 2
    err = capsys.readouterr().err
    assert "--allow-unsigned" in err and "allow_unsigned=" not in err
    assert main(["verify", "-p", "moco", "--secret", "s", "-H", "no colon", path]) == 2
    assert "Name: value" in capsys.readouterr().err
    assert main(["verify", "-p", "petal", "--basic-auth", "nocolon", path]) == 2


def test_verify_unsigned_only_when_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "b.json", testing.sample_body("petal", "artifact-detect"))
    assert main(["verify", "-p", "petal", "--allow-unsigned", path]) == 0
    assert "artifact-detect" in capsys.readouterr().out


# -- a newcomer's traps ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "option", "takes"),
    [
        ("momentum", ["--secret", "abc"], "--token, --basic-auth or --bearer-token"),
        ("petal", ["--secret", "abc"], "--token, --basic-auth or --bearer-token"),
        ("moco", ["--token", "abc"], "--secret"),
        ("mindpeeker", ["--basic-auth", "u:p"], "--secret"),
        ("moonsense", ["--token-header", "X-Token"], "--secret"),
    ],
)
def test_a_credential_the_sender_does_not_use_is_refused(
    provider: str,
    option: list[str],
    takes: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(tmp_path, "b.json", b"{}")
    assert main(["sign", "-p", provider, *option, path]) == 2
    err = capsys.readouterr().err
    assert f"does not use {option[0]}: it authenticates with {takes}" in err
    assert main(["verify", "-p", provider, *option, path]) == 2
    assert f"does not use {option[0]}" in capsys.readouterr().err


def test_messages_name_flags_not_keyword_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "b.json", b"{}")
    assert main(["verify", "-p", "moco", path]) == 2
    err = capsys.readouterr().err
    assert "--secret" in err and "secret=" not in err
    assert (
        main(["verify", "-p", "petal", "--token-header", "X-T", "--basic-auth", "u:p", path]) == 2
    )
    err = capsys.readouterr().err
    assert "--token-header" in err and "--token" in err and "token_header=" not in err


def test_io_errors_are_json_with_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "missing.json")
    assert main(["sign", "-p", "moco", "--secret", "k", "--json", missing]) == 3
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["ok"] is False and report["exit"] == 3
    assert report["error"].startswith(f"cannot read {missing}")
    assert captured.err == ""
    assert main(["verify", "-p", "moco", "--secret", "k", "--json", "--header-file", missing]) == 3
    assert "cannot read --header-file" in json.loads(capsys.readouterr().out)["error"]


def test_an_empty_stdin_is_signed_but_said_to_be_empty() -> None:
    result = run("sign", "-p", "mindpeeker", "--secret", "whsec", stdin=b"")
    assert result.returncode == 0
    assert "the body read from stdin is empty" in result.stderr
    expected = hmac.new(b"whsec", b"", hashlib.sha256).hexdigest()
    assert parse_headers(result.stdout)["X-MindPeeker-Signature"] == "sha256=" + expected


class _TerminalStdin(io.TextIOWrapper):
    """A stdin that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_no_body_and_a_terminal_on_stdin_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", _TerminalStdin(io.BytesIO(b"never read")))
    assert main(["sign", "-p", "mindpeeker", "--secret", "whsec"]) == 2
    assert "give the body as FILE, or '-' to read it from stdin" in capsys.readouterr().err
    # '-' says stdin on purpose, terminal or not.
    assert main(["sign", "-p", "mindpeeker", "--secret", "whsec", "-"]) == 0
    assert "X-MindPeeker-Signature: sha256=" in capsys.readouterr().out


# -- Standard Webhooks: an ed25519 public key, and the timestamp's tolerance -----------


def _public(seed: bytes) -> str:
    """The public key of an ed25519 seed, as Standard Webhooks writes it (``whpk_``)."""
    raw = (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return "whpk_" + base64.b64encode(raw).decode()


#: An ed25519 key pair as Standard Webhooks writes it: the seed (whsk_) and its public key.
SEED = bytes(range(32))
WHSK = "whsk_" + base64.b64encode(SEED).decode()
WHPK = _public(SEED)


def _standard_webhooks(tmp_path: Path, *, stamp: int | None = None) -> tuple[str, list[str]]:
    body = b'{"type": "invoice.paid", "data": {"id": "inv_1"}}'
    options: dict[str, Any] = {"private_key": WHSK, "event_id": "msg_cli"}
    if stamp is not None:
        options["timestamp"] = stamp
    headers = testing.sign("standard-webhooks", body, **options)
    flags = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    return write(tmp_path, "sw.json", body), flags


def test_verify_checks_an_ed25519_signature_with_a_public_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, flags = _standard_webhooks(tmp_path)
    assert main(["verify", "-p", "standard-webhooks", "--public-key", WHPK, *flags, path]) == 0
    assert "invoice.paid" in capsys.readouterr().out
    other = _public(bytes(32))
    assert main(["verify", "-p", "standard-webhooks", "--public-key", other, *flags, path]) == 1
    assert "401 InvalidSignature" in capsys.readouterr().err
    # A sender that signs with no key pair does not take one.
    assert main(["verify", "-p", "moco", "--public-key", WHPK, *flags, path]) == 2
    assert "does not use --public-key" in capsys.readouterr().err


def test_verify_judges_the_timestamp_by_tolerance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, flags = _standard_webhooks(tmp_path, stamp=int(time.time()) - 120)
    command = ["verify", "-p", "standard-webhooks", "--public-key", WHPK, *flags, path]
    assert main(command) == 0  # within the default five minutes
    capsys.readouterr()
    assert main([*command, "--tolerance", "60"]) == 1
    assert "401 TimestampOutOfRange" in capsys.readouterr().err
    # A sender that signs no timestamp has nothing for it to judge: said with the flag.
    body, headers = testing.sample_delivery("moco", "activity.create", secret=MOCO_KEY)
    moco = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    moco_path = write(tmp_path, "moco.json", body)
    assert (
        main(["verify", "-p", "moco", "--secret", MOCO_KEY, "--tolerance", "60", *moco, moco_path])
        == 2
    )
    err = capsys.readouterr().err
    assert "--tolerance" in err and "tolerance=" not in err
