"""Differences from QEMU 7.2 found by the corpus and not fixed yet.

Each case here is an ``xfail(strict=True)`` in ``test_differential.py``: it fails the
suite as soon as qmpdl matches QEMU there (then remove the entry).  Deliberate
differences are not listed here but in ``intended.py``.
"""

from __future__ import annotations

KNOWN: dict[str, str] = {}
