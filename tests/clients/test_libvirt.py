"""A client that frames QMP the way libvirt's qemu_monitor_json.c does.

Every command, ``qmp_capabilities`` included, gets the id ``libvirt-N`` and is sent as
compact JSON plus ``\\r\\n``; one command is in flight at a time; input is split on
``\\r\\n`` only; the greeting is ignored; events may come between a command and its
reply; any ``return``/``error`` completes the pending command, and one that arrives
with nothing pending is an error ("Unexpected JSON reply"), as is an object that is none
of these ("Unknown JSON reply").  This is also the path of ``virsh
qemu-monitor-command`` (raw JSON and ``--hmp``) and ``virsh domdirtyrate-calc``.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from qmpdl.tools.launch import QmpdlProcess
from qmpdl.tools.qemu import QemuProcess
from tests.protocol.harness import normalise, wait_until

LINE_ENDING = b"\r\n"


class LibvirtStyleMonitor:
    def __init__(self, path: str, timeout: float = 60.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.serial = 0
        self.pending: str | None = None
        self.greetings = 0
        self.events: list[dict[str, Any]] = []
        #: every line received, in order (for comparing with QEMU)
        self.lines: list[bytes] = []

    def close(self) -> None:
        self.sock.close()

    def _read_line(self) -> bytes:
        while LINE_ENDING not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, f"monitor closed; pending {self.buf!r}"
            self.buf += chunk
        line, _, self.buf = self.buf.partition(LINE_ENDING)
        self.lines.append(line)
        return line

    def _process(self, line: bytes) -> dict[str, Any] | None:
        """qemuMonitorJSONIOProcessLine: the reply, or None for greeting/event."""
        obj = json.loads(line)
        assert isinstance(obj, dict), f"Parsed JSON reply '{line!r}' isn't an object"
        if "QMP" in obj:
            self.greetings += 1
            return None
        if "event" in obj:
            self.events.append(obj)
            return None
        if "return" in obj or "error" in obj:
            assert self.pending is not None, f"Unexpected JSON reply '{line!r}'"
            return obj
        raise AssertionError(f"Unknown JSON reply '{line!r}'")

    def command(self, execute: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self.pending is None  # one command in flight
        self.serial += 1
        cmd: dict[str, Any] = {"execute": execute}
        if arguments is not None:
            cmd["arguments"] = arguments
        cmd["id"] = self.pending = f"libvirt-{self.serial}"
        self.sock.sendall(json.dumps(cmd, separators=(",", ":")).encode() + LINE_ENDING)
        while True:
            reply = self._process(self._read_line())
            if reply is not None:
                break
        # libvirt does not check the id; a faithful server echoes it anyway
        assert reply["id"] == self.pending, reply
        self.pending = None
        return reply

    def hmp(self, command_line: str) -> dict[str, Any]:
        """virsh qemu-monitor-command --hmp (qemuMonitorJSONHumanCommand)."""
        return self.command("human-monitor-command", {"command-line": command_line})


def session(path: str) -> LibvirtStyleMonitor:
    """The commands of a libvirt session whose replies do not depend on timing."""
    mon = LibvirtStyleMonitor(path)
    assert mon.command("qmp_capabilities") == {"return": {}, "id": "libvirt-1"}
    mon.command("query-version")
    mon.command("query-status")
    mon.command("query-kvm")
    mon.command("stop")
    mon.command("query-status")
    mon.command("cont")
    mon.command("no-such-command")
    # virsh qemu-monitor-command '{"execute":"set-vcpu-dirty-limit",...}'
    mon.command("set-vcpu-dirty-limit", {"dirty-rate": 120, "cpu-index": 1})
    mon.command("query-vcpu-dirty-limit")
    mon.hmp("info vcpu_dirty_limit")
    mon.command("set-vcpu-dirty-limit", {"dirty-rate": 120, "cpu-index": 5})
    mon.hmp("set_vcpu_dirty_limit 70 0")
    mon.command("cancel-vcpu-dirty-limit", {"cpu-index": 0})
    mon.command("cancel-vcpu-dirty-limit")
    mon.command("query-vcpu-dirty-limit")
    mon.command("calc-dirty-rate", {"calc-time": 61})
    mon.command("calc-dirty-rate", {"calc-time": 1, "mode": "dirty-bitmap"})
    mon.command("human-monitor-command", {"command-line": "info status", "cpu-index": 9})
    return mon


def test_libvirt_style_session(qmpdl_proc: QmpdlProcess) -> None:
    mon = session(qmpdl_proc.socket_path)
    try:
        assert mon.greetings == 1
        assert [e["event"] for e in mon.events] == ["STOP", "RESUME"]
        replies = [json.loads(line) for line in mon.lines if b'"id": "libvirt-' in line]
        assert [r["id"] for r in replies] == [f"libvirt-{n}" for n in range(1, mon.serial + 1)]
        by_id = {r["id"]: r for r in replies}
        assert by_id["libvirt-6"]["return"]["status"] == "paused"
        assert by_id["libvirt-8"]["error"]["class"] == "CommandNotFound"
        assert by_id["libvirt-10"]["return"] == [
            {"limit-rate": 120, "current-rate": 0, "cpu-index": 1}
        ]
        assert by_id["libvirt-12"]["error"]["desc"] == "incorrect cpu index specified"
        assert by_id["libvirt-16"]["return"] == []
    finally:
        mon.close()


@pytest.mark.qemu
def test_libvirt_style_session_as_with_qemu(
    qmpdl_proc: QmpdlProcess, qemu_proc: QemuProcess
) -> None:
    ours = session(qmpdl_proc.socket_path)
    theirs = session(qemu_proc.socket_path)
    ours.close()
    theirs.close()
    assert [normalise(line) for line in ours.lines] == [normalise(line) for line in theirs.lines]


def test_virsh_domdirtyrate_calc(qmpdl_proc: QmpdlProcess) -> None:
    """virsh domdirtyrate-calc --seconds 1, then domstats --dirtyrate until measured."""
    mon = LibvirtStyleMonitor(qmpdl_proc.socket_path)
    try:
        mon.command("qmp_capabilities")
        assert mon.command("calc-dirty-rate", {"calc-time": 1, "mode": "dirty-ring"}) == {
            "return": {},
            "id": "libvirt-2",
        }
        first = mon.command("query-dirty-rate")["return"]
        assert first["status"] == "measuring" and first["mode"] == "dirty-ring"
        start = time.monotonic()
        result: dict[str, Any] = {}

        def measured() -> bool:
            result.update(mon.command("query-dirty-rate")["return"])
            return bool(result["status"] == "measured")

        wait_until(measured, "query-dirty-rate to report 'measured'", 120)
        assert time.monotonic() - start >= 0.5
        assert set(result) == {
            "vcpu-dirty-rate",
            "status",
            "sample-pages",
            "dirty-rate",
            "mode",
            "start-time",
            "calc-time",
        }
        assert [v["id"] for v in result["vcpu-dirty-rate"]] == [0, 1]
        assert result["dirty-rate"] == sum(v["dirty-rate"] for v in result["vcpu-dirty-rate"])
        assert result["calc-time"] == 1 and result["sample-pages"] == 0
    finally:
        mon.close()
