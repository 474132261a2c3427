"""Differences from QEMU found by the corpus and not fixed yet, per QEMU version.

Each case here is an ``xfail(strict=True)`` in ``test_differential.py`` for that
version: it fails the suite as soon as qmpdl matches QEMU there (then remove the entry).
Deliberate differences are not listed here but in ``intended.py``.
"""

from __future__ import annotations

KNOWN: dict[str, dict[str, str]] = {
    "7.2": {},
    "10.0": {},
}
