"""Talking to the real QEMU in the QAPI tests."""

from __future__ import annotations

from qmpdl.tools.qemu import QemuProcess
from qmpdl.tools.rawqmp import RawQMP


def connect(qemu: QemuProcess, timeout: float = 10.0) -> RawQMP:
    """A negotiated raw QMP connection to ``qemu`` (RawQMP retries while QEMU has
    created its socket file but does not listen yet)."""
    qmp = RawQMP(qemu.socket_path, timeout)
    qmp.negotiate()
    return qmp
