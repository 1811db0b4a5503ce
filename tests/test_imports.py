"""The core loads nothing outside the standard library."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

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


def test_every_public_name_is_exported() -> None:
    for name in hookshield.__all__:
        assert getattr(hookshield, name) is not None
        obj = getattr(hookshield, name)
        if isinstance(obj, type):
            assert obj.__doc__, f"{name} has no docstring"
