"""qemu.qmp's synchronous ``QEMUMonitorProtocol`` (the legacy API QEMU's iotests and
``QEMUMachine`` use), as client of a listening qmpdl and as the listening side that
qmpdl connects out to.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from qemu.qmp import ExecuteError
from qemu.qmp.legacy import QEMUMonitorProtocol

from tests.clients.conftest import CLIENT_QEMU_ARGS, CLIENT_QMPDL_ARGS
from tests.protocol.harness import has_traceback, spawn

VERSION = {
    "qemu": {"micro": 22, "minor": 2, "major": 7},
    "package": "Debian 1:7.2+dfsg-7+deb12u18+b3",
}
RUNNING = {"status": "running", "singlestep": False, "running": True}


def test_cmd_and_cmd_raw(qmpdl_sock: str, sync_loop: asyncio.AbstractEventLoop) -> None:
    qmp = QEMUMonitorProtocol(qmpdl_sock)
    try:
        greeting = qmp.connect()
        assert greeting == {"QMP": {"version": VERSION, "capabilities": ["oob"]}}
        qmp.settimeout(60)
        # cmd(): the return value (the client assigns an id)
        assert qmp.cmd("query-version") == VERSION
        assert qmp.cmd("query-status") == RUNNING
        # cmd_raw() and cmd_obj(): whole replies, sent without an id, so none comes back
        assert qmp.cmd_raw("query-kvm") == {"return": {"enabled": True, "present": True}}
        assert qmp.cmd_raw("query-vcpu-dirty-limit", {}) == {"return": []}
        assert qmp.cmd_obj({"execute": "query-yank"}) == {
            "return": [{"type": "chardev", "id": "compat_monitor0"}]
        }
        assert qmp.cmd_obj({"execute": "no-such-cmd"}) == {
            "error": {
                "class": "CommandNotFound",
                "desc": "The command no-such-cmd has not been found",
            }
        }
        assert qmp.cmd_obj({"execute": "set-vcpu-dirty-limit", "arguments": {}}) == {
            "error": {"class": "GenericError", "desc": "Parameter 'dirty-rate' is missing"}
        }
        # an id given by the caller comes back as given
        assert qmp.cmd_obj({"execute": "query-kvm", "id": "mine"}) == {
            "return": {"enabled": True, "present": True},
            "id": "mine",
        }
        with pytest.raises(ExecuteError) as caught:
            qmp.cmd("set-vcpu-dirty-limit", **{"dirty-rate": 1, "cpu-index": 7})
        assert str(caught.value) == "incorrect cpu index specified"
    finally:
        qmp.close()


def test_pull_event(qmpdl_sock: str, sync_loop: asyncio.AbstractEventLoop) -> None:
    qmp = QEMUMonitorProtocol(qmpdl_sock)
    try:
        qmp.connect()
        assert qmp.pull_event() is None
        assert qmp.cmd("stop") == {}
        stop = qmp.pull_event(wait=10.0)
        assert stop is not None and stop["event"] == "STOP"
        assert qmp.cmd("query-status") == {
            "status": "paused",
            "singlestep": False,
            "running": False,
        }
        assert qmp.cmd_raw("cont") == {"return": {}}
        resume = qmp.pull_event(wait=10.0)
        assert resume is not None and resume["event"] == "RESUME"
        assert qmp.get_events() == []
        qmp.cmd("stop")
        qmp.cmd("cont")
        events = qmp.get_events(wait=10.0)
        while len(events) < 2:
            events += qmp.get_events(wait=10.0)
        assert [e["event"] for e in events] == ["STOP", "RESUME"]
        qmp.clear_events()
        assert qmp.get_events() == []
    finally:
        qmp.close()


@pytest.mark.parametrize("monitor", ["qmp", "chardev"])
def test_server_side_client(
    kind: str, monitor: str, tmp_path: Path, sync_loop: asyncio.AbstractEventLoop
) -> None:
    """The QEMUMachine way round: the client listens, the server connects out
    (``-qmp unix:PATH``, or ``-chardev socket,id=mon,path=PATH -mon chardev=mon``)."""
    path = tmp_path / "qmp.sock"
    qmp = QEMUMonitorProtocol(str(path), server=True)
    args = (
        ["-qmp", f"unix:{path}"]
        if monitor == "qmp"
        else ["-chardev", f"socket,id=mon,path={path}", "-mon", "chardev=mon,mode=control"]
    )
    try:
        with spawn(
            kind, *args, qmpdl_machine=CLIENT_QMPDL_ARGS, qemu_machine=CLIENT_QEMU_ARGS
        ) as proc:
            greeting = qmp.accept(timeout=60)
            assert greeting == {"QMP": {"version": VERSION, "capabilities": ["oob"]}}
            qmp.settimeout(60)
            chardev = "compat_monitor0" if monitor == "qmp" else "mon"
            assert qmp.cmd("query-yank") == [{"type": "chardev", "id": chardev}]
            assert qmp.cmd("query-status") == RUNNING
            # QEMUMachine.shutdown(): quit, then the connection ends
            assert qmp.cmd("quit") == {}
            shutdown = qmp.pull_event(wait=10.0)
            assert shutdown is not None
            assert shutdown["data"] == {"guest": False, "reason": "host-qmp-quit"}
            assert proc.wait(60) == 0
            assert not has_traceback(proc.stderr()), proc.stderr()
    finally:
        # the server hung up after quit: qemu.qmp reports that as EOFError, for QEMU too
        with contextlib.suppress(EOFError):
            qmp.close()
