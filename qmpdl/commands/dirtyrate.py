"""calc-dirty-rate and query-dirty-rate."""

from __future__ import annotations

from qmpdl.commands.registry import CommandContext, qmp_command
from qmpdl.qapi.types import CalcDirtyRateArgs, DirtyRateInfo, QueryDirtyRateArgs


@qmp_command("calc-dirty-rate")
def calc_dirty_rate(ctx: CommandContext, args: CalcDirtyRateArgs) -> None:
    ctx.machine.dirtyrate.calc_dirty_rate(
        args.calc_time, args.calc_time_unit, args.sample_pages, args.mode
    )


@qmp_command("query-dirty-rate")
def query_dirty_rate(ctx: CommandContext, args: QueryDirtyRateArgs) -> DirtyRateInfo:
    return ctx.machine.dirtyrate.query_dirty_rate(args.calc_time_unit)
