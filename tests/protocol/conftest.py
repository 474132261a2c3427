"""Fixtures of the protocol tests: one qmpdl and one real QEMU per module.

``server`` runs a test once against each: qmpdl answering as QEMU 7.2 (one vCPU, dirty
ring) and QEMU 7.2 itself (``-machine none``).  A test that holds for both is a test of
qmpdl whose expectations were checked against the oracle.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qmpdl.tools.launch import QmpdlProcess
from qmpdl.tools.qemu import QemuProcess
from tests.protocol.harness import Server, qemu_server, qmpdl_server


@pytest.fixture(scope="module")
def qmpdl_proc() -> Iterator[QmpdlProcess]:
    with qmpdl_server() as proc:
        yield proc


@pytest.fixture(scope="module")
def qemu_proc() -> Iterator[QemuProcess]:
    with qemu_server() as proc:
        yield proc


@pytest.fixture(params=["qmpdl", pytest.param("qemu", marks=pytest.mark.qemu)])
def server(request: pytest.FixtureRequest) -> Server:
    kind: str = request.param
    proc: QmpdlProcess | QemuProcess = request.getfixturevalue(f"{kind}_proc")
    return Server(kind, proc.socket_path)


@pytest.fixture(params=["qmpdl", pytest.param("qemu", marks=pytest.mark.qemu)])
def kind(request: pytest.FixtureRequest) -> str:
    """For tests that start their own server with particular options."""
    value: str = request.param
    return value
