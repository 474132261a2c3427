"""set-vcpu-dirty-limit, cancel-vcpu-dirty-limit, query-vcpu-dirty-limit."""

from __future__ import annotations

from qmpdl.cint import to_i32, to_u64
from qmpdl.commands.registry import CommandContext, qmp_command
from qmpdl.qapi.types import (
    CancelVcpuDirtyLimitArgs,
    DirtyLimitInfo,
    QueryVcpuDirtyLimitArgs,
    SetVcpuDirtyLimitArgs,
)


def _c_int(cpu_index: int | None) -> int | None:
    """QEMU checks and uses ``cpu-index`` as a C ``int``: 2^32 means vCPU 0."""
    return None if cpu_index is None else to_i32(cpu_index)


@qmp_command("set-vcpu-dirty-limit", blocking=True)
def set_vcpu_dirty_limit(ctx: CommandContext, args: SetVcpuDirtyLimitArgs) -> None:
    # QAPI accepts negative numbers for uint64 and casts them.
    ctx.machine.dirtylimit.set_vcpu_dirty_limit(_c_int(args.cpu_index), to_u64(args.dirty_rate))


@qmp_command("cancel-vcpu-dirty-limit", blocking=True)
def cancel_vcpu_dirty_limit(ctx: CommandContext, args: CancelVcpuDirtyLimitArgs) -> None:
    ctx.machine.dirtylimit.cancel_vcpu_dirty_limit(_c_int(args.cpu_index))


@qmp_command("query-vcpu-dirty-limit")
def query_vcpu_dirty_limit(
    ctx: CommandContext, args: QueryVcpuDirtyLimitArgs
) -> list[DirtyLimitInfo]:
    return ctx.machine.dirtylimit.query_vcpu_dirty_limit()
