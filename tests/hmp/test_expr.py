"""The monitor's integer expressions (arguments of type ``l``)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qmpdl.cint import c_div, c_mod, to_i64
from qmpdl.hmp.cchar import skip_space
from qmpdl.hmp.expr import ExprError, evaluate

I64_MIN = -(1 << 63)


def value(text: str) -> int:
    return evaluate(text, 0)[0]


def error(text: str) -> str:
    with pytest.raises(ExprError) as info:
        evaluate(text, 0)
    return info.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("42", 42),
        ("  42  ", 42),
        ("0x10", 16),
        ("0X1f", 31),
        ("010", 8),
        ("100 -1", 99),  # one expression: whitespace does not end it
        ("-7 / 2", -3),  # C truncates towards zero
        ("-7 % 2", -1),  # the remainder has the dividend's sign
        ("7 % -2", 1),
        ("2 + 3 * 4", 14),
        ("1 + 6 & 3", 3),  # & | ^ bind tighter than + -
        ("8 - 2 | 1", 5),
        ("~0 & 0xff | 0x100 ^ 1", 510),
        ("'a' - 2 * 3", 91),
        ("'''", 39),
        ("' '", 32),
        ("(((1)))", 1),
        ("- - 5", 5),
        ("-(1+2)*3", -9),
        ("+~-1", 0),
        ("18446744073709551615", -1),  # strtoull's maximum, seen as int64
        ("9223372036854775808", I64_MIN),
        ("9223372036854775807 + 1", I64_MIN),
        ("0x8000000000000000 * 2", 0),
    ],
)
def test_values(text: str, expected: int) -> None:
    assert value(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "unexpected end of expression"),
        ("-", "unexpected end of expression"),
        ("1 +", "unexpected end of expression"),
        ("abc", "invalid char 'a' in expression"),
        ("1 * x", "invalid char 'x' in expression"),
        ("é", "invalid char '\ufffd' in expression"),
        ("\x00", "invalid char '\ufffd' in expression"),
        ("(1", "')' expected"),
        ("(1 2)", "')' expected"),
        ("1/0", "division by zero"),
        ("1%0", "division by zero"),
        ("(1/0", "division by zero"),  # evaluated before the ')' is looked for
        ("1/0 +", "division by zero"),
        ("2 * (3 / (1 - 1))", "division by zero"),
        ("'", "character constant expected"),
        ("'a", "missing terminating ' character"),
        ("'ab'", "missing terminating ' character"),
        ("'é'", "missing terminating ' character"),  # two bytes in QEMU
        ("$eax", "unknown register"),
        ("$", "unknown register"),
        ("99999999999999999999", "number too large"),
        ("18446744073709551616", "number too large"),
    ],
)
def test_errors(text: str, message: str) -> None:
    assert error(text) == message


def test_end_position_skips_trailing_blanks() -> None:
    assert evaluate("  12  34", 0) == (12, 6)
    assert evaluate("08", 0) == (0, 1)  # octal: the 8 is left over
    assert evaluate("0x", 0) == (0, 1)  # no hex digit: the number is the 0
    assert evaluate("0xg", 0) == (0, 1)
    assert evaluate("5)", 0) == (5, 1)
    assert evaluate("1 2", 0) == (1, 2)


def test_registers_are_looked_up_by_name() -> None:
    seen: list[str] = []

    def registers(name: str) -> int | None:
        seen.append(name)
        return {"eax": 5, "pc": -1}.get(name)

    assert evaluate("$eax + $pc * 2", 0, registers)[0] == 3
    assert evaluate("$eax.x_1 ", 0, lambda name: 7)[0] == 7
    with pytest.raises(ExprError, match="unknown register"):
        evaluate("$ebx", 0, registers)
    assert seen == ["eax", "pc", "ebx"]


def test_register_values_wrap_to_int64() -> None:
    assert evaluate("$r", 0, lambda name: 1 << 63)[0] == I64_MIN


def test_deep_nesting_does_not_recurse() -> None:
    depth = 20_000
    assert value("(" * depth + "7" + ")" * depth) == 7
    assert value("-" * (depth + 1) + "7") == -7
    assert error("(" * depth + "7") == "')' expected"


def test_division_of_the_minimum_wraps() -> None:
    # QEMU itself would trap here (x86 idiv overflow); we give the wrapped result.
    assert value(f"{I64_MIN} / -1") == I64_MIN
    assert value(f"({I64_MIN}) % -1") == 0


# --- a straightforward recursive reference, to check the iterative evaluator ---------------


def _combine(op: str, left: int, right: int) -> int:
    """One binary operation of the reference, with C's int64 semantics."""
    if op == "+":
        return to_i64(left + right)
    if op == "-":
        return to_i64(left - right)
    if op == "*":
        return to_i64(left * right)
    if op == "/":
        return c_div(left, right)
    if op == "%":
        return c_mod(left, right)
    return {"&": left & right, "|": left | right, "^": left ^ right}[op]


class _Reference:
    """Recursive descent over the same grammar, written for clarity, not for depth."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = skip_space(text, 0)

    def cur(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def advance(self) -> None:
        if self.i < len(self.s):
            self.i = skip_space(self.s, self.i + 1)

    def binary(self, level: int) -> int:
        ops = {1: "+-", 2: "&|^", 3: "*/%"}[level]
        left = self.unary() if level == 3 else self.binary(level + 1)
        while self.cur() and self.cur() in ops:
            op = self.cur()
            self.advance()
            right = self.unary() if level == 3 else self.binary(level + 1)
            if op in "/%" and right == 0:
                raise ExprError("division by zero")
            left = _combine(op, left, right)
        return left

    def unary(self) -> int:
        ch = self.cur()
        if ch in ("+", "-", "~"):
            self.advance()
            inner = self.unary()
            return to_i64({"+": inner, "-": -inner, "~": ~inner}[ch])
        if ch == "(":
            self.advance()
            inner = self.binary(1)
            if self.cur() != ")":
                raise ExprError("')' expected")
            self.advance()
            return inner
        return self.primary()

    def primary(self) -> int:
        ch = self.cur()
        if ch == "'":
            if self.i + 1 >= len(self.s):
                raise ExprError("character constant expected")
            if self.s[self.i + 2 : self.i + 3] != "'":
                raise ExprError("missing terminating ' character")
            code = ord(self.s[self.i + 1])
            self.i += 2
            self.advance()
            return code
        if not ch:
            raise ExprError("unexpected end of expression")
        match = re.match(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*", self.s[self.i :])
        if match is None:
            raise ExprError(f"invalid char '{ch}' in expression")
        number = (
            int(match[0], 0)
            if match[0][1:2] in ("x", "X")
            else int(match[0], 8 if match[0][0] == "0" else 10)
        )
        if number >= 1 << 64:
            raise ExprError("number too large")
        self.i = skip_space(self.s, self.i + len(match[0]))
        return to_i64(number)


def _reference(text: str) -> tuple[int, int] | str:
    ref = _Reference(text)
    try:
        return ref.binary(1), ref.i
    except ExprError as err:
        return err.message


def _ours(text: str) -> tuple[int, int] | str:
    try:
        return evaluate(text, 0)
    except ExprError as err:
        return err.message


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789xX+-*/%&|^~() '", max_size=14))
def test_matches_recursive_reference(text: str) -> None:
    assert _ours(text) == _reference(text)
