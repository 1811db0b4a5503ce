"""Every code sample in README.md and docs/ runs, so the documentation cannot drift.

Convention: the ``python`` blocks of one page run in order in one namespace, as a
reader would paste them into one session.  A page may hold setup that is not shown,
in an HTML comment that opens with ``<!-- invisible-code-block: python``; it runs at
its place in the page.  Shell samples of the command line are
checked against its argument parser.

A page about a framework says so in a comment, ``<!-- docs-test: requires flask -->``,
and is skipped with the reason when the framework is not installed; a sample elsewhere
that imports a framework stands alone and is left out alone.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from hookshield.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

_BLOCK = re.compile(
    r"^(?P<fence>```+)(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^(?P=fence)[ \t]*$"
    r"|^<!-- invisible-code-block: python[ \t]*\n(?P<hidden>.*?)^-->[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
# The framework a sample imports, and the distribution that provides it.
_FRAMEWORKS = {"flask": "flask", "django": "django", "fastapi": "fastapi", "starlette": "starlette"}


def blocks(page: Path, language: str) -> list[tuple[int, str]]:
    """The code blocks of ``language`` in ``page``, with the line each starts on."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start()) + 2
        if match["hidden"] is not None:
            if language == "python":
                found.append((line, match["hidden"]))
        elif match["lang"] == language:
            found.append((line, match["code"]))
    return found


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


PYTHON_PAGES = [page for page in PAGES if blocks(page, "python")]


def test_the_documentation_has_samples_to_check() -> None:
    names = {_name(page) for page in PYTHON_PAGES}
    assert {"README.md", "docs/quickstart.md", "docs/testing.md"} <= names


def _needs(text: str) -> set[str]:
    """The frameworks a sample imports (directly or through hookshield's adapter)."""
    return {
        module
        for module in _FRAMEWORKS
        if re.search(rf"^\s*(from|import) ({module}|hookshield\.{module})\b", text, re.M)
    }


def _missing(modules: set[str]) -> list[str]:
    return sorted(_FRAMEWORKS[m] for m in modules if importlib.util.find_spec(m) is None)


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=_name)
def test_python_samples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = page.read_text(encoding="utf-8")
    # A page about one framework declares it (<!-- docs-test: requires flask -->), and
    # all its samples need it; elsewhere each sample that imports a framework stands
    # alone and only it is left out when that framework is missing.
    required = set(re.findall(r"<!-- docs-test: requires (\w+) -->", text))
    missing = _missing(required)
    if missing:
        pytest.skip(f"{_name(page)} needs {', '.join(missing)}, which is not installed")
    monkeypatch.chdir(tmp_path)  # samples that write files write them here
    namespace: dict[str, object] = {"__name__": "__docs__"}
    left_out: list[str] = []
    for line, code in blocks(page, "python"):
        missing = _missing(_needs(code))
        if missing:
            left_out.append(f"line {line} needs {', '.join(missing)}")
            continue
        compiled = compile("\n" * (line - 1) + code, _name(page), "exec")
        exec(compiled, namespace)  # noqa: S102 - the samples are this repository's docs
    if left_out:
        pytest.skip(f"{_name(page)}: the other samples ran; not installed: {'; '.join(left_out)}")


def _commands(text: str) -> list[list[str]]:
    joined = re.sub(r"\\\n\s*", " ", text)
    commands = []
    for raw in joined.splitlines():
        line = raw.strip().removeprefix("$ ")
        for part in re.split(r"\s*&&\s*", line):
            words = shlex.split(part, comments=True)
            words = words[: words.index(">")] if ">" in words else words
            if words[:1] == ["hookshield"]:
                commands.append(words[1:])
            elif words[:3] == ["python", "-m", "hookshield"]:
                commands.append(words[3:])
    return commands


SHELL_COMMANDS = [
    pytest.param(words, id=f"{_name(page)}:{line}")
    for page in PAGES
    for line, text in blocks(page, "sh")
    for words in _commands(text)
]


def test_the_documentation_shows_the_command_line() -> None:
    assert len(SHELL_COMMANDS) >= 10


@pytest.mark.parametrize("words", SHELL_COMMANDS)
def test_shell_samples_are_valid_commands(words: list[str]) -> None:
    args = build_parser().parse_args(words)
    assert args.command in ("sign", "verify", "send", "listen", "demo")


def test_the_readme_gives_the_two_set_up_commands() -> None:
    shell = [code for _, code in blocks(ROOT / "README.md", "sh")]
    assert "python -m pip install -e . && python -m hookshield demo\n" in shell
    assert "python -m pip install nox && python -m nox\n" in shell


def test_the_demo_transcript_in_the_docs_is_current(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # the table fits the terminal; the page shows 80
    [shown] = [code for _, code in blocks(ROOT / "docs" / "cli.md", "text") if "demo:" in code]
    assert main(["demo"]) == 0
    out = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", capsys.readouterr().out)
    assert out == shown
