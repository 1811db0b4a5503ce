"""Every check the project runs: ``python -m nox`` runs them all, as CI does."""

from __future__ import annotations

import glob
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


LOCKS = "requirements"
#: Every dependency group that a session installs, compiled into a lock of its own.
LOCKED_GROUPS = (
    "test",
    "lint",
    "typecheck",
    "docs",
    "bench",
    "bench-smoke",
    "adapters-oldest",
    "nox",
)


def install_groups(session: nox.Session, *groups: str) -> None:
    """Install dependency groups from their locks, exactly as pinned there.

    The locks are compiled for every supported Python at once (`nox -s lock`), so the
    same command gives the same packages next month; `nox -s latest` is the session
    that installs the newest releases instead.
    """
    for group in groups:
        session.install("-r", f"{LOCKS}/{group}.txt")


def install_project(session: nox.Session) -> None:
    """The checkout, editable, built by the hatchling its group's lock installed."""
    session.install("--no-build-isolation", "--no-deps", "-e", ".")


def ensure_postgresql(session: nox.Session) -> None:
    """Install Debian's PostgreSQL server when it is missing and we may (root, apt-get).

    The tests of hookshield.postgres and of Django on PostgreSQL start a server of
    their own with its initdb; a fresh CI machine may not have it.  Elsewhere (no
    root, no apt-get) nothing is installed and those tests skip, or fail under CI.
    """
    if glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("initdb"):
        return
    if shutil.which("apt-get") is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        session.warn("PostgreSQL is not installed: its tests skip (apt-get install postgresql)")
        return
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-q", external=True, env=env)
    session.run(
        "apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql",
        external=True, env=env,
    )  # fmt: skip


#: Where the dashboard's browser tests find Chromium (Debian's package).
CHROMIUM = "/usr/bin/chromium"


def install_chromium(session: nox.Session) -> None:
    """Install Debian's chromium for the browser tests, when it is missing and we may.

    Only as root, with apt-get: CI's fresh machine.  Anywhere else a missing browser is
    left to tests/required.py, which skips the browser tests (and fails them under CI).
    Playwright's own browser download is never used.
    """
    apt_get = shutil.which("apt-get")
    if os.path.exists(CHROMIUM) or apt_get is None or os.geteuid() != 0:
        return
    session.run(apt_get, "update", external=True)
    session.run(apt_get, "install", "-y", "--no-install-recommends", "chromium", external=True)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite with branch coverage, gated at 95%."""
    ensure_postgresql(session)
    install_chromium(session)
    install_groups(session, "test")
    install_project(session)
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
    install_project(session)
    session.run("mypy", "--strict")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, built with warnings as errors (mkdocs build --strict)."""
    install_groups(session, "docs")
    install_project(session)
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
    install_project(session)
    session.run(
        "pytest", "-p", "no:cacheprovider", *CORE_TESTS, *session.posargs,
        env={"HOOKSHIELD_NO_SPEEDUPS": "1"},
    )  # fmt: skip


@nox.session(python=OTHER_PYTHONS or False)
def tests_versions(session: nox.Session) -> None:
    """The core's tests on the other supported Pythons found here (no coverage gate)."""
    install_groups(session, "test")
    install_project(session)
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        *CORE_TESTS,
        *session.posargs,
    )


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks, which rewrite docs/benchmarks.md and its charts (`-- --quick`, `-- --tiny`).

    Not in the default sessions: CI does not run it, timings are for a quiet machine
    (`bench_smoke` checks that the harness works).
    """
    install_groups(session, "bench")
    install_project(session)
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def bench_smoke(session: nox.Session) -> None:
    """Smoke runs of the benchmarks and the profiles: real servers and py-spy, timings unjudged.

    Kept out of `tests` (they take half a minute and need pytest-benchmark and py-spy);
    CI runs them here.
    """
    install_groups(session, "bench-smoke")
    install_project(session)
    session.run("pytest", "-p", "no:cacheprovider", "benchmarks/test_smoke.py", *session.posargs)


@nox.session
def profile(session: nox.Session) -> None:
    """py-spy profiles of where the time goes, which rewrite docs/profiles.md.

    Not in the default sessions, like `bench`; `-- --tiny` for a smoke run.
    """
    install_groups(session, "bench")
    install_project(session)
    session.run("python", "-m", "benchmarks.profiles", *session.posargs)


@nox.session
def adapters_oldest(session: nox.Session) -> None:
    """The framework adapters' tests on the oldest supported releases (no coverage gate).

    The default `tests` session runs the same tests on the newest releases.
    """
    install_groups(session, "adapters-oldest")
    install_project(session)
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


@nox.session
def latest(session: nox.Session) -> None:
    """The tests on the newest releases of everything, not the locks (not in the default run).

    Run it on purpose to find what a new release breaks before a newcomer does; when
    it passes, `nox -s lock` moves the locks forward.
    """
    session.install("--upgrade", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.install("--upgrade", "-e", ".")
    session.run("pytest", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def lock(session: nox.Session) -> None:
    """Compile every dependency group into requirements/GROUP.txt for Python 3.10 and up.

    `nox -s lock` keeps the pins the locks have and adds what pyproject newly asks for;
    `nox -s lock -- --upgrade` moves everything to today's newest releases that
    pyproject allows; `nox -s lock -- --upgrade-package django` moves one package.
    """
    session.install("uv>=0.5")
    for group in LOCKED_GROUPS:
        session.run(
            "uv", "pip", "compile", "--quiet", "--universal", "--python-version", "3.10",
            "--group", f"pyproject.toml:{group}", "--output-file", f"{LOCKS}/{group}.txt",
            "--custom-compile-command", "nox -s lock", "--annotation-style", "line",
            *session.posargs,
        )  # fmt: skip
