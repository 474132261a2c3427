"""QEMU's number and size readers (qemu_strtou64, qemu_strtosz) as migration text uses them."""

from __future__ import annotations

import pytest

from qmpdl.strparse import ParseError, parse_bool, strtosz, strtou64

U64_MAX = (1 << 64) - 1


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0), ("42", 42), ("0x20", 32), ("0X20", 32), ("010", 8), ("-1", U64_MAX),
        ("+5", 5), (" 7", 7), (str(U64_MAX), U64_MAX), ("-0x1", U64_MAX),
    ],
)  # fmt: skip
def test_strtou64(text: str, value: int) -> None:
    assert strtou64(text) == value


@pytest.mark.parametrize("text", ["", " ", "0x", "1k", "7 ", "08", "abc", str(1 << 64), "1.0"])
def test_strtou64_rejects(text: str) -> None:
    with pytest.raises(ParseError):
        strtou64(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0), ("1", 1), ("1k", 1024), ("1K", 1024), ("1b", 1), ("1.5k", 1536),
        ("1.k", 1024), ("0.5M", 512 << 10), ("2.5M", 5 << 19), ("1.5e", 3 << 59),
        ("16E", None), ("15E", 15 << 60), ("0x10", 16), ("0x1B", 27), ("0x1E", 30),
        ("1.0000001k", 1024), ("0.0009765625k", 1), ("0.00048828125k", 1),
    ],
)  # fmt: skip
def test_strtosz(text: str, value: int | None) -> None:
    if value is None:
        with pytest.raises(ParseError):
            strtosz(text)
    else:
        assert strtosz(text) == value


@pytest.mark.parametrize(
    "text", ["", "k", "-1", "1.5", "1e3", "1.5e3", ".5k", "0x1k", "0x1.5", "1kk", "1 "]
)
def test_strtosz_rejects(text: str) -> None:
    with pytest.raises(ParseError):
        strtosz(text)


def test_strtosz_mib_default() -> None:
    assert strtosz("10", "M") == 10 << 20
    assert strtosz("10b", "M") == 10
    assert strtosz("0.5", "M") == 512 << 10


def test_hex_with_suffix_before_8_0() -> None:
    warnings: list[str] = []
    assert strtosz("0x1k", hex_suffix_warning=warnings.append) == 1024
    assert warnings == ["Using a multiplier suffix on hex numbers is deprecated: 0x1k"]
    assert strtosz("0x10", hex_suffix_warning=warnings.append) == 16
    assert len(warnings) == 1
    with pytest.raises(ParseError):
        strtosz("0x1.5k", hex_suffix_warning=warnings.append)


def test_parse_bool() -> None:
    for text in ("on", "yes", "true", "y"):
        assert parse_bool(text) is True
    for text in ("off", "no", "false", "n"):
        assert parse_bool(text) is False
    for text in ("1", "0", "On", "TRUE", ""):
        with pytest.raises(ParseError):
            parse_bool(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1k", 1024), (".5k", 512), (" .5k", 512), ("+.5k", 512), ("1.k", 1024),
        ("0.5M", 512 << 10), ("1.5e", 3 << 59), ("15E", 15 << 60), ("0x10", 16),
        ("1.99999999999999999999", 2), ("1.99999999999999999999k", 2048),
        ("0.0000000000000000000001k", 0), ("1.0000001k", 1024),
    ],
)  # fmt: skip
def test_strtosz_revised(text: str, value: int | None) -> None:
    """QEMU 8.1's qemu_strtosz (parse_uint, fractions without digits before the point,
    any non-zero fraction counts, a fraction rounding to 1 carries)."""
    if value is None:
        with pytest.raises(ParseError) as info:
            strtosz(text, revised=True)
        assert not info.value.out_of_range
    else:
        assert strtosz(text, revised=True) == value


@pytest.mark.parametrize(
    ("text", "out_of_range"),
    [
        ("-1", True), ("-0", True), ("-1k", False), ("-.5", True), ("-.5k", False),
        ("16E", True), ("16Ex", False), ("99999999999999999999", True),
        ("99999999999999999999k", False), ("1.5e3", False), (".k", False), ("0x1k", False),
        ("1 ", False), ("", False), ("k", False),
    ],
)  # fmt: skip
def test_strtosz_revised_errors(text: str, out_of_range: bool) -> None:
    with pytest.raises(ParseError) as info:
        strtosz(text, revised=True)
    assert info.value.out_of_range is out_of_range


@pytest.mark.parametrize(
    ("text", "out_of_range"),
    [("-1", False), ("16E", True), ("99999999999999999999", True), ("16Ex", False)],
)
def test_strtosz_range_errors_before_8_1(text: str, out_of_range: bool) -> None:
    with pytest.raises(ParseError) as info:
        strtosz(text)
    assert info.value.out_of_range is out_of_range
