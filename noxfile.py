"""Every check the project runs: ``python -m nox`` runs them all, as CI does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
nox.options.sessions = [
    "tests",
    "tests_pure",
    "lint",
    "typecheck",
    "docs",
    "adapters_oldest",
    "bench_smoke",
]

PYPROJECT = nox.project.load_toml("pyproject.toml")
SUPPORTED = ("3.10", "3.11", "3.12", "3.13")


def _pyenv_versions() -> list[str]:
    """Expose every installed pyenv Python of a supported minor version to nox.

    On pyenv machines only the global version answers by name (python3.12 fails
    otherwise); PYENV_VERSION with several versions makes each shim resolve.
    """
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return []
    listed = subprocess.run(
        [pyenv, "versions", "--bare"], capture_output=True, text=True, check=False
    ).stdout.split()
    newest: dict[str, str] = {}
    for version in listed:
        minor = ".".join(version.split(".")[:2])
        if minor in SUPPORTED and version.replace(".", "").isdigit():
            newest[minor] = max(newest.get(minor, version), version, key=_version_key)
    if newest:
        current = (
            os.environ.get("PYENV_VERSION")
            or subprocess.run(
                [pyenv, "version-name"], capture_output=True, text=True, check=False
            ).stdout.strip()
        )
        chain = [v for v in [current, *newest.values()] if v]
        os.environ["PYENV_VERSION"] = ":".join(dict.fromkeys(chain))
    return sorted(newest, key=_version_key)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


OTHER_PYTHONS = [
    v for v in _pyenv_versions() if v != f"{sys.version_info[0]}.{sys.version_info[1]}"
]
if OTHER_PYTHONS:
    nox.options.sessions.append("tests_versions")


def install_groups(session: nox.Session, *groups: str) -> None:
    """Install PEP 735 dependency groups (the pip in a fresh venv may predate --group)."""
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite with branch coverage, gated at 95%."""
    install_groups(session, "test")
    session.install("-e", ".")
    session.run(
        "pytest",
        "--cov=hookshield",
        "--cov-branch",
        "--cov-report=term-missing:skip-covered",
        "--cov-fail-under=95",
        *session.posargs,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    install_groups(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over src and tests."""
    install_groups(session, "typecheck")
    session.install("-e", ".")
    session.run("mypy", "--strict")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, built with warnings as errors (mkdocs build --strict)."""
    install_groups(session, "docs")
    session.install("-e", ".")
    # The variable silences mkdocs-material's end-of-life banner in CI logs.
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


CORE_TESTS = (
    "tests/test_async.py",
    "tests/test_auth.py",
    "tests/test_background.py",
    "tests/test_batches.py",
    "tests/test_claims.py",
    "tests/test_credentials.py",
    "tests/test_dispatch.py",
    "tests/test_events.py",
    "tests/test_github.py",
    "tests/test_handler.py",
    "tests/test_headers.py",
    "tests/test_hmac_sender.py",
    "tests/test_imports.py",
    "tests/test_json.py",
    "tests/test_keys.py",
    "tests/test_outcome.py",
    "tests/test_peers.py",
    "tests/test_properties.py",
    "tests/test_providers.py",
    "tests/test_routing.py",
    "tests/test_senders.py",
    "tests/test_standard_webhooks.py",
    "tests/test_testing.py",
    "tests/test_verify.py",
)


@nox.session
def tests_pure(session: nox.Session) -> None:
    """The core's tests with the standard library's JSON decoder (no hookshield[speedups])."""
    install_groups(session, "test")
    session.install("-e", ".")
    session.run(
        "pytest", "-p", "no:cacheprovider", *CORE_TESTS, *session.posargs,
        env={"HOOKSHIELD_NO_SPEEDUPS": "1"},
    )  # fmt: skip


@nox.session(python=OTHER_PYTHONS or False)
def tests_versions(session: nox.Session) -> None:
    """The core's tests on the other supported Pythons found here (no coverage gate)."""
    install_groups(session, "test")
    session.install("-e", ".")
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        *CORE_TESTS,
        *session.posargs,
    )


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks, which rewrite docs/benchmarks.md (`-- --quick` for a shorter run).

    Not in the default sessions: CI does not run it, timings are for a quiet machine
    (`bench_smoke` checks that the harness works).
    """
    install_groups(session, "bench")
    session.install("-e", ".")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def bench_smoke(session: nox.Session) -> None:
    """Smoke runs of the benchmarks and the profiles: real servers and py-spy, timings unjudged.

    Kept out of `tests` (they take a minute and need py-spy); CI runs them here.
    """
    install_groups(session, "bench-smoke")
    session.install("-e", ".")
    session.run("pytest", "-p", "no:cacheprovider", "benchmarks/test_smoke.py", *session.posargs)


@nox.session
def profile(session: nox.Session) -> None:
    """py-spy profiles of the targets the benchmarks miss, which rewrite docs/profiles.md.

    Not in the default sessions, like `bench`; `-- --tiny` for a smoke run.
    """
    install_groups(session, "bench")
    session.install("-e", ".")
    session.run("python", "-m", "benchmarks.profiles", *session.posargs)


#: The oldest release of each framework that pyproject's extras allow, with the
#: anyio and httpx of their time (newer ones warn inside Starlette 0.37's TestClient).
OLDEST_FRAMEWORKS = (
    "flask==2.3.*",
    "werkzeug==2.3.*",
    "django==4.2.*",
    "starlette==0.37.*",
    "fastapi==0.110.1",  # the first FastAPI on Starlette 0.37
    "anyio==4.3.*",
    "httpx==0.27.*",
)


@nox.session
def adapters_oldest(session: nox.Session) -> None:
    """The framework adapters' tests on the oldest supported releases (no coverage gate).

    The default `tests` session runs the same tests on the newest releases.
    """
    session.install("pytest>=8", "uvicorn>=0.30", "gunicorn>=22", *OLDEST_FRAMEWORKS)
    session.install("-e", ".")
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        "tests/adapters",
        "tests/test_examples.py",
        # The Celery hand-off is no framework adapter: `tests` runs it, with Celery.
        "--ignore=tests/adapters/test_celery.py",
        *session.posargs,
    )
