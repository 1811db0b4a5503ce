"""Every code sample in README.md and docs/ runs as pasted, so the documentation cannot drift.

Convention: each ``python`` block is one test (its id is the page and the line the
code starts on) and runs in a fresh namespace, as a reader would paste it alone: it
defines the handler it uses and, if it needs a framework, exercises the app through
that framework's test client.  Nothing is run before it that the reader cannot see:
a page has no hidden setup, and a block that imports Django runs in a process of its
own (Django's settings are configured once per process, so in this one a block could
lean on another's).  A block may import the standard library, hookshield and the
frameworks of hookshield's extras; anything else it needs (``pytest``, the ``httpx2``
under Starlette's test client) is named in the visible prose just above it, with the
command that installs it.  A block that cannot run says why just above it, in
``<!-- not run: reason -->``, and says the same in that visible prose; such blocks are
few.  A block that imports a framework which is not installed is skipped, with its
name.  Shell samples of the command line are checked against its argument parser,
and every install command against pyproject.toml.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import hookshield
from hookshield.cli import build_parser, main
from hookshield.providers import PROVIDERS

from .required import unavailable

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
EXAMPLES = sorted((ROOT / "examples").rglob("*.py"))

_BLOCK = re.compile(
    r"(?:^<!-- not run:(?P<reason>[^\n]*?)-->[ \t]*\n(?:[ \t]*\n)*)?"
    r"^(?P<fence>```+)(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# The framework a sample imports, and the distribution that provides it.
_FRAMEWORKS = {"flask": "flask", "django": "django", "fastapi": "fastapi", "starlette": "starlette"}
#: What a sample needs beyond the modules it imports: the module whose import implies
#: it, and the distributions any one of which provides it.  Starlette's TestClient
#: (FastAPI's too) sends its requests through HTTPX, which neither extra installs.
_IMPLIED = {
    "starlette.testclient": ("httpx2", "httpx"),
    "fastapi.testclient": ("httpx2", "httpx"),
}
#: At most this many blocks of python may be left out as not runnable.
MOST_NOT_RUN = 3


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # the line its code starts on
    language: str
    code: str
    not_run: str | None = None  # the reason given, when marked as not runnable
    prose: str = ""  # what a reader sees between the block before and this one

    @property
    def id(self) -> str:
        return f"{_name(self.page)}:{self.line}"


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _parse(page: Path) -> list[Block]:
    """The fenced blocks of ``page``, each with the visible prose just above it."""
    text = page.read_text(encoding="utf-8")
    found: list[Block] = []
    previous = 0
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("code")) + 1
        reason = None if match["reason"] is None else match["reason"].strip()
        prose = _COMMENT.sub("", text[previous : match.start()])
        found.append(Block(page, line, match["lang"], match["code"], reason, prose))
        previous = match.end()
    return found


def blocks(page: Path, language: str) -> list[Block]:
    """The code blocks of ``language`` in ``page``."""
    return [block for block in _parse(page) if block.language == language]


PYTHON_BLOCKS = [block for page in PAGES for block in blocks(page, "python")]
RUNNABLE = [block for block in PYTHON_BLOCKS if block.not_run is None]

NOT_RUN = [block for block in PYTHON_BLOCKS if block.not_run is not None]


def test_the_documentation_has_samples_to_check() -> None:
    names = {_name(block.page) for block in RUNNABLE}
    assert {"README.md", "docs/quickstart.md", "docs/testing.md", "docs/typing.md"} <= names
    assert {f"docs/frameworks/{name}.md" for name in ("flask", "django", "asgi")} <= names


def test_few_samples_are_left_out_and_each_says_why_where_a_reader_sees_it() -> None:
    assert len(NOT_RUN) <= MOST_NOT_RUN, [block.id for block in NOT_RUN]
    assert all(block.not_run for block in NOT_RUN), [b.id for b in NOT_RUN if not b.not_run]
    unsaid = [b.id for b in NOT_RUN if _said(b.not_run or "") not in _said(b.prose)]
    assert not unsaid, f"the prose above these blocks does not say why they cannot run: {unsaid}"


def _said(text: str) -> str:
    return " ".join(text.lower().split())


def test_no_page_hides_code_from_its_reader() -> None:
    """A sample that works only after setup the reader cannot see fails when pasted."""
    hidden = [_name(page) for page in PAGES if "invisible-code-block" in page.read_text("utf-8")]
    assert not hidden


def test_the_page_reader_sees_marks_prose_and_lines(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# A page\n"
        "Some prose.\n"
        "```python\nshown = 2\n```\n"
        "It needs a live Redis.\n"
        "<!-- not run: it needs a live Redis -->\n\n"
        "```python\nredis = 3\n```\n"
        "```sh\nhookshield demo\n```\n",
        encoding="utf-8",
    )
    found = _parse(page)
    assert [(b.language, b.line, b.code, b.not_run) for b in found] == [
        ("python", 4, "shown = 2\n", None),
        ("python", 10, "redis = 3\n", "it needs a live Redis"),
        ("sh", 13, "hookshield demo\n", None),
    ]
    assert [b.prose for b in found] == [
        "# A page\nSome prose.\n",
        "\nIt needs a live Redis.\n",
        "\n",
    ]


def test_a_not_run_mark_stands_right_above_a_block() -> None:
    """A mark that does not sit above a fence would leave out nothing, silently."""
    for page in PAGES:
        marks = page.read_text(encoding="utf-8").count("<!-- not run:")
        assert marks == sum(block.not_run is not None for block in _parse(page)), _name(page)


def _needs(text: str) -> set[str]:
    """The frameworks a sample imports (directly or through hookshield's adapter)."""
    return {
        module
        for module in _FRAMEWORKS
        if re.search(rf"^\s*(from|import) ({module}|hookshield\.{module})\b", text, re.M)
    }


def _missing(modules: set[str]) -> list[str]:
    return sorted(_FRAMEWORKS[m] for m in modules if importlib.util.find_spec(m) is None)


def _imports(code: str) -> set[str]:
    """Every module a sample imports, by its full dotted name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def _extras_distributions() -> set[str]:
    """The distributions hookshield's extras install, as module names."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[project.optional-dependencies]\n", 1)[1].split("\n[", 1)[0]
    names = re.findall(r'"([A-Za-z][\w.-]*)', section)
    return {name.lower().replace("-", "_") for name in names if name != "hookshield"}


def _unsaid_needs(block: Block) -> list[str]:
    """What ``block`` needs beyond hookshield and its extras that its prose does not name."""
    provided = {"hookshield", *sys.stdlib_module_names, *_extras_distributions()}
    needs: list[tuple[str, ...]] = [
        (module,)
        for module in sorted({name.split(".")[0] for name in _imports(block.code)} - provided)
    ]
    needs += [_IMPLIED[name] for name in sorted(_imports(block.code)) if name in _IMPLIED]
    return [
        " or ".join(options)
        for options in needs
        if not any(
            re.search(rf"pip install [^\n`]*\b{re.escape(o)}\b", block.prose) for o in options
        )
    ]


def test_the_needs_check_reads_imports_and_prose(tmp_path: Path) -> None:
    def block(prose: str, code: str) -> Block:
        return Block(tmp_path, 1, "python", code, prose=prose)

    assert _unsaid_needs(block("", "import json\nfrom hookshield import Event\n")) == []
    assert _unsaid_needs(block("", "from flask import Flask\nimport redis\n")) == []
    assert _unsaid_needs(block("", "import pytest\n")) == ["pytest"]
    assert _unsaid_needs(block("Run `python -m pip install pytest`.", "import pytest\n")) == []
    client = "from starlette.testclient import TestClient\n"
    assert _unsaid_needs(block("", client)) == ["httpx2 or httpx"]
    assert _unsaid_needs(block("`python -m pip install httpx2`", client)) == []


@pytest.mark.parametrize("block", [pytest.param(block, id=block.id) for block in RUNNABLE])
def test_python_sample_says_what_it_needs_beyond_hookshield(block: Block) -> None:
    unsaid = _unsaid_needs(block)
    assert not unsaid, (
        f"{block.id} needs {', '.join(unsaid)}: say so just above it, with the command "
        "that installs it (python -m pip install ...)"
    )


@pytest.mark.parametrize("block", [pytest.param(block, id=block.id) for block in RUNNABLE])
def test_python_sample_runs_on_its_own(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs = _needs(block.code)
    missing = _missing(needs)
    if missing:
        unavailable(f"{block.id} needs {', '.join(missing)}, which is not installed")
    monkeypatch.chdir(tmp_path)  # samples that write files write them here
    code = "\n" * (block.line - 1) + block.code
    if "django" in needs:
        _run_alone(block, code, tmp_path)
        return
    namespace: dict[str, object] = {"__name__": "__docs__"}
    compiled = compile(code, _name(block.page), "exec")
    exec(compiled, namespace)  # noqa: S102 - the samples are this repository's docs


def _run_alone(block: Block, code: str, tmp_path: Path) -> None:
    """Run ``code`` in a fresh interpreter, as ``python sample.py``, warnings as errors."""
    sample = tmp_path / "sample.py"
    sample.write_text(code, encoding="utf-8")
    package_root = str(Path(hookshield.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # a reader's shell has none set
    ran = subprocess.run(
        [sys.executable, "-W", "error", str(sample)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, f"{block.id} fails as pasted:\n{ran.stderr[-3000:]}"


# -- installing ---------------------------------------------------------------------

# hookshield is not on the package index yet: `pip install hookshield` (with or
# without extras) fails outside a checkout.  Until a release exists, every page says
# to install from the checkout, `python -m pip install -e '.[flask]'`.
_FROM_THE_INDEX = re.compile(
    r"pip install\b[^\n&;|#]*?(?<![\w.-])['\"]?hookshield(?:\[|['\"\s]|$)", re.M
)
_FROM_A_CHECKOUT = re.compile(
    r"pip install (?:[^\n]*\s)?-e\s+(['\"]?)\.(?:\[(?P<extras>[^\]]*)\])?\1"
)
INSTALL_TEXTS = [pytest.param(path, id=_name(path)) for path in [*PAGES, *EXAMPLES]]


def _extras() -> set[str]:
    """The extras pyproject.toml declares in [project.optional-dependencies]."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[project.optional-dependencies]\n", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*=", section, re.M))


def test_pyproject_declares_the_adapters_extras() -> None:
    assert {"flask", "django", "starlette", "fastapi", "speedups", "all"} <= _extras()


@pytest.mark.parametrize("path", INSTALL_TEXTS)
def test_install_commands_work_from_a_checkout(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    from_the_index = [m.group(0) for m in _FROM_THE_INDEX.finditer(text)]
    assert not from_the_index, (
        f"{_name(path)}: hookshield is not on the package index yet; "
        f"say `python -m pip install -e '.[extra]'` instead of {from_the_index}"
    )
    named = {
        extra.strip()
        for match in _FROM_A_CHECKOUT.finditer(text)
        for extra in (match["extras"] or "").split(",")
        if extra.strip()
    }
    assert named <= _extras(), f"{_name(path)} names extras pyproject.toml lacks"


def test_the_install_check_catches_the_package_index_form() -> None:
    """The patterns above, on the forms they must tell apart."""
    for command in (
        "python -m pip install hookshield",
        "pip install 'hookshield[flask]' uvicorn",
        'pip install "hookshield[fastapi]"',
        "python -m pip install -U hookshield",
    ):
        assert _FROM_THE_INDEX.search(command), command
    for command in (
        "python -m pip install -e .",
        "python -m pip install -e '.[flask]'",
        "python -m pip install hookshield-extras",
        "python -m pip install gunicorn",
    ):
        assert not _FROM_THE_INDEX.search(command), command
    match = _FROM_A_CHECKOUT.search("python -m pip install -e '.[fastapi,speedups]' uvicorn")
    assert match is not None and match["extras"] == "fastapi,speedups"


# -- the command line ------------------------------------------------------------------


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
    pytest.param(words, id=block.id)
    for page in PAGES
    for block in blocks(page, "sh")
    for words in _commands(block.code)
]


def test_the_documentation_shows_the_command_line() -> None:
    assert len(SHELL_COMMANDS) >= 10


@pytest.mark.parametrize("words", SHELL_COMMANDS)
def test_shell_samples_are_valid_commands(words: list[str]) -> None:
    args = build_parser().parse_args(words)
    assert args.command in ("sign", "verify", "send", "listen", "demo", "worker", "inbox")


def _nox_sessions() -> set[str]:
    text = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    return set(re.findall(r"^@nox\.session[^\n]*\ndef (\w+)\(", text, re.M))


def test_the_nox_sessions_the_documentation_names_exist() -> None:
    named = {
        session
        for page in PAGES
        for match in re.finditer(r"nox -s ((?:\w+ ?)+)", page.read_text(encoding="utf-8"))
        for session in match[1].split()
    }
    assert {"tests", "docs", "bench"} <= named
    assert named <= _nox_sessions()


def test_the_readme_says_what_the_full_run_costs_and_how_to_read_the_docs() -> None:
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert re.search(r"about \d+ minutes", text)
    assert re.search(r"`\.nox/` take about [\d.]+ (MB|GB)", text)
    assert "python -m mkdocs serve" in text
    assert "python -m http.server -d site" in text


def test_the_readme_gives_the_two_set_up_commands() -> None:
    shell = [block.code for block in blocks(ROOT / "README.md", "sh")]
    assert "python -m pip install -e . && python -m hookshield demo\n" in shell
    test_command = "python -m pip install -r requirements/nox.txt && python -m nox\n"
    assert test_command in shell
    # CI runs exactly the README's command, so what a newcomer runs is what is tested.
    assert (ROOT / ".ci" / "run").read_text(encoding="utf-8").endswith(test_command)


#: Set, the transcript test writes the demo's output into docs/cli.md instead of failing.
UPDATE_DOCS = "HOOKSHIELD_UPDATE_DOCS"


def test_the_demo_transcript_in_the_docs_is_current(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page shows what ``hookshield demo`` prints today, every sender of its included.

    The demo's list of senders is the registry's: a sender added with a ``demo`` script
    changes the transcript, which ``HOOKSHIELD_UPDATE_DOCS=1`` rewrites from the demo.
    """
    monkeypatch.setenv("COLUMNS", "80")  # the table fits the terminal; the page shows 80
    page = ROOT / "docs" / "cli.md"
    [shown] = [b.code for b in blocks(page, "text") if "demo:" in b.code]
    assert main(["demo"]) == 0
    out = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", capsys.readouterr().out)
    if out != shown and os.environ.get(UPDATE_DOCS):
        text = page.read_text(encoding="utf-8")
        page.write_text(text.replace(shown, out, 1), encoding="utf-8")
        shown = out
    assert out == shown, f"the demo changed: {UPDATE_DOCS}=1 rewrites docs/cli.md from it"
    for sender in PROVIDERS.values():
        if sender.demo is not None:
            assert re.search(rf"\bvalid +{re.escape(sender.title)} ", shown), sender.title


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_each_sender_page_states_its_default_body_limit(provider: str) -> None:
    text = " ".join((ROOT / "docs" / "senders" / f"{provider}.md").read_text().split())
    mib = PROVIDERS[provider].default_max_body_size / (1024 * 1024)
    assert f"default `max_body_size` is {mib:g} MiB" in text
