"""``python -m benchmarks [--quick | --tiny] [--no-http] [--output PATH] [--results DIR]``.

Runs the in-process cases (``benchmarks/in_process.py``) under pytest-benchmark, twice:
with the standard library's JSON decoder, then hookshield's own rows again with
hookshield[speedups]; then the served comparisons (:mod:`benchmarks.web`).  Each
writes JSON to ``--results`` (a temporary folder by default), from which
:mod:`benchmarks.report` writes the page and its charts.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests import servers

from . import report, web

__all__ = ["main"]

DEFAULT_OUTPUT = servers.ROOT / "docs" / "benchmarks.md"
CASES = "benchmarks/in_process.py"
#: pytest-benchmark's rounds per mode, for the cases whose rounds it chooses.
TIMING = {
    "full": ["--benchmark-min-rounds=10", "--benchmark-max-time=1.0"],
    "quick": ["--benchmark-min-rounds=3", "--benchmark-max-time=0.1"],
    "tiny": ["--benchmark-min-rounds=1", "--benchmark-max-time=0.000001"],
}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_cases(json_file: Path, mode: str, *selected: str, speedups: bool = False) -> None:
    """Run the in-process cases (all, or ``selected``) under pytest-benchmark."""
    env = servers.environment(HOOKSHIELD_BENCH_MODE=mode)
    if not speedups:
        env["HOOKSHIELD_NO_SPEEDUPS"] = "1"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--no-header"]
    command += [f"--benchmark-json={json_file}", "--benchmark-columns=min,median,rounds"]
    command += [*TIMING[mode], *(selected or [CASES])]
    subprocess.run(command, env=env, cwd=servers.ROOT, check=True)  # noqa: S603


def main(argv: Sequence[str] | None = None) -> str:
    """Measure, write the page and its charts, and return the page."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few rounds: indicative only")
    parser.add_argument("--tiny", action="store_true", help="one round of each: a smoke run")
    parser.add_argument("--no-http", action="store_true", help="skip the served comparisons")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the page's path")
    parser.add_argument("--results", type=Path, help="keep the measured JSON in this folder")
    args = parser.parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    with tempfile.TemporaryDirectory(prefix="hookshield-bench-") as scratch:
        results = args.results or Path(scratch)
        results.mkdir(parents=True, exist_ok=True)
        for stale in ("stdlib.json", "speedups.json", "served.json"):
            (results / stale).unlink(missing_ok=True)
        _say("in process, standard library decoder ...")
        run_cases(results / "stdlib.json", mode)
        if importlib.util.find_spec("msgspec") and not os.environ.get("HOOKSHIELD_NO_SPEEDUPS"):
            _say("in process, hookshield[speedups] ...")
            run_cases(results / "speedups.json", mode, f"{CASES}::test_hookshield", speedups=True)
        if not args.no_http:
            _say("served ...")
            served = web.measure(mode)
            (results / "served.json").write_text(json.dumps(served, indent=1), encoding="utf-8")
        text = report.write(results, args.output, mode)
    _say(f"wrote {args.output} and its charts")
    return text


if __name__ == "__main__":
    main()
