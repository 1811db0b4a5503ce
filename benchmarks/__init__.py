"""hookshield's benchmark harness (issue 5): ``nox -s bench`` or ``python -m benchmarks``.

It times hookshield beside the physical floor (HMAC-SHA256 of the body, a constant-time
compare and ``json.loads``) and beside the webhook libraries we compare against, on the
same bytes, in one run, and writes the results and the issue's targets to
``docs/benchmarks.md``.  Timings are reported, never asserted: a slow machine fails no
test.  ``--quick`` runs everything with few repetitions.
"""
