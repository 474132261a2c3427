"""set-vcpu-dirty-limit, cancel-vcpu-dirty-limit, query-vcpu-dirty-limit."""

from __future__ import annotations

from qmpdl.commands.registry import CommandContext, qmp_command
from qmpdl.qapi.types import (
    CancelVcpuDirtyLimitArgs,
    DirtyLimitInfo,
    QueryVcpuDirtyLimitArgs,
    SetVcpuDirtyLimitArgs,
)

_U64 = (1 << 64) - 1


@qmp_command("set-vcpu-dirty-limit", blocking=True)
def set_vcpu_dirty_limit(ctx: CommandContext, args: SetVcpuDirtyLimitArgs) -> None:
    # QAPI accepts negative numbers for uint64 and casts them.
    ctx.machine.dirtylimit.set_vcpu_dirty_limit(args.cpu_index, args.dirty_rate & _U64)


@qmp_command("cancel-vcpu-dirty-limit", blocking=True)
def cancel_vcpu_dirty_limit(ctx: CommandContext, args: CancelVcpuDirtyLimitArgs) -> None:
    ctx.machine.dirtylimit.cancel_vcpu_dirty_limit(args.cpu_index)


@qmp_command("query-vcpu-dirty-limit")
def query_vcpu_dirty_limit(
    ctx: CommandContext, args: QueryVcpuDirtyLimitArgs
) -> list[DirtyLimitInfo]:
    return ctx.machine.dirtylimit.query_vcpu_dirty_limit()
