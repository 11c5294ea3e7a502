"""Safe JSON of anything: never raises, always valid JSON, truncation marked."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime, timezone
from enum import Enum
from uuid import UUID

import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage

from lc_observe.pipeline.serialize import TRUNCATED_KEY, Limits, dumps, to_jsonable


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    def __str__(self) -> str:
        raise RuntimeError("no str either")


@dataclasses.dataclass
class Point:
    x: int
    y: float


def test_messages_documents_and_models_are_readable() -> None:
    data = to_jsonable(
        {"messages": [HumanMessage("hi"), AIMessage("yo")], "docs": [Document(page_content="d")]}
    )
    assert data["messages"][0]["content"] == "hi" and data["messages"][0]["type"] == "human"
    assert data["messages"][1]["type"] == "ai"
    assert data["docs"][0]["page_content"] == "d"


def test_exotic_values() -> None:
    cyclic: dict = {"a": 1}
    cyclic["self"] = cyclic
    listy: list = [1]
    listy.append(listy)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    value = {
        "cyclic": cyclic,
        "listy": listy,
        "bad": BadRepr(),
        "nan": math.nan,
        "inf": -math.inf,
        "bytes": b"\x00\x01",
        "set": {3, 1, 2},
        "point": Point(1, 2.5),
        "when": when,
        "uuid": UUID(int=1),
        (1, 2): "tuple key",
        7: "int key",
        "surrogate": "a\udc80b",
    }
    text = dumps(value)
    out = json.loads(text)  # valid JSON
    text.encode("utf-8")  # storable as UTF-8
    assert out["cyclic"]["self"] == "…[cycle]"
    assert out["listy"][1] == "…[cycle]"
    assert out["bad"] == "<unrepresentable BadRepr>"
    assert (out["nan"], out["inf"]) == ("NaN", "-Infinity")
    assert out["bytes"] == {"__bytes__": 2, "base64": "AAE="}
    assert out["set"] == [1, 2, 3]
    assert out["point"] == {"x": 1, "y": 2.5}
    assert out["when"] == "2026-01-02T03:04:05+00:00"
    assert out["uuid"] == str(UUID(int=1))
    assert out["(1, 2)"] == "tuple key" and out["7"] == "int key"
    assert out["surrogate"] == "a\\udc80b"


def test_shared_but_not_cyclic_objects_are_kept_twice() -> None:
    shared = {"k": "v"}
    assert to_jsonable([shared, shared]) == [{"k": "v"}, {"k": "v"}]


def test_truncation_is_marked() -> None:
    limits = Limits(max_string_chars=10, max_items=3, max_depth=4, max_field_chars=1000)
    out = to_jsonable({"s": "x" * 25, "l": list(range(10)), "deep": [[[[[1]]]]]}, limits)
    assert out["s"] == "x" * 10 + "…[truncated 15 chars]"
    assert out["l"] == [0, 1, 2, "…[truncated 7 items]"]
    assert out["deep"] == [[["…[max depth]"]]]
    big = json.loads(dumps(["y" * 9] * 300, Limits(max_field_chars=1000)))
    assert big[TRUNCATED_KEY] is True and big["chars"] > 1000 and len(big["preview"]) == 500


def test_many_keys_truncated() -> None:
    out = to_jsonable({str(i): i for i in range(5)}, Limits(max_items=2))
    assert list(out) == ["0", "1", "…[truncated 3 items]"]


def test_limits_validate() -> None:
    with pytest.raises(ValueError, match="max_items must be a positive int"):
        Limits(max_items=0)


class Color(Enum):
    RED = "red"


class Mode(str, Enum):
    FAST = "fast"


@pytest.mark.parametrize(
    "value",
    [
        {"messages": [HumanMessage("hi", id="1"), AIMessage("yo", response_metadata={"a": 1})]},
        [Document(page_content="d", metadata={"source": "s"}), None, True, 1.5, -(2**63)],
        {"when": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc), "id": UUID(int=7)},
        {
            "point": Point(1, 2.5),
            "color": Color.RED,
            "mode": Mode.FAST,
            "tuple": (1, "a"),
            "nested": {"x": [[]]},
        },
        {"text": 'ünïcödé ✓ \u2028 "quoted" \\ back', "empty": {}, "none": None},
    ],
    ids=["messages", "documents", "datetime-uuid", "dataclass-enum", "text"],
)
def test_fast_path_writes_what_the_careful_conversion_writes(value: object) -> None:
    # dumps() encodes plain values in one C pass (orjson when installed); the result must be
    # the careful conversion's value exactly, compact, with nothing lost or reordered.
    text = dumps(value)
    assert json.loads(text) == to_jsonable(value)
    assert text == json.dumps(to_jsonable(value), ensure_ascii=False, separators=(",", ":"))


def test_nan_beside_plain_values_is_kept() -> None:
    # orjson would write NaN as null: the fast path must hand such values to the careful one.
    out = json.loads(dumps({"scores": [0.5, math.nan, math.inf], "m": HumanMessage("hi")}))
    assert out["scores"] == [0.5, "NaN", "Infinity"]
    assert out["m"]["content"] == "hi"
