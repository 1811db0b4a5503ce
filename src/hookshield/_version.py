"""The version of hookshield, in a module of its own so that reading it imports nothing."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
