"""Apps that the real-server tests serve with gunicorn and uvicorn, one per framework.

Every app has the same endpoints: ``/hooks/<sender>`` for each sender, ``/hooks/small``
(MOCO, at most ``SMALL_LIMIT`` bytes) and ``/hooks/background`` (MindPeeker, answered
before its handler runs).  Handlers write ``<sender> <marker>`` lines to the file named
by ``HOOKSHIELD_TEST_LOG``, so that the test process sees what ran in the server's.
"""
