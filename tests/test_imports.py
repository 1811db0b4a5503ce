"""What importing hookshield loads, and the import graph of its modules.

The core loads nothing outside the standard library, and a process that only
receives deliveries loads no sender it does not use, no event loop and no database;
the modules import one another in one direction, with no cycle.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import hookshield

#: Where the hookshield under test is: a fresh interpreter (-I ignores PYTHONPATH)
#: imports that one, not another installed copy.
SOURCE = str(Path(hookshield.__file__).resolve().parents[1])

CHECK = """
import json, sys
sys.path.insert(0, {source!r})
before = set(sys.modules)
import {modules}
loaded = {{name.partition(".")[0] for name in set(sys.modules) - before}}
print(json.dumps(sorted(loaded - set(sys.stdlib_module_names) - {{"hookshield"}})))
"""
HOOKSHIELD = "hookshield, hookshield.testing, hookshield.providers"


def _loaded(modules: str = HOOKSHIELD, **env: str) -> list[str]:
    """The packages outside the standard library that importing ``modules`` loads."""
    # -I ignores PYTHON* variables only; HOOKSHIELD_NO_SPEEDUPS still reaches it.
    result = subprocess.run(
        [sys.executable, "-I", "-c", CHECK.format(modules=modules, source=SOURCE)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def test_import_hookshield_loads_only_the_standard_library() -> None:
    assert _loaded(HOOKSHIELD_NO_SPEEDUPS="1") == []


def test_speedups_are_the_only_optional_import_and_are_used_when_installed() -> None:
    used = importlib.util.find_spec("msgspec") is not None and not os.environ.get(
        "HOOKSHIELD_NO_SPEEDUPS"
    )
    # Not on import: msgspec comes with the first body decoded, and nothing else does.
    assert _loaded() == []
    decoding = CHECK.format(modules="hookshield\nhookshield.json_backend()", source=SOURCE)
    result = subprocess.run(
        [sys.executable, "-I", "-c", decoding], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == (_loaded("msgspec") if used else [])
    assert hookshield.json_backend() == ("msgspec" if used else "json")


def test_star_import_gives_exactly_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from hookshield import *", namespace)  # noqa: S102 - a fixed statement
    namespace.pop("__builtins__")
    assert sorted(namespace) == sorted(hookshield.__all__)
    assert len(set(hookshield.__all__)) == len(hookshield.__all__)


def test_every_public_class_and_function_is_hookshields_own_and_documented() -> None:
    for name in hookshield.__all__:
        obj = getattr(hookshield, name)
        if not (isinstance(obj, type) or callable(obj)):
            continue
        assert obj.__module__.split(".")[0] == "hookshield", name
        doc = obj.__doc__ or ""
        # A dataclass without a docstring gets its signature as one: not documentation.
        assert doc.strip() and not doc.startswith(f"{obj.__name__}("), f"{name} has no docstring"


def test_every_public_name_is_in_the_reference_page() -> None:
    reference = (Path(__file__).parents[1] / "docs" / "reference.md").read_text("utf-8")
    mentioned = {name for name in hookshield.__all__ if re.search(rf"\b{name}\b", reference)}
    assert set(hookshield.__all__) - mentioned == set()


# -- what importing hookshield loads ------------------------------------------------------

LOADED = """
import json, sys
sys.path.insert(0, {source!r})
before = set(sys.modules)
{code}
print(json.dumps(sorted(set(sys.modules) - before)))
"""

#: What a process that only receives deliveries must not pay for at import: an event
#: loop, sockets, TLS, a database, address parsing, every sender's module.
NOT_ON_IMPORT = {"asyncio", "ssl", "socket", "_socket", "sqlite3", "_sqlite3", "ipaddress"}


def _newly_loaded(code: str, **env: str) -> set[str]:
    """The modules running ``code`` in a fresh interpreter loads."""
    result = subprocess.run(
        [sys.executable, "-I", "-c", LOADED.format(code=code, source=SOURCE)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return set(json.loads(result.stdout))


def test_import_hookshield_loads_no_sender_event_loop_socket_database_or_third_party() -> None:
    loaded = _newly_loaded("import hookshield")  # with msgspec installed or not
    assert loaded & NOT_ON_IMPORT == set()
    assert {name.partition(".")[0] for name in loaded} - set(sys.stdlib_module_names) == {
        "hookshield"
    }
    ours = {name for name in loaded if name.startswith("hookshield.")}
    assert not any(name.startswith("hookshield.providers") for name in ours)
    # The worker, the inbox (its browsing, kept refusals, open_inbox) and the SQLite
    # stores come when first named; PostgreSQL, Django and the dashboard never.
    assert ours.isdisjoint(
        {
            "hookshield._durable.worker",
            "hookshield._durable.inbox",
            "hookshield._durable.browse",
            "hookshield._durable.refused",
            "hookshield._durable.inboxes",
            "hookshield._stores.sqlite",
            "hookshield._handling.asynchronous",
            "hookshield._stores.pg",
            "hookshield.postgres",
            "hookshield.django",
            "hookshield.dashboard",
            "hookshield._dashboard",
        }
    )


def test_a_handler_loads_its_own_sender_only_and_no_event_loop_when_it_handles() -> None:
    loaded = _newly_loaded(
        "import hookshield\n"
        "from hookshield.testing import sample_delivery\n"
        "moco = hookshield.WebhookHandler('moco', secret='s')\n"
        "assert moco.handle(*sample_delivery('moco', 'activity.create', secret='s')).ok",
        HOOKSHIELD_NO_SPEEDUPS="1",
    )
    senders = {name for name in loaded if name.startswith("hookshield.providers.")}
    # The registry's plumbing, and MOCO's module.
    assert senders == {
        "hookshield.providers._base",
        "hookshield.providers._hmac",
        "hookshield.providers._payload",
        "hookshield.providers._scheme",
        "hookshield.providers.moco",
    }
    # Known until the sender plumbing imports urllib.parse (which imports ipaddress)
    # where it decodes a form body: providers/_base.py imports it at module level.
    # Remove "ipaddress" from this set then.
    assert loaded & NOT_ON_IMPORT <= {"ipaddress"}


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("SQLiteInbox", "sqlite3"),
        ("SQLiteDedupeStore", "hookshield._stores.sqlite"),
        ("run_worker", "hookshield._durable.worker"),
        ("BrowsableInbox", "hookshield._durable.browse"),
        ("recheck", "hookshield._durable.refused"),
        ("open_inbox", "hookshield._durable.inboxes"),
        ("MomentumEvent", "hookshield.providers.momentum"),
    ],
)
def test_a_name_imported_on_first_use_loads_its_module_then(name: str, module: str) -> None:
    assert module not in _newly_loaded("import hookshield")
    assert module in _newly_loaded(f"import hookshield\nhookshield.{name}")
    found = getattr(hookshield, name)
    assert vars(hookshield)[name] is found  # kept: looked up directly from now on


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        getattr(hookshield, "Nothing")  # noqa: B009 - the lookup is the test


# -- the import graph --------------------------------------------------------------------

PACKAGE = Path(hookshield.__file__).resolve().parent

#: Import cycles allowed for now, as (importer, imported), each with the reason it
#: stays.  None is: an entry that no longer closes a cycle fails the test.
KNOWN_CYCLES: list[tuple[str, str]] = []
# A module named in a string for importlib.import_module, relative to its package.
_MODULE_TEXT = re.compile(r"\.+[A-Za-z_][\w.]*")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _import_graph() -> dict[str, set[str]]:
    """Each module of hookshield and the modules of hookshield it imports.

    Every import counts alike: at module level, under ``if TYPE_CHECKING``, inside a
    function, and a module named for ``importlib.import_module`` (``"._worker"``).
    """
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]

        def resolve(target: str, level: int, package: str = package) -> str:
            base = package.split(".")
            base = base[: len(base) - level + 1] if level else []
            return ".".join([*base, target] if target else base)

        targets: list[str] = []
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = resolve(node.module or "", node.level)
                for alias in node.names:  # ``from . import _async`` imports _async
                    submodule = f"{source}.{alias.name}"
                    targets.append(submodule if submodule in modules else source)
            elif isinstance(node, ast.Constant) and _MODULE_TEXT.fullmatch(str(node.value)):
                text = str(node.value)
                dots = len(text) - len(text.lstrip("."))
                targets.append(resolve(text[dots:], dots))
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules, as a path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_way_back(graph, group, min(group)) for group in groups]


def _way_back(graph: dict[str, set[str]], group: set[str], start: str) -> list[str]:
    """A path from ``start`` back to itself through ``group`` (strongly connected)."""
    trail, seen = [start], {start}

    def walk(node: str) -> bool:
        for other in sorted(graph[node] & group):
            if other == start:
                trail.append(start)
                return True
            if other not in seen:
                seen.add(other)
                trail.append(other)
                if walk(other):
                    return True
                trail.pop()
        return False

    walk(start)
    return trail


def test_the_modules_import_one_another_without_a_cycle() -> None:
    graph = _import_graph()
    allowed = {edge for edge in KNOWN_CYCLES if edge[1] in graph.get(edge[0], set())}
    assert allowed == set(KNOWN_CYCLES), "gone from the code: take it off KNOWN_CYCLES"
    for importer, imported in KNOWN_CYCLES:
        graph[importer] = graph[importer] - {imported}
    cycles = [" -> ".join(cycle) for cycle in _cycles(graph)]
    assert cycles == [], "import cycles: " + "; ".join(cycles)
    # Each known edge still closes a cycle; once it does not, it is no exception.
    for importer, imported in KNOWN_CYCLES:
        graph[importer] = graph[importer] | {imported}
        assert any(importer in cycle for cycle in _cycles(graph)), (importer, imported)
        graph[importer] = graph[importer] - {imported}


def test_the_import_graph_sees_every_kind_of_import() -> None:
    graph = _import_graph()
    assert (
        "hookshield._handling.asynchronous" in graph["hookshield._handling.dispatch"]
    )  # inside a function
    assert "hookshield.providers" in graph["hookshield._core.verify"]  # under TYPE_CHECKING
    assert "hookshield._durable.worker" in graph["hookshield"]  # named for importlib
    assert "hookshield.providers.moco" in graph["hookshield.providers"]
    cycle = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(cycle) == [["a", "b", "c", "a"]]


# -- the senders' side of the import graph ------------------------------------------------

SRC = Path(__file__).parents[1] / "src"
#: The handler side, which the senders' modules never import.
HANDLER_SIDE = ("_handler", "_credentials", "_dedupe", "_dispatch", "_verify", "_routing")


def _imports() -> dict[str, set[str]]:
    """Each hookshield module, and the hookshield modules it imports anywhere in it
    (under ``TYPE_CHECKING`` or inside a function too: a cycle there is one still)."""
    modules: dict[str, tuple[Path, bool]] = {}
    for path in (SRC / "hookshield").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if package else parts)] = (path, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, package) in modules.items():
        here = name if package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = here.split(".")[: len(here.split(".")) - node.level + 1]
                target = (
                    ".".join([*base, *([node.module] if node.module else [])])
                    if node.level
                    else node.module or ""
                )
                names = [target, *(f"{target}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            graph[name] |= {n for n in names if n in modules and n != name}
    return graph


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    return seen


def test_no_senders_module_is_in_an_import_cycle() -> None:
    graph = _imports()
    senders = [name for name in graph if name.startswith("hookshield.providers")]
    assert len(senders) >= 10
    in_cycles = [name for name in senders if name in _reaches(graph, name)]
    assert in_cycles == []


def test_the_senders_modules_never_import_the_handler_side() -> None:
    graph = _imports()
    forbidden = {f"hookshield.{name}" for name in HANDLER_SIDE}
    for name in graph:
        if name.startswith("hookshield.providers"):
            assert not graph[name] & forbidden, name
