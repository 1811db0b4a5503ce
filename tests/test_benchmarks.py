"""docs/benchmarks.md is made from the numbers a run measured: nothing on it is typed in.

The smoke run, which measures for real (servers included), is ``benchmarks/test_smoke.py``
(``nox -s bench_smoke``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks import report


def _entry(claim: str, group: str, case: str, min_s: float, per: int = 1) -> dict[str, Any]:
    info = {"claim": claim, "group": group, "case": case, "per": per}
    return {"extra_info": info, "stats": {"min": min_s, "median": min_s * 1.5}}


def _run(folder: Path, fastapi_hookshield_s: float) -> None:
    """The JSON of a run, as pytest-benchmark and benchmarks.web write it."""
    stdlib = {
        "machine_info": {
            "processor": "x86_64", "system": "Linux", "release": "6.1",
            "python_implementation": "CPython", "python_version": "3.12.1",
            "cpu": {"brand_raw": "Test CPU", "count": 2},
        },
        "commit_info": {"id": "0123456789abcdef", "dirty": False},
        "datetime": "2026-12-06T12:00:00.000000+00:00",
        "version": "5.3.1",
        "benchmarks": [
            _entry("deliveries", "MindPeeker, 1 KB", "floor", 8e-6),
            _entry("deliveries", "MindPeeker, 1 KB", "hookshield", 12e-6),
            _entry("deliveries", "MindPeeker, 1 KB", "svix", 13.5e-6),
            _entry("decode", "1 KB", "json", 6e-6),
            _entry("decode", "1 KB", "msgspec", 2e-6),
            # 200 deliveries per timed round: the page shows µs per delivery.
            _entry("frameworks", "FastAPI", "hand-written", 200 * 90e-6, per=200),
            _entry("frameworks", "FastAPI", "hookshield", fastapi_hookshield_s, per=200),
        ],
    }  # fmt: skip
    speedups = {
        "benchmarks": [_entry("deliveries", "MindPeeker, 1 KB", "hookshield[speedups]", 9e-6)]
    }
    served = {
        "load": [4000, 5, 4],
        "asgi": [
            {"endpoint": "/hand-written/", "rps": 8000.0, "p50_ms": 0.4, "p99_ms": 0.9, "statuses": {"200": 4000}},
            {"endpoint": "/hookshield/", "rps": 6000.0, "p50_ms": 0.5, "p99_ms": 1.1, "statuses": {"200": 4000}},
        ],
        "notes": ["inbox: not measured: no gunicorn"],
    }  # fmt: skip
    for name, data in (("stdlib", stdlib), ("speedups", speedups), ("served", served)):
        (folder / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")


def _table_row(text: str, first_cell: str) -> list[str]:
    (line,) = [line for line in text.splitlines() if line.startswith(f"| {first_cell} |")]
    return [cell.strip() for cell in line.split("|")[1:-1]]


def test_the_page_and_its_charts_show_the_measured_numbers_and_their_ratios(
    tmp_path: Path,
) -> None:
    _run(tmp_path, fastapi_hookshield_s=200 * 100e-6)
    page = tmp_path / "docs" / "benchmarks.md"
    text = report.write(tmp_path, page, "full")
    assert page.read_text(encoding="utf-8") == text
    assert "Test CPU (2 cores)" in text and "`0123456789`" in text
    # µs per delivery, the median beside it, and the time over the floor's.
    assert _table_row(text, "hookshield") == ["hookshield", "12.0", "18.0", "1.50"]
    assert _table_row(text, "hookshield[speedups]")[1:] == ["9.00", "13.5", "1.12"]
    assert _table_row(text, "1 KB") == ["1 KB", "6.00", "2.00", "3.0x"]
    # hookshield's share of the hand-written endpoint's throughput, against its target.
    assert _table_row(text, "FastAPI") == ["FastAPI", "90.0", "100.0", "0.90x", "≥ 0.90x", "yes"]
    assert _table_row(text, "`/hookshield/`")[2:4] == ["6,000", "0.75"]
    assert "Note: inbox: not measured: no gunicorn" in text
    charts = {
        path.name: path.read_text(encoding="utf-8") for path in page.with_suffix("").iterdir()
    }
    assert set(charts) == {"deliveries.svg", "frameworks.svg", "served.svg"}
    assert "13.5 µs" in charts["deliveries.svg"] and "100.0 µs" in charts["frameworks.svg"]
    assert "166.7 µs" in charts["served.svg"]  # 1/6,000 s per request


def test_a_slower_run_gives_another_verdict(tmp_path: Path) -> None:
    _run(tmp_path, fastapi_hookshield_s=200 * 120e-6)
    text = report.write(tmp_path, tmp_path / "benchmarks.md", "full")
    assert _table_row(text, "FastAPI")[3:] == ["0.75x", "≥ 0.90x", "**no**"]
    # A tiny run says so at the top, and judges no target.
    tiny = report.write(tmp_path, tmp_path / "benchmarks.md", "tiny")
    assert "**A tiny run**" in tiny.split("## ")[0]
    assert _table_row(tiny, "FastAPI")[-1] == "n/a"
