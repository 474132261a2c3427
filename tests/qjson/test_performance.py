"""Speed: a typical command parses, and a typical reply encodes, in a few microseconds.

QEMU itself manages about 4000 requests/s; the budget here is far below that.  Timings
take the best of several batches, so a busy machine does not make the test flaky.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from qmpdl.jsontypes import JsonValue
from qmpdl.qjson import JsonStreamer, encode_message

COMMANDS = [
    b'{"execute": "query-vcpu-dirty-limit", "id": "libvirt-42"}',
    b'{"execute":"set-vcpu-dirty-limit","arguments":{"cpu-index":1,"dirty-rate":200},"id":7}',
    b'{"execute": "query-status"}\r\n',
    b'{"execute":"calc-dirty-rate","arguments":{"calc-time":1,"mode":"dirty-ring"}}',
]
REPLIES: list[JsonValue] = [
    {"return": {}, "id": "libvirt-42"},
    {"return": [{"cpu-index": 0, "limit-rate": 200, "current-rate": 10}], "id": "__qmp#00012"},
    {"error": {"class": "GenericError", "desc": "Parameter 'cpu-index' expects uint64"}, "id": 7},
    {"return": {"status": "running", "singlestep": False, "running": True}},
]


def best_per_call(fn: Callable[[], object], calls: int = 1000, batches: int = 7) -> float:
    best = float("inf")
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def test_parse_typical_command_fed_whole() -> None:
    streamer = JsonStreamer()

    def parse_all() -> None:
        for command in COMMANDS:
            streamer.feed(command)
            assert type(streamer.next_message()) is dict
            assert streamer.next_message() is None

    per_command = best_per_call(parse_all) / len(COMMANDS)
    assert per_command < 10e-6, f"{per_command * 1e6:.1f} us per command"


def test_parse_pipelined_commands() -> None:
    streamer = JsonStreamer()
    batch = b"".join(COMMANDS) * 50

    def parse_batch() -> None:
        streamer.feed(batch)
        count = 0
        while streamer.next_message() is not None:
            count += 1
        assert count == 200

    per_command = best_per_call(parse_batch, calls=10) / 200
    assert per_command < 10e-6, f"{per_command * 1e6:.1f} us per command"


def test_encode_typical_reply() -> None:
    def encode_all() -> None:
        for reply in REPLIES:
            encode_message(reply)

    per_reply = best_per_call(encode_all) / len(REPLIES)
    assert per_reply < 10e-6, f"{per_reply * 1e6:.1f} us per reply"
