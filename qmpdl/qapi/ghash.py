"""GLib's ``GHashTable`` keyed by strings, reduced to what decides iteration order.

QEMU's input visitor copies the keys of every JSON object it visits into a
``GHashTable`` (``g_str_hash``/``g_str_equal``), removes each key as the
matching member is visited, and reports the *first key an iterator returns*
as the unexpected parameter.  With two or more unexpected keys the reported
one therefore depends on where GLib placed the keys.  This module models the
table of GLib 2.74 (the version Debian 12 ships with QEMU 7.2):

* open addressing over ``size = 2**shift`` slots, ``shift >= 3``;
* home slot ``(hash * 11) % mod`` where ``mod`` is the largest prime below
  ``size`` (a fixed table), then quadratic probing (step 1, 2, 3, ...) masked
  by ``size - 1``;
* slot states *unused* (hash 0), *tombstone* (hash 1), or a real hash
  (``>= 2``; a string hashing to 0 or 1 is stored as 2);
* growth/shrink checks after every insert into an unused slot and after
  every removal; a resize rehashes in place, slot by slot, with eviction;
* iteration walks the slots from index 0 upwards.

Only the keys matter here: the values QEMU stores are all ``NULL``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from qmpdl.qjson.utf8 import qemu_encode

_MIN_SHIFT = 3
_UNUSED = 0
_TOMBSTONE = 1
_MASK32 = 0xFFFFFFFF

# Largest prime below 2**shift, indexed by shift (GLib's table).
_PRIME_MOD = (
    1,
    2,
    3,
    7,
    13,
    31,
    61,
    127,
    251,
    509,
    1021,
    2039,
    4093,
    8191,
    16381,
    32749,
    65521,
    131071,
    262139,
    524287,
    1048573,
    2097143,
    4194301,
    8388593,
    16777213,
    33554393,
    67108859,
    134217689,
    268435399,
    536870909,
    1073741789,
    2147483647,
)


def g_str_hash(key: str) -> int:
    """GLib's ``g_str_hash``: djb2 over the key's bytes read as *signed* chars.

    The bytes are the ones QEMU holds for the key (UTF-8, NUL as ``C0 80``).
    """
    h = 5381
    for byte in qemu_encode(key):
        signed = byte - 256 if byte >= 0x80 else byte
        h = (h * 33 + signed) & _MASK32
    return h


class GStrHashTable:
    """A string set laid out exactly like a GLib 2.74 ``GHashTable``."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._set_shift(_MIN_SHIFT)
        self._hashes = [_UNUSED] * self._size
        self._keys: list[str | None] = [None] * self._size
        self._nnodes = 0
        self._noccupied = 0
        for key in keys:
            self.insert(key)

    # -- geometry -------------------------------------------------------------------------

    def _set_shift(self, shift: int) -> None:
        self._size = 1 << shift
        self._mod = _PRIME_MOD[shift]
        self._mask = self._size - 1

    def _set_shift_from_size(self, size: int) -> None:
        shift = 0
        while size:
            size >>= 1
            shift += 1
        self._set_shift(max(shift, _MIN_SHIFT))

    def _home(self, hash_value: int) -> int:
        return ((hash_value * 11) & _MASK32) % self._mod

    @staticmethod
    def _hash(key: str) -> int:
        value = g_str_hash(key)
        return value if value >= 2 else 2

    # -- lookup / insert / remove -----------------------------------------------------------

    def _lookup(self, key: str, hash_value: int) -> int:
        """Slot holding ``key``, else the first tombstone seen, else the unused slot."""
        index = self._home(hash_value)
        step = 0
        first_tombstone = -1
        node_hash = self._hashes[index]
        while node_hash != _UNUSED:
            if node_hash == hash_value:
                if self._keys[index] == key:
                    return index
            elif node_hash == _TOMBSTONE and first_tombstone < 0:
                first_tombstone = index
            step += 1
            index = (index + step) & self._mask
            node_hash = self._hashes[index]
        return first_tombstone if first_tombstone >= 0 else index

    def insert(self, key: str) -> None:
        """``g_hash_table_insert(table, key, NULL)``."""
        hash_value = self._hash(key)
        index = self._lookup(key, hash_value)
        old_hash = self._hashes[index]
        if old_hash >= 2:
            return  # already present: GLib keeps the slot, nothing moves
        self._hashes[index] = hash_value
        self._keys[index] = key
        self._nnodes += 1
        if old_hash == _UNUSED:
            self._noccupied += 1
            self._maybe_resize()

    def remove(self, key: str) -> bool:
        """``g_hash_table_remove``; True when the key was present."""
        index = self._lookup(key, self._hash(key))
        if self._hashes[index] < 2:
            return False
        self._hashes[index] = _TOMBSTONE
        self._keys[index] = None
        self._nnodes -= 1
        self._maybe_resize()
        return True

    # -- resizing -----------------------------------------------------------------------

    def _maybe_resize(self) -> None:
        size = self._size
        if (size > self._nnodes * 4 and size > 1 << _MIN_SHIFT) or (
            size <= self._noccupied + self._noccupied // 16
        ):
            self._resize()

    def _resize(self) -> None:
        old_size = self._size
        self._set_shift_from_size(int(self._nnodes * 1.333))
        if self._size > old_size:
            self._hashes.extend([_UNUSED] * (self._size - old_size))
            self._keys.extend([None] * (self._size - old_size))
        placed = [False] * max(self._size, old_size)
        for i in range(old_size):
            node_hash = self._hashes[i]
            if node_hash < 2:
                self._hashes[i] = _UNUSED
                continue
            if placed[i]:
                continue
            self._hashes[i] = _UNUSED
            key = self._keys[i]
            self._keys[i] = None
            while True:
                index = self._home(node_hash)
                step = 0
                while placed[index]:
                    step += 1
                    index = (index + step) & self._mask
                placed[index] = True
                replaced_hash = self._hashes[index]
                replaced_key = self._keys[index]
                self._hashes[index] = node_hash
                self._keys[index] = key
                if replaced_hash < 2:
                    break
                node_hash, key = replaced_hash, replaced_key
        if self._size < old_size:
            del self._hashes[self._size :]
            del self._keys[self._size :]
        self._noccupied = self._nnodes

    # -- iteration ------------------------------------------------------------------------

    def __iter__(self) -> Iterator[str]:
        for hash_value, key in zip(self._hashes, self._keys, strict=True):
            if hash_value >= 2:
                assert key is not None
                yield key

    def __len__(self) -> int:
        return self._nnodes

    def first(self) -> str | None:
        """The key ``g_hash_table_iter_next`` returns first, or None when empty."""
        return next(iter(self), None)
