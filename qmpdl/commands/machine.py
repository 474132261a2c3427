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
from qmpdl.qemudata.vcpus import cpu_type, has_vcpus, vcpu_model, vcpu_qom_path


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


@qmp_command("query-cpus-fast")
def query_cpus_fast(ctx: CommandContext, args: QueryCpusFastArgs) -> list[CpuInfoFast]:
    machine = ctx.machine
    if not has_vcpus(machine.config):
        return []
    qom_type = cpu_type(vcpu_model(machine.config))
    with_type = machine.profile.has("cpuinfo-qom-type")
    topology = machine.config.topology
    return [
        CpuInfoFast(
            cpu_index=i,
            qom_type=qom_type if with_type else None,
            qom_path=vcpu_qom_path(i),
            thread_id=thread_id,
            props=CpuInstanceProperties(**topology.props(i)),
            target=SysEmuTarget.X86_64,
        )
        for i, thread_id in enumerate(machine.backend.thread_ids())
    ]


@qmp_command("query-kvm")
def query_kvm(ctx: CommandContext, args: QueryKvmArgs) -> KvmInfo:
    # sim and kvm present themselves as KVM (the sim backend emulates it); tcg does not.
    return KvmInfo(enabled=ctx.machine.accelerator.presents_as == "kvm", present=True)
