"""``socat`` piping commands to the monitor, in both directions of connection.

The bytes socat prints are exactly what the server wrote: the greeting and one
``\\r\\n``-terminated line per reply or event.  qmpdl and QEMU must print the same.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from qmpdl.tools.launch import QmpdlProcess
from qmpdl.tools.qemu import QemuProcess
from tests.clients.conftest import CLIENT_QEMU_ARGS, CLIENT_QMPDL_ARGS
from tests.protocol.harness import GREETING_72, need_tool, normalise, spawn, wait_for_path

COMMANDS = (
    b'{"execute":"qmp_capabilities"}\n'
    b'{"execute":"query-status"}\n'
    b'{"execute":"query-kvm","id":"k"}\r\n'
    b'{"execute":"stop"}{"execute":"cont"}\n'
    b"{'execute':'no-such'}\n"
    b'{"execute":"query-vcpu-dirty-limit"}\n'
)
REPLIES = [
    GREETING_72 + b"\r\n",
    b'{"return": {}}\r\n',
    b'{"return": {"status": "running", "singlestep": false, "running": true}}\r\n',
    b'{"return": {"enabled": true, "present": true}, "id": "k"}\r\n',
    b'{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "STOP"}\r\n',
    b'{"return": {}}\r\n',
    b'{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "RESUME"}\r\n',
    b'{"return": {}}\r\n',
    b'{"error": {"class": "CommandNotFound", '
    b'"desc": "The command no-such has not been found"}}\r\n',
    b'{"return": []}\r\n',
]


def lines(out: bytes) -> list[bytes]:
    return [normalise(line) for line in out.splitlines(keepends=True)]


@pytest.mark.parametrize("server", ["qmpdl", pytest.param("qemu", marks=pytest.mark.qemu)])
def test_socat_pipe(request: pytest.FixtureRequest, server: str) -> None:
    """printf '...' | socat -t 5 - UNIX-CONNECT:qmp.sock"""
    socat = need_tool("socat")
    proc: QmpdlProcess | QemuProcess = request.getfixturevalue(f"{server}_proc")
    done = subprocess.run(
        [socat, "-t", "5", "-", f"UNIX-CONNECT:{proc.socket_path}"],
        input=COMMANDS,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # the server closes when the client's input ends, after answering all of it
    assert lines(done.stdout) == REPLIES


@pytest.mark.parametrize("kind", ["qmpdl", pytest.param("qemu", marks=pytest.mark.qemu)])
def test_socat_listens(kind: str, tmp_path: Path) -> None:
    """socat UNIX-LISTEN:mon.sock - and the server connecting out with -qmp unix:mon.sock."""
    socat = need_tool("socat")
    path = tmp_path / "mon.sock"
    listen = subprocess.Popen(
        [socat, "-t", "5", f"UNIX-LISTEN:{path}", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_path(path, listen)
        with spawn(
            kind,
            "-qmp",
            f"unix:{path}",
            qmpdl_machine=CLIENT_QMPDL_ARGS,
            qemu_machine=CLIENT_QEMU_ARGS,
        ) as server:
            out, err = listen.communicate(COMMANDS + b'{"execute":"quit"}\n', timeout=30)
            assert server.wait(60) == 0, server.stderr()
        assert listen.returncode == 0, err
        assert lines(out) == [
            *REPLIES,
            b'{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "SHUTDOWN", '
            b'"data": {"guest": false, "reason": "host-qmp-quit"}}\r\n',
            b'{"return": {}}\r\n',
        ]
    finally:
        if listen.poll() is None:
            listen.kill()
            listen.wait()
