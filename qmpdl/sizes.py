"""Sizes with QEMU's suffixes (``-m 256M``, ``wss=64M``), read as QEMU reads them.

There is one reader of sizes, :func:`qmpdl.strparse.strtosz` (``qemu_strtosz``); this
is its form for options: a :class:`ValueError` for what it rejects.
"""

from __future__ import annotations

from qmpdl.strparse import ParseError, strtosz


def parse_size(text: str, default_suffix: str = "") -> int:
    """Bytes of ``text`` such as ``4096``, ``64M``, ``1.5G`` or ``0x1000`` (binary units;
    ``default_suffix`` applies to a number without one)."""
    try:
        return strtosz(text, default_suffix or "B")
    except ParseError:
        raise ValueError(f"invalid size '{text}'") from None
