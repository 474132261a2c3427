"""Migration capabilities and parameters: migrate-set-capabilities,
query-migrate-capabilities, migrate-set-parameters, query-migrate-parameters.

The rules live in :class:`qmpdl.migration.params.MigrationConfig`
(``ctx.machine.migration_config``).
"""

from __future__ import annotations

from qmpdl.commands.registry import CommandContext, qmp_command
from qmpdl.qapi.types import (
    MigrateSetCapabilitiesArgs,
    MigrateSetParametersArgs,
    MigrationCapabilityStatus,
    MigrationParameters,
    QueryMigrateCapabilitiesArgs,
    QueryMigrateParametersArgs,
)


@qmp_command("migrate-set-capabilities")
def migrate_set_capabilities(ctx: CommandContext, args: MigrateSetCapabilitiesArgs) -> None:
    changes = [(item.capability.value, item.state) for item in args.capabilities]
    ctx.machine.migration_config.set_capabilities(changes)


@qmp_command("query-migrate-capabilities")
def query_migrate_capabilities(
    ctx: CommandContext, args: QueryMigrateCapabilitiesArgs
) -> list[MigrationCapabilityStatus]:
    return ctx.machine.migration_config.query_capabilities()


@qmp_command("migrate-set-parameters")
def migrate_set_parameters(ctx: CommandContext, args: MigrateSetParametersArgs) -> None:
    # Only the members the request had (an explicit null counts for tls-*).
    given = args.model_dump(mode="json", by_alias=True, exclude_unset=True)
    ctx.machine.migration_config.set_parameters(given)


@qmp_command("query-migrate-parameters")
def query_migrate_parameters(
    ctx: CommandContext, args: QueryMigrateParametersArgs
) -> MigrationParameters:
    return ctx.machine.migration_config.query_parameters()
