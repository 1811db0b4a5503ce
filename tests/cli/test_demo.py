"""``hookshield demo``: every case passes, the table fits the terminal, failures show."""

from __future__ import annotations

import json
import time

import pytest

from hookshield import testing
from hookshield.cli import _demo, main
from tests.cli.helpers import run


def test_demo_passes_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    assert main(["demo"]) == 0
    assert time.monotonic() - started < 5
    out = capsys.readouterr().out
    assert "all 9 cases behaved as they should" in out
    for sender in ("Moonsense", "Petal Metrics", "MOCO", "MindPeeker", "Momentum"):
        assert sender in out
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
    assert {c["provider"] for c in valid} == set(testing.providers())


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
    assert "1 of 10 cases FAILED" in out
