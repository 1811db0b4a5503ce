"""The core loads nothing outside the standard library."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import hookshield

CHECK = """
import json, sys
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
        [sys.executable, "-I", "-c", CHECK.format(modules=modules)],
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
    # msgspec and what msgspec itself imports, nothing else.
    assert _loaded() == (_loaded("msgspec") if used else [])
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


# -- the import graph -----------------------------------------------------------------

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
