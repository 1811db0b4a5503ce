"""The core loads nothing outside the standard library."""

from __future__ import annotations

import json
import subprocess
import sys

CHECK = """
import json, sys
before = set(sys.modules)
import hookshield, hookshield.testing, hookshield.providers
loaded = {name.partition(".")[0] for name in set(sys.modules) - before}
print(json.dumps(sorted(loaded - set(sys.stdlib_module_names) - {"hookshield"})))
"""


def test_import_hookshield_loads_only_the_standard_library() -> None:
    result = subprocess.run(
        [sys.executable, "-I", "-c", CHECK], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []


def test_every_public_name_is_exported() -> None:
    import hookshield

    for name in hookshield.__all__:
        assert getattr(hookshield, name) is not None
        obj = getattr(hookshield, name)
        if isinstance(obj, type):
            assert obj.__doc__, f"{name} has no docstring"
