"""The commands qmpdl's monitor serves, as data.

Names, ``args_type``, ``params`` and ``help`` are QEMU's interface facts (checked against
QEMU 7.2's ``help`` and ``info`` output; unchanged up to 10.1).  QEMU sorts both tables by
name when it starts, and so do we: that order is what ``help`` and ``info`` print.
"""

from __future__ import annotations

from qmpdl.hmp import handlers as h
from qmpdl.hmp.command import HmpCommand


def _sorted(*commands: HmpCommand) -> tuple[HmpCommand, ...]:
    return tuple(sorted(commands, key=lambda cmd: cmd.name.encode("utf-8")))


INFO_COMMANDS = _sorted(
    HmpCommand("version", "", "", "show the version of QEMU", h.hmp_info_version),
    HmpCommand("cpus", "", "", "show infos for each CPU", h.hmp_info_cpus),
    HmpCommand("kvm", "", "", "show KVM information", h.hmp_info_kvm),
    HmpCommand("status", "", "", "show the current VM status (running|paused)", h.hmp_info_status),
    HmpCommand("dirty_rate", "", "", "show dirty rate information", h.hmp_info_dirty_rate),
    HmpCommand(
        "vcpu_dirty_limit",
        "",
        "",
        "show dirty page limit information of all vCPU",
        h.hmp_info_vcpu_dirty_limit,
    ),
)

HMP_COMMANDS = _sorted(
    HmpCommand("help|?", "name:S?", "[cmd]", "show the help", h.hmp_help),
    HmpCommand("quit|q", "", "", "quit the emulator", h.hmp_quit),
    HmpCommand("stop|s", "", "", "stop emulation", h.hmp_stop),
    HmpCommand("cont|c", "", "", "resume emulation", h.hmp_cont),
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
        "cancel_vcpu_dirty_limit",
        "cpu_index:l?",
        "[cpu_index]",
        "cancel dirty page rate limit, use cpu_index to cancel"
        "\n\t\t\t\t\t limit on a specified virtual cpu",
        h.hmp_cancel_vcpu_dirty_limit,
    ),
)
