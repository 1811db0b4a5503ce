"""Read-only event data, headers and the de-duplication store."""

from __future__ import annotations

import copy
import pickle
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
            data["s"] = "changed"  # mypy allows it: __getattr__ makes unknown names Any
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


# Keys: arbitrary text, and the names a mapping, a view or any object already has.
OWN_NAMES = ("items", "keys", "values", "get", "thaw", "_raw", "__class__", "__len__")
KEYS = st.text(max_size=12) | st.sampled_from(
    [*OWN_NAMES, "__deepcopy__", "__getstate__", "session_id", "data", "class"]
)


class TestAttributeAccess:
    raw: ClassVar[dict[str, Any]] = {
        "session_id": "sess_1",
        "results": {"coordinates": {"latitude": 1.5}},
        "sketches": ["a", {"b": 1}],
        "items": "a key named like a method",
        "keys": 1,
        "_raw": "a key named like the slot",
        "__class__": "a dunder key",
        "not an identifier": 2,
        "class": "a keyword",
    }

    def test_identifier_keys_read_as_attributes(self) -> None:
        data = FrozenObject(self.raw)
        assert data.session_id == "sess_1"
        assert isinstance(data.results, FrozenObject)
        assert data.results.coordinates.latitude == 1.5
        assert isinstance(data.sketches, FrozenArray) and data.sketches[1].b == 1
        assert getattr(data, "class") == "a keyword"

    def test_the_mappings_own_methods_and_attributes_win(self) -> None:
        data = FrozenObject(self.raw)
        assert callable(data.items) and callable(data.keys) and callable(data.get)
        assert data["items"] == "a key named like a method" and data["keys"] == 1
        assert data.__class__ is FrozenObject and data["__class__"] == "a dunder key"
        assert data["_raw"] == "a key named like the slot"

    def test_missing_keys_and_dunder_names_raise_attribute_error(self) -> None:
        data = FrozenObject({"__deepcopy__": 1, "a": 1})
        with pytest.raises(AttributeError, match="no key 'missing'"):
            _ = data.missing
        with pytest.raises(AttributeError):
            _ = data.__deepcopy__  # a protocol name, never a key
        assert not hasattr(FrozenObject(), "a")

    def test_nothing_can_be_set_or_deleted(self) -> None:
        data = FrozenObject(self.raw)
        with pytest.raises(AttributeError, match="read-only"):
            data.session_id = "other"
        with pytest.raises(AttributeError, match="read-only"):
            data.new = 1
        with pytest.raises(AttributeError, match="read-only"):
            del data.session_id
        with pytest.raises(AttributeError, match="read-only"):
            data._raw = {}
        items = data.sketches
        with pytest.raises(AttributeError, match="read-only"):
            items._raw = []
        with pytest.raises(AttributeError, match="read-only"):
            del items._raw
        assert data.session_id == "sess_1"

    def test_dir_lists_the_identifier_keys(self) -> None:
        names = dir(FrozenObject(self.raw))
        assert {"session_id", "results", "sketches", "items", "get", "class"} <= set(names)
        assert "not an identifier" not in names

    def test_copy_and_pickle_keep_the_view(self) -> None:
        data = FrozenObject(self.raw)
        assert copy.deepcopy(data) == data and copy.copy(data) == data
        assert pickle.loads(pickle.dumps(data)) == data  # noqa: S301 - our own bytes
        items = data.sketches
        assert pickle.loads(pickle.dumps(items)) == items  # noqa: S301 - our own bytes
        assert copy.copy(items) == items

    def test_event_data_of_a_delivery(self) -> None:
        handler = WebhookHandler("mindpeeker", secret="s")
        event = handler.verify(
            *sample_delivery("mindpeeker", "session.completed", secret="s")
        ).events[0]
        assert event.data.session_id == "sess_123456789"
        assert event.data.results.coordinates.latitude == 40.7128

    @given(
        raw=st.dictionaries(KEYS, st.integers() | st.text(max_size=4) | st.none(), max_size=8),
        name=KEYS,
    )
    def test_any_key_reads_as_its_item_unless_the_class_has_that_name(
        self, raw: dict[str, Any], name: str
    ) -> None:
        data = FrozenObject(raw)
        if name == "_raw" or hasattr(FrozenObject, name):
            # The class's own attribute, whatever the keys are.
            assert getattr(data, name) == object.__getattribute__(data, name)
        elif name in raw and not (name.startswith("__") and name.endswith("__")):
            assert getattr(data, name) == raw[name]
        else:
            with pytest.raises(AttributeError):
                getattr(data, name)
        listed = set(dir(data))
        assert all(key in listed for key in raw if key.isidentifier() and not key.startswith("__"))


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
