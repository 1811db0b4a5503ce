"""Each adapter is a leaf behind its extra: without its framework it says how to install it."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("adapter", "framework", "extra"),
    [
        ("hookshield.flask", "flask", "flask"),
        ("hookshield.django", "django.conf", "django"),
        ("hookshield.fastapi", "fastapi", "fastapi"),
    ],
)
def test_a_missing_framework_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, adapter: str, framework: str, extra: str
) -> None:
    # None in sys.modules makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, framework, None)
    monkeypatch.delitem(sys.modules, adapter, raising=False)
    with pytest.raises(ImportError, match=re.escape(f"python -m pip install -e '.[{extra}]'")):
        importlib.import_module(adapter)


CHECK = """
import json, sys
before = set(sys.modules)
import hookshield.asgi
loaded = {name.partition(".")[0] for name in set(sys.modules) - before}
print(json.dumps(sorted(loaded - set(sys.stdlib_module_names) - {"hookshield"})))
"""


def test_the_asgi_adapter_imports_no_framework() -> None:
    # With the JSON speedups off, so that only what the adapter itself imports shows.
    result = subprocess.run(
        [sys.executable, "-c", CHECK],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env={**os.environ, "HOOKSHIELD_NO_SPEEDUPS": "1"},
    )
    assert json.loads(result.stdout) == []
