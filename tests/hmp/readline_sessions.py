"""The human monitor on a socket (``-monitor unix:...``) as a client sees it: what QEMU
7.2 and qmpdl send back for each chunk of keystrokes.

    python -m tests.hmp.readline_sessions      # records readline-golden.json from QEMU
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.cmdline.runner import ROOT

GOLDEN = Path(__file__).with_name("readline-golden.json")

QEMU = ["qemu-system-x86_64", "-machine", "pc", "-accel", "kvm,dirty-ring-size=4096"]
QMPDL = [
    *(sys.executable, "-m", "qmpdl", "--qemu-version", "7.2"),
    *("-accel", "sim,dirty-ring-size=4096"),
]

#: Keystrokes, one chunk at a time: typing, editing keys, history, completion, commands.
STEPS: list[bytes] = [
    b"info status\n",
    b"inf",
    b"o sta",
    b"tus\r",
    b"\x1b[A",
    b"\x1b[A\x1b[B\x1b[B",
    b"\x1b[A\n",
    b"info cp\x7f\x7fstatus\x01\x05\n",
    b"ab\x1b[Dc\x1b[Cd\x1b[1~x\x1b[4~y\x1bOHz\x1bOFw\n",
    b"info status\x01\x04\x04\x04\x1b[3~\n",
    b"x\x17info  \x17status\x08\x08us\n",
    b"info vc\t",
    b"\n",
    b"info statu\t\n",
    b"cpu 1\n",
    b"bogus\n",
    b"\n",
    b"   \n",
    b"info vcpu_dirty_limit\n",
    b"set_vcpu_dirty_limit 100\n",
    b"cancel_vcpu_dirty_limit\n",
    b"info vcpu_dirty_limit\n",
    b"calc_dirty_rate\n",
    b"calc_dirty_rate -z 1\n",
    b"info version\x15\x03\x1b\x1b[Z\n",
]


def normalise(data: bytes) -> str:
    """The bytes as text; the vCPU threads' ids and measured rates masked."""
    text = data.decode("latin-1")
    text = re.sub(r"thread_id=\d+", "thread_id=N", text)
    return re.sub(r"current rate \d+", "current rate N", text)


def session(program: list[str], steps: list[bytes] = STEPS, settle: float = 0.3) -> list[str]:
    """Connect to a fresh VM's human monitor, send each chunk, collect the output until
    it settles; the first element is what came on connecting."""
    with tempfile.TemporaryDirectory(prefix="qmpdl-hmp-") as tmp:
        path = f"{tmp}/hmp.sock"
        proc = subprocess.Popen(
            [*program, "-smp", "2", "-nodefaults", "-display", "none",
             "-monitor", f"unix:{path},server=on,wait=off"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not os.path.exists(path) and time.monotonic() < deadline:
                time.sleep(0.02)
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(path)
                sock.settimeout(settle)
                out = [normalise(_drain(sock, b"(qemu) "))]
                for step in steps:
                    sock.sendall(step)
                    out.append(normalise(_drain(sock, b"")))
                sock.sendall(b"quit\n")
                _drain(sock, b"")
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return out


def _drain(sock: socket.socket, until: bytes) -> bytes:
    data = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if not until or data.endswith(until):
                break
            continue
        if not chunk:
            break
        data += chunk
    return data


def main() -> int:
    outputs = session(QEMU)
    data = {
        "note": "Recorded from real QEMU by python -m tests.hmp.readline_sessions; do not edit.",
        "steps": [s.decode("latin-1") for s in STEPS],
        "outputs": outputs,
    }
    GOLDEN.write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
