"""The encoder: QEMU's escapes, number formats, key order and pretty layout."""

from __future__ import annotations

import enum
import math
from collections import OrderedDict

import pytest

from qmpdl.jsontypes import JsonValue
from qmpdl.qjson import encode_message, to_json


@pytest.mark.parametrize(
    ("text", "json"),
    [
        ("", '""'),
        ("plain /slash/ 'quote'", "\"plain /slash/ 'quote'\""),
        ('"\\', '"\\"\\\\"'),
        ("\b\f\n\r\t", '"\\b\\f\\n\\r\\t"'),
        ("\x00\x01\x1f", '"\\u0000\\u0001\\u001F"'),
        ("\x7f\x80\xe9", '"\\u007F\\u0080\\u00E9"'),
        ("\u20ac\ufffd", '"\\u20AC\\uFFFD"'),
        ("\U0001f600\U0010fffd", '"\\uD83D\\uDE00\\uDBFF\\uDFFD"'),
        # Characters QEMU cannot hold come out as the replacement character.
        ("\ud800\udc00", '"\\uFFFD\\uFFFD"'),
        ("\ufdd0\uffff\U0001fffe", '"\\uFFFD\\uFFFD\\uFFFD"'),
    ],
)
def test_strings(text: str, json: str) -> None:
    assert to_json(text) == json
    assert to_json({text: text}) == "{" + json + ": " + json + "}"


@pytest.mark.parametrize(
    ("value", "json"),
    [
        (0, "0"),
        (-9223372036854775808, "-9223372036854775808"),
        (18446744073709551615, "18446744073709551615"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (1.0, "1"),
        (0.1, "0.10000000000000001"),
        (-0.0, "-0"),
        (1e300, "1.0000000000000001e+300"),
        (5e-324, "4.9406564584124654e-324"),
        (1e22, "1e+22"),
        (123456789.0, "123456789"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (math.nan, "nan"),
        (-math.nan, "-nan"),
    ],
)
def test_scalars(value: JsonValue, json: str) -> None:
    assert to_json(value) == json


def test_compact_containers_and_key_order() -> None:
    assert to_json({}) == "{}"
    assert to_json([]) == "[]"
    assert to_json([1, [2, {}], "x"]) == '[1, [2, {}], "x"]'
    # QDict order, not insertion order.
    assert to_json({"id": 1, "return": {}}) == '{"return": {}, "id": 1}'
    assert to_json({"error": {"class": "C", "desc": "D"}, "id": 1}) == (
        '{"id": 1, "error": {"class": "C", "desc": "D"}}'
    )
    # Keys sharing a bucket: the most recently inserted first.
    assert to_json({"a": 1, "rb": 2, "rr": 3}) == '{"rr": 3, "rb": 2, "a": 1}'
    assert to_json({"rr": 1, "rb": 2, "a": 3}) == '{"a": 3, "rb": 2, "rr": 1}'


def test_pretty() -> None:
    value: JsonValue = {"return": {}, "id": [1, {"a": []}, "s"]}
    assert to_json(value, pretty=True) == (
        "{\n"
        '    "return": {\n'
        "    },\n"
        '    "id": [\n'
        "        1,\n"
        "        {\n"
        '            "a": [\n'
        "            ]\n"
        "        },\n"
        '        "s"\n'
        "    ]\n"
        "}"
    )
    assert to_json({}, pretty=True) == "{\n}"
    assert to_json("x", pretty=True) == '"x"'


def test_encode_message_line_ends() -> None:
    assert encode_message({"return": {}}) == b'{"return": {}}\r\n'
    assert encode_message({"a": "\n"}) == b'{"a": "\\n"}\r\n'
    assert encode_message({"a": []}, pretty=True) == b'{\r\n    "a": [\r\n    ]\r\n}\r\n'


def test_deep_nesting_beyond_python_recursion() -> None:
    deep: JsonValue = []
    for _ in range(3000):
        deep = [deep]
    assert to_json(deep) == "[" * 3001 + "]" * 3001
    pretty = to_json(deep, pretty=True)
    assert pretty.count("\n") == 2 * 3001 - 1


class Colour(enum.IntEnum):
    RED = 1


class Name(enum.StrEnum):
    X = "x"


def test_subclasses_are_written_as_their_base_type() -> None:
    value = OrderedDict([("b", Colour.RED), ("a", (Name.X, 1.5))])
    assert to_json(value) == '{"a": ["x", 1.5], "b": 1}'  # type: ignore[arg-type]
    assert to_json(value, pretty=True) == (  # type: ignore[arg-type]
        '{\n    "a": [\n        "x",\n        1.5\n    ],\n    "b": 1\n}'
    )
    with pytest.raises(TypeError):
        to_json({"a": object()})  # type: ignore[dict-item]
