"""The human monitor (HMP) behind ``human-monitor-command``.

A pure module: :func:`execute` takes one command line and returns the text QEMU's monitor
would print for it, asking for everything it needs through a QMP caller, exactly like
QEMU's HMP handlers call the QMP implementation.  Only the dirty-limit / dirty-rate
commands, the migration settings, the memory dumps and a few basics are served; ``help``
and ``info`` list just those.

Modules: :mod:`~qmpdl.hmp.words` (splitting), :mod:`~qmpdl.hmp.expr` (integer
expressions), :mod:`~qmpdl.hmp.dumpfmt` (``/fmt``), :mod:`~qmpdl.hmp.args`
(``args_type`` parsing), :mod:`~qmpdl.hmp.table` (the command table),
:mod:`~qmpdl.hmp.handlers` (QMP calls and output formats), :mod:`~qmpdl.hmp.migration`,
:mod:`~qmpdl.hmp.memdump` (``x``, ``xp``), :mod:`~qmpdl.hmp.help` and
:mod:`~qmpdl.hmp.monitor` (dispatch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qmpdl.hmp.command import HmpCommand, MemoryReader, QmpCaller
    from qmpdl.hmp.dumpfmt import DumpDefaults
    from qmpdl.hmp.expr import RegisterLookup
    from qmpdl.hmp.monitor import cpu_index_error, execute
    from qmpdl.hmp.table import HMP_COMMANDS, INFO_COMMANDS

#: Where each name lives: the package imports its modules on first use (a command's
#: small helpers, such as :mod:`.cchar`, should not load the whole monitor).
_EXPORTS = {
    "HmpCommand": "command",
    "MemoryReader": "command",
    "QmpCaller": "command",
    "DumpDefaults": "dumpfmt",
    "RegisterLookup": "expr",
    "cpu_index_error": "monitor",
    "execute": "monitor",
    "HMP_COMMANDS": "table",
    "INFO_COMMANDS": "table",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"qmpdl.hmp.{module}"), name)


__all__ = [
    "HMP_COMMANDS",
    "INFO_COMMANDS",
    "DumpDefaults",
    "HmpCommand",
    "MemoryReader",
    "QmpCaller",
    "RegisterLookup",
    "cpu_index_error",
    "execute",
]
