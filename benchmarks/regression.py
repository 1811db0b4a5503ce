"""``python -m benchmarks.regression [--against REV] [--quick]``: this code beside an earlier one.

The regression target ("no served-request row more than 5 % below the code before the
redesign") compares each endpoint's requests per second *as a share of its own
server's hand-written endpoint*.  A share taken from an old report and one measured
today differ by what the machine was doing on either day as much as by the code, so
here both are measured in one run: the revision ``REV`` is exported from git into a
temporary folder, and each framework is served twice, once by that tree and once by
this one, on the same server, with ``/floor/`` and ``/hook/`` of both loaded in turn,
round after round.  A row's change is this tree's ``/hook/`` share over the old
tree's, best round against best round.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from . import web

__all__ = ["BEFORE_THE_REDESIGN", "measure", "render"]

#: The last commit before the core was redesigned along its seams.
BEFORE_THE_REDESIGN = "a1aa633"

#: The servers compared: the report's single-worker rows.
SERVERS = (
    ("Flask", "gunicorn", "benchmarks.apps:flask_app()"),
    ("Django", "gunicorn", "benchmarks.apps:django_app()"),
    ("Starlette", "uvicorn", "benchmarks.apps:starlette_app"),
    ("FastAPI", "uvicorn", "benchmarks.apps:fastapi_app"),
    ("Starlette", "uvicorn[standard]", "benchmarks.apps:starlette_app"),
    ("FastAPI", "uvicorn[standard]", "benchmarks.apps:fastapi_app"),
)
ENDPOINTS = ("/floor/", "/hook/")
#: Connections per load, as the report's HTTP rows use.
CONCURRENCY = 4


@contextmanager
def exported(revision: str) -> Iterator[Path]:
    """The files of ``revision``, as git has them, in a temporary folder."""
    archive = subprocess.run(  # noqa: S603 - git, with the revision the caller named
        ["git", "-C", str(web.ROOT), "archive", "--format=tar", revision],  # noqa: S607
        capture_output=True,
        check=True,
    ).stdout
    with tempfile.TemporaryDirectory(prefix="hookshield-before-") as folder:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        yield Path(folder)


def _environment(tree: Path) -> dict[str, str]:
    env = web.bench_environment(sleep=1.0)
    # That tree's hookshield and its benchmark apps, ahead of the installed copy.
    env["PYTHONPATH"] = os.pathsep.join([str(tree), str(tree / "src")])
    return env


def _one_server(
    name: str, server: str, target: str, trees: dict[str, Path], requests: int, rounds: int
) -> dict[str, Any]:
    with ExitStack() as stack:
        ports = {}
        for label, tree in trees.items():
            process, port = web.start_server(server, target, _environment(tree), cwd=tree)
            stack.callback(web.stop_server, process)
            if not web.wait_ready(process, port):
                return {"server": web.server_label(name, server), "note": f"{label} did not start"}
            ports[label] = port
        best: dict[tuple[str, str], float] = {}
        env = web.bench_environment(sleep=1.0)
        for _ in range(rounds):
            for label, port in ports.items():
                for endpoint in ENDPOINTS:
                    url = f"http://127.0.0.1:{port}{endpoint}"
                    summary = web.run_load(url, requests, CONCURRENCY, ack=False, env=env)
                    rps = float(summary["rps"])  # type: ignore[arg-type]
                    best[label, endpoint] = max(best.get((label, endpoint), 0.0), rps)
    shares = {label: best[label, "/hook/"] / best[label, "/floor/"] for label in trees}
    return {
        "server": web.server_label(name, server),
        "before": shares["before"],
        "now": shares["now"],
        "change": shares["now"] / shares["before"] - 1.0,
        "before_rps": best["before", "/hook/"],
        "now_rps": best["now", "/hook/"],
    }


def measure(quick: bool, against: str = BEFORE_THE_REDESIGN) -> list[dict[str, Any]]:
    """One row per server: ``/hook/``'s share of ``/floor/`` before and now."""
    requests, rounds = (2000, 3) if quick else (4000, 5)
    rows = []
    with exported(against) as before:
        trees = {"before": before, "now": web.ROOT}
        for name, server, target in SERVERS:
            if not web.can_serve(server, name):
                continue
            rows.append(_one_server(name, server, target, trees, requests, rounds))
    return rows


def render(rows: Sequence[dict[str, Any]], against: str = BEFORE_THE_REDESIGN) -> str:
    """The rows as a Markdown table."""
    lines = [
        f"| server | `/hook/` x `/floor/`, {against} | now | change | "
        "`/hook/` req/s before | now |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        if "note" in row:
            lines.append(f"| {row['server']} | {row['note']} | | | | |")
            continue
        lines.append(
            f"| {row['server']} | {row['before']:.2f}x | {row['now']:.2f}x | "
            f"{row['change']:+.1%} | {row['before_rps']:,.0f} | {row['now_rps']:,.0f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--against", default=BEFORE_THE_REDESIGN, help="a git revision")
    parser.add_argument("--quick", action="store_true", help="fewer requests and rounds")
    args = parser.parse_args(argv)
    print(render(measure(args.quick, args.against), args.against))


if __name__ == "__main__":
    main()
