"""Run golden cases against real QEMU, and the golden file's format.

The golden file (``golden.json``) records, per case, the input and every reply message
QEMU sent (the sentinel's replies included).  Replies longer than :data:`INLINE_LIMIT`
are stored as length + SHA-256 + head.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qmpdl.tools.qemu import DEFAULT_ARGS, QemuProcess
from qmpdl.tools.rawqmp import RawQMP
from tests.qjson.golden_cases import END_MARK, SENTINEL, Case

GOLDEN_PATH = Path(__file__).with_name("golden.json")
INLINE_LIMIT = 8192

Reply = str | dict[str, Any]


class Oracle:
    """A real QEMU with a compact and a pretty QMP monitor."""

    def __init__(self, qemu: QemuProcess, pretty_path: str) -> None:
        self.qemu = qemu
        self.pretty_path = pretty_path

    def run(self, case: Case, timeout: float = 20.0) -> list[bytes]:
        """Every reply message QEMU sends for the case's input plus the sentinel."""
        path = self.pretty_path if case.pretty else self.qemu.socket_path
        big = case.kind != "normal"
        with RawQMP(path, timeout=3600.0 if big else timeout) as conn:
            greeting = conn.read_line()
            while case.pretty and greeting != b"}\r\n":
                greeting = conn.read_line()
            conn.send(case.data() + SENTINEL)
            messages: list[bytes] = []
            while True:
                message = conn.read_line()
                while case.pretty and not message.endswith(b"\n}\r\n") and message != b"}\r\n":
                    message += conn.read_line()
                messages.append(message)
                if END_MARK.encode() in message:
                    return messages


@contextmanager
def oracle(version: str = "7.2") -> Iterator[Oracle]:
    """Start QEMU ``version`` with the default (compact) QMP socket and a ``pretty=on``
    monitor."""
    with tempfile.TemporaryDirectory(prefix="qmpdl-qjson-") as tmp:
        pretty_path = os.path.join(tmp, "pretty.sock")
        args = [
            *DEFAULT_ARGS,
            "-chardev",
            f"socket,id=pretty,path={pretty_path},server=on,wait=off",
            "-mon",
            "chardev=pretty,mode=control,pretty=on",
        ]
        with QemuProcess(args, workdir=Path(tmp), version=version) as qemu:
            deadline = time.monotonic() + 10
            while not os.path.exists(pretty_path):
                if time.monotonic() > deadline:
                    raise TimeoutError("the pretty monitor socket did not appear")
                time.sleep(0.01)
            yield Oracle(qemu, pretty_path)


def qemu_version() -> str:
    out = subprocess.run(
        ["qemu-system-x86_64", "--version"], capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()[0]


def store_reply(message: bytes) -> Reply:
    text = message.decode("ascii")
    if len(text) <= INLINE_LIMIT:
        return text
    return {
        "length": len(message),
        "sha256": hashlib.sha256(message).hexdigest(),
        "head": text[:300],
    }


def reply_matches(stored: Reply, message: bytes) -> bool:
    if isinstance(stored, str):
        return stored.encode("ascii") == message
    return bool(
        stored["length"] == len(message) and stored["sha256"] == hashlib.sha256(message).hexdigest()
    )


def encode_case(case: Case, replies: Iterable[bytes]) -> dict[str, Any]:
    data = case.data()
    return {
        "name": case.name,
        "kind": case.kind,
        "pretty": case.pretty,
        "input": [[base64.b64encode(chunk).decode("ascii"), count] for chunk, count in case.parts],
        "preview": repr(data[:120]) + ("..." if len(data) > 120 else ""),
        "replies": [store_reply(m) for m in replies],
    }


def decode_input(entry: dict[str, Any]) -> bytes:
    return b"".join(base64.b64decode(chunk) * count for chunk, count in entry["input"])


def load_golden() -> dict[str, Any]:
    with open(GOLDEN_PATH, encoding="ascii") as f:
        golden: dict[str, Any] = json.load(f)
    return golden
