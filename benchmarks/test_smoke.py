"""Smoke runs of the benchmarks and the profiles: ``nox -s bench_smoke``.

They start real servers and py-spy, so they are kept out of the default test suite
(``testpaths`` is ``tests``).  Timings are never asserted: a slow machine fails no
test; what is checked is that the page is written from the numbers the run measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.required import unavailable

from benchmarks import __main__ as bench
from benchmarks import against, profiles, report
from benchmarks.in_process import OBSERVER_CASES


def _row(text: str, first_cell: str) -> list[str]:
    (line,) = [line for line in text.splitlines() if line.startswith(f"| {first_cell} |")]
    return [cell.strip() for cell in line.split("|")[1:-1]]


def test_a_tiny_run_writes_the_page_from_what_it_measured(tmp_path: Path) -> None:
    page, results = tmp_path / "benchmarks.md", tmp_path / "results"
    text = bench.main(["--tiny", "--output", str(page), "--results", str(results)])
    measured = report.rows(
        entry
        for name in ("stdlib.json", "speedups.json")
        for entry in json.loads((results / name).read_text())["benchmarks"]
    )
    served = json.loads((results / "served.json").read_text())
    assert served["notes"] == []  # every served comparison ran
    claims = {row.claim for row in measured}
    assert claims == {
        "deliveries",
        "decode",
        "frameworks",
        "batch",
        "stores",
        "inbox",
        "worker",
        "observers",
    }
    observers = {row.case: row for row in measured if row.claim == "observers"}
    assert set(observers) == set(OBSERVER_CASES)
    for case, row in observers.items():  # on the page, as measured
        assert _row(text, case)[1] == report._us(row.us)
    cases = {row.case for row in measured if row.claim == "deliveries"}
    assert {"floor", "hookshield", "hookshield[speedups]", "githubkit", "stripe"} <= cases
    # The design's ratios, from this run's times, on the page.
    ratios = report.framework_ratios(measured)
    assert set(ratios) == {"FastAPI", "FastAPI, dependency", "Starlette", "Flask", "Django"}
    for framework, ratio in ratios.items():
        assert _row(text, framework)[3] == f"{ratio:.2f}x"
    for endpoint in served["asgi"]:
        assert _row(text, f"`{endpoint['endpoint']}`")[2] == f"{endpoint['rps']:,.0f}"
    backgrounds = ["memory", "sqlite", "celery", "postgres"]
    assert [(row["background"], row["size"]) for row in served["inbox"]] == [
        (background, size) for background in backgrounds for size in ("1 KB", "64 KB")
    ]
    assert all(row["statuses"] == {"200": row["requests"]} for row in served["inbox"])
    assert [(row["inbox"], row["workers"]) for row in served["workers"]] == [
        ("sqlite", 1),
        ("sqlite", 4),
        ("postgres", 1),
        ("postgres", 4),
    ]
    assert [row["inbox"] for row in served["wakeup"]] == ["sqlite", "postgres"]
    for row in served["workers"]:  # on the page, as measured
        assert f"| {row['inbox']} | {row['workers']} | {row['per_second']:,.0f} |" in text
    assert "**A tiny run**" in text
    assert sorted(path.name for path in (tmp_path / "benchmarks").iterdir()) == [
        "deliveries.svg",
        "frameworks.svg",
        "served.svg",
    ]


def test_profiles_tiny_run_writes_the_report(tmp_path: Path) -> None:
    why = profiles.can_profile()
    if why is not None:
        unavailable(why)
    output = tmp_path / "profiles.md"
    text = profiles.main(["--tiny", "--output", str(output)])
    assert output.read_text(encoding="utf-8") == text
    singles = text.partition("## Single deliveries")[2].partition("\n## ")[0]
    for sender in ("MindPeeker", "MOCO", "Moonsense"):
        profile = singles.partition(f"{sender}, 1 KB")[2].partition("####")[0]
        shares = {
            cells[0].strip(" `"): float(cells[1].strip(" %"))
            for cells in (line.split("|")[1:-1] for line in profile.splitlines())
            if len(cells) == 3 and cells[1].strip().endswith("%")
        }
        # py-spy saw the decoder at work, and the shares cover every sample.
        assert "decode_json (hookshield/_core/frozen_json.py)" in shares, profile
        assert sum(shares.values()) == pytest.approx(100, abs=1), profile
    server = text.partition("## The plain ASGI route")[2]
    rows = {
        tuple(cell.strip(" *") for cell in line.split("|")[1:3]): line.split("|")[3:-1]
        for line in server.splitlines()
        if line.startswith("| ") and "CPU" in line
    }
    loop, workers = rows["event loop", "CPU, µs"], rows["worker threads", "CPU, µs"]
    hand, hook = (profiles.ENDPOINTS.index(e) for e in ("/hand-written/", "/hookshield-thread/"))
    # Both endpoints cost the loop thread something; only the plain route's handler
    # runs in worker threads.
    assert float(loop[hand]) > 0
    assert float(loop[hook]) > 0
    assert float(workers[hand]) == 0 < float(workers[hook])


def test_against_a_revision_prints_both_sides_for_each_framework(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # HEAD against this checkout: the same code on both sides, each in its processes.
    table = against.main(["HEAD", "--rounds", "1", "--batch", "5", "--batches", "1"])
    assert capsys.readouterr().out.strip() == table
    rows = [line.split("|")[1:-1] for line in table.splitlines()[2:]]
    assert [cells[0].strip() for cells in rows] == ["Flask", "Starlette"]
    for cells in rows:
        then, now, added = (float(cell) for cell in cells[1:])
        assert min(then, now) > 0
        assert added == pytest.approx(now - then, abs=0.11)  # each figure rounded to 0.1
