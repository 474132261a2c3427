"""The virtual machine as libvirt sees it at domain start: name, UUID, vCPU slots,
I/O threads, guest event actions, reset and power button."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qmpdl.commands.registry import CommandContext, qmp_command
from qmpdl.errors import QMPError
from qmpdl.qapi.types import CpuInstanceProperties, RunState

if TYPE_CHECKING:
    from qmpdl.qapi.types_deferred import (
        QueryHotpluggableCpusArgs,
        QueryIothreadsArgs,
        QueryNameArgs,
        QueryUuidArgs,
        SetActionArgs,
        SystemPowerdownArgs,
        SystemResetArgs,
    )

#: QEMU's UUID when -uuid was not given.
NIL_UUID = "00000000-0000-0000-0000-000000000000"
#: An I/O thread's busy-poll limit when -object iothread does not set one (ns).
IOTHREAD_POLL_MAX_NS = 32768
#: The I/O thread properties query-iothreads reports, with QEMU's defaults.
_IOTHREAD_DEFAULTS = {
    "poll-max-ns": IOTHREAD_POLL_MAX_NS,
    "poll-grow": 0,
    "poll-shrink": 0,
    "aio-max-batch": 0,
}
#: Run states a reset leaves alone; from any other one the VM is in prelaunch after.
_KEEP_AFTER_RESET = (RunState.RUNNING, RunState.INMIGRATE, RunState.FINISH_MIGRATE)


@qmp_command("query-name")
def query_name(ctx: CommandContext, args: QueryNameArgs) -> dict[str, Any]:
    name = ctx.machine.config.name
    return {} if name is None else {"name": name}


@qmp_command("query-uuid")
def query_uuid(ctx: CommandContext, args: QueryUuidArgs) -> dict[str, Any]:
    return {"UUID": ctx.machine.config.uuid or NIL_UUID}


@qmp_command("query-hotpluggable-cpus")
def query_hotpluggable_cpus(ctx: CommandContext, args: QueryHotpluggableCpusArgs) -> list[Any]:
    from qmpdl.qemudata.machines import machine_info
    from qmpdl.qemudata.vcpus import cpu_type, vcpu_model, vcpu_qom_path

    config = ctx.machine.config
    info = machine_info(ctx.machine.profile, config.machine_type)
    if info is None or not info["hotpluggable-cpus"]:
        if ctx.machine.profile.has("hotpluggable-cpus-error-text"):
            raise QMPError("machine does not support hot-plugging CPUs")
        raise QMPError("The feature 'query-hotpluggable-cpus' is not enabled")
    topology = config.topology
    typename = cpu_type(vcpu_model(config))
    slots: list[Any] = []
    for i in range(config.max_cpus):
        slot: dict[str, Any] = {
            "type": typename,
            "vcpus-count": 1,
            "props": CpuInstanceProperties(**topology.props(i)),
        }
        if i < config.cpus:
            slot["qom-path"] = vcpu_qom_path(i)
        slots.append(slot)
    # QEMU builds the list by prepending, slot by slot
    return slots[::-1]


@qmp_command("query-iothreads")
def query_iothreads(ctx: CommandContext, args: QueryIothreadsArgs) -> list[Any]:
    import threading

    from qmpdl.qapi.ghash import GStrHashTable

    threads = {str(o["id"]): o for o in ctx.machine.config.objects if o["qom-type"] == "iothread"}
    if not threads:
        return []
    # /objects' children in its hash table's order (QEMU walks the table); qmpdl runs
    # no I/O threads: each reports the thread that serves the monitor
    order = [str(o["id"]) for o in ctx.machine.config.objects]
    out = []
    for name in GStrHashTable(order):
        if name in threads:
            props = threads[name]
            info: dict[str, Any] = {"id": name, "thread-id": threading.get_native_id()}
            info |= {k: int(props.get(k, default)) for k, default in _IOTHREAD_DEFAULTS.items()}
            out.append(info)
    return out


@qmp_command("set-action")
def set_action(ctx: CommandContext, args: SetActionArgs) -> None:
    from qmpdl.qemudata.vmstate import state_of

    actions = state_of(ctx.machine).actions
    for name in ("reboot", "panic", "watchdog", "shutdown"):
        value = getattr(args, name)
        if value is not None:
            setattr(actions, name, value.value)


@qmp_command("system_reset")
def system_reset(ctx: CommandContext, args: SystemResetArgs) -> None:
    from qmpdl.qemudata.vmstate import state_of

    machine = ctx.machine
    if state_of(machine).actions.reboot == "shutdown":
        machine.request_shutdown("host-qmp-system-reset")
        return
    machine.events.emit("RESET", {"guest": False, "reason": "host-qmp-system-reset"})
    if machine.runstate not in _KEEP_AFTER_RESET:
        machine.set_runstate(RunState.PRELAUNCH)


@qmp_command("system_powerdown")
def system_powerdown(ctx: CommandContext, args: SystemPowerdownArgs) -> None:
    # The power button: what happens next is up to the guest, and qmpdl's guests
    # have no ACPI driver (as a guest without an operating system).
    ctx.machine.events.emit("POWERDOWN")
