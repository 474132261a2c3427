"""QEMU's "modified UTF-8": how it decodes bytes when parsing and when printing JSON.

QEMU judges every multi-byte sequence with one decoder that is stricter than standard UTF-8
in one way and looser in another:

* it rejects the Unicode noncharacters (U+FDD0..U+FDEF and every code point ending in
  FFFE or FFFF), surrogates, code points above U+10FFFF, overlong forms, the bytes 0xFE and
  0xFF, stray continuation bytes and truncated sequences;
* it accepts the overlong pair ``C0 80`` as U+0000 (that is how a QString stores ``\\u0000``,
  since its C string cannot hold a real NUL byte).

A sequence runs from its lead byte over as many continuation bytes as the lead announces
(up to six: a lead like ``F8`` or ``FC`` is taken at its word), stopping early at the first
byte that is not a continuation.  Whatever was taken counts as one character: when it is
invalid, the JSON writer prints exactly one U+FFFD for it, and the parser reports
``invalid UTF-8 sequence in string``.  A lone continuation byte, 0xFE or 0xFF is a sequence
of its own.
"""

from __future__ import annotations

import functools
import re

__all__ = ["decode_lenient", "decode_strict", "is_valid_codepoint", "qemu_encode"]

#: Noncharacters: U+FDD0..U+FDEF and U+xFFFE/U+xFFFF in all seventeen planes.
_NONCHAR_CLASS = "\ufdd0-\ufdef" + "".join(
    f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17)
)


@functools.cache
def _classes() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The noncharacters, and what QEMU can never hold in a string (noncharacters and
    surrogates): compiled when a string that is not ASCII first needs them."""
    return re.compile(f"[{_NONCHAR_CLASS}]"), re.compile(f"[{_NONCHAR_CLASS}\ud800-\udfff]")


def has_noncharacter(text: str) -> bool:
    return not text.isascii() and _classes()[0].search(text) is not None


def unrepresentable(ch: str) -> bool:
    """True for a character QEMU can never hold in a string."""
    return not ch.isascii() and _classes()[1].match(ch) is not None


_MIN_FOR_LENGTH = (0, 0, 0x80, 0x800, 0x10000, 0x200000, 0x4000000)


def is_valid_codepoint(cp: int) -> bool:
    """True for a scalar value QEMU will encode: in range, no surrogate, no noncharacter."""
    if cp < 0 or cp > 0x10FFFF:
        return False
    if 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE:
        return False
    return not 0xD800 <= cp <= 0xDFFF


def _next_codepoint(data: bytes, i: int) -> tuple[int, int]:
    """Decode the sequence at ``data[i]``: ``(code point or -1, index after it)``."""
    lead = data[i]
    i += 1
    if lead < 0x80:
        return lead, i
    if lead >= 0xFE or not lead & 0x40:
        return -1, i
    length = 0
    mask = 0x80
    while lead & mask:
        length += 1
        mask >>= 1
    cp = lead & (mask - 1)
    end = len(data)
    for _ in range(length - 1):
        if i >= end or data[i] & 0xC0 != 0x80:
            return -1, i
        cp = cp << 6 | data[i] & 0x3F
        i += 1
    if cp > 0x10FFFF or 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE:
        return -1, i
    if 0xD800 <= cp <= 0xDFFF:
        return -1, i
    if cp < _MIN_FOR_LENGTH[length] and not (cp == 0 and length == 2):
        return -1, i
    return cp, i


def decode_lenient(data: bytes) -> str:
    """What QEMU's JSON writer makes of the C string ``data``, as a Python ``str``.

    The string ends at the first NUL byte (it is a C string).  Every invalid sequence
    becomes one U+FFFD and ``C0 80`` becomes U+0000, so that encoding the result with
    :func:`qmpdl.qjson.to_json` yields QEMU's bytes.
    """
    nul = data.find(0)
    if nul >= 0:
        data = data[:nul]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if not has_noncharacter(text):
            return text
    out: list[str] = []
    i = 0
    end = len(data)
    while i < end:
        cp, i = _next_codepoint(data, i)
        out.append("\ufffd" if cp < 0 else chr(cp))
    return "".join(out)


def decode_strict(data: bytes) -> str | None:
    """Decode unescaped string content the way QEMU's parser does; ``None`` if it rejects it.

    ``data`` holds no NUL byte (the lexer never lets one into a string token).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        if b"\xc0\x80" not in data:
            return None
        try:
            text = "\x00".join(part.decode("utf-8") for part in data.split(b"\xc0\x80"))
        except UnicodeDecodeError:
            return None
    if has_noncharacter(text):
        return None
    return text


def qemu_encode(text: str) -> bytes:
    """The bytes QEMU holds for ``text``: UTF-8, with U+0000 as ``C0 80``."""
    data = text.encode("utf-8", "surrogatepass")
    if b"\x00" in data:
        data = data.replace(b"\x00", b"\xc0\x80")
    return data
