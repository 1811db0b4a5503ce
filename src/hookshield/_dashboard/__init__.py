"""The inbox dashboard's layers: markup (``_html``), pages (``_pages``, ``_chart``), the
app and its rules (``_app``), and what serves it (``_serve``).  The public names are in
:mod:`hookshield.dashboard`."""
