"""Run state and vCPU queries: query-status, stop, cont, query-cpus-fast, query-kvm."""

from __future__ import annotations

from qmpdl.commands.registry import CommandContext, qmp_command
from qmpdl.qapi.types import (
    ContArgs,
    CpuInfoFast,
    CpuInstanceProperties,
    KvmInfo,
    QueryCpusFastArgs,
    QueryKvmArgs,
    QueryStatusArgs,
    StatusInfo,
    StopArgs,
    SysEmuTarget,
)


@qmp_command("query-status")
def query_status(ctx: CommandContext, args: QueryStatusArgs) -> StatusInfo:
    machine = ctx.machine
    singlestep = None if machine.profile.has("statusinfo-singlestep-removed") else False
    return StatusInfo(running=machine.running, singlestep=singlestep, status=machine.runstate)


@qmp_command("stop", blocking=True)
def stop(ctx: CommandContext, args: StopArgs) -> None:
    ctx.machine.stop()


@qmp_command("cont", blocking=True)
def cont(ctx: CommandContext, args: ContArgs) -> None:
    ctx.machine.cont()


def _qom_device(cpu_index: int) -> int:
    """QOM child number of vCPU ``cpu_index`` on a pc board: device[1] is created
    between the first and the second vCPU."""
    return 0 if cpu_index == 0 else cpu_index + 1


@qmp_command("query-cpus-fast")
def query_cpus_fast(ctx: CommandContext, args: QueryCpusFastArgs) -> list[CpuInfoFast]:
    machine = ctx.machine
    with_type = machine.profile.has("cpuinfo-qom-type")
    topology = machine.config.topology
    return [
        CpuInfoFast(
            cpu_index=i,
            qom_type="qemu64-x86_64-cpu" if with_type else None,
            qom_path=f"/machine/unattached/device[{_qom_device(i)}]",
            thread_id=thread_id,
            props=CpuInstanceProperties(**topology.props(i)),
            target=SysEmuTarget.X86_64,
        )
        for i, thread_id in enumerate(machine.backend.thread_ids())
    ]


@qmp_command("query-kvm")
def query_kvm(ctx: CommandContext, args: QueryKvmArgs) -> KvmInfo:
    # sim and kvm present themselves as KVM (the sim backend emulates it); tcg does not.
    return KvmInfo(enabled=ctx.machine.config.accel.kind != "tcg", present=True)
