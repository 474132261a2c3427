"""C's fixed-width integers on Python's unbounded ``int``: what QEMU's arithmetic does.

QEMU computes in ``uint64_t``, ``int64_t`` and ``int``; where a result leaves that range
it wraps.  Every module that must wrap the same way uses these, so there is one spelling
of each rule.
"""

from __future__ import annotations

#: All 64 bits set: ``value & U64_MASK`` is ``value`` as a ``uint64_t``.
U64_MASK = (1 << 64) - 1
U64_MAX = U64_MASK
I64_MIN = -(1 << 63)

_U64 = 1 << 64
_U32 = 1 << 32
_I32_MIN = -(1 << 31)


def to_u64(value: int) -> int:
    """``value`` wrapped to an unsigned 64-bit integer."""
    return value & U64_MASK


def to_i64(value: int) -> int:
    """``value`` wrapped to a signed 64-bit integer (two's complement)."""
    value &= U64_MASK
    return value - _U64 if value >> 63 else value


def to_i32(value: int) -> int:
    """``value`` as a C ``int``: what an int64 becomes when QEMU passes it on to an ``int``
    parameter (the low 32 bits, two's complement), as it does with every ``cpu-index``."""
    return (value - _I32_MIN) % _U32 + _I32_MIN


def c_div(left: int, right: int) -> int:
    """C's ``/`` on int64: truncation towards zero, wrapped (``right`` is not 0)."""
    quotient = abs(left) // abs(right)
    return to_i64(quotient if (left < 0) == (right < 0) else -quotient)


def c_mod(left: int, right: int) -> int:
    """C's ``%`` on int64: the remainder takes the dividend's sign (``right`` is not 0)."""
    return to_i64(left - right * c_div(left, right))
