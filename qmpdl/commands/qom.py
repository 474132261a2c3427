"""qom-list and qom-get: the vCPU objects and the device and object containers
(:mod:`qmpdl.qemudata.qomtree`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qmpdl.commands.registry import CommandContext, qmp_command

if TYPE_CHECKING:
    from qmpdl.qapi.types_deferred import QomGetArgs, QomListArgs


@qmp_command("qom-list")
def qom_list(ctx: CommandContext, args: QomListArgs) -> list[Any]:
    return ctx.machine.vmstate.tree.listing(args.path)


@qmp_command("qom-get")
def qom_get(ctx: CommandContext, args: QomGetArgs) -> Any:
    return ctx.machine.vmstate.tree.get(args.path, args.property)
