"""What the package says about itself: its metadata, its security policy, its sources.

These read the repository's files: pyproject.toml, SECURITY.md and src/.  A package
index shows the metadata to people choosing a library; the sources' comments are read
by people who have only the package.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "hookshield"

#: Every sender the package serves, as its description must name them.
SENDERS = (
    "Moonsense",
    "Petal Metrics",
    "MOCO",
    "MindPeeker",
    "Momentum/SparkPost",
    "GitHub",
    "Standard Webhooks",
    "Svix",
    "HMAC sender",
)


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the metadata is one file
    with (ROOT / "pyproject.toml").open("rb") as file:
        table: dict[str, Any] = tomllib.load(file)["project"]
    return table


def test_the_description_names_every_sender(project: dict[str, Any]) -> None:
    missing = [name for name in SENDERS if name not in project["description"]]
    assert not missing


def test_the_project_links_its_home_docs_source_changelog_and_issues(
    project: dict[str, Any],
) -> None:
    urls = project["urls"]
    assert set(urls) == {"Homepage", "Documentation", "Source", "Changelog", "Issues"}
    assert all(url.startswith("https://") for url in urls.values()), urls
    assert urls["Changelog"].endswith("CHANGELOG.md")
    assert urls["Issues"].endswith("/issues")


def test_the_classifiers_say_each_python_framework_and_typing(project: dict[str, Any]) -> None:
    classifiers = set(project["classifiers"])
    lowest = re.fullmatch(r">=3\.(\d+)", project["requires-python"])
    assert lowest is not None
    versions = {f"Programming Language :: Python :: 3.{minor}" for minor in range(10, 14)}
    assert int(lowest[1]) == 10
    assert versions <= classifiers
    assert {"Framework :: Flask", "Framework :: Django", "Framework :: FastAPI"} <= classifiers
    assert "Typing :: Typed" in classifiers
    assert (SRC / "py.typed").is_file()


def test_the_license_is_an_spdx_expression_and_no_classifier_contradicts_it(
    project: dict[str, Any],
) -> None:
    # PEP 639: the expression supersedes the "License ::" classifiers, and build
    # backends (setuptools 77+) and the package index refuse a project with both.
    assert project["license"] == "MIT"
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]


def test_the_security_policy_says_how_to_report_what_and_how_fast() -> None:
    policy = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", policy, re.M)
    assert headings == [
        "Reporting a vulnerability",
        "What is in scope",
        "Supported versions",
        "How fast we answer",
    ]
    assert "privately" in policy and "not in a public issue" in policy
    assert re.search(r"within \d+ working days", policy)


#: Files of the project's own workspace, which a copy of the package does not have.
NOT_IN_THE_REPOSITORY = ("PROVIDERS.md", "seeds/", "../shared")


def test_no_source_file_cites_a_file_that_is_not_in_the_repository() -> None:
    cited = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(name in line for name in NOT_IN_THE_REPOSITORY)
    ]
    assert not cited, "cite the sender's own documentation by name instead:\n" + "\n".join(cited)


def test_the_pages_sources_cite_exist() -> None:
    """A source that cites a page of docs/ names one that is there."""
    cited = {
        match
        for path in SRC.rglob("*.py")
        for match in re.findall(r"docs/[\w/.-]+\.md", path.read_text(encoding="utf-8"))
    }
    assert cited, "the sources cite the security model"
    assert all((ROOT / page).is_file() for page in cited), cited
