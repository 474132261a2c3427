"""QDict iteration order: tdb_hash buckets, newest first within a bucket."""

from __future__ import annotations

import pytest

from qmpdl.qjson import qdict_order, tdb_hash
from qmpdl.qjson.qdict import BUCKETS


def test_tdb_hash_is_32_bit_and_deterministic() -> None:
    for key in ["", "a", "id", "execute", "x" * 1000, "\u00e9", "\x00"]:
        h = tdb_hash(key)
        assert 0 <= h < 1 << 32
        assert h == tdb_hash(key)
    assert tdb_hash("") == 12345  # no bytes: 1103515243 * 0 + 12345
    # U+0000 is held as C0 80, so it hashes like those two bytes.
    assert tdb_hash("\x00") != tdb_hash("")


@pytest.mark.parametrize(
    ("inserted", "listed"),
    [
        # Orders observed on the wire from QEMU 7.2 (spec section 9.8), with the order
        # QEMU inserts the keys in (reply construction, or schema order).
        (["return", "id"], ["return", "id"]),
        (["error", "id"], ["id", "error"]),
        (["class", "desc"], ["class", "desc"]),
        (["version", "capabilities"], ["version", "capabilities"]),
        (["event", "timestamp", "data"], ["timestamp", "event", "data"]),
        (["cpu-index", "limit-rate", "current-rate"], ["limit-rate", "current-rate", "cpu-index"]),
        (["id", "dirty-rate"], ["dirty-rate", "id"]),
        (["running", "singlestep", "status"], ["status", "singlestep", "running"]),
        (["capability", "state"], ["state", "capability"]),
        (["major", "minor", "micro"], ["micro", "minor", "major"]),
        (["qemu", "package"], ["qemu", "package"]),
    ],
)
def test_observed_orders(inserted: list[str], listed: list[str]) -> None:
    assert qdict_order(inserted) == listed


def test_same_bucket_newest_first() -> None:
    keys = ["a", "rb", "rr", "cea"]
    assert len({tdb_hash(k) % BUCKETS for k in keys}) == 1
    assert qdict_order(keys) == ["cea", "rr", "rb", "a"]
    assert qdict_order(["rr", "a", "cea", "rb"]) == ["rb", "cea", "a", "rr"]


def test_duplicates_keep_their_first_place() -> None:
    assert qdict_order(["rb", "a", "rb"]) == ["a", "rb"]
