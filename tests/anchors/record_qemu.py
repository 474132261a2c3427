"""Record real QEMU's throttle on a real guest: ``python -m tests.anchors.record_qemu``.

The runs of ``../shared/anchors`` (QEMU 7.2), done again with QEMU 10.0 on this host and
kept in the repository (``tests/anchors/qemu-10.0``): the writer guest (qmpdl's multiboot
image: one 4 KiB page written per step over 99 MiB, the anchors' loop) on one vCPU,
``-m 256``, a 4096-entry dirty ring, and QEMU's own trace of the throttle
(``-trace dirtylimit_* -trace dirtyrate_*``; the vCPUs' ring-full exits are left out to
keep the files small):

* ``smp1-fresh-qQ``: a fresh QEMU per quota Q (50, 100, 200, 300, 400), limited for
  20 periods, then cancelled;
* ``smp1-nocalc``: the five quotas one after another in one QEMU (20 s each, cancel,
  2 s): the penalty survives cancel;
* ``smp1-calc2s``: the same with a 1 s ``calc-dirty-rate`` (dirty-ring mode) every 2 s,
  whose ring flushes kick the vCPU during its penalty sleeps (uninterruptible from 8.2).

Each run waits for the guest's first pass before anything turns dirty logging on (the
host's KVM livelocks SeaBIOS's copy loops under dirty logging).  ``--only RUN`` records
some runs; the others are kept.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from qmpdl.kvm import guest
from qmpdl.tools.qemu import QemuProcess
from qmpdl.tools.rawqmp import RawQMP
from tests.anchors.traces import RECORDED, recorded_dir

QUOTAS = (50, 100, 200, 300, 400)
PERIODS = 20
#: What is kept of QEMU's trace.
EVENTS = ("dirtylimit_", "dirtyrate_")


def _command(qmp: RawQMP, name: str, arguments: dict[str, object] | None = None) -> object:
    request: dict[str, object] = {"execute": name}
    if arguments is not None:
        request["arguments"] = arguments
    while True:
        reply = json.loads(qmp.command(json.dumps(request).encode(), timeout=30))
        if "event" not in reply:
            break
    if "error" in reply:
        raise RuntimeError(f"{name}: {reply['error']['desc']}")
    return reply["return"]


def _passes(qmp: RawQMP) -> int:
    address = guest.MULTIBOOT_LOAD + 0x1000 + 0x0C
    text = _command(qmp, "human-monitor-command", {"command-line": f"xp /1wx {address:#x}"})
    assert isinstance(text, str)
    return int(text.split()[1], 16)


def _limit(qmp: RawQMP, quota: int, seconds: float) -> None:
    _command(qmp, "set-vcpu-dirty-limit", {"dirty-rate": quota})
    time.sleep(seconds)
    _command(qmp, "cancel-vcpu-dirty-limit")


def _calc_loop(qmp_path: str, stop: threading.Event) -> None:
    """A 1 s dirty-ring calc-dirty-rate every 2 s, on a monitor of its own."""
    with RawQMP(qmp_path, timeout=30) as qmp:
        qmp.negotiate()
        while not stop.wait(1.0):
            _command(qmp, "calc-dirty-rate", {"calc-time": 1, "mode": "dirty-ring"})
            stop.wait(1.0)


def record_run(run: str, version: str) -> list[str]:
    """Play ``run`` on QEMU ``version``; the kept trace lines."""
    with tempfile.TemporaryDirectory(prefix="qmpdl-anchor-") as tmp:
        work = Path(tmp)
        image = guest.write_multiboot_image(work / "writer.img")
        log = work / "trace.log"
        calc_sock = work / "calc.sock"
        args = [
            *("-accel", "kvm,dirty-ring-size=4096", "-machine", "pc", "-m", "256"),
            *("-smp", "1", "-kernel", str(image)),
            *("-trace", "dirtylimit_*", "-trace", "dirtyrate_*", "-D", str(log)),
            *("-msg", "timestamp=on"),
            *("-qmp", f"unix:{calc_sock},server=on,wait=off"),
        ]
        with (
            QemuProcess(args, workdir=work, version=version) as qemu,
            RawQMP(qemu.socket_path, timeout=30) as qmp,
        ):
            qmp.negotiate()
            deadline = time.monotonic() + 60
            while _passes(qmp) < 1:
                if time.monotonic() > deadline:
                    raise TimeoutError("the guest made no pass")
                time.sleep(0.1)
            stop = threading.Event()
            calc = None
            if run == "smp1-calc2s":
                calc = threading.Thread(target=_calc_loop, args=(str(calc_sock), stop))
                calc.start()
            try:
                if run.startswith("smp1-fresh-q"):
                    _limit(qmp, int(run.removeprefix("smp1-fresh-q")), PERIODS + 0.5)
                else:
                    for quota in QUOTAS:
                        _limit(qmp, quota, PERIODS + 0.5)
                        time.sleep(2.0)
            finally:
                stop.set()
                if calc is not None:
                    calc.join()
            time.sleep(1.5)  # the throttle thread's last period ends
        lines = log.read_text(errors="replace").splitlines()
    return [line for line in lines if any(f":{e}" in line for e in EVENTS)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.anchors.record_qemu")
    parser.add_argument("--version", default="10.0", choices=sorted(RECORDED))
    parser.add_argument("--only", nargs="+", metavar="RUN", choices=RECORDED["10.0"])
    opts = parser.parse_args(argv)
    out = recorded_dir(opts.version)
    out.mkdir(parents=True, exist_ok=True)
    for run in opts.only or RECORDED[opts.version]:
        started = time.monotonic()
        lines = record_run(run, opts.version)
        path = out / f"{run}.qemu-trace.log.gz"
        with gzip.open(path, "wt", compresslevel=9) as f:
            f.write("\n".join(lines) + "\n")
        took = time.monotonic() - started
        print(f"{run}: {len(lines)} trace lines in {took:.0f} s -> {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
