"""``query-chardev`` as QEMU 7.2 answers it, compared live: every backend (sockets
listening, inherited as ``fd=N`` listening and connected, TCP, pty, null, file, stdio),
the monitors' and serial ports' devices, before and after clients connect."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import tempfile
import time
from typing import Any

import pytest

from tests.cmdline.runner import ROOT, qmpdl_argv

pytestmark = pytest.mark.qemu


def chardevs(program: list[str]) -> tuple[list[Any], list[Any]]:
    with tempfile.TemporaryDirectory(prefix="qmpdl-chardev-") as d:
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(f"{d}/fdl.sock")
        listener.listen(1)
        ours, theirs = socket.socketpair()
        tcp = socket.socket()
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(1)
        fds = (listener.fileno(), theirs.fileno(), tcp.fileno())
        argv = [
            *program, "-machine", "pc", "-accel", "kvm", "-nodefaults", "-display", "none",
            "-qmp", f"unix:{d}/q.sock,server=on,wait=off",
            "-chardev", f"socket,id=fdl,fd={fds[0]},server=on,wait=off",
            "-chardev", f"socket,id=pair,fd={fds[1]}",
            "-chardev", f"socket,id=tcpl,fd={fds[2]},server=on,wait=off",
            "-chardev", "pty,id=p",
            "-chardev", "null,id=n",
            "-chardev", f"file,id=f,path={d}/f.txt",
            "-chardev", f"socket,id=us,path={d}/us.sock,server=on,wait=off",
            "-chardev", "socket,id=tc,host=127.0.0.1,port=0,server=on,wait=off",
            "-monitor", f"unix:{d}/hmp.sock,server=on,wait=off",
            "-serial", "chardev:n", "-serial", "pty", "-serial", "null",
            "-chardev", "stdio,id=sio",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT), "QMPDL_BACKEND": "sim"}
        proc = subprocess.Popen(
            argv,
            pass_fds=fds,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        clients = []
        try:
            deadline = time.monotonic() + 60
            while not os.path.exists(f"{d}/q.sock") and time.monotonic() < deadline:
                time.sleep(0.02)
            with socket.socket(socket.AF_UNIX) as qmp:
                qmp.connect(f"{d}/q.sock")
                f = qmp.makefile("rwb")
                f.readline()
                f.write(b'{"execute":"qmp_capabilities"}\n')
                f.flush()
                f.readline()

                def query() -> Any:
                    f.write(b'{"execute":"query-chardev"}\n')
                    f.flush()
                    return json.loads(f.readline())["return"]

                before = query()
                for family, address in (
                    (socket.AF_UNIX, f"{d}/us.sock"),
                    (socket.AF_UNIX, f"{d}/fdl.sock"),
                    (socket.AF_INET, tcp.getsockname()),
                ):
                    client = socket.socket(family)
                    client.connect(address)
                    clients.append(client)
                time.sleep(1)
                after = query()
                f.write(b'{"execute":"quit"}\n')
                f.flush()
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for s in (listener, ours, theirs, tcp, *clients):
                s.close()
        return _masked(before, d), _masked(after, d)


def _masked(reply: Any, tmp: str) -> Any:
    text = json.dumps(reply).replace(tmp, "{tmp}")
    text = re.sub(r"/dev/pts/\d+", "/dev/pts/N", text)
    return json.loads(re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text))


def test_query_chardev_as_qemu() -> None:
    from tests.conftest import need_qemu

    need_qemu()
    assert chardevs(qmpdl_argv()) == chardevs(["qemu-system-x86_64"])
