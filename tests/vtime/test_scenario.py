"""Scenario files: errors with line numbers, workload phases, and each fault observably
doing what it should (and nothing crashing)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from qmpdl.vtime.scenario import ScenarioError, load_scenario
from tests.conftest import need_kvm
from tests.vtime.helpers import SECOND, VIRTUAL, vm

START_NS = 1000 * SECOND


def _file(tmp_path: Path, text: str, suffix: str = ".toml") -> str:
    path = tmp_path / f"scenario{suffix}"
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------- reading


def test_errors_name_the_line(tmp_path: Path) -> None:
    text = (
        "[[faults]]\nkind = 'kvm-internal-error'\nat = 1\ncpu = 0\n\n"
        "[[faults]]\nkind = 'bad-measurement'\nat = 2\nduration = -1\nvalue = 'zero'\n"
    )
    with pytest.raises(ScenarioError) as err:
        load_scenario(_file(tmp_path, text))
    assert ":9: faults[1].bad-measurement.duration: Input should be greater than 0" in str(
        err.value
    )


def test_syntax_errors_name_the_line(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"scenario\.toml:3: "):
        load_scenario(_file(tmp_path, "[[faults]]\nkind = 'x'\nat = = 2\n"))
    with pytest.raises(ScenarioError, match=r"scenario\.yaml:4: expected ',' or ']'"):
        load_scenario(_file(tmp_path, "faults:\n  - kind: x\n    at: [1\n", ".yaml"))


def test_yaml_validation_errors_name_the_line(tmp_path: Path) -> None:
    text = "vcpus:\n  - cpus: 0\n    phases:\n      - at: 0\n        kind: sleep\n"
    with pytest.raises(ScenarioError) as err:
        load_scenario(_file(tmp_path, text, ".yaml"))
    assert ":5: vcpus[0].phases[0].kind: " in str(err.value)


def test_the_command_line_refuses_a_bad_scenario(tmp_path: Path) -> None:
    path = _file(tmp_path, "[[faults]]\nkind = 'kvm-internal-error'\nat = 1\ncpu = 4\n")
    out = subprocess.run(
        [sys.executable, "-m", "qmpdl", *VIRTUAL, "-smp", "2", "--scenario", path],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 1
    assert f"--scenario {path}: {path}:4: vCPU 4: the machine has 2 vCPUs" in out.stderr


# ---------------------------------------------------------------- phases and events


def _rates(m: object) -> list[int]:
    return [r["current-rate"] for r in m.ok("query-vcpu-dirty-limit")]  # type: ignore[attr-defined]


def test_phases_ramps_bursts_and_stopped_work(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """
[[vcpus]]
cpus = "0"
phases = [
  { at = 0, kind = "write", rate = 200 },
  { at = 3, kind = "idle" },
  { at = 5, kind = "write", rate = 100, ramp_to = 300, duration = 2 },
  { at = 9, kind = "write", rate = 600, duration = 1 },
]

[[events]]
at = 12
action = "stop-work"

[[events]]
at = 14
action = "resume-work"
""",
    )
    with vm(*VIRTUAL, "-m", "512M", "--scenario", path) as m:
        m.ok("set-vcpu-dirty-limit", **{"dirty-rate": 10000})  # measures, never limits
        seen = []
        for _ in range(16):
            m.step(1.0)
            seen.append(_rates(m)[0])
        assert abs(seen[1] - 200) <= 2  # period [1, 2]
        assert seen[3] == 0  # idle from 3
        assert abs(seen[7] - 300) <= 2  # the ramp reached 300 at 7
        assert abs(seen[9] - 600) <= 2  # the burst [9, 10]
        assert abs(seen[10] - 300) <= 2  # then the ramp's rate again
        assert seen[12] == 0  # the guest stopped its work
        assert abs(seen[15] - 300) <= 2


# ---------------------------------------------------------------- faults


def test_ring_overflow_storm(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "[[faults]]\nkind='ring-overflow-storm'\nat=2\ncpu=1\nduration=2\nfactor=10\n",
    )
    with vm(*VIRTUAL, "-smp", "2", "--workload", "all:write,rate=100", "--scenario", path) as m:
        m.ok("set-vcpu-dirty-limit", **{"dirty-rate": 100000})
        m.step(2.0)
        before = _rates(m)
        m.step(1.0)
        storm = _rates(m)
        m.step(2.0)
        after = _rates(m)
        assert before == [100, 100] or abs(before[1] - 100) <= 2
        assert storm[1] >= 900 and abs(storm[0] - 100) <= 2
        assert abs(after[1] - 100) <= 2


def test_late_throttle_period(tmp_path: Path) -> None:
    path = _file(tmp_path, "[[faults]]\nkind='late-throttle-period'\nat=2\ndelay=3\n")
    with vm(*VIRTUAL, "--workload", "0:write,rate=100", "--scenario", path) as m:
        m.ok("set-vcpu-dirty-limit", **{"dirty-rate": 100000})
        m.step(2.0)
        # the period that was due to begin at 2 begins at 5 (and ends at 6)
        assert m.ok("__com.qmpdl_query-clock")["next-deadline-ns"] == START_NS + 5 * SECOND
        m.step(3.5)
        assert m.ok("__com.qmpdl_query-clock")["next-deadline-ns"] == START_NS + 6 * SECOND


@pytest.mark.parametrize("value", ["zero", "garbage"])
def test_bad_measurement(tmp_path: Path, value: str) -> None:
    path = _file(
        tmp_path,
        f"[[faults]]\nkind='bad-measurement'\nat=2\nduration=4\nvalue='{value}'\n",
    )
    with vm(*VIRTUAL, "--workload", "0:write,rate=100", "--scenario", path) as m:
        m.ok("set-vcpu-dirty-limit", **{"dirty-rate": 100000})
        m.step(3.0)
        (bad,) = _rates(m)
        m.ok("calc-dirty-rate", **{"calc-time": 1, "mode": "dirty-ring"})
        m.step(1.0)
        measured = m.ok("query-dirty-rate")["vcpu-dirty-rate"][0]["dirty-rate"]
        if value == "zero":
            assert bad == 0 and measured == 0
        else:
            assert bad > 1000 and measured > 1000
        m.step(4.0)
        assert abs(_rates(m)[0] - 100) <= 2  # afterwards: right again


def test_kvm_internal_error(tmp_path: Path) -> None:
    path = _file(tmp_path, "[[faults]]\nkind='kvm-internal-error'\nat=1.5\ncpu=1\n")
    with vm(*VIRTUAL, "-smp", "2", "--scenario", path) as m:
        m.step(1.0)
        assert m.ok("query-status")["status"] == "running"
        m.step(1.0)
        assert m.ok("query-status")["status"] == "internal-error"
        (stop,) = [e for e in m.events if e["event"] == "STOP"]
        assert stop["timestamp"]["microseconds"] == 500000
        assert "KVM internal error on vCPU 1" in m.proc.stderr()
        assert m.call("cont")["error"]["desc"] == "Resetting the Virtual Machine is required"


def _migrate(
    tmp_path: Path, src_scenario: str | None, dst_scenario: str | None, seconds: float
) -> tuple[dict[str, object], int | None, dict[str, object]]:
    """A writer migrated between two virtual-clock processes with the scenarios; the
    source's query-migrate after ``seconds`` of clock steps, the destination's exit
    status (None: still running), and the source's query-migrate a step earlier."""
    workdir = Path(tempfile.mkdtemp(prefix="qmpdl-vtime-", dir=tmp_path))
    uri = f"unix:{workdir}/mig.sock"
    guest = ("-m", "64M", "--workload", "0:write,rate=100,wss=4M")
    src_opts = ("--scenario", src_scenario) if src_scenario else ()
    dst_opts = ("--scenario", dst_scenario) if dst_scenario else ()
    with (
        vm(*VIRTUAL, *guest, *dst_opts, "-incoming", uri, workdir=workdir, name="dst") as dst,
        vm(*VIRTUAL, *guest, *src_opts, workdir=workdir, name="src") as src,
    ):
        src.step(1.0)
        src.ok("migrate-set-parameters", **{"max-bandwidth": 20_000_000})
        src.ok("migrate", uri=uri)
        earlier: dict[str, object] = {}
        waited = 0.0
        while waited < seconds:
            earlier = src.ok("query-migrate")
            if earlier["status"] in ("completed", "failed"):
                break
            src.step(0.25)
            waited += 0.25
        final = src.ok("query-migrate")
        try:
            code: int | None = dst.proc.proc.wait(10)
        except subprocess.TimeoutExpired:
            code = None
    return final, code, earlier


def test_a_clean_migration_completes(tmp_path: Path) -> None:
    final, code, _ = _migrate(tmp_path, None, None, 10.0)
    assert final["status"] == "completed" and code is None


@pytest.mark.parametrize("when", ["offset=1000000", "after=0.05"])
def test_migration_stream_cut(tmp_path: Path, when: str) -> None:
    src = _file(tmp_path, f"[[faults]]\nkind='migration-stream'\naction='cut'\n{when}\n")
    final, code, _ = _migrate(tmp_path, src, None, 5.0)
    assert final["status"] == "failed"
    assert final["error-desc"] == "Unable to write to socket: Broken pipe"
    assert code == 1  # the destination's load failed


def test_migration_stream_corrupted(tmp_path: Path) -> None:
    src = _file(tmp_path, "[[faults]]\nkind='migration-stream'\naction='corrupt'\noffset=70000\n")
    final, code, _ = _migrate(tmp_path, src, None, 5.0)
    assert code == 1  # the destination found the damage
    assert final["status"] == "failed"


def test_migration_stream_slowed(tmp_path: Path) -> None:
    src = _file(
        tmp_path,
        "[[faults]]\nkind='migration-stream'\naction='slow'\noffset=0\nbandwidth=2000000\n",
    )
    final, _, _ = _migrate(tmp_path, src, None, 2.0)
    ram = final["ram"]
    assert final["status"] == "active"
    assert isinstance(ram, dict) and ram["transferred"] <= 2_000_000 * 2.5


def test_migration_stream_stalled_then_goes_on(tmp_path: Path) -> None:
    src = _file(
        tmp_path,
        "[[faults]]\nkind='migration-stream'\naction='stall'\nafter=0.05\nduration=3\n",
    )
    final, _, earlier = _migrate(tmp_path, src, None, 2.0)
    assert final["status"] == "active"
    assert final["ram"] == earlier["ram"]  # nothing moved while stalled
    done, code, _ = _migrate(tmp_path, src, None, 15.0)
    assert done["status"] == "completed" and code is None


def test_destination_refuses(tmp_path: Path) -> None:
    dst = _file(tmp_path, "[[faults]]\nkind='destination-refuse'\n")
    final, code, _ = _migrate(tmp_path, None, dst, 5.0)
    assert final["status"] == "failed"
    assert code == 1


def test_under_kvm_the_modelled_parts_say_so(tmp_path: Path) -> None:
    need_kvm()
    path = _file(tmp_path, "[[vcpus]]\ncpus='0'\nphases=[{at=0, kind='idle'}]\n")
    with vm("-accel", "kvm", "-m", "64M", "--scenario", path) as m:
        assert m.ok("query-status")["status"] == "running"
        text = m.proc.stderr()
    assert f"--scenario {path}:1: workload phases need simulated vCPUs" in text
