"""Sizes with QEMU's suffixes (``-m 256M``, ``wss=64M``)."""

from __future__ import annotations

import re

_SUFFIX = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([BKMGT]?)$", re.IGNORECASE)


def parse_size(text: str, default_suffix: str = "") -> int:
    """Bytes of ``text`` such as ``4096``, ``64M`` or ``1.5G`` (binary units)."""
    m = _SIZE.match(text.strip())
    if not m:
        raise ValueError(f"invalid size '{text}'")
    suffix = (m[2] or default_suffix).upper()
    value = float(m[1]) * _SUFFIX[suffix]
    if value != int(value):
        raise ValueError(f"invalid size '{text}' (not a whole number of bytes)")
    return int(value)
