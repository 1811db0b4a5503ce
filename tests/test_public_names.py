"""Exported names are named as hookshield's, whatever private module defines them."""

from __future__ import annotations

import inspect
import pickle

import pytest

import hookshield


@pytest.mark.parametrize("name", hookshield.__all__)
def test_every_exported_class_and_function_says_hookshield(name: str) -> None:
    value = getattr(hookshield, name)
    if inspect.isclass(value) or inspect.isfunction(value):
        assert value.__module__ == "hookshield", value


def test_an_error_and_a_header_view_survive_a_pickle_by_their_public_names() -> None:
    error = hookshield.InvalidSignature("the signature does not match")
    headers = hookshield.Headers({"X-Moco-Event": "create"})
    pickled = pickle.dumps(error), pickle.dumps(headers)
    assert b"hookshield._" not in b"".join(pickled)
    # Our own objects, pickled just above: nothing untrusted is unpickled.
    error_back, headers_back = (pickle.loads(data) for data in pickled)  # noqa: S301
    assert error_back.args == error.args
    assert dict(headers_back.items()) == dict(headers.items())
