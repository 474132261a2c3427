"""The iteration order of a QEMU QDict, which decides the key order of every JSON reply.

A QDict is a hash table with 512 buckets.  A key's bucket is ``tdb_hash(key) % 512`` (the
hash function QEMU borrowed from Samba's TDB, computed over the key's bytes); a new key is
pushed onto the front of its bucket's chain.  Iteration walks the buckets in ascending order
and each chain front to back, so keys come out sorted by bucket, and keys sharing a bucket
come out newest first.  Replacing the value of an existing key keeps its place.
"""

from __future__ import annotations

from collections.abc import Sequence

from qmpdl.qjson.utf8 import qemu_encode

__all__ = ["BUCKETS", "qdict_order", "tdb_hash"]

BUCKETS = 512
_MASK = 0xFFFFFFFF


def tdb_hash(key: str) -> int:
    """QEMU's 32-bit hash of a QDict key (over its modified-UTF-8 bytes)."""
    data = qemu_encode(key)
    value = (0x238F13AF * len(data)) & _MASK
    for i, byte in enumerate(data):
        value = (value + (byte << (i * 5 % 24))) & _MASK
    return (1103515243 * value + 12345) & _MASK


def qdict_order(keys: Sequence[str]) -> list[str]:
    """The order in which QEMU lists the keys of a QDict filled in the order ``keys``.

    Duplicate keys count once, at their first insertion (a repeated insert only replaces
    the value).
    """
    first: dict[str, int] = {}
    for index, key in enumerate(keys):
        first.setdefault(key, index)
    return sorted(first, key=lambda k: (tdb_hash(k) % BUCKETS, -first[k]))
