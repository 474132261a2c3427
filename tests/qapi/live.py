"""Talking to the real QEMU in the QAPI tests."""

from __future__ import annotations

import time

from qmpdl.tools.qemu import QemuProcess
from qmpdl.tools.rawqmp import RawQMP


def connect(qemu: QemuProcess, timeout: float = 10.0) -> RawQMP:
    """A negotiated raw QMP connection to ``qemu``.

    QEMU creates the socket file (which QemuProcess waits for) just before it
    listens on it, so the first attempts may be refused.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            qmp = RawQMP(qemu.socket_path)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        qmp.negotiate()
        return qmp
