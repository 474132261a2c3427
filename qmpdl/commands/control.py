"""Protocol-level commands: negotiation, version, introspection, quit, yank list."""

from __future__ import annotations

from qmpdl.commands.registry import CommandContext, qmp_command
from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonValue
from qmpdl.qapi.types import (
    CommandInfo,
    QmpCapabilitiesArgs,
    QMPCapability,
    QueryCommandsArgs,
    QueryQmpSchemaArgs,
    QueryVersionArgs,
    QueryYankArgs,
    QuitArgs,
    VersionInfo,
    VersionTriple,
    YankInstanceType,
    YankInstanceVariantChardev,
)


@qmp_command("qmp_capabilities")
def qmp_capabilities(ctx: CommandContext, args: QmpCapabilitiesArgs) -> None:
    session = ctx.session
    if session is None or session.negotiated:
        raise QMPError(
            "Capabilities negotiation is already complete, command ignored", "CommandNotFound"
        )
    enable = list(args.enable or [])
    unavailable = [c.value for c in enable if c == QMPCapability.OOB and not session.oob_offered]
    if unavailable:
        raise QMPError(f"Capability {', '.join(unavailable)} not available")
    session.negotiate(enable_oob=QMPCapability.OOB in enable)


def version_info(ctx: CommandContext) -> VersionInfo:
    major, minor, micro = ctx.machine.profile.version
    return VersionInfo(
        qemu=VersionTriple(major=major, minor=minor, micro=micro),
        package=ctx.machine.profile.package,
    )


@qmp_command("query-version")
def query_version(ctx: CommandContext, args: QueryVersionArgs) -> VersionInfo:
    return version_info(ctx)


@qmp_command("query-commands")
def query_commands(ctx: CommandContext, args: QueryCommandsArgs) -> list[CommandInfo]:
    return [CommandInfo(name=name) for name in ctx.schema.command_names()]


@qmp_command("query-qmp-schema")
def query_qmp_schema(ctx: CommandContext, args: QueryQmpSchemaArgs) -> list[JsonValue]:
    return ctx.schema.introspect()


@qmp_command("quit")
def quit_(ctx: CommandContext, args: QuitArgs) -> None:
    ctx.machine.request_shutdown("host-qmp-quit")


@qmp_command("query-yank")
def query_yank(ctx: CommandContext, args: QueryYankArgs) -> list[YankInstanceVariantChardev]:
    return [
        YankInstanceVariantChardev(type=YankInstanceType.CHARDEV, id=chardev)
        for chardev in ctx.machine.chardev_ids
    ]
