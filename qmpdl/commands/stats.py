"""query-stats and query-stats-schemas (:mod:`qmpdl.qemudata.stats`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qmpdl.commands.registry import CommandContext, qmp_command

if TYPE_CHECKING:
    from qmpdl.qapi.types_deferred import QueryStatsSchemasArgs, StatsFilter


@qmp_command("query-stats")
def query_stats(ctx: CommandContext, args: StatsFilter) -> list[Any]:
    from qmpdl.qemudata.stats import query
    from qmpdl.qemudata.vcpus import has_vcpus, vcpu_qom_path
    from qmpdl.qemudata.vmstate import state_of

    config = ctx.machine.config
    vcpus = [(i, vcpu_qom_path(i)) for i in range(config.cpus)] if has_vcpus(config) else []
    wanted = getattr(args, "vcpus", None)
    if wanted is not None:
        vcpus = [(i, path) for i, path in vcpus if path in wanted]
    requests = None
    if args.providers is not None:
        requests = [(r.provider.value, r.names) for r in args.providers]
    return query(state_of(ctx.machine).stats, args.target.value, requests, vcpus)


@qmp_command("query-stats-schemas")
def query_stats_schemas(ctx: CommandContext, args: QueryStatsSchemasArgs) -> list[Any]:
    from qmpdl.qemudata.stats import cryptodev_schemas, schemas
    from qmpdl.qemudata.vcpus import has_vcpus
    from qmpdl.qemudata.vmstate import state_of

    return schemas(
        state_of(ctx.machine).stats,
        vcpus=has_vcpus(ctx.machine.config),
        provider=None if args.provider is None else args.provider.value,
        cryptodev=cryptodev_schemas(ctx.machine.profile),
    )
