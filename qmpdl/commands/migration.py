"""Placeholders for the migration engine's commands (replaced by the engine's own
handlers): the executor needs a handler for every command of the schema."""

from __future__ import annotations

from qmpdl.commands.registry import CommandContext, qmp_command
from qmpdl.errors import QMPError
from qmpdl.qapi.types import (
    MigrateArgs,
    MigrateCancelArgs,
    MigrateContinueArgs,
    MigrateIncomingArgs,
    MigratePauseArgs,
    MigrationInfo,
    QueryMigrateArgs,
)


def _not_yet() -> QMPError:
    return QMPError("not implemented yet")


@qmp_command("migrate")
def migrate(ctx: CommandContext, args: MigrateArgs) -> None:
    raise _not_yet()


@qmp_command("migrate-incoming")
def migrate_incoming(ctx: CommandContext, args: MigrateIncomingArgs) -> None:
    raise _not_yet()


@qmp_command("migrate_cancel")
def migrate_cancel(ctx: CommandContext, args: MigrateCancelArgs) -> None:
    raise _not_yet()


@qmp_command("migrate-continue")
def migrate_continue(ctx: CommandContext, args: MigrateContinueArgs) -> None:
    raise _not_yet()


@qmp_command("query-migrate")
def query_migrate(ctx: CommandContext, args: QueryMigrateArgs) -> MigrationInfo:
    raise _not_yet()


@qmp_command("migrate-pause")
def migrate_pause(ctx: CommandContext, args: MigratePauseArgs) -> None:
    raise _not_yet()
