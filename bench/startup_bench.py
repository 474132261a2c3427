"""Start-up: from process start to the first QMP replies, and the memory it takes.

Harnesses start a VM per test and libvirt probes every emulator, so this is what each of
them waits for.  QEMU 7.2 (``-accel kvm``, a ``pc`` board, no devices) and qmpdl (``-accel
sim``, the same options) are started the same way, alternately, with a QMP monitor on a
unix socket; the client polls for the socket and times, from the spawn:

* the greeting; the reply to ``qmp_capabilities`` (the first QMP reply: *ready*); the
  reply to ``query-status``; the reply to the first ``set-vcpu-dirty-limit`` (qmpdl
  builds its simulated vCPUs' model then, numpy included);
* resident memory (VmRSS) once ready, and after the limit.

qmpdl runs twice: from this checkout (``python -m qmpdl`` with the developer's editable
install: the interpreter runs every ``.pth`` hook of its site-packages, here setuptools'
editable finder and this sandbox's certificate injector), and *installed* as a user
installs it for libvirt or QEMUMachine - a wheel of this checkout in a fresh virtual
environment (numpy linked in; building the wheel fetches setuptools, as ``pip install``
does), started by its ``qmpdl`` script.  The interpreter's own
start (``python -c pass``, site hooks included) is measured too: it is part of qmpdl's
time and none of its doing.  qmpdl's bytecode is compiled first, as an installation has
it.  Medians over the runs; the machine is shared and noisy.

    python3 -m bench.startup_bench [--quick] [--runs N]
"""

from __future__ import annotations

import compileall
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import median, parser, qemu_argv, qmpdl_argv, save
from qmpdl.tools.process import ManagedProcess

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("greeting", "ready", "query-status", "set-vcpu-dirty-limit")
#: issue #9's goals: ready within 2x QEMU's time, no more memory than QEMU
GOAL_TIME_RATIO = 2.0
#: what runs: QEMU, qmpdl from this checkout, qmpdl installed in a fresh venv
KINDS = ("qemu", "qmpdl", "qmpdl-installed")
_installed: list[Path] = []


def install_qmpdl() -> Path:
    """The ``qmpdl`` script of a wheel of this checkout installed in a new virtual
    environment (made once per process, removed at exit), numpy linked from this
    interpreter's site-packages."""
    if _installed:
        return _installed[0]
    import atexit

    import numpy

    venv = Path(tempfile.mkdtemp(prefix="qmpdl-startup-venv-"))
    atexit.register(shutil.rmtree, venv, True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    wheels = venv / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--wheel-dir", str(wheels), str(ROOT)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", *map(str, wheels.glob("qmpdl-*.whl"))],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    numpy_dir = Path(numpy.__file__).parent
    for name in ("numpy", "numpy.libs"):
        if (numpy_dir.parent / name).exists():
            (site / name).symlink_to(numpy_dir.parent / name)
    compileall.compile_dir(str(site / "qmpdl"), quiet=1)
    _installed.append(venv / "bin" / "qmpdl")
    return _installed[0]


def argv(kind: str, sock: Path) -> list[str]:
    qmp = ["-qmp", f"unix:{sock},server=on,wait=off"]
    if kind == "qemu":
        return qemu_argv(*qmp)
    options = ("-accel", "sim,dirty-ring-size=4096", "-machine", "pc", "-nographic",
               "-nodefaults", *qmp)  # fmt: skip
    if kind == "qmpdl-installed":
        return [str(install_qmpdl()), *options]
    return qmpdl_argv(*options)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def one_run(kind: str) -> dict[str, float]:
    proc = ManagedProcess()
    sock = proc.dir / "qmp.sock"
    with proc:
        start = time.perf_counter()
        proc.spawn(argv(kind, sock))
        client = socket.socket(socket.AF_UNIX)
        while True:
            try:
                client.connect(str(sock))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if proc.proc.poll() is not None:
                    raise RuntimeError(f"{kind} exited: {proc.stderr()}") from None
                time.sleep(0.0005)
        stream = client.makefile("rwb")
        out: dict[str, float] = {}

        def line() -> bytes:
            while True:
                text = stream.readline()
                if b'"event"' not in text:
                    return text

        line()
        out["greeting"] = time.perf_counter() - start
        for step, request in (
            ("ready", {"execute": "qmp_capabilities"}),
            ("query-status", {"execute": "query-status"}),
            ("set-vcpu-dirty-limit", {"execute": "set-vcpu-dirty-limit",
                                      "arguments": {"dirty-rate": 100}}),
        ):  # fmt: skip
            stream.write(json.dumps(request).encode() + b"\n")
            stream.flush()
            reply = line()
            assert b'"return"' in reply, reply
            out[step] = time.perf_counter() - start
            if step == "ready":
                out["rss_ready"] = rss_kib(proc.proc.pid) / 1024
        out["rss_limited"] = rss_kib(proc.proc.pid) / 1024
        stream.write(b'{"execute": "quit"}\n')
        stream.flush()
        client.close()
        proc.proc.wait(30)
    return out


def interpreter_start() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def summarise(raw: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    rows = {}
    for kind, runs in raw.items():
        rows[kind] = {
            key: median([r[key] for r in runs]) for key in (*STEPS, "rss_ready", "rss_limited")
        }
    return rows


def print_table(results: dict[str, Any], out: Callable[[str], None] = print) -> None:
    rows = results["rows"]
    ms = {k: {s: rows[k][s] * 1000 for s in STEPS} for k in rows}
    out(f"{results['runs']} runs, medians; python -c pass: {results['interpreter'] * 1000:.0f} ms")
    out("")
    out("| | greeting ms | ready ms | query-status ms | set-vcpu-dirty-limit ms "
        "| RSS ready MiB | RSS after limit MiB |")  # fmt: skip
    out("|---|---|---|---|---|---|---|")
    for kind in (k for k in KINDS if k in rows):
        r, t = rows[kind], ms[kind]
        out(
            f"| {kind} | {t['greeting']:.0f} | {t['ready']:.0f} | {t['query-status']:.0f} "
            f"| {t['set-vcpu-dirty-limit']:.0f} | {r['rss_ready']:.1f} | {r['rss_limited']:.1f} |"
        )
    qemu = rows["qemu"]
    own = (rows["qmpdl"]["ready"] - results["interpreter"]) / qemu["ready"]
    out("")
    for kind in (k for k in KINDS[1:] if k in rows):
        ratio = rows[kind]["ready"] / qemu["ready"]
        memory = rows[kind]["rss_ready"] / qemu["rss_ready"]
        out(
            f"{kind}: ready/QEMU {ratio:.2f} (goal <= {GOAL_TIME_RATIO:.0f}: "
            f"{'met' if ratio <= GOAL_TIME_RATIO else 'missed'}), RSS once ready/QEMU "
            f"{memory:.2f} (goal <= 1: {'met' if memory <= 1 else 'missed'})"
        )
    out(f"qmpdl without the interpreter's own start: ready/QEMU {own:.2f}")


def main() -> None:
    opts = parser(__doc__, "3 runs").parse_args()
    if opts.report:
        print_table(json.loads(Path(opts.report).read_text()))
        return
    runs = 3 if opts.quick else max(opts.runs, 10)
    compileall.compile_dir(str(ROOT / "qmpdl"), quiet=1)
    install_qmpdl()
    raw: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
    interpreter = []
    for i in range(runs):
        for kind, done in raw.items():
            result = one_run(kind)
            done.append(result)
            print(
                f"run {i + 1}/{runs} {kind}: ready {result['ready'] * 1000:.1f} ms", file=sys.stderr
            )
        interpreter.append(interpreter_start())
    results = {"runs": runs, "interpreter": median(interpreter), "rows": summarise(raw), "raw": raw}
    path = save("startup-quick" if opts.quick else "startup", results)
    print_table(results)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
