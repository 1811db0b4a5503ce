"""Shared de-duplication stores, and the database plumbing the durable inboxes share.

SQLite for one machine, Django's cache, and PostgreSQL's connections, schema and
``LISTEN``; each step of a store is one atomic operation.  The public faces are
``hookshield.SQLiteDedupeStore``, ``hookshield.redis``, ``hookshield.postgres`` and
``hookshield.django``.
"""
