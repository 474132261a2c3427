"""QEMU's modified UTF-8: one U+FFFD per invalid sequence, C0 80 as U+0000."""

from __future__ import annotations

import pytest

from qmpdl.qjson.utf8 import decode_lenient, decode_strict, is_valid_codepoint, qemu_encode


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"plain", "plain"),
        ("é€😀".encode(), "é€😀"),
        (b"a\xc0\x80b", "a\x00b"),
        (b"ab\x00cd", "ab"),  # a C string ends at NUL
        (b"\x80", "\ufffd"),
        (b"\xff\xfe", "\ufffd\ufffd"),
        (b"\xc0\xaf", "\ufffd"),  # overlong: one sequence, one replacement
        (b"\xe0\x80\xaf", "\ufffd"),
        (b"\xed\xa0\x80", "\ufffd"),  # surrogate
        (b"\xef\xbf\xbf", "\ufffd"),  # noncharacter
        (b"\xef\xb7\x90", "\ufffd"),  # U+FDD0
        (b"\xf4\x90\x80\x80", "\ufffd"),  # beyond U+10FFFF
        (b"\xf8\x88\x80\x80\x80\x80", "\ufffd\ufffd"),  # five-byte sequence, then a stray
        (b"\xfc\x84\x80\x80\x80\x80", "\ufffd"),
        (b"\xe2\x82A", "\ufffdA"),  # truncated: stops before the non-continuation
        (b"\xe2\x82", "\ufffd"),
        (b"\xc3", "\ufffd"),
    ],
)
def test_decode_lenient(data: bytes, text: str) -> None:
    assert decode_lenient(data) == text


def test_decode_strict() -> None:
    assert decode_strict("é".encode()) == "é"
    assert decode_strict(b"a\xc0\x80") == "a\x00"
    assert decode_strict(b"\xc0\x80\xff") is None
    assert decode_strict(b"\xef\xbf\xbe") is None
    assert decode_strict(b"\xc0\xaf") is None


def test_codepoints() -> None:
    assert is_valid_codepoint(0)
    assert is_valid_codepoint(0x10FFFD)
    for cp in (-1, 0xD800, 0xDFFF, 0xFDD0, 0xFDEF, 0xFFFE, 0x1FFFF, 0x110000):
        assert not is_valid_codepoint(cp)
    assert qemu_encode("a\x00é") == b"a\xc0\x80\xc3\xa9"
