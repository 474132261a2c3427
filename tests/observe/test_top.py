"""qmpdl-top in a real terminal (tmux): against qmpdl (sim and kvm) and QEMU 7.2 with
a real guest.  A second monitor of the same VM reads query-vcpu-dirty-limit in the same
run; what the screen shows must agree with it, and keys must really set and cancel
limits.  Deadlines are generous and nothing depends on speed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qmpdl.kvm import guest
from qmpdl.observe.run import load
from qmpdl.tools.qemu import QemuProcess
from qmpdl.tools.rawqmp import RawQMP
from tests.conftest import need_kvm, need_qemu
from tests.observe.conftest import Observed, Qmp
from tests.observe.tmux import Tmux, need_tmux, rows

TOP = [sys.executable, "-m", "qmpdl.observe.top"]


@pytest.fixture
def terminals() -> Iterator[list[Tmux]]:
    made: list[Tmux] = []
    yield made
    for t in made:
        t.close()


def _start(terminals: list[Tmux], *args: str) -> Tmux:
    t = Tmux([*TOP, *args])
    terminals.append(t)
    return t


def _has_rows(n: int, source: str | None = None) -> Any:
    def check(screen: str) -> bool:
        r = rows(screen)
        return set(r) == set(range(n)) and (
            source is None or all(row["source"] == source for row in r.values())
        )

    return check


def _agrees(term: Tmux, qmp: Qmp, cpu: int, timeout: float = 45.0) -> dict[str, str]:
    """Wait until the screen shows vCPU ``cpu``'s current-rate and limit-rate exactly as
    query-vcpu-dirty-limit reads them just before and just after (no period ended in
    between); returns that row."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        before = qmp("query-vcpu-dirty-limit")
        screen = term.screen()
        after = qmp("query-vcpu-dirty-limit")
        entry = next((e for e in before if e["cpu-index"] == cpu), None)
        row = rows(screen).get(cpu)
        if before == after and entry is not None and entry["current-rate"] and row:
            seen = f"{row} vs {entry}"
            if row["source"] == "limit" and (row["rate"], row["limit"]) == (
                str(entry["current-rate"]),
                str(entry["limit-rate"]),
            ):
                return row
        time.sleep(0.3)
    raise AssertionError(f"the screen never agreed with query-vcpu-dirty-limit: {seen}")


def _set_limit_by_keys(term: Tmux, key: str, rate: int) -> None:
    term.keys(key)
    term.wait_for(lambda s: "(MB/s):" in s, "the limit dialog")
    # The input takes keys once it has the focus: type until the screen shows them.
    for attempt in range(4):
        term.keys("C-u")
        term.type(str(rate))
        try:
            term.wait_for(
                lambda s: any("▊" in line and f" {rate} " in line for line in s.splitlines()),
                "the rate typed",
                timeout=5 if attempt < 3 else 30,
            )
            break
        except AssertionError:
            if attempt == 3:
                raise
    term.keys("Enter")


def _quit(term: Tmux) -> None:
    term.keys("q")
    deadline = time.monotonic() + 30
    while term.exit_status() is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"still running after q:\n{term.dump()}")
        time.sleep(0.2)
    assert term.exit_status() == 0, term.screen()


def _wait_limits(qmp: Qmp, expected: dict[int, int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        got = {e["cpu-index"]: e["limit-rate"] for e in qmp("query-vcpu-dirty-limit")}
        if got == expected:
            return
        assert time.monotonic() < deadline, f"limits {got}, expected {expected}"
        time.sleep(0.2)


def test_top_against_qmpdl_sim(
    observed: list[Observed], terminals: list[Tmux], tmp_path: Path
) -> None:
    need_tmux()
    proc = Observed(["-smp", "2", "-accel", "sim,dirty-ring-size=4096"])
    observed.append(proc)
    record = tmp_path / "top.jsonl"
    term = _start(
        terminals,
        "--qmp",
        proc.a,
        "--metrics",
        proc.url,
        "--record",
        str(record),
        "--calc-interval",
        "2",
    )
    screen = term.wait_for(_has_rows(2, "calc"), "two vCPU rows measured by calc-dirty-rate")
    assert "holding this monitor: QMP serves one client at a time" in screen
    assert "migration: none" in screen
    qmp = Qmp(proc.b)
    # l on the selected (first) row: vCPU 0
    _set_limit_by_keys(term, "l", 100)
    _wait_limits(qmp, {0: 100})
    term.wait_for(lambda s: "limit vCPU 0 to 100 MB/s: done" in s, "the confirmation")
    row = _agrees(term, qmp, 0)
    # The penalty shown is the metrics' throttle_us_per_full (same endpoint, same run).
    deadline = time.monotonic() + 30
    while True:
        before = proc.scrape().per_vcpu("qmpdl_vcpu_throttle_us_per_full")[0]
        row = rows(term.screen())[0]
        after = proc.scrape().per_vcpu("qmpdl_vcpu_throttle_us_per_full")[0]
        if before == after == float(row["penalty"]) and before > 0:
            break
        assert time.monotonic() < deadline, (before, row, after)
        time.sleep(0.3)
    # a: every vCPU; then the second row's limit is cancelled with Down, c
    _set_limit_by_keys(term, "a", 200)
    _wait_limits(qmp, {0: 200, 1: 200})
    _agrees(term, qmp, 1)
    term.keys("Down")
    term.keys("c")
    _wait_limits(qmp, {0: 200})
    term.wait_for(lambda s: rows(s).get(1, {}).get("limit") == "-", "vCPU 1 without limit")
    term.keys("x")
    _wait_limits(qmp, {})
    term.wait_for(lambda s: "cancel every limit: done" in s, "the cancel confirmation")
    _quit(term)
    lines = [json.loads(x) for x in record.read_text().splitlines()]
    actions = [x["action"] for x in lines if "action" in x]
    assert actions == [
        "limit vCPU 0 to 100 MB/s: done",
        "limit all vCPUs to 200 MB/s: done",
        "cancel limit of vCPU 1: done",
        "cancel every limit: done",
    ]
    run = load(record)
    assert run.vcpus == [0, 1] and 100 in run.limits[0].v and 200 in run.limits[1].v


def test_a_busy_monitor_is_never_taken(observed: list[Observed], terminals: list[Tmux]) -> None:
    proc = Observed(["-smp", "1", "-accel", "sim,dirty-ring-size=4096"], metrics=False)
    observed.append(proc)
    holder = RawQMP(proc.a)
    holder.negotiate()
    run = subprocess.run(
        [*TOP, "--qmp", proc.a, "--greeting-timeout", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr == (
        f"qmpdl-top: {proc.a}: connected, but no QMP greeting within 1 s: the monitor is "
        "busy with another client (a QMP socket serves one client at a time). Not taking "
        "it; use another -qmp socket, or --wait.\n"
    )
    # The holder still owns the monitor.
    assert holder.command(b'{"execute": "query-status"}').startswith(b'{"return"')
    # --wait: the view comes up once the holder leaves.
    need_tmux()
    term = _start(terminals, "--qmp", proc.a, "--greeting-timeout", "1", "--wait")
    time.sleep(2)
    assert rows(term.screen()) == {}
    holder.close()
    term.wait_for(_has_rows(1), "the view after the monitor became free")
    _quit(term)


def test_missing_socket_is_a_clear_error(tmp_path: Path) -> None:
    run = subprocess.run(
        [*TOP, "--qmp", str(tmp_path / "nothing.sock")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1
    assert run.stderr.startswith(f"qmpdl-top: cannot connect to {tmp_path / 'nothing.sock'}: ")


def test_without_a_dirty_ring_it_says_what_is_missing(
    observed: list[Observed], terminals: list[Tmux]
) -> None:
    need_tmux()
    proc = Observed(["-smp", "1", "-accel", "sim"], metrics=False)
    observed.append(proc)
    term = _start(terminals, "--qmp", proc.a, "--calc-interval", "1")
    term.wait_for(
        lambda s: "mode dirty-ring is not enabled" in s and "page-sampling" in s,
        "the dirty-ring refusal",
    )
    assert "penalty and ring-full time: n/a" in term.screen()
    term.wait_for(lambda s: "MiB/s (page-sampling)" in s, "the VM-wide rate")
    _set_limit_by_keys(term, "l", 100)
    term.wait_for(
        lambda s: (
            "dirty page limit feature requires KVM with accelerator property "
            "'dirty-ring-size' set'" in s
        ),
        "QEMU's refusal text",
    )
    _quit(term)


@pytest.mark.kvm
@pytest.mark.slow
def test_top_against_qmpdl_kvm(observed: list[Observed], terminals: list[Tmux]) -> None:
    need_kvm()
    need_tmux()
    proc = Observed(["-smp", "1", "-m", "256M", "-accel", "kvm,dirty-ring-size=4096"])
    observed.append(proc)
    term = _start(terminals, "--qmp", proc.a, "--metrics", proc.url, "--calc-interval", "2")
    term.wait_for(_has_rows(1, "calc"), "the vCPU row measured by calc-dirty-rate", 60)
    qmp = Qmp(proc.b)
    _set_limit_by_keys(term, "l", 150)
    _wait_limits(qmp, {0: 150})
    _agrees(term, qmp, 0, timeout=60)
    term.keys("x")
    _wait_limits(qmp, {})
    _quit(term)


BOOT_TIMEOUT = 60.0


@pytest.mark.qemu
@pytest.mark.kvm
@pytest.mark.slow
def test_top_against_qemu_7_2_with_a_real_guest(tmp_path: Path, terminals: list[Tmux]) -> None:
    need_qemu()
    need_tmux()
    image = guest.write_multiboot_image(tmp_path / "writer.img")
    serial = tmp_path / "serial.log"
    second = tmp_path / "b.sock"
    args = ["-accel", "kvm,dirty-ring-size=4096", "-machine", "pc", "-m", "256"]
    args += ["-serial", f"file:{serial}", "-kernel", str(image)]
    args += ["-qmp", f"unix:{second},server=on,wait=off"]
    with QemuProcess(args, workdir=tmp_path) as qemu:
        # Dirty logging during SeaBIOS livelocks this host's KVM: wait for the guest.
        deadline = time.monotonic() + BOOT_TIMEOUT
        while not (serial.exists() and guest.serial_passes(serial.read_bytes())):
            assert qemu.proc.poll() is None, qemu.stderr()
            assert time.monotonic() < deadline, "the guest never ran"
            time.sleep(0.1)
        term = _start(terminals, "--qmp", qemu.socket_path, "--calc-interval", "2")
        screen = term.wait_for(
            lambda s: (
                (r := rows(s).get(0)) is not None
                and r["source"] == "calc"
                and r["rate"] not in ("0", "-")
            ),
            "vCPU 0's rate from calc-dirty-rate",
            60,
        )
        assert "QEMU 7.2." in screen
        assert "penalty and ring-full time: n/a" in screen
        assert rows(screen)[0]["penalty"] == "n/a"
        qmp = Qmp(str(second))
        _set_limit_by_keys(term, "l", 150)
        _wait_limits(qmp, {0: 150})
        _agrees(term, qmp, 0, timeout=60)
        term.keys("x")
        _wait_limits(qmp, {})
        _quit(term)
