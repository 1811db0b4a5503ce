"""Read-only event data, headers and the de-duplication store."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from hookshield import FrozenArray, FrozenObject, Headers, WebhookHandler
from hookshield.testing import sample_delivery


class TestFrozenData:
    raw: ClassVar[dict[str, Any]] = {"a": {"b": [1, {"c": 2}]}, "s": "text"}

    def test_nested_values_are_read_only(self) -> None:
        data = FrozenObject(self.raw)
        inner = data["a"]
        assert isinstance(inner, FrozenObject)
        items = inner["b"]
        assert isinstance(items, FrozenArray)
        assert items[1]["c"] == 2
        assert isinstance(items[1], FrozenObject)
        with pytest.raises(TypeError):
            data["s"] = "changed"  # type: ignore[index]
        with pytest.raises(TypeError):
            items[0] = 5  # type: ignore[index]
        assert not hasattr(data, "__dict__")

    def test_mapping_and_sequence_behaviour(self) -> None:
        data = FrozenObject(self.raw)
        assert list(data) == ["a", "s"] and len(data) == 2 and "a" in data and "z" not in data
        assert data.get("z") is None
        assert data == self.raw and data == FrozenObject(dict(self.raw))
        assert data != 3
        items = data["a"]["b"]
        assert (
            items == [1, {"c": 2}]
            and items == (1, {"c": 2})
            and items == FrozenArray([1, {"c": 2}])
        )
        assert items != "nope"
        assert items[:1] == [1] and isinstance(items[:1], FrozenArray)
        assert [type(x).__name__ for x in items] == ["int", "FrozenObject"]
        assert len(items) == 2
        assert "FrozenObject" in repr(data) and "FrozenArray" in repr(items)
        with pytest.raises(TypeError):
            hash(data)
        with pytest.raises(TypeError):
            hash(items)

    def test_thaw_gives_an_independent_mutable_copy(self) -> None:
        data = FrozenObject(self.raw)
        copy = data.thaw()
        copy["a"]["b"][1]["c"] = 99
        assert data["a"]["b"][1]["c"] == 2
        assert copy == {"a": {"b": [1, {"c": 99}]}, "s": "text"}
        assert data["a"]["b"].thaw() == [1, {"c": 2}]

    def test_thaw_follows_deep_nesting_without_recursion(self) -> None:
        deep: list[object] = []
        node = deep
        for _ in range(5000):
            child: list[object] = []
            node.append(child)
            node = child
        thawed = FrozenArray(deep).thaw()
        depth = 0
        current: list[object] = thawed
        while current:
            current = current[0]  # type: ignore[assignment]
            depth += 1
        assert depth == 5000

    def test_events_are_frozen_and_hashable(self) -> None:
        handler = WebhookHandler("mindpeeker", secret="s")
        event = handler.verify(
            *sample_delivery("mindpeeker", "session.created", secret="s")
        ).events[0]
        with pytest.raises(AttributeError):
            event.type = "other"  # type: ignore[misc]
        assert event in {event}
        assert event.data["session_id"] == "sess_123456789"


class TestHeaders:
    def test_case_insensitive(self) -> None:
        headers = Headers({"X-Moco-Signature": "abc"})
        assert headers["x-moco-signature"] == "abc" == headers.get("X-MOCO-SIGNATURE")
        assert "x-MOCO-signature" in headers
        assert 5 not in headers  # type: ignore[comparison-overlap]
        assert headers.get("missing") is None and headers.get("missing", "d") == "d"
        assert list(headers) == ["x-moco-signature"] and len(headers) == 1

    def test_repeated_names_from_pairs(self) -> None:
        headers = Headers([("Accept", "a"), ("accept", "b"), ("Accept", "c")])
        assert headers.is_repeated("ACCEPT")
        assert headers.getall("accept") == ["a", "b", "c"]
        assert headers["accept"] == "a, b, c"
        assert headers.getall("nope") == [] and not headers.is_repeated("nope")
        assert Headers({"one": "1"}).getall("one") == ["1"]

    def test_copying_and_redacted_repr(self) -> None:
        headers = Headers(
            {
                "Authorization": "Bearer hunter2",
                "X-Moco-Signature": "abc",
                "X-Moco-Target": "Activity",
            }
        )
        assert Headers(headers) == headers
        text = repr(headers)
        assert "hunter2" not in text and "abc" not in text and "Activity" in text
