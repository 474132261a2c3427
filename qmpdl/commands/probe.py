"""What the binary knows about itself, as libvirt's capability probe asks it: target,
machine types, CPU models, QOM types and their properties, TPM, command-line
options, SEV and SGX.  Answered from the data recorded from QEMU
(:mod:`qmpdl.qemudata`), loaded on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qmpdl.commands.registry import CommandContext, qmp_command
from qmpdl.errors import QMPError

if TYPE_CHECKING:
    from qmpdl.qapi.types_deferred import (
        DeviceListPropertiesArgs,
        QomListPropertiesArgs,
        QomListTypesArgs,
        QueryCommandLineOptionsArgs,
        QueryCpuDefinitionsArgs,
        QueryCpuModelExpansionArgs,
        QueryMachinesArgs,
        QuerySevCapabilitiesArgs,
        QuerySgxCapabilitiesArgs,
        QueryTargetArgs,
        QueryTpmModelsArgs,
        QueryTpmTypesArgs,
    )


def _accel(ctx: CommandContext) -> str:
    from qmpdl.qemudata.cpu import accel_of

    return accel_of(ctx.machine.config.accel.kind)


def _answer(recorded: Any) -> Any:
    """A recorded answer: its value, or its error raised."""
    if isinstance(recorded, dict) and set(recorded) == {"error"}:
        raise QMPError(recorded["error"]["desc"], recorded["error"]["class"])
    return recorded


@qmp_command("query-target")
def query_target(ctx: CommandContext, args: QueryTargetArgs) -> Any:
    from qmpdl.qemudata.machines import recorded

    return recorded(ctx.machine.profile, "query-target")


@qmp_command("query-machines")
def query_machines(ctx: CommandContext, args: QueryMachinesArgs) -> list[Any]:
    from qmpdl.qemudata.machines import machines

    return machines(ctx.machine.profile, compat_props=bool(args.compat_props))


@qmp_command("query-cpu-definitions")
def query_cpu_definitions(ctx: CommandContext, args: QueryCpuDefinitionsArgs) -> list[Any]:
    from qmpdl.qemudata.cpu import definitions

    return definitions(ctx.machine.profile, _accel(ctx))


@qmp_command("query-cpu-model-expansion")
def query_cpu_model_expansion(ctx: CommandContext, args: QueryCpuModelExpansionArgs) -> Any:
    from qmpdl.qemudata.cpu import expansion

    model = args.model
    return expansion(ctx.machine.profile, _accel(ctx), args.type.value, model.name, model.props)


@qmp_command("qom-list-types")
def qom_list_types(ctx: CommandContext, args: QomListTypesArgs) -> list[Any]:
    from qmpdl.qemudata.vmstate import state_of

    modules = state_of(ctx.machine).modules
    modules.load_all()
    rows = modules.table.list(implements=args.implements, abstract=bool(args.abstract))
    out: list[Any] = []
    for name, parent, abstract in rows:
        info: dict[str, Any] = {"name": name}
        if abstract:
            info["abstract"] = True
        if parent is not None:
            info["parent"] = parent
        out.append(info)
    return out


@qmp_command("qom-list-properties")
def qom_list_properties(ctx: CommandContext, args: QomListPropertiesArgs) -> list[Any]:
    from qmpdl.qemudata.properties import qom_properties
    from qmpdl.qemudata.vmstate import state_of

    return qom_properties(ctx.machine.profile, state_of(ctx.machine).modules, args.typename)


@qmp_command("device-list-properties")
def device_list_properties(ctx: CommandContext, args: DeviceListPropertiesArgs) -> list[Any]:
    from qmpdl.qemudata.properties import device_properties
    from qmpdl.qemudata.vmstate import state_of

    return device_properties(ctx.machine.profile, state_of(ctx.machine).modules, args.typename)


@qmp_command("query-tpm-models")
def query_tpm_models(ctx: CommandContext, args: QueryTpmModelsArgs) -> Any:
    from qmpdl.qemudata.machines import recorded

    return recorded(ctx.machine.profile, "query-tpm-models")


@qmp_command("query-tpm-types")
def query_tpm_types(ctx: CommandContext, args: QueryTpmTypesArgs) -> Any:
    from qmpdl.qemudata.machines import recorded

    return recorded(ctx.machine.profile, "query-tpm-types")


@qmp_command("query-command-line-options")
def query_command_line_options(ctx: CommandContext, args: QueryCommandLineOptionsArgs) -> Any:
    from qmpdl.qemudata.machines import recorded
    from qmpdl.qemudata.vmstate import state_of

    # every option, as after loading every module; those a module adds (-spice) are
    # there once it is loaded
    modules = state_of(ctx.machine).modules
    added = modules.module_options()
    everything = recorded(ctx.machine.profile, "query-command-line-options-all-modules")
    options: list[Any] = [
        o for o in everything if o["option"] not in added or modules.has_option(o["option"])
    ]
    if args.option is None:
        return options
    found = [o for o in options if o["option"] == args.option]
    if not found:
        raise QMPError(f"invalid option name: {args.option}")
    return found


@qmp_command("query-sev-capabilities")
def query_sev_capabilities(ctx: CommandContext, args: QuerySevCapabilitiesArgs) -> Any:
    from qmpdl.qemudata.machines import recorded

    return _answer(recorded(ctx.machine.profile, "query-sev-capabilities", _accel(ctx)))


@qmp_command("query-sgx-capabilities")
def query_sgx_capabilities(ctx: CommandContext, args: QuerySgxCapabilitiesArgs) -> Any:
    from qmpdl.qemudata.machines import recorded

    return _answer(recorded(ctx.machine.profile, "query-sgx-capabilities", _accel(ctx)))
