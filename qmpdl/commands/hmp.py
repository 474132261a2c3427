"""human-monitor-command: the HMP line runs in :mod:`qmpdl.hmp`, which calls back into QMP.

:mod:`qmpdl.hmp` is imported when the first line runs (most runs have none).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from qmpdl.commands.registry import CommandContext, qmp_command
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.qapi.types import HumanMonitorCommandArgs

if TYPE_CHECKING:
    from qmpdl.backend.base import VcpuBackend
    from qmpdl.commands.executor import CommandExecutor
    from qmpdl.hmp import DumpDefaults, MemoryReader
    from qmpdl.system.machine import Machine

#: The memory dump format each machine's monitors remember (QEMU: one per process).
_DUMP_DEFAULTS: weakref.WeakKeyDictionary[Machine, DumpDefaults] = weakref.WeakKeyDictionary()


def guest_memory(backend: VcpuBackend) -> MemoryReader:
    """Guest physical memory as ``x``/``xp`` read it: the backend's RAM from address 0,
    nothing mapped beyond it (QEMU: ``Cannot access memory``)."""

    def read(addr: int, size: int) -> bytes:
        end = min(addr + size, backend.ram_size)
        return backend.read_physical(addr, end - addr) if addr < end else b""

    return read


@qmp_command("human-monitor-command", blocking=True)
def human_monitor_command(ctx: CommandContext, args: HumanMonitorCommandArgs) -> str:
    from qmpdl.cint import to_i32
    from qmpdl.hmp import cpu_index_error

    # QEMU's monitor_set_cpu() takes a C int: 2^32 means vCPU 0.
    cpu_index = None if args.cpu_index is None else to_i32(args.cpu_index)
    if cpu_index is not None and not 0 <= cpu_index < ctx.machine.backend.nr_vcpus:
        raise cpu_index_error()
    return run_line(ctx.machine, ctx.executor, args.command_line, cpu_index)[0]


def run_line(
    machine: Machine, executor: CommandExecutor, line: str, cpu_index: int | None
) -> tuple[str, int | None]:
    """One HMP command line on a monitor whose current CPU is ``cpu_index``: its output
    and the monitor's current CPU after it (``human-monitor-command``'s monitor lives
    for one line; a readline monitor keeps it)."""
    from qmpdl.hmp import DumpDefaults
    from qmpdl.hmp.monitor import execute_line

    def qmp(command: str, arguments: JsonObject) -> JsonValue:
        return executor.call_sync(command, arguments, None)

    registers = None

    def register(name: str) -> int | None:
        # Read the current vCPU's registers once per command line, when first needed.
        nonlocal registers
        if registers is None:
            registers = machine.backend.registers(cpu_index or 0)
        return registers.lookup(name)

    dump_defaults = _DUMP_DEFAULTS.setdefault(machine, DumpDefaults())
    return execute_line(
        line,
        profile=machine.profile,
        qmp=qmp,
        cpu_index=cpu_index,
        registers=register,
        migration_globals=machine.migration_config.globals,
        memory=guest_memory(machine.backend),
        dump_defaults=dump_defaults,
    )
