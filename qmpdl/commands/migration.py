"""The migration commands: migrate, migrate-incoming, migrate_cancel, migrate-continue,
migrate-pause and query-migrate.  The rules live in
:class:`qmpdl.migration.manager.MigrationManager` (``ctx.machine.migration``)."""

from __future__ import annotations

from qmpdl.commands.registry import CommandContext, qmp_command
from qmpdl.jsontypes import JsonObject
from qmpdl.qapi.types import (
    MigrateArgs,
    MigrateCancelArgs,
    MigrateContinueArgs,
    MigrateIncomingArgs,
    MigratePauseArgs,
    QueryMigrateArgs,
)


@qmp_command("migrate")
def migrate(ctx: CommandContext, args: MigrateArgs) -> None:
    ctx.machine.migration.migrate(
        args.uri, args.channels, blk=bool(args.blk), inc=bool(args.inc), resume=bool(args.resume)
    )


@qmp_command("migrate-incoming")
def migrate_incoming(ctx: CommandContext, args: MigrateIncomingArgs) -> None:
    exit_on_error = True if args.exit_on_error is None else args.exit_on_error
    ctx.machine.migration.migrate_incoming(args.uri, args.channels, exit_on_error)


@qmp_command("migrate_cancel", blocking=True)
def migrate_cancel(ctx: CommandContext, args: MigrateCancelArgs) -> None:
    # blocking: with the dirty-limit capability it may join the throttle thread
    ctx.machine.migration.cancel()


@qmp_command("migrate-continue")
def migrate_continue(ctx: CommandContext, args: MigrateContinueArgs) -> None:
    ctx.machine.migration.continue_(args.state.value)


@qmp_command("migrate-pause")
def migrate_pause(ctx: CommandContext, args: MigratePauseArgs) -> None:
    ctx.machine.migration.pause()


@qmp_command("query-migrate")
def query_migrate(ctx: CommandContext, args: QueryMigrateArgs) -> JsonObject:
    # a plain object in MigrationInfo's shape: the output layer checks it against the
    # schema of the profile (socket-address is a union the models cannot pick from)
    return ctx.machine.migration.query()
