"""The QMP, scale, start-up and soak benchmarks still run: a few round trips of each case
against qmpdl and QEMU, with their checks (replies unchanged, in order, byte-identical to
QEMU's; one limit per vCPU); a few seconds of the soak's traffic, after which the
processes hold what they held before.  No timing is asserted: figures come from
``python3 -m bench``."""

from __future__ import annotations

from bench import qmp_bench, scale_bench, soak, startup_bench
from tests.conftest import need_qemu


def test_qmp_bench_cases_and_replies() -> None:
    need_qemu()
    runs = {kind: [qmp_bench.one_run(kind, 20)] for kind in qmp_bench.KINDS}
    qemu, ours = runs["qemu"][0]["replies"], runs["qmpdl"][0]["replies"]
    assert ours == qemu
    assert ours["query-vcpu-dirty-limit[limit-set]"].startswith(
        '{"return": [{"limit-rate": 100, "current-rate": 0, "cpu-index": 0}]}'
    )
    table = qmp_bench.summarise(runs)
    modes = ("sequential", "pipelined", "monitors-8", "monitors-64")
    assert list(table) == [f"{label}/{mode}" for label in sorted(ours) for mode in modes]
    assert all(row["qmpdl_req_per_s"] > 0 and row["qemu_req_per_s"] > 0 for row in table.values())


def test_scale_bench_limits_every_vcpu() -> None:
    result = scale_bench.one_run("qmpdl", 8, 0.5, 10)
    assert result["rss_kib"] > 0
    assert result["throttle_cpu_pct"] >= 0
    assert result["query-vcpu-dirty-limit"]["p99_ms"] > 0


def test_startup_bench_times_every_step() -> None:
    need_qemu()
    for kind in ("qemu", "qmpdl"):
        result = startup_bench.one_run(kind)
        times = [result[step] for step in startup_bench.STEPS]
        assert times == sorted(times) and times[0] > 0
        assert result["rss_ready"] > 0


def test_soak_traffic_leaves_nothing_behind() -> None:
    result = soak.run(0.1, seed=7, abuse_mib=1)
    assert result["errors"] == []
    assert result["counts"]["clients"] > 0 and result["counts"]["migrations started"] > 0
    assert result["counts"]["abuse reply bytes"] > 10 << 20
    lines, flat = soak.summary(result)
    assert flat, "\n".join(lines)
