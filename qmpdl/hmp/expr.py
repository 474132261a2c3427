"""The monitor's integer expression language (arguments of type ``l``).

Grammar, loosest binding first, every binary operator left-associative::

    sum     := logic (("+" | "-") logic)*
    logic   := product (("&" | "|" | "^") product)*
    product := unary (("*" | "/" | "%") unary)*
    unary   := ("+" | "-" | "~") unary | "(" sum ")" | "'" CHAR "'" | "$" NAME | NUMBER

Numbers follow C ``strtoull`` with base 0 (``0x`` hex, leading ``0`` octal, else decimal)
and are read up to the first character that cannot continue them, so ``08`` is the number
0 followed by ``8``.  Whitespace after every token is skipped, which is why ``100 -1`` is
the single expression 99.  Arithmetic wraps at 64 bits like QEMU's ``int64_t``.

The evaluator is iterative (an explicit operand/operator stack), so deep nesting cannot
exhaust Python's recursion limit.  It reports the same first error QEMU would: every
division is carried out as soon as its right operand is complete, exactly when QEMU's
recursive descent does it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qmpdl.cint import U64_MAX, c_div, c_mod, to_i64
from qmpdl.errors import MessageError
from qmpdl.hmp.cchar import printed_char, single_byte, skip_space

#: Looks up a ``$name`` register of the monitor's current CPU; ``None`` if there is none.
RegisterLookup = Callable[[str], int | None]

_BINARY_LEVEL = {"+": 1, "-": 1, "&": 2, "|": 2, "^": 2, "*": 3, "/": 3, "%": 3}
_UNARY = frozenset("+-~")
_REGISTER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")
_REGISTER_NAME_MAX = 127
_HEX = frozenset("0123456789abcdefABCDEF")
_OCT = frozenset("01234567")
_DEC = frozenset("0123456789")


class ExprError(MessageError):
    """An expression QEMU refuses; ``message`` is its text without the newline."""


@dataclass
class _Open:
    """An opening parenthesis waiting for its ``)``."""


@dataclass
class _Unary:
    """A prefix operator waiting for its operand."""

    op: str


@dataclass
class _Binary:
    """A binary operator with its left operand, waiting for the right one."""

    op: str
    level: int
    left: int


_Pending = _Open | _Unary | _Binary


def _apply(op: str, left: int, right: int) -> int:
    if op in "/%" and right == 0:
        raise ExprError("division by zero")
    match op:
        case "+":
            return to_i64(left + right)
        case "-":
            return to_i64(left - right)
        case "*":
            return to_i64(left * right)
        case "/":
            return c_div(left, right)
        case "%":
            return c_mod(left, right)
        case "&":
            return left & right
        case "|":
            return left | right
        case _:
            return left ^ right


def _strtoull(text: str, pos: int) -> tuple[int, int]:
    """C ``strtoull(text + pos, &end, 0)``: (value, end); ``end == pos`` if no digits."""
    digits = _DEC
    start = pos
    if text.startswith("0", pos):
        if text[pos + 1 : pos + 2] in ("x", "X") and text[pos + 2 : pos + 3] in _HEX:
            digits = _HEX
            start = pos + 2
        else:
            digits = _OCT
    end = start
    while end < len(text) and text[end] in digits:
        end += 1
    if end == start:
        return 0, pos
    base = 16 if digits is _HEX else 8 if digits is _OCT else 10
    return int(text[start:end], base), end


class _Evaluator:
    """One evaluation over ``text`` starting at ``pos``."""

    def __init__(self, text: str, pos: int, registers: RegisterLookup | None) -> None:
        self.text = text
        self.pos = pos
        self.registers = registers

    def _char(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _next(self) -> None:
        """Step over the current character and the whitespace after it."""
        if self.pos < len(self.text):
            self.pos = skip_space(self.text, self.pos + 1)

    def _primary(self) -> int:
        """A character constant, register or number at the current position."""
        ch = self._char()
        if ch == "'":
            self.pos += 1
            ch = self._char()
            if not ch:
                raise ExprError("character constant expected")
            self.pos += 1
            # A multi-byte character is followed by its continuation byte, never by "'".
            if not single_byte(ch) or self._char() != "'":
                raise ExprError("missing terminating ' character")
            self._next()
            return ord(ch)
        if ch == "$":
            self.pos += 1
            start = self.pos
            while self.pos < len(self.text) and self.text[self.pos] in _REGISTER_CHARS:
                self.pos += 1
            name = self.text[start : self.pos][:_REGISTER_NAME_MAX]
            self.pos = skip_space(self.text, self.pos)
            value = self.registers(name) if self.registers is not None else None
            if value is None:
                raise ExprError("unknown register")
            return to_i64(value)
        if not ch:
            raise ExprError("unexpected end of expression")
        value, end = _strtoull(self.text, self.pos)
        if value > U64_MAX:
            raise ExprError("number too large")
        if end == self.pos:
            raise ExprError(f"invalid char '{printed_char(ch)}' in expression")
        self.pos = skip_space(self.text, end)
        return to_i64(value)

    def run(self) -> int:
        stack: list[_Pending] = []
        while True:
            # An operand: prefix operators and parentheses, then a primary.
            ch = self._char()
            while ch in _UNARY or ch == "(":
                stack.append(_Open() if ch == "(" else _Unary(ch))
                self._next()
                ch = self._char()
            value = self._primary()
            while True:
                while stack and isinstance(stack[-1], _Unary):
                    op = stack.pop()
                    assert isinstance(op, _Unary)
                    value = to_i64(-value if op.op == "-" else ~value if op.op == "~" else value)
                op_char = self._char()
                level = _BINARY_LEVEL.get(op_char, 0) if op_char else 0
                # Finish every pending operator that binds at least as tightly.
                while stack and isinstance(stack[-1], _Binary) and stack[-1].level >= level:
                    pending = stack.pop()
                    assert isinstance(pending, _Binary)
                    value = _apply(pending.op, pending.left, value)
                if level:
                    stack.append(_Binary(op_char, level, value))
                    self._next()
                    break
                if not stack:
                    return value
                # Only an opening parenthesis can be left on top here.
                if op_char != ")":
                    raise ExprError("')' expected")
                stack.pop()
                self._next()


def evaluate(text: str, pos: int, registers: RegisterLookup | None = None) -> tuple[int, int]:
    """Evaluate the expression at ``text[pos:]`` (leading whitespace allowed).

    Returns the int64 value and the index just past the expression and the whitespace after
    it.  Raises :class:`ExprError` with QEMU's text when the expression is invalid.
    """
    evaluator = _Evaluator(text, skip_space(text, pos), registers)
    value = evaluator.run()
    return value, evaluator.pos
