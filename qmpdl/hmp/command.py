"""The shapes shared by the monitor's modules: a command entry and the per-call context."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from qmpdl.errors import QMPError
from qmpdl.hmp.dumpfmt import DumpDefaults
from qmpdl.hmp.expr import RegisterLookup
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.profile import Profile

#: Runs one QMP command: (name, arguments) -> the value of ``"return"``; raises QMPError.
QmpCaller = Callable[[str, JsonObject], JsonValue]

#: Reads guest memory: (address, size) -> the readable start of ``[address, address +
#: size)``, all of it when every byte is backed by memory, fewer bytes (maybe none) when
#: the range runs into unmapped addresses.
MemoryReader = Callable[[int, int], bytes]

#: Parsed arguments of a command line, keyed by the names in ``args_type``.
Args = dict[str, int | str | bool]

#: What a command does once its arguments are parsed.
Handler = Callable[["Monitor", Args], None]


@dataclass(frozen=True)
class HmpCommand:
    """One line of QEMU's command table (``hmp-commands.hx`` / ``hmp-commands-info.hx``).

    ``name`` may list aliases separated by ``|`` (``"cont|c"``); ``args_type`` is QEMU's
    argument grammar (``"name:type,..."``); ``params`` and ``help`` are what ``help``
    prints.  A command with ``sub_table`` (``info``) looks up its first word there.
    """

    name: str
    args_type: str
    params: str
    help: str
    handler: Handler
    sub_table: Sequence[HmpCommand] = ()
    #: only in QEMU versions with / without this profile feature
    feature: str | None = None
    unless: str | None = None

    def names(self) -> list[str]:
        """The command's name and its aliases."""
        return self.name.split("|")


@dataclass
class Monitor:
    """Everything a command handler may use while one command line runs."""

    profile: Profile
    qmp: QmpCaller
    commands: Sequence[HmpCommand]
    cpu_index: int | None = None
    registers: RegisterLookup | None = None
    #: guest memory as the current CPU sees it; None: the machine has no CPU
    memory: MemoryReader | None = None
    #: the memory dump format ``/fmt`` falls back to (shared by the monitors of a machine)
    dump_defaults: DumpDefaults = field(default_factory=DumpDefaults)
    output: list[str] = field(default_factory=list)
    #: the migration object's global settings ``info migrate`` shows (None: defaults)
    migration_globals: Mapping[str, bool | int] | None = None

    def print(self, text: str) -> None:
        """Append ``text`` to the monitor output (``\\n`` becomes ``\\r\\n`` at the end)."""
        self.output.append(text)

    def print_error(self, error: QMPError) -> None:
        """Report a failed QMP call the way ``hmp_handle_error`` does."""
        self.print(f"Error: {error.desc}\n")

    def text(self) -> str:
        """The collected output as ``human-monitor-command`` returns it."""
        return "".join(self.output).replace("\n", "\r\n")
