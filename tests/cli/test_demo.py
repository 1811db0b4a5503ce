"""``hookshield demo``: every case passes, the table fits the terminal, failures show."""

from __future__ import annotations

import json

import pytest

from hookshield import testing
from hookshield.cli import _demo, main
from hookshield.providers import PROVIDERS
from tests.cli.helpers import run


def test_demo_passes_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert f"all {len(_demo.demo_cases())} cases behaved as they should" in out
    for sender in PROVIDERS.values():
        assert (sender.title in out) == (sender.demo is not None)
    for case in ("forged", "tampered", "replayed"):
        assert case in out
    assert "FAIL" not in out


def test_demo_json_through_python_dash_m() -> None:
    result = run("demo", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["receiver"].startswith("http://127.0.0.1:")
    cases = {c["case"].split()[0]: c for c in report["cases"]}
    assert cases["forged"]["got"] == {"status": 401, "events_handled": 0}
    assert cases["tampered"]["got"]["status"] == 401
    assert cases["replayed"]["got"] == {"status": 200, "events_handled": 0}
    assert "duplicate" in cases["replayed"]["why"]
    valid = [c for c in report["cases"] if c["case"] == "valid"]
    # Every sender whose module declares a demo script, and only those.
    shown = {name for name in testing.providers() if PROVIDERS[name].demo is not None}
    assert {c["provider"] for c in valid} == shown


def test_demo_exits_1_when_a_case_misbehaves(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = _demo.demo_cases

    def with_a_wrong_expectation() -> list[_demo.DemoCase]:
        cases = real()
        wrong = cases[0]
        return [*cases, _demo.DemoCase("wrong", "petal", wrong.body, {}, 200, True)]

    monkeypatch.setattr(_demo, "demo_cases", with_a_wrong_expectation)
    assert main(["demo"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    assert f"1 of {len(real()) + 1} cases FAILED" in out


@pytest.mark.parametrize("columns", [80, 220])
def test_the_demo_table_fits_the_terminal_and_cuts_no_reason(columns: int) -> None:
    result = run("demo", COLUMNS=str(columns))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= columns
    assert "…" not in result.stdout
    # Every reason is there whole, however it was wrapped.
    flowing = " ".join(" ".join(lines).split())
    report = json.loads(run("demo", "--json").stdout)
    for case in report["cases"]:
        assert " ".join(case["why"].split()) in flowing


def test_a_very_narrow_terminal_puts_the_reasons_under_the_rows() -> None:
    result = run("demo", COLUMNS="40")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    reasons = [line for line in lines[2:-2] if line.startswith("    ")]
    assert len(reasons) >= 9  # at least one line under each row
    assert all(len(line) <= 40 for line in reasons)


def test_the_replay_is_explained_in_plain_words(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    [replayed] = [c for c in report["cases"] if c["case"] == "replayed"]
    assert "sent again with a new delivery ID" in replayed["why"]
    assert "routes do not run twice" in replayed["why"]
