"""``python -m hookshield``: the ``hookshield`` command-line tool."""

from __future__ import annotations

import sys

from hookshield.cli import main

if __name__ == "__main__":
    sys.exit(main())
