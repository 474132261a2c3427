"""Auto-converge and the dirty-limit trigger (QEMU's mig_throttle_guest_down and
migration_dirty_limit_guest), on fakes: no vCPUs, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from qmpdl.jsontypes import JsonValue
from qmpdl.migration.parameters import PARAMETER, SettingsView
from qmpdl.migration.throttle import ConvergenceThrottle


class Settings(SettingsView):
    def __init__(self, caps: set[str], **params: JsonValue) -> None:
        self.caps = caps
        self.params = {k.replace("_", "-"): v for k, v in params.items()}

    def capability(self, name: str) -> bool:
        return name in self.caps

    def parameter_value(self, name: str, absent: JsonValue) -> JsonValue:
        return self.params.get(name, PARAMETER[name].default)


@dataclass
class Cpus:
    percents: list[int] = field(default_factory=list)

    def set_cpu_throttle(self, percent: int) -> None:
        self.percents.append(percent)


@dataclass
class Limit:
    quotas: list[int] = field(default_factory=list)

    def in_service(self) -> bool:
        return bool(self.quotas)

    def set_vcpu_dirty_limit(self, cpu_index: int | None, dirty_rate: int) -> None:
        self.quotas.append(dirty_rate)

    def cancel_vcpu_dirty_limit(self, cpu_index: int | None) -> None:
        self.quotas.clear()

    def throttle_time_per_round(self) -> int:
        return 0

    def ring_full_time(self, running: list[bool]) -> int:
        return 0


def _throttle(settings: Settings) -> tuple[ConvergenceThrottle, Cpus, Limit, list[str]]:
    cpus, limit, traces = Cpus(), Limit(), []
    t = ConvergenceThrottle(settings, cpus, limit, lambda name, text: traces.append(text))
    return t, cpus, limit, traces


def test_auto_converge_needs_two_high_periods_then_steps_up() -> None:
    t, cpus, _, _ = _throttle(Settings({"auto-converge"}))
    t.period_ended(dirty_bytes=60, transferred_bytes=100)  # 60 > 50 % of 100: once
    assert cpus.percents == []
    t.period_ended(dirty_bytes=60, transferred_bytes=100)
    assert cpus.percents == [20]  # cpu-throttle-initial
    t.period_ended(dirty_bytes=50, transferred_bytes=100)  # not above the threshold
    t.period_ended(dirty_bytes=60, transferred_bytes=100)
    t.period_ended(dirty_bytes=60, transferred_bytes=100)
    assert cpus.percents == [20, 30]  # + cpu-throttle-increment
    assert t.cpu_throttle == 30
    t.stop()
    assert cpus.percents[-1] == 0 and t.cpu_throttle == 0


def test_tailslow_and_the_maximum() -> None:
    t, cpus, _, _ = _throttle(
        Settings(set(), cpu_throttle_tailslow=True, max_cpu_throttle=45, cpu_throttle_increment=30)
    )
    t.throttle_guest_down(100, 50)
    t.throttle_guest_down(100, 90)  # ideal: 80 * 0.9 = 72 -> +8
    assert cpus.percents == [20, 28]
    t.throttle_guest_down(100, 10)  # +30 capped at max-cpu-throttle
    assert cpus.percents == [20, 28, 45]


def test_dirty_limit_sets_the_quota_once() -> None:
    t, cpus, limit, traces = _throttle(Settings({"dirty-limit"}, vcpu_dirty_limit=5))
    for _ in range(6):
        t.period_ended(dirty_bytes=100, transferred_bytes=100)
    assert limit.quotas == [5] and cpus.percents == []
    assert traces == ["guest dirty page rate limit 5 MB/s"]
