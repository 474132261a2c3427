"""The GLib hash-table model against the real libglib, and QDict iteration order."""

from __future__ import annotations

import ctypes
import ctypes.util
import random
import string

import pytest

from qmpdl.qapi.ghash import GStrHashTable, g_str_hash
from qmpdl.qjson.qdict import BUCKETS as QDICT_BUCKETS
from qmpdl.qjson.qdict import qdict_order, tdb_hash


class _RealGLib:
    """Just enough of libglib-2.0 through ctypes."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        lib.g_str_hash.restype = ctypes.c_uint
        lib.g_str_hash.argtypes = [ctypes.c_char_p]
        lib.g_hash_table_new.restype = ctypes.c_void_p
        lib.g_hash_table_new.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.g_hash_table_insert.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.g_hash_table_remove.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.g_hash_table_iter_init.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.g_hash_table_iter_next.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_void_p,
        ]
        lib.g_hash_table_unref.argtypes = [ctypes.c_void_p]
        lib.glib_check_version.restype = ctypes.c_char_p
        lib.glib_check_version.argtypes = [ctypes.c_uint] * 3
        self.lib = lib
        self.hash = ctypes.cast(lib.g_str_hash, ctypes.c_void_p)
        self.equal = ctypes.cast(lib.g_str_equal, ctypes.c_void_p)

    def str_hash(self, key: str) -> int:
        return int(self.lib.g_str_hash(key.encode()))

    def iteration(self, keys: list[str], removed: list[str]) -> list[str]:
        """Insert ``keys``, remove ``removed`` (in order), return the iteration order."""
        lib = self.lib
        table = lib.g_hash_table_new(self.hash, self.equal)
        buffers = {k: ctypes.create_string_buffer(k.encode()) for k in keys}
        for key in keys:
            lib.g_hash_table_insert(table, ctypes.cast(buffers[key], ctypes.c_void_p), None)
        for key in removed:
            lib.g_hash_table_remove(table, ctypes.cast(buffers[key], ctypes.c_void_p))
        iterator = (ctypes.c_byte * 64)()
        lib.g_hash_table_iter_init(iterator, table)
        found = ctypes.c_void_p()
        out: list[str] = []
        while lib.g_hash_table_iter_next(iterator, ctypes.byref(found), None):
            assert found.value is not None
            out.append(ctypes.string_at(found.value).decode())
        lib.g_hash_table_unref(table)
        return out


@pytest.fixture(scope="module")
def glib() -> _RealGLib:
    path = ctypes.util.find_library("glib-2.0")
    if path is None:
        pytest.skip("libglib-2.0 is not installed")
    real = _RealGLib(path)
    if real.lib.glib_check_version(2, 74, 0) is not None:
        pytest.skip("the model is of GLib 2.74; an older libglib is installed")
    return real


def _keys(rng: random.Random, count: int) -> list[str]:
    alphabet = string.ascii_lowercase + "-_\u00e9\u4e00"
    keys = ("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 10))) for _ in range(count))
    return list(dict.fromkeys(keys))


def test_str_hash_matches_glib(glib: _RealGLib) -> None:
    for key in ["", "a", "cpu-index", "dirty-rate", "h\u00e9llo", "\u00ff\u4e00x"]:
        assert g_str_hash(key) == glib.str_hash(key)


def test_layout_matches_glib_after_inserts_and_removals(glib: _RealGLib) -> None:
    rng = random.Random(5)
    for _ in range(2000):
        keys = _keys(rng, rng.randint(0, 90))
        removed = rng.sample(keys, rng.randint(0, len(keys)))
        table = GStrHashTable(keys)
        for key in removed:
            assert table.remove(key)
        assert list(table) == glib.iteration(keys, removed)
        assert len(table) == len(keys) - len(removed)


def test_small_tables_iterate_by_slot_not_by_insertion() -> None:
    # Two keys: iteration follows the slots (hash * 11 % 7), whatever the order of insertion.
    assert GStrHashTable(["a", "b"]).first() == GStrHashTable(["b", "a"]).first()
    assert GStrHashTable([]).first() is None
    table = GStrHashTable(["x"])
    assert not table.remove("y")
    assert table.remove("x") and table.first() is None


def test_tdb_hash_and_bucket_order() -> None:
    # Orders QEMU prints (spec 9.8, verified on 7.2).
    assert qdict_order(["return", "id"]) == ["return", "id"]
    assert qdict_order(["id", "return"]) == ["return", "id"]
    assert qdict_order(["cpu-index", "limit-rate", "current-rate"]) == [
        "limit-rate",
        "current-rate",
        "cpu-index",
    ]
    assert qdict_order(["running", "singlestep", "status"]) == ["status", "singlestep", "running"]
    assert qdict_order(["id", "dirty-rate"]) == ["dirty-rate", "id"]
    assert 0 <= tdb_hash("anything") % QDICT_BUCKETS < 512


def test_same_bucket_keys_come_newest_first() -> None:
    by_bucket: dict[int, list[str]] = {}
    for i in range(2000):
        key = f"k{i}"
        by_bucket.setdefault(tdb_hash(key) % QDICT_BUCKETS, []).append(key)
    first, second = next(keys for keys in by_bucket.values() if len(keys) >= 2)[:2]
    assert qdict_order([first, second]) == [second, first]
    assert qdict_order([second, first]) == [first, second]
