"""Fixtures of the client tests: one qmpdl per module, real QEMU where a test compares.

The qmpdl here answers as QEMU 7.2 with two vCPUs and the dirty ring on; the oracle for
the same shape is QEMU ``-machine pc -smp 2``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from qmpdl.tools.launch import QmpdlProcess
from qmpdl.tools.qemu import QemuProcess
from tests.protocol.harness import qemu_server, qmpdl_server

#: qmpdl for the client tests.
CLIENT_QMPDL_ARGS = ["-smp", "2", "-accel", "sim,dirty-ring-size=4096", "--qemu-version", "7.2"]
#: QEMU with the same vCPUs (a guest that only runs its firmware).
CLIENT_QEMU_ARGS = [
    "-accel",
    "kvm,dirty-ring-size=4096",
    "-machine",
    "pc",
    "-smp",
    "2",
    "-m",
    "128",
]


@pytest.fixture(scope="module")
def qmpdl_proc() -> Iterator[QmpdlProcess]:
    with qmpdl_server(CLIENT_QMPDL_ARGS) as proc:
        yield proc


@pytest.fixture(scope="module")
def qemu_proc() -> Iterator[QemuProcess]:
    with qemu_server(CLIENT_QEMU_ARGS) as proc:
        yield proc


@pytest.fixture
def qmpdl_sock(qmpdl_proc: QmpdlProcess) -> str:
    return qmpdl_proc.socket_path


@pytest.fixture(params=["qmpdl", pytest.param("qemu", marks=pytest.mark.qemu)])
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def sync_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop for qemu.qmp's synchronous (legacy) client, which runs its
    asyncio client on the thread's current loop."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        asyncio.set_event_loop(None)
        loop.close()
