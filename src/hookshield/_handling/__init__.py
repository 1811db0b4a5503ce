"""Handling: routes, claims and dispatch, behind the ``WebhookHandler`` facade.

The router, the de-duplication protocol with the in-memory store, the claims of one
delivery, the dispatch loop written once as coroutines (a plain runner and an event
loop's), the outcome, and the handler that joins them.  It imports the core, never a
store of its own choosing, an inbox or a framework.
"""
