"""Verification: from bytes and headers to a typed delivery, or a typed refusal.

Credentials prepared once, compared in constant time over the raw body; bounded JSON
decoded into frozen values; events; the errors and their HTTP statuses.  Nothing here
logs, awaits, touches a store or starts a thread; nothing here imports another layer.
"""
