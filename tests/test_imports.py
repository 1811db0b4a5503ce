"""The core loads nothing outside the standard library."""

from __future__ import annotations

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
