"""Running one command line: look the command up, parse its arguments, call its handler."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import ParamSpec

from qmpdl.errors import QMPError
from qmpdl.hmp.args import ArgumentError, parse_arguments
from qmpdl.hmp.cchar import is_space, skip_space
from qmpdl.hmp.command import HmpCommand, MemoryReader, Monitor, QmpCaller
from qmpdl.hmp.dumpfmt import DumpDefaults
from qmpdl.hmp.expr import RegisterLookup
from qmpdl.hmp.help import find
from qmpdl.hmp.table import commands_for
from qmpdl.hmp.words import command_name
from qmpdl.profile import Profile

_P = ParamSpec("_P")

#: QEMU keeps at most this many characters of a command name for the lookup.
_NAME_CHARS = 255


def cpu_index_error() -> QMPError:
    """The error of ``human-monitor-command`` when ``cpu-index`` names no vCPU."""
    return QMPError("Parameter 'cpu-index' expects a CPU number")


def _lookup(
    mon: Monitor, line: str, pos: int, table: Sequence[HmpCommand]
) -> tuple[HmpCommand, int] | None:
    """Find the command at ``line[pos:]``; print "unknown command" if there is none.

    Returns the entry and the index after its name and the blanks following it.  A
    command with sub-commands continues with the next word unless the line ends.
    """
    found = command_name(line, pos)
    if found is None:
        return None
    name, end = found
    cmd = find(table, name[:_NAME_CHARS])
    if cmd is None:
        # QEMU quotes the line from its very start, leading blanks included.
        mon.print(f"unknown command: '{line[:end]}'\n")
        return None
    pos = skip_space(line, end)
    if cmd.sub_table and pos < len(line):
        return _lookup(mon, line, pos, cmd.sub_table)
    return cmd, pos


def execute_line(
    command_line: str,
    *,
    profile: Profile,
    qmp: QmpCaller,
    cpu_index: int | None = None,
    registers: RegisterLookup | None = None,
    migration_globals: Mapping[str, bool | int] | None = None,
    memory: MemoryReader | None = None,
    dump_defaults: DumpDefaults | None = None,
) -> tuple[str, int | None]:
    """Run ``command_line`` as QEMU's human monitor would and return its output.

    Every QMP command the monitor needs goes through ``qmp``.  ``cpu_index`` is the
    monitor's current CPU (the validated ``cpu-index`` of ``human-monitor-command``;
    ``None`` means the first vCPU).  ``registers`` resolves ``$name`` in expressions;
    without it every register is unknown.  ``migration_globals`` are the migration
    object's settings ``info migrate`` lists.  ``memory`` reads guest memory for ``x``
    and ``xp`` (``None``: a machine without a CPU).  ``dump_defaults`` is the memory dump
    format ``/fmt`` remembers; QEMU keeps one for the whole process, so a caller passes
    the same object every time (``None``: the initial one, forgotten after this line).
    Line ends in the result are ``\\r\\n``.  Also returns the monitor's current CPU
    after the line (``cpu N`` changes it; a readline monitor keeps it for the next line).
    """
    commands = commands_for(profile)
    mon = Monitor(profile, qmp, commands, cpu_index, registers, memory)
    if dump_defaults is not None:
        mon.dump_defaults = dump_defaults
    mon.migration_globals = migration_globals
    found = _lookup(mon, command_line, 0, commands)
    if found is not None:
        cmd, pos = found
        try:
            args = parse_arguments(cmd, command_line, pos, registers, mon.dump_defaults)
        except ArgumentError as err:
            mon.print(err.text)
            end = pos
            while end > 0 and is_space(command_line[end - 1]):
                end -= 1
            mon.print(f'Try "help {command_line[:end]}" for more information\n')
        else:
            cmd.handler(mon, args)
    return mon.text(), mon.cpu_index


def _output_only(run: Callable[_P, tuple[str, int | None]]) -> Callable[_P, str]:
    def output(*args: _P.args, **kwargs: _P.kwargs) -> str:
        return run(*args, **kwargs)[0]

    return output


#: Run ``command_line`` as QEMU's human monitor would and return its output: what
#: :func:`execute_line` returns, without the current CPU.
execute = _output_only(execute_line)
