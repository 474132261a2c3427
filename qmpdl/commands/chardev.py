"""query-chardev: the character devices as the server keeps them (see qmpdl.vm.chardevs)."""

from __future__ import annotations

from qmpdl.commands.registry import CommandContext, qmp_command
from qmpdl.qapi.types import ChardevInfo, QueryChardevArgs


@qmp_command("query-chardev")
def query_chardev(ctx: CommandContext, args: QueryChardevArgs) -> list[ChardevInfo]:
    return [
        ChardevInfo(label=c.label, filename=c.filename, frontend_open=c.frontend_open)
        for c in ctx.machine.chardevs.query()
    ]
