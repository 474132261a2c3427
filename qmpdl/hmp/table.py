"""The commands qmpdl's monitor serves, as data.

Names, ``args_type``, ``params`` and ``help`` are QEMU's interface facts (checked against
QEMU 7.2's ``help`` and ``info`` output).  An entry with ``feature`` / ``unless`` exists
only in the versions with / without that profile feature (``info migrate`` gained
``-a`` in 10.1); :func:`commands_for` gives one version's table.  QEMU sorts both tables
by name when it starts, and so do we: that order is what ``help`` and ``info`` print.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from qmpdl.hmp import handlers as h
from qmpdl.hmp import memdump as d
from qmpdl.hmp import migration as m
from qmpdl.hmp.command import Handler, HmpCommand
from qmpdl.profile import Profile


def _no_args(name: str, help: str, handler: Handler, *, unless: str | None = None) -> HmpCommand:
    """A command without arguments (QEMU's ``.args_type = ""``, ``.params = ""``)."""
    return HmpCommand(name, "", "", help, handler, unless=unless)


def _sorted(*commands: HmpCommand) -> tuple[HmpCommand, ...]:
    return tuple(sorted(commands, key=lambda cmd: cmd.name.encode("utf-8")))


INFO_COMMANDS = _sorted(
    _no_args("version", "show the version of QEMU", h.hmp_info_version),
    _no_args("cpus", "show infos for each CPU", h.hmp_info_cpus),
    _no_args("kvm", "show KVM information", h.hmp_info_kvm),
    _no_args("status", "show the current VM status (running|paused)", h.hmp_info_status),
    _no_args("dirty_rate", "show dirty rate information", h.hmp_info_dirty_rate),
    _no_args(
        "vcpu_dirty_limit",
        "show dirty page limit information of all vCPU",
        h.hmp_info_vcpu_dirty_limit,
    ),
    _no_args(
        "migrate",
        "show migration status",
        m.hmp_info_migrate,
        unless="hmp-info-migrate-reorganised",
    ),
    HmpCommand(
        "migrate",
        "all:-a",
        "[-a]",
        "show migration status (-a: all, dump all status)",
        m.hmp_info_migrate,
        feature="hmp-info-migrate-reorganised",
    ),
    _no_args(
        "migrate_capabilities",
        "show current migration capabilities",
        m.hmp_info_migrate_capabilities,
    ),
    _no_args(
        "migrate_parameters", "show current migration parameters", m.hmp_info_migrate_parameters
    ),
)

HMP_COMMANDS = _sorted(
    HmpCommand("help|?", "name:S?", "[cmd]", "show the help", h.hmp_help),
    _no_args("quit|q", "quit the emulator", h.hmp_quit),
    _no_args("stop|s", "stop emulation", h.hmp_stop),
    _no_args("cont|c", "resume emulation", h.hmp_cont),
    HmpCommand("cpu", "index:i", "index", "set the default CPU", h.hmp_cpu),
    HmpCommand(
        "info",
        "item:s?",
        "[subcommand]",
        "show various information about the system state",
        h.hmp_info_help,
        sub_table=INFO_COMMANDS,
    ),
    HmpCommand(
        "calc_dirty_rate",
        "dirty_ring:-r,dirty_bitmap:-b,second:l,sample_pages_per_GB:l?",
        "[-r] [-b] second [sample_pages_per_GB]",
        "start a round of guest dirty rate measurement (using -r to"
        "\n\t\t\t specify dirty ring as the method of calculation and"
        "\n\t\t\t -b to specify dirty bitmap as method of calculation)",
        h.hmp_calc_dirty_rate,
    ),
    HmpCommand(
        "set_vcpu_dirty_limit",
        "dirty_rate:l,cpu_index:l?",
        "dirty_rate [cpu_index]",
        "set dirty page rate limit, use cpu_index to set limit"
        "\n\t\t\t\t\t on a specified virtual cpu",
        h.hmp_set_vcpu_dirty_limit,
    ),
    HmpCommand(
        "migrate",
        "detach:-d,blk:-b,inc:-i,resume:-r,uri:s",
        "[-d] [-b] [-i] [-r] uri",
        "migrate to URI (using -d to not wait for completion)"
        "\n\t\t\t -b for migration without shared storage with"
        " full copy of disk\n\t\t\t -i for migration without "
        "shared storage with incremental copy of disk "
        "(base image shared between src and destination)"
        "\n\t\t\t -r to resume a paused migration",
        m.hmp_migrate,
        unless="migration-block-compress-removed",
    ),
    HmpCommand(
        "migrate",
        "detach:-d,resume:-r,uri:s",
        "[-d] [-r] uri",
        "migrate to URI (using -d to not wait for completion)"
        "\n\t\t\t -r to resume a paused postcopy migration",
        m.hmp_migrate,
        feature="migration-block-compress-removed",
    ),
    _no_args("migrate_cancel", "cancel the current VM migration", m.hmp_migrate_cancel),
    HmpCommand(
        "migrate_continue",
        "state:s",
        "state",
        "Continue migration from the given paused state",
        m.hmp_migrate_continue,
    ),
    HmpCommand(
        "migrate_incoming",
        "uri:s",
        "uri",
        "Continue an incoming migration from an -incoming defer",
        m.hmp_migrate_incoming,
    ),
    _no_args("migrate_pause", "Pause an ongoing migration (postcopy-only)", m.hmp_migrate_pause),
    HmpCommand(
        "migrate_set_capability",
        "capability:s,state:b",
        "capability state",
        "Enable/Disable the usage of a capability for migration",
        m.hmp_migrate_set_capability,
    ),
    HmpCommand(
        "migrate_set_parameter",
        "parameter:s,value:s",
        "parameter value",
        "Set the parameter for migration",
        m.hmp_migrate_set_parameter,
        unless="hmp-migrate-set-parameter-whole-value",
    ),
    HmpCommand(
        "migrate_set_parameter",
        "parameter:s,value:S",
        "parameter value",
        "Set the parameter for migration",
        m.hmp_migrate_set_parameter,
        feature="hmp-migrate-set-parameter-whole-value",
    ),
    HmpCommand(
        "x",
        "fmt:/,addr:l",
        "/fmt addr",
        "virtual memory dump starting at 'addr'",
        d.hmp_memory_dump,
    ),
    HmpCommand(
        "xp",
        "fmt:/,addr:l",
        "/fmt addr",
        "physical memory dump starting at 'addr'",
        d.hmp_physical_memory_dump,
    ),
    HmpCommand(
        "cancel_vcpu_dirty_limit",
        "cpu_index:l?",
        "[cpu_index]",
        "cancel dirty page rate limit, use cpu_index to cancel"
        "\n\t\t\t\t\t limit on a specified virtual cpu",
        h.hmp_cancel_vcpu_dirty_limit,
    ),
)


def _select(table: tuple[HmpCommand, ...], profile: Profile) -> tuple[HmpCommand, ...]:
    out = []
    for cmd in table:
        if cmd.feature is not None and not profile.has(cmd.feature):
            continue
        if cmd.unless is not None and profile.has(cmd.unless):
            continue
        if cmd.sub_table:
            out.append(replace(cmd, sub_table=_select(tuple(cmd.sub_table), profile)))
        else:
            out.append(cmd)
    return tuple(out)


@cache
def commands_for(profile: Profile) -> tuple[HmpCommand, ...]:
    """The command table of ``profile``'s QEMU version (entries of other versions left
    out, the ``info`` sub-table too)."""
    return _select(HMP_COMMANDS, profile)
