"""``help`` and ``info``: the listings of served commands, and what qmp-shell makes of them."""

from __future__ import annotations

import pytest
from qemu.qmp.qmp_shell import HMPShell, QMPCompleter

from qmpdl.hmp import HMP_COMMANDS, INFO_COMMANDS, execute
from qmpdl.jsontypes import JsonObject
from qmpdl.profile import get_profile
from tests.hmp.fakes import FakeQmp

HELP = (
    "calc_dirty_rate [-r] [-b] second [sample_pages_per_GB] -- start a round of guest dirty"
    " rate measurement (using -r to\r\n"
    "\t\t\t specify dirty ring as the method of calculation and\r\n"
    "\t\t\t -b to specify dirty bitmap as method of calculation)\r\n"
    "cancel_vcpu_dirty_limit [cpu_index] -- cancel dirty page rate limit, use cpu_index to"
    " cancel\r\n"
    "\t\t\t\t\t limit on a specified virtual cpu\r\n"
    "cont|c  -- resume emulation\r\n"
    "cpu index -- set the default CPU\r\n"
    "help|? [cmd] -- show the help\r\n"
    "info [subcommand] -- show various information about the system state\r\n"
    "@MIGRATE@"
    "migrate_cancel  -- cancel the current VM migration\r\n"
    "migrate_continue state -- Continue migration from the given paused state\r\n"
    "migrate_incoming uri -- Continue an incoming migration from an -incoming defer\r\n"
    "migrate_pause  -- Pause an ongoing migration (postcopy-only)\r\n"
    "migrate_set_capability capability state -- Enable/Disable the usage of a capability"
    " for migration\r\n"
    "migrate_set_parameter parameter value -- Set the parameter for migration\r\n"
    "quit|q  -- quit the emulator\r\n"
    "set_vcpu_dirty_limit dirty_rate [cpu_index] -- set dirty page rate limit, use cpu_index"
    " to set limit\r\n"
    "\t\t\t\t\t on a specified virtual cpu\r\n"
    "stop|s  -- stop emulation\r\n"
    "x /fmt addr -- virtual memory dump starting at 'addr'\r\n"
    "xp /fmt addr -- physical memory dump starting at 'addr'\r\n"
)

#: ``migrate``'s entry: 7.2-9.0 (block migration flags), 9.1+
MIGRATE = {
    "7.2": "migrate [-d] [-b] [-i] [-r] uri -- migrate to URI (using -d to not wait for"
    " completion)\r\n"
    "\t\t\t -b for migration without shared storage with full copy of disk\r\n"
    "\t\t\t -i for migration without shared storage with incremental copy of disk (base"
    " image shared between src and destination)\r\n"
    "\t\t\t -r to resume a paused migration\r\n",
    "10.1": "migrate [-d] [-r] uri -- migrate to URI (using -d to not wait for completion)\r\n"
    "\t\t\t -r to resume a paused postcopy migration\r\n",
}

INFO = (
    "info cpus  -- show infos for each CPU\r\n"
    "info dirty_rate  -- show dirty rate information\r\n"
    "info kvm  -- show KVM information\r\n"
    "info migrate  -- show migration status\r\n"
    "info migrate_capabilities  -- show current migration capabilities\r\n"
    "info migrate_parameters  -- show current migration parameters\r\n"
    "info status  -- show the current VM status (running|paused)\r\n"
    "info vcpu_dirty_limit  -- show dirty page limit information of all vCPU\r\n"
    "info version  -- show the version of QEMU\r\n"
)

PROFILES = [get_profile(name) for name in ("7.2", "8.1", "8.2", "9.0", "10.1")]


def run(line: str, profile_name: str = "7.2") -> str:
    qmp = FakeQmp()
    out = execute(line, profile=get_profile(profile_name), qmp=qmp)
    assert qmp.calls == []
    return out


@pytest.mark.parametrize("profile_name", ["7.2", "10.1"])
@pytest.mark.parametrize("line", ["help", "?", "help   ", "? "])
def test_help_lists_served_commands_sorted(line: str, profile_name: str) -> None:
    assert run(line, profile_name) == HELP.replace("@MIGRATE@", MIGRATE[profile_name])


@pytest.mark.parametrize("line", ["info", "info   ", "help info", "? info", "help info "])
def test_info_lists_served_sub_commands_sorted(line: str) -> None:
    assert run(line) == INFO


def test_info_migrate_entry_changes_in_10_1() -> None:
    assert run("help info migrate", "9.0") == "info migrate  -- show migration status\r\n"
    assert run("help info migrate", "10.1") == (
        "info migrate [-a] -- show migration status (-a: all, dump all status)\r\n"
    )
    info_10_1 = INFO.replace(
        "info migrate  -- show migration status",
        "info migrate [-a] -- show migration status (-a: all, dump all status)",
    )
    assert run("info", "10.1") == info_10_1


def test_tables_are_sorted_by_name() -> None:
    assert [c.name for c in HMP_COMMANDS] == sorted(c.name for c in HMP_COMMANDS)
    assert [c.name for c in INFO_COMMANDS] == sorted(c.name for c in INFO_COMMANDS)


@pytest.mark.parametrize(
    ("line", "output"),
    [
        ("help stop", "stop|s  -- stop emulation\r\n"),
        ("help s", "stop|s  -- stop emulation\r\n"),
        ("help stop extra words", "stop|s  -- stop emulation\r\n"),
        ("? ?", "help|? [cmd] -- show the help\r\n"),
        ("help c", "cont|c  -- resume emulation\r\n"),
        ("help q", "quit|q  -- quit the emulator\r\n"),
        ("help cont|c", "unknown command: 'cont|c'\r\n"),
        ("help info vcpu_dirty_limit", INFO.split("\r\n")[7] + "\r\n"),
        (
            "help  info   status  x",
            "info status  -- show the current VM status (running|paused)\r\n",
        ),
        ("help info foo", "unknown command: 'info foo'\r\n"),
        ("help info info", "unknown command: 'info info'\r\n"),
        ("help foo bar", "unknown command: 'foo'\r\n"),
        ('help "foo bar"', "unknown command: 'foo bar'\r\n"),
        ('help "a\\nb"', "unknown command: 'a\r\nb'\r\n"),
        ('help "foo', ""),
        ('help "a\\x"', ""),
        ("help " + " ".join(["x"] * 17), ""),
        (
            "help " + " ".join(["x"] * 16),
            "x /fmt addr -- virtual memory dump starting at 'addr'\r\n",
        ),
        ("help " + " ".join(["y"] * 16), "unknown command: 'y'\r\n"),
        ("help log", "unknown command: 'log'\r\n"),  # QEMU lists log items; not served
    ],
)
def test_help_for_one_command(line: str, output: str) -> None:
    assert run(line) == output


class _ShellOverQmpdl(HMPShell):
    """qmp-shell's HMP mode with its QMP connection replaced by qmpdl's monitor."""

    def __init__(self) -> None:  # no socket: only the completion code is exercised
        self._completer = QMPCompleter()

    def _cmd_passthrough(self, cmdline: str, cpu_index: int = 0) -> JsonObject:
        return {"return": execute(cmdline, profile=get_profile("10.1"), qmp=FakeQmp())}

    def __del__(self) -> None:  # there is no QMP connection to close
        pass


def test_qmp_shell_completion_reads_our_listings() -> None:
    shell = _ShellOverQmpdl()
    shell._fill_completion()
    matches = shell._completer._matches
    assert matches == [
        "calc_dirty_rate", "help calc_dirty_rate",
        "cancel_vcpu_dirty_limit", "help cancel_vcpu_dirty_limit",
        "cont", "help cont",
        "cpu", "help cpu",
        "help", "help help",
        "migrate", "help migrate",
        "migrate_cancel", "help migrate_cancel",
        "migrate_continue", "help migrate_continue",
        "migrate_incoming", "help migrate_incoming",
        "migrate_pause", "help migrate_pause",
        "migrate_set_capability", "help migrate_set_capability",
        "migrate_set_parameter", "help migrate_set_parameter",
        "quit", "help quit",
        "set_vcpu_dirty_limit", "help set_vcpu_dirty_limit",
        "stop", "help stop",
        "x", "help x",
        "xp", "help xp",
        "info cpus", "info dirty_rate", "info kvm", "info migrate",
        "info migrate_capabilities", "info migrate_parameters", "info status",
        "info vcpu_dirty_limit", "info version",
        "help info",
    ]  # fmt: skip
