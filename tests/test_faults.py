"""Resource hygiene under faults: clients and processes killed with SIGKILL, /dev/kvm
missing, not KVM or busy, a ring above the host's maximum, a full disk under ``-D`` and
``file:`` migration.  Each fault gives QEMU's text where QEMU has one (checked against
QEMU 7.2 live) and leaks nothing: descriptors and threads of the survivor come back,
socket files are gone or reusable at the next start.

The missing device and the full disk are made in a private mount namespace
(``unshare -m``: a tmpfs over ``/dev``, ``/dev/null`` bound over ``/dev/kvm``, a 16 KiB
tmpfs), so they need root; CI runs as root (``QMPDL_REQUIRE_KVM=1`` makes a skip a
failure).  A busy KVM (``KVM_CREATE_VM`` failing with EBUSY, as when another hypervisor
holds the CPU's virtualisation) is made by a preloaded ``ioctl`` shim, built with gcc,
that both QEMU and qmpdl (whose ``fcntl.ioctl`` is libc's) go through.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from qmpdl.tools.launch import QmpdlProcess
from qmpdl.tools.qemu import oracle, qemu_binary
from qmpdl.tools.rawqmp import RawQMP
from tests.conftest import need_kvm, need_qemu

#: QEMU 10.0.2's error for a file: migration on a full disk (measured on this host; the
#: file: transport is 8.2+, so QEMU 7.2 cannot be asked).
FILE_FULL_TEXT = "Unable to write to file: No space left on device"


def need(problem: str | None) -> None:
    """Skip for ``problem``, if any (fail under QMPDL_REQUIRE_KVM=1)."""
    if problem:
        if os.environ.get("QMPDL_REQUIRE_KVM", "") not in ("", "0"):
            pytest.fail(f"{problem} (QMPDL_REQUIRE_KVM=1)")
        pytest.skip(problem)


def need_namespaces() -> None:
    """Skip (fail under QMPDL_REQUIRE_KVM=1) unless private mount namespaces work."""
    if os.geteuid() != 0:
        need("private mount namespaces need root")
    need(None if shutil.which("unshare") else "unshare (util-linux) is not installed")


def in_namespace(setup: str, argv: Sequence[str]) -> list[str]:
    """``argv`` run after the shell commands ``setup`` in a private mount namespace."""
    return ["unshare", "-m", "sh", "-c", f'{setup} && exec "$@"', "sh", *argv]


def qmpdl_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "qmpdl", *args]


def qemu_argv(*args: str) -> list[str]:
    binary = qemu_binary()
    assert binary is not None
    return [binary, "-machine", "none", "-nographic", "-nodefaults", *args]


def run(argv: Sequence[str], cwd: Path, **env: str) -> tuple[int, str]:
    done = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
        stdin=subprocess.DEVNULL, env={**os.environ, **env},
    )  # fmt: skip
    return done.returncode, done.stderr


def as_qmpdl(stderr: str) -> str:
    """QEMU's stderr with its program name as qmpdl's, without host-dependent warnings."""
    lines = stderr.replace("qemu-system-x86_64", "qmpdl").splitlines(keepends=True)
    return "".join(line for line in lines if "warning: host doesn't support" not in line)


def resources(pid: int) -> tuple[int, int]:
    """(open descriptors, threads) of process ``pid``."""
    return len(os.listdir(f"/proc/{pid}/fd")), len(os.listdir(f"/proc/{pid}/task"))


def settles_at(pid: int, expected: tuple[int, int]) -> tuple[int, int]:
    """``pid``'s resources once they stopped changing towards ``expected`` (a bound)."""
    deadline = time.monotonic() + 60
    now = resources(pid)
    while now != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        now = resources(pid)
    return now


# ---------------------------------------------------------------------------- /dev/kvm


@pytest.mark.parametrize(
    ("setup", "what"),
    [
        ("mount -t tmpfs none /dev", "missing"),
        ("mount --bind /dev/null /dev/kvm", "not a KVM device"),
    ],
    ids=["missing", "not-kvm"],
)
def test_dev_kvm_unusable(setup: str, what: str, tmp_path: Path) -> None:
    """QEMU 7.2's two lines (a bare one, then the accelerator's failure), exit status 1,
    and no monitor socket left behind."""
    need_qemu()
    need_namespaces()
    sock = tmp_path / "m.sock"
    accel = ["-accel", "kvm,dirty-ring-size=4096"]
    monitor = ["-qmp", f"unix:{sock},server=on,wait=off"]
    qemu_status, qemu_err = run(in_namespace(setup, qemu_argv(*accel)), tmp_path)
    status, err = run(
        in_namespace(setup, qmpdl_argv("--qemu-version", "7.2", *accel, *monitor)), tmp_path
    )
    assert qemu_status == status == 1
    assert err == as_qmpdl(qemu_err), what
    assert err.splitlines()[1].startswith("qmpdl: -accel kvm,dirty-ring-size=4096: failed")
    assert not sock.exists()
    # 9.2+ reports the first line with its location too
    status, err = run(in_namespace(setup, qmpdl_argv("--qemu-version", "10.1", *accel)), tmp_path)
    assert status == 1
    assert err.startswith("qmpdl: -accel kvm,dirty-ring-size=4096: ")


#: ``ioctl`` that fails ``KVM_CREATE_VM`` (0xAE01) with EBUSY and passes the rest on.
BUSY_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
int ioctl(int fd, unsigned long request, ...)
{
    static int (*next)(int, unsigned long, ...);
    va_list ap;
    void *arg;
    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (request == 0xAE01) {
        errno = EBUSY;
        return -1;
    }
    if (!next) {
        next = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
    }
    return next(fd, request, arg);
}
"""


def busy_shim(tmp_path: Path) -> Path:
    """The shim's shared object (gcc is a test dependency: run-tests installs it)."""
    need(None if shutil.which("gcc") else "gcc is not installed")
    source, shared = tmp_path / "busy.c", tmp_path / "busy.so"
    source.write_text(BUSY_SHIM)
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(shared), str(source), "-ldl"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return shared


@pytest.mark.parametrize("version", ["7.2", "10.0"])
def test_dev_kvm_busy(version: str, tmp_path: Path) -> None:
    """KVM_CREATE_VM fails with EBUSY: QEMU's two lines (7.2: a bare one with the
    errno's number; 10.0: both error reports), exit status 1, no socket left."""
    need_qemu(version)
    preload = str(busy_shim(tmp_path))
    command = oracle(version).command()
    assert command is not None
    sock = tmp_path / "m.sock"
    accel = ["-accel", "kvm,dirty-ring-size=4096"]
    qemu = [*command, "-machine", "none", "-nographic", "-nodefaults", *accel]
    qemu_status, qemu_err = run(qemu, tmp_path, LD_PRELOAD=preload)
    argv = qmpdl_argv("--qemu-version", version, *accel, "-qmp", f"unix:{sock},server=on,wait=off")
    status, err = run(argv, tmp_path, LD_PRELOAD=preload)
    assert qemu_status == status == 1
    assert err == as_qmpdl(qemu_err)
    failed = "failed to initialize kvm: Device or resource busy"
    assert (
        err.splitlines()
        == {
            "7.2": [
                "ioctl(KVM_CREATE_VM) failed: 16 Device or resource busy",
                f"qmpdl: -accel kvm,dirty-ring-size=4096: {failed}",
            ],
            "10.0": [
                "qmpdl: -accel kvm,dirty-ring-size=4096: ioctl(KVM_CREATE_VM) failed: "
                "Device or resource busy",
                f"qmpdl: -accel kvm,dirty-ring-size=4096: {failed}",
            ],
        }[version]
    )
    assert not sock.exists()


def test_ring_above_the_hosts_maximum(tmp_path: Path) -> None:
    need_qemu()
    need_kvm()
    sock = tmp_path / "m.sock"
    accel = ["-accel", "kvm,dirty-ring-size=131072"]
    qemu_status, qemu_err = run(qemu_argv(*accel), tmp_path)
    status, err = run(qmpdl_argv(*accel, "-qmp", f"unix:{sock},server=on,wait=off"), tmp_path)
    assert qemu_status == status == 1
    assert err == as_qmpdl(qemu_err)
    assert "too big (maximum is" in err
    assert not sock.exists()


# ---------------------------------------------------------------------------- killed clients

SET_LIMIT = b'{"execute": "set-vcpu-dirty-limit", "arguments": {"dirty-rate": 100}}'
CLIENT = f"""
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{{"execute": "qmp_capabilities"}}' + {SET_LIMIT!r})
buf = b""
while buf.count(b"\\n") < 3:
    buf += s.recv(4096)
s.sendall(b'{{"execute": "cancel-vcpu-dirty-limit"}}' + b'{{"execute": "query-status"}}' * 500)
print("sent", flush=True)
sys.stdin.read()
"""


def negotiated(conn: RawQMP) -> None:
    """Greeting and negotiation, past the reply a killed client's command may have left
    (it goes to the next client, as in QEMU)."""
    conn.read_line()
    conn.send(b'{"execute": "qmp_capabilities", "id": "n"}')
    while b'"id": "n"' not in conn.read_line():
        pass


def test_client_killed_mid_command_leaks_nothing(tmp_path: Path) -> None:
    """SIGKILL of a client whose command runs, with requests queued: the monitor serves
    the next client, and qmpdl holds as many descriptors and threads as before."""
    with QmpdlProcess(["-accel", "sim,dirty-ring-size=4096"], workdir=tmp_path) as proc:
        with RawQMP(proc.socket_path) as warm:  # (the blocking-command thread exists)
            warm.negotiate()
            warm.command(SET_LIMIT)
            warm.command(b'{"execute": "cancel-vcpu-dirty-limit"}')
        time.sleep(0.1)
        before = settles_at(proc.proc.pid, resources(proc.proc.pid))
        for _ in range(3):
            client = subprocess.Popen(
                [sys.executable, "-c", CLIENT, proc.socket_path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert client.stdout is not None and client.stdout.readline() == "sent\n"
            client.send_signal(signal.SIGKILL)
            client.wait(60)
            assert client.stdin is not None
            client.stdin.close()
            client.stdout.close()
            with RawQMP(proc.socket_path) as conn:
                negotiated(conn)
                assert conn.command(b'{"execute": "query-vcpu-dirty-limit"}') in (
                    b'{"return": []}\r\n',  # the cancel ran
                    b'{"return": [{"limit-rate": 100, "current-rate": 0, "cpu-index": 0}]}\r\n',
                )
                conn.command(b'{"execute": "cancel-vcpu-dirty-limit"}')
        assert settles_at(proc.proc.pid, before) == before
        assert proc.terminate() == 0
        assert "Traceback" not in proc.stderr()


# ---------------------------------------------------------------------------- killed qmpdl


def test_killed_qmpdl_leaves_reusable_sockets(tmp_path: Path) -> None:
    """SIGKILL of the source mid-migration: the destination fails (exit status 1, QEMU's
    message), and both socket paths the dead processes left serve a new start."""
    monitor = tmp_path / "src.sock"
    incoming = tmp_path / "mig.sock"
    machine = ["-accel", "sim,dirty-ring-size=4096", "-m", "128M"]
    for name in ("d", "s", "d2", "s2"):
        (tmp_path / name).mkdir()
    dst = QmpdlProcess([*machine, "-incoming", f"unix:{incoming}"], workdir=tmp_path / "d")
    src = QmpdlProcess(machine, socket_path=str(monitor), workdir=tmp_path / "s")
    with dst, src:
        with RawQMP(src.socket_path) as conn:
            conn.negotiate()
            slow = {"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 1000000}}
            migrate = {"execute": "migrate", "arguments": {"uri": f"unix:{incoming}"}}
            conn.command(json.dumps(slow).encode())
            conn.command(json.dumps(migrate).encode())
            while b'"active"' not in conn.command(b'{"execute": "query-migrate"}'):
                time.sleep(0.05)
            src.signal(signal.SIGKILL)
            assert src.wait() == -signal.SIGKILL
        assert dst.wait() == 1
        assert "load of migration failed" in dst.stderr()
        assert "Traceback" not in dst.stderr() + src.stderr()
    assert monitor.exists() and incoming.exists()  # what SIGKILL leaves behind
    # the next start takes both paths over (QEMU removes what is in the way too)
    dst2 = QmpdlProcess([*machine, "-incoming", f"unix:{incoming}"], workdir=tmp_path / "d2")
    # (paused: nothing dirties, so it converges at once)
    src2 = QmpdlProcess([*machine, "-S"], socket_path=str(monitor), workdir=tmp_path / "s2")
    with dst2, src2, RawQMP(src2.socket_path) as conn:
        conn.negotiate()
        migrate = {"execute": "migrate", "arguments": {"uri": f"unix:{incoming}"}}
        conn.command(json.dumps(migrate).encode())
        while b'"completed"' not in (reply := conn.command(b'{"execute": "query-migrate"}')):
            assert b'"failed"' not in reply, reply
            time.sleep(0.05)


# ---------------------------------------------------------------------------- full disk


def full_disk(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """qmpdl with a 16 KiB tmpfs at ``tmp_path/full`` (in its own mount namespace)."""
    need_namespaces()
    full = tmp_path / "full"
    full.mkdir()
    sock = tmp_path / "m.sock"
    argv = qmpdl_argv(*args, "-qmp", f"unix:{sock},server=on,wait=off")
    err = tmp_path / "stderr"
    with err.open("wb") as out:
        proc = subprocess.Popen(
            in_namespace(f"mount -t tmpfs -o size=16k none {full}", argv),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    deadline = time.monotonic() + 60
    while not sock.exists():
        assert proc.poll() is None, err.read_text()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return proc, full, err


def test_full_disk_under_the_trace_log(tmp_path: Path) -> None:
    """Trace lines that no longer fit are lost, as QEMU's are: commands and the throttle
    go on (they used to fail with "internal error" and a traceback)."""
    proc, _, err = full_disk(
        tmp_path, "-accel", "sim,dirty-ring-size=4096", "-smp", "64", "-D", "full/log",
        "-trace", "dirty*",
    )  # fmt: skip
    try:
        with RawQMP(str(tmp_path / "m.sock")) as conn:
            conn.negotiate()
            assert conn.command(SET_LIMIT) == b'{"return": {}}\r\n'
            calc = b'{"execute": "calc-dirty-rate", "arguments": {"calc-time": 50, '
            calc += b'"calc-time-unit": "millisecond", "mode": "dirty-ring"}}'
            for _ in range(20):  # 64 vCPUs: 16 KiB of trace lines many times over
                assert conn.command(calc) == b'{"return": {}}\r\n'
                while b"measuring" in conn.command(b'{"execute": "query-dirty-rate"}'):
                    time.sleep(0.01)
            rows = json.loads(conn.command(b'{"execute": "query-vcpu-dirty-limit"}'))["return"]
            assert len(rows) == 64
            assert conn.command(b'{"execute": "cancel-vcpu-dirty-limit"}') == b'{"return": {}}\r\n'
            conn.send(b'{"execute": "quit"}')
            conn.read_available(5)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in err.read_text()
    assert not (tmp_path / "m.sock").exists()


def test_full_disk_under_a_file_migration(tmp_path: Path) -> None:
    """``migrate file:`` onto a full disk fails with QEMU's text (the file's, not a
    socket's) and the guest runs on."""
    proc, full, err = full_disk(tmp_path, "-accel", "sim,dirty-ring-size=4096", "-m", "64M")
    try:
        with RawQMP(str(tmp_path / "m.sock")) as conn:
            conn.negotiate()
            uri = b"file:%s" % bytes(full / "image")
            assert conn.command(b'{"execute": "migrate", "arguments": {"uri": "%s"}}' % uri) == (
                b'{"return": {}}\r\n'
            )
            while True:
                info = json.loads(conn.command(b'{"execute": "query-migrate"}'))["return"]
                if info["status"] in ("failed", "completed"):
                    break
                time.sleep(0.05)
            assert info == {"status": "failed", "error-desc": FILE_FULL_TEXT}
            assert b'"running"' in conn.command(b'{"execute": "query-status"}')
            conn.send(b'{"execute": "quit"}')
            conn.read_available(5)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = err.read_text()
    assert f"qmpdl: {FILE_FULL_TEXT}\n" in text and "Traceback" not in text
