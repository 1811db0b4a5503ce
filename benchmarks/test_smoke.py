"""Smoke runs of the benchmark harness and the profiles: ``nox -s bench_smoke``.

They start real servers and py-spy, so they are kept out of the default test suite
(``testpaths`` is ``tests``) and run in a session of their own.  Timings are never
asserted: a slow machine fails no test; what is checked is that every part of the
report is written, from numbers the run measured.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tests.required import unavailable

from benchmarks import __main__ as bench
from benchmarks import micro, profiles


def _section(text: str, heading: str) -> str:
    return text.partition(heading)[2].partition("\n## ")[0]


def test_quick_tiny_run_writes_the_report(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    text = bench.main(["--tiny", "--output", str(output)])
    assert output.read_text(encoding="utf-8") == text
    for heading in (
        "## Machine and versions",
        "## Where the time goes at 1 KB",
        "## HTTP",
        "## De-duplication stores",
        "## Targets: met or not",
    ):
        assert heading in text
    # The targets close the report.
    assert text.rindex("\n## ") == text.index("\n## Targets: met or not")
    breakdown = _section(text, "## Where the time goes at 1 KB")
    assert "| step | MindPeeker | MOCO | Moonsense |" in breakdown
    steps = [micro.STEP_FLOOR_AUTH, micro.STEP_HEADERS, micro.STEP_AUTH, micro.STEP_DECODE]
    steps += [micro.STEP_READ, micro.STEP_WHOLE]
    for step in steps:
        # A row of the step with a time for each of the three senders.
        (row,) = [line for line in breakdown.splitlines() if step in line]
        assert len([cell for cell in row.split("|")[2:-1] if float(cell)]) == 3, row
    assert "MindPeeker, 1 KB" in text
    batch = _section(text, "### Momentum batch, 100 records")
    assert micro.TOKEN_FLOOR_CASE in batch
    memory = _section(text, "## Peak memory")
    assert "| x floor's peak |" in memory
    http = _section(text, "## HTTP")
    assert "| server CPU µs/req | switches/req |" in http
    loaded = [
        line.split("|")[1:-1]
        for line in http.splitlines()
        if line.startswith("| ") and ("/floor/" in line or "| /hook/ |" in line)
    ]
    assert len(loaded) >= 2 * 4  # the two endpoints of Flask, Django, Starlette, FastAPI
    assert any("| /hook-inline/ |" in line for line in http.splitlines())
    if sys.platform == "linux":  # read from /proc
        for cells in loaded:
            float(cells[-2].split()[0])  # the server CPU per request
            assert float(cells[-1]) >= 0, cells  # the context switches per request
    targets = [
        line.split("|")[1:-1]
        for line in _section(text, "## Targets: met or not").splitlines()
        if line.startswith("| ") and not line.startswith("| target")
    ]
    adapters = [cells for cells in targets if "`/hook/` ≥ 0.95x" in cells[0]]
    assert len(adapters) >= 4
    # A tiny run's HTTP rows are too short to judge; the peers are judged (or not run).
    assert all(cells[2].strip() == "n/a" for cells in adapters), adapters
    assert any("faster than every peer at 1 KB" in cells[0] for cells in targets)


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
        assert "decode_json (hookshield/_json.py)" in shares, profile
        assert sum(shares.values()) == pytest.approx(100, abs=1), profile
    server = text.partition("## The plain ASGI route")[2]
    rows = {
        tuple(cell.strip(" *") for cell in line.split("|")[1:3]): line.split("|")[3:-1]
        for line in server.splitlines()
        if line.startswith("| ") and "CPU" in line
    }
    loop, workers = rows["event loop", "CPU, µs"], rows["worker threads", "CPU, µs"]
    floor, hook = (profiles.ENDPOINTS.index(e) for e in ("/floor/", "/hook/"))
    # Both endpoints cost the loop thread something; only the plain route's handler
    # runs in worker threads.
    assert float(loop[floor]) > 0
    assert float(loop[hook]) > 0
    assert float(workers[floor]) == 0 < float(workers[hook])
