"""Micro-benchmark of the JSON layer: parse a typical command, encode a typical reply.

    python3 bench/qjson_micro.py

Prints the best per-call time over several batches (best-of is robust on a noisy,
shared machine).  Not a test: performance is measured here, not asserted in tests/.
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
    {"error": {"class": "GenericError", "desc": "Parameter 'dirty-rate' expects uint64"}, "id": 7},
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


def main() -> None:
    streamer = JsonStreamer()

    def parse_all() -> None:
        for command in COMMANDS:
            streamer.feed(command)
            streamer.next_message()
            streamer.next_message()

    batch = b"".join(COMMANDS) * 50

    def parse_batch() -> None:
        streamer.feed(batch)
        while streamer.next_message() is not None:
            pass

    def encode_all() -> None:
        for reply in REPLIES:
            encode_message(reply)

    print(f"parse, fed whole:   {best_per_call(parse_all) / len(COMMANDS) * 1e6:6.2f} us/command")
    print(f"parse, pipelined:   {best_per_call(parse_batch, calls=10) / 200 * 1e6:6.2f} us/command")
    print(f"encode:             {best_per_call(encode_all) / len(REPLIES) * 1e6:6.2f} us/reply")


if __name__ == "__main__":
    main()
