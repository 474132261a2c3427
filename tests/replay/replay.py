"""Replaying a recorded libvirt session against qmpdl, reply by reply.

Each recorded machine is started as qmpdl (:class:`ReplayMachine`); each session's
requests go out exactly as libvirt sent them, paced as recorded (so a dirty-rate
measurement is still running, or done, when the recording says so), and every reply
and event coming back is set beside QEMU's.

Until qmpdl's command line parses libvirt's options, a machine is started with the
qmpdl options that present it plus the :class:`~qmpdl.config.MachineConfig` fields
those cannot set (``python -m qmpdl.tools.serve_config``); with
``QMPDL_REPLAY_ARGV=libvirt`` the replay runs qmpdl with libvirt's own argv.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from qmpdl.tools.normalize import normalize_line
from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.rawqmp import RawQMP
from tests.replay.recording import Exchange, Session, domain_argv

#: Longest pause kept from the recording between two requests (seconds).
MAX_PAUSE = 3.0


@dataclass(frozen=True)
class ReplayMachine:
    """A machine libvirt ran, as qmpdl presents it."""

    name: str
    #: libvirt's options (the monitor added by the replay)
    libvirt: tuple[str, ...]
    #: qmpdl options presenting the same machine
    qmpdl: tuple[str, ...]
    #: MachineConfig fields the options do not set yet
    fields: dict[str, Any] = field(default_factory=dict)

    def argv(self, socket_path: str) -> list[str]:
        monitor = ["-qmp", f"unix:{socket_path},server=on,wait=off"]
        if os.environ.get("QMPDL_REPLAY_ARGV") == "libvirt":
            return [sys.executable, "-m", "qmpdl", *self.libvirt, *monitor]
        fields = json.dumps(self.fields)
        return [sys.executable, "-m", "qmpdl.tools.serve_config", fields, *self.qmpdl, *monitor]


_PROBE = ("-S", "-no-user-config", "-nodefaults", "-nographic")
PROBE_KVM = ReplayMachine(
    "probe-kvm",
    (*_PROBE, "-machine", "none,accel=kvm:tcg"),
    ("-S", "--qemu-version", "7.2", "-accel", "sim"),
    {"machine_type": "none"},
)
PROBE_TCG = ReplayMachine(
    "probe-tcg",
    (*_PROBE, "-machine", "none,accel=tcg"),
    ("-S", "--qemu-version", "7.2", "-accel", "tcg"),
    {"machine_type": "none"},
)


def domain() -> ReplayMachine:
    """The domain of ``dom-real.xml``: 2 vCPUs, 128 MiB, KVM's dirty ring, no disk."""
    argv = domain_argv()
    fd_monitor = argv.index("socket,id=charmonitor,fd=25,server=on,wait=off")
    libvirt = [a for i, a in enumerate(argv) if i not in (fd_monitor - 1, fd_monitor)]
    mon = libvirt.index("chardev=charmonitor,id=monitor,mode=control")
    del libvirt[mon - 1 : mon + 1]
    objects = [json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-object"]
    return ReplayMachine(
        "domain",
        ("--qemu-version", "7.2", *libvirt),
        (
            "-S",
            "--qemu-version",
            "7.2",
            "-accel",
            "sim,dirty-ring-size=4096",
            "-m",
            "128",
            "-smp",
            "2,sockets=2,cores=1,threads=1",
        ),
        {
            "name": "probe-real",
            "machine_type": "pc-i440fx-7.2",
            "machine_props": {
                "usb": "off",
                "dump-guest-core": "off",
                "memory-backend": "pc.ram",
            },
            "cpu_model": "qemu64",
            "objects": objects,
            "uuid": "3299e1a1-adc5-4a41-afdc-39b4896cf560",
            "no_shutdown": True,
        },
    )


@dataclass
class Played:
    """What qmpdl answered to one recorded exchange."""

    exchange: Exchange
    #: "ok" or "ERROR"
    outcome: str
    #: the return value or error object, as qmpdl printed it
    value: str
    events: list[str]


@contextmanager
def running(machine: ReplayMachine) -> Iterator[tuple[ManagedProcess, str]]:
    with ManagedProcess() as proc:
        sock = str(proc.dir / "qmp.sock")
        proc.spawn(machine.argv(sock))
        proc.wait_for_path(sock, 30)
        yield proc, sock


def _member(line: str, key: str) -> str:
    """The text of member ``key`` of a reply line, exactly as printed."""
    start = line.index(f'"{key}": ') + len(key) + 4
    _, end = json.JSONDecoder().raw_decode(line, start)
    return line[start:end]


def _request(exchange: Exchange, number: int) -> str:
    if exchange.sent is not None:
        return exchange.sent
    request: dict[str, Any] = {"execute": exchange.command}
    if exchange.arguments is not None:
        request["arguments"] = exchange.arguments
    request["id"] = f"libvirt-{number}"
    return json.dumps(request, separators=(",", ":"))


def play(conn: RawQMP, session: Session, *, first_id: int = 1) -> list[Played]:
    """Send the session's requests (paced as recorded) and read every answer."""
    out: list[Played] = []
    previous: float | None = None
    sent_at = time.monotonic()
    for number, exchange in enumerate(session.exchanges, first_id):
        if previous is not None:
            pause = min(exchange.time - previous, MAX_PAUSE) - (time.monotonic() - sent_at)
            if pause > 0:
                time.sleep(pause)
        previous = exchange.time
        sent_at = time.monotonic()
        conn.send(_request(exchange, number).encode())
        events: list[str] = []
        while True:
            line = conn.read_line(30).decode("latin-1").rstrip("\r\n")
            if line.startswith('{"timestamp"'):
                events.append(line)
                continue
            break
        if '"return": ' in line:
            outcome, value = "ok", _member(line, "return")
        else:
            outcome, value = "ERROR", _member(line, "error")
        out.append(Played(exchange, outcome, value, events))
    return out


def play_machine(machine: ReplayMachine, sessions: list[Session]) -> list[Played]:
    """Every session on one qmpdl process, one connection after the other; events
    after the last reply (``destroy``: SIGTERM) are attached to a final entry."""
    played: list[Played] = []
    with running(machine) as (proc, sock):
        number = 1
        for session in sessions:
            with RawQMP(sock, timeout=30) as conn:
                conn.read_line()
                played += play(conn, session, first_id=number)
                number += len(session.exchanges)
                if session.trailing_events:
                    # libvirt's destroy: SIGTERM, then the events QEMU sent
                    proc.signal(signal.SIGTERM)
                    tail = [
                        line.decode("latin-1").rstrip("\r\n") for line in conn.read_available(2)
                    ]
                    signalled = Exchange("(SIGTERM)", None, 0.0, events=session.trailing_events)
                    played.append(Played(signalled, "", "", tail))
    return played


def normalized(text: str) -> str:
    return normalize_line(text)
