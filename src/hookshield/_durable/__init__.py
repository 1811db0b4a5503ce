"""Durable processing: inboxes, their seal, browsing, kept refusals and the worker.

A delivery is stored (sealed with the inbox's key) before its 2xx, and run by a worker
that verifies it again; what is kept at rest is bounded and never a shared credential.
It imports the core and handling layers, never a framework.
"""
