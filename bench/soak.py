"""Socket-level soak: two long-lived qmpdl processes under every kind of traffic at once,
their descriptors, threads and memory sampled all along.

    python3 -m bench.soak --minutes 10      # --quick: one minute

* ``source``: 2 simulated vCPUs writing, 256 MiB, four monitors (three unix, one TCP);
  ``target``: the same machine with two monitors.
* On every monitor, clients one after another (QEMU serves one at a time, the others
  queue; a connect refused with EAGAIN is retried): random bytes, mutated valid
  requests, valid requests, HMP lines; clients that vanish with requests in flight.
* Limits changing (set/cancel/query-vcpu-dirty-limit on random vCPUs and quotas),
  ``calc-dirty-rate`` in every mode, ``stop``/``cont``.
* Migrations from ``source`` to a fresh ``-incoming`` qmpdl, some with the
  ``dirty-limit`` capability, cancelled after a random time (every fifth allowed to
  complete, then the source continues with ``cont``).
* Once, half way: 10 MiB of random bytes on one monitor of each process, replies read.

Every second the descriptors (/proc/PID/fd), threads (/proc/PID/task) and RSS of both
long-lived processes are sampled.  Before the first and after the last sample the
processes are quiet (no client, no migration, no limit): those two samples must show
the same descriptors and threads, and RSS within a few MiB.  Results:
``bench/results/soak.json`` (every sample) and a table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import save
from qmpdl.tools.launch import QmpdlProcess
from qmpdl.tools.rawqmp import RawQMP

MACHINE = ["-smp", "2", "-m", "256M", "-accel", "sim,dirty-ring-size=4096"]
MiB = 1 << 20
#: What counts as flat between the quiet samples before and after.
RSS_SLACK_MIB = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    proc: QmpdlProcess
    monitors: list[str | tuple[str, int]]
    #: a monitor of its own for the abuse (a 10 MiB flood holds its monitor for a while:
    #: the clients of a shared one would queue behind it past their deadlines)
    abused: str
    #: set while a migration that should complete runs from the stopped guest: no
    #: ``cont`` meanwhile
    holding: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> dict[str, Any]:
        pid = self.proc.proc.pid
        with open(f"/proc/{pid}/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        names = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/comm") as f:
                names.append(f.read().strip())
        return {
            "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": len(names),
            "rss_kib": rss >> 10,
            "thread_names": sorted(names),
        }


def start_server(name: str, workdir: Path, unix: int, tcp: int) -> Server:
    paths = [str(workdir / f"{name}-{i}.sock") for i in range(unix)]
    abused = str(workdir / f"{name}-abuse.sock")
    ports = [free_port() for _ in range(tcp)]
    args = [*MACHINE, "--qemu-version", "10.1"]
    for path in [*paths, abused]:
        args += ["-qmp", f"unix:{path},server=on,wait=off"]
    for port in ports:
        args += ["-qmp", f"tcp:127.0.0.1:{port},server=on,wait=off"]
    proc = QmpdlProcess(args, monitor=False, workdir=workdir)
    for path in [*paths, abused]:
        proc.wait_for_path(path)
    monitors: list[str | tuple[str, int]] = [*paths, *(("127.0.0.1", p) for p in ports)]
    for address in monitors:  # every monitor answers before the soak starts
        with connect(address) as conn:
            conn.negotiate()
    return Server(name, proc, monitors, abused)


def connect(address: str | tuple[str, int], deadline: float = 60.0) -> RawQMP:
    """A client, retrying while the monitor's queue is full (EAGAIN) or it is busy."""
    end = time.monotonic() + deadline
    while True:
        try:
            return RawQMP(address, timeout=60)
        except (BlockingIOError, ConnectionRefusedError, TimeoutError):
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


# ---------------------------------------------------------------------------- traffic

VALID = [
    b'{"execute": "query-status"}',
    b'{"execute": "query-vcpu-dirty-limit"}',
    b'{"execute": "query-dirty-rate"}',
    b'{"execute": "query-migrate"}',
    b'{"execute": "query-cpus-fast"}',
    b'{"execute": "query-kvm", "id": [1, {"x": null}]}',
    b'{"exec-oob": "query-yank", "id": "oob"}',
    b'{"execute": "human-monitor-command", "arguments": {"command-line": "info status"}}',
    b'{"execute": "human-monitor-command", "arguments": {"command-line": "info dirty_rate"}}',
    b'{"execute": "query-migrate-parameters"}',
    b'{"execute": "nope"}',
    b'{"execute": "set-vcpu-dirty-limit", "arguments": {"dirty-rate": "x"}}',
]


@dataclass
class Stats:
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] += n

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        at = rng.randrange(len(out) + 1)
        action = rng.randrange(3)
        if action == 0 and at < len(out):
            out[at] = rng.randrange(256)
        elif action == 1:
            del out[at : at + rng.randrange(1, 8)]
        else:
            out[at:at] = rng.randbytes(rng.randrange(1, 8))
    return bytes(out)


RESYNC = b'\n\xff\n{"execute": "query-kvm", "id": "sync"}'


def session(address: str | tuple[str, int], rng: random.Random, stats: Stats) -> None:
    """One client: negotiate (or not), send a mix, read to a resync marker (or vanish)."""
    with connect(address) as conn:
        conn.read_line()
        stats.add("clients")
        if rng.random() < 0.9:
            oob = b', "arguments": {"enable": ["oob"]}' if rng.random() < 0.3 else b""
            conn.send(b'{"execute": "qmp_capabilities"' + oob + b"}")
            conn.reply()
        for _ in range(rng.randrange(1, 20)):
            kind = rng.random()
            if kind < 0.15:
                data = rng.randbytes(rng.randrange(1, 2048))
            elif kind < 0.45:
                data = mutate(rng, rng.choice(VALID))
            else:
                data = rng.choice(VALID)
            conn.send(data)
            stats.add("bytes sent", len(data))
        if rng.random() < 0.1:
            stats.add("clients vanished mid-request")
            conn.send(b'{"execute": "query-status"}' * rng.randrange(1, 200))
            return  # closed with requests in flight
        conn.send(RESYNC)
        while b'"id": "sync"' not in (line := conn.read_line()):
            stats.add("lines received")
            if line.startswith(b'{"error"'):
                stats.add("error replies")


def monitor_worker(
    address: str | tuple[str, int], seed: int, stop: threading.Event, stats: Stats
) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            session(address, rng, stats)
        except (OSError, EOFError) as e:
            stats.error(f"{address}: {type(e).__name__}: {e}")
            time.sleep(0.2)


def command(address: str | tuple[str, int], *requests: bytes) -> list[bytes]:
    """The replies to ``requests`` on a new client, matched by id: the first lines a
    client gets may be the reply of a command whose client vanished (QEMU sends it to
    whoever is connected when it completes)."""
    with connect(address) as conn:
        conn.read_line()
        replies = []
        for i, request in enumerate([b'{"execute": "qmp_capabilities"}', *requests]):
            tag = b'"id": "c%d"' % i
            conn.send(request[:-1] + b", " + tag + b"}")
            while tag not in (line := conn.read_line()):
                pass
            replies.append(line)
        return replies[1:]


def machine_worker(server: Server, seed: int, stop: threading.Event, stats: Stats) -> None:
    """Limits, measurements and run state changing on one monitor of ``server``."""
    rng = random.Random(seed)
    address = server.monitors[-1]
    while not stop.is_set():
        choice = rng.random()
        cpu: dict[str, int] = {"cpu-index": rng.randrange(-1, 3)} if rng.random() < 0.5 else {}
        try:
            if choice < 0.4:
                quota = rng.choice([0, 1, 50, 100, 300, 1000])
                limit = {
                    "execute": "set-vcpu-dirty-limit",
                    "arguments": {"dirty-rate": quota, **cpu},
                }
                command(
                    address,
                    json.dumps(limit).encode(),
                    b'{"execute": "query-vcpu-dirty-limit"}',
                )
                stats.add("limit changes")
            elif choice < 0.6:
                cancel = {"execute": "cancel-vcpu-dirty-limit", "arguments": cpu}
                command(address, json.dumps(cancel).encode())
                stats.add("limit cancels")
            elif choice < 0.8:
                mode = rng.choice(["page-sampling", "dirty-ring", "dirty-bitmap"])
                ms = rng.choice([50, 200, 1000])
                command(
                    address,
                    b'{"execute": "calc-dirty-rate", "arguments": {"calc-time": %d, '
                    b'"calc-time-unit": "millisecond", "mode": "%s"}}' % (ms, mode.encode()),
                    b'{"execute": "query-dirty-rate"}',
                )
                stats.add("dirty rate measurements")
            elif not server.holding.is_set():
                command(address, b'{"execute": "stop"}', b'{"execute": "cont"}')
                stats.add("stop/cont")
        except (OSError, EOFError, RuntimeError) as e:
            stats.error(f"{server.name} machine: {type(e).__name__}: {e}")
        stop.wait(rng.uniform(0.05, 0.5))


def migration_worker(
    source: Server, workdir: Path, seed: int, stop: threading.Event, stats: Stats
) -> None:
    """Migrations to a fresh destination, mostly cancelled."""
    rng = random.Random(seed)
    address = source.monitors[0]
    number = 0
    while not stop.is_set():
        number += 1
        port = free_port()
        dest_dir = workdir / f"dest-{number}"
        dest_dir.mkdir()
        try:
            with QmpdlProcess(
                [*MACHINE, "--qemu-version", "10.1", "-incoming", f"tcp:127.0.0.1:{port}"],
                workdir=dest_dir,
            ) as dest:
                # every fifth is allowed to complete, from a stopped guest (two writers at
                # ~1 GiB/s dirty a ring each between penalty sleeps: more than 300 ms of
                # downtime at these bandwidths, so a running guest would not converge);
                # the rest are cancelled at a random time
                complete = number % 5 == 0
                if complete:
                    source.holding.set()
                    command(address, b'{"execute": "stop"}')
                caps = b"true" if rng.random() < 0.5 else b"false"
                bandwidth = 64 << 20 if complete else rng.choice([1 << 20, 8 << 20, 64 << 20])
                command(
                    address,
                    b'{"execute": "migrate-set-capabilities", "arguments": {"capabilities": '
                    b'[{"capability": "dirty-limit", "state": %s}]}}' % caps,
                    b'{"execute": "migrate-set-parameters", "arguments": '
                    b'{"max-bandwidth": %d}}' % bandwidth,
                    b'{"execute": "migrate", "arguments": {"uri": "tcp:127.0.0.1:%d"}}' % port,
                )
                stats.add("migrations started")
                deadline = time.monotonic() + (120 if complete else rng.uniform(0.2, 4))
                status = ""
                while time.monotonic() < deadline and status not in ("completed", "failed"):
                    reply = json.loads(command(address, b'{"execute": "query-migrate"}')[0])
                    status = reply["return"].get("status", "")
                    time.sleep(0.1)
                if status == "completed":
                    stats.add("migrations completed")
                    command(address, b'{"execute": "cont"}')
                else:
                    command(address, b'{"execute": "migrate_cancel"}')
                    stats.add("migrations cancelled")
                    end = time.monotonic() + 60
                    while status not in ("cancelled", "failed", "completed"):
                        if time.monotonic() > end:
                            stats.error(f"migration {number} stuck in {status}")
                            break
                        reply = json.loads(command(address, b'{"execute": "query-migrate"}')[0])
                        status = reply["return"].get("status", "")
                        time.sleep(0.05)
                    if status == "completed" or complete:
                        command(address, b'{"execute": "cont"}')
                with contextlib.suppress(subprocess.TimeoutExpired):
                    dest.proc.wait(60)
                if "Traceback" in dest.stderr():
                    stats.error(f"destination {number}: {dest.stderr()[-2000:]}")
        except (OSError, EOFError, RuntimeError, TimeoutError) as e:
            stats.error(f"migration {number}: {type(e).__name__}: {e}")
        source.holding.clear()
        stop.wait(rng.uniform(0.2, 2))


def abuse(address: str | tuple[str, int], size: int, stats: Stats) -> None:
    """``size`` random bytes on one client, every reply read."""
    with connect(address) as conn:
        conn.read_line()
        conn.send(b'{"execute": "qmp_capabilities", "id": "caps"}')
        while b'"id": "caps"' not in conn.read_line():
            pass  # (a vanished client's reply may come first)
        received = 0
        done = threading.Event()

        def reader() -> None:
            nonlocal received
            with contextlib.suppress(OSError, EOFError):
                while b'"id": "sync"' not in (line := conn.read_line()):
                    received += len(line)
            done.set()

        thread = threading.Thread(target=reader)
        thread.start()
        rng = random.Random(size)
        for _ in range(size // (64 << 10)):
            conn.send(rng.randbytes(64 << 10))
        conn.send(RESYNC)
        thread.join(600)
        stats.add("abuse bytes sent", size)
        stats.add("abuse reply bytes", received)


# ---------------------------------------------------------------------------- the run


def quiet(servers: list[Server]) -> None:
    """No limit, no measurement running, guests running, no migration: then sample."""
    for server in servers:
        for _ in range(100):
            replies = command(
                server.monitors[-1],
                b'{"execute": "cancel-vcpu-dirty-limit"}',
                b'{"execute": "query-dirty-rate"}',
                b'{"execute": "query-migrate"}',
                b'{"execute": "cont"}',
            )
            if b"measuring" not in replies[1] and b'"active"' not in replies[2]:
                break
            time.sleep(0.2)
    time.sleep(2)  # (clients' connections closed; nothing else to wait for)


def run(minutes: float, seed: int, abuse_mib: int = 10) -> dict[str, Any]:
    stats = Stats()
    samples: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="qmpdl-soak-") as tmp:
        workdir = Path(tmp)
        source = start_server("source", workdir, unix=3, tcp=1)
        target = start_server("target", workdir, unix=1, tcp=1)
        servers = [source, target]
        start = time.monotonic()

        def sample(phase: str) -> None:
            entry: dict[str, Any] = {"t": round(time.monotonic() - start, 1), "phase": phase}
            for s in servers:
                entry[s.name] = s.sample()
            samples.append(entry)

        try:
            quiet(servers)
            sample("quiet-before")
            stop = threading.Event()
            threads = [
                threading.Thread(target=monitor_worker, args=(a, seed + i, stop, stats))
                for i, a in enumerate(source.monitors[1:] + target.monitors[:-1])
            ]
            threads += [
                threading.Thread(target=machine_worker, args=(s, seed + 50 + i, stop, stats))
                for i, s in enumerate(servers)
            ]
            threads.append(
                threading.Thread(
                    target=migration_worker, args=(source, workdir, seed + 99, stop, stats)
                )
            )
            for thread in threads:
                thread.start()
            end = start + minutes * 60
            abused = False
            while time.monotonic() < end:
                time.sleep(1)
                sample("traffic")
                if not abused and time.monotonic() > start + minutes * 30:
                    abused = True
                    sample("abuse-before")
                    abusers = [
                        threading.Thread(target=abuse, args=(s.abused, abuse_mib * MiB, stats))
                        for s in (source, target)
                    ]
                    for thread in abusers:
                        thread.start()
                    while any(t.is_alive() for t in abusers):
                        time.sleep(1)
                        sample("abuse")
                    sample("abuse-after")
            stop.set()
            for thread in threads:
                thread.join(300)
            try:
                quiet(servers)
            except (OSError, EOFError) as e:
                stats.error(f"not answering at the end: {type(e).__name__}: {e}")
            sample("quiet-after")
            for s in servers:
                if s.proc.proc.poll() is not None:
                    stats.error(f"{s.name} exited with {s.proc.proc.returncode}")
                if "Traceback" in s.proc.stderr():
                    stats.error(f"{s.name}: {s.proc.stderr()[-3000:]}")
        finally:
            for s in servers:
                try:
                    status = s.proc.terminate()
                except subprocess.TimeoutExpired:
                    stats.error(f"{s.name} did not exit on SIGTERM")
                    status = 0
                if status != 0:
                    stats.error(f"{s.name} exited with {status} on SIGTERM")
                s.proc.close()
    return {"minutes": minutes, "seed": seed, "abuse_mib": abuse_mib, "counts": dict(stats.counts),
            "errors": stats.errors, "samples": samples}  # fmt: skip


def summary(result: dict[str, Any]) -> tuple[list[str], bool]:
    """The table, and whether descriptors, threads and memory came back flat."""
    samples = result["samples"]
    before = next(s for s in samples if s["phase"] == "quiet-before")
    after = next(s for s in samples if s["phase"] == "quiet-after")
    lines = [
        "| process | | quiet before | traffic min / max | abuse max | quiet after |",
        "|---|---|---|---|---|---|",
    ]
    flat = True
    for name in ("source", "target"):
        for key, label, scale in (("rss_kib", "RSS MiB", 1024), ("fds", "fds", 1),
                                  ("threads", "threads", 1)):  # fmt: skip
            traffic = [s[name][key] / scale for s in samples if s["phase"] == "traffic"]
            abuse_ = [s[name][key] / scale for s in samples if s["phase"].startswith("abuse")]
            b, a = before[name][key] / scale, after[name][key] / scale
            lines.append(
                f"| {name} | {label} | {b:.0f} | {min(traffic, default=0):.0f} / "
                f"{max(traffic, default=0):.0f} | {max(abuse_, default=0):.0f} | {a:.0f} |"
            )
            if key == "rss_kib":
                flat &= a <= b + RSS_SLACK_MIB
            else:
                flat &= a == b
    return lines, flat and not result["errors"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="one minute (a smoke run)")
    parser.add_argument("--report", metavar="JSON", help="print the table of a saved result")
    opts = parser.parse_args(argv)
    if opts.report:
        result = json.loads(Path(opts.report).read_text())
    else:
        result = run(1 if opts.quick else opts.minutes, opts.seed)
        lines, flat = summary(result)
        result["table"] = lines
        result["flat"] = flat
        path = save("soak-quick" if opts.quick else "soak", result)
        print(f"results: {path}")
    lines, flat = summary(result)
    print(f"soak: {result['minutes']} minutes, seed {result['seed']}")
    for key, value in sorted(result["counts"].items()):
        print(f"  {key}: {value}")
    print("\n".join(lines))
    for error in result["errors"][:20]:
        print(f"error: {error}")
    print("flat: yes" if flat else "flat: NO")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
