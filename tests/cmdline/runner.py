"""Running a command line on QEMU 7.2 or qmpdl and telling what happened.

A case's outcome is QEMU's stderr (its program name replaced by ``qmpdl``, the host's
CPUID warnings and the signal message of the stop dropped, the scratch directory shown
as ``{tmp}``) and either the exit status or ``running``: a QMP monitor (added last, on a
socket in the scratch directory) answered ``qmp_capabilities``, so everything before it
started.  A greeting alone would not do: QEMU greets from its monitor's I/O thread while
the main thread may still be setting up (``-serial`` is parsed after the monitors exist,
so ``-serial bogus`` can greet, then exit 1); the answer comes from the main thread.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden-qemu-7.2.json")

#: The boards the cases run on (QEMU's -cpu and -no-acpi checks depend on it).
BASES = {
    "none": ["-machine", "none", "-nodefaults", "-display", "none"],
    "pc": ["-machine", "pc", "-accel", "kvm", "-nodefaults", "-display", "none"],
}


@dataclass(frozen=True)
class Outcome:
    stderr: str
    status: str  # "running" or the exit status

    def as_json(self) -> dict[str, str]:
        return {"stderr": self.stderr, "status": self.status}


def _normalise(text: str, tmp: str) -> str:
    lines = []
    for line in text.replace("qemu-system-x86_64:", "qmpdl:").splitlines():
        if "host doesn't support requested feature" in line or "terminating on signal" in line:
            continue
        lines.append(line.replace(tmp, "{tmp}"))
    return "\n".join(lines)


def qmpdl_argv() -> list[str]:
    """qmpdl as the QEMU 7.2 that the cases were recorded from."""
    return [sys.executable, "-m", "qmpdl", "--qemu-version", "7.2"]


def run_case(program: list[str], base: str, args: list[str], timeout: float = 120.0) -> Outcome:
    """Run ``program`` with the base's options, ``args`` (``{tmp}`` is the scratch
    directory) and a QMP monitor; stop it once the monitor greets."""
    with tempfile.TemporaryDirectory(prefix="qmpdl-cmdline-") as tmp:
        monitor = f"{tmp}/qmp.sock"
        argv = [
            *program,
            *BASES[base],
            *(a.replace("{tmp}", tmp) for a in args),
            "-qmp",
            f"unix:{monitor},server=on,wait=off",
        ]
        env = {**os.environ, "QMPDL_BACKEND": "sim", "PYTHONPATH": str(ROOT)}
        with open(f"{tmp}/stderr", "wb") as err:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env
            )
        status = None
        deadline = time.monotonic() + timeout
        try:
            while status is None:
                code = proc.poll()
                if code is not None:
                    status = str(code)
                elif os.path.exists(monitor) and _serves(monitor):
                    status = "running"
                elif time.monotonic() > deadline:
                    status = "timeout"
                else:
                    time.sleep(0.02)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        stderr = Path(f"{tmp}/stderr").read_text(errors="replace")
        return Outcome(_normalise(stderr, tmp), status)


def _serves(path: str) -> bool:
    """The monitor greets and answers ``qmp_capabilities`` (False when the connection
    fails or ends first: the process is on its way out, or not listening yet)."""
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(30)
            sock.connect(path)
            with sock.makefile("rb") as reader:
                if b"QMP" not in reader.readline():
                    return False
                sock.sendall(b'{"execute": "qmp_capabilities"}')
                return reader.readline().startswith(b'{"return": {}')
    except OSError:
        return False


def load_golden() -> dict[str, dict[str, str]]:
    data = json.loads(GOLDEN.read_text())
    return {name: entry for name, entry in data["cases"].items()}
