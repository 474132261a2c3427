"""The command registry: name -> handler, and what a handler gets to work with."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

if TYPE_CHECKING:
    from qmpdl.commands.executor import CommandExecutor
    from qmpdl.qapi import QapiSchema
    from qmpdl.qmp.session import MonitorSession
    from qmpdl.system.machine import Machine


class CommandContext(NamedTuple):
    """What a handler may touch."""

    machine: Machine
    schema: QapiSchema
    #: the monitor the request came from (None for commands HMP runs internally)
    session: MonitorSession | None
    executor: CommandExecutor


Handler = Callable[[CommandContext, Any], object]
H = TypeVar("H", bound=Handler)


class CommandSpec(NamedTuple):
    name: str
    handler: Handler
    #: may wait (joins a thread, waits for vCPUs): run off the event loop
    blocking: bool


REGISTRY: dict[str, CommandSpec] = {}


def qmp_command(name: str, *, blocking: bool = False) -> Callable[[H], H]:
    """Register the decorated function as the handler of QMP command ``name``."""

    def register(handler: H) -> H:
        if name in REGISTRY:
            raise ValueError(f"command {name} registered twice")
        REGISTRY[name] = CommandSpec(name, handler, blocking)
        return handler

    return register


def load_all() -> dict[str, CommandSpec]:
    """Import every handler module (registration happens at import)."""
    from qmpdl.commands import (  # noqa: F401
        block,
        chardev,
        control,
        dirtylimit,
        dirtyrate,
        hmp,
        machine,
        migration,
        migration_config,
        probe,
        qom,
        stats,
        vclock,  # in the schema only with clock=virtual
        vminfo,
    )

    return REGISTRY
