"""Results and event data: member order, optional members, versions, unions."""

from __future__ import annotations

import json

import pytest

from qmpdl.profile import get_profile
from qmpdl.qapi import OutputError, QapiSchema
from qmpdl.qapi.types import (
    CommandInfo,
    CpuInfoFast,
    CpuInfoFastVariantS390x,
    CpuInstanceProperties,
    CpuS390State,
    DirtyLimitInfo,
    DirtyRateInfo,
    DirtyRateMeasureMode,
    DirtyRateStatus,
    DirtyRateVcpu,
    KvmInfo,
    RunState,
    ShutdownCause,
    ShutdownEvent,
    StatusInfo,
    SysEmuTarget,
    TimeUnit,
    VersionInfo,
    VersionTriple,
    YankInstance,
    YankInstanceType,
    YankInstanceVariantBlockNode,
)
from qmpdl.qjson.qdict import qdict_order

Q72 = QapiSchema.load(get_profile("7.2"))
Q101 = QapiSchema.load(get_profile("10.1"))


def measured(unit: TimeUnit | None = TimeUnit.SECOND) -> DirtyRateInfo:
    return DirtyRateInfo(
        dirty_rate=10,
        status=DirtyRateStatus.MEASURED,
        start_time=711,
        calc_time=2,
        calc_time_unit=unit,
        sample_pages=0,
        mode=DirtyRateMeasureMode.DIRTY_RING,
        vcpu_dirty_rate=[DirtyRateVcpu(id=0, dirty_rate=10), DirtyRateVcpu(id=1, dirty_rate=0)],
    )


def test_members_in_schema_order_and_wire_order() -> None:
    value = Q72.return_value(
        "query-vcpu-dirty-limit",
        [DirtyLimitInfo(cpu_index=0, limit_rate=200, current_rate=10)],
    )
    assert json.dumps(value) == '[{"cpu-index": 0, "limit-rate": 200, "current-rate": 10}]'
    assert isinstance(value, list) and isinstance(value[0], dict)
    assert qdict_order(list(value[0])) == ["limit-rate", "current-rate", "cpu-index"]


def test_query_dirty_rate_per_version() -> None:
    old = Q72.return_value("query-dirty-rate", measured())
    new = Q101.return_value("query-dirty-rate", measured())
    assert isinstance(old, dict) and isinstance(new, dict)
    assert list(old) == [
        "dirty-rate",
        "status",
        "start-time",
        "calc-time",
        "sample-pages",
        "mode",
        "vcpu-dirty-rate",
    ]
    assert new["calc-time-unit"] == "second"
    # wire order of 7.2 (spec 2.5) and of 8.2+ with the unit
    assert qdict_order(list(old)) == [
        "vcpu-dirty-rate",
        "status",
        "sample-pages",
        "dirty-rate",
        "mode",
        "start-time",
        "calc-time",
    ]
    assert qdict_order(list(new)) == [
        "vcpu-dirty-rate",
        "status",
        "sample-pages",
        "dirty-rate",
        "mode",
        "calc-time-unit",
        "start-time",
        "calc-time",
    ]
    assert old["vcpu-dirty-rate"] == [{"id": 0, "dirty-rate": 10}, {"id": 1, "dirty-rate": 0}]
    with pytest.raises(OutputError, match="calc-time-unit"):
        Q101.return_value("query-dirty-rate", measured(unit=None))


def test_absent_optional_members_are_left_out() -> None:
    unstarted = DirtyRateInfo(
        status=DirtyRateStatus.UNSTARTED,
        start_time=0,
        calc_time=0,
        sample_pages=0,
        mode=DirtyRateMeasureMode.PAGE_SAMPLING,
    )
    assert Q72.return_value("query-dirty-rate", unstarted) == {
        "status": "unstarted",
        "start-time": 0,
        "calc-time": 0,
        "sample-pages": 0,
        "mode": "page-sampling",
    }


def test_query_status_singlestep_only_where_it_exists() -> None:
    status = StatusInfo(running=True, singlestep=False, status=RunState.RUNNING)
    assert Q72.return_value("query-status", status) == {
        "running": True,
        "singlestep": False,
        "status": "running",
    }
    assert Q101.return_value("query-status", status) == {"running": True, "status": "running"}
    with pytest.raises(OutputError, match="singlestep"):
        Q72.return_value("query-status", StatusInfo(running=True, status=RunState.PAUSED))


def test_commands_without_result_return_an_empty_object() -> None:
    assert Q72.return_value("stop", None) == {}
    with pytest.raises(OutputError):
        Q72.return_value("stop", 1)


def test_plain_values_and_nested_models() -> None:
    assert Q72.return_value("human-monitor-command", "ok\r\n") == "ok\r\n"
    version = VersionInfo(qemu=VersionTriple(major=7, minor=2, micro=22), package="Debian")
    assert Q72.return_value("query-version", version) == {
        "qemu": {"major": 7, "minor": 2, "micro": 22},
        "package": "Debian",
    }
    assert Q72.return_value("query-kvm", KvmInfo(enabled=True, present=True)) == {
        "enabled": True,
        "present": True,
    }
    assert Q72.return_value("query-commands", [CommandInfo(name="stop")]) == [{"name": "stop"}]


def test_unions_emit_the_branch_of_their_tag() -> None:
    cpu = CpuInfoFast(
        cpu_index=0,
        qom_type="qemu64-x86_64-cpu",
        qom_path="/machine/unattached/device[0]",
        thread_id=4242,
        props=CpuInstanceProperties(core_id=0, thread_id=0, socket_id=0),
        target=SysEmuTarget.X86_64,
    )
    old = Q72.return_value("query-cpus-fast", [cpu])
    new = Q101.return_value("query-cpus-fast", [cpu])
    assert old == [
        {
            "cpu-index": 0,
            "qom-path": "/machine/unattached/device[0]",
            "thread-id": 4242,
            "props": {"socket-id": 0, "core-id": 0, "thread-id": 0},
            "target": "x86_64",
        }
    ]
    assert isinstance(new, list) and isinstance(new[0], dict)
    assert list(new[0])[:3] == ["cpu-index", "qom-type", "qom-path"]
    s390 = CpuInfoFastVariantS390x(
        cpu_index=1,
        qom_path="/p",
        thread_id=1,
        target=SysEmuTarget.S390X,
        cpu_state=CpuS390State.OPERATING,
    )
    assert Q72.return_value("query-cpus-fast", [s390]) == [
        {
            "cpu-index": 1,
            "qom-path": "/p",
            "thread-id": 1,
            "target": "s390x",
            "cpu-state": "operating",
        }
    ]
    with pytest.raises(OutputError, match="cpu-state"):
        Q72.return_value("query-cpus-fast", [cpu.model_copy(update={"target": SysEmuTarget.S390X})])
    yank = [
        YankInstance(type=YankInstanceType.MIGRATION),
        YankInstanceVariantBlockNode(type=YankInstanceType.BLOCK_NODE, node_name="disk0"),
    ]
    assert Q72.return_value("query-yank", yank) == [
        {"type": "migration"},
        {"type": "block-node", "node-name": "disk0"},
    ]


def test_values_outside_the_schema_are_bugs() -> None:
    with pytest.raises(OutputError, match="uint64"):
        Q72.return_value(
            "query-vcpu-dirty-limit", [DirtyLimitInfo(cpu_index=0, limit_rate=-1, current_rate=0)]
        )
    with pytest.raises(OutputError, match="not a valid int"):
        Q72.return_value(
            "query-vcpu-dirty-limit", [{"cpu-index": True, "limit-rate": 1, "current-rate": 0}]
        )
    with pytest.raises(OutputError, match="cris"):
        Q101.return_value(
            "query-cpus-fast",
            [
                {
                    "cpu-index": 0,
                    "qom-type": "t",
                    "qom-path": "/p",
                    "thread-id": 1,
                    "target": "cris",
                }
            ],
        )
    with pytest.raises(OutputError, match="expected StatusInfo"):
        Q72.return_value("query-status", "running")


def test_event_data() -> None:
    shutdown = ShutdownEvent(guest=False, reason=ShutdownCause.HOST_QMP_QUIT)
    assert Q72.event_data("SHUTDOWN", shutdown) == {"guest": False, "reason": "host-qmp-quit"}
    assert Q72.event_data("STOP", None) is None
    assert Q72.event_data("RESUME", None) is None
    with pytest.raises(OutputError):
        Q72.event_data("SHUTDOWN", None)
    with pytest.raises(OutputError):
        Q72.event_data("STOP", shutdown)
    with pytest.raises(KeyError):
        Q72.event_data("NO_SUCH_EVENT", None)


def test_mappings_with_qapi_names_work_too() -> None:
    assert Q72.return_value("query-kvm", {"present": True, "enabled": False}) == {
        "enabled": False,
        "present": True,
    }
