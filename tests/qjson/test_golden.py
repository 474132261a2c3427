"""The golden corpus: QEMU 7.2's recorded replies, reproduced by our parser and encoder
(QEMU 10.0 answers every case alike: the live tests run against both).

``golden.json`` is recorded from real QEMU by ``python -m tests.qjson.record_golden``.
Offline tests feed each case to :class:`JsonStreamer` (whole, byte by byte, in random
chunks, with and without the fast path) and model the QMP replies with
:mod:`tests.qjson.qmp_model`.  The ``qemu``-marked tests check that the recordings still
match the live QEMU.  The 64 MiB cases take minutes in QEMU; they only run live with
``QMPDL_QJSON_HUGE=1``.
"""

from __future__ import annotations

import base64
import os
import random
from collections.abc import Iterator
from typing import Any

import pytest

from qmpdl.tools.qemu import ORACLES
from tests.conftest import need_qemu
from tests.qjson.golden_cases import CASES, SENTINEL, Case
from tests.qjson.oracle import Oracle, decode_input, load_golden, oracle, reply_matches
from tests.qjson.qmp_model import replies

GOLDEN: dict[str, Any] = load_golden()
ENTRIES: dict[str, dict[str, Any]] = {entry["name"]: entry for entry in GOLDEN["cases"]}
CASES_BY_NAME = {case.name: case for case in CASES}


def _params(*kinds: str, slow: tuple[str, ...] = ("slow", "huge")) -> list[Any]:
    return [
        pytest.param(entry, id=name, marks=[pytest.mark.slow] if entry["kind"] in slow else [])
        for name, entry in ENTRIES.items()
        if entry["kind"] in kinds
    ]


def _check(entry: dict[str, Any], got: list[bytes]) -> None:
    want = entry["replies"]
    for index, (stored, message) in enumerate(zip(want, got, strict=False)):
        assert reply_matches(stored, message), (
            f"reply {index}: want {stored if isinstance(stored, str) else stored['head']!r}, "
            f"got {message[:300]!r}"
        )
    assert len(got) == len(want), f"{len(want)} replies recorded, {len(got)} produced"


def test_golden_was_recorded_from_qemu_7_2() -> None:
    assert GOLDEN["qemu"].startswith("QEMU emulator version 7.2")


def test_golden_covers_every_case_with_its_current_input() -> None:
    """Editing a case without re-recording it is caught here."""
    assert set(ENTRIES) == set(CASES_BY_NAME)
    for name, entry in ENTRIES.items():
        case = CASES_BY_NAME[name]
        assert entry["kind"] == case.kind and entry["pretty"] == case.pretty, name
        assert [[base64.b64encode(chunk).decode(), count] for chunk, count in case.parts] == (
            entry["input"]
        ), name


@pytest.mark.parametrize("entry", _params("normal", "slow", "huge", slow=("huge",)))
def test_golden_offline(entry: dict[str, Any]) -> None:
    data = decode_input(entry) + SENTINEL
    _check(entry, replies(data, entry["pretty"]))


@pytest.mark.parametrize("entry", _params("normal"))
def test_golden_offline_byte_by_byte(entry: dict[str, Any]) -> None:
    data = decode_input(entry) + SENTINEL
    _check(entry, replies(data, entry["pretty"], [1] * len(data)))


@pytest.mark.parametrize("entry", _params("normal"))
def test_golden_offline_random_chunks_without_fast_path(entry: dict[str, Any]) -> None:
    data = decode_input(entry) + SENTINEL
    rng = random.Random(entry["name"])
    chunks = []
    total = 0
    while total < len(data):
        size = rng.choice((1, 2, 3, 7, 64, 1000))
        chunks.append(size)
        total += size
    _check(entry, replies(data, entry["pretty"], chunks, fast_path=False))


@pytest.fixture(scope="module", params=list(ORACLES))
def live_qemu(request: pytest.FixtureRequest) -> Iterator[Oracle]:
    """Each real QEMU (7.2 and 10.0): their JSON layers answer alike, so 7.2's
    recordings stand for both."""
    need_qemu(request.param)
    with oracle(request.param) as qemu:
        yield qemu


def _live(entry: dict[str, Any], qemu: Oracle) -> None:
    case: Case = CASES_BY_NAME[entry["name"]]
    _check(entry, qemu.run(case))


@pytest.mark.qemu
@pytest.mark.parametrize("entry", _params("normal"))
def test_golden_live(entry: dict[str, Any], live_qemu: Oracle) -> None:
    _live(entry, live_qemu)


@pytest.mark.qemu
@pytest.mark.parametrize("entry", _params("slow"))
def test_golden_live_slow(entry: dict[str, Any], live_qemu: Oracle) -> None:
    _live(entry, live_qemu)


@pytest.mark.qemu
@pytest.mark.parametrize("entry", _params("huge"))
def test_golden_live_huge(entry: dict[str, Any], live_qemu: Oracle) -> None:
    if os.environ.get("QMPDL_QJSON_HUGE", "") in ("", "0"):
        pytest.skip("64 MiB through QEMU takes minutes; set QMPDL_QJSON_HUGE=1")
    _live(entry, live_qemu)
