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
    assert pickle.loads(pickle.dumps(error)).args == error.args
    headers = hookshield.Headers({"X-Moco-Event": "create"})
    assert dict(pickle.loads(pickle.dumps(headers)).items()) == dict(headers.items())
    assert b"hookshield._" not in pickle.dumps(error) + pickle.dumps(headers)
