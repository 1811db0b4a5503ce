"""What every framework adapter shares: bounded body reads, refusals before the body,
replies, and the ASGI types.  Framework imports live in the public adapters
(``hookshield.flask``, ``hookshield.django``, ``hookshield.asgi``, ``hookshield.fastapi``),
never here.
"""
