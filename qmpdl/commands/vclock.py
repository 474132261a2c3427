"""``__com.qmpdl_clock-step`` and ``__com.qmpdl_query-clock`` (schema:
``schema/qmpdl-vtime.json``; they exist only under ``-accel sim,clock=virtual``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qmpdl.commands.registry import CommandContext, qmp_command
from qmpdl.errors import QMPError
from qmpdl.qapi.types import ComQmpdlClockStepArgs, ComQmpdlQueryClockArgs, QmpdlClockInfo

if TYPE_CHECKING:
    from qmpdl.vtime.clock import SteppedClock


def _clock(ctx: CommandContext) -> SteppedClock:
    from qmpdl.vtime.clock import SteppedClock  # the machine's clock is one

    clock = ctx.machine.clock
    if not isinstance(clock, SteppedClock):  # the schema has the commands only then
        raise QMPError("the machine does not run on a virtual clock")
    return clock


def clock_info(ctx: CommandContext) -> QmpdlClockInfo:
    clock = _clock(ctx)
    deadline = clock.next_deadline()
    seed = ctx.machine.config.seed
    return QmpdlClockInfo(
        time_ns=clock.now_ns(),
        wall_ns=round(clock.wall() * 1e9),
        next_deadline_ns=None if deadline is None else round(deadline * 1e9),
        seed=seed,
    )


@qmp_command("__com.qmpdl_clock-step")
def clock_step(ctx: CommandContext, args: ComQmpdlClockStepArgs) -> QmpdlClockInfo:
    clock = _clock(ctx)
    if args.ns is not None and args.ns < 0:
        raise QMPError("Parameter 'ns' expects a value of 0 or more")
    # machine threads and timers take the BQL when QEMU's would
    with ctx.machine.bql.dropped():
        clock.step(None if args.ns is None else args.ns / 1e9)
    return clock_info(ctx)


@qmp_command("__com.qmpdl_query-clock")
def query_clock(ctx: CommandContext, args: ComQmpdlQueryClockArgs) -> QmpdlClockInfo:
    return clock_info(ctx)
