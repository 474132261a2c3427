"""``--metrics``: Prometheus text of the throttle, QMP and migration, read at scrape
time; parsed with prometheus-client's parser and compared with what QMP says in the same
run."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Any

import pytest
from prometheus_client import generate_latest

from qmpdl.cli import UsageError, parse_args, usage
from qmpdl.jsontypes import JsonObject
from qmpdl.migration.source import SourceStats
from qmpdl.observe.metrics import registry_for
from qmpdl.observe.readings import (
    MachineReadings,
    MigrationReading,
    Readings,
    RequestCounter,
    VcpuReading,
)
from qmpdl.observe.scrape import Scrape, parse
from qmpdl.tools.simrun import VirtualMachine
from qmpdl.workload import Workload
from tests.conftest import need_kvm, need_qemu
from tests.observe.conftest import Observed, Qmp, QmpError, rates

MiB = 1 << 20


class _Fixed:
    def __init__(self, readings: Readings) -> None:
        self.readings = readings

    def read(self) -> Readings:
        return self.readings


def _render(readings: Readings) -> Scrape:
    return parse(generate_latest(registry_for(_Fixed(readings))).decode())


def test_every_reading_becomes_its_metric() -> None:
    vcpus = (
        VcpuReading(0, 113, 112, 75000, 35634, 12.5, 400, 1_600_000),
        VcpuReading(1, 450, 0, 0, 35634, None, None, 2_000_000),
    )
    migration = MigrationReading(
        status="active", transferred_bytes=123456, remaining_bytes=789, dirty_sync_count=3
    )
    s = _render(
        Readings(
            "running",
            True,
            17,
            vcpus,
            migration,
            {("query-status", "ok"): 5, ("(unknown)", "CommandNotFound"): 1},
        )
    )
    assert s.per_vcpu("qmpdl_vcpu_dirty_rate_mib_per_second") == {0: 113, 1: 450}
    assert s.per_vcpu("qmpdl_vcpu_dirty_limit_mib_per_second") == {0: 112, 1: 0}
    assert s.per_vcpu("qmpdl_vcpu_throttle_us_per_full") == {0: 75000, 1: 0}
    assert s.per_vcpu("qmpdl_vcpu_ring_full_time_us") == {0: 35634, 1: 35634}
    # figures a backend does not keep are absent, not zero
    assert s.per_vcpu("qmpdl_vcpu_penalty_seconds_total") == {0: 12.5}
    assert s.per_vcpu("qmpdl_vcpu_ring_full_exits_total") == {0: 400}
    assert s.per_vcpu("qmpdl_vcpu_harvested_pages_total") == {0: 1_600_000, 1: 2_000_000}
    assert s.types["qmpdl_vcpu_penalty_seconds"] == "counter"
    assert s.types["qmpdl_vcpu_dirty_rate_mib_per_second"] == "gauge"
    assert s.value("qmpdl_runstate", status="running") == 1
    assert s.value("qmpdl_dirtylimit_in_service") == 1
    assert s.value("qmpdl_dirtylimit_periods_total") == 17
    assert s.value("qmpdl_qmp_requests_total", command="query-status", result="ok") == 5
    assert s.value("qmpdl_qmp_requests_total", command="(unknown)", result="CommandNotFound") == 1
    assert s.value("qmpdl_migration_status", status="active") == 1
    assert s.value("qmpdl_migration_status", status="none") == 0
    assert s.value("qmpdl_migration_transferred_bytes") == 123456
    assert s.value("qmpdl_migration_remaining_bytes") == 789
    assert s.value("qmpdl_migration_dirty_sync_count") == 3
    assert s.value("qmpdl_process_resident_memory_bytes") is not None


def test_request_counter_labels_stay_bounded() -> None:
    count = RequestCounter(["query-status", "quit"])
    count({"execute": "query-status"}, {"return": {}})
    count({"execute": "query-status", "id": 1}, {"return": {}, "id": 1})
    count({"exec-oob": "quit"}, {"error": {"class": "GenericError", "desc": "x"}})
    count({"execute": "no-such-command-1"}, {"error": {"class": "CommandNotFound", "desc": ""}})
    count({"execute": "no-such-command-2"}, {"error": {"class": "CommandNotFound", "desc": ""}})
    count(None, {"error": {"class": "GenericError", "desc": "JSON parse error"}})
    count({"execute": 5}, {"error": {"class": "GenericError", "desc": ""}})
    assert count.snapshot() == {
        ("query-status", "ok"): 2,
        ("quit", "GenericError"): 1,
        ("(unknown)", "CommandNotFound"): 2,
        ("(none)", "GenericError"): 2,
    }


class _NoMigration:
    state = "none"
    cpu_throttle = 0

    def outgoing_stats(self) -> SourceStats | None:
        return None


def test_readings_of_the_sim_in_virtual_time_match_the_throttle() -> None:
    """vCPU 0 writes 200 MiB/s under a limit of 50, vCPU 1 writes 400 unlimited."""
    vm = VirtualMachine(
        [
            Workload(kind="write", rate=200, wss=64 * MiB),
            Workload(kind="write", rate=400, wss=64 * MiB),
        ]
    )
    source = MachineReadings(
        throttle=vm.dirtylimit,
        vcpus=vm.backend,
        migration=_NoMigration(),
        runstate=lambda: "running",
    )
    idle = source.read()
    assert not idle.in_service and idle.throttle_periods == 0
    assert [v.limit for v in idle.vcpus] == [0, 0]
    vm.set_limit(50, cpu_index=0)
    before = source.read()
    seen = []
    for period in range(1, 9):
        vm.period()
        r = source.read()
        seen.append(r)
        (entry,) = vm.dirtylimit.query_vcpu_dirty_limit()
        v0, v1 = r.vcpus
        assert r.in_service and r.throttle_periods == period
        assert (
            (v0.dirty_rate, v0.limit)
            == (entry.current_rate, entry.limit_rate)
            == (
                v0.dirty_rate,
                50,
            )
        )
        assert v1.dirty_rate == vm.dirtylimit.current_rate(1) and v1.limit == 0
        assert [v.throttle_us_per_full for v in r.vcpus] == vm.dirtylimit.throttle_us_per_full
        model = vm.backend.model
        assert [v.ring_full_exits for v in r.vcpus] == model.ring_full_exits.tolist()
        assert [v.harvested_pages for v in r.vcpus] == vm.backend.dirty_pages()
        assert v1.penalty_seconds == 0
    # 400 MiB/s is above the controller's sticky maximum (vCPU 0's 200): reading its
    # ring-full time must not raise that maximum (query-migrate would).
    sticky = vm.dirtylimit.controller.max_dirtyrate
    v0, v1 = seen[-1].vcpus
    assert 150 < sticky < 250 < v1.dirty_rate
    assert v1.ring_full_time_us == 16 * 1_000_000 // v1.dirty_rate
    assert v0.ring_full_time_us == 16 * 1_000_000 // sticky
    last = seen[-1].vcpus[0]
    assert last.throttle_us_per_full > 0 and abs(last.dirty_rate - 50) < 30
    assert last.penalty_seconds is not None and before.vcpus[0].penalty_seconds is not None
    assert last.penalty_seconds > before.vcpus[0].penalty_seconds
    assert last.ring_full_exits is not None and last.ring_full_exits > 0


def _consistent(qmp: Qmp, proc: Observed) -> tuple[Any, Scrape] | None:
    """query-vcpu-dirty-limit, a scrape, query-vcpu-dirty-limit: the scrape when both
    queries agree (no period ended in between), else None."""
    first = qmp("query-vcpu-dirty-limit")
    s = proc.scrape()
    second = qmp("query-vcpu-dirty-limit")
    return (first, s) if first == second else None


def _watch_convergence(proc: Observed, qmp: Qmp, nr: int, quota: int, periods: int) -> Scrape:
    """Compare scrapes with query-vcpu-dirty-limit over ``periods`` distinct throttle
    periods while the limit converges; returns the last scrape."""
    checked: set[float] = set()
    last: Scrape | None = None
    previous: Scrape | None = None
    deadline = time.monotonic() + 60 + 3 * periods
    while len(checked) < periods:
        assert time.monotonic() < deadline, f"only {len(checked)} periods compared"
        got = _consistent(qmp, proc)
        if got is None:
            continue
        limits, s = got
        period = s.value("qmpdl_dirtylimit_periods_total")
        assert period is not None
        queried = rates(limits)
        assert set(queried) == set(range(nr))
        shown = {
            cpu: (int(s.per_vcpu("qmpdl_vcpu_dirty_rate_mib_per_second")[cpu]), quota)
            for cpu in range(nr)
        }
        assert {c: (int(r), q) for c, (r, q) in queried.items()} == shown
        assert s.per_vcpu("qmpdl_vcpu_dirty_limit_mib_per_second") == dict.fromkeys(
            range(nr), quota
        )
        if previous is not None:
            for name in (
                "qmpdl_vcpu_ring_full_exits_total",
                "qmpdl_vcpu_harvested_pages_total",
                "qmpdl_vcpu_penalty_seconds_total",
            ):
                before, after = previous.per_vcpu(name), s.per_vcpu(name)
                assert all(after[c] >= before[c] for c in range(nr)), name
        if period > 1:
            checked.add(period)
        previous = last = s
        time.sleep(0.3)
    assert last is not None
    return last


def test_scrapes_agree_with_query_vcpu_dirty_limit_while_a_limit_converges(
    observed: list[Observed],
) -> None:
    proc = Observed(["-smp", "2", "-accel", "sim,dirty-ring-size=4096"])
    observed.append(proc)
    qmp, other = Qmp(proc.a), Qmp(proc.b)
    idle = proc.scrape()
    assert idle.value("qmpdl_dirtylimit_in_service") == 0
    assert idle.per_vcpu("qmpdl_vcpu_dirty_limit_mib_per_second") == {0: 0, 1: 0}
    qmp("set-vcpu-dirty-limit", **{"dirty-rate": 100})
    with pytest.raises(QmpError, match="incorrect cpu index specified"):
        other("set-vcpu-dirty-limit", **{"cpu-index": 9, "dirty-rate": 100})
    last = _watch_convergence(proc, qmp, 2, 100, periods=4)
    assert last.value("qmpdl_dirtylimit_in_service") == 1
    assert last.value("qmpdl_runstate", status="running") == 1
    for cpu in range(2):
        assert last.per_vcpu("qmpdl_vcpu_throttle_us_per_full")[cpu] > 0
        assert last.per_vcpu("qmpdl_vcpu_penalty_seconds_total")[cpu] > 0
        assert last.per_vcpu("qmpdl_vcpu_ring_full_exits_total")[cpu] > 0
        assert last.per_vcpu("qmpdl_vcpu_ring_full_time_us")[cpu] > 0
    qmp("cancel-vcpu-dirty-limit")
    other("query-status")
    s = proc.scrape()
    assert s.value("qmpdl_dirtylimit_in_service") == 0
    assert s.per_vcpu("qmpdl_vcpu_dirty_limit_mib_per_second") == {0: 0, 1: 0}
    # Every request both clients sent, counted by command and result, exactly.
    counted = {
        labels: value
        for (name, labels), value in s.samples.items()
        if name == "qmpdl_qmp_requests_total"
    }
    expected: dict[tuple[tuple[str, str], ...], float] = {}
    for client in (qmp, other):
        for command, n in client.sent.items():
            key = (("command", command), ("result", "ok"))
            expected[key] = expected.get(key, 0) + n
    bad = (("command", "set-vcpu-dirty-limit"), ("result", "ok"))
    expected[bad] -= 1
    expected[(("command", "set-vcpu-dirty-limit"), ("result", "GenericError"))] = 1
    assert counted == expected


@pytest.mark.kvm
@pytest.mark.slow
def test_scrapes_agree_with_query_vcpu_dirty_limit_on_kvm(observed: list[Observed]) -> None:
    need_kvm()
    proc = Observed(["-smp", "1", "-m", "256M", "-accel", "kvm,dirty-ring-size=4096"])
    observed.append(proc)
    qmp = Qmp(proc.a)
    qmp("set-vcpu-dirty-limit", **{"dirty-rate": 150})
    last = _watch_convergence(proc, qmp, 1, 150, periods=3)
    assert last.per_vcpu("qmpdl_vcpu_ring_full_exits_total")[0] > 0
    assert last.per_vcpu("qmpdl_vcpu_harvested_pages_total")[0] > 0
    assert last.per_vcpu("qmpdl_vcpu_penalty_seconds_total")[0] > 0


def test_migration_counters_agree_with_query_migrate(observed: list[Observed]) -> None:
    machine = ["-smp", "1", "-m", "64M", "-accel", "sim,dirty-ring-size=4096"]
    machine += ["--workload", "all:write,rate=20"]
    dst = Observed([*machine, "-incoming", "defer"], metrics=False)
    observed.append(dst)
    src = Observed(machine)
    observed.append(src)
    target = Qmp(dst.a)
    target("migrate-incoming", uri=f"unix:{dst.dir / 'mig.sock'}")
    qmp = Qmp(src.a)
    assert src.scrape().value("qmpdl_migration_status", status="none") == 1
    qmp("migrate", uri=f"unix:{dst.dir / 'mig.sock'}")
    deadline = time.monotonic() + 60
    while (info := qmp("query-migrate"))["status"] != "completed":
        assert info["status"] in ("setup", "active", "device"), info
        assert time.monotonic() < deadline, info
        time.sleep(0.1)
    s = src.scrape()
    ram: JsonObject = info["ram"]
    assert s.value("qmpdl_migration_status", status="completed") == 1
    assert sum(s.value("qmpdl_migration_status", status=x) or 0 for x in ("none", "active")) == 0
    for metric, key in (
        ("transferred_bytes", "transferred"),
        ("remaining_bytes", "remaining"),
        ("precopy_bytes", "precopy-bytes"),
        ("downtime_bytes", "downtime-bytes"),
        ("normal_pages", "normal"),
        ("duplicate_pages", "duplicate"),
        ("dirty_sync_count", "dirty-sync-count"),
    ):
        assert s.value(f"qmpdl_migration_{metric}") == ram[key], metric
    assert s.value("qmpdl_migration_total_time_ms") == info["total-time"]
    assert s.value("qmpdl_migration_downtime_ms") == info["downtime"]
    assert s.value("qmpdl_runstate", status="postmigrate") == 1


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "qmpdl", "--metrics", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert run.returncode == 1
    assert run.stderr == (
        f"qmpdl: --metrics 127.0.0.1:{port}: Failed to bind socket: Address already in use\n"
    )


_STARTUP = """
import asyncio, os, sys
from qmpdl.cli import parse_args
from qmpdl.server.app import serve
from qmpdl.tools.rawqmp import RawQMP

async def main():
    config = parse_args(["-qmp", "unix:s.sock,server=on,wait=off", *sys.argv[1:]])
    task = asyncio.create_task(serve(config))
    while not os.path.exists("s.sock"):
        await asyncio.sleep(0.01)
    def talk():
        with RawQMP("s.sock") as c:
            c.negotiate()
            c.command(b'{"execute": "query-status"}')
            c.command(b'{"execute": "quit"}')
    await asyncio.to_thread(talk)
    await task
    print(" ".join(sorted({m.split(".")[0] for m in sys.modules} & {
        "prometheus_client", "textual", "rich", "matplotlib", "qemu"})))

asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("args", "loaded"), [([], ""), (["--metrics", "127.0.0.1:0"], "prometheus_client")]
)
def test_start_up_loads_prometheus_client_only_with_metrics(
    args: list[str], loaded: str, tmp_path: Any
) -> None:
    run = subprocess.run(
        [sys.executable, "-c", _STARTUP, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == loaded


def test_the_option_takes_host_and_port() -> None:
    assert parse_args(["--metrics", "127.0.0.1:9464"]).metrics == ("127.0.0.1", 9464)
    assert parse_args(["--metrics=[::1]:9"]).metrics == ("::1", 9)
    assert parse_args(["--metrics", ":9464"]).metrics == ("127.0.0.1", 9464)
    assert parse_args([]).metrics is None
    for bad in ("9464", "host:", "host:http", "h:70000"):
        with pytest.raises(UsageError) as info:
            parse_args(["--metrics", bad])
        assert str(info.value) == (
            f"qmpdl: --metrics {bad}: expected HOST:PORT, e.g. 127.0.0.1:9464"
        )
    assert "  --metrics HOST:PORT\n" in usage()


def test_metrics_bench_runs_every_kind() -> None:
    """The cost benchmark still runs (a few requests per case; no timing asserted)."""
    need_qemu()
    from bench import metrics_bench

    raw = {
        kind: [metrics_bench.one_run(kind, 20, None)] for kind in ("qemu", "qmpdl", "qmpdl+metrics")
    }
    table = metrics_bench.summarise(raw)
    assert sorted(table) == sorted(
        f"{name}/{mode}"
        for name in ("query-status", "query-vcpu-dirty-limit")
        for mode in ("sequential", "pipelined")
    )
    assert all(row["on_vs_off"] > 0 for row in table.values())
