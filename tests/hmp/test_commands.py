"""Each served command: the QMP calls it makes and the text it prints, per profile.

7.2 texts are also covered live by the golden file; the newer profiles follow the spec
(sections 3 and 7) and QEMU's source.
"""

from __future__ import annotations

import pytest

from qmpdl.errors import QMPError
from qmpdl.hmp import cpu_index_error, execute
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.profile import Profile, get_profile
from tests.hmp.fakes import FakeQmp

P72 = get_profile("7.2")
P81 = get_profile("8.1")
P82 = get_profile("8.2")
P101 = get_profile("10.1")
HINT = "[Please use 'info vcpu_dirty_limit' to query dirty limit for virtual CPU]\r\n"
ALL_PROFILES = [P72, P81, P82, get_profile("9.0"), P101]


def run(
    line: str,
    profile: Profile = P72,
    replies: dict[str, JsonValue | QMPError] | None = None,
    cpu_index: int | None = None,
) -> tuple[str, list[tuple[str, JsonObject]]]:
    qmp = FakeQmp(replies or {})
    return execute(line, profile=profile, qmp=qmp, cpu_index=cpu_index), qmp.calls


def fail(desc: str) -> QMPError:
    return QMPError(desc)


# --- stop / cont / quit --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("stop", "stop"),
        ("s", "stop"),
        ("quit", "quit"),
        ("q", "quit"),
        ("cont", "cont"),
        ("c", "cont"),
    ],
)
def test_run_state_commands_print_nothing(line: str, name: str) -> None:
    assert run(line) == ("", [(name, {})])


def test_stop_and_quit_ignore_errors_cont_reports_them() -> None:
    replies: dict[str, JsonValue | QMPError] = {
        "stop": fail("x"),
        "quit": fail("y"),
        "cont": fail("Resetting the Virtual Machine is required"),
    }
    assert run("stop", replies=replies)[0] == ""
    assert run("quit", replies=replies)[0] == ""
    assert run("cont", replies=replies)[0] == (
        "Error: Resetting the Virtual Machine is required\r\n"
    )


# --- info status / version / kvm / cpus ----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "text"),
    [
        ({"status": "running", "singlestep": False, "running": True}, "VM status: running"),
        ({"status": "paused", "singlestep": False, "running": False}, "VM status: paused"),
        (
            {"status": "shutdown", "singlestep": False, "running": False},
            "VM status: paused (shutdown)",
        ),
        (
            {"status": "prelaunch", "singlestep": False, "running": False},
            "VM status: paused (prelaunch)",
        ),
        (
            {"status": "running", "singlestep": True, "running": True},
            "VM status: running (single step mode)",
        ),
        (
            {"status": "inmigrate", "singlestep": True, "running": False},
            "VM status: paused (single step mode) (inmigrate)",
        ),
    ],
)
def test_info_status(status: JsonObject, text: str) -> None:
    assert run("info status", replies={"query-status": status}) == (
        text + "\r\n",
        [("query-status", {})],
    )


def test_info_status_drops_single_step_from_8_1() -> None:
    status: JsonObject = {"status": "running", "singlestep": True, "running": True}
    assert run("info status", P81, {"query-status": status})[0] == "VM status: running\r\n"
    newer: JsonObject = {"status": "paused", "running": False}
    assert run("info status", P101, {"query-status": newer})[0] == "VM status: paused\r\n"


def test_info_version_glues_the_package_on() -> None:
    version: JsonObject = {
        "qemu": {"micro": 22, "minor": 2, "major": 7},
        "package": "Debian 1:7.2+dfsg-7+deb12u18+b3",
    }
    assert run("info version", replies={"query-version": version}) == (
        "7.2.22Debian 1:7.2+dfsg-7+deb12u18+b3\r\n",
        [("query-version", {})],
    )
    upstream: JsonObject = {"qemu": {"micro": 0, "minor": 1, "major": 10}, "package": ""}
    assert run("info version", P101, {"query-version": upstream})[0] == "10.1.0\r\n"


@pytest.mark.parametrize(
    ("kvm", "text"),
    [
        ({"enabled": True, "present": True}, "kvm support: enabled\r\n"),
        ({"enabled": False, "present": True}, "kvm support: disabled\r\n"),
        ({"enabled": False, "present": False}, "kvm support: not compiled\r\n"),
    ],
)
def test_info_kvm(kvm: JsonObject, text: str) -> None:
    assert run("info kvm", replies={"query-kvm": kvm}) == (text, [("query-kvm", {})])


def _cpus(*indexes: int) -> list[JsonValue]:
    return [
        {
            "thread-id": 6887 + index,
            "props": {"core-id": index, "thread-id": 0, "socket-id": 0},
            "qom-path": f"/machine/unattached/device[{index}]",
            "cpu-index": index,
            "target": "x86_64",
            "qom-type": "qemu64-x86_64-cpu",
        }
        for index in indexes
    ]


def test_info_cpus_marks_the_current_cpu() -> None:
    replies: dict[str, JsonValue | QMPError] = {"query-cpus-fast": _cpus(0, 1)}
    assert run("info cpus", replies=replies) == (
        "* CPU #0: thread_id=6887\r\n  CPU #1: thread_id=6888\r\n",
        [("query-cpus-fast", {})],
    )
    assert run("info cpus", replies=replies, cpu_index=1)[0] == (
        "  CPU #0: thread_id=6887\r\n* CPU #1: thread_id=6888\r\n"
    )


def test_info_cpus_default_is_the_first_cpu_listed() -> None:
    out = run("info cpus", replies={"query-cpus-fast": _cpus(3, 2)})[0]
    assert out == "* CPU #3: thread_id=6890\r\n  CPU #2: thread_id=6889\r\n"
    assert run("info cpus", replies={"query-cpus-fast": []})[0] == ""


def test_info_cpus_shows_the_model_from_10_1() -> None:
    cpus = _cpus(0, 1)
    other = cpus[1]
    assert isinstance(other, dict)
    other["qom-type"] = "host-x86_64-cpu"
    out = run("info cpus", P101, {"query-cpus-fast": cpus})[0]
    assert out == (
        "* CPU #0: thread_id=6887 model=qemu64\r\n  CPU #1: thread_id=6888 model=host\r\n"
    )
    assert run("info cpus", get_profile("9.0"), {"query-cpus-fast": cpus})[0] == (
        "* CPU #0: thread_id=6887\r\n  CPU #1: thread_id=6888\r\n"
    )


def test_info_queries_report_errors() -> None:
    out = run("info kvm", replies={"query-kvm": fail("boom")})[0]
    assert out == "Error: boom\r\n"


# --- dirty limit ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "arguments"),
    [
        ("set_vcpu_dirty_limit 100", {"dirty-rate": 100}),
        ("set_vcpu_dirty_limit 100 1", {"cpu-index": 1, "dirty-rate": 100}),
        ("set_vcpu_dirty_limit 100 (-1)", {"dirty-rate": 100}),  # -1 means every vCPU
        ("set_vcpu_dirty_limit 100 -1", {"dirty-rate": 99}),  # one expression
        ("set_vcpu_dirty_limit 100 (-2)", {"cpu-index": -2, "dirty-rate": 100}),
        ("set_vcpu_dirty_limit 0", {"dirty-rate": 0}),
        ("set_vcpu_dirty_limit -5", {"dirty-rate": (1 << 64) - 5}),  # 7.2 casts
        ("set_vcpu_dirty_limit 0x10 0", {"cpu-index": 0, "dirty-rate": 16}),
    ],
)
def test_set_vcpu_dirty_limit_7_2(line: str, arguments: JsonObject) -> None:
    assert run(line) == (HINT, [("set-vcpu-dirty-limit", arguments)])


def test_set_vcpu_dirty_limit_errors() -> None:
    desc = "dirty page limit feature requires KVM with accelerator property 'dirty-ring-size' set'"
    for profile in ALL_PROFILES:
        out = run("set_vcpu_dirty_limit 1", profile, {"set-vcpu-dirty-limit": fail(desc)})[0]
        assert out == f"Error: {desc}\r\n"


def test_set_vcpu_dirty_limit_is_quiet_from_8_1() -> None:
    for profile in (P81, P82, P101):
        assert run("set_vcpu_dirty_limit 200 1", profile) == (
            "",
            [("set-vcpu-dirty-limit", {"cpu-index": 1, "dirty-rate": 200})],
        )
        assert run("set_vcpu_dirty_limit -5", profile) == (
            "Error: invalid dirty page limit -5\r\n",
            [],
        )
        assert run("set_vcpu_dirty_limit 0 - 9223372036854775807 - 1", profile)[0] == (
            "Error: invalid dirty page limit -9223372036854775808\r\n"
        )


def test_cancel_vcpu_dirty_limit() -> None:
    for profile in ALL_PROFILES:
        assert run("cancel_vcpu_dirty_limit", profile) == (
            HINT,
            [("cancel-vcpu-dirty-limit", {})],
        )
        assert run("cancel_vcpu_dirty_limit 1", profile) == (
            HINT,
            [("cancel-vcpu-dirty-limit", {"cpu-index": 1})],
        )
        assert run("cancel_vcpu_dirty_limit -1", profile)[1] == [("cancel-vcpu-dirty-limit", {})]
        replies: dict[str, JsonValue | QMPError] = {
            "cancel-vcpu-dirty-limit": fail("incorrect cpu index specified")
        }
        assert run("cancel_vcpu_dirty_limit 9", profile, replies)[0] == (
            "Error: incorrect cpu index specified\r\n"
        )


def test_info_vcpu_dirty_limit() -> None:
    limits: list[JsonValue] = [
        {"limit-rate": 200, "current-rate": 10, "cpu-index": 0},
        {"limit-rate": (1 << 64) - 5, "current-rate": 0, "cpu-index": 1},
    ]
    for profile in ALL_PROFILES:
        assert run("info vcpu_dirty_limit", profile, {"query-vcpu-dirty-limit": limits}) == (
            "vcpu[0], limit rate 200 (MB/s), current rate 10 (MB/s)\r\n"
            "vcpu[1], limit rate -5 (MB/s), current rate 0 (MB/s)\r\n",
            [("query-vcpu-dirty-limit", {})],
        )
        assert run("info vcpu_dirty_limit", profile, {"query-vcpu-dirty-limit": []})[0] == (
            "Dirty page limit not enabled!\r\n"
        )


# --- dirty rate ----------------------------------------------------------------------------


STARTED = (
    "Starting dirty rate measurement with period {} seconds\r\n"
    "[Please use 'info dirty_rate' to check results]\r\n"
)


@pytest.mark.parametrize(
    ("line", "arguments"),
    [
        ("calc_dirty_rate 1", {"calc-time": 1, "mode": "page-sampling"}),
        ("calc_dirty_rate 2 256", {"calc-time": 2, "sample-pages": 256, "mode": "page-sampling"}),
        ("calc_dirty_rate 1 (-1)", {"calc-time": 1, "mode": "page-sampling"}),
        ("calc_dirty_rate -r 1", {"calc-time": 1, "mode": "dirty-ring"}),
        ("calc_dirty_rate -b 3", {"calc-time": 3, "mode": "dirty-bitmap"}),
        ("calc_dirty_rate -r1", {"calc-time": 1, "mode": "dirty-ring"}),
        ("calc_dirty_rate (-1)", {"calc-time": -1, "mode": "page-sampling"}),
    ],
)
def test_calc_dirty_rate(line: str, arguments: JsonObject) -> None:
    seconds = arguments["calc-time"]
    for profile in ALL_PROFILES:
        assert run(line, profile) == (
            STARTED.format(seconds),
            [("calc-dirty-rate", arguments)],
        )


@pytest.mark.parametrize(
    ("line", "text"),
    [
        ("calc_dirty_rate 0", "Incorrect period length specified!\r\n"),
        ("calc_dirty_rate 1 -1", "Incorrect period length specified!\r\n"),
        ("calc_dirty_rate -r -b 1", "Either dirty ring or dirty bitmap can be specified!\r\n"),
    ],
)
def test_calc_dirty_rate_refused_before_qmp(line: str, text: str) -> None:
    assert run(line) == (text, [])


def test_calc_dirty_rate_qmp_errors() -> None:
    desc = "Calculation time is out of range [50ms, 60000ms]."
    out = run("calc_dirty_rate 61", P82, {"calc-dirty-rate": fail(desc)})
    assert out == (
        f"Error: {desc}\r\n",
        [("calc-dirty-rate", {"calc-time": 61, "mode": "page-sampling"})],
    )


def _rate(fields: JsonObject | None = None) -> JsonObject:
    base: JsonObject = {
        "status": "measured",
        "sample-pages": 512,
        "dirty-rate": 10,
        "mode": "page-sampling",
        "start-time": 608,
        "calc-time": 1,
    }
    return base | (fields or {})


def test_info_dirty_rate_unstarted() -> None:
    unstarted = _rate({"status": "unstarted", "sample-pages": 0, "start-time": 0, "calc-time": 0})
    del unstarted["dirty-rate"]
    for profile in ALL_PROFILES:
        assert run("info dirty_rate", profile, {"query-dirty-rate": unstarted}) == (
            "Status: unstarted\r\nStart Time: 0 (ms)\r\nSample Pages: 0 (per GB)\r\n"
            "Period: 0 (sec)\r\nMode: page-sampling\r\nDirty rate: (not ready)\r\n",
            [("query-dirty-rate", {})],
        )


def test_info_dirty_rate_page_sampling() -> None:
    for profile in ALL_PROFILES:
        assert run("info dirty_rate", profile, {"query-dirty-rate": _rate()})[0] == (
            "Status: measured\r\nStart Time: 608 (ms)\r\nSample Pages: 512 (per GB)\r\n"
            "Period: 1 (sec)\r\nMode: page-sampling\r\nDirty rate: 10 (MB/s)\r\n"
        )
    nothing = _rate({"dirty-rate": -1})
    assert (
        "Dirty rate: -1 (MB/s)\r\n"
        in run("info dirty_rate", replies={"query-dirty-rate": nothing})[0]
    )


RING = _rate(
    {
        "mode": "dirty-ring",
        "sample-pages": 0,
        "vcpu-dirty-rate": [{"dirty-rate": 10, "id": 0}, {"dirty-rate": 0, "id": 1}],
    }
)


def test_info_dirty_rate_dirty_ring_7_2_keeps_sample_pages() -> None:
    assert run("info dirty_rate", P72, {"query-dirty-rate": RING})[0] == (
        "Status: measured\r\nStart Time: 608 (ms)\r\nSample Pages: 0 (per GB)\r\n"
        "Period: 1 (sec)\r\nMode: dirty-ring\r\nDirty rate: 10 (MB/s)\r\n"
        "vcpu[0], Dirty rate: 10 (MB/s)\r\nvcpu[1], Dirty rate: 0 (MB/s)\r\n"
    )


def test_info_dirty_rate_sample_pages_only_for_page_sampling_from_8_1() -> None:
    for profile in (P81, P82, P101):
        assert run("info dirty_rate", profile, {"query-dirty-rate": RING})[0] == (
            "Status: measured\r\nStart Time: 608 (ms)\r\n"
            "Period: 1 (sec)\r\nMode: dirty-ring\r\nDirty rate: 10 (MB/s)\r\n"
            "vcpu[0], Dirty rate: 10 (MB/s)\r\nvcpu[1], Dirty rate: 0 (MB/s)\r\n"
        )
        measuring = _rate({"status": "measuring", "mode": "dirty-bitmap"})
        del measuring["dirty-rate"]
        assert run("info dirty_rate", profile, {"query-dirty-rate": measuring})[0] == (
            "Status: measuring\r\nStart Time: 608 (ms)\r\nPeriod: 1 (sec)\r\n"
            "Mode: dirty-bitmap\r\nDirty rate: (not ready)\r\n"
        )


def test_info_dirty_rate_8_2_uses_the_seconds_view() -> None:
    # From 8.2 start-time is epoch seconds and calc-time the measured, truncated seconds;
    # the monitor asks with the default unit and prints what it gets.
    info = _rate({"start-time": 1693900454, "calc-time": 0, "calc-time-unit": "second"})
    out, calls = run("info dirty_rate", P82, {"query-dirty-rate": info})
    assert calls == [("query-dirty-rate", {})]
    assert "Start Time: 1693900454 (ms)\r\n" in out
    assert "Period: 0 (sec)\r\n" in out


def test_cpu_index_error_text() -> None:
    err = cpu_index_error()
    assert (err.desc, err.error_class) == (
        "Parameter 'cpu-index' expects a CPU number",
        "GenericError",
    )


@pytest.mark.parametrize(
    ("line", "text"),
    [
        # Recorded from QEMU 7.2 with -smp 2 through human-monitor-command.
        ("cpu 0", ""),
        ("cpu 1", ""),
        ("cpu 0x1", ""),
        ("cpu 5", "invalid CPU index\r\n"),
        (
            "cpu -1",
            "'cpu' has failed: integer is for 32-bit values\r\n"
            'Try "help cpu" for more information\r\n',
        ),
        ("cpu", 'unexpected end of expression\r\nTry "help cpu" for more information\r\n'),
        ("cpu abc", "invalid char 'a' in expression\r\nTry \"help cpu\" for more information\r\n"),
        (
            "cpu 1 2",
            "cpu: extraneous characters at the end of line\r\n"
            'Try "help cpu" for more information\r\n',
        ),
        ("help cpu", "cpu index -- set the default CPU\r\n"),
    ],
)
def test_cpu_selects_an_existing_vcpu(line: str, text: str) -> None:
    cpus: JsonValue = [{"cpu-index": 0}, {"cpu-index": 1}]
    out, _ = run(line, replies={"query-cpus-fast": cpus})
    assert out == text
