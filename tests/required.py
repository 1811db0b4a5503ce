"""Tests that need a tool this machine may lack: skipped here, failed in CI.

A developer without redis-server, openssl, curl or a py-spy allowed to read processes
still gets a green run of everything else; CI (which sets ``CI``) must run every test,
so there a missing tool is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    """Skip the running test for ``reason``, or fail it when the ``CI`` variable is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run this test)")
    pytest.skip(reason)


def tool(name: str) -> str:
    """The path of the program ``name``; skips (or fails under CI) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed on this machine")
    return path
