"""query-block, query-named-block-nodes and query-blockstats: the disks of -blockdev
and -device (:mod:`qmpdl.qemudata.block`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qmpdl.commands.registry import CommandContext, qmp_command

if TYPE_CHECKING:
    from qmpdl.qapi.types_deferred import (
        QueryBlockArgs,
        QueryBlockstatsArgs,
        QueryNamedBlockNodesArgs,
    )
    from qmpdl.qemudata.block import BlockGraph


def _graph(ctx: CommandContext) -> BlockGraph:
    from qmpdl.qapi.schema import BuiltinType, ObjectType
    from qmpdl.qemudata.block import BlockGraph

    stats = ctx.schema.schema.types["BlockDeviceStats"]
    assert isinstance(stats, ObjectType)
    counters = [
        m.name
        for m in stats.members
        if not m.optional and isinstance(m.type, BuiltinType) and m.type.name == "int"
    ]
    return BlockGraph(ctx.machine.config, ctx.machine.profile, counters)


@qmp_command("query-block")
def query_block(ctx: CommandContext, args: QueryBlockArgs) -> list[Any]:
    return _graph(ctx).block_info()


@qmp_command("query-named-block-nodes")
def query_named_block_nodes(ctx: CommandContext, args: QueryNamedBlockNodesArgs) -> list[Any]:
    # no node has a backing image: flat or not, the nodes read the same
    return _graph(ctx).named_nodes()


@qmp_command("query-blockstats")
def query_blockstats(ctx: CommandContext, args: QueryBlockstatsArgs) -> list[Any]:
    return _graph(ctx).block_stats(query_nodes=bool(args.query_nodes))
