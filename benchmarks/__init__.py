"""hookshield's benchmarks: ``nox -s bench`` or ``python -m benchmarks [--quick | --tiny]``.

Each case backs a claim of the documentation: hookshield beside the floor (HMAC-SHA256
of the body, a constant-time compare and ``json.loads``) and the peer libraries on the
same bytes; through each framework's stack beside a hand-written endpoint doing the
same work; served by real servers.  pytest-benchmark times the in-process cases
(``in_process.py``); ``web.py`` serves and loads the others; ``report.py`` writes
``docs/benchmarks.md`` and its charts from the JSON they wrote.  Timings are reported,
never asserted: a slow machine fails no test.
"""
